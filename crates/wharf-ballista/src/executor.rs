//! The executor: Ballista's, with a function registry that holds Wharf's functions.

use std::path::PathBuf;
use std::sync::Arc;

use ballista_core::config::TaskSchedulingPolicy;
use ballista_executor::executor_process::{start_executor_process, ExecutorProcessConfig};
use wharf_datafusion::WharfUdfs;

use crate::{function_registry, Error, Result};

/// What `wharf-ballista executor` is told on its command line.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler's host.
    pub scheduler_host: String,
    /// The scheduler's port.
    pub scheduler_port: u16,
    /// How long to keep trying to reach the scheduler at start-up, in seconds; 0 tries once.
    pub scheduler_connect_timeout_secs: u16,
    /// Address to listen on.
    pub bind_host: String,
    /// The host name the scheduler, clients and other executors reach this executor by
    /// (`None`: the bind address).
    pub external_host: Option<String>,
    /// Port of the Arrow Flight service that serves this executor's task output.
    pub port: u16,
    /// Port of the gRPC service the scheduler pushes tasks to.
    pub grpc_port: u16,
    /// How many tasks run at once (task slots); 0 for one per core.
    pub concurrent_tasks: usize,
    /// Where task output (shuffle files) is written; it must have room for a query's
    /// intermediate results.
    pub work_dir: PathBuf,
    /// Must match the scheduler's.
    pub policy: TaskSchedulingPolicy,
}

/// Ballista's executor configuration for `options`: its function registry is DataFusion's
/// built-in functions plus `udfs`, which is what the physical plan of each task is decoded
/// against, so a plan calling `wharf_predict` finds the function and scores with it.
///
/// Plans travel with the functions' names only, and the executor loads each model from its
/// registry the first time a task needs it; Ballista's default codecs are enough.
pub fn executor_config(options: &ExecutorOptions, udfs: &WharfUdfs) -> Result<ExecutorProcessConfig> {
    let work_dir = options
        .work_dir
        .to_str()
        .ok_or_else(|| Error::Config(format!("the work directory {} is not UTF-8", options.work_dir.display())))?;
    let vcores = match options.concurrent_tasks {
        0 => std::thread::available_parallelism().map(usize::from).unwrap_or(1),
        n => n,
    };
    Ok(ExecutorProcessConfig {
        bind_host: options.bind_host.clone(),
        external_host: Some(options.external_host.clone().unwrap_or_else(|| options.bind_host.clone())),
        port: options.port,
        grpc_port: options.grpc_port,
        scheduler_host: options.scheduler_host.clone(),
        scheduler_port: options.scheduler_port,
        scheduler_connect_timeout_seconds: options.scheduler_connect_timeout_secs,
        vcores,
        task_scheduling_policy: options.policy,
        work_dir: Some(work_dir.to_string()),
        // Ballista's default prints thread names and ids on every line; the task ids are
        // what an operator looks for.
        print_thread_info: false,
        override_function_registry: Some(Arc::new(function_registry(udfs))),
        ..ExecutorProcessConfig::default()
    })
}

/// Runs the executor until Ctrl-C, SIGTERM or a stop request from the scheduler (Ballista
/// handles these itself: it tells the scheduler it is leaving and lets running tasks finish).
///
/// The ports are tried first, so one taken by another process is reported as such instead of
/// as a transport error from inside Ballista (another process can still take one in between;
/// Ballista's own error then says so, less plainly).
pub async fn run_executor(options: &ExecutorOptions, udfs: &WharfUdfs) -> Result<()> {
    let mut ports = vec![options.port];
    if matches!(options.policy, TaskSchedulingPolicy::PushStaged) {
        ports.push(options.grpc_port);
    }
    for port in ports {
        let address = format!("{}:{port}", options.bind_host);
        std::net::TcpListener::bind(&address).map_err(|e| Error::Listen { address, message: e.to_string() })?;
    }
    std::fs::create_dir_all(&options.work_dir)
        .map_err(|e| Error::Config(format!("cannot create the work directory {}: {e}", options.work_dir.display())))?;
    let config = executor_config(options, udfs)?;
    start_executor_process(Arc::new(config)).await?;
    Ok(())
}
