//! `wharf tune` and `wharf promote` end to end, through the real binary.

mod common;

use common::Sandbox;

/// `leads.csv` (the first 900 bundled rows), `holdout.csv` (the other 300) and
/// `noise.csv` (the training rows with their labels rotated by 7 rows: no signal left).
fn sandbox() -> Sandbox {
    let s = Sandbox::new();
    let lines: Vec<&str> = wharf::datasets::LEAD_SCORING_CSV.lines().collect();
    let (header, rows) = (lines[0], &lines[1..]);
    let train = &rows[..900];
    s.write("leads.csv", format!("{header}\n{}\n", train.join("\n")));
    s.write("holdout.csv", format!("{header}\n{}\n", rows[900..].join("\n")));
    let labels: Vec<&str> = train.iter().map(|r| r.rsplit(',').next().unwrap()).collect();
    let noise: Vec<String> = train
        .iter()
        .enumerate()
        .map(|(i, r)| format!("{},{}", r.rsplit_once(',').unwrap().0, labels[(i + 7) % labels.len()]))
        .collect();
    s.write("noise.csv", format!("{header}\n{}\n", noise.join("\n")));
    s
}

fn champion(s: &Sandbox) -> u64 {
    let shown = s.json(&["models", "show", "lead@champion"]);
    shown["version"].as_u64().unwrap_or_else(|| panic!("{shown}"))
}

#[test]
fn tune_prints_a_leaderboard_and_registers_the_winner_with_a_tracked_leaderboard() {
    let s = sandbox();
    let out = s.json(&[
        "tune",
        "--input",
        "leads.csv",
        "--target",
        "converted",
        "--id",
        "lead_id",
        "--name",
        "lead",
        "--algorithm",
        "logistic",
        "--search",
        "grid",
        "--cv",
        "3",
        "--metric",
        "roc_auc",
    ]);
    assert_eq!(out["version"], 1);
    assert_eq!(out["trials"], 6, "the declared logistic space has six values of l2: {out}");
    let board = out["leaderboard"].as_array().unwrap();
    assert_eq!(board.len(), 6);
    assert_eq!(board[0]["params"], out["best"]["params"]);
    assert_eq!(board[0]["mean"], out["best"]["cv_mean"]);
    let means: Vec<f64> = board.iter().map(|e| e["mean"].as_f64().unwrap()).collect();
    assert!(means.windows(2).all(|w| w[0] >= w[1]), "{means:?}");
    assert!(out["holdout"]["roc_auc"].as_f64().unwrap() > 0.6);
    assert!(out["default_holdout"]["roc_auc"].is_number());
    let run = out["run_id"].as_str().unwrap();
    let stored = s.read(&format!("wharf-runs/{run}/artifacts/leaderboard.json"));
    let stored: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(&stored, &out["leaderboard"], "the artifact is the printed leaderboard");

    // The table form names the winner's settings.
    let text = s.ok(&[
        "tune",
        "-i",
        "leads.csv",
        "-t",
        "converted",
        "--id",
        "lead_id",
        "--name",
        "lead",
        "--search",
        "random",
        "--trials",
        "3",
        "--cv",
        "3",
    ]);
    assert!(text.contains("cv roc_auc") && text.contains("l2=") && text.contains("version 2"), "{text}");
    assert!(text.contains("tuned") && text.contains("defaults"), "{text}");
}

#[test]
fn bad_tuning_requests_fail_before_training_with_one_error_line() {
    let s = sandbox();
    let base = ["tune", "-i", "leads.csv", "-t", "converted", "--id", "lead_id", "--name", "lead"];
    s.write("empty.toml", "");
    let err = s.error(&[&base[..], &["--space", "empty.toml"]].concat());
    assert!(err.contains("the space is empty"), "{err}");
    s.write("one.toml", "l2 = [1.0]\n");
    assert!(s.error(&[&base[..], &["--space", "one.toml"]].concat()).contains("single candidate"));
    s.write("wrong.toml", "n_trees = [10, 20]\n");
    assert!(s.error(&[&base[..], &["--space", "wrong.toml"]].concat()).contains("not a parameter of logistic"));
    assert!(s.error(&[&base[..], &["--metric", "auc"]].concat()).contains("unknown metric 'auc'"));
    assert!(s.error(&[&base[..], &["--cv", "5000"]].concat()).contains("fewer than the 5000 folds"));
    assert!(!s.path("wharf-registry").exists(), "nothing was registered");
}

#[test]
fn promote_refuses_noise_and_a_tie_and_accepts_a_better_model() {
    let s = sandbox();
    let train = |input: &str, extra: &[&str]| {
        let mut args =
            vec!["-q", "train", "--input", input, "--target", "converted", "--id", "lead_id", "--name", "lead"];
        args.extend_from_slice(extra);
        s.ok(&args)
    };
    train("leads.csv", &["--alias", "champion"]); // 1
    train("noise.csv", &["--alias", "challenger"]); // 2
    let promote = ["promote", "lead", "--over", "@champion", "--metric", "roc_auc", "--holdout", "holdout.csv"];

    // Trained on labels with no signal: refused, exit 1, the alias stays.
    let out = s.run(&[&promote[..], &["--candidate", "@challenger"]].concat());
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("Refused: lead@champion stays at version 1"), "{stdout}");
    assert!(stdout.contains("interval ["), "the numbers are printed: {stdout}");
    assert!(stderr.starts_with("error: promotion refused") && stderr.lines().count() == 1, "{stderr}");
    assert_eq!(champion(&s), 1);

    // The same model twice: a tie, refused.
    train("leads.csv", &[]); // 3, identical to 1
    let err = s.error(&[&promote[..], &["--candidate", "3"]].concat());
    assert!(err.contains("improvement +0.0000"), "{err}");
    assert_eq!(champion(&s), 1);

    // A weak champion (a stump) loses to logistic regression.
    train("leads.csv", &["-a", "tree", "--max-depth", "1", "--alias", "weak"]); // 4
    let decided = s.json(&[
        "promote",
        "lead",
        "--candidate",
        "1",
        "--over",
        "@weak",
        "--metric",
        "roc_auc",
        "--holdout",
        "holdout.csv",
    ]);
    assert_eq!(decided["promoted"], true, "{decided}");
    assert!(decided["comparison"]["low"].as_f64().unwrap() > 0.0);
    let weak = s.json(&["models", "show", "lead@weak"]);
    assert_eq!(weak["version"], 1, "the alias moved");

    // Recorded: a tracking run per decision, with its evidence.
    let mut decisions = Vec::new();
    for entry in std::fs::read_dir(s.path("wharf-runs")).unwrap() {
        let run: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(entry.unwrap().path().join("run.json")).unwrap()).unwrap();
        if run["info"]["name"] == "promote-lead" {
            assert!(run["artifacts"].as_array().unwrap().iter().any(|a| a == "decision.json"), "{run}");
            decisions.push(run["tags"]["wharf.decision"].as_str().unwrap().to_string());
        }
    }
    decisions.sort();
    assert_eq!(decisions, ["promoted", "refused", "refused"]);
}

#[test]
fn train_with_promote_if_better_gates_the_champion() {
    let s = sandbox();
    let base = ["train", "--target", "converted", "--id", "lead_id", "--name", "lead", "--promote-if-better"];
    let first = s.json(&[&base[..], &["--input", "leads.csv"]].concat());
    assert_eq!(first["decision"]["promoted"], true, "nothing to beat: {first}");
    assert_eq!(champion(&s), 1);
    let stderr = s.error(&[&base[..], &["--input", "noise.csv"]].concat());
    assert!(stderr.contains("promotion refused"), "{stderr}");
    assert_eq!(champion(&s), 1, "version 2 is registered but not promoted");
}

#[test]
fn group_folds_and_halving_from_the_command_line() {
    let s = sandbox();
    s.write("space.toml", "l2 = { low = 0.001, high = 100.0, log = true }\n");
    let out = s.json(&[
        "tune",
        "-i",
        "leads.csv",
        "-t",
        "converted",
        "--id",
        "lead_id",
        "--name",
        "lead",
        "--group",
        "source",
        "--cv",
        "3",
        "--space",
        "space.toml",
        "--search",
        "halving",
        "--trials",
        "9",
        "--holdout",
        "0",
    ]);
    let rounds: Vec<u64> = out["leaderboard"].as_array().unwrap().iter().map(|e| e["rows"].as_u64().unwrap()).collect();
    assert_eq!(rounds.iter().filter(|r| **r == 900).count(), 1, "one survivor on every row: {rounds:?}");
    assert_eq!(rounds.len(), 13, "9 + 3 + 1 trials: {rounds:?}");
    assert_eq!(out["rows_test"], 0);
    let shown = s.json(&["models", "show", "lead"]);
    let features = shown["signature"]["features"].to_string();
    assert!(features.contains("\"industry\""), "{features}");
    assert!(!features.contains("\"source\""), "the group column is not a feature: {features}");
    let err = s.error(&["tune", "-i", "leads.csv", "-t", "converted", "--id", "lead_id", "--group", "nope"]);
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn the_gradient_booster_is_tuned_from_its_declared_space_and_its_winner_registered() {
    let s = sandbox();
    let out = s.json(&[
        "tune",
        "--input",
        "leads.csv",
        "--target",
        "converted",
        "--id",
        "lead_id",
        "--name",
        "lead",
        "--algorithm",
        "gbdt",
        "--search",
        "random",
        "--trials",
        "3",
        "--cv",
        "3",
        "--seed",
        "7",
    ]);
    assert_eq!(out["trials"], 3, "{out}");
    let best = &out["best"]["params"];
    for key in ["learning_rate", "max_leaves", "min_samples_leaf", "n_trees"] {
        assert!(best.get(key).is_some(), "the booster's declared space has {key}: {out}");
    }
    let shown = s.json(&["models", "show", "lead@1"]);
    assert_eq!(shown["algorithm"], out["algorithm"], "{shown}");
    use wharf::RegistryExt;
    wharf::register_kinds();
    let model = wharf::FileRegistry::new(s.path("wharf-registry")).load("lead", "1").unwrap();
    let params = &model.metadata().params;
    assert_eq!(params["learning_rate"], best["learning_rate"].as_str().unwrap(), "the winner was refit: {params:?}");
}
