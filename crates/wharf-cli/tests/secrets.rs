//! No secret is ever printed: one unique secret string is set in every place configuration
//! can hold a credential (the configuration file and the environment), every command that
//! reads configuration is run with logs at debug, and all of stdout and stderr is searched
//! for it. Adapters that are not compiled in still have their tables read and printed by
//! `wharf doctor`; those that are compiled in are pointed at a closed port, so their errors
//! (which quote the URL they called) are searched too.

mod common;

use std::process::Output;

use common::Sandbox;

const SECRET: &str = "wharfSEKRIT7f3a9c";

/// Every credential-bearing key of the configuration file, set to (or holding) the secret.
fn secret_tables(closed: &str) -> String {
    format!(
        r#"
[tracking.mlflow]
uri = "http://alice:{SECRET}@{closed}/?token={SECRET}"

[registry.mlflow]
uri = "http://{SECRET}@{closed}/"

[lineage.openlineage]
url = "http://bob:{SECRET}@{closed}/?api_key={SECRET}"
api_key = "{SECRET}"
strict = true

[serving]
admin_token = "{SECRET}"

[serving.bentoml]
url = "http://carol:{SECRET}@{closed}/"
auth_header = "Authorization: Bearer {SECRET}"
"#
    )
}

/// The command with the secret in every environment variable that can carry one, and logs
/// at debug.
fn run(s: &Sandbox, args: &[&str]) -> Output {
    let mut cmd = s.command(args);
    cmd.env("RUST_LOG", "debug")
        .env("WHARF_LOG", "debug")
        .env("WHARF_SERVING__ADMIN_TOKEN", SECRET)
        .env("WHARF_LINEAGE__OPENLINEAGE__API_KEY", SECRET)
        .env("OPENLINEAGE_API_KEY", SECRET)
        .env("OPENLINEAGE_URL", format!("http://dave:{SECRET}@127.0.0.1:1/"))
        .env("MLFLOW_TRACKING_TOKEN", SECRET)
        .env("MLFLOW_TRACKING_USERNAME", "erin")
        .env("MLFLOW_TRACKING_PASSWORD", SECRET);
    cmd.output().expect("run wharf")
}

fn assert_silent(s: &Sandbox, args: &[&str]) -> Output {
    let out = run(s, args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stdout.contains(SECRET), "`wharf {}` printed the secret on stdout:\n{stdout}", args.join(" "));
    assert!(!stderr.contains(SECRET), "`wharf {}` printed the secret on stderr:\n{stderr}", args.join(" "));
    out
}

/// The commands that read configuration, in an order where each has what it needs.
fn every_command(s: &Sandbox) {
    for json in [false, true] {
        let prefix: &[&str] = if json { &["--json"] } else { &[] };
        let with = |args: &[&str]| -> Vec<String> { prefix.iter().chain(args).map(|a| a.to_string()).collect() };
        for args in [
            with(&["doctor"]),
            with(&["train", "--input", "leads.csv", "--target", "converted", "--name", "lead", "--alias", "champion"]),
            with(&["models", "list"]),
            with(&["models", "show", "lead@champion"]),
            with(&["models", "alias", "lead", "staging", "1"]),
            with(&["models", "alias", "lead", "staging", "--delete"]),
            with(&["score", "-m", "lead@champion", "-i", "new.csv", "-o", "scored.csv"]),
            with(&["stream", "-m", "lead@champion", "-i", "new.jsonl", "-o", "out.jsonl"]),
            with(&["runs", "sync"]),
            with(&["lineage", "replay"]),
            with(&[
                "run-models",
                "-c",
                "models.toml",
                "-i",
                "records.jsonl",
                "-s",
                &format!("postgres://frank:{SECRET}@127.0.0.1:1/db?password={SECRET}"),
            ]),
            with(&["version"]),
        ] {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            assert_silent(s, &args);
        }
    }
}

fn sandbox(config: &str) -> Sandbox {
    let s = Sandbox::with_leads();
    s.write("wharf.toml", config);
    let rows: Vec<String> = common::lead_rows(5)
        .lines()
        .skip(1)
        .enumerate()
        .map(|(i, _)| format!(r#"{{"id": {i}, "data": {{}}}}"#))
        .collect();
    s.write("records.jsonl", rows.join("\n") + "\n");
    s.write("new.jsonl", "{\"source\": \"web\"}\n");
    s.write("models.toml", "[[model]]\nmodel = \"lead@champion\"\nstatus = \"active\"\ninput = \"shared\"\n");
    s
}

#[test]
fn no_command_prints_a_secret_with_the_built_in_backends() {
    // The adapters' tables are read (and printed by doctor) but the ports stay local, so
    // the commands do their work and print their usual output.
    let s = sandbox(&secret_tables("127.0.0.1:1"));
    let doctor = assert_silent(&s, &["doctor"]);
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(text.contains("http://***@127.0.0.1:1/?token=***"), "doctor shows the masked URL:\n{text}");
    assert!(text.contains("Authorization: ***"), "doctor shows which header is set:\n{text}");
    every_command(&s);
}

#[test]
fn no_command_prints_a_secret_when_the_adapters_fail() {
    // Every compiled-in adapter is selected and points at a closed port: their errors quote
    // the URL they called.
    let config = format!(
        "[tracking]\nbackend = \"mlflow\"\n[registry]\nbackend = \"mlflow\"\n[lineage]\nbackend = \"openlineage\"\n{}",
        secret_tables("127.0.0.1:1")
    );
    let s = sandbox(&config);
    for args in [
        &["doctor"][..],
        &["--json", "doctor"],
        &["train", "--input", "leads.csv", "--target", "converted", "--name", "lead"],
        &["models", "list"],
        &["models", "show", "lead"],
        &["runs", "sync"],
        &["lineage", "replay"],
    ] {
        assert_silent(&s, args);
    }
    // A URL that does not parse is quoted in its error, without the secret.
    let s = sandbox(&format!(
        "[tracking]\nbackend = \"mlflow\"\n[tracking.mlflow]\nuri = \"mlflow://u:{SECRET}@h\"\n\
         [lineage]\nbackend = \"openlineage\"\n[lineage.openlineage]\nurl = \"ftp://u:{SECRET}@h\"\n"
    ));
    assert_silent(&s, &["doctor"]);
    assert_silent(&s, &["models", "list"]);
}

#[test]
fn configuration_errors_never_quote_a_secret() {
    for broken in [
        // A syntax error on the token's line: toml would quote the line.
        format!("[serving]\nadmin_token = \"{SECRET}\n"),
        // A value of the wrong type under a credential's key: serde would quote the value.
        format!("[serving]\nadmin_token = [\"{SECRET}\"]\n"),
        format!("[serving.bentoml]\nauth_header = {{ value = \"{SECRET}\" }}\n"),
        // A syntax error on another line, the secret in a URL of the line quoted.
        format!("[tracking.mlflow]\nuri = \"http://u:{SECRET}@h\" trailing\n"),
    ] {
        let s = sandbox(&broken);
        let doctor = assert_silent(&s, &["doctor"]);
        // A syntax error ends the command (a mistyped value may be replaced by the
        // environment's, or sit in a table of a backend not in use).
        let syntax_error = broken.matches('"').count() % 2 == 1 || broken.contains("trailing");
        assert!(!syntax_error || !doctor.status.success(), "{broken}");
        assert_silent(&s, &["--json", "doctor"]);
        assert_silent(&s, &["models", "list"]);
    }
}

/// `wharf serve` with logs at debug: its start-up, a request refused by the admin API, a
/// scoring request and its shutdown print nothing secret.
#[cfg(feature = "serve")]
#[test]
fn the_server_prints_no_secret() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::Stdio;

    let s = sandbox(&secret_tables("127.0.0.1:1"));
    assert_silent(&s, &["train", "--input", "leads.csv", "--target", "converted", "--name", "lead"]);
    let mut cmd = s.command(&["serve", "-m", "lead", "--addr", "127.0.0.1:0"]);
    cmd.env("RUST_LOG", "debug")
        .env("WHARF_LOG", "debug")
        .env("WHARF_SERVING__ADMIN_TOKEN", SECRET)
        .env("OPENLINEAGE_API_KEY", SECRET)
        .env("MLFLOW_TRACKING_PASSWORD", SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("serve");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = String::new();
    let addr = loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).expect("read") == 0 {
            panic!("the server stopped before listening:\n{seen}");
        }
        seen.push_str(&line);
        if let Some(at) = line.find("addr=") {
            break line[at + 5..].split_whitespace().next().expect("an address").to_string();
        }
    };
    let send = |request: String| {
        let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
        stream.write_all(request.as_bytes()).expect("send");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    };
    let refused = send("POST /admin/models/lead/reload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into());
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    let bad = send("POST /models/lead/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".into());
    assert!(!bad.contains(SECRET), "{bad}");
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill")
        .success());
    let _ = stderr.read_to_string(&mut seen);
    let mut stdout = String::new();
    let _ = child.stdout.take().expect("stdout").read_to_string(&mut stdout);
    child.wait().expect("exit");
    assert!(!seen.contains(SECRET), "`wharf serve` logged the secret:\n{seen}");
    assert!(!stdout.contains(SECRET), "`wharf serve` printed the secret:\n{stdout}");
}
