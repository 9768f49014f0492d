//! The scoring commands on BentoML (feature `bentoml`): with `serving.backend = "bentoml"`
//! set in the environment, `wharf score`, `wharf run-models` and `wharf sql` score on the
//! BentoML test service that `cargo xtask test` starts, with no other change. Rows out equal
//! the service's model's own answers, and a row that breaks the model's signature is refused
//! here, before any request leaves (the service URL then points at a closed port).
#![cfg(feature = "bentoml")]

mod common;

use std::process::Output;

use common::{backend, Sandbox};
use serde_json::Value;

/// A sandbox with `iris` registered: a Wharf model with the signature the test service
/// expects (four numeric features in its order, classes setosa/versicolor/virginica, which
/// are the service's class ids 0/1/2). Its own weights are never used here.
fn with_iris_model() -> Sandbox {
    let s = Sandbox::new();
    s.write("iris.csv", wharf::datasets::IRIS_CSV);
    s.ok(&["-q", "train", "--input", "iris.csv", "--target", "species", "--name", "iris"]);
    let v = s.json(&["models", "show", "iris"]);
    assert_eq!(v["signature"]["classes"], serde_json::json!(["setosa", "versicolor", "virginica"]));
    s
}

/// Runs `wharf` with the BentoML backend at `url`, configured only through the environment.
fn on_bentoml(s: &Sandbox, url: &str, args: &[&str]) -> Output {
    s.command(args)
        .env("WHARF_SERVING__BACKEND", "bentoml")
        .env("WHARF_SERVING__BENTOML__URL", url)
        // A closed port must fail at once, not after the default retries.
        .env("WHARF_SERVING__BENTOML__RETRIES", "0")
        .output()
        .expect("run wharf")
}

fn stdout_json(out: &Output, what: &str) -> Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed ({}):\n{stderr}", out.status);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{what}: not JSON ({e})"))
}

/// The fixture's inputs and sklearn's answers for them (what `save_model.py` wrote).
struct Known {
    inputs: Vec<Vec<f64>>,
    predictions: Vec<usize>,
    probabilities: Vec<Vec<f64>>,
}

fn known() -> Known {
    let path = std::env::var("WHARF_TEST_BENTOML_KNOWN").expect("WHARF_TEST_BENTOML_KNOWN is set with the URL");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let json: Value = serde_json::from_str(&text).expect("known outputs are JSON");
    let features: Vec<&str> = json["features"].as_array().expect("features").iter().filter_map(Value::as_str).collect();
    assert_eq!(features, ["sepal_length", "sepal_width", "petal_length", "petal_width"], "fixture feature order");
    let matrix = |key: &str| -> Vec<Vec<f64>> {
        json[key]
            .as_array()
            .expect(key)
            .iter()
            .map(|row| row.as_array().expect("row").iter().map(|x| x.as_f64().expect("number")).collect())
            .collect()
    };
    let predictions =
        json["predictions"].as_array().expect("predictions").iter().map(|v| v.as_u64().expect("id") as usize).collect();
    Known { inputs: matrix("inputs"), predictions, probabilities: matrix("probabilities") }
}

fn csv_rows(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().expect("header").iter().map(str::to_string).collect();
    let rows = reader.records().map(|r| r.expect("record").iter().map(str::to_string).collect()).collect();
    (header, rows)
}

#[test]
fn score_on_bentoml_equals_the_service_s_answers() {
    let Some(url) = backend("WHARF_TEST_BENTOML_URL") else { return };
    let known = known();
    let s = with_iris_model();
    let mut csv = String::from("flower,sepal_length,sepal_width,petal_length,petal_width\n");
    for (i, row) in known.inputs.iter().enumerate() {
        let cells: Vec<String> = row.iter().map(f64::to_string).collect();
        csv += &format!("f{i},{}\n", cells.join(","));
    }
    s.write("flowers.csv", csv);

    let v = stdout_json(
        &on_bentoml(
            &s,
            &url,
            &["--json", "score", "-m", "iris", "-i", "flowers.csv", "-o", "scored.csv", "--id", "flower"],
        ),
        "wharf score on bentoml",
    );
    assert_eq!(v["rows"].as_u64(), Some(known.inputs.len() as u64));
    let (header, rows) = csv_rows(&s.read("scored.csv"));
    assert_eq!(
        header,
        ["flower", "prediction", "prob_setosa", "prob_versicolor", "prob_virginica", "model", "model_version"]
    );
    assert_eq!(rows.len(), known.inputs.len());
    let classes = ["setosa", "versicolor", "virginica"];
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row[0], format!("f{i}"), "ids in input order");
        assert_eq!(row[1], classes[known.predictions[i]], "row {i}: the service's class, as a label");
        for (j, expected) in known.probabilities[i].iter().enumerate() {
            let got: f64 = row[2 + j].parse().expect("probability");
            assert!((got - expected).abs() <= 1e-9, "row {i} P({}): {got} vs the service's {expected}", classes[j]);
        }
        assert_eq!(&row[5..], ["iris", "1"]);
    }

    // The in-process model (its own weights) disagrees somewhere, so the rows above really
    // came from the service.
    s.ok(&["-q", "score", "-m", "iris", "-i", "flowers.csv", "-o", "local.csv", "--id", "flower"]);
    assert_ne!(s.read("local.csv"), s.read("scored.csv"), "local and BentoML scores differ");
}

/// `wharf run-models` on the same service: each record's stored result is the service's.
#[test]
fn run_models_on_bentoml_stores_the_service_s_answers() {
    let Some(url) = backend("WHARF_TEST_BENTOML_URL") else { return };
    let known = known();
    let s = with_iris_model();
    s.write("models.toml", "[[model]]\nmodel = \"iris@1\"\nstatus = \"active\"\ninput = \"shared\"\n");
    let names = ["sepal_length", "sepal_width", "petal_length", "petal_width"];
    let lines: Vec<String> = known
        .inputs
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let data: serde_json::Map<String, Value> =
                names.iter().map(|n| n.to_string()).zip(row.iter().map(|x| Value::from(*x))).collect();
            serde_json::json!({"id": format!("f{i}"), "data": data}).to_string()
        })
        .collect();
    s.write("records.jsonl", lines.join("\n") + "\n");
    let args = ["--json", "run-models", "-c", "models.toml", "-i", "records.jsonl", "-s", "sqlite://results.db"];
    let v = stdout_json(&on_bentoml(&s, &url, &args), "wharf run-models on bentoml");
    assert_eq!(v["ok"].as_u64(), Some(known.inputs.len() as u64));
    let store = wharf_runner::SqliteResultStore::open(s.path("results.db")).expect("results");
    let classes = ["setosa", "versicolor", "virginica"];
    for i in 0..known.inputs.len() {
        let stored = wharf_runner::ResultStore::current(&store, &format!("f{i}")).expect("read").expect("stored");
        let value = stored.results.get("iris", "1").and_then(|r| r.value()).expect("a value").clone();
        assert_eq!(value["prediction"], classes[known.predictions[i]], "record {i}");
        for (j, expected) in known.probabilities[i].iter().enumerate() {
            let got = value[&format!("prob_{}", classes[j])].as_f64().expect("probability");
            assert!((got - expected).abs() <= 1e-9, "record {i} P({}): {got} vs {expected}", classes[j]);
        }
    }
}

/// `wharf sql` on the same service: the SQL functions score there too.
#[cfg(feature = "datafusion")]
#[test]
fn sql_on_bentoml_answers_the_service_s_probabilities() {
    let Some(url) = backend("WHARF_TEST_BENTOML_URL") else { return };
    let known = known();
    let s = with_iris_model();
    let mut csv = String::from("flower,sepal_length,sepal_width,petal_length,petal_width\n");
    for (i, row) in known.inputs.iter().enumerate() {
        // `{:?}` keeps a decimal point, so every column reads as a float.
        let cells: Vec<String> = row.iter().map(|x| format!("{x:?}")).collect();
        csv += &format!("f{i},{}\n", cells.join(","));
    }
    s.write("flowers.csv", csv);
    let query = "SELECT flower, wharf_predict('iris', sepal_length, sepal_width, petal_length, petal_width) AS label, \
                 wharf_predict_proba('iris', sepal_length, sepal_width, petal_length, petal_width) AS p \
                 FROM 'flowers.csv' ORDER BY flower";
    let v = stdout_json(&on_bentoml(&s, &url, &["--json", "sql", query]), "wharf sql on bentoml");
    let rows = v.as_array().expect("rows");
    assert_eq!(rows.len(), known.inputs.len());
    let classes = ["setosa", "versicolor", "virginica"];
    for row in rows {
        let i: usize =
            row["flower"].as_str().and_then(|f| f.strip_prefix('f')).and_then(|n| n.parse().ok()).expect("id");
        assert_eq!(row["label"], classes[known.predictions[i]], "row {i}");
        for (j, expected) in known.probabilities[i].iter().enumerate() {
            let got = row["p"][classes[j]].as_f64().expect("probability");
            assert!((got - expected).abs() <= 1e-9, "row {i} P({}): {got} vs {expected}", classes[j]);
        }
    }
}

#[test]
fn a_row_that_breaks_the_signature_never_reaches_the_service() {
    // No BentoML needed: the URL points at a closed port, so any request would fail the job
    // with a connection error instead of the errors asserted here.
    let s = with_iris_model();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://127.0.0.1:{}", listener.local_addr().expect("addr").port())
    };
    let good = "5.1,3.5,1.4,0.2";
    s.write(
        "mixed.csv",
        format!("flower,sepal_length,sepal_width,petal_length,petal_width\na,{good}\nb,5.0,3.1,long,0.2\n"),
    );
    s.write(
        "bad.csv",
        "flower,sepal_length,sepal_width,petal_length,petal_width\nb,5.0,3.1,long,0.2\nc,wide,3.0,1.4,0.2\n",
    );

    // Fail: the bad row is named, with its column; nothing was sent.
    let out = on_bentoml(&s, &closed, &["score", "-m", "iris", "-i", "mixed.csv", "-o", "out.csv"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("row 2") && stderr.contains("'petal_length'") && stderr.contains("long"), "{stderr}");
    assert!(!stderr.contains("127.0.0.1"), "no request was attempted: {stderr}");
    assert!(!s.path("out.csv").exists());

    // Skip: every bad row is rejected with its reason, and with no good row left nothing is
    // sent, so the job succeeds against a service that is not there.
    let v = stdout_json(
        &on_bentoml(
            &s,
            &closed,
            &["--json", "score", "-m", "iris", "-i", "bad.csv", "-o", "out.csv", "--on-error", "skip"],
        ),
        "skip on a closed port",
    );
    assert_eq!((v["rows"].as_u64(), v["rows_rejected"].as_u64()), (Some(0), Some(2)));
    let rejects: Vec<Value> =
        s.read("out.csv.rejects.jsonl").lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    let columns: Vec<&str> = rejects.iter().filter_map(|r| r["column"].as_str()).collect();
    assert_eq!(columns, ["petal_length", "sepal_length"]);

    // And the closed port is really closed: a good row does try to reach it, and fails.
    let out =
        on_bentoml(&s, &closed, &["score", "-m", "iris", "-i", "mixed.csv", "-o", "out2.csv", "--on-error", "skip"]);
    assert_eq!(out.status.code(), Some(1), "a good row is sent, and the closed port refuses it");
    assert!(!s.path("out2.csv").exists());
}
