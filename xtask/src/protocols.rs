//! What the tests of `wharf serve`'s standard protocols and metrics need from outside:
//! clients Wharf did not write (Triton's `tritonclient[http]` and MLflow, pinned, in a venv
//! of their own) and Prometheus' `promtool`, which checks the metrics exposition.
//!
//! Exports `WHARF_TEST_PROTOCOL_PYTHON` (that venv's Python) and `WHARF_TEST_PROMTOOL`.
//! Nothing runs: nothing to stop.

use std::path::Path;

use crate::backends::{self, Services};

/// tritonclient's HTTP client pinned, with the MLflow the MLflow adapter is verified against
/// (its payload helpers and response reader are what the test calls).
pub const CLIENT_SPECS: &[&str] = &["tritonclient[http]==2.73.0", backends::MLFLOW_SPEC];

/// Makes (or reuses) the clients' venv.
pub fn clients(root: &Path, services: &mut Services) -> Result<(), String> {
    let venv = backends::venv(root, "protocol-clients", CLIENT_SPECS)?;
    let python = venv.join("bin").join("python");
    services.env.push(("WHARF_TEST_PROTOCOL_PYTHON".into(), python.display().to_string()));
    Ok(())
}

/// Finds `promtool`, installing Debian's `prometheus` package (which ships it) if missing.
pub fn promtool(services: &mut Services) -> Result<(), String> {
    let promtool = crate::brokers::ensure_installed("promtool", "prometheus")?;
    services.env.push(("WHARF_TEST_PROMTOOL".into(), promtool.display().to_string()));
    Ok(())
}
