//! `wharf serve` end to end: the binary serves a registered model on a free port, answers
//! over a real socket, and stops cleanly on SIGTERM.
#![cfg(feature = "serve")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use wharf::{datasets, FileRegistry, RegistryPort, Trainer};

mod common;
use common::Sandbox;

fn command(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf"));
    cmd.current_dir(dir).args(args);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("WHARF_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// A plain HTTP/1.1 exchange, so the test needs no HTTP client.
fn http(addr: &str, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[cfg(unix)]
#[test]
fn serve_answers_on_a_free_port_and_stops_on_sigterm() {
    let s = Sandbox::new();
    let registry = FileRegistry::new(s.path("reg"));
    let model = Trainer::logistic_regression().fit(&datasets::iris()).unwrap();
    registry.register(&model, "iris").unwrap();

    let (server, addr) = s.serve(&["serve", "--registry", "reg", "-m", "iris@1"]);
    let live = http(&addr, "GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(live.starts_with("HTTP/1.1 200") && live.ends_with("\"LIVE\""), "{live}");
    let body = r#"{"instances": [[5.1, 3.5, 1.4, 0.2]]}"#;
    let predict = http(
        &addr,
        &format!(
            "POST /models/iris/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(predict.starts_with("HTTP/1.1 200") && predict.contains("\"setosa\""), "{predict}");

    server.terminate();
}

#[test]
fn serve_refuses_to_start_with_a_model_it_cannot_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("reg")).unwrap();
    let out =
        command(dir.path(), &["serve", "--registry", "reg", "-m", "ghost", "--addr", "127.0.0.1:0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error:") && stderr.contains("ghost"), "{stderr}");
}

/// The body of an HTTP/1.1 answer with a `Content-Length`.
#[cfg(all(unix, feature = "bentoml"))]
fn body_of(answer: &str) -> serde_json::Value {
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{answer}");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

#[cfg(all(unix, feature = "bentoml"))]
fn post_json(addr: &str, path: &str, body: &str) -> serde_json::Value {
    body_of(&http(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    ))
}

/// `serving.backend = "bentoml"` from the environment moves `wharf serve` onto the BentoML
/// service: its answers are the service's own, not the registered model's.
#[cfg(all(unix, feature = "bentoml"))]
#[test]
fn serve_answers_from_bentoml_when_configured() {
    let url = match std::env::var("WHARF_TEST_BENTOML_URL").ok().filter(|v| !v.trim().is_empty()) {
        Some(url) => url,
        None if std::env::var("WHARF_TEST_REQUIRE_BACKENDS").as_deref() == Ok("1") => {
            panic!(
                "WHARF_TEST_BENTOML_URL is not set but WHARF_TEST_REQUIRE_BACKENDS=1: the BentoML backend is missing"
            )
        }
        None => {
            let _ = writeln!(std::io::stderr(), "skipped: WHARF_TEST_BENTOML_URL not set (run cargo xtask backends)");
            return;
        }
    };
    let service = url.trim_start_matches("http://").trim_end_matches('/').to_string();
    let dir = tempfile::tempdir().unwrap();
    let registry = FileRegistry::new(dir.path().join("reg"));
    // The service's signature (iris, classes setosa/versicolor/virginica), weights of its own.
    let model = Trainer::logistic_regression().fit(&datasets::iris()).unwrap();
    registry.register(&model, "iris").unwrap();

    let child = command(dir.path(), &["serve", "--registry", "reg", "-m", "iris", "--addr", "127.0.0.1:0"])
        .args(["--log-format", "json"])
        .env("WHARF_SERVING__BACKEND", "bentoml")
        .env("WHARF_SERVING__BENTOML__URL", &url)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A failed assertion must not leave the server running (it would hold the test's output).
    let mut child = common::Running(Some(child));
    let mut lines = BufReader::new(child.child().stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("the server logs where it listens").unwrap();
        if line.contains("listening") {
            let log: serde_json::Value = serde_json::from_str(&line).expect("JSON log lines");
            break log["fields"]["addr"].as_str().unwrap().to_string();
        }
    };
    let instances = "[[5.1, 3.5, 1.4, 0.2], [6.0, 2.7, 5.1, 1.6], [6.3, 2.8, 5.1, 1.5], [7.7, 3.0, 6.1, 2.3]]";
    let own = post_json(&service, "/predict_proba", &format!("{{\"input_data\": {instances}}}"));
    let served =
        post_json(&addr, "/models/iris/predict?probabilities=array", &format!("{{\"instances\": {instances}}}"));
    assert_eq!(served["probabilities"], own["probabilities"], "the service's probabilities, unchanged");
    let ids = post_json(&service, "/predict", &format!("{{\"input_data\": {instances}}}"));
    let classes = ["setosa", "versicolor", "virginica"];
    let labels: Vec<&str> = ids.as_array().unwrap().iter().map(|id| classes[id.as_u64().unwrap() as usize]).collect();
    assert_eq!(served["predictions"], serde_json::json!(labels), "the service's classes");

    let mut child = child.0.take().unwrap();
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
}

/// The lines `wharf serve` logs from where it listens up to the one containing `until`.
#[cfg(unix)]
fn start_lines(dir: &std::path::Path, env: &[(&str, &str)], until: &str) -> Vec<String> {
    let mut child = command(dir, &["serve", "--registry", "reg", "-m", "iris@1", "--addr", "0.0.0.0:0"])
        .envs(env.iter().copied())
        .env("WHARF_LOG", "debug")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A watchdog stops the server if the awaited line never comes, so the test cannot hang.
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let pid = child.id().to_string();
    let watchdog = std::thread::spawn(move || {
        if finished.recv_timeout(std::time::Duration::from_secs(60)).is_err() {
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
        }
    });
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let mut listening = false;
    for line in lines.by_ref() {
        let line = line.unwrap();
        listening |= line.contains("listening");
        if listening {
            seen.push(line.clone());
        }
        if listening && line.contains(until) {
            break;
        }
    }
    let _ = done.send(());
    let _ = watchdog.join();
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    seen
}

#[cfg(unix)]
#[test]
fn serve_warns_loudly_when_exposed_without_auth_or_tls() {
    let dir = tempfile::tempdir().unwrap();
    let registry = FileRegistry::new(dir.path().join("reg"));
    registry.register(&Trainer::logistic_regression().fit(&datasets::iris()).unwrap(), "iris").unwrap();

    let open = start_lines(dir.path(), &[], "without TLS");
    assert!(open.iter().any(|l| l.contains("WARN") && l.contains("no scoring token")), "{open:#?}");

    let token = "tok-SECRET-c0ffee";
    let guarded = start_lines(dir.path(), &[("WHARF_SERVING__SCORING_TOKENS", token)], "without TLS");
    assert!(!guarded.iter().any(|l| l.contains("no scoring token")), "{guarded:#?}");
    assert!(!guarded.iter().any(|l| l.contains(token)), "the token is never logged");
}

/// Logs piped to a reader that goes away (`wharf serve 2>&1 | head`) are lost; the server
/// keeps answering.
#[cfg(unix)]
#[test]
fn a_closed_log_pipe_does_not_stop_the_server() {
    let s = Sandbox::new();
    let registry = FileRegistry::new(s.path("reg"));
    registry.register(&Trainer::logistic_regression().fit(&datasets::iris()).unwrap(), "iris").unwrap();
    let child = s
        .command(&["serve", "--registry", "reg", "-m", "iris@1", "--addr", "127.0.0.1:0", "--log-format", "json"])
        .env("WHARF_LOG", "debug")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = common::Running(Some(child));
    let mut lines = BufReader::new(server.child().stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("the server logs where it listens").unwrap();
        if line.contains("listening") {
            let log: serde_json::Value = serde_json::from_str(&line).unwrap();
            break log["fields"]["addr"].as_str().unwrap().to_string();
        }
    };
    drop(lines);
    // Every request now logs (debug) into the closed pipe.
    for _ in 0..5 {
        let live = http(&addr, "GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert!(live.starts_with("HTTP/1.1 200"), "{live}");
    }
    assert!(server.child().try_wait().unwrap().is_none(), "still running");
}
