//! Registered Wharf models in a run: described in `models.toml`, loaded from a real file
//! registry by version and alias, scored in batches, summarised by a built-in.

use serde_json::{json, Value};
use wharf_core::{FileRegistry, Records, RegistryPort, WharfError};
use wharf_ml::{datasets, Trainer};
use wharf_runner::{ErrorKind, Record, Runner, RunnerConfig, Status};

const CONFIG: &str = r#"
[[model]]
model = "lead@1"
status = "active"
input = "shared"

[[model]]
model = "lead@champion"
status = "production"
input = "shared"

[model.fields.pages_viewed]
type = "int"
min = 0

[[summary]]
name = "best"
status = "active"
kind = "argmax"
field = "prob_yes"
depends_on = ["lead@1", "lead@2"]
"#;

#[test]
fn registered_models_score_by_version_and_alias_and_a_builtin_picks_the_best() {
    let dir = tempfile::tempdir().unwrap();
    let registry = FileRegistry::new(dir.path());
    let data = datasets::lead_scoring();
    let logistic = Trainer::logistic_regression().fit(&data).unwrap();
    let tree = Trainer::decision_tree().max_depth(Some(4)).fit(&data).unwrap();
    assert_eq!(registry.register(&logistic, "lead").unwrap().0, 1);
    let v2 = registry.register(&tree, "lead").unwrap();
    registry.set_alias("lead", "champion", &v2).unwrap();

    let config = RunnerConfig::from_toml_str(CONFIG, "models.toml").unwrap();
    let (models, summaries) = config.build(&registry).unwrap();
    let keys: Vec<String> = models.iter().map(|m| m.key().to_string()).collect();
    assert_eq!(keys, ["lead@1", "lead@2"], "the alias is resolved to its version number");
    assert!(models.iter().all(|m| m.status == Status::Active), "production is active");

    let mut records: Vec<Record> = (0..40).map(|i| Record::new(format!("L{i}"), data.features.row(i))).collect();
    let mut bad_level = data.features.row(0);
    bad_level.insert("source".into(), json!("carrier_pigeon"));
    records.push(Record::new("bad-level", bad_level));
    let mut bad_type = data.features.row(1);
    bad_type.insert("pages_viewed".into(), json!(2.5));
    records.push(Record::new("bad-type", bad_type));
    let mut with_extra = data.features.row(2);
    with_extra.insert("lead_id".into(), json!("L00003"));
    records.push(Record::new("extra-field", with_extra));

    let out = Runner::new(models, summaries).unwrap().run(&records, None).unwrap();
    assert_eq!(out.len(), records.len());

    for (i, record) in out.iter().enumerate().take(40) {
        let row = Records::Rows(vec![data.features.row(i)]);
        let mut best = f64::MIN;
        for (version, model) in [("1", &logistic), ("2", &tree)] {
            let value = record.results.get("lead", version).and_then(|r| r.value()).expect("a value");
            let proba = model.predict_proba(&row).unwrap();
            let expected = proba.get(0, "yes").unwrap();
            assert_eq!(
                value["prob_yes"].as_f64(),
                Some(expected),
                "record {i}, lead@{version}: the model's own P(yes)"
            );
            assert_eq!(value["prediction"], json!(proba.classes[proba.argmax()[0] as usize]));
            best = best.max(expected);
        }
        let summary = record.results.get("best", "1").and_then(|r| r.value()).expect("summary value");
        assert_eq!(summary["value"].as_f64(), Some(best), "argmax picks the higher P(yes)");
        assert_eq!(summary["model"], json!("lead"));
    }

    let error = |id: &str, name: &str, version: &str| {
        let record = out.iter().find(|r| r.id == id).unwrap();
        record.results.get(name, version).and_then(|r| r.error_ref()).cloned()
    };
    let level = error("bad-level", "lead", "1").expect("an unknown level is refused");
    assert_eq!((level.kind, level.at.as_deref()), (ErrorKind::InvalidField, Some("source")));
    assert!(level.message.contains("carrier_pigeon"), "{}", level.message);
    // The signature only says "numeric"; the configuration tightened lead@2 to an int.
    assert!(error("bad-type", "lead", "1").is_none(), "2.5 is a fine number for lead@1");
    let typed = error("bad-type", "lead", "2").expect("lead@2 wants an int");
    assert_eq!(typed.at.as_deref(), Some("pages_viewed"));
    assert_eq!(error("bad-type", "best", "1").map(|e| e.kind), Some(ErrorKind::DependencyFailed));
    // A field the model does not take rides along unharmed.
    assert!(error("extra-field", "lead", "1").is_none() && error("extra-field", "lead", "2").is_none());
}

#[test]
fn configuration_mistakes_name_the_key() {
    let err = |text: &str| RunnerConfig::from_toml_str(text, "models.toml").unwrap_err().to_string();
    let unknown = err("[[model]]\nmodel = \"lead@1\"\nstatuss = \"active\"\n");
    assert!(unknown.contains("statuss") && unknown.contains("models.toml") && unknown.contains("line 3"), "{unknown}");
    let status = err("[[model]]\nmodel = \"lead@1\"\nstatus = \"retired\"\n");
    assert!(status.contains("retired"), "{status}");
    let kind = err("[[summary]]\nname = \"s\"\nkind = \"median\"\nfield = \"x\"\ndepends_on = [\"a@1\"]\n");
    assert!(kind.contains("median"), "{kind}");
    assert!(err("").contains("no [[model]]"));

    let dir = tempfile::tempdir().unwrap();
    let registry = FileRegistry::new(dir.path());
    let config = RunnerConfig::from_toml_str("[[model]]\nmodel = \"nobody@1\"\n", "models.toml").unwrap();
    assert!(matches!(config.build(&registry), Err(WharfError::NotFound { .. })));
    let deps = RunnerConfig::from_toml_str(
        "[[summary]]\nname = \"s\"\nkind = \"max\"\nfield = \"x\"\ndepends_on = [\"no-version\"]\n",
        "models.toml",
    )
    .unwrap();
    let text = deps.build(&registry).unwrap_err().to_string();
    assert!(text.contains("summary[0].depends_on") && text.contains("no-version"), "{text}");
}

#[test]
fn builtin_summaries_compute_and_explain_bad_inputs() {
    use wharf_runner::{Builtin, InputSource, ModelSpec, SummarySpec};
    let constant = |name: &str, value: Value| {
        ModelSpec::from_fn(name, "1", move |_| Ok(json!({ "score": value.clone() })))
            .input(InputSource::Shared)
            .status(Status::Active)
    };
    let models = vec![constant("a", json!(0.2)), constant("b", json!(0.9)), constant("c", json!(0.4))];
    let deps = [("a", "1"), ("b", "1"), ("c", "1")];
    let summary = |name: &str, kind: Builtin, field: &str| {
        SummarySpec::builtin(name, "1", deps, kind, field).status(Status::Active)
    };
    let summaries = vec![
        summary("max", Builtin::Max, "score"),
        summary("min", Builtin::Min, "score"),
        summary("mean", Builtin::Mean, "score"),
        summary("sum", Builtin::Sum, "score"),
        summary("missing", Builtin::Max, "nope"),
    ];
    let out = wharf_runner::run_all(&[Record::new("1", Default::default())], &models, &summaries, None).unwrap();
    let get = |name: &str| out[0].results.get(name, "1").cloned().unwrap().into_result();
    assert_eq!(Value::Object(get("max").unwrap()), json!({"value": 0.9, "model": "b", "version": "1"}));
    assert_eq!(Value::Object(get("min").unwrap()), json!({"value": 0.2, "model": "a", "version": "1"}));
    let mean = get("mean").unwrap()["value"].as_f64().unwrap();
    assert!((mean - 0.5).abs() < 1e-12, "{mean}");
    let sum = get("sum").unwrap()["value"].as_f64().unwrap();
    assert!((sum - 1.5).abs() < 1e-12, "{sum}");
    let missing = get("missing").unwrap_err();
    assert!(missing.message.contains("a@1 has no output field 'nope'"), "{}", missing.message);
}

/// `build_with` loads each model onto a server of its own from the factory it is given (the
/// container's, in `wharf run-models`), and the results come from those servers.
#[test]
fn build_with_scores_on_servers_from_the_factory() {
    use std::sync::{Arc, Mutex};
    use wharf_core::{LocalModelServer, ModelServerPort, ModelServers};

    let dir = tempfile::tempdir().unwrap();
    let registry = FileRegistry::new(dir.path());
    let data = datasets::lead_scoring();
    registry.register(&Trainer::logistic_regression().fit(&data).unwrap(), "lead").unwrap();
    registry.register(&Trainer::decision_tree().max_depth(Some(3)).fit(&data).unwrap(), "lead").unwrap();
    let made: Arc<Mutex<Vec<Arc<LocalModelServer>>>> = Arc::default();
    let keep = made.clone();
    let servers = ModelServers::new("recording", move || {
        let server = Arc::new(LocalModelServer::new());
        keep.lock().unwrap().push(server.clone());
        Ok(server as Arc<dyn ModelServerPort>)
    });
    let config = "[[model]]\nmodel = \"lead@1\"\nstatus = \"active\"\ninput = \"shared\"\n\n\
                  [[model]]\nmodel = \"lead@2\"\nstatus = \"active\"\ninput = \"shared\"\n";
    let (models, summaries) =
        RunnerConfig::from_toml_str(config, "models.toml").unwrap().build_with(&registry, &servers).unwrap();
    let made = made.lock().unwrap().clone();
    assert_eq!(made.len(), 2, "one server per model");

    // Swap a model with the opposite behaviour into the first server: lead@1's results follow.
    let records: Vec<Record> = (0..20).map(|i| Record::new(format!("L{i}"), data.features.row(i))).collect();
    let runner = Runner::new(models, summaries).unwrap();
    let p = |out: &[wharf_runner::RecordResult], version: &str| -> Vec<f64> {
        out.iter()
            .map(|r| r.results.get("lead", version).and_then(|v| v.value()).unwrap()["prob_yes"].as_f64().unwrap())
            .collect()
    };
    let before = runner.run(&records, None).unwrap();
    let want = made[0].predict_proba(&Records::Columns(data.features.take(&(0..20).collect::<Vec<_>>()))).unwrap();
    let expected: Vec<f64> = (0..20).map(|i| want.get(i, "yes").unwrap()).collect();
    assert_eq!(p(&before, "1"), expected);
    made[0].load(Trainer::decision_tree().max_depth(Some(1)).fit(&data).unwrap()).unwrap();
    let after = runner.run(&records, None).unwrap();
    assert_ne!(p(&after, "1"), p(&before, "1"), "lead@1 scores on the factory's server");
    assert_eq!(p(&after, "2"), p(&before, "2"), "lead@2 has a server of its own");
}
