//! The harness the CLI's end-to-end tests share: the real `wharf` binary, run in a fresh
//! directory with every `WHARF_*` variable removed, so only the defaults and what a test
//! writes there are in force.
//!
//! Each test file compiles this module on its own and uses a part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

/// A fresh working directory for the binary, removed when dropped.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        Sandbox { dir: tempfile::tempdir().expect("temp dir") }
    }

    /// A sandbox holding `leads.csv` (300 training rows) and `new.csv` (40 rows to score).
    pub fn with_leads() -> Self {
        let s = Sandbox::new();
        s.write("leads.csv", lead_rows(300));
        s.write("new.csv", lead_rows(40));
        s
    }

    /// A sandbox with `iris@champion` registered: a decision tree on 90 rows of three
    /// well-separated species, for the streaming tests.
    pub fn with_iris() -> Self {
        let s = Sandbox::new();
        let mut csv = String::from("sepal_length,sepal_width,petal_length,petal_width,species\n");
        for (i, (species, base)) in [("setosa", 1.4), ("versicolor", 4.3), ("virginica", 5.6)].iter().enumerate() {
            for j in 0..30 {
                let jitter = j as f64 * 0.01;
                csv += &format!("{},{},{},{},{species}\n", 5.0 + i as f64 * 0.6, 3.0, base + jitter, 0.2 + i as f64);
            }
        }
        s.write("iris.csv", csv);
        s.ok(&[
            "-q", "train", "--input", "iris.csv", "--target", "species", "--name", "iris", "-a", "tree", "--alias",
            "champion",
        ]);
        s
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) {
        std::fs::write(self.path(name), contents).expect("write");
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// The binary, in this directory, with every `WHARF_*` variable removed.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf"));
        cmd.current_dir(self.dir.path()).args(args);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("WHARF_") {
                cmd.env_remove(key);
            }
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run wharf")
    }

    /// Runs, asserts success and a quiet stderr (no progress bar off a terminal), returns
    /// stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "wharf {args:?} failed ({}):\n{stderr}\n{stdout}", out.status);
        assert!(stderr.is_empty(), "wharf {args:?} wrote to stderr:\n{stderr}");
        stdout
    }

    /// Runs `--json`, asserts success, returns the parsed output.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        let stdout = self.ok(&args);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("wharf {args:?}: not JSON ({e}):\n{stdout}"))
    }

    /// Runs, asserts exit status `code` and no panic, returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "wharf {args:?}: unexpected status; stderr:\n{stderr}");
        assert!(!stderr.contains("panicked"), "wharf {args:?} panicked:\n{stderr}");
        assert!(!stderr.contains("RUST_BACKTRACE"), "wharf {args:?} offered a backtrace:\n{stderr}");
        stderr
    }

    /// Runs, asserts a runtime failure reported as exactly one `error:` line, returns it.
    pub fn error(&self, args: &[&str]) -> String {
        let stderr = self.fails(args, 1);
        assert_eq!(stderr.lines().count(), 1, "wharf {args:?}: not one line:\n{stderr}");
        assert!(stderr.starts_with("error: "), "wharf {args:?}: no `error:` prefix:\n{stderr}");
        stderr
    }

    /// Starts `wharf <args> --addr 127.0.0.1:0 --log-format json` (a `serve` command) and
    /// returns the child and the address it logged. Its log keeps being read, so a closed
    /// pipe never ends the server.
    pub fn serve(&self, args: &[&str]) -> (Running, String) {
        use std::io::BufRead;
        let mut child = self
            .command(args)
            .args(["--addr", "127.0.0.1:0", "--log-format", "json"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start wharf serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let mut lines = std::io::BufReader::new(stderr).lines();
        let addr = loop {
            let line = lines.next().expect("the server logs where it listens").expect("a log line");
            if line.contains("listening") {
                let log: Value = serde_json::from_str(&line).expect("JSON log lines");
                break log["fields"]["addr"].as_str().expect("the address").to_string();
            }
        };
        std::thread::spawn(move || lines.for_each(drop));
        (Running(Some(child)), addr)
    }

    /// Trains and registers `lead` from `leads.csv`; returns what `wharf train` printed.
    pub fn train_lead(&self) -> String {
        self.ok(&["train", "--input", "leads.csv", "--target", "converted", "--id", "lead_id", "--name", "lead"])
    }
}

/// The header and the first `n` rows of the bundled lead-scoring data.
pub fn lead_rows(n: usize) -> String {
    wharf::datasets::LEAD_SCORING_CSV.lines().take(n + 1).map(|line| format!("{line}\n")).collect()
}

// --- The broker scale-out tests (Redis, NATS): the same workers, the same checks. ---

/// How long a broker test may wait for its workers before it fails rather than hangs.
pub const WORKER_DEADLINE: std::time::Duration = std::time::Duration::from_secs(90);

/// The value of `var`, or `None` after printing `skipped:` (a failure under
/// `WHARF_TEST_REQUIRE_BACKENDS=1`).
pub fn backend(var: &str) -> Option<String> {
    match std::env::var(var).ok().filter(|v| !v.is_empty()) {
        Some(value) => Some(value),
        None if std::env::var("WHARF_TEST_REQUIRE_BACKENDS").as_deref() == Ok("1") => {
            panic!("{var} is not set but WHARF_TEST_REQUIRE_BACKENDS=1")
        }
        None => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "skipped: {var} not set (run cargo xtask test)");
            None
        }
    }
}

/// Input and output stream names no other test (or earlier run on the same server) uses.
pub fn stream_names(test: &str) -> (String, String) {
    let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    (format!("{test}-{nonce}-in"), format!("{test}-{nonce}-out"))
}

/// The JSON record with id `id` the broker tests produce.
pub fn iris_record(id: usize) -> String {
    format!(
        r#"{{"id":{id},"sepal_length":5.5,"sepal_width":3.0,"petal_length":{},"petal_width":{}}}"#,
        1.4 + (id % 3) as f64 * 2.1,
        0.2 + (id % 3) as f64
    )
}

impl Sandbox {
    /// Starts `wharf --json stream` as one broker worker, reading `source` and writing
    /// `sink`, stopping after `idle` without records, with stdout and stderr piped.
    pub fn stream_worker(&self, source: &str, sink: &str, idle: &str) -> std::process::Child {
        self.command(&[
            "--json",
            "stream",
            "--model",
            "iris@champion",
            "--source",
            source,
            "--sink",
            sink,
            "--id",
            "id",
            // Batches larger than what arrives in the latency window: a worker holds read but
            // unacknowledged records most of the time, so a kill reliably finds some.
            "--batch-size",
            "400",
            "--max-latency-ms",
            "300",
            "--idle-timeout",
            idle,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start wharf stream")
    }
}

/// Waits (up to [`WORKER_DEADLINE`]) for a worker to exit by itself; returns its JSON
/// summary.
pub fn finish_worker(child: std::process::Child, name: &str) -> Value {
    let started = std::time::Instant::now();
    let mut child = child;
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > WORKER_DEADLINE {
            let _ = child.kill();
            panic!("worker {name} did not stop within {WORKER_DEADLINE:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "worker {name} failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("worker {name}: not JSON ({e}): {stdout}"))
}

/// One result in a broker's output: the record id, the worker that wrote it, the delivery
/// attempt.
pub struct Scored {
    pub id: u64,
    pub worker: String,
    pub attempt: u64,
}

/// Every id in `0..records` exactly once; returns the results per worker.
pub fn assert_exactly_once(results: &[Scored], records: usize) -> std::collections::HashMap<String, usize> {
    let mut seen = vec![0u32; records];
    for r in results {
        let id = usize::try_from(r.id).expect("id");
        assert!(id < records, "an id that was never produced: {id}");
        seen[id] += 1;
    }
    let missing: Vec<usize> = (0..records).filter(|&i| seen[i] == 0).collect();
    let twice: Vec<usize> = (0..records).filter(|&i| seen[i] > 1).collect();
    assert!(missing.is_empty(), "{} ids missing, e.g. {:?}", missing.len(), &missing[..missing.len().min(10)]);
    assert!(twice.is_empty(), "{} ids written twice, e.g. {:?}", twice.len(), &twice[..twice.len().min(10)]);
    assert_eq!(results.len(), records);
    let mut per_worker = std::collections::HashMap::new();
    for r in results {
        *per_worker.entry(r.worker.clone()).or_insert(0) += 1;
    }
    per_worker
}

/// A broker server a test owns, so it can stop it (SIGTERM, a clean shutdown that flushes
/// its storage) and start it again on the same port and data directory: the broker-restart
/// tests. `args` gives the command line for a port and data directory; `ready` returns once
/// the server on that port answers. Killed on drop, however the test ends.
pub struct OwnedServer {
    bin: String,
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
    args: fn(u16, &std::path::Path) -> Vec<std::ffi::OsString>,
    ready: fn(u16),
}

impl OwnedServer {
    pub fn start(bin: &str, args: fn(u16, &std::path::Path) -> Vec<std::ffi::OsString>, ready: fn(u16)) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut server = OwnedServer { bin: bin.to_string(), port, dir, child: None, args, ready };
        server.up();
        server
    }

    /// Starts the server on its port and data directory; returns once it answers.
    pub fn up(&mut self) {
        let child = Command::new(&self.bin)
            .args((self.args)(self.port, self.dir.path()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.bin));
        self.child = Some(child);
        (self.ready)(self.port);
    }

    /// SIGTERM, then wait for the exit.
    pub fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }

    /// The server's data directory.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for OwnedServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A server child process, killed when dropped, so a failing test leaves no server behind
/// (holding the test's output pipe open).
pub struct Running(pub Option<std::process::Child>);

impl Running {
    /// Sends SIGTERM and asserts a graceful, successful exit.
    #[cfg(unix)]
    pub fn terminate(mut self) {
        let mut child = self.0.take().expect("running");
        let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
        assert!(status.success());
        let exit = child.wait().expect("wait");
        assert!(exit.success(), "graceful exit on SIGTERM: {exit}");
    }

    /// The child, still running.
    pub fn child(&mut self) -> &mut std::process::Child {
        self.0.as_mut().expect("running")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
