//! Records are checked against the signature, with errors naming the field.

use ndarray::Array2;
use serde_json::json;
use wharf_core::{Records, Row, WharfError};
use wharf_ml::{datasets, Trainer};

fn lead_model() -> wharf_core::Model {
    Trainer::logistic_regression().fit(&datasets::lead_scoring()).expect("fit")
}

fn row(v: serde_json::Value) -> Row {
    v.as_object().expect("object").clone()
}

fn good() -> serde_json::Value {
    json!({"source": "referral", "industry": "software", "pages_viewed": 12, "minutes_on_site": 20.5,
           "emails_opened": 4, "company_size": 300, "days_since_signup": 10})
}

#[test]
fn named_rows_predict() {
    let model = lead_model();
    let p = model.predict_proba(&Records::Rows(vec![row(good())])).expect("predict");
    assert_eq!(p.classes, ["no", "yes"]);
    assert!(p.get(0, "yes").expect("yes") > 0.5, "an engaged referral lead converts");
}

#[test]
fn missing_field_is_named() {
    let mut r = good();
    r.as_object_mut().expect("obj").remove("pages_viewed");
    match lead_model().predict(&Records::Rows(vec![row(json!({})), row(r)])) {
        Err(WharfError::SchemaMismatch { path, message }) => {
            assert_eq!(path, "records[0].source");
            assert_eq!(message, "missing field");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn extra_field_is_named() {
    let mut r = good();
    r["pages_veiwed"] = json!(3);
    match lead_model().predict(&Records::Rows(vec![row(r)])) {
        Err(WharfError::SchemaMismatch { path, .. }) => assert_eq!(path, "records[0].pages_veiwed"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn mistyped_field_is_named() {
    let mut r = good();
    r["emails_opened"] = json!("four");
    match lead_model().predict(&Records::Rows(vec![row(r)])) {
        Err(WharfError::SchemaMismatch { path, message }) => {
            assert_eq!(path, "records[0].emails_opened");
            assert!(message.contains("expected a number"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_level_is_named() {
    let mut r = good();
    r["source"] = json!("carrier_pigeon");
    match lead_model().predict(&Records::Rows(vec![row(r)])) {
        Err(WharfError::InvalidInput { path, message }) => {
            assert_eq!(path, "records[0].source");
            assert!(message.contains("carrier_pigeon"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn nulls_are_imputed() {
    let mut r = good();
    r["minutes_on_site"] = json!(null);
    r["industry"] = json!(null);
    assert!(lead_model().predict(&Records::Rows(vec![row(r)])).is_ok());
}

#[test]
fn matrix_input_checks_width_and_levels() {
    let model = Trainer::logistic_regression().fit(&datasets::iris()).expect("fit");
    let ok = Array2::from_shape_vec((1, 4), vec![5.1, 3.5, 1.4, 0.2]).expect("shape");
    let p = model.predict(&Records::Matrix(ok.into())).expect("predict");
    assert_eq!(p.display(0), "setosa");
    let bad = Array2::from_shape_vec((1, 3), vec![5.1, 3.5, 1.4]).expect("shape");
    assert!(matches!(model.predict(&Records::Matrix(bad.into())), Err(WharfError::SchemaMismatch { .. })));

    let lead = lead_model();
    let width = lead.signature().features.len();
    let m = Array2::from_elem((1, width), 99.0);
    match lead.predict(&Records::Matrix(m.into())) {
        Err(WharfError::SchemaMismatch { message, .. }) => assert!(message.contains("level index")),
        other => panic!("a categorical cell out of range must fail: {other:?}"),
    }
}

#[test]
fn columns_ignore_extra_columns_and_name_missing_ones() {
    let data = datasets::lead_scoring();
    let model = Trainer::logistic_regression().fit(&data).expect("fit");
    let mut frame = data.features.clone();
    frame.push("lead_id", data.ids.column("lead_id").expect("ids").clone()).expect("push");
    assert_eq!(model.predict(&Records::Columns(frame.clone())).expect("ok").len(), data.n_rows());
    frame.remove("industry");
    match model.predict(&Records::Columns(frame)) {
        Err(WharfError::SchemaMismatch { path, .. }) => assert_eq!(path, "columns.industry"),
        other => panic!("{other:?}"),
    }
}
