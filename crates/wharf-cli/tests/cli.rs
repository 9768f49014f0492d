//! The `wharf` binary end to end: each test runs it in a fresh directory with no `WHARF_*`
//! variables, so only the defaults (and what the test writes there) are in force.

mod common;

use common::Sandbox;
use serde_json::Value;

/// A CSV file's header and records.
fn read_csv(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().expect("header").iter().map(str::to_string).collect();
    let rows = reader.records().map(|r| r.expect("record").iter().map(str::to_string).collect()).collect();
    (header, rows)
}

fn number(cell: &str) -> f64 {
    cell.parse().unwrap_or_else(|_| panic!("'{cell}' is not a number"))
}

#[test]
fn train_registers_version_1_then_version_2_on_the_default_stores() {
    let s = Sandbox::with_leads();
    let first = s.train_lead();
    assert!(first.contains("lead version 1"), "{first}");
    assert!(first.contains("accuracy"), "the holdout metrics are shown:\n{first}");
    assert!(first.contains("Tracking run"), "{first}");
    let second = s.train_lead();
    assert!(second.contains("lead version 2"), "{second}");

    // The defaults put everything in the current directory.
    assert!(s.path("wharf-registry/lead/versions/2/model.wharf").is_file());
    assert!(s.path("wharf-runs").is_dir());
    assert_eq!(s.read("wharf-lineage.jsonl").lines().count(), 4, "START and COMPLETE per job");
}

#[test]
fn train_json_reports_metrics_rows_and_run() {
    let s = Sandbox::with_leads();
    // No --name: the file stem names the model.
    let v =
        s.json(&["train", "--input", "leads.csv", "--target", "converted", "--id", "lead_id", "--alias", "champion"]);
    assert_eq!(v["name"], "leads");
    assert_eq!(v["version"], 1);
    let accuracy = v["metrics"]["accuracy"].as_f64().expect("metrics.accuracy");
    assert!((0.0..=1.0).contains(&accuracy));
    assert!(accuracy > 0.6, "a logistic model beats chance on this data: {accuracy}");
    let (train, test) = (v["rows_train"].as_u64().expect("rows_train"), v["rows_test"].as_u64().expect("rows_test"));
    assert_eq!(train + test, 300);
    assert_eq!(test, 60);
    assert!(!v["run_id"].as_str().expect("run_id").is_empty());
    assert_eq!(v["aliases"], serde_json::json!(["champion"]));
}

#[test]
fn quiet_train_prints_only_the_reference() {
    let s = Sandbox::with_leads();
    let out =
        s.ok(&["train", "-q", "--input", "leads.csv", "--target", "converted", "--id", "lead_id", "--name", "lead"]);
    assert_eq!(out, "lead@1\n");
}

#[test]
fn predict_csv_writes_ids_prediction_and_probabilities() {
    let s = Sandbox::with_leads();
    s.train_lead();
    let out = s.ok(&["predict", "--model", "lead", "--input", "new.csv", "--output", "scored.csv", "--id", "lead_id"]);
    assert!(out.contains("40") && out.contains("lead@1") && out.contains("scored.csv"), "{out}");

    let (header, rows) = read_csv(&s.read("scored.csv"));
    // `predict` is `score`: one output layout, the model and its version on every row.
    assert_eq!(header.join(","), "lead_id,prediction,prob_no,prob_yes,model,model_version");
    let (_, input) = read_csv(&s.read("new.csv"));
    assert_eq!(rows.len(), input.len());
    for (row, original) in rows.iter().zip(&input) {
        assert_eq!(row[0], original[0], "ids are copied in order");
        let (no, yes) = (number(&row[2]), number(&row[3]));
        assert!((no + yes - 1.0).abs() < 1e-9, "probabilities sum to 1: {row:?}");
        assert_eq!(row[1], if yes > no { "yes" } else { "no" }, "the prediction is the likelier class: {row:?}");
    }
}

#[test]
fn predict_jsonl_in_and_out() {
    let s = Sandbox::with_leads();
    s.train_lead();
    // JSON objects built from the CSV rows, with an extra field the model does not take.
    let (header, rows) = read_csv(&s.read("new.csv"));
    let text_fields = ["lead_id", "source", "industry", "converted"];
    let mut jsonl = String::new();
    for row in &rows {
        let object: serde_json::Map<String, Value> = header
            .iter()
            .zip(row)
            .map(|(k, v)| {
                let value =
                    if text_fields.contains(&k.as_str()) { Value::from(v.as_str()) } else { Value::from(number(v)) };
                (k.clone(), value)
            })
            .collect();
        jsonl.push_str(&Value::Object(object).to_string());
        jsonl.push('\n');
    }
    s.write("new.jsonl", jsonl);

    s.ok(&["predict", "--model", "lead@1", "--input", "new.jsonl", "--output", "scored.jsonl", "--id", "lead_id"]);
    let lines: Vec<Value> =
        s.read("scored.jsonl").lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert_eq!(lines.len(), rows.len());
    for (line, row) in lines.iter().zip(&rows) {
        assert_eq!(line["lead_id"], row[0].as_str());
        let p = line["prob_no"].as_f64().expect("prob_no") + line["prob_yes"].as_f64().expect("prob_yes");
        assert!((p - 1.0).abs() < 1e-9);
        assert!(matches!(line["prediction"].as_str(), Some("yes" | "no")));
    }

    // The same records as CSV give the same scores.
    s.ok(&["predict", "--model", "lead", "--input", "new.csv", "--output", "scored.csv", "--id", "lead_id"]);
    let (_, csv_rows) = read_csv(&s.read("scored.csv"));
    for (line, row) in lines.iter().zip(&csv_rows) {
        assert!((line["prob_yes"].as_f64().expect("prob_yes") - number(&row[3])).abs() < 1e-12);
    }
}

#[test]
fn a_malformed_jsonl_line_is_named() {
    let s = Sandbox::with_leads();
    s.train_lead();
    s.write("bad.jsonl", "{\"lead_id\": \"a\"}\n{\"lead_id\": oops}\n");
    let err = s.error(&["predict", "--model", "lead", "--input", "bad.jsonl", "--output", "out.jsonl"]);
    assert!(err.contains("line 2"), "{err}");
    assert!(!s.path("out.jsonl").exists());
}

#[test]
fn a_bad_value_is_located_in_the_input_file() {
    let s = Sandbox::with_leads();
    s.train_lead();
    s.write("bad.jsonl", "\n{\"source\":\"organic\",\"industry\":\"health\",\"pages_viewed\":\"many\",\"minutes_on_site\":1,\"emails_opened\":1,\"company_size\":5,\"days_since_signup\":3}\n");
    let err = s.error(&["predict", "--model", "lead", "--input", "bad.jsonl", "--output", "out.csv"]);
    assert!(err.contains("line 2") && err.contains("pages_viewed"), "{err}");
}

#[test]
fn predict_id_columns_must_exist() {
    let s = Sandbox::with_leads();
    s.train_lead();
    let err = s.error(&["predict", "--model", "lead", "--input", "new.csv", "--output", "o.csv", "--id", "customer"]);
    assert!(err.contains("customer"), "{err}");
}

#[test]
fn models_list_json_lists_the_model() {
    let s = Sandbox::with_leads();
    assert_eq!(s.json(&["models", "list"]), serde_json::json!([]));
    s.train_lead();
    s.train_lead();
    let list = s.json(&["models", "list"]);
    let models = list.as_array().expect("array");
    assert_eq!(models.len(), 1);
    assert_eq!(models[0]["name"], "lead");
    assert_eq!(models[0]["latest_version"], 2);
    assert_eq!(models[0]["versions"], serde_json::json!([1, 2]));
    assert_eq!(models[0]["algorithm"], "logistic");
    assert!(models[0]["metrics"]["accuracy"].is_f64());

    let table = s.ok(&["models", "list"]);
    assert!(table.contains("lead") && table.contains("logistic") && table.contains("accuracy"), "{table}");
}

#[test]
fn an_alias_selects_the_model_to_predict_with() {
    let s = Sandbox::with_leads();
    s.train_lead();
    s.train_lead();
    s.ok(&["models", "alias", "lead", "champion", "1"]);
    let out = s.ok(&["predict", "--model", "lead@champion", "--input", "new.csv", "--output", "o.csv"]);
    assert!(out.contains("lead@1"), "{out}");
    let v = s.json(&["predict", "--model", "lead@champion", "--input", "new.csv", "--output", "o.csv"]);
    assert_eq!(v["version"], 1);
    assert_eq!(v["rows"], 40);

    s.ok(&["models", "alias", "lead", "champion", "2"]);
    let v = s.json(&["predict", "--model", "lead@champion", "--input", "new.csv", "--output", "o.csv"]);
    assert_eq!(v["version"], 2);
    assert!(s.ok(&["models", "show", "lead@2"]).contains("champion"));

    s.ok(&["models", "alias", "lead", "champion", "--delete"]);
    let err = s.error(&["predict", "--model", "lead@champion", "--input", "new.csv", "--output", "o.csv"]);
    assert!(err.contains("champion"), "{err}");
    s.error(&["models", "alias", "lead", "champion", "--delete"]);
    s.error(&["models", "alias", "lead", "champion", "7"]);
}

#[test]
fn models_show_lists_the_signature() {
    let s = Sandbox::with_leads();
    s.train_lead();
    let out = s.ok(&["models", "show", "lead"]);
    for expected in ["lead@1", "sha256", "logistic", "classification", "no, yes", "pages_viewed", "numeric"] {
        assert!(out.contains(expected), "missing {expected}:\n{out}");
    }
    assert!(out.contains("categorical") && out.contains("cold_email"), "levels are shown:\n{out}");
    assert!(!out.contains("lead_id"), "ids are not features:\n{out}");

    let v = s.json(&["models", "show", "lead@1"]);
    assert_eq!(v["version"], 1);
    assert_eq!(v["signature"]["features"].as_array().expect("features").len(), 7);
    assert_eq!(v["signature"]["classes"], serde_json::json!(["no", "yes"]));
}

#[test]
fn models_delete_removes_a_version_and_its_aliases() {
    let s = Sandbox::with_leads();
    s.train_lead();
    s.train_lead();
    s.ok(&["models", "alias", "lead", "old", "1"]);
    let out = s.ok(&["models", "delete", "lead", "1"]);
    assert!(out.contains("old"), "the removed alias is named:\n{out}");
    let list = s.json(&["models", "list"]);
    assert_eq!(list[0]["versions"], serde_json::json!([2]));
    assert_eq!(list[0]["aliases"], serde_json::json!({}));
    s.error(&["models", "show", "lead@1"]);
    s.error(&["models", "delete", "lead", "1"]);
    // Versions are never reused.
    assert!(s.train_lead().contains("lead version 3"));
}

#[test]
fn a_corrupted_artifact_is_a_one_line_error() {
    let s = Sandbox::with_leads();
    s.train_lead();
    s.write("wharf-registry/lead/versions/1/model.wharf", b"this is not a model, just garbage bytes");
    let err = s.error(&["predict", "--model", "lead", "--input", "new.csv", "--output", "o.csv"]);
    assert!(err.contains("model.wharf"), "the file is named: {err}");
    assert!(!s.path("o.csv").exists(), "no output on failure");

    // Flipped bytes in an otherwise valid artifact are caught too.
    s.train_lead();
    let path = s.path("wharf-registry/lead/versions/2/model.wharf");
    let mut bytes = std::fs::read(&path).expect("artifact");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).expect("write");
    s.error(&["predict", "--model", "lead@2", "--input", "new.csv", "--output", "o.csv"]);
}

#[test]
fn a_missing_target_column_is_named() {
    let s = Sandbox::with_leads();
    let err = s.error(&["train", "--input", "leads.csv", "--target", "churned"]);
    assert!(err.contains("churned"), "{err}");
    let err = s.error(&["train", "--input", "nowhere.csv", "--target", "churned"]);
    assert!(err.contains("nowhere.csv"), "{err}");
}

#[test]
fn an_id_column_trained_as_a_feature_gets_a_warning() {
    let s = Sandbox::with_leads();
    // Without --id, lead_id becomes a categorical feature with a level per row: it trains
    // (the split keeps every level known) but the user is told it looks like an id.
    let out = s.run(&["train", "--input", "leads.csv", "--target", "converted"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.lines().any(|l| l.starts_with("warning: ") && l.contains("--id lead_id")), "{stderr}");
    // --quiet silences the warning.
    let out = s.run(&["train", "-q", "--input", "leads.csv", "--target", "converted"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"));
}

#[test]
fn usage_errors_exit_2() {
    let s = Sandbox::with_leads();
    let err = s.fails(&["train", "--input", "leads.csv"], 2);
    assert!(err.contains("--target"), "{err}");
    s.fails(&["train", "--input", "leads.csv", "--target", "converted", "--algorithm", "svm"], 2);
    s.fails(&["train", "--input", "leads.csv", "--target", "converted", "--trees", "10"], 2);
    s.fails(&["train", "--input", "leads.csv", "--target", "converted", "--holdout", "1"], 2);
    s.fails(&["predict", "--model", "bad name", "--input", "new.csv", "--output", "o.csv"], 2);
    s.fails(&["models", "alias", "lead", "champion"], 2);
    s.fails(&["models", "alias", "lead", "latest", "1"], 2);
    s.fails(&["frobnicate"], 2);
    // A file type the CLI does not read is a runtime error.
    s.error(&["predict", "--model", "lead", "--input", "new.csv", "--output", "o.parquet"]);
}

#[test]
fn linear_regression_predicts_values() {
    let s = Sandbox::new();
    s.write("diabetes.csv", wharf::datasets::DIABETES_CSV);
    let v = s.json(&["train", "--input", "diabetes.csv", "--target", "progression", "--algorithm", "linear"]);
    assert_eq!(v["name"], "diabetes");
    assert!(v["metrics"]["r2"].as_f64().expect("r2") > 0.2);
    s.ok(&["predict", "--model", "diabetes", "--input", "diabetes.csv", "--output", "scored.csv"]);
    let (header, rows) = read_csv(&s.read("scored.csv"));
    assert_eq!(header, ["prediction", "model", "model_version"]);
    assert_eq!(rows.len(), 442);
    let mean = rows.iter().map(|r| number(&r[0])).sum::<f64>() / rows.len() as f64;
    assert!((50.0..300.0).contains(&mean), "predictions are on the target's scale: {mean}");
}

#[test]
fn kmeans_assigns_clusters() {
    let s = Sandbox::new();
    s.write("iris.csv", wharf::datasets::IRIS_CSV);
    let v = s.json(&["train", "--input", "iris.csv", "--drop", "species", "--algorithm", "kmeans", "--k", "3"]);
    assert_eq!(v["rows_train"], 150);
    assert_eq!(v["rows_test"], 0);
    assert_eq!(v["task"], "clustering");
    s.ok(&["predict", "--model", "iris", "--input", "iris.csv", "--output", "clusters.jsonl"]);
    let clusters: Vec<u64> = s
        .read("clusters.jsonl")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON")["prediction"].as_u64().expect("cluster"))
        .collect();
    assert_eq!(clusters.len(), 150);
    assert!(clusters.iter().all(|c| *c < 3));
    let distinct: std::collections::BTreeSet<_> = clusters.iter().collect();
    assert_eq!(distinct.len(), 3);
}

#[test]
fn doctor_shows_the_setup() {
    let s = Sandbox::new();
    let out = s.ok(&["doctor"]);
    for expected in ["registry", "wharf-registry", "tracking.backend", "mlflow", "Cargo features"] {
        assert!(out.contains(expected), "missing {expected}:\n{out}");
    }
    let v = s.json(&["doctor"]);
    assert_eq!(v["ok"], true);
    assert!(v["config_toml"].as_str().expect("config").contains("[registry]"));
    assert_eq!(v["container"].as_array().expect("container").len(), 4);
}

#[test]
fn an_unknown_config_key_is_named() {
    let s = Sandbox::with_leads();
    s.write("wharf.toml", "[tracking]\nbackendd = \"x\"\n");
    let err = s.error(&["doctor"]);
    assert!(err.contains("tracking.backendd"), "{err}");
    let err = s.error(&["train", "--input", "leads.csv", "--target", "converted"]);
    assert!(err.contains("tracking.backendd"), "{err}");
    assert!(!s.path("wharf-registry").exists(), "nothing was trained");
}

#[test]
fn the_environment_configures_the_stores() {
    let s = Sandbox::with_leads();
    let out = s
        .command(&["train", "--input", "leads.csv", "--target", "converted", "--id", "lead_id", "--name", "lead"])
        .env("WHARF_REGISTRY__DIR", "models")
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(s.path("models/lead/versions/1/model.wharf").is_file());
    assert!(!s.path("wharf-registry").exists());
}

#[test]
fn version_prints_the_versions() {
    let s = Sandbox::new();
    let out = s.ok(&["version"]);
    assert!(out.contains(&format!("wharf {}", env!("CARGO_PKG_VERSION"))), "{out}");
    assert!(out.contains("artifact format"), "{out}");
    assert!(out.contains("linfa"), "{out}");
    let v = s.json(&["version"]);
    assert_eq!(v["wharf"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["artifact_format"], wharf::artifact::FORMAT_VERSION);
}

/// Several processes registering the same model name at once get distinct, consecutive
/// versions: the registry's file lock serialises them across processes, not just threads.
#[test]
fn concurrent_processes_register_distinct_versions() {
    let s = Sandbox::with_leads();
    let args =
        ["train", "--input", "leads.csv", "--target", "converted", "--id", "lead_id", "--name", "race", "--json"];
    let children: Vec<_> = (0..4)
        .map(|_| {
            s.command(&args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let mut versions: Vec<u64> = children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().expect("wait");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let v: Value = serde_json::from_slice(&out.stdout).expect("json");
            v["version"].as_u64().or_else(|| v["version"].as_str().and_then(|s| s.parse().ok())).expect("version")
        })
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, [1, 2, 3, 4]);
    let listed = s.json(&["models", "show", "race@latest"]);
    assert_eq!(listed["version"].as_u64().or_else(|| listed["version"].as_str().and_then(|s| s.parse().ok())), Some(4));
}

/// Batch scoring is recorded in lineage: START then COMPLETE of `score-<model>`, reading the
/// input file and the exact model version, writing the output file.
#[test]
fn predict_emits_lineage() {
    let s = Sandbox::with_leads();
    s.ok(&["train", "-q", "--input", "leads.csv", "--target", "converted", "--id", "lead_id", "--name", "lead"]);
    s.ok(&["predict", "-q", "--model", "lead", "--input", "new.csv", "--output", "scored.csv", "--id", "lead_id"]);
    let events: Vec<Value> =
        s.read("wharf-lineage.jsonl").lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    let scoring: Vec<&Value> = events.iter().filter(|e| e["name"] == "score-lead").collect();
    assert_eq!(scoring.len(), 2, "{events:?}");
    assert_eq!(scoring[0]["event_type"], "START");
    assert_eq!(scoring[1]["event_type"], "COMPLETE");
    assert_eq!(scoring[0]["run_id"], scoring[1]["run_id"]);
    assert_eq!(scoring[1]["inputs"], serde_json::json!(["file:new.csv", "registry:lead/1"]));
    assert_eq!(scoring[1]["outputs"], serde_json::json!(["file:scored.csv"]));
    assert_eq!(scoring[1]["metadata"]["rows"], 40);

    // A failing scoring run ends FAIL with the error.
    s.write("bad.csv", "lead_id,source\nL1,organic\n");
    s.fails(&["predict", "--model", "lead", "--input", "bad.csv", "--output", "out.csv"], 1);
    let last: Value = serde_json::from_str(s.read("wharf-lineage.jsonl").lines().last().expect("line")).expect("json");
    assert_eq!(last["event_type"], "FAIL");
    assert!(last["metadata"]["error"].as_str().unwrap_or_default().contains("missing"), "{last}");
}

#[test]
fn gbdt_logs_its_learning_curve_by_round_and_shows_feature_importance() {
    let s = Sandbox::with_leads();
    let v = s.json(&[
        "train",
        "--input",
        "leads.csv",
        "--target",
        "converted",
        "--id",
        "lead_id",
        "--name",
        "boost",
        "--algorithm",
        "gbdt",
        "--trees",
        "8",
        "--min-samples-leaf",
        "5",
        "--validation-fraction",
        "0.2",
        "--patience",
        "50",
    ]);
    assert_eq!(v["algorithm"], "gbdt");
    let run = v["run_id"].as_str().expect("run_id");
    let metrics = s.read(&format!("wharf-runs/{run}/metrics.jsonl"));
    let steps = |key: &str| -> Vec<u64> {
        metrics
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("a metric line"))
            .filter(|m| m["key"] == key)
            .map(|m| m["step"].as_u64().expect("step"))
            .collect()
    };
    assert_eq!(steps("train_loss"), (1..=8).collect::<Vec<_>>(), "{metrics}");
    assert_eq!(steps("validation_loss"), (1..=8).collect::<Vec<_>>(), "{metrics}");
    let show = s.ok(&["models", "show", "boost"]);
    assert!(show.contains("Feature importance"), "{show}");
    assert!(!show.contains("feature_importance_gain"), "a table, not a tag:\n{show}");
}

#[test]
fn gbdt_regressor_takes_a_robust_loss_and_refuses_it_elsewhere() {
    let s = Sandbox::with_leads();
    let train = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<&str> =
            vec!["train", "--input", "leads.csv", "--target", "minutes_on_site", "--id", "lead_id", "--trees", "5"];
        args.extend_from_slice(extra);
        args.iter().map(|a| a.to_string()).collect()
    };
    let args = train(&["--name", "minutes", "--algorithm", "gbdt-regressor", "--loss", "huber", "--huber-delta", "4"]);
    let v = s.json(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let run = s.read(&format!("wharf-runs/{}/run.json", v["run_id"].as_str().expect("run_id")));
    let run: Value = serde_json::from_str(&run).expect("run.json");
    assert_eq!((run["params"]["loss"].as_str(), run["params"]["huber_delta"].as_str()), (Some("huber"), Some("4")));
    assert_eq!(run["params"]["quantized_gradients"].as_str(), Some("true"), "quantized by default");
    let args = train(&["--name", "exact", "--algorithm", "gbdt-regressor", "--exact-gradients"]);
    let v = s.json(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let run = s.read(&format!("wharf-runs/{}/run.json", v["run_id"].as_str().expect("run_id")));
    let run: Value = serde_json::from_str(&run).expect("run.json");
    assert_eq!(run["params"]["quantized_gradients"].as_str(), Some("false"));

    for (extra, says) in [
        (&["--algorithm", "gbdt", "--loss", "absolute_error"][..], "--loss applies to --algorithm gbdt-regressor only"),
        (&["--algorithm", "gbdt-regressor", "--huber-delta", "2"][..], "--huber-delta applies to --loss huber only"),
        (&["--algorithm", "gbdt-regressor", "--loss", "quantile"][..], "'quantile' is not squared_error"),
        (&["--algorithm", "random-forest", "--exact-gradients"][..], "--exact-gradients applies to --algorithm gbdt"),
        (
            &["--algorithm", "gbdt-regressor", "--loss", "huber", "--huber-delta", "0"][..],
            "'0' is not a positive number",
        ),
    ] {
        let args = train(extra);
        let stderr = s.fails(&args.iter().map(String::as_str).collect::<Vec<_>>(), 2);
        assert!(stderr.contains(says), "{extra:?}: {stderr}");
    }
}
