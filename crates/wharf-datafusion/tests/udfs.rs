//! `wharf_predict` and `wharf_predict_proba` in real DataFusion queries, checked against
//! `Model::predict` and `Model::predict_proba` on the same rows.

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch, StructArray};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::prelude::{CsvReadOptions, SessionContext};
use wharf_core::{FileRegistry, Model, Records, RegistryExt, RegistryPort, Version};
use wharf_datafusion::{register, sql, WharfUdfs};
use wharf_ml::{datasets, Dataset, Trainer};

const FEATURES: &str =
    "source, industry, pages_viewed, minutes_on_site, emails_opened, company_size, days_since_signup";

/// A registry with `lead` (logistic regression, alias `champion`), `lead_rf` (random forest)
/// and `progression` (linear regression on the diabetes data), and the lead-scoring CSV.
struct Fixture {
    dir: tempfile::TempDir,
    registry: Arc<FileRegistry>,
    data: Dataset,
    logistic: Model,
    forest: Model,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let registry = Arc::new(FileRegistry::new(dir.path().join("registry")));
        let data = datasets::lead_scoring();
        let logistic = Trainer::logistic_regression().fit(&data).expect("fit logistic");
        let forest = Trainer::random_forest().trees(8).seed(11).fit(&data).expect("fit forest");
        let version = registry.register(&logistic, "lead").expect("register lead");
        registry.set_alias("lead", "champion", &version).expect("alias");
        registry.register(&forest, "lead_rf").expect("register lead_rf");
        let linear = Trainer::linear_regression().fit(&datasets::diabetes()).expect("fit linear");
        registry.register(&linear, "progression").expect("register progression");
        std::fs::write(dir.path().join("leads.csv"), datasets::LEAD_SCORING_CSV).expect("write csv");
        Fixture { dir, registry, data, logistic, forest }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A session with the functions registered and the CSV as table `leads`.
    async fn session(&self) -> (SessionContext, WharfUdfs) {
        let (ctx, udfs) = sql::session(self.registry.clone());
        let csv = self.path("leads.csv");
        ctx.register_csv("leads", csv.to_str().expect("utf-8 path"), CsvReadOptions::new()).await.expect("csv");
        (ctx, udfs)
    }

    /// The expected probabilities of `model` for every row of the data, in file order.
    fn expected_proba(&self, model: &Model) -> Vec<Vec<f64>> {
        let records = Records::Columns(self.data.features.clone());
        let p = model.predict_proba(&records).expect("predict_proba");
        p.values.rows().into_iter().map(|r| r.to_vec()).collect()
    }

    fn expected_labels(&self, model: &Model) -> Vec<String> {
        let records = Records::Columns(self.data.features.clone());
        let predictions = model.predict(&records).expect("predict");
        (0..predictions.len()).map(|i| predictions.display(i)).collect()
    }
}

async fn query(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
    sql::run_script(ctx, sql).await.unwrap_or_else(|e| panic!("{sql}\n-> {e}"))
}

async fn query_error(ctx: &SessionContext, sql: &str) -> String {
    match sql::run_script(ctx, sql).await {
        Ok(_) => panic!("{sql}\n-> succeeded, expected an error"),
        Err(e) => e.to_string(),
    }
}

/// Column `i` of every batch as optional text.
fn texts(batches: &[RecordBatch], i: usize) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for batch in batches {
        let column = datafusion::arrow::compute::cast(batch.column(i), &DataType::Utf8).expect("cast");
        let column = column.as_string::<i32>();
        out.extend((0..column.len()).map(|r| column.is_valid(r).then(|| column.value(r).to_string())));
    }
    out
}

/// Struct column `i` of every batch as optional rows of probabilities, in `classes` order.
fn probabilities(batches: &[RecordBatch], i: usize, classes: &[String]) -> Vec<Option<Vec<f64>>> {
    let mut out = Vec::new();
    for batch in batches {
        let column: &StructArray = batch.column(i).as_struct();
        let fields: Vec<_> = classes
            .iter()
            .map(|c| column.column_by_name(c).unwrap_or_else(|| panic!("no field {c}")).as_primitive::<Float64Type>())
            .collect();
        for r in 0..column.len() {
            if column.is_null(r) {
                assert!(fields.iter().all(|f| f.is_null(r)), "row {r}: a null struct has non-null fields");
                out.push(None);
            } else {
                out.push(Some(fields.iter().map(|f| f.value(r)).collect()));
            }
        }
    }
    out
}

fn assert_close(actual: &[f64], expected: &[f64], what: &str) {
    assert_within(actual, expected, 1e-12, what);
}

fn assert_within(actual: &[f64], expected: &[f64], tolerance: f64, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}");
    for (a, e) in actual.iter().zip(expected) {
        assert!((a - e).abs() < tolerance, "{what}: {actual:?} != {expected:?}");
    }
}

/// Every row non-null and within `tolerance` of the expected probabilities.
fn assert_rows_within(actual: &[Option<Vec<f64>>], expected: &[Vec<f64>], tolerance: f64) {
    assert_eq!(actual.len(), expected.len());
    for (row, (p, want)) in actual.iter().zip(expected).enumerate() {
        let p = p.as_deref().unwrap_or_else(|| panic!("row {row}: null"));
        assert_within(p, want, tolerance, &format!("row {row}"));
    }
}

#[tokio::test]
async fn predictions_and_probabilities_equal_the_models_own_for_logistic_and_forest() {
    let f = Fixture::new();
    let (ctx, _udfs) = f.session().await;
    for (name, model) in [("lead", &f.logistic), ("lead@champion", &f.logistic), ("lead_rf", &f.forest)] {
        let batches = query(
            &ctx,
            &format!(
                "SELECT lead_id, wharf_predict('{name}', {FEATURES}) AS label, \
                 wharf_predict_proba('{name}', {FEATURES}) AS p FROM leads ORDER BY lead_id"
            ),
        )
        .await;
        let labels = texts(&batches, 1);
        let probas = probabilities(&batches, 2, model.classes());
        let expected_labels = f.expected_labels(model);
        let expected_probas = f.expected_proba(model);
        assert_eq!(labels.len(), 1200, "{name}");
        assert_eq!(texts(&batches, 0)[0].as_deref(), Some("L00001"));
        for (row, ((label, proba), (want_label, want_proba))) in
            labels.iter().zip(&probas).zip(expected_labels.iter().zip(&expected_probas)).enumerate()
        {
            assert_eq!(label.as_deref(), Some(want_label.as_str()), "{name} row {row}");
            let proba = proba.as_ref().unwrap_or_else(|| panic!("{name} row {row}: null"));
            assert_close(proba, want_proba, &format!("{name} row {row}"));
        }
        // Not a constant: both classes are predicted somewhere.
        assert!(
            labels.iter().any(|l| l.as_deref() == Some("yes")) && labels.iter().any(|l| l.as_deref() == Some("no"))
        );
    }
}

#[tokio::test]
async fn the_struct_fields_are_the_class_labels_and_regression_gives_numbers() {
    let f = Fixture::new();
    let (ctx, _udfs) = f.session().await;
    let batches = query(
        &ctx,
        &format!(
            "SELECT get_field(wharf_predict_proba('lead', {FEATURES}), 'yes') AS p_yes FROM leads ORDER BY lead_id"
        ),
    )
    .await;
    let yes = f.logistic.classes().iter().position(|c| c == "yes").expect("a yes class");
    let p_yes: Vec<f64> =
        batches.iter().flat_map(|b| b.column(0).as_primitive::<Float64Type>().values().to_vec()).collect();
    let expected: Vec<f64> = f.expected_proba(&f.logistic).iter().map(|r| r[yes]).collect();
    assert_close(&p_yes, &expected, "p_yes");

    // A regression model through wharf_predict: Float64 values equal to Model::predict.
    let diabetes = datasets::diabetes();
    let csv = f.path("diabetes.csv");
    std::fs::write(&csv, datasets::DIABETES_CSV).expect("write");
    let features: Vec<&str> = diabetes.features.columns().iter().map(|(n, _)| n.as_str()).collect();
    let batches = query(
        &ctx,
        &format!(
            "SELECT wharf_predict('progression', {}) AS y FROM '{}'",
            features.join(", "),
            csv.to_str().expect("utf-8")
        ),
    )
    .await;
    assert_eq!(batches[0].schema().field(0).data_type(), &DataType::Float64);
    let got: Vec<f64> =
        batches.iter().flat_map(|b| b.column(0).as_primitive::<Float64Type>().values().to_vec()).collect();
    let model = f.registry.load("progression", "latest").expect("load");
    let wharf_core::Predictions::Values(want) =
        model.predict(&Records::Columns(diabetes.features.clone())).expect("predict")
    else {
        panic!("a regression predicts values")
    };
    assert_close(&got, &want, "progression");
}

#[tokio::test]
async fn plan_errors_name_the_model_the_argument_and_the_feature() {
    let f = Fixture::new();
    let (ctx, _udfs) = f.session().await;
    let e = query_error(&ctx, &format!("SELECT wharf_predict('nope', {FEATURES}) FROM leads")).await;
    assert!(
        e.contains("Error during planning") && e.contains("wharf_predict('nope')") && e.contains("not found"),
        "{e}"
    );

    let e = query_error(&ctx, "SELECT wharf_predict('lead', source, industry) FROM leads").await;
    assert!(
        e.contains("Error during planning")
            && e.contains("takes 7 features")
            && e.contains("got 2")
            && e.contains("days_since_signup"),
        "{e}"
    );

    // pages_viewed (argument 4) given as text; source (argument 2) given as a number.
    let e = query_error(
        &ctx,
        "SELECT wharf_predict('lead', source, industry, lead_id, minutes_on_site, emails_opened, company_size, \
         days_since_signup) FROM leads",
    )
    .await;
    assert!(e.contains("argument 4 (feature 'pages_viewed') must be a number, got Utf8"), "{e}");
    let e = query_error(
        &ctx,
        "SELECT wharf_predict_proba('lead', pages_viewed, industry, pages_viewed, minutes_on_site, emails_opened, \
         company_size, days_since_signup) FROM leads",
    )
    .await;
    assert!(e.contains("argument 2 (feature 'source') must be text") && e.contains("Int64"), "{e}");

    let e = query_error(&ctx, &format!("SELECT wharf_predict(lead_id, {FEATURES}) FROM leads")).await;
    assert!(e.contains("first argument must be the model as a text literal"), "{e}");
    let e = query_error(&ctx, &format!("SELECT wharf_predict('lead@no such alias', {FEATURES}) FROM leads")).await;
    assert!(e.contains("is not a model reference"), "{e}");
    let e = query_error(&ctx, "SELECT wharf_predict_proba('progression', 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)").await;
    assert!(e.contains("probabilities need a classifier") && e.contains("regression"), "{e}");
    // No argument at all: DataFusion refuses it before asking the function.
    let e = query_error(&ctx, "SELECT wharf_predict()").await;
    assert!(e.contains("Error during planning") && e.contains("wharf_predict"), "{e}");
}

#[tokio::test]
async fn a_null_in_any_argument_gives_a_null_result_and_other_rows_are_unchanged() {
    let f = Fixture::new();
    let (ctx, _udfs) = f.session().await;
    // Null out `source` for organic leads and `pages_viewed` when it is 3.
    let args = "NULLIF(source, 'organic'), industry, NULLIF(pages_viewed, 3), minutes_on_site, emails_opened, \
                company_size, days_since_signup";
    let batches = query(
        &ctx,
        &format!(
            "SELECT source, pages_viewed, wharf_predict('lead_rf', {args}), wharf_predict_proba('lead_rf', {args}) \
             FROM leads ORDER BY lead_id"
        ),
    )
    .await;
    let sources = texts(&batches, 0);
    let pages = texts(&batches, 1);
    let labels = texts(&batches, 2);
    let probas = probabilities(&batches, 3, f.forest.classes());
    let expected_labels = f.expected_labels(&f.forest);
    let expected_probas = f.expected_proba(&f.forest);
    let mut nulls = 0;
    for row in 0..labels.len() {
        let null_row = sources[row].as_deref() == Some("organic") || pages[row].as_deref() == Some("3");
        if null_row {
            nulls += 1;
            assert_eq!(labels[row], None, "row {row}");
            assert_eq!(probas[row], None, "row {row}");
        } else {
            assert_eq!(labels[row].as_deref(), Some(expected_labels[row].as_str()), "row {row}");
            assert_close(probas[row].as_deref().expect("not null"), &expected_probas[row], "row {row}");
        }
    }
    assert!(nulls > 234, "organic rows and more are null: {nulls}");

    // A NULL literal fits any feature and nulls every row.
    let batches = query(
        &ctx,
        "SELECT wharf_predict('lead', NULL, industry, pages_viewed, minutes_on_site, emails_opened, company_size, \
         days_since_signup) FROM leads",
    )
    .await;
    assert!(texts(&batches, 0).iter().all(Option::is_none));
}

#[tokio::test]
async fn an_unknown_level_fails_the_query_naming_feature_and_value() {
    let f = Fixture::new();
    let (ctx, _udfs) = f.session().await;
    let e = query_error(
        &ctx,
        "SELECT wharf_predict('lead', 'carrier pigeon', industry, pages_viewed, minutes_on_site, emails_opened, \
         company_size, days_since_signup) FROM leads",
    )
    .await;
    assert!(e.contains("argument 2 (feature 'source') is 'carrier pigeon'") && e.contains("organic"), "{e}");
}

#[tokio::test]
async fn copy_to_parquet_round_trips_and_parquet_strings_score_the_same() {
    let f = Fixture::new();
    let (ctx, _udfs) = f.session().await;
    let scored = f.path("scored.parquet");
    let copied = query(
        &ctx,
        &format!(
            "COPY (SELECT lead_id, wharf_predict('lead', {FEATURES}) AS label, \
             wharf_predict_proba('lead', {FEATURES}) AS p FROM leads ORDER BY lead_id) TO '{}' STORED AS PARQUET",
            scored.display()
        ),
    )
    .await;
    assert_eq!(copied[0].column(0).as_primitive::<datafusion::arrow::datatypes::UInt64Type>().value(0), 1200);
    let back = query(&ctx, &format!("SELECT lead_id, label, p FROM '{}' ORDER BY lead_id", scored.display())).await;
    assert_eq!(texts(&back, 1), f.expected_labels(&f.logistic).into_iter().map(Some).collect::<Vec<_>>());
    assert_rows_within(&probabilities(&back, 2, f.logistic.classes()), &f.expected_proba(&f.logistic), 1e-12);

    // The input as Parquet: DataFusion reads its strings as Utf8View; same scores.
    let input = f.path("leads.parquet");
    query(&ctx, &format!("COPY leads TO '{}' STORED AS PARQUET", input.display())).await;
    let from_parquet =
        query(&ctx, &format!("SELECT wharf_predict('lead', {FEATURES}) FROM '{}' ORDER BY lead_id", input.display()))
            .await;
    assert_eq!(texts(&from_parquet, 0), texts(&back, 1));
}

#[tokio::test]
async fn a_session_keeps_its_model_until_refreshed() {
    let f = Fixture::new();
    let (ctx, udfs) = f.session().await;
    let sql = format!("SELECT wharf_predict_proba('lead@champion', {FEATURES}) FROM leads ORDER BY lead_id LIMIT 5");
    let classes = f.logistic.classes().to_vec();
    let before = probabilities(&query(&ctx, &sql).await, 0, &classes);

    // Move the alias to a differently trained model.
    let other = Trainer::logistic_regression().l2(50.0).fit(&f.data).expect("fit");
    let v2 = f.registry.register(&other, "lead").expect("register");
    assert_eq!(v2, Version(2));
    f.registry.set_alias("lead", "champion", &v2).expect("alias");

    assert_eq!(probabilities(&query(&ctx, &sql).await, 0, &classes), before, "the session keeps version 1");
    assert_eq!(udfs.loaded().iter().map(ToString::to_string).collect::<Vec<_>>(), ["lead@champion"]);
    udfs.refresh();
    let after = probabilities(&query(&ctx, &sql).await, 0, &classes);
    assert_ne!(after, before, "after refresh the alias resolves to version 2");
    let records = Records::Columns(f.data.features.take(&[0, 1, 2, 3, 4]));
    let want = other.predict_proba(&records).expect("predict_proba");
    let want: Vec<Vec<f64>> = want.values.rows().into_iter().map(|r| r.to_vec()).collect();
    assert_rows_within(&after, &want, 1e-12);
}

#[tokio::test]
async fn script_results_print_as_text_and_json() {
    let f = Fixture::new();
    let (ctx, _udfs) = f.session().await;
    let batches = query(
        &ctx,
        &format!(
            "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '{}' OPTIONS ('format.has_header' 'true'); \
             SELECT lead_id, wharf_predict('lead', {FEATURES}) AS label, wharf_predict_proba('lead', {FEATURES}) AS p \
             FROM t ORDER BY lead_id LIMIT 2",
            f.path("leads.csv").display()
        ),
    )
    .await;
    let labels = f.expected_labels(&f.logistic);
    let (header, rows) = sql::to_text(&batches).expect("text");
    assert_eq!(header, ["lead_id", "label", "p"]);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][..2], ["L00001".to_string(), labels[0].clone()]);
    assert!(rows[0][2].starts_with("{no: "), "{}", rows[0][2]);

    let json = sql::to_json(&batches).expect("json");
    let p = f.expected_proba(&f.logistic);
    assert_eq!(json[1]["lead_id"], "L00002");
    assert_eq!(json[1]["label"], labels[1].as_str());
    let yes = f.logistic.classes().iter().position(|c| c == "yes").expect("yes");
    assert!((json[1]["p"]["yes"].as_f64().expect("number") - p[1][yes]).abs() < 1e-12, "{json}");
    assert_eq!(sql::to_json(&[]).expect("json"), serde_json::json!([]));
}

#[test]
fn registering_on_a_function_registry_and_blocking_runs_work_outside_a_runtime() {
    let f = Fixture::new();
    let mut state = SessionContext::new().state();
    WharfUdfs::new(f.registry.clone()).register_with(&mut state).expect("register");
    assert!(state.scalar_functions().contains_key("wharf_predict"));
    assert!(state.scalar_functions().contains_key("wharf_predict_proba"));

    let csv = f.path("leads.csv");
    let batches = sql::run_script_blocking(
        f.registry.clone(),
        &format!("SELECT count(*) AS n, count(wharf_predict('lead@1', {FEATURES})) AS scored FROM '{}'", csv.display()),
    )
    .expect("run");
    let (_, rows) = sql::to_text(&batches).expect("text");
    assert_eq!(rows, [["1200", "1200"]]);
    let ctx = SessionContext::new();
    let udfs = register(&ctx, f.registry.clone() as Arc<dyn RegistryPort>);
    assert!(udfs.loaded().is_empty());
}

#[tokio::test]
async fn every_arrow_text_kind_and_numeric_type_is_accepted() {
    let f = Fixture::new();
    let (ctx, _udfs) = f.session().await;
    let batches = query(
        &ctx,
        "SELECT wharf_predict_proba('lead', arrow_cast(source, 'Dictionary(Int32, Utf8)'), \
         arrow_cast(industry, 'LargeUtf8'), CAST(pages_viewed AS INT), CAST(minutes_on_site AS REAL), \
         CAST(emails_opened AS SMALLINT), CAST(company_size AS DECIMAL(12, 2)), CAST(days_since_signup AS BIGINT UNSIGNED)) \
         FROM leads ORDER BY lead_id",
    )
    .await;
    // minutes_on_site went through REAL (f32), so allow for its rounding.
    assert_rows_within(&probabilities(&batches, 0, f.logistic.classes()), &f.expected_proba(&f.logistic), 1e-5);
}
