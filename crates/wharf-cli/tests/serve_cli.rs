//! `wharf serve` end to end: the binary serves a registered model on a free port, answers
//! over a real socket, and stops cleanly on SIGTERM.
#![cfg(feature = "serve")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use wharf::{datasets, FileRegistry, RegistryPort, Trainer};

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
    let dir = tempfile::tempdir().unwrap();
    let registry = FileRegistry::new(dir.path().join("reg"));
    let model = Trainer::logistic_regression().fit(&datasets::iris()).unwrap();
    registry.register(&model, "iris").unwrap();

    let mut child = command(dir.path(), &["serve", "--registry", "reg", "-m", "iris@1", "--addr", "127.0.0.1:0"])
        .args(["--log-format", "json"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("the server logs where it listens").unwrap();
        if line.contains("listening") {
            let log: serde_json::Value = serde_json::from_str(&line).expect("JSON log lines");
            break log["fields"]["addr"].as_str().unwrap().to_string();
        }
    };
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

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "graceful exit on SIGTERM: {exit}");
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
