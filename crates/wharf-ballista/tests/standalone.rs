//! The same SQL through Ballista's in-process cluster (scheduler and executor in this
//! process, the plan serialized between them) and through plain DataFusion: equal row by row.

mod common;

use ballista_core::extension::SessionConfigExt;
use common::{assert_same_rows, register_leads, rows, scoring_sql, Fixture, FEATURES, FILES};
use wharf_datafusion::datafusion::prelude::{SessionConfig, SessionContext};

/// A standalone cluster with one task per file and two task slots.
async fn cluster(f: &Fixture) -> SessionContext {
    let config = SessionConfig::new().with_target_partitions(FILES).with_ballista_standalone_parallelism(2);
    let (ctx, _udfs) =
        wharf_ballista::standalone_with_config(f.registry.clone(), config).await.expect("standalone cluster");
    register_leads(&ctx, &f.leads()).await;
    ctx
}

async fn query_error(ctx: &SessionContext, sql: &str) -> String {
    let result = match ctx.sql(sql).await {
        Ok(frame) => frame.collect().await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => panic!("{sql}\n-> succeeded, expected an error"),
        Err(e) => e.strip_backtrace(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ballista_scores_every_row_exactly_as_single_machine_datafusion() {
    let f = Fixture::new().await;
    let expected = f.expected().await;
    assert_eq!(expected.len(), 1200);

    let ctx = cluster(&f).await;
    let batches = ctx.sql(&scoring_sql()).await.expect("plan").collect().await.expect("run");
    let actual = rows(&batches);
    assert_same_rows(&actual, &expected);
    // Not vacuous: real labels and probabilities that sum to one.
    let first = &actual[0];
    assert_eq!(first["lead_id"], "L00001");
    assert!(first["label"].is_string(), "{first}");
    let p = first["p"].as_object().expect("probabilities");
    let sum: f64 = p.values().map(|v| v.as_f64().expect("number")).sum();
    assert!((sum - 1.0).abs() < 1e-9, "{first}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_model_fails_at_plan_time_naming_it() {
    let f = Fixture::new().await;
    let ctx = cluster(&f).await;
    let error =
        query_error(&ctx, &format!("SELECT lead_id, wharf_predict('no_such_model', {FEATURES}) FROM leads")).await;
    assert!(error.contains("no_such_model"), "{error}");
    assert!(error.contains("wharf_predict"), "{error}");
    eprintln!("{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_number_of_features_fails_at_plan_time() {
    let f = Fixture::new().await;
    let ctx = cluster(&f).await;
    let error = query_error(&ctx, "SELECT wharf_predict_proba('lead', source, industry) FROM leads").await;
    assert!(error.contains("takes 7 features"), "{error}");
    assert!(error.contains("got 2"), "{error}");
    eprintln!("{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_paths_work_as_tables_too() {
    let f = Fixture::new().await;
    let config = SessionConfig::new().with_target_partitions(FILES);
    let (ctx, _udfs) = wharf_ballista::standalone_with_config(f.registry.clone(), config).await.expect("cluster");
    let sql = format!("SELECT count(wharf_predict('lead', {FEATURES})) AS n FROM '{}'", f.leads());
    let batches = ctx.sql(&sql).await.expect("plan").collect().await.expect("run");
    assert_eq!(rows(&batches), vec![serde_json::json!({"n": 1200})]);
}

/// The control: the same query on an in-process cluster whose scheduler and executor were
/// *not* given Wharf's functions (only the client has them) fails there. So the plans above
/// really crossed into the cluster's processes and were decoded against their registries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_functions_in_the_cluster_the_query_fails_there() {
    use ballista::prelude::SessionContextExt;
    use wharf_datafusion::datafusion::execution::SessionStateBuilder;

    let f = Fixture::new().await;
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(SessionConfig::new().with_target_partitions(FILES))
        .build();
    let ctx = SessionContext::standalone_with_state(state).await.expect("plain standalone cluster");
    wharf_datafusion::register(&ctx, f.registry.clone());
    register_leads(&ctx, &f.leads()).await;
    let error = query_error(&ctx, &scoring_sql()).await;
    assert!(error.contains("wharf_predict"), "{error}");
    eprintln!("{error}");
}
