//! A real local cluster: the `wharf-ballista` binary as one scheduler and two executors on
//! 127.0.0.1, a client scoring four Parquet files through it. The output must equal
//! single-machine DataFusion scoring row by row, and both executors must have run tasks of
//! the query (their logs name the tasks, their work directories hold the tasks' output).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_same_rows, files_under, register_leads, rows, scoring_sql, Fixture, FEATURES, FILES};
use wharf_core::{FileRegistry, RegistryPort};
use wharf_datafusion::datafusion::prelude::SessionConfig;
use wharf_ml::{datasets, Trainer};

const BINARY: &str = env!("CARGO_BIN_EXE_wharf-ballista");

/// Generous: on a loaded 2-core machine a process can take a while to start.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// The processes of the cluster, killed when the test ends, however it ends.
struct Cluster {
    processes: Vec<(String, Child, PathBuf)>,
}

impl Cluster {
    fn spawn(&mut self, name: &str, args: &[String], cwd: &Path) {
        let log = cwd.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(BINARY)
            .args(args)
            .current_dir(cwd)
            .env("WHARF_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        self.processes.push((name.to_string(), child, log));
    }

    fn log(&self, name: &str) -> String {
        let (_, _, path) = self.processes.iter().find(|(n, _, _)| n == name).expect("process");
        std::fs::read_to_string(path).unwrap_or_default()
    }

    /// Waits until `name`'s log contains `needle`; fails early, with the log, if it exits.
    fn wait_for(&mut self, name: &str, needle: &str) {
        let start = Instant::now();
        loop {
            if self.log(name).contains(needle) {
                return;
            }
            let (_, child, _) = self.processes.iter_mut().find(|(n, _, _)| n == name).expect("process");
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{name} exited ({status}) before '{needle}':\n{}", self.log(name));
            }
            assert!(
                start.elapsed() < READY_TIMEOUT,
                "{name}: no '{needle}' after {READY_TIMEOUT:?}:\n{}",
                self.log(name)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, child, _) in &mut self.processes {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// The task ids (`job/stage.attempt/task.attempt`) an executor's log says it finished.
fn finished_tasks(log: &str) -> BTreeSet<String> {
    log.lines()
        .filter_map(|line| {
            let rest = &line[line.find("Finished task : [TID ")? + "Finished task : [TID ".len()..];
            Some(rest[..rest.find(']')?].to_string())
        })
        .collect()
}

/// The partitions of stage 0 (the scan and scoring) whose output is in a job's directory
/// of an executor's work directory.
fn scan_partitions(job_dir: &Path) -> BTreeSet<usize> {
    let Ok(entries) = std::fs::read_dir(job_dir.join("0")) else { return BTreeSet::new() };
    entries
        .flatten()
        .filter(|e| !files_under(&e.path()).is_empty())
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_scheduler_two_executors_score_like_one_machine_and_both_run_tasks() {
    let f = Fixture::new().await;
    let expected = f.expected().await;
    let registry = f.registry_dir();
    let registry = registry.to_str().expect("utf-8 path");
    let scheduler_port = free_port().to_string();

    let mut cluster = Cluster { processes: Vec::new() };
    cluster.spawn(
        "scheduler",
        &strings(&[
            "scheduler",
            "--bind",
            "127.0.0.1",
            "--port",
            &scheduler_port,
            "--external-host",
            "127.0.0.1",
            "--task-distribution",
            "round-robin",
            "--registry",
            registry,
        ]),
        f.dir.path(),
    );
    let mut work_dirs = Vec::new();
    for name in ["executor-1", "executor-2"] {
        let work_dir = f.path(&format!("{name}-work"));
        cluster.spawn(
            name,
            &strings(&[
                "executor",
                "--scheduler-host",
                "127.0.0.1",
                "--scheduler-port",
                &scheduler_port,
                "--bind",
                "127.0.0.1",
                "--port",
                &free_port().to_string(),
                "--grpc-port",
                &free_port().to_string(),
                "--concurrent-tasks",
                "2",
                "--work-dir",
                work_dir.to_str().expect("utf-8 path"),
                "--registry",
                registry,
            ]),
            f.dir.path(),
        );
        work_dirs.push(work_dir);
    }
    // Registered with the scheduler, and serving task output (which starts just after).
    for name in ["executor-1", "executor-2"] {
        cluster.wait_for(name, "Executor registration succeed");
        cluster.wait_for(name, "arrow flight server listening");
    }

    let url = format!("df://127.0.0.1:{scheduler_port}");
    let config = SessionConfig::new().with_target_partitions(FILES);
    let (ctx, _udfs) = wharf_ballista::remote_with_config(&url, f.registry.clone(), config).await.expect("connect");
    register_leads(&ctx, &f.leads()).await;
    let batches = ctx.sql(&scoring_sql()).await.expect("plan").collect().await.expect("run on the cluster");
    assert_same_rows(&rows(&batches), &expected);

    // Both executors ran tasks of the query, and not the same ones: their logs name the
    // tasks they finished, and their work directories hold what the tasks of the scan stage
    // wrote, one directory per partition (`JOB/0/PARTITION/`).
    let names = ["executor-1", "executor-2"];
    let tasks: Vec<BTreeSet<String>> = names.iter().map(|n| finished_tasks(&cluster.log(n))).collect();
    for (name, t) in names.iter().zip(&tasks) {
        assert!(!t.is_empty(), "{name} ran no task:\n{}", cluster.log(name));
    }
    assert!(tasks[0].is_disjoint(&tasks[1]), "a task ran on both executors: {tasks:?}");
    let jobs: BTreeSet<&str> = tasks.iter().flatten().filter_map(|t| t.split('/').next()).collect();
    assert_eq!(jobs.len(), 1, "one query, one job: {jobs:?}");
    let job = jobs.first().copied().unwrap_or_default();
    let partitions: Vec<BTreeSet<usize>> = work_dirs.iter().map(|dir| scan_partitions(&dir.join(job))).collect();
    for (name, p) in names.iter().zip(&partitions) {
        assert!(!p.is_empty(), "{name} wrote no output of the scan stage");
    }
    assert!(partitions[0].is_disjoint(&partitions[1]), "{partitions:?}");
    let all: BTreeSet<usize> = partitions.iter().flatten().copied().collect();
    assert_eq!(all, (0..FILES).collect(), "every file partition scored once");
    for ((name, t), p) in names.iter().zip(&tasks).zip(&partitions) {
        eprintln!("{name}: tasks {t:?}, scan partitions {p:?}");
    }

    // A model the client knows but the cluster's registry does not: the scheduler's planning
    // fails, and its message reaches the client.
    let elsewhere = f.path("client-registry");
    let client_registry = FileRegistry::new(&elsewhere);
    let model = Trainer::logistic_regression().fit(&datasets::lead_scoring()).expect("fit");
    client_registry.register(&model, "only_on_the_client").expect("register");
    let client_registry: std::sync::Arc<dyn RegistryPort> = std::sync::Arc::new(client_registry);
    let (other, _udfs) = wharf_ballista::remote(&url, client_registry).await.expect("connect");
    register_leads(&other, &f.leads()).await;
    let sql = format!("SELECT wharf_predict('only_on_the_client', {FEATURES}) FROM leads");
    let error = match other.sql(&sql).await.expect("plans on the client").collect().await {
        Ok(_) => panic!("the scheduler does not know the model, yet the query ran"),
        Err(e) => e.strip_backtrace(),
    };
    assert!(error.contains("only_on_the_client"), "{error}");
    eprintln!("a model only the client knows: {error}");
}

#[test]
fn a_port_in_use_is_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(BINARY)
        .args(["scheduler", "--port", &port, "--registry"])
        .arg(dir.path())
        .current_dir(dir.path())
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("error: cannot listen on 127.0.0.1:{port}")), "{stderr}");
}

#[test]
fn bad_flags_and_a_missing_registry_are_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(BINARY).args(["executor", "--concurrent-tasks", "many"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(BINARY).args(["scheduler", "--policy", "sideways"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let missing = dir.path().join("nowhere");
    let out = Command::new(BINARY).args(["scheduler", "--registry"]).arg(&missing).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("registry directory") && stderr.contains("does not exist"), "{stderr}");
}
