//! Wharf's side of the random-forest comparison with scikit-learn (`xtask/python/forest_vs_sklearn.py`
//! drives both and prints the table in the guide's performance page).
//!
//! ```text
//! forest_accuracy export DIR                      # the bundled tables' holdout splits as CSV
//! forest_accuracy bundled NAME SPLIT SEED         # fit on split SPLIT of a bundled table
//! forest_accuracy csv TRAIN.csv TEST.csv TARGET SEED
//! ```
//!
//! `bundled` and `csv` fit 100 trees of depth 8 (`--trees N`, `--max-depth N`,
//! `--max-features X` change that) and print one JSON line: holdout accuracy and the seconds
//! `Trainer::fit` took (reading the files is not timed). The thread count is rayon's
//! (`RAYON_NUM_THREADS`).

use std::path::Path;
use std::time::Instant;

use wharf_core::Column;
use wharf_ml::{datasets, evaluate, CsvOptions, Dataset, MaxFeatures, Trainer};

type Failure = Box<dyn std::error::Error>;

/// The holdout splits of the bundled tables: a quarter held out, split seeds `0..SPLITS`.
const SPLITS: u64 = 10;
const TEST_FRACTION: f64 = 0.25;

fn bundled(name: &str) -> Result<Dataset, Failure> {
    Ok(match name {
        "breast_cancer" => datasets::breast_cancer(),
        "iris" => datasets::iris(),
        "lead_scoring" => datasets::lead_scoring(),
        other => return Err(format!("no bundled classification table '{other}'").into()),
    })
}

fn write_csv(data: &Dataset, path: &Path) -> Result<(), Failure> {
    let mut out = csv::Writer::from_path(path)?;
    let (target, labels) = data.target.as_ref().ok_or("no target")?;
    let columns = data.features.columns();
    let mut header: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    header.push(target);
    out.write_record(&header)?;
    for i in 0..data.n_rows() {
        let mut row: Vec<String> = columns.iter().map(|(_, c)| c.text_at(i)).collect();
        row.push(labels.text_at(i));
        out.write_record(&row)?;
    }
    out.flush()?;
    Ok(())
}

/// Writes `DIR/NAME/SPLIT/{train,test}.csv` and `DIR/NAME/categorical.txt` (the text columns).
fn export(dir: &Path) -> Result<(), Failure> {
    for name in ["breast_cancer", "iris", "lead_scoring"] {
        let data = bundled(name)?;
        let text: Vec<&str> = data
            .features
            .columns()
            .iter()
            .filter(|(_, c)| matches!(c, Column::Text(_)))
            .map(|(n, _)| n.as_str())
            .collect();
        std::fs::create_dir_all(dir.join(name))?;
        std::fs::write(dir.join(name).join("categorical.txt"), text.join("\n"))?;
        for split in 0..SPLITS {
            let (train, test) = data.split(TEST_FRACTION, split)?;
            let at = dir.join(name).join(split.to_string());
            std::fs::create_dir_all(&at)?;
            write_csv(&train, &at.join("train.csv"))?;
            write_csv(&test, &at.join("test.csv"))?;
        }
    }
    Ok(())
}

fn fit_and_score(trainer: Trainer, train: &Dataset, test: &Dataset) -> Result<(), Failure> {
    let start = Instant::now();
    let model = trainer.fit(train)?;
    let fit_s = start.elapsed().as_secs_f64();
    let metrics = evaluate(&model, test)?;
    let line = serde_json::json!({
        "accuracy": metrics["accuracy"],
        "fit_s": fit_s,
        "threads": rayon::current_num_threads(),
        "train_rows": train.n_rows(),
        "test_rows": test.n_rows(),
        "params": model.metadata().params,
    });
    println!("{line}");
    Ok(())
}

fn main() -> Result<(), Failure> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut option = |flag: &str| -> Option<String> {
        let at = args.iter().position(|a| a == flag)?;
        let value = args.get(at + 1).cloned();
        args.drain(at..(at + 2).min(args.len()));
        value
    };
    let trees: usize = option("--trees").map(|v| v.parse()).transpose()?.unwrap_or(100);
    let depth: usize = option("--max-depth").map(|v| v.parse()).transpose()?.unwrap_or(8);
    let max_features: MaxFeatures = option("--max-features").map(|v| v.parse()).transpose()?.unwrap_or_default();
    let trainer =
        |seed: u64| Trainer::random_forest().trees(trees).max_depth(Some(depth)).max_features(max_features).seed(seed);
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["export", dir] => export(Path::new(dir)),
        ["bundled", name, split, seed] => {
            let (train, test) = bundled(name)?.split(TEST_FRACTION, split.parse()?)?;
            fit_and_score(trainer(seed.parse()?), &train, &test)
        }
        ["csv", train, test, target, seed] => {
            let options = CsvOptions { target: Some(target.to_string()), ..CsvOptions::default() };
            let train = Dataset::from_csv_path(train, &options)?;
            let test = Dataset::from_csv_path(test, &options)?;
            fit_and_score(trainer(seed.parse()?), &train, &test)
        }
        _ => Err("usage: forest_accuracy export DIR | bundled NAME SPLIT SEED | csv TRAIN TEST TARGET SEED \
                  [--trees N] [--max-depth N] [--max-features X]"
            .into()),
    }
}
