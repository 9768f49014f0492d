//! `wharf report` and the card `wharf train` writes, end to end on the default stores.

mod common;

use common::{lead_rows, Sandbox};

/// `rows` of the lead data without the column `drop`.
fn without(rows: &str, drop: &str) -> String {
    let mut lines = rows.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let at = header.iter().position(|h| *h == drop).expect("the column exists");
    let keep = |line: &str| {
        line.split(',').enumerate().filter(|(i, _)| *i != at).map(|(_, c)| c).collect::<Vec<_>>().join(",") + "\n"
    };
    std::iter::once(keep(&header.join(","))).chain(lines.map(keep)).collect()
}

#[test]
fn train_keeps_a_card_with_the_version_unless_told_not_to() {
    let s = Sandbox::with_leads();
    s.train_lead();
    let card = s.read("wharf-registry/lead/versions/1/card.html");
    assert!(card.starts_with("<!DOCTYPE html>"), "{}", &card[..card.len().min(200)]);
    assert!(card.contains("data-plot=\"roc\""));
    assert!(!card.contains("<script"), "no JavaScript");

    s.ok(&[
        "train",
        "--input",
        "leads.csv",
        "--target",
        "converted",
        "--id",
        "lead_id",
        "--name",
        "lead",
        "--no-report",
    ]);
    assert!(s.path("wharf-registry/lead/versions/2/model.wharf").is_file());
    assert!(!s.path("wharf-registry/lead/versions/2/card.html").exists(), "--no-report writes no card");
}

#[test]
fn report_writes_the_card_of_a_registered_version() {
    let s = Sandbox::with_leads();
    s.train_lead();
    s.write("holdout.csv", lead_rows(120));
    let out = s.ok(&["report", "lead@1", "--holdout", "holdout.csv", "--output", "card.html"]);
    assert!(out.contains("lead version 1"), "{out}");
    let card = s.read("card.html");
    for plot in ["roc", "pr", "calibration", "confusion", "threshold", "permutation-importance"] {
        assert!(card.contains(&format!("data-plot=\"{plot}\"")), "plot {plot}");
    }

    let v = s.json(&["report", "lead", "--holdout", "holdout.csv", "--threshold", "0.3", "--output", "card.html"]);
    assert_eq!(v["version"], 1);
    assert_eq!(v["holdout_metrics"]["threshold"], 0.3);
    assert!(v["plots"].as_array().expect("plots").iter().any(|p| p == "confusion"));

    // No holdout: a card all the same, with messages where the holdout's plots would be.
    s.ok(&["report", "lead", "--output", "bare.html"]);
    let bare = s.read("bare.html");
    assert!(bare.contains("data-missing=\"roc\""));
    assert!(!bare.contains("data-plot=\"roc\""));
}

#[test]
fn report_rejects_bad_input_by_name() {
    let s = Sandbox::with_leads();
    s.train_lead();
    s.write("no-pages.csv", without(&lead_rows(50), "pages_viewed"));
    let err = s.error(&["report", "lead", "--holdout", "no-pages.csv", "--output", "card.html"]);
    assert!(err.contains("pages_viewed"), "{err}");
    assert!(!s.path("card.html").exists(), "no card is written on an error");

    s.write("no-target.csv", without(&lead_rows(50), "converted"));
    let err = s.error(&["report", "lead", "--holdout", "no-target.csv", "--output", "card.html"]);
    assert!(err.contains("converted"), "{err}");

    // A classification option for a regression model.
    s.ok(&[
        "train",
        "-q",
        "--input",
        "leads.csv",
        "--target",
        "minutes_on_site",
        "--id",
        "lead_id",
        "-a",
        "linear",
        "--name",
        "minutes",
    ]);
    s.write("holdout.csv", lead_rows(50));
    let err =
        s.error(&["report", "minutes", "--holdout", "holdout.csv", "--threshold", "0.5", "--output", "card.html"]);
    assert!(err.contains("threshold"), "{err}");

    let err = s.error(&["report", "nobody", "--output", "card.html"]);
    assert!(err.contains("nobody"), "{err}");
}
