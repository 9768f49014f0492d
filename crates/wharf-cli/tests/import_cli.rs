//! `wharf models import`: a hand-written scikit-learn export becomes a registered model that
//! predicts what the export's formula says.

use std::process::{Command, Output};

fn wharf(dir: &std::path::Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf"));
    cmd.current_dir(dir).args(args);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("WHARF_") {
            cmd.env_remove(key);
        }
    }
    cmd.output().expect("run wharf")
}

fn ok(dir: &std::path::Path, args: &[&str]) -> String {
    let out = wharf(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "wharf {args:?} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn import_logistic_and_forest_then_predict() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("lr.json"),
        r#"{"classes": [0, 1], "coef": [2.0, -1.0], "intercept": 0.5, "n_features": 2}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("rf.json"),
        r#"{"classes": [0, 1], "n_features": 2, "trees": [{"children_left": [1, -1, -1],
        "children_right": [2, -1, -1], "feature": [0, -2, -2], "threshold": [0.5, -2, -2],
        "proba_class1": [0.5, 0.2, 0.9]}]}"#,
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&ok(
        dir,
        &[
            "models",
            "import",
            "--format",
            "sklearn-logistic-json",
            "lr.json",
            "--name",
            "lr",
            "--alias",
            "prod",
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["classes"], serde_json::json!(["0", "1"]));
    ok(dir, &["models", "import", "--format", "sklearn-forest-json", "rf.json", "--name", "rf"]);

    std::fs::write(dir.join("in.csv"), "f0,f1\n1,1\n0,0\n").unwrap();
    ok(dir, &["predict", "--model", "lr@prod", "--input", "in.csv", "--output", "lr.csv"]);
    ok(dir, &["predict", "--model", "rf", "--input", "in.csv", "--output", "rf.csv"]);
    let lr = std::fs::read_to_string(dir.join("lr.csv")).unwrap();
    let rf = std::fs::read_to_string(dir.join("rf.csv")).unwrap();
    // Output: prediction,prob_0,prob_1,model,model_version. σ(2 - 1 + 0.5) and σ(0.5) are
    // both above 0.5.
    // Forest: f0 = 1 > 0.5 goes right (0.9), f0 = 0 goes left (0.2).
    let cells = |text: &str, line: usize| -> Vec<String> {
        text.lines().nth(line).unwrap().split(',').map(String::from).collect::<Vec<_>>()
    };
    assert_eq!(lr.lines().next(), Some("prediction,prob_0,prob_1,model,model_version"), "{lr}");
    let p: f64 = cells(&lr, 1)[2].parse().unwrap();
    assert!((p - 1.0 / (1.0 + (-1.5f64).exp())).abs() < 1e-12, "{lr}");
    assert_eq!(cells(&rf, 1)[0], "1", "{rf}");
    assert_eq!(cells(&rf, 1)[2].parse::<f64>().unwrap(), 0.9, "{rf}");
    assert_eq!(cells(&rf, 2)[0], "0", "{rf}");
    assert_eq!(cells(&rf, 2)[2].parse::<f64>().unwrap(), 0.2, "{rf}");

    // A wrong format for the file is a clean error, not a panic.
    let out = wharf(dir, &["models", "import", "--format", "sklearn-forest-json", "lr.json", "--name", "x"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("trees") && !stderr.contains("panicked"), "{stderr}");
}
