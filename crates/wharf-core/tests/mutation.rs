//! Mutated artifacts of every registered model kind never panic the loader, nor the model a
//! mutation leaves loadable: 10,000 cases over the built-in estimators (logistic, linear,
//! tree, forest, k-means), the imported tree ensembles (XGBoost and LightGBM) and ONNX
//! pipelines (a forest, and a scaler before a linear model). The
//! checksum is recomputed after each mutation, so the decoders and the consistency checks
//! see the damage, not only the checksum.

use std::sync::OnceLock;

use proptest::prelude::*;
use sha2::Digest;
use wharf_core::artifact::{decode, encode, HEADER_LEN};
use wharf_core::{kind, Model, Records};
use wharf_ml::{datasets, Trainer};

/// One artifact per registered kind and algorithm.
fn artifacts() -> &'static Vec<(String, Vec<u8>)> {
    static ARTIFACTS: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    ARTIFACTS.get_or_init(|| {
        let leads = datasets::lead_scoring();
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../wharf-trees/tests/fixtures");
        let models: Vec<Model> = vec![
            Trainer::logistic_regression().fit(&leads).expect("logistic"),
            Trainer::linear_regression().fit(&datasets::diabetes()).expect("linear"),
            Trainer::decision_tree().max_depth(Some(4)).fit(&leads).expect("tree"),
            Trainer::random_forest().trees(3).max_depth(Some(4)).fit(&datasets::iris()).expect("forest"),
            Trainer::kmeans(3).fit(&datasets::iris()).expect("kmeans"),
            wharf_trees::model::xgboost(format!("{fixtures}/seed_xgboost.json")).expect("xgboost"),
            wharf_trees::model::lightgbm(format!("{fixtures}/seed_lightgbm.txt")).expect("lightgbm"),
            wharf_trees::model::onnx(format!("{fixtures}/seed_onnx_forest.onnx")).expect("onnx forest"),
            wharf_trees::model::onnx(format!("{fixtures}/seed_onnx_pipeline.onnx")).expect("onnx pipeline"),
        ];
        let kinds: std::collections::BTreeSet<&str> = models.iter().map(Model::kind_id).collect();
        for registered in kind::registered() {
            assert!(kinds.contains(registered), "no fixture for the registered kind {registered}");
        }
        models
            .iter()
            .map(|m| (format!("{} {}", m.kind_id(), m.metadata().algorithm), encode(m).expect("encode")))
            .collect()
    })
}

/// Sets the header's checksum to the payload's, so the mutation reaches the decoder.
fn reseal(bytes: &mut [u8]) {
    let digest = sha2::Sha256::digest(&bytes[HEADER_LEN..]);
    bytes[36..68].copy_from_slice(&digest);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_artifacts_of_every_kind_never_panic(
        which in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let (_, original) = &artifacts()[which.index(artifacts().len())];
        let mut bytes = original.clone();
        let payload_len = bytes.len() - HEADER_LEN;
        for (at, byte) in edits {
            bytes[HEADER_LEN + at.index(payload_len)] = byte;
        }
        reseal(&mut bytes);
        // A mutation may leave a valid model (a changed coefficient): then scoring its own
        // sample input must not panic either.
        if let Ok(model) = decode(&bytes) {
            let records = Records::Rows(model.metadata().sample_input.clone());
            let _ = model.predict(&records);
            let _ = model.predict_proba(&records);
        }
    }
}
