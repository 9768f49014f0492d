//! MLflow's own conventions, through the real binary and a real MLflow server: the
//! `MLFLOW_TRACKING_URI` and `MLFLOW_EXPERIMENT_NAME` variables, and the `mlflow.*` source
//! tags MLflow's client sets on the runs it creates.
#![cfg(feature = "mlflow")]

mod common;

use std::time::Duration;

use common::Sandbox;
use wharf::mlflow::client::MlflowClient;

const COMMIT: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

#[test]
fn mlflow_s_variables_choose_the_server_and_experiment_and_runs_carry_their_source() {
    let Some(uri) = common::backend("WHARF_TEST_MLFLOW_URI") else { return };
    let s = Sandbox::with_leads();
    // Only the backend is Wharf's configuration; where MLflow is comes from MLflow's variables.
    s.write("wharf.toml", "[tracking]\nbackend = \"mlflow\"\n");
    // The sandbox is a git checkout (as git lays one out), at a known commit.
    std::fs::create_dir_all(s.path(".git/refs/heads")).unwrap();
    s.write(".git/HEAD", "ref: refs/heads/main\n");
    s.write(".git/refs/heads/main", format!("{COMMIT}\n"));
    let experiment = format!(
        "wharf-env-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros()
    );

    let train =
        ["train", "--input", "leads.csv", "--target", "converted", "--id", "lead_id", "--name", "lead", "--json"];
    let out = s
        .command(&train)
        .env("MLFLOW_TRACKING_URI", &uri)
        .env("MLFLOW_EXPERIMENT_NAME", &experiment)
        .env("USER", "ada")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let trained: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let run_id = trained["run_id"].as_str().unwrap();

    let client = MlflowClient::new(&uri, Duration::from_secs(30)).unwrap();
    let run = client.get_run(run_id).unwrap();
    let exp = client.get_experiment_by_name(&experiment).unwrap();
    assert_eq!(run.info.experiment_id, exp.experiment_id, "the run went to MLFLOW_EXPERIMENT_NAME");
    let tag = |key: &str| run.data.tags.iter().find(|t| t.key == key).map(|t| t.value.clone());
    assert_eq!(tag("mlflow.user").as_deref(), Some("ada"));
    assert_eq!(tag("mlflow.source.name").as_deref(), Some("wharf"));
    assert_eq!(tag("mlflow.source.type").as_deref(), Some("LOCAL"));
    assert_eq!(tag("mlflow.source.git.commit").as_deref(), Some(COMMIT));

    // The data is a dataset input of the run, as MLflow's UI lists it: the rows trained on
    // and the held-out rows, each with its fingerprint and row count.
    let inputs = &run.inputs.dataset_inputs;
    let context = |i: &wharf::mlflow::client::DatasetInputEntry| {
        i.tags.iter().find(|t| t.key == "mlflow.data.context").map(|t| t.value.clone()).unwrap_or_default()
    };
    let mut seen: Vec<(String, String, String)> = inputs
        .iter()
        .map(|i| (context(i), i.dataset.name.clone(), i.dataset.profile.clone().unwrap_or_default()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("evaluation".to_string(), "leads.csv".to_string(), r#"{"num_rows":60}"#.to_string()),
            ("training".to_string(), "leads.csv".to_string(), r#"{"num_rows":240}"#.to_string()),
        ],
        "{inputs:?}"
    );
    assert!(inputs.iter().all(|i| i.dataset.digest.len() == 36 && i.dataset.source_type == "local"));

    // Wharf's own key wins over MLflow's variable.
    let own = format!("{experiment}-own");
    s.write("wharf.toml", format!("[tracking]\nbackend = \"mlflow\"\n[tracking.mlflow]\nexperiment = \"{own}\"\n"));
    let out =
        s.command(&train).env("MLFLOW_TRACKING_URI", &uri).env("MLFLOW_EXPERIMENT_NAME", &experiment).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let trained: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = client.get_run(trained["run_id"].as_str().unwrap()).unwrap();
    assert_eq!(run.info.experiment_id, client.get_experiment_by_name(&own).unwrap().experiment_id);
}
