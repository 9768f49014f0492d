//! Inputs refused the same way wherever they enter: a CSV whose header names a column twice
//! is refused by scoring exactly as by training (one shared check), never scored with
//! whichever copy a reader happens to pick.

mod common;

use common::Sandbox;

/// `csv` with its first feature column (after the id) repeated at the end, holding other
/// values.
fn with_duplicated_column(csv: &str) -> String {
    csv.lines()
        .enumerate()
        .map(|(i, line)| {
            let second = line.split(',').nth(1).unwrap_or_default();
            let extra = if i == 0 { second.to_string() } else { "0".to_string() };
            format!("{line},{extra}\n")
        })
        .collect()
}

#[test]
fn a_duplicated_header_column_is_refused_by_training_and_scoring_alike() {
    let s = Sandbox::with_leads();
    let column = common::lead_rows(0).trim().split(',').nth(1).expect("a feature column").to_string();
    s.write("dup-train.csv", with_duplicated_column(&s.read("leads.csv")));
    s.write("dup-new.csv", with_duplicated_column(&s.read("new.csv")));

    let train = s.error(&["train", "--input", "dup-train.csv", "--target", "converted", "--name", "lead"]);
    s.train_lead();
    let score = s.error(&["score", "-m", "lead", "-i", "dup-new.csv", "-o", "out.csv"]);
    for err in [&train, &score] {
        assert!(err.contains(&format!("column '{column}'")), "{err}");
        assert!(err.contains("names this column twice"), "{err}");
    }
    assert!(!s.path("out.csv").exists(), "nothing was scored");
}
