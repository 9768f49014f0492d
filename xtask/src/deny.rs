//! `cargo deny check licenses bans sources`: the dependency policy in `deny.toml`.
//!
//! cargo-deny is installed by Cargo into `target/tools` at a pinned version, the way mdBook
//! is (see `docs.rs`), so the check needs nothing installed beforehand and gives the same
//! answer on every machine. Advisories are left out: their database is fetched from the
//! internet, which the project's checks cannot reach (`deny.toml` says so).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The cargo-deny this project's policy is checked with.
pub const CARGO_DENY_VERSION: &str = "0.20.2";

/// Runs the check; installs cargo-deny first when the pinned one is missing.
pub fn check(root: &Path) -> Result<(), String> {
    let deny = ensure(root)?;
    eprintln!("==> cargo deny check licenses bans sources");
    // Warnings (duplicate versions of small crates) are listed by `cargo deny check bans`
    // itself; here only what fails the policy is shown.
    let status = Command::new(&deny)
        .current_dir(root)
        .args(["--log-level", "error", "check", "--hide-inclusion-graph", "licenses", "bans", "sources"])
        .status()
        .map_err(|e| format!("{}: {e}", deny.display()))?;
    if status.success() {
        eprintln!("<== licences, bans and sources as deny.toml allows");
        Ok(())
    } else {
        Err(format!("cargo deny check licenses bans sources failed ({status}); the policy is deny.toml"))
    }
}

/// The cargo-deny binary: the pinned one under `target/tools`, installed there when missing.
fn ensure(root: &Path) -> Result<PathBuf, String> {
    let tools = root.join("target").join("tools");
    let bin = tools.join("bin").join(if cfg!(windows) { "cargo-deny.exe" } else { "cargo-deny" });
    if installed_version(&bin).as_deref() == Some(CARGO_DENY_VERSION) {
        return Ok(bin);
    }
    eprintln!("==> installing cargo-deny {CARGO_DENY_VERSION} into {} (once; takes a few minutes)", tools.display());
    let status = crate::cargo()
        .current_dir(root)
        .args(["install", "cargo-deny", "--locked", "--version", CARGO_DENY_VERSION, "--root"])
        .arg(&tools)
        .status()
        .map_err(|e| format!("cargo install cargo-deny: {e}"))?;
    if !status.success() {
        return Err(format!("cargo install cargo-deny failed ({status})"));
    }
    match installed_version(&bin) {
        Some(v) if v == CARGO_DENY_VERSION => Ok(bin),
        other => Err(format!("{} reports version {other:?}, expected {CARGO_DENY_VERSION}", bin.display())),
    }
}

/// `cargo-deny --version` prints `cargo-deny 0.20.2`; the version.
fn installed_version(bin: &Path) -> Option<String> {
    let out = Command::new(bin).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    Some(text.split_whitespace().last()?.to_string())
}
