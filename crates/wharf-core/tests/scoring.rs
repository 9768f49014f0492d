//! The one scoring path: predictions agree with probabilities, refused records are set
//! aside or fail the batch by one policy, and the server that scores is the one passed in.

use serde_json::json;
use wharf_core::scoring::{locate, output_columns};
use wharf_core::{
    score, LocalModelServer, ModelServerPort, ModelServers, OnError, Predictions, Records, Row, WharfError,
};
use wharf_ml::{datasets, Trainer};

fn server() -> std::sync::Arc<dyn ModelServerPort> {
    let model = Trainer::logistic_regression().fit(&datasets::lead_scoring()).expect("fit");
    ModelServers::local().serve(model).expect("serve")
}

fn row(industry: &str, pages: f64) -> Row {
    json!({"source": "referral", "industry": industry, "pages_viewed": pages, "minutes_on_site": 20.5,
           "emails_opened": 4, "company_size": 300, "days_since_signup": 10})
    .as_object()
    .expect("object")
    .clone()
}

#[test]
fn a_classifier_is_predicted_as_its_most_probable_class() {
    let server = server();
    let records = Records::Rows(vec![row("software", 12.0), row("health", 0.0), row("retail", 3.0)]);
    let scored = score(server.as_ref(), &records, OnError::Fail).expect("score");
    let proba = scored.probabilities.as_ref().expect("a classifier has probabilities");
    assert_eq!(scored.kept, [0, 1, 2]);
    assert_eq!(proba.values, server.predict_proba(&records).expect("proba").values);
    assert_eq!(scored.predictions, server.predict(&records).expect("predict"));
    assert_eq!(scored.columns(), ["prediction", "prob_no", "prob_yes"]);
    assert_eq!(scored.columns(), output_columns(&proba.classes));
}

#[test]
fn skip_sets_refused_records_aside_and_scores_the_rest() {
    let server = server();
    let records = Records::Rows(vec![row("software", 12.0), row("no-such-industry", 1.0), row("health", 2.0)]);
    let scored = score(server.as_ref(), &records, OnError::Skip).expect("score");
    assert_eq!(scored.kept, [0, 2]);
    assert_eq!(scored.rejects.len(), 1);
    assert_eq!(scored.rejects[0].index, 1);
    assert_eq!(scored.rejects[0].column.as_deref(), Some("industry"));
    let alone = server.predict(&Records::Rows(vec![row("software", 12.0), row("health", 2.0)])).expect("predict");
    assert_eq!(scored.predictions, alone);
}

#[test]
fn fail_stops_at_the_first_refused_record() {
    let server = server();
    let records = Records::Rows(vec![row("software", 12.0), row("no-such-industry", 1.0)]);
    let err = score(server.as_ref(), &records, OnError::Fail).expect_err("refused");
    assert_eq!(locate(&err), Some((1, Some("industry".into()))));
}

#[test]
fn an_empty_server_and_an_empty_batch_are_answered() {
    let empty = LocalModelServer::new();
    assert!(matches!(score(&empty, &Records::Rows(vec![]), OnError::Skip), Err(WharfError::NoModelLoaded)));
    let scored = score(server().as_ref(), &Records::Rows(vec![]), OnError::Fail).expect("score");
    assert!(scored.is_empty());
    assert!(matches!(scored.predictions, Predictions::Classes { ref indices, .. } if indices.is_empty()));
}

#[test]
fn regressions_have_no_probability_columns() {
    let model = Trainer::linear_regression().fit(&datasets::diabetes()).expect("fit");
    let sample = Records::Rows(model.metadata().sample_input.clone());
    let server = ModelServers::local().serve(model).expect("serve");
    let scored = score(server.as_ref(), &sample, OnError::Fail).expect("score");
    assert!(scored.probabilities.is_none());
    assert_eq!(scored.columns(), ["prediction"]);
    assert_eq!(scored.len(), sample.len());
}
