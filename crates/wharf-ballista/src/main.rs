//! `wharf-ballista`: a Ballista scheduler or executor that knows Wharf's SQL functions.
//!
//! Every process of the cluster loads models from the registry of the current directory's
//! configuration (`wharf.toml`, `WHARF_*` variables), as `wharf` does, or from `--registry DIR`.
//! Failures end as one `error:` line on stderr and exit status 1; usage errors are clap's,
//! with status 2. Logs go to stderr, filtered by `WHARF_LOG` (default `info`; `warn` for `sql`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use ballista_core::config::TaskSchedulingPolicy;
use clap::{Args, Parser, Subcommand, ValueEnum};
use wharf_ballista::{executor, registry_from_config, scheduler, ExecutorOptions, SchedulerOptions};
use wharf_core::{FileRegistry, RegistryPort, WharfConfig};
use wharf_datafusion::datafusion::arrow::util::pretty::pretty_format_batches;
use wharf_datafusion::datafusion::prelude::SessionConfig;
use wharf_datafusion::WharfUdfs;

/// Run Wharf's SQL scoring (wharf_predict, wharf_predict_proba) on a Ballista cluster.
///
/// Start one scheduler and any number of executors, all reading models from the same
/// registry; then connect a client to the scheduler (`df://HOST:PORT`).
#[derive(Debug, Parser)]
#[command(name = "wharf-ballista", version, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the scheduler: accepts queries from clients, plans them, hands tasks to executors.
    Scheduler(SchedulerArgs),
    /// Run an executor: registers with the scheduler, runs tasks, serves their output.
    Executor(ExecutorArgs),
    /// Run SQL on a cluster: planned here, run by the executors; prints the last result.
    Sql(SqlArgs),
}

/// Where models come from; the same for every process of a cluster.
#[derive(Debug, Args)]
struct RegistryArgs {
    /// A file registry directory, shared by every process [default: the configured registry].
    #[arg(long, value_name = "DIR")]
    registry: Option<PathBuf>,
}

/// How the scheduler hands out tasks; executors must use the scheduler's.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Policy {
    /// The scheduler sends tasks to executors with free slots as soon as they are ready.
    Push,
    /// Executors ask the scheduler for tasks when they have free slots.
    Pull,
}

impl From<Policy> for TaskSchedulingPolicy {
    fn from(policy: Policy) -> Self {
        match policy {
            Policy::Push => TaskSchedulingPolicy::PushStaged,
            Policy::Pull => TaskSchedulingPolicy::PullStaged,
        }
    }
}

/// Which executor gets the next task (push scheduling).
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Distribution {
    /// Fill one executor's free slots before the next one's.
    Bias,
    /// One task to each executor in turn.
    RoundRobin,
}

/// `wharf-ballista scheduler`
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  wharf-ballista scheduler --bind 127.0.0.1 --port 50050 --registry models/")]
struct SchedulerArgs {
    /// Address to listen on (0.0.0.0 for every interface).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    bind: String,

    /// Port for clients and executors.
    #[arg(long, value_name = "PORT", default_value_t = 50050)]
    port: u16,

    /// Host name executors and clients reach the scheduler by [default: localhost].
    #[arg(long, value_name = "HOST", default_value = "localhost")]
    external_host: String,

    /// How tasks reach the executors.
    #[arg(long, value_name = "POLICY", value_enum, default_value_t = Policy::Push)]
    policy: Policy,

    /// Which executor gets the next task (push policy).
    #[arg(long, value_name = "HOW", value_enum, default_value_t = Distribution::Bias)]
    task_distribution: Distribution,

    #[command(flatten)]
    registry: RegistryArgs,
}

/// `wharf-ballista executor`
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  wharf-ballista executor --scheduler-host 127.0.0.1 --scheduler-port 50050 \
    --bind 127.0.0.1 --port 50051 --grpc-port 50052 --concurrent-tasks 2 --registry models/")]
struct ExecutorArgs {
    /// The scheduler's host.
    #[arg(long, value_name = "HOST", default_value = "localhost")]
    scheduler_host: String,

    /// The scheduler's port.
    #[arg(long, value_name = "PORT", default_value_t = 50050)]
    scheduler_port: u16,

    /// Keep trying to reach the scheduler this long at start-up (0: try once).
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    scheduler_connect_timeout: u16,

    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    bind: String,

    /// Host name the scheduler and clients reach this executor by [default: --bind].
    #[arg(long, value_name = "HOST")]
    external_host: Option<String>,

    /// Port of the Arrow Flight service serving task output.
    #[arg(long, value_name = "PORT", default_value_t = 50051)]
    port: u16,

    /// Port the scheduler pushes tasks to (push policy).
    #[arg(long, value_name = "PORT", default_value_t = 50052)]
    grpc_port: u16,

    /// Tasks run at once [default: one per core].
    #[arg(long, short = 'c', value_name = "N", default_value_t = 0)]
    concurrent_tasks: usize,

    /// Directory for task output [default: a new temporary directory, removed at exit].
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,

    /// How tasks reach this executor; must match the scheduler's.
    #[arg(long, value_name = "POLICY", value_enum, default_value_t = Policy::Push)]
    policy: Policy,

    #[command(flatten)]
    registry: RegistryArgs,
}

/// `wharf-ballista sql`
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  wharf-ballista sql --scheduler df://127.0.0.1:50050 --registry models/ \\\n    \
    \"SELECT lead_id, wharf_predict('lead@3', source, industry, pages_viewed, minutes_on_site, emails_opened, \
    company_size, days_since_signup) AS label FROM 'leads/' ORDER BY lead_id LIMIT 5\"")]
struct SqlArgs {
    /// SQL statements separated by `;`, run in order; the last one's result is printed. File
    /// paths are tables (`FROM 'leads/'`, a directory of Parquet files); every executor must
    /// be able to read them at the same path.
    #[arg(value_name = "SQL", required_unless_present = "file", conflicts_with = "file")]
    sql: Option<String>,

    /// Read the statements from a file instead.
    #[arg(long, short = 'f', value_name = "FILE")]
    file: Option<PathBuf>,

    /// The scheduler.
    #[arg(long, value_name = "URL", default_value = "df://localhost:50050")]
    scheduler: String,

    /// Split each scan into this many tasks [default: one per core of this machine].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    partitions: Option<u16>,

    /// Print the rows as a JSON array instead of a table.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    registry: RegistryArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before any model is loaded: the model kinds this build knows.
    wharf::register_kinds();
    // A client's own progress is noise next to its result; servers log what they do.
    init_tracing(if matches!(cli.command, Command::Sql(_)) { "warn" } else { "info" });
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let message = format!("{err:#}");
            eprintln!("error: {}", message.lines().map(str::trim).collect::<Vec<_>>().join(" "));
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    // Planning deep SQL expressions recurses; Ballista's own binaries give their runtime
    // threads 32 MiB stacks for that, and so does this one.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(32 * 1024 * 1024)
        .build()
        .context("cannot start the async runtime")?;
    match command {
        Command::Scheduler(args) => {
            let udfs = WharfUdfs::new(registry(&args.registry)?);
            let options = SchedulerOptions {
                bind_host: args.bind,
                port: args.port,
                external_host: args.external_host,
                policy: args.policy.into(),
                round_robin: matches!(args.task_distribution, Distribution::RoundRobin),
            };
            runtime.block_on(scheduler::run_scheduler(&options, &udfs, shutdown_signal()))?;
            tracing::info!("scheduler stopped");
            Ok(())
        }
        Command::Executor(args) => {
            let udfs = WharfUdfs::new(registry(&args.registry)?);
            // A temporary directory is kept until the executor stops, then removed with what
            // the tasks wrote in it.
            let (work_dir, _temporary) = match args.work_dir {
                Some(dir) => (dir, None),
                None => {
                    let dir = tempfile::Builder::new()
                        .prefix("wharf-ballista-")
                        .tempdir()
                        .context("cannot create a temporary work directory (give one with --work-dir)")?;
                    (dir.path().to_path_buf(), Some(dir))
                }
            };
            let options = ExecutorOptions {
                scheduler_host: args.scheduler_host,
                scheduler_port: args.scheduler_port,
                scheduler_connect_timeout_secs: args.scheduler_connect_timeout,
                bind_host: args.bind,
                external_host: args.external_host,
                port: args.port,
                grpc_port: args.grpc_port,
                concurrent_tasks: args.concurrent_tasks,
                work_dir,
                policy: args.policy.into(),
            };
            runtime.block_on(executor::run_executor(&options, &udfs))?;
            tracing::info!("executor stopped");
            Ok(())
        }
        Command::Sql(args) => runtime.block_on(sql(args)),
    }
}

/// `wharf-ballista sql`: a client session on the cluster, the script, the last result.
async fn sql(args: SqlArgs) -> anyhow::Result<()> {
    let script = match (args.sql, &args.file) {
        (Some(sql), _) => sql,
        (None, Some(file)) => {
            std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
        }
        (None, None) => anyhow::bail!("no SQL given"),
    };
    let mut config = SessionConfig::new();
    if let Some(n) = args.partitions {
        config = config.with_target_partitions(usize::from(n));
    }
    let (ctx, _udfs) = wharf_ballista::remote_with_config(&args.scheduler, registry(&args.registry)?, config).await?;
    let batches = wharf_datafusion::sql::run_script(&ctx, &script)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.strip_backtrace()))?;
    let text = if args.json {
        let mut text = serde_json::to_string_pretty(&wharf_datafusion::sql::to_json(&batches)?)?;
        text.push('\n');
        text
    } else if batches.is_empty() {
        String::new()
    } else {
        format!("{}\n", pretty_format_batches(&batches)?)
    };
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// The registry every function of this process loads models from.
fn registry(args: &RegistryArgs) -> anyhow::Result<Arc<dyn RegistryPort>> {
    let registry: Arc<dyn RegistryPort> = match &args.registry {
        Some(dir) => {
            anyhow::ensure!(dir.is_dir(), "registry directory {} does not exist", dir.display());
            Arc::new(FileRegistry::new(dir))
        }
        None => registry_from_config(&WharfConfig::load()?)?,
    };
    // Said once at start-up, so an operator sees which registry a process reads. Models load
    // when a query first names them; a registry that is down now may be up by then.
    match registry.list() {
        Ok(models) => tracing::info!("models from the {} registry: {} registered", registry.name(), models.len()),
        Err(e) => tracing::warn!("the {} registry cannot list its models now: {e}", registry.name()),
    }
    Ok(registry)
}

/// Logs to stderr, filtered by `WHARF_LOG` (default `default`); Ballista's `log` records are
/// included, which is where task ids and registrations appear.
fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WHARF_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).try_init();
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("received Ctrl-C, stopping"),
        () = terminate => tracing::info!("received SIGTERM, stopping"),
    }
}
