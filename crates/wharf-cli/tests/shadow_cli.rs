//! Champion/challenger online, end to end through the real binary: `wharf serve --shadow`
//! logs what a challenger would have answered, and `wharf promote --from-shadow` gates on
//! that log, with and without the outcomes that arrived later.
#![cfg(all(feature = "serve", unix))]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::{Running, Sandbox};

/// `leads.csv` (the first 900 bundled rows) and `live.csv` (the other 300, as traffic).
fn sandbox() -> Sandbox {
    let s = Sandbox::new();
    let lines: Vec<&str> = wharf::datasets::LEAD_SCORING_CSV.lines().collect();
    s.write("leads.csv", format!("{}\n{}\n", lines[0], lines[1..901].join("\n")));
    s.write("live.csv", format!("{}\n{}\n", lines[0], lines[901..].join("\n")));
    s
}

fn train(s: &Sandbox, extra: &[&str]) {
    let mut args =
        vec!["-q", "train", "--input", "leads.csv", "--target", "converted", "--id", "lead_id", "--name", "lead"];
    args.extend_from_slice(extra);
    s.ok(&args);
}

fn version_of(s: &Sandbox, alias: &str) -> u64 {
    s.json(&["models", "show", &format!("lead@{alias}")])["version"].as_u64().unwrap()
}

/// Starts `wharf serve` with the challenger in shadow; returns the child and its address.
fn serve(s: &Sandbox) -> (Running, String) {
    s.serve(&["serve", "-m", "lead@champion", "--shadow", "lead@challenger"])
}

/// Sends the 300 live rows, 3 per request with id `r<k>`, and writes `outcomes.csv`: each
/// row's true answer by request id and row, as labels arriving later would.
fn send_traffic(s: &Sandbox, addr: &str) {
    let text = s.read("live.csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let mut outcomes = String::from("request_id,row,converted\n");
    for (k, chunk) in rows.chunks(3).enumerate() {
        let records: Vec<serde_json::Value> = chunk
            .iter()
            .map(|row| {
                let mut record = serde_json::Map::new();
                for (name, cell) in header.iter().zip(row).skip(1).take(7) {
                    let value = cell.parse::<f64>().map(serde_json::Value::from).unwrap_or_else(|_| (*cell).into());
                    record.insert((*name).to_string(), value);
                }
                serde_json::Value::Object(record)
            })
            .collect();
        for (i, row) in chunk.iter().enumerate() {
            outcomes += &format!("r{k},{i},{}\n", row[8]);
        }
        let body = serde_json::json!({ "records": records }).to_string();
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "POST /models/lead/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Request-Id: r{k}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.to_ascii_lowercase().contains(&format!("x-request-id: r{k}\r\n")), "{answer}");
    }
    s.write("outcomes.csv", outcomes);
}

#[test]
fn a_challenger_in_shadow_is_promoted_only_on_what_it_did_live() {
    let s = sandbox();
    train(&s, &["-a", "tree", "--max-depth", "1", "--alias", "champion"]); // 1: a stump
    train(&s, &["--alias", "challenger"]); // 2: logistic regression

    let (child, addr) = serve(&s);
    send_traffic(&s, &addr);
    child.terminate();
    assert!(s.path("wharf-shadow").is_dir(), "the log goes to serving.shadow_log by default");

    let gate = ["promote", "lead", "--candidate", "@challenger", "--from-shadow", "wharf-shadow"];
    // A stump and a logistic regression do not agree on 99% of rows: refused, exit 1.
    let err = s.error(&[&gate[..], &["--min-agreement", "0.99"]].concat());
    assert!(err.contains("agreement") && err.contains("below the 0.99 required"), "{err}");
    // Too little evidence is refused too.
    let err = s.error(&[&gate[..], &["--min-agreement", "0", "--min-rows", "1000"]].concat());
    assert!(err.contains("300 rows") && err.contains("fewer than the 1000 required"), "{err}");
    assert_eq!(version_of(&s, "champion"), 1);

    // With the outcomes that arrived since, the paired bootstrap on the labelled rows decides.
    let out = s.ok(&[&gate[..], &["--min-agreement", "0", "--labels", "outcomes.csv"]].concat());
    assert!(out.contains("Shadow log wharf-shadow: 100 requests, 300 rows"), "{out}");
    assert!(out.contains("Promoted: lead@champion -> version 2"), "{out}");
    let runs: Vec<serde_json::Value> = std::fs::read_dir(s.path("wharf-runs"))
        .unwrap()
        .map(|e| serde_json::from_str(&std::fs::read_to_string(e.unwrap().path().join("run.json")).unwrap()).unwrap())
        .filter(|run: &serde_json::Value| run["info"]["name"] == "promote-lead")
        .collect();
    assert_eq!(runs.len(), 3, "every decision is a tracked run");
    assert!(runs.iter().any(|r| r["tags"]["wharf.decision"] == "promoted" && r.to_string().contains("agreement")));
    assert_eq!(version_of(&s, "champion"), 2);

    // Now the stump shadows the logistic regression: the labels show it is worse.
    s.ok(&["models", "alias", "lead", "challenger", "1"]);
    std::fs::remove_dir_all(s.path("wharf-shadow")).unwrap();
    let (child, addr) = serve(&s);
    send_traffic(&s, &addr);
    child.terminate();
    let decided = s.run(&[&gate[..], &["--min-agreement", "0", "--labels", "outcomes.csv", "--json"]].concat());
    assert_eq!(decided.status.code(), Some(1));
    let decided: serde_json::Value = serde_json::from_slice(&decided.stdout).unwrap();
    assert_eq!(decided["promoted"], false, "{decided}");
    assert_eq!(decided["shadow"]["labelled_rows"], 300, "{decided}");
    assert!(decided["comparison"]["improvement"].as_f64().unwrap() < 0.0, "{decided}");
    assert_eq!(version_of(&s, "champion"), 2);

    // A log of other versions is an error that says what it holds.
    let err = s.error(&["promote", "lead", "--candidate", "2", "--from-shadow", "wharf-shadow"]);
    assert!(
        err.contains("no request of lead version 2 shadowed by version 2") && err.contains("2 shadowed by 1"),
        "{err}"
    );
}
