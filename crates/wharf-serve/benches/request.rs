//! What one small request costs the server's own code: the whole router (every layer the
//! binary has, defaults on) answering a 1-row `predict_proba` in process, with no socket.
//! The HTTP ratio against the minimal server (`cargo xtask bench-peers`) adds hyper and the
//! kernel, which both servers share; this isolates the part Wharf can change.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use criterion::{criterion_group, criterion_main, Criterion};
use tower::ServiceExt;
use wharf_core::{FileRegistry, RegistryPort};
use wharf_ml::{datasets, Trainer};
use wharf_serve::{DriftWatch, ModelsBuilder, ServeOptions};

fn request(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let registry = Arc::new(FileRegistry::new(dir.path()));
    let data = datasets::breast_cancer();
    let model = Trainer::logistic_regression().fit(&data).expect("the model trains");
    registry.register(&model, "bc").expect("the model registers");
    let models = ModelsBuilder::new()
        .registry(registry)
        .model("bc".parse().expect("a model reference"))
        .build()
        .expect("the model loads");
    // The drift watch off, as for the peers' imported model, which has no training profile.
    let options =
        ServeOptions { drift: DriftWatch { enabled: false, ..DriftWatch::default() }, ..ServeOptions::default() };
    let router = wharf_serve::router(models, options).expect("the router builds");
    let width = model.signature().features.len();
    let row: Vec<String> = (0..width).map(|j| format!("{}.25", j % 7)).collect();
    let body = format!("{{\"instances\":[[{}]]}}", row.join(","));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let post = |path: &str| {
        Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body.clone()))
            .expect("a request")
    };
    let mut group = c.benchmark_group("request");
    for (name, path) in [
        ("predict_proba 1 row", "/models/bc/predict_proba?probabilities=array"),
        ("predict 1 row", "/models/bc/predict"),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let response = runtime.block_on(router.clone().oneshot(post(path))).expect("an answer");
                assert!(response.status().is_success());
                runtime.block_on(axum::body::to_bytes(response.into_body(), usize::MAX)).expect("a body")
            })
        });
    }
    group.bench_function("livez", |b| {
        b.iter(|| {
            let request = Request::get("/livez").body(Body::empty()).expect("a request");
            runtime.block_on(router.clone().oneshot(request)).expect("an answer").status()
        })
    });
    group.finish();
}

criterion_group!(benches, request);
criterion_main!(benches);
