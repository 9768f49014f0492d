//! `wharf`: train, predict, manage registered models and inspect the setup, from the current
//! directory's configuration (`wharf.toml`, `WHARF_*` environment variables, defaults).
//!
//! Every failure ends as one `error:` line on stderr and exit status 1; usage errors are
//! clap's, with status 2. Results go to stdout, as tables or, with `--json`, as JSON.

use std::panic::{self, AssertUnwindSafe};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod args;
mod commands;
mod output;
/// The guide's CLI and configuration reference pages, generated and checked by tests.
#[cfg(test)]
mod reference;

use args::{LineageCommand, ModelsCommand, RunsCommand, TrainArgs};
use output::Output;

/// Train, register, serve and track machine-learning models with Wharf.
///
/// Works from the current directory's configuration: `wharf.toml` (or the file named by
/// `WHARF_CONFIG`), profile files named by `WHARF_PROFILE`, and `WHARF_*` environment
/// variables. Run `wharf doctor` to see what is in force.
#[derive(Debug, Parser)]
#[command(name = "wharf", version, max_term_width = 100)]
struct Cli {
    /// Print machine-readable JSON on stdout instead of tables.
    #[arg(long, global = true, display_order = 900)]
    json: bool,

    /// No progress spinner and only essential output.
    #[arg(long, short = 'q', global = true, display_order = 901)]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train a model on a CSV file, evaluate it on a holdout, track the run and register it.
    Train(TrainArgs),
    /// Search an estimator's hyper-parameters by cross-validation, track every trial, register
    /// the refit winner.
    Tune(commands::tune::TuneArgs),
    /// Move an alias to a challenger only when it beats the champion on a holdout file.
    Promote(commands::promote::PromoteArgs),
    /// Compare a file, or a served model's prediction log, with the model's training data.
    Drift(commands::drift::DriftArgs),
    /// Write a registered model's card: one self-contained HTML file with its summary,
    /// signature, metrics and plots.
    Report(commands::report::ReportArgs),
    /// Run many registered models and summaries over JSON-lines records; store each record's results.
    RunModels(args::RunModelsArgs),
    /// Score a CSV, JSON-lines or Parquet file with a registered model, in chunks on every core,
    /// with a reject file.
    #[command(visible_alias = "predict")]
    Score(commands::score::ScoreArgs),
    /// List, inspect, alias and delete registered models.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Tracked runs: send runs spooled while MLflow was unreachable.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Lineage: send OpenLineage events spooled while the receiver was unreachable.
    #[command(subcommand)]
    Lineage(LineageCommand),
    /// Serve registered models over HTTP until Ctrl-C or SIGTERM.
    #[cfg(feature = "serve")]
    Serve(args::ServeArgs),
    /// Browse runs, models, cards and lineage in a web browser (read-only, offline).
    #[cfg(feature = "serve")]
    Ui(args::UiArgs),
    /// Score JSON lines from stdin or a growing file in micro-batches, with windowed features
    /// and a checkpoint for exactly-once output to a file.
    Stream(commands::stream::StreamArgs),
    /// Run SQL over Parquet and CSV files, with registered models as the functions
    /// wharf_predict and wharf_predict_proba (DataFusion).
    #[cfg(feature = "datafusion")]
    Sql(commands::sql::SqlArgs),
    /// Show the effective configuration, compiled-in features, adapters and wiring.
    Doctor,
    /// Show the versions of wharf, its artifact format and its learning libraries.
    Version,
}

/// The prediction log hands each sampled request's records and answer to its writer thread,
/// which frees them: with glibc's allocator those frees from another thread made the watch
/// (log at 10%, drift on) cost 0.84x the throughput of both off, 6 µs of CPU a request;
/// with mimalloc's per-thread heaps, 0.92x and about 2 µs (`cargo xtask bench-peers`). The
/// binary picks the allocator; the libraries leave that choice to whoever embeds them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    install_panic_hook();
    // Before any command can load an artifact: every model kind this build knows.
    wharf::register_kinds();
    let cli = Cli::parse();
    if let Err(message) = validate(&cli) {
        usage_error(&cli, &message);
    }
    let out = Output { json: cli.json, quiet: cli.quiet };
    // The panic hook already printed one `error:` line; this only turns the unwind into a
    // plain failure status.
    let result = match panic::catch_unwind(AssertUnwindSafe(|| dispatch(cli.command, &out))) {
        Ok(result) => result,
        Err(_) => return ExitCode::FAILURE,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if output::is_closed_stdout(&err) => ExitCode::SUCCESS,
        Err(err) => {
            output::error_line(&output::one_line(&err));
            ExitCode::FAILURE
        }
    }
}

fn dispatch(command: Command, out: &Output) -> anyhow::Result<()> {
    match command {
        Command::Train(args) => commands::train::run(args, out),
        Command::Score(args) => commands::score::run(args, out),
        Command::Tune(args) => commands::tune::run(args, out),
        Command::Promote(args) => commands::promote::run(args, out),
        Command::Drift(args) => commands::drift::run(args, out),
        Command::Report(args) => commands::report::run(args, out),
        Command::Models(command) => commands::models::run(command, out),
        Command::Runs(command) => commands::runs::run(command, out),
        Command::Lineage(command) => commands::lineage::run(command, out),
        #[cfg(feature = "serve")]
        Command::Serve(args) => commands::serve::run(args, out),
        #[cfg(feature = "serve")]
        Command::Ui(args) => commands::ui::run(args, out),
        Command::Stream(args) => commands::stream::run(args, out),
        #[cfg(feature = "datafusion")]
        Command::Sql(args) => commands::sql::run(args, out),
        Command::Doctor => commands::doctor::run(out),
        Command::Version => commands::version::run(out),
        Command::RunModels(args) => commands::run_models::run(args, out),
    }
}

/// Checks that clap's declarations cannot express (they depend on another option's value).
fn validate(cli: &Cli) -> Result<(), String> {
    match &cli.command {
        Command::Train(args) => args.validate(),
        _ => Ok(()),
    }
}

/// Prints a usage error the way clap does (with the subcommand's usage line) and exits 2.
fn usage_error(cli: &Cli, message: &str) -> ! {
    let mut cmd = Cli::command();
    cmd.build();
    let name = match cli.command {
        Command::Train(_) => Some("train"),
        _ => None,
    };
    let err = match name.and_then(|n| cmd.find_subcommand_mut(n)) {
        Some(sub) => sub.error(clap::error::ErrorKind::ArgumentConflict, message),
        None => cmd.error(clap::error::ErrorKind::ArgumentConflict, message),
    };
    err.exit()
}

/// A panic is a bug, but the user still gets one `error:` line and no backtrace.
fn install_panic_hook() {
    panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".to_string());
        let location = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        let message = message.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
        output::error_line(&format!("internal error{location}: {message} (this is a bug in wharf; please report it)"));
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn train_needs_a_target_unless_clustering() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).map_err(|e| e.to_string()).and_then(|c| validate(&c));
        assert!(parse(&["wharf", "train", "--input", "a.csv"]).unwrap_err().contains("--target"));
        assert!(parse(&["wharf", "train", "--input", "a.csv", "--algorithm", "kmeans"]).is_ok());
        assert!(parse(&["wharf", "train", "--input", "a.csv", "--target", "y", "--trees", "5"])
            .unwrap_err()
            .contains("random-forest"));
        assert!(parse(&["wharf", "train", "--input", "a.csv", "--target", "y", "-a", "random-forest", "--trees", "5"])
            .is_ok());
        let forest = ["wharf", "train", "--input", "a.csv", "--target", "y", "-a", "random-forest"];
        for ok in ["sqrt", "log2", "all", "3", "0.5"] {
            assert!(parse(&[&forest[..], &["--max-features", ok]].concat()).is_ok(), "{ok}");
        }
        assert!(parse(&[&forest[..], &["--max-features", "1.5"]].concat()).unwrap_err().contains("max_features"));
        assert!(parse(&["wharf", "train", "--input", "a.csv", "--target", "y", "-a", "tree", "--max-features", "3"])
            .unwrap_err()
            .contains("random-forest"));
        let boost = ["wharf", "train", "--input", "a.csv", "--target", "y", "-a", "gbdt"];
        let flags: &[&str] = &["--trees", "50", "--learning-rate", "0.05", "--max-leaves", "15", "--max-depth", "6"];
        assert!(parse(&[&boost[..], flags, &["--class-weight", "balanced", "--validation-fraction", "0.1"]].concat())
            .is_ok());
        assert!(parse(&[&boost[..], &["--subsample", "1.5"]].concat()).is_err());
        assert!(parse(&["wharf", "train", "--input", "a.csv", "--target", "y", "--learning-rate", "0.1"])
            .unwrap_err()
            .contains("gbdt"));
    }
}
