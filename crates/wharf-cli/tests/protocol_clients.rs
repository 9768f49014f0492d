//! `wharf serve` answers clients Wharf did not write: Triton's `tritonclient[http]` through
//! the Open Inference Protocol v2, and payloads built by MLflow's own helpers through
//! `/invocations`, both getting what in-process scoring gives for the same rows. The
//! clients run in the Python venv `cargo xtask test` builds (`WHARF_TEST_PROTOCOL_PYTHON`);
//! the script is `tests/fixtures/protocol_clients.py`.
#![cfg(all(unix, feature = "serve"))]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use wharf::{datasets, score, FeatureKind, FileRegistry, LocalModelServer, OnError, Records, RegistryPort, Trainer};

fn python() -> Option<String> {
    match std::env::var("WHARF_TEST_PROTOCOL_PYTHON").ok().filter(|v| !v.trim().is_empty()) {
        Some(python) => Some(python),
        None if std::env::var("WHARF_TEST_REQUIRE_BACKENDS").as_deref() == Ok("1") => {
            panic!(
                "WHARF_TEST_PROTOCOL_PYTHON is not set but WHARF_TEST_REQUIRE_BACKENDS=1: the client venv is missing"
            )
        }
        None => {
            let _ = writeln!(
                std::io::stderr(),
                "skipped: WHARF_TEST_PROTOCOL_PYTHON not set (a Python with tritonclient[http] and mlflow; cargo xtask test makes one)"
            );
            None
        }
    }
}

/// What in-process scoring gives for `rows` of `model`: the features (name, categorical),
/// the rows, their labels and probabilities, and the rows as a matrix in feature order.
fn expected(model: &wharf::Model, rows: Vec<serde_json::Map<String, Value>>) -> Value {
    let server = LocalModelServer::with_model(model.clone());
    let scored = score(&server, &Records::Rows(rows.clone()), OnError::Fail).unwrap();
    let labels: Vec<String> = (0..scored.len()).map(|i| scored.predictions.display(i)).collect();
    let proba: Vec<Vec<f64>> = scored.probabilities.unwrap().values.rows().into_iter().map(|r| r.to_vec()).collect();
    let features = &model.signature().features;
    let matrix: Vec<Vec<&Value>> = rows.iter().map(|r| features.iter().map(|f| &r[&f.name]).collect()).collect();
    let features: Vec<Value> = features
        .iter()
        .map(|f| json!({"name": f.name, "categorical": matches!(f.kind, FeatureKind::Categorical { .. })}))
        .collect();
    json!({"features": features, "rows": rows, "labels": labels, "proba": proba, "matrix": matrix})
}

#[test]
fn triton_and_mlflow_clients_get_in_process_answers() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let registry = FileRegistry::new(dir.path().join("reg"));
    let lead_data = datasets::lead_scoring();
    let iris_data = datasets::iris();
    let lead = Trainer::logistic_regression().fit(&lead_data).unwrap();
    let iris = Trainer::logistic_regression().fit(&iris_data).unwrap();
    registry.register(&lead, "lead").unwrap();
    registry.register(&iris, "iris").unwrap();
    let want = json!({
        "lead": expected(&lead, (0..25).map(|i| lead_data.features.row(i)).collect()),
        "iris": expected(&iris, (0..150).step_by(7).map(|i| iris_data.features.row(i)).collect()),
    });
    let expected_path = dir.path().join("expected.json");
    std::fs::write(&expected_path, serde_json::to_vec(&want).unwrap()).unwrap();

    let mut serve = Command::new(env!("CARGO_BIN_EXE_wharf"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("WHARF_") {
            serve.env_remove(key);
        }
    }
    let mut child = serve
        .current_dir(dir.path())
        .args(["serve", "--registry", "reg", "-m", "lead", "-m", "iris", "--default-model", "lead"])
        .args(["--addr", "127.0.0.1:0", "--log-format", "json"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("the server logs where it listens").unwrap();
        if line.contains("listening") {
            let log: Value = serde_json::from_str(&line).expect("JSON log lines");
            break log["fields"]["addr"].as_str().unwrap().to_string();
        }
    };
    // Keep reading the server's log, so it never blocks on a full pipe.
    let log = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());

    let out = Command::new(&python)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/protocol_clients.py"))
        .arg(format!("http://{addr}"))
        .arg(&expected_path)
        .output()
        .unwrap();
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let exit = child.wait().unwrap();
    let log = log.join().unwrap_or_default();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the clients failed:\n{stdout}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        log.join("\n")
    );
    assert!(stdout.contains("checks passed"), "{stdout}");
    println!("{}", stdout.trim());
    assert!(exit.success(), "graceful exit on SIGTERM: {exit}");
}
