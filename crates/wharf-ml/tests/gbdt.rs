//! Wharf's gradient booster: quality on the bundled tables, determinism across runs and
//! thread counts, the model it produces (a tree ensemble that saves, loads and scores), and
//! bad input.

use std::sync::{Arc, Mutex};

use wharf_core::{Column, Frame, Model, Records, WharfError};
use wharf_ml::{datasets, evaluate, ClassWeight, CsvOptions, Dataset, RegressionLoss, Trainer};
use wharf_trees::model::TreeEnsemble;

fn holdout(trainer: Trainer, data: Dataset) -> (Model, wharf_ml::Metrics) {
    let (train, test) = data.split(0.25, 7).unwrap();
    let model = trainer.fit(&train).unwrap();
    let metrics = evaluate(&model, &test).unwrap();
    (model, metrics)
}

fn spec(model: &Model) -> wharf_trees::EnsembleSpec {
    let kind = model.kind().as_any().downcast_ref::<TreeEnsemble>().expect("a tree ensemble");
    kind.ensemble().spec().clone()
}

#[test]
fn boosting_separates_breast_cancer() {
    let (model, m) = holdout(Trainer::gradient_boosting(), datasets::breast_cancer());
    assert_eq!(model.kind_id(), wharf_core::kind::TREE_ENSEMBLE_KIND);
    assert!(m["roc_auc"] > 0.97, "{m:?}");
    assert!(m["accuracy"] > 0.92, "{m:?}");
    let tags = &model.metadata().tags;
    assert!(tags["feature_importance_gain"].contains('='), "{tags:?}");
    assert!(tags["feature_importance_splits"].contains('='), "{tags:?}");
    assert_eq!(spec(&model).trees.len(), 100);
}

#[test]
fn boosting_regresses_diabetes() {
    let (_, m) = holdout(Trainer::gradient_boosting_regressor().learning_rate(0.05), datasets::diabetes());
    assert!(m["r2"] > 0.3, "{m:?}");
}

/// One training target in ten of the diabetes table thrown 2,000 to 3,000 too high (its
/// targets are 25 to 346); the holdout keeps its true targets. Squared error chases the wild
/// ones, the robust losses do not.
#[test]
fn robust_losses_shrug_off_wild_targets() {
    let (mut train, test) = datasets::diabetes().split(0.25, 7).unwrap();
    if let Some((_, Column::Numeric(y))) = train.target.as_mut() {
        for (i, v) in y.iter_mut().enumerate() {
            if i % 10 == 3 {
                *v += 2000.0 + i as f64 * 3.0;
            }
        }
    }
    let mae = |trainer: Trainer| {
        let model = trainer.learning_rate(0.05).fit(&train).unwrap();
        (evaluate(&model, &test).unwrap()["mae"], model)
    };
    let (squared, _) = mae(Trainer::gradient_boosting_regressor());
    let (absolute, model) = mae(Trainer::gradient_boosting_regressor().loss(RegressionLoss::AbsoluteError));
    let (huber, huber_model) =
        mae(Trainer::gradient_boosting_regressor().loss(RegressionLoss::Huber).huber_delta(50.0));
    assert!(absolute < 0.5 * squared, "absolute {absolute:.1} against squared {squared:.1}");
    assert!(huber < 0.5 * squared, "huber {huber:.1} against squared {squared:.1}");
    assert!(absolute < 70.0 && huber < 70.0, "absolute {absolute:.1}, huber {huber:.1}");
    let params = &model.metadata().params;
    assert_eq!((params["loss"].as_str(), params.get("huber_delta")), ("absolute_error", None));
    assert!(model.metadata().metrics.contains_key("train_absolute_error"), "{:?}", model.metadata().metrics);
    assert_eq!(huber_model.metadata().params["huber_delta"], "50");
    // The loss and its delta round-trip through the search's text form.
    let t = Trainer::gradient_boosting_regressor()
        .set_param("loss", "huber")
        .unwrap()
        .set_param("huber_delta", "2.5")
        .unwrap();
    assert_eq!((t.params()["loss"].as_str(), t.params()["huber_delta"].as_str()), ("huber", "2.5"));
    assert!(Trainer::gradient_boosting().set_param("loss", "huber").is_err(), "a classifier takes no loss");
    assert!(Trainer::gradient_boosting_regressor().set_param("loss", "quantile").is_err());
}

#[test]
fn boosting_learns_iris_with_one_tree_per_class_per_round() {
    let (model, m) = holdout(Trainer::gradient_boosting().trees(30).min_samples_leaf(5), datasets::iris());
    assert!(m["accuracy"] > 0.9, "{m:?}");
    let spec = spec(&model);
    assert_eq!(spec.trees.len(), 90);
    assert_eq!(spec.base_score.len(), 3);
    assert_eq!(spec.trees.iter().take(3).map(|t| t.group).collect::<Vec<_>>(), [0, 1, 2]);
}

#[test]
fn lead_scoring_splits_on_categories_natively() {
    let (model, m) = holdout(Trainer::gradient_boosting(), datasets::lead_scoring());
    assert!(m["roc_auc"] > 0.7, "{m:?}");
    let spec = spec(&model);
    let categorical = spec
        .trees
        .iter()
        .flat_map(|t| &t.nodes)
        .any(|n| matches!(n, wharf_trees::Node::Internal { split: wharf_trees::Split::Categorical { .. }, .. }));
    assert!(categorical, "no categorical split in the lead model");
    // Text levels score as they are written.
    let row = model.metadata().sample_input[0].clone();
    model.predict_proba(&Records::Rows(vec![row])).unwrap();
}

#[test]
fn a_model_saves_loads_and_scores_the_same() {
    let data = datasets::breast_cancer();
    let model = Trainer::gradient_boosting().trees(20).fit(&data).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.wharf");
    model.save(&path).unwrap();
    let back = Model::load(&path).unwrap();
    let records = Records::Columns(data.features.clone());
    let (a, b) = (model.predict_proba(&records).unwrap(), back.predict_proba(&records).unwrap());
    assert_eq!(a.values, b.values);
    assert_eq!(back.metadata().tags, model.metadata().tags);
}

fn fit_on(threads: usize, trainer: &Trainer, data: &Dataset) -> wharf_trees::EnsembleSpec {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| spec(&trainer.fit(data).unwrap()))
}

#[test]
fn a_seed_gives_the_same_trees_across_runs_and_thread_counts() {
    let data = datasets::lead_scoring();
    for quantized in [true, false] {
        let trainer = Trainer::gradient_boosting()
            .trees(30)
            .subsample(0.8)
            .colsample(0.7)
            .validation_fraction(0.1)
            .seed(3)
            .quantized_gradients(quantized);
        let one = fit_on(1, &trainer, &data);
        assert_eq!(one, fit_on(2, &trainer, &data), "1 thread vs 2 threads");
        assert_eq!(one, fit_on(2, &trainer, &data), "two runs on 2 threads");
        let other = fit_on(2, &trainer.clone().seed(4), &data);
        assert_ne!(one, other, "another seed draws other rows");
    }
}

#[test]
fn early_stopping_keeps_the_best_round_and_reports_every_round() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let trainer = Trainer::gradient_boosting()
        .trees(500)
        .learning_rate(0.3)
        .validation_fraction(0.2)
        .patience(5)
        .on_iteration(move |it| log.lock().unwrap().push(*it));
    let model = trainer.fit(&datasets::breast_cancer()).unwrap();
    let seen = seen.lock().unwrap();
    assert!(seen.len() < 500, "stopped early after {} rounds", seen.len());
    assert!(seen.iter().all(|it| it.valid_loss.is_some()));
    let rounds: usize = model.metadata().params["rounds"].parse().unwrap();
    assert_eq!(rounds + 5, seen.len(), "keeps the round before `patience` rounds without improvement");
    let best = seen.iter().map(|it| it.valid_loss.unwrap()).fold(f64::INFINITY, f64::min);
    assert_eq!(seen[rounds - 1].valid_loss, Some(best));
    assert_eq!(spec(&model).trees.len(), rounds);
}

#[test]
fn missing_values_are_learned_per_split() {
    // y is 1 exactly where x is missing: only the missing side can separate it.
    let n = 400;
    let x: Vec<f64> = (0..n).map(|i| if i % 4 == 0 { f64::NAN } else { (i % 17) as f64 }).collect();
    let y: Vec<String> = (0..n).map(|i| if i % 4 == 0 { "yes" } else { "no" }.to_string()).collect();
    let mut frame = Frame::new();
    frame.push("x", Column::Numeric(x)).unwrap();
    frame.push("y", Column::Text(y.into_iter().map(Some).collect())).unwrap();
    let data =
        Dataset::from_frame("missing", frame, &CsvOptions { target: Some("y".into()), ..Default::default() }).unwrap();
    let model = Trainer::gradient_boosting().trees(10).fit(&data).unwrap();
    let m = evaluate(&model, &data).unwrap();
    assert_eq!(m["accuracy"], 1.0, "{m:?}");
}

#[test]
fn class_weight_balanced_raises_recall_of_a_rare_class() {
    let data = datasets::breast_cancer();
    let plain = Trainer::gradient_boosting().trees(20);
    let weighted = plain.clone().class_weight(ClassWeight::Balanced);
    let a = spec(&plain.fit(&data).unwrap());
    let b = spec(&weighted.fit(&data).unwrap());
    assert_ne!(a.base_score, b.base_score, "balanced weights move the starting log-odds");
}

fn table(columns: Vec<(&str, Column)>, target: &str) -> Dataset {
    let mut frame = Frame::new();
    for (name, column) in columns {
        frame.push(name, column).unwrap();
    }
    Dataset::from_frame("t", frame, &CsvOptions { target: Some(target.into()), ..Default::default() }).unwrap()
}

#[test]
fn bad_input_is_an_error_or_a_documented_behaviour_never_a_panic() {
    let n = 100;
    let labels = || Column::Text((0..n).map(|i| Some(if i % 2 == 0 { "a" } else { "b" }.to_string())).collect());
    // One class: a typed error naming the target.
    let one = table(
        vec![
            ("x", Column::Numeric((0..n).map(|i| i as f64).collect())),
            ("y", Column::Text(vec![Some("a".into()); n])),
        ],
        "y",
    );
    match Trainer::gradient_boosting().fit(&one) {
        Err(WharfError::InvalidInput { path: field, message }) => {
            assert_eq!(field, "y");
            assert!(message.contains("two distinct classes"), "{message}");
        }
        other => panic!("expected an invalid-target error, got {other:?}"),
    }
    // All-NaN and constant columns: never split on; the model predicts the prior.
    let flat = table(
        vec![("nan", Column::Numeric(vec![f64::NAN; n])), ("constant", Column::Numeric(vec![3.0; n])), ("y", labels())],
        "y",
    );
    let model = Trainer::gradient_boosting().trees(5).fit(&flat).unwrap();
    assert!(spec(&model).trees.iter().all(|t| t.nodes.len() == 1));
    assert!(model.metadata().tags["feature_importance_gain"].starts_with("none"));
    // A categorical with more levels than max_bins: the rarer levels share the missing bin.
    let rows = 4000;
    let many = table(
        vec![
            ("level", Column::Text((0..rows).map(|i| Some(format!("l{}", i % 40))).collect())),
            ("y", Column::Text((0..rows).map(|i| Some(if i % 2 == 0 { "a" } else { "b" }.to_string())).collect())),
        ],
        "y",
    );
    let model = Trainer::gradient_boosting().trees(5).max_bins(8).min_samples_leaf(2).fit(&many).unwrap();
    let m = evaluate(&model, &many).unwrap();
    assert!(m["accuracy"] > 0.5, "{m:?}");
    // Out-of-range parameters: typed errors naming them.
    for (trainer, field) in [
        (Trainer::gradient_boosting().max_bins(300), "max_bins"),
        (Trainer::gradient_boosting().learning_rate(0.0), "learning_rate"),
        (Trainer::gradient_boosting().subsample(1.5), "subsample"),
        (Trainer::gradient_boosting().max_leaves(1), "max_leaves"),
        (Trainer::gradient_boosting().validation_fraction(0.995), "validation_fraction"),
        (Trainer::gradient_boosting().huber_delta(0.0), "huber_delta"),
        // A regression loss on a classifier: refused, not ignored.
        (Trainer::gradient_boosting().loss(RegressionLoss::AbsoluteError), "loss"),
    ] {
        match trainer.fit(&flat) {
            Err(WharfError::InvalidInput { path: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: expected an invalid-parameter error, got {other:?}"),
        }
    }
}

#[test]
fn tune_has_a_space_for_the_booster() {
    let space = Trainer::gradient_boosting().param_space();
    assert!(space.params().len() >= 3);
    let trainer = Trainer::gradient_boosting().set_param("learning_rate", "0.3").unwrap();
    assert_eq!(trainer.params()["learning_rate"], "0.3");
    assert!(Trainer::gradient_boosting().set_param("k", "3").is_err());
}

/// The compiled ensemble sends every training row where the booster's binned trees did: the
/// training loss the booster reports for its last round is the log-loss of the model's own
/// probabilities on the training rows (categories, missing values and thresholds included).
#[test]
fn the_compiled_model_scores_the_training_rows_as_the_booster_did() {
    let mut data = datasets::lead_scoring();
    // Some missing values in a numeric column, so learned default directions matter.
    let mut frame = Frame::new();
    for (name, column) in data.features.columns() {
        let column = match column {
            Column::Numeric(v) if name == "minutes_on_site" => {
                Column::Numeric(v.iter().enumerate().map(|(i, x)| if i % 7 == 0 { f64::NAN } else { *x }).collect())
            }
            other => other.clone(),
        };
        frame.push(name.clone(), column).unwrap();
    }
    data.features = frame;
    let last = Arc::new(Mutex::new(None));
    let log = last.clone();
    let model = Trainer::gradient_boosting()
        .trees(40)
        .on_iteration(move |it| *log.lock().unwrap() = Some(*it))
        .fit(&data)
        .unwrap();
    let reported = last.lock().unwrap().unwrap().train_loss;
    let proba = model.predict_proba(&Records::Columns(data.features.clone())).unwrap();
    let (_, target) = data.target.as_ref().unwrap();
    let loss: f64 = (0..data.n_rows())
        .map(|i| {
            let class = model.classes().iter().position(|c| *c == target.text_at(i)).unwrap();
            -proba.values[[i, class]].ln()
        })
        .sum::<f64>()
        / data.n_rows() as f64;
    assert!((loss - reported).abs() < 1e-9, "model {loss} vs booster {reported}");
}

/// Big enough (70,000 rows) for the chunked parallel passes (partition, gather, gradients,
/// losses) to split their work: the trees are still the same on 1 and 2 threads.
#[test]
fn a_big_table_gives_the_same_trees_on_one_and_two_threads() {
    // More rows than a chunk of quantized sums (65,536), at the root and in a subsample.
    let n = 80_000;
    let mut frame = Frame::new();
    for j in 0..4u64 {
        let column = (0..n as u64)
            .map(|i| if (i * 7 + j) % 53 == 0 { f64::NAN } else { ((i * (j + 3) * 2_654_435_761) % 1000) as f64 })
            .collect();
        frame.push(format!("x{j}"), Column::Numeric(column)).unwrap();
    }
    let y = (0..n as u64)
        .map(|i| Some(if (i * 2_654_435_761) % 1000 + (i * 3) % 700 > 800 { "a" } else { "b" }.to_string()));
    frame.push("y", Column::Text(y.collect())).unwrap();
    let data =
        Dataset::from_frame("big", frame, &CsvOptions { target: Some("y".into()), ..Default::default() }).unwrap();
    for (quantized, subsample) in [(true, 1.0), (true, 0.9), (false, 0.9)] {
        let trainer = Trainer::gradient_boosting().trees(4).subsample(subsample).quantized_gradients(quantized);
        let one = fit_on(1, &trainer, &data);
        assert!(one.trees.iter().all(|t| t.nodes.len() > 20), "the trees split");
        assert_eq!(one, fit_on(2, &trainer, &data));
    }
}

#[test]
fn an_unobserved_fit_records_the_kept_round_s_training_loss_and_the_same_trees() {
    let trainer = || Trainer::gradient_boosting().trees(80).validation_fraction(0.2).patience(4).seed(11);
    let data = datasets::breast_cancer();
    let quiet = trainer().fit(&data).unwrap();
    let mut seen = Vec::new();
    let observed = trainer().fit_observed(&data, &mut |it| seen.push(*it)).unwrap();
    assert_eq!(spec(&quiet), spec(&observed), "listening never changes the model");
    let rounds: usize = quiet.metadata().params["rounds"].parse().unwrap();
    assert!(rounds < seen.len(), "early stopping dropped rounds: {rounds} of {}", seen.len());
    let (a, b) = (quiet.metadata().metrics["train_log_loss"], observed.metadata().metrics["train_log_loss"]);
    assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "the kept round's loss either way: {a} vs {b}");
    assert_eq!(b, seen[rounds - 1].train_loss);
}

/// The training profile (the reference for drift) is computed from the booster's own
/// margins rather than by scoring the training rows again: it must be, byte for byte, the
/// profile scoring them gives, for a sigmoid, a softmax, a regression, categories with
/// missing values, row and column subsamples, held-out rows, and early stopping (which drops
/// trees, and scores again).
#[test]
fn the_training_profile_is_the_one_scoring_the_training_rows_gives() {
    use wharf_core::drift::{with_profile, PROFILE_TAG};
    let mut lead = datasets::lead_scoring();
    let mut frame = Frame::new();
    for (name, column) in lead.features.columns() {
        let column = match column {
            Column::Numeric(v) if name == "minutes_on_site" => {
                Column::Numeric(v.iter().enumerate().map(|(i, x)| if i % 5 == 0 { f64::NAN } else { *x }).collect())
            }
            other => other.clone(),
        };
        frame.push(name.clone(), column).unwrap();
    }
    lead.features = frame;
    let cases = [
        ("breast_cancer", datasets::breast_cancer(), Trainer::gradient_boosting().trees(30)),
        ("iris", datasets::iris(), Trainer::gradient_boosting().trees(20)),
        ("diabetes", datasets::diabetes(), Trainer::gradient_boosting_regressor().trees(30)),
        ("lead_scoring", lead.clone(), Trainer::gradient_boosting().trees(30).subsample(0.7).colsample(0.6)),
        (
            "lead_scoring held out",
            lead.clone(),
            Trainer::gradient_boosting().trees(30).validation_fraction(0.2).patience(100),
        ),
        ("lead_scoring early", lead, Trainer::gradient_boosting().trees(200).validation_fraction(0.2).patience(3)),
    ];
    for (name, data, trainer) in cases {
        let model = trainer.fit(&data).unwrap();
        let stored = model.metadata().tags[PROFILE_TAG].clone();
        let scored = with_profile(model, &Records::Columns(data.features.clone())).unwrap();
        assert_eq!(stored, scored.metadata().tags[PROFILE_TAG], "{name}");
    }
}

#[test]
fn quantized_gradients_is_a_parameter_with_a_clear_error() {
    let data = datasets::breast_cancer();
    let exact = Trainer::gradient_boosting().trees(5).set_param("quantized_gradients", "false").unwrap();
    let model = exact.fit(&data).unwrap();
    assert_eq!(model.metadata().params["quantized_gradients"], "false");
    let quantized = Trainer::gradient_boosting().trees(5).fit(&data).unwrap();
    assert_eq!(quantized.metadata().params["quantized_gradients"], "true");
    assert_ne!(spec(&model), spec(&quantized), "the two modes grow different trees");
    let err = Trainer::gradient_boosting().set_param("quantized_gradients", "maybe").unwrap_err().to_string();
    assert!(err.contains("quantized_gradients") && err.contains("true or false"), "{err}");
}
