//! Remote downloads are bounded: a model download stops at the artifact format's limit with
//! a typed error (a local server answering a too-large body stands in for a broken or
//! hostile MLflow), and reading a version's metadata (`wharf models show`) never fetches
//! the model, which the real MLflow server proves.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use wharf_core::conformance::fixture_model;
use wharf_core::{ArtifactError, RegistryPort, Selector, Version, WharfError};
use wharf_mlflow::{MlflowClient, MAX_DOWNLOAD_BYTES};

/// A one-connection-at-a-time HTTP server on loopback that answers every request with
/// status 200, the given `Content-Length` (or none, closing the connection to end the
/// body) and up to `send` zero bytes. Returns its base URL.
fn oversized_server(announce: Option<u64>, send: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) && line != "\r\n" {
                line.clear();
            }
            let length = announce.map(|n| format!("Content-Length: {n}\r\n")).unwrap_or_default();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n{length}Connection: close\r\n\r\n"
            );
            if stream.write_all(head.as_bytes()).is_err() {
                continue;
            }
            let chunk = vec![0u8; 64 * 1024];
            let mut sent = 0;
            while sent < send {
                if stream.write_all(&chunk).is_err() {
                    break;
                }
                sent += chunk.len();
            }
        }
    });
    format!("http://{addr}/")
}

fn oversized(result: wharf_core::Result<Vec<u8>>) -> (u64, u64) {
    match result {
        Err(WharfError::Artifact { kind: ArtifactError::Oversized { size, limit }, .. }) => (size, limit),
        other => panic!("expected Oversized, got {:?}", other.map(|b| b.len())),
    }
}

#[test]
fn an_announced_body_over_the_limit_is_refused_before_it_is_read() {
    // 2 GiB announced, 4 MiB sent: the download stops at the announcement.
    let uri = oversized_server(Some(2 << 30), 4 << 20);
    let client = MlflowClient::new(&uri, Duration::from_secs(30)).expect("client");
    let started = Instant::now();
    let (size, limit) = oversized(client.download_artifact("mlflow-artifacts:/1/r/artifacts", "model/model.wharf"));
    assert_eq!((size, limit), (2 << 30, MAX_DOWNLOAD_BYTES));
    assert!(started.elapsed() < Duration::from_secs(10), "refused at once, not after reading");
}

#[test]
fn an_unannounced_body_is_cut_at_the_limit() {
    // No Content-Length: the body ends when the server closes, here after 8 MiB.
    let uri = oversized_server(None, 8 << 20);
    let client = MlflowClient::new(&uri, Duration::from_secs(30)).expect("client");
    let (size, limit) =
        oversized(client.download_artifact_capped("mlflow-artifacts:/1/r/artifacts", "model/MLmodel", 1 << 20));
    assert_eq!((size, limit), ((1 << 20) + 1, 1 << 20));
    // Under the limit, the same body is read whole.
    let uri = oversized_server(None, 256 << 10);
    let client = MlflowClient::new(&uri, Duration::from_secs(30)).expect("client");
    let body = client.download_artifact_capped("mlflow-artifacts:/1/r/artifacts", "x", 1 << 20).expect("read");
    assert_eq!(body.len(), 256 << 10);
}

#[test]
fn version_metadata_is_read_without_the_model() {
    let Some(uri) = common::mlflow_uri() else { return };
    let registry = common::registry(&uri);
    let name = common::unique("show-meta");
    let model = fixture_model();
    let version = registry.register(&model, &name).expect("register");
    assert_eq!(version, Version(1));
    let client = common::client(&uri);
    let entry = client.get_model_version(&name, "1").expect("version");
    // Spoil the stored model: anything that reads it now fails.
    client.upload_artifact(&entry.source, "model.wharf", b"not a model".to_vec()).expect("overwrite");
    assert!(registry.load_selected(&name, &Selector::Latest).is_err(), "the model itself is unreadable now");

    // The version's facts come from its tag…
    let info = registry.version_info(&name, &Selector::Latest).expect("info from the tag");
    assert_eq!(info.signature, *model.signature());
    // …or, without the tag, from the small MLmodel file: never from the model.
    let url = format!("{}/api/2.0/mlflow/model-versions/delete-tag", uri.trim_end_matches('/'));
    let resp = reqwest::blocking::Client::new()
        .delete(url)
        .json(&serde_json::json!({"name": name, "version": "1", "key": wharf_mlflow::INFO_TAG}))
        .send()
        .expect("delete tag");
    assert!(resp.status().is_success(), "delete-tag: {}", resp.status());
    assert!(client.get_model_version(&name, "1").expect("version").tag(wharf_mlflow::INFO_TAG).is_none());
    let info = registry.version_info(&name, &Selector::Latest).expect("info from MLmodel");
    assert_eq!(info.signature, *model.signature());
    assert_eq!(registry.list().expect("list").iter().filter(|m| m.name == name).count(), 1);
}
