//! What a hostile or careless client cannot do to `wharf serve`: hold connections forever,
//! exhaust file descriptors, make the server wait for a body it announced too large, queue
//! scoring work without bound, or grow its memory past a stated bound.
//!
//! Tests that measure the server's process (its descriptors, its memory) run it in a child
//! process: this test binary re-run with `WHARF_TEST_SERVE_CHILD` set, under `ulimit -n`
//! when the test needs a small open-file limit. Linux only where `/proc` is read.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wharf_core::{FileRegistry, RegistryPort};
use wharf_ml::{datasets, Trainer};
use wharf_serve::{ModelsBuilder, RunningServer, ServeOptions};

/// Set in the child: the server's settings, `key=value` pairs separated by commas.
const CHILD: &str = "WHARF_TEST_SERVE_CHILD";

/// A registry holding `lead` (logistic regression) version 1.
fn registry() -> (tempfile::TempDir, Arc<FileRegistry>) {
    let dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(FileRegistry::new(dir.path()));
    registry.register(&Trainer::logistic_regression().fit(&datasets::lead_scoring()).unwrap(), "lead").unwrap();
    (dir, registry)
}

fn start(options: ServeOptions) -> (tempfile::TempDir, RunningServer) {
    let (dir, registry) = registry();
    let models = ModelsBuilder::new().registry(registry).model("lead".parse().unwrap()).build().unwrap();
    (dir, wharf_serve::spawn(models, options, "127.0.0.1:0").unwrap())
}

fn lead_row() -> Value {
    json!({"source": "organic", "industry": "health", "pages_viewed": 9, "minutes_on_site": 23.7,
           "emails_opened": 7, "company_size": 210, "days_since_signup": 49})
}

/// The server run by the parent test: builds the models, prints `ADDR host:port` and
/// serves until its stdin closes. Does nothing in an ordinary test run.
#[test]
fn child_server() {
    let Ok(spec) = std::env::var(CHILD) else { return };
    let mut options = ServeOptions::default();
    for pair in spec.split(',').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap();
        let n: u64 = value.parse().unwrap();
        match key {
            "header_read_ms" => options.header_read_timeout = Duration::from_millis(n),
            "max_connections" => options.max_connections = n as usize,
            "max_concurrent_scoring" => options.max_concurrent_scoring = n as usize,
            "body_limit" => options.body_limit = n as usize,
            other => panic!("unknown child setting {other}"),
        }
    }
    let (_dir, server) = start(options);
    println!("ADDR {}", server.addr());
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    server.shutdown().unwrap();
}

/// A server in a child process; killed when dropped.
struct ChildServer {
    child: Child,
    addr: String,
    /// Kept open, so the child's last lines do not meet a closed pipe.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl ChildServer {
    fn start(settings: &str, open_files: Option<u32>) -> ChildServer {
        let exe = std::env::current_exe().unwrap();
        let ulimit = open_files.map(|n| format!("ulimit -n {n} && ")).unwrap_or_default();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("{ulimit}exec \"$0\" child_server --exact --nocapture --test-threads=1"))
            .arg(exe)
            .env(CHILD, settings)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let addr = loop {
            line.clear();
            assert!(stdout.read_line(&mut line).unwrap() > 0, "the child server printed its address");
            if let Some((_, addr)) = line.split_once("ADDR ") {
                break addr.trim().to_string();
            }
        };
        ChildServer { child, addr, _stdout: stdout }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A line of `/proc/<pid>/status` in kB (`VmHWM`, `VmRSS`).
    fn status_kb(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with(&format!("{field}:"))).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    fn open_descriptors(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).map(|d| d.count()).unwrap_or(0)
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client(timeout: Duration) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(timeout).build().unwrap()
}

/// Reads from `stream` until the server closes it; `None` if it is still open at `within`.
fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        stream.set_read_timeout(Some(left.max(Duration::from_millis(1)))).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return Some(seen),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(seen),
            Err(_) => return None,
        }
    }
}

#[test]
fn probes_answer_while_silent_sockets_exceed_the_open_file_limit() {
    if !cfg!(target_os = "linux") {
        println!("skipped: needs Linux (/proc)");
        return;
    }
    // 256 descriptors for the server, 600 silent clients: without a cap the server runs out
    // of descriptors and the probe waits in the kernel's queue behind the silent sockets.
    let server = ChildServer::start("header_read_ms=60000", Some(256));
    let silent: Vec<TcpStream> =
        (0..600).map(|_| TcpStream::connect(&server.addr).expect("the kernel accepts the connection")).collect();
    std::thread::sleep(Duration::from_millis(300));
    let client = client(Duration::from_secs(5));
    for path in ["/livez", "/readyz"] {
        let started = Instant::now();
        let response = client.get(server.url(path)).send().unwrap_or_else(|e| panic!("{path} did not answer: {e}"));
        assert_eq!(response.status().as_u16(), 200, "{path}");
        println!("{path} answered in {:?} with {} silent sockets open", started.elapsed(), silent.len());
    }
    assert!(server.open_descriptors() < 256, "the server stays under its open-file limit");
    // A real request still scores.
    let response = client.post(server.url("/models/lead/predict")).json(&json!({"records": [lead_row()]})).send();
    assert_eq!(response.unwrap().status().as_u16(), 200);
}

#[test]
fn silent_slow_and_idle_connections_are_closed() {
    let options = ServeOptions {
        header_read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(300),
        ..ServeOptions::default()
    };
    let (_dir, server) = start(options);

    // Silent: connects and sends nothing.
    let mut silent = TcpStream::connect(server.addr()).unwrap();
    assert!(read_until_closed(&mut silent, Duration::from_secs(10)).is_some(), "a silent connection is closed");

    // Slow headers: a byte every 50 ms never completes the headers within the timeout.
    let mut slow = TcpStream::connect(server.addr()).unwrap();
    let started = Instant::now();
    let mut closed = false;
    for byte in b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        .iter()
        .cycle()
        .take(200)
    {
        if slow.write_all(&[*byte]).is_err() {
            closed = true;
            break;
        }
        slow.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        if matches!(slow.read(&mut [0u8; 64]), Ok(0) | Err(_)) && started.elapsed() > Duration::from_millis(300) {
            // A read error here is the timeout of this poll, unless the peer is gone.
            if let Ok(0) = slow.read(&mut [0u8; 64]) {
                closed = true;
                break;
            }
        }
    }
    assert!(closed, "a slow-header connection is closed (after {:?})", started.elapsed());

    // Idle keep-alive: one request answered, then nothing.
    let mut idle = TcpStream::connect(server.addr()).unwrap();
    idle.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let seen = read_until_closed(&mut idle, Duration::from_secs(10)).expect("an idle connection is closed");
    assert!(seen.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&seen));
}

#[test]
fn an_announced_oversize_body_is_refused_at_once() {
    let (_dir, server) = start(ServeOptions::default());
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream
        .write_all(
            b"POST /models/lead/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 99999999999\r\n\r\n",
        )
        .unwrap();
    // The request timeout is 30 s: an answer within 10 s was not a timeout.
    let seen = read_until_closed(&mut stream, Duration::from_secs(10)).expect("answered and closed");
    let text = String::from_utf8_lossy(&seen);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
}

#[test]
fn scoring_past_the_concurrency_limit_is_shed_with_retry_after() {
    let (_dir, server) = start(ServeOptions { max_concurrent_scoring: 1, ..ServeOptions::default() });
    let body = serde_json::to_vec(&json!({"records": [lead_row()]})).unwrap();
    // A client that sends its headers and half its body holds the one scoring permit.
    let mut holder = TcpStream::connect(server.addr()).unwrap();
    let head = format!(
        "POST /models/lead/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    holder.write_all(head.as_bytes()).unwrap();
    holder.write_all(&body[..body.len() / 2]).unwrap();
    std::thread::sleep(Duration::from_millis(200));

    let client = client(Duration::from_secs(10));
    let shed = client.post(format!("{}/models/lead/predict", server.url())).json(&json!({"records": [lead_row()]}));
    let shed = shed.send().unwrap();
    assert_eq!(shed.status().as_u16(), 503);
    assert_eq!(shed.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    assert_eq!(shed.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("application/problem+json"));
    // Probes are not scoring: they still answer.
    assert_eq!(client.get(format!("{}/livez", server.url())).send().unwrap().status().as_u16(), 200);

    holder.write_all(&body[body.len() / 2..]).unwrap();
    let mut answer = [0u8; 12];
    holder.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    let after = client.post(format!("{}/models/lead/predict", server.url())).json(&json!({"records": [lead_row()]}));
    assert_eq!(after.send().unwrap().status().as_u16(), 200, "the permit came back");
    let metrics = client.get(format!("{}/metrics", server.url())).send().unwrap().text().unwrap();
    assert!(metrics.contains("wharf_requests_shed_total 1"), "{metrics}");
}

/// A `records` body of about `bytes` bytes.
fn records_body(bytes: usize) -> Vec<u8> {
    let row = serde_json::to_string(&lead_row()).unwrap();
    let n = bytes / (row.len() + 1) - 1;
    format!("{{\"records\": [{}]}}", vec![row.as_str(); n].join(",")).into_bytes()
}

#[test]
fn memory_under_concurrent_maximum_size_bodies_stays_bounded() {
    if !cfg!(target_os = "linux") {
        println!("skipped: needs Linux (/proc)");
        return;
    }
    const LIMIT: usize = 16 * 1024 * 1024;
    const N: usize = 4;
    let server = ChildServer::start(&format!("body_limit={LIMIT}"), None);
    let client = client(Duration::from_secs(300));
    let body = Arc::new(records_body(LIMIT - 1024));
    // One request first, so what is measured is the burst, not the first allocations.
    let warm = client.post(server.url("/models/lead/predict")).json(&json!({"records": [lead_row()]})).send();
    assert_eq!(warm.unwrap().status().as_u16(), 200);
    let before = server.status_kb("VmHWM");
    let threads: Vec<_> = (0..N)
        .map(|_| {
            let (client, url, body) = (client.clone(), server.url("/models/lead/predict"), body.clone());
            std::thread::spawn(move || {
                let response =
                    client.post(url).header("content-type", "application/json").body(body.to_vec()).send().unwrap();
                let status = response.status().as_u16();
                let answer: Value = response.json().unwrap();
                (status, answer["predictions"].as_array().map(Vec::len))
            })
        })
        .collect();
    for thread in threads {
        let (status, rows) = thread.join().unwrap();
        assert_eq!(status, 200);
        assert!(rows.unwrap_or(0) > 50_000, "every row was scored");
    }
    let peak = server.status_kb("VmHWM");
    std::thread::sleep(Duration::from_millis(500));
    let after = server.status_kb("VmRSS");
    let bound_kb = (3 * LIMIT * N / 1024) as u64;
    println!(
        "{N} × {} MiB bodies: RSS peak grew {} MiB (bound {} MiB); RSS after the burst {} MiB, before it {} MiB",
        LIMIT >> 20,
        (peak - before) / 1024,
        bound_kb / 1024,
        after / 1024,
        before / 1024
    );
    assert!(peak - before <= bound_kb, "peak RSS grew {} kB, more than 3 × limit × {N} = {bound_kb} kB", peak - before);
    assert!(after <= before + bound_kb / 3, "RSS after the burst ({after} kB) returned near its start ({before} kB)");
}

fn problem_type(response: &reqwest::blocking::Response) -> String {
    response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

#[test]
fn small_mistakes_get_problems_that_name_them_briefly() {
    let options = ServeOptions { admin_token: Some("adm-token".into()), ..ServeOptions::default() };
    let (_dir, server) = start(options);
    let client = client(Duration::from_secs(30));
    let url = |path: &str| format!("{}{path}", server.url());

    // A model name that is not UTF-8.
    for response in [
        client.get(url("/models/%FF%FE/predict_schema")).send().unwrap(),
        client.post(url("/models/%FF/predict")).json(&json!({"records": [lead_row()]})).send().unwrap(),
    ] {
        assert_eq!(response.status().as_u16(), 400);
        assert_eq!(problem_type(&response), "application/problem+json");
    }

    // A bad level index in positional instances is named as the client sent it.
    let model = Trainer::logistic_regression().fit(&datasets::lead_scoring()).unwrap();
    let features = &model.signature().features;
    let j = features.iter().position(|f| !f.is_numeric()).expect("lead has a categorical feature");
    let mut row = vec![json!(0); features.len()];
    row[j] = json!(99);
    let response = client.post(url("/models/lead/predict")).json(&json!({"instances": [row]})).send().unwrap();
    assert_eq!(response.status().as_u16(), 422);
    let problem: Value = response.json().unwrap();
    assert_eq!(problem["path"], format!("instances[0][{j}]"), "{problem}");

    // The bearer scheme is case-insensitive.
    let response = client.post(url("/admin/models/lead/reload")).header("authorization", "bearer adm-token").send();
    assert_eq!(response.unwrap().status().as_u16(), 200);

    // An unknown category of a megabyte is not echoed back whole.
    let mut row = lead_row();
    row["industry"] = json!("x".repeat(1_000_000));
    let response = client.post(url("/models/lead/predict")).json(&json!({"records": [row]})).send().unwrap();
    assert_eq!(response.status().as_u16(), 422);
    let problem: Value = response.json().unwrap();
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.len() < 500 && detail.contains(&format!("{}…", "x".repeat(64))), "{detail}");
    assert_eq!(problem["path"], "records[0].industry");
}

/// Everything the process logs, at every level, for the test that greps it for secrets.
fn captured_logs() -> &'static std::sync::Mutex<Vec<u8>> {
    static LOGS: std::sync::OnceLock<&'static std::sync::Mutex<Vec<u8>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs: &'static std::sync::Mutex<Vec<u8>> = Box::leak(Box::new(std::sync::Mutex::new(Vec::new())));
        struct Sink(&'static std::sync::Mutex<Vec<u8>>);
        impl Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Sink(logs))
            .try_init()
            .expect("the first subscriber of this test binary");
        logs
    })
}

#[test]
fn scoring_and_admin_tokens_have_separate_scopes_and_are_never_logged() {
    let logs = captured_logs();
    const ADMIN: &str = "adm-SECRET-7f3a";
    const SCORING: [&str; 2] = ["score-SECRET-91c2", "score-SECRET-05de"];
    let options = ServeOptions {
        admin_token: Some(ADMIN.into()),
        scoring_tokens: SCORING.iter().map(|t| t.to_string()).collect(),
        ..ServeOptions::default()
    };
    let (_dir, server) = start(options);
    let client = client(Duration::from_secs(30));
    let url = |path: &str| format!("{}{path}", server.url());
    let predict = |auth: Option<(&str, String)>| {
        let mut request = client.post(url("/models/lead/predict")).json(&json!({"records": [lead_row()]}));
        if let Some((name, value)) = auth {
            request = request.header(name, value);
        }
        request.send().unwrap()
    };

    let refused = predict(None);
    assert_eq!(refused.status().as_u16(), 401);
    assert_eq!(refused.headers().get("www-authenticate").unwrap(), "Bearer");
    assert_eq!(problem_type(&refused), "application/problem+json");
    assert_eq!(predict(Some(("authorization", "Bearer score-SECRET-91c".into()))).status().as_u16(), 401);
    assert_eq!(predict(Some(("authorization", format!("Basic {}", SCORING[0])))).status().as_u16(), 401);
    assert_eq!(predict(Some(("authorization", format!("Bearer {}", SCORING[0])))).status().as_u16(), 200);
    assert_eq!(predict(Some(("x-api-key", SCORING[1].into()))).status().as_u16(), 200);
    assert_eq!(predict(Some(("authorization", format!("Bearer {ADMIN}")))).status().as_u16(), 200, "admin may score");

    assert_eq!(client.get(url("/models")).send().unwrap().status().as_u16(), 401, "the catalog is scoring scope");
    let catalog = client.get(url("/models")).bearer_auth(SCORING[0]).send().unwrap();
    assert_eq!(catalog.status().as_u16(), 200);
    for open in ["/livez", "/readyz", "/healthz", "/metrics", "/models/lead/readyz"] {
        assert_eq!(client.get(url(open)).send().unwrap().status().as_u16(), 200, "{open} needs no token");
    }

    let reload = |token: &str| client.post(url("/admin/models/lead/reload")).bearer_auth(token).send().unwrap();
    assert_eq!(reload(SCORING[0]).status().as_u16(), 401, "a scoring token is not an admin token");
    assert_eq!(reload(ADMIN).status().as_u16(), 200);

    server.shutdown().unwrap();
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).to_string();
    assert!(logs.contains("wharf serve listening"), "the capture saw the server's logs");
    for secret in [ADMIN, SCORING[0], SCORING[1], "SECRET"] {
        assert!(!logs.contains(secret), "a token was logged");
    }
}

#[test]
fn tokens_and_limits_come_from_the_serving_section() {
    let config = wharf_core::WharfConfig::from_toml_str(
        "[serving]\nscoring_tokens = \"s1, s2,\"\nheader_read_timeout_ms = 2500\nidle_timeout_ms = 7000\n\
         max_connections = \"300\"\nmax_concurrent_scoring = 3\n",
    )
    .unwrap();
    let options = ServeOptions::from_config(&config.serving);
    assert_eq!(options.scoring_tokens, ["s1", "s2"]);
    assert_eq!(options.header_read_timeout, Duration::from_millis(2500));
    assert_eq!(options.idle_timeout, Duration::from_secs(7));
    assert_eq!((options.max_connections, options.max_concurrent_scoring), (300, 3));
    assert!(!format!("{options:?}").contains("s1"), "Debug shows no token");
    let listed = wharf_core::WharfConfig::from_toml_str("[serving]\nscoring_tokens = [\"a\", \"b\"]\n").unwrap();
    assert_eq!(ServeOptions::from_config(&listed.serving).scoring_tokens, ["a", "b"]);
    let bracketed = wharf_core::WharfConfig::from_toml_str("[serving]\nscoring_tokens = '[\"c\", \"d\"]'\n").unwrap();
    assert_eq!(
        ServeOptions::from_config(&bracketed.serving).scoring_tokens,
        ["c", "d"],
        "a list written in a variable"
    );
    assert!(!listed.to_toml_masked().contains("\"a\""), "doctor masks scoring tokens");
    let defaults = ServeOptions::default();
    assert_eq!(
        (defaults.header_read_timeout, defaults.idle_timeout),
        (Duration::from_secs(10), Duration::from_secs(60))
    );
    assert_eq!((defaults.max_connections, defaults.max_concurrent_scoring), (10_000, 64));
}

#[test]
fn tokens_can_come_from_mounted_secret_files() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, scoring) = (dir.path().join("admin"), dir.path().join("scoring"));
    std::fs::write(&admin, "adm-FILE-1\n").unwrap();
    std::fs::write(&scoring, "# rotated\nsc-FILE-1\nsc-FILE-2\n").unwrap();
    let toml = format!(
        "[serving]\nscoring_tokens = [\"inline\"]\nadmin_token_file = {:?}\nscoring_tokens_file = {:?}\n",
        admin.display().to_string(),
        scoring.display().to_string()
    );
    let config = wharf_core::WharfConfig::from_toml_str(&toml).unwrap();
    let options = ServeOptions::load(&config.serving).unwrap();
    assert_eq!(options.admin_token.as_deref(), Some("adm-FILE-1"), "the trailing newline is not part of it");
    assert_eq!(options.scoring_tokens, ["inline", "sc-FILE-1", "sc-FILE-2"]);
    assert_eq!(ServeOptions::from_config(&config.serving).admin_token, None, "from_config reads no file");

    let both = format!("[serving]\nadmin_token = \"x\"\nadmin_token_file = {:?}\n", admin.display().to_string());
    let error = ServeOptions::load(&wharf_core::WharfConfig::from_toml_str(&both).unwrap().serving).unwrap_err();
    assert!(error.to_string().contains("not both"), "{error}");
    std::fs::write(&admin, "adm-FILE-1\nadm-FILE-2\n").unwrap();
    let two = wharf_core::WharfConfig::from_toml_str(&toml).unwrap();
    let error = ServeOptions::load(&two.serving).unwrap_err().to_string();
    assert!(error.contains("holds 2 tokens") && !error.contains("adm-FILE"), "{error}");
    let missing = "[serving]\nscoring_tokens_file = \"/nonexistent/wharf-tokens\"\n";
    assert!(ServeOptions::load(&wharf_core::WharfConfig::from_toml_str(missing).unwrap().serving).is_err());
}
