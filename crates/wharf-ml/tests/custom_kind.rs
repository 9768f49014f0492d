//! A model family added from outside `wharf-core` and `wharf-ml`: a toy "threshold" kind
//! (`P(high) = 1` when `x` is above a cut-off) implements `ModelKind`, registers its decoder,
//! is saved to a registry, then served by `wharf_serve` and batch-scored by `wharf_batch`
//! with no change to either.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use ndarray::Array2;
use serde_json::{json, Value};
use wharf_core::kind::{self, KindDecoder, ModelKind};
use wharf_core::{
    ArtifactError, Feature, FileRegistry, Model, ModelMetadata, NoOpLineage, Predictions, Probabilities, Records,
    RegistryExt, RegistryPort, Result, Selector, Signature, Task, WharfError,
};

const KIND: &str = "example.threshold";
const FEATURE: &str = "x";

/// The whole model: one cut-off on one numeric feature.
#[derive(Debug)]
struct Threshold {
    cut: f64,
}

impl Threshold {
    /// The feature's values, after checking the records against the signature with errors
    /// that name the record and field (`records[i].x`), as the scoring path expects.
    fn values(&self, signature: &Signature, records: &Records) -> Result<Vec<f64>> {
        let number = |v: &Value, path: String| match v {
            Value::Number(n) => n.as_f64().ok_or_else(|| WharfError::schema(path, "expected a number")),
            other => Err(WharfError::schema(path, format!("expected a number, found {other}"))),
        };
        match records {
            Records::Matrix(m) if m.ncols() == 1 => Ok(m.column(0).to_vec()),
            Records::Matrix(m) => {
                Err(WharfError::schema("records", format!("{} columns, the model takes 1", m.ncols())))
            }
            Records::Rows(rows) => rows
                .iter()
                .enumerate()
                .map(|(i, row)| {
                    if let Some(extra) = row.keys().find(|k| signature.position(k).is_none()) {
                        return Err(WharfError::schema(format!("records[{i}].{extra}"), "unknown field"));
                    }
                    let value = row
                        .get(FEATURE)
                        .ok_or_else(|| WharfError::schema(format!("records[{i}].{FEATURE}"), "missing field"))?;
                    number(value, format!("records[{i}].{FEATURE}"))
                })
                .collect(),
            Records::Columns(frame) => {
                let column = frame
                    .column(FEATURE)
                    .ok_or_else(|| WharfError::schema(format!("columns.{FEATURE}"), "missing column"))?;
                (0..column.len())
                    .map(|i| {
                        let text = column.text_at(i);
                        text.trim().parse::<f64>().map_err(|_| {
                            WharfError::schema(
                                format!("columns.{FEATURE}[{i}]"),
                                format!("expected a number, found '{text}'"),
                            )
                        })
                    })
                    .collect()
            }
            _ => Err(WharfError::Unsupported("this shape of records".into())),
        }
    }
}

impl ModelKind for Threshold {
    fn kind_id(&self) -> &str {
        KIND
    }

    fn validate(&self, signature: &Signature, records: &Records) -> Result<()> {
        self.values(signature, records).map(|_| ())
    }

    fn predict(&self, signature: &Signature, records: &Records) -> Result<Predictions> {
        let indices = self.predict_proba(signature, records)?.argmax();
        Ok(Predictions::Classes { classes: signature.classes.clone(), indices })
    }

    fn predict_proba(&self, signature: &Signature, records: &Records) -> Result<Probabilities> {
        // Classes sort as ["high", "low"].
        let x = self.values(signature, records)?;
        let values = Array2::from_shape_fn((x.len(), 2), |(i, j)| f64::from(u8::from((x[i] > self.cut) == (j == 0))));
        Ok(Probabilities { classes: signature.classes.clone(), values })
    }

    fn encode(&self) -> Result<Vec<u8>> {
        Ok(self.cut.to_le_bytes().to_vec())
    }

    fn check(&self, signature: &Signature) -> std::result::Result<(), String> {
        let expected = [Feature::numeric(FEATURE)];
        if signature.features != expected
            || signature.classes != ["high", "low"]
            || signature.task != Task::Classification
        {
            return Err("a threshold model takes one numeric feature x and classifies high/low".into());
        }
        if !self.cut.is_finite() {
            return Err("the cut-off must be finite".into());
        }
        Ok(())
    }

    fn work_per_row(&self) -> usize {
        1
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

fn decode(_: &ModelMetadata, bytes: &[u8]) -> std::result::Result<Arc<dyn ModelKind>, String> {
    let bytes: [u8; 8] =
        bytes.try_into().map_err(|_| format!("a threshold payload is 8 bytes, found {}", bytes.len()))?;
    Ok(Arc::new(Threshold { cut: f64::from_le_bytes(bytes) }))
}

/// What a crate providing a kind exports: idempotent, called before loading.
fn register() {
    kind::register(KindDecoder { id: KIND, provider: "this test", decode });
}

fn threshold_model(cut: f64) -> Model {
    let metadata = ModelMetadata {
        signature: Signature {
            features: vec![Feature::numeric(FEATURE)],
            target: Some("level".into()),
            task: Task::Classification,
            classes: vec!["high".into(), "low".into()],
        },
        algorithm: "threshold".into(),
        params: BTreeMap::from([("cut".to_string(), cut.to_string())]),
        metrics: BTreeMap::new(),
        tags: BTreeMap::new(),
        created_at: chrono::Utc::now(),
        data_fingerprint: String::new(),
        data_source: "hand-written".into(),
        library_versions: wharf_core::library_versions(),
        sample_input: vec![serde_json::from_value(json!({FEATURE: 1.0})).unwrap()],
    };
    Model::new(metadata, Arc::new(Threshold { cut })).expect("a consistent threshold model")
}

#[test]
fn an_unregistered_kind_is_a_typed_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.wharf");
    // A kind id no one registers, written through the same container.
    #[derive(Debug)]
    struct Unknown;
    impl ModelKind for Unknown {
        fn kind_id(&self) -> &str {
            "example.never-registered"
        }
        fn validate(&self, _: &Signature, _: &Records) -> Result<()> {
            Ok(())
        }
        fn predict(&self, _: &Signature, records: &Records) -> Result<Predictions> {
            Ok(Predictions::Values(vec![0.0; records.len()]))
        }
        fn encode(&self) -> Result<Vec<u8>> {
            Ok(Vec::new())
        }
        fn check(&self, _: &Signature) -> std::result::Result<(), String> {
            Ok(())
        }
        fn work_per_row(&self) -> usize {
            1
        }
        fn as_any(&self) -> &dyn Any {
            self
        }
    }
    let model = threshold_model(0.5);
    let unknown = Model::new(model.metadata().clone(), Arc::new(Unknown)).unwrap();
    unknown.save(&path).unwrap();
    match Model::load(&path) {
        Err(WharfError::Artifact { kind: ArtifactError::UnknownKind { kind, hint }, .. }) => {
            assert_eq!(kind, "example.never-registered");
            assert!(hint.contains("wharf_core::kind::register"), "{hint}");
        }
        other => panic!("expected UnknownKind, got {other:?}"),
    }
}

#[test]
fn a_toy_kind_saves_loads_serves_and_batch_scores_unchanged() {
    register();
    assert!(!kind::register(KindDecoder { id: KIND, provider: "again", decode }), "registration is idempotent");
    let dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(FileRegistry::new(dir.path().join("registry")));
    let version = registry.register(&threshold_model(0.5), "gate").unwrap();
    let loaded = registry.load("gate", &version.to_string()).unwrap();
    assert_eq!(loaded.kind_id(), KIND);
    assert_eq!(loaded.kind().as_any().downcast_ref::<Threshold>().map(|t| t.cut), Some(0.5));

    // Served by wharf-serve, which knows nothing of this kind.
    let models = wharf_serve::ModelsBuilder::new().registry(registry.clone()).model("gate".parse().unwrap());
    let server = wharf_serve::spawn(models.build().unwrap(), wharf_serve::ServeOptions::default(), "127.0.0.1:0")
        .expect("serve");
    let client = reqwest::blocking::Client::new();
    let body: Value = client
        .post(format!("{}/models/gate/predict", server.url()))
        .json(&json!({"records": [{"x": 0.9}, {"x": 0.1}]}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(body["predictions"], json!(["high", "low"]), "{body}");
    assert_eq!(body["probabilities"][0]["high"], json!(1.0), "{body}");
    let refused = client
        .post(format!("{}/models/gate/predict", server.url()))
        .json(&json!({"records": [{"x": "tall"}]}))
        .send()
        .unwrap();
    assert_eq!(refused.status().as_u16(), 422, "a bad record is the client's mistake");
    server.shutdown().unwrap();

    // Batch-scored by wharf-batch, with a bad row skipped to the reject file.
    let input = dir.path().join("in.csv");
    std::fs::write(&input, "id,x\na,0.7\nb,0.2\nc,oops\nd,3\n").unwrap();
    let output = dir.path().join("out.csv");
    let info = registry.version_info("gate", &Selector::Version(version)).unwrap();
    let options = wharf_batch::ScoreOptions::new(&input, &output).ids(["id"]).on_error(wharf_batch::OnError::Skip);
    let server = wharf_core::ModelServers::local().serve(loaded.clone()).unwrap();
    let summary = wharf_batch::score_file(
        server.as_ref(),
        &wharf_batch::registered_facts(&info),
        &options,
        &NoOpLineage::new(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!((summary.rows_scored, summary.rows_rejected), (3, 1));
    let text = std::fs::read_to_string(&output).unwrap();
    let predictions: Vec<(&str, &str)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let mut cells = l.split(',');
            (cells.next().unwrap(), cells.next().unwrap())
        })
        .collect();
    assert_eq!(predictions, [("a", "high"), ("b", "low"), ("d", "high")], "{text}");
}
