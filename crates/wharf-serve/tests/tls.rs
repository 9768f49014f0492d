//! HTTPS and mTLS against a real listener, spoken to by the real `curl`, with a CA, a server
//! certificate and client certificates generated here (rcgen). Skipped when `curl` is not
//! installed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use serde_json::{json, Value};
use wharf_core::{FileRegistry, RegistryPort};
use wharf_ml::{datasets, Trainer};
use wharf_serve::{ModelsBuilder, RunningServer, ServeOptions, TlsFiles};

/// A CA and what it signed, as PEM files in `dir`.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    /// A client certificate signed by another CA.
    stranger_cert: PathBuf,
    stranger_key: PathBuf,
}

fn write(dir: &Path, name: &str, pem: String) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    path
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(names: &[&str], issuer: &CertifiedIssuer<'static, KeyPair>) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn pki(dir: &Path) -> Pki {
    let authority = ca("wharf test CA");
    let (server_cert, server_key) = leaf(&["localhost", "127.0.0.1"], &authority);
    let (client_cert, client_key) = leaf(&["client.test"], &authority);
    let (stranger_cert, stranger_key) = leaf(&["stranger.test"], &ca("another CA"));
    Pki {
        ca: write(dir, "ca.pem", authority.pem()),
        server_cert: write(dir, "server.pem", server_cert),
        server_key: write(dir, "server-key.pem", server_key),
        client_cert: write(dir, "client.pem", client_cert),
        client_key: write(dir, "client-key.pem", client_key),
        stranger_cert: write(dir, "stranger.pem", stranger_cert),
        stranger_key: write(dir, "stranger-key.pem", stranger_key),
    }
}

fn serve(dir: &Path, tls: Option<TlsFiles>) -> std::io::Result<RunningServer> {
    let registry = Arc::new(FileRegistry::new(dir.join("registry")));
    registry.register(&Trainer::logistic_regression().fit(&datasets::lead_scoring()).unwrap(), "lead").unwrap();
    let models = ModelsBuilder::new().registry(registry).model("lead".parse().unwrap()).build().unwrap();
    wharf_serve::spawn(models, ServeOptions { tls, ..ServeOptions::default() }, "127.0.0.1:0")
}

/// Runs curl; its exit code and what it printed (`-w` output last).
fn curl(args: &[&str]) -> (i32, String) {
    let output = Command::new("curl").args(["-sS", "--max-time", "20"]).args(args).output().unwrap();
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stdout).to_string())
}

fn curl_missing() -> bool {
    if Command::new("curl").arg("--version").output().is_ok() {
        return false;
    }
    println!("skipped: curl is not installed");
    true
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn curl_speaks_https_and_http2_to_a_tls_listener() {
    if curl_missing() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let files = TlsFiles { cert: pki.server_cert.clone(), key: pki.server_key.clone(), client_ca: None };
    let server = serve(dir.path(), Some(files)).unwrap();
    assert!(server.url().starts_with("https://"));
    let url = |path: &str| format!("{}{path}", server.url());

    let (code, out) = curl(&["--cacert", p(&pki.ca), "-w", " %{http_code} %{http_version}", &url("/livez")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.ends_with(" 200 2"), "HTTP/2 by ALPN: {out}");
    let (code, out) =
        curl(&["--http1.1", "--cacert", p(&pki.ca), "-w", " %{http_code} %{http_version}", &url("/livez")]);
    assert!(code == 0 && out.ends_with(" 200 1.1"), "{out}");

    let body = json!({"records": [{"source": "organic", "industry": "health", "pages_viewed": 9,
        "minutes_on_site": 23.7, "emails_opened": 7, "company_size": 210, "days_since_signup": 49}]});
    let (code, out) = curl(&[
        "--cacert",
        p(&pki.ca),
        "-H",
        "content-type: application/json",
        "-d",
        &body.to_string(),
        &url("/models/lead/predict"),
    ]);
    assert_eq!(code, 0, "{out}");
    let answer: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["predictions"].as_array().map(Vec::len), Some(1), "{answer}");

    // Without the CA the server's certificate is not trusted; plain HTTP gets no answer.
    let (code, _) = curl(&[&url("/livez")]);
    assert_ne!(code, 0, "an untrusted certificate is refused by curl");
    let (code, out) = curl(&["-w", "%{http_code}", &format!("http://{}/livez", server.addr())]);
    assert!(code != 0 || !out.ends_with("200"), "plain HTTP is not served on the TLS port: {out}");
}

#[test]
fn with_a_client_ca_only_clients_it_signed_get_in() {
    if curl_missing() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let files =
        TlsFiles { cert: pki.server_cert.clone(), key: pki.server_key.clone(), client_ca: Some(pki.ca.clone()) };
    let server = serve(dir.path(), Some(files)).unwrap();
    let url = format!("{}/livez", server.url());

    let (code, _) = curl(&["--cacert", p(&pki.ca), &url]);
    assert_ne!(code, 0, "no client certificate: the handshake fails");
    let (code, _) =
        curl(&["--cacert", p(&pki.ca), "--cert", p(&pki.stranger_cert), "--key", p(&pki.stranger_key), &url]);
    assert_ne!(code, 0, "a certificate from another CA is refused");
    let (code, out) = curl(&[
        "--cacert",
        p(&pki.ca),
        "--cert",
        p(&pki.client_cert),
        "--key",
        p(&pki.client_key),
        "-w",
        " %{http_code}",
        &url,
    ]);
    assert!(code == 0 && out.ends_with(" 200"), "{code} {out}");
}

#[test]
fn bad_tls_settings_stop_the_server_before_it_listens() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let cases = [
        (TlsFiles { cert: dir.path().join("missing.pem"), key: pki.server_key.clone(), client_ca: None }, "tls_cert"),
        (TlsFiles { cert: pki.server_cert.clone(), key: PathBuf::new(), client_ca: None }, "tls_key is not set"),
        (TlsFiles { cert: pki.server_cert.clone(), key: pki.client_key.clone(), client_ca: None }, "tls_key"),
        (TlsFiles { cert: pki.server_key.clone(), key: pki.server_key.clone(), client_ca: None }, "no PEM certificate"),
    ];
    for (files, named) in cases {
        let err = serve(dir.path(), Some(files)).unwrap_err().to_string();
        assert!(err.contains(named), "{err}");
        assert!(!err.contains("PRIVATE KEY"), "no key material in the error: {err}");
    }
}
