//! Printing: tables for people, JSON for scripts, one-line errors, a progress spinner.

use std::io::Write;
use std::time::Duration;

use comfy_table::{presets, ContentArrangement, Table};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

/// How results are printed, from the global flags.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// `--json`: JSON on stdout instead of tables and sentences.
    pub json: bool,
    /// `--quiet`: no spinner and only essential output.
    pub quiet: bool,
}

impl Output {
    /// Prints `value` as pretty JSON.
    pub fn json(&self, value: &Value) -> anyhow::Result<()> {
        let mut text = serde_json::to_string_pretty(value)?;
        text.push('\n');
        stdout(&text)
    }

    /// Prints a line unless `--quiet`.
    pub fn info(&self, text: impl AsRef<str>) -> anyhow::Result<()> {
        if self.quiet {
            return Ok(());
        }
        self.line(text)
    }

    /// Prints a line.
    pub fn line(&self, text: impl AsRef<str>) -> anyhow::Result<()> {
        let mut text = text.as_ref().to_string();
        text.push('\n');
        stdout(&text)
    }

    /// Prints a table.
    pub fn table(&self, table: &Table) -> anyhow::Result<()> {
        self.line(table.to_string())
    }
}

/// Writing to stdout failed because the reader went away (`wharf models list | head -1`):
/// not an error worth reporting.
#[derive(Debug)]
struct ClosedStdout;

impl std::fmt::Display for ClosedStdout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stdout was closed")
    }
}

impl std::error::Error for ClosedStdout {}

fn stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(ClosedStdout.into()),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write to stdout")),
    }
}

/// Prints `error: <message>` on stderr. Unlike `eprintln!`, never panics when stderr is
/// closed: there is nowhere left to report that. The message goes through the redaction
/// rule once more, since it may quote what a library was given (a URL with a password).
pub fn error_line(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "error: {}", wharf::redact::text(message));
}

/// Prints `warning: <message>` on stderr (never panics), redacted like [`error_line`].
pub fn warning(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "warning: {}", wharf::redact::text(message));
}

/// True when `err` only says stdout was closed by its reader.
pub fn is_closed_stdout(err: &anyhow::Error) -> bool {
    err.downcast_ref::<ClosedStdout>().is_some()
}

/// The error and its causes on one line. A cause whose text its parent already shows (as
/// `WharfError::Io` does with the OS error) is not repeated.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

/// A table in the house style: light borders, no colours, wrapped to the terminal when
/// there is one.
pub fn table<I, S>(header: I) -> Table
where
    I: IntoIterator<Item = S>,
    S: Into<comfy_table::Cell>,
{
    let mut table = Table::new();
    table.load_style(presets::UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header(header.into_iter().map(Into::into).collect::<Vec<comfy_table::Cell>>());
    table
}

/// `key  value` lines, the values aligned.
pub fn key_values(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    rows.iter().map(|(k, v)| format!("{k:<width$}  {v}")).collect::<Vec<_>>().join("\n")
}

/// A metric for people: four decimals, `n/a` when undefined.
pub fn metric(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.4}")
    } else {
        "n/a".to_string()
    }
}

/// A spinner on stderr naming the current stage. It draws nothing when stderr is not a
/// terminal or with `--quiet`, and clears itself when dropped.
pub struct Spinner {
    bar: ProgressBar,
}

impl Spinner {
    /// Starts a spinner (hidden if `quiet`).
    pub fn new(quiet: bool) -> Self {
        let target = if quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() };
        let bar = ProgressBar::with_draw_target(None, target);
        if let Ok(style) = ProgressStyle::default_spinner().template("{spinner} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        if !bar.is_hidden() {
            bar.enable_steady_tick(Duration::from_millis(100));
        }
        Spinner { bar }
    }

    /// Runs `f` (which may print to stderr) with the spinner out of the way.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// Names the current stage (back to a spinner after [`Spinner::round`]'s bar).
    pub fn stage(&self, message: impl Into<String>) {
        if self.bar.length().is_some() {
            self.bar.unset_length();
            if let Ok(style) = ProgressStyle::default_spinner().template("{spinner} {msg} ({elapsed})") {
                self.bar.set_style(style);
            }
        }
        self.bar.set_message(message.into());
    }

    /// A handle on the spinner for [`Spinner::round`], which a training observer (another
    /// thread's callback) can own.
    pub fn rounds_bar(&self) -> ProgressBar {
        self.bar.clone()
    }

    /// Shows boosting round `done` of `total` as a bar, with the latest loss.
    pub fn round(bar: &ProgressBar, done: usize, total: usize, loss: &str) {
        if bar.length() != Some(total as u64) {
            bar.set_length(total as u64);
            if let Ok(style) =
                ProgressStyle::default_bar().template("training [{bar:30}] {pos}/{len} rounds, {msg} ({elapsed})")
            {
                bar.set_style(style.progress_chars("=> "));
            }
        }
        bar.set_position(done as u64);
        bar.set_message(loss.to_string());
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
