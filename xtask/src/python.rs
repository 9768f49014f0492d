//! The Python package (`crates/wharf-py`): build the wheel with maturin, install it into a
//! fresh venv beside pinned NumPy, pandas, pyarrow and pytest, and run its pytest suite.
//!
//! The suite's expected values come from the `wharf` CLI (trained and scored at test time),
//! so the binary is built first and handed over as `WHARF_CLI`. PySpark is installed beside
//! them (with Java from Debian when missing) for `wharf.spark`'s local-mode tests. With
//! `WHARF_TEST_MLFLOW_URI` set, the MLflow pyfunc tests run too, in a venv that also holds
//! the server's MLflow.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::backends;

/// maturin, pinned: the wheel's layout (mixed Rust/Python project) depends on it.
pub const MATURIN_SPEC: &str = "maturin==1.16.0";

/// What the wheel is tested with. NumPy matches the tree importers' venv; pyarrow stays below
/// 26 because the MLflow the pyfunc tests install beside it (3.17.2) requires that.
pub const TEST_SPECS: &[&str] = &["numpy==2.4.6", "pandas==3.1.1", "pyarrow==25.0.1", "pytest==9.2.0"];

/// PySpark for `wharf.spark`'s local-mode tests (it runs on Java 17, from Debian when missing).
pub const SPARK_SPEC: &str = "pyspark==4.3.0";
/// Debian's Java runtime for PySpark.
const JAVA_PACKAGE: &str = "openjdk-17-jre-headless";

/// A Java runtime on PATH, installed from Debian's packages when there is none.
fn ensure_java() -> Result<(), String> {
    let found = Command::new("java").arg("-version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    if found.is_ok_and(|s| s.success()) {
        return Ok(());
    }
    crate::apt::install(JAVA_PACKAGE)
}

/// Builds the wheel (release, so the speed report means something) into
/// `target/wheels-py/` and returns its path.
pub fn build_wheel(root: &Path, backends_root: &Path) -> Result<PathBuf, String> {
    let maturin = backends::venv(backends_root, "maturin", &[MATURIN_SPEC])?;
    let out = root.join("target").join("wheels-py");
    let _ = std::fs::remove_dir_all(&out);
    let start = Instant::now();
    let status = Command::new(maturin.join("bin").join("maturin"))
        .current_dir(root.join("crates").join("wharf-py"))
        .args(["build", "--release", "--quiet", "--interpreter", "python3", "--out"])
        .arg(&out)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("maturin: could not start: {e}"))?;
    if !status.success() {
        return Err(format!("maturin build failed ({status})"));
    }
    let wheel = std::fs::read_dir(&out)
        .map_err(|e| format!("{}: {e}", out.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| format!("maturin wrote no wheel into {}", out.display()))?;
    eprintln!("<== wheel {} built in {:.0}s", wheel.display(), start.elapsed().as_secs_f64());
    Ok(wheel)
}

/// A fresh venv `name` with `specs` and the wheel (never reused: the wheel changes).
pub(crate) fn fresh_venv(backends_root: &Path, name: &str, specs: &[&str], wheel: &Path) -> Result<PathBuf, String> {
    // Removed first: `venv` would reuse a directory whose stamp matches, and the suite must
    // see only what the wheel declares.
    let _ = std::fs::remove_dir_all(backends_root.join(name));
    let venv = backends::venv(backends_root, name, specs)?;
    let uv = backends_root.join("uv").join("bin").join("uv");
    let status = Command::new(uv)
        .args(["pip", "install", "--quiet", "--reinstall-package", "wharf-models", "--no-deps", "--python"])
        .arg(venv.join("bin").join("python"))
        .arg(wheel)
        .status()
        .map_err(|e| format!("uv pip install wheel: {e}"))?;
    if !status.success() {
        return Err(format!("installing {} failed ({status})", wheel.display()));
    }
    Ok(venv)
}

/// Builds the CLI (unless `build_cli` is false: `cargo xtask test` has just built it with
/// the CLI's own tests, and a plain `cargo build` resolves features differently, which would
/// rebuild half the workspace), the wheel and the venv, then runs pytest on
/// `crates/wharf-py/tests`. `env` carries the backends' variables (MLflow's URI for the
/// pyfunc tests). Returns pytest's (passed, failed).
pub fn test(
    root: &Path,
    backends_root: &Path,
    env: &[(String, String)],
    build_cli: bool,
) -> Result<(u64, u64), String> {
    // Where cargo put it (CI sets CARGO_TARGET_DIR).
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let cli = target.join("debug").join("wharf");
    if build_cli {
        let status = crate::cargo()
            .current_dir(root)
            .args(["build", "--quiet", "--workspace", "--all-features", "--bin", "wharf"])
            .status()
            .map_err(|e| format!("cargo build --bin wharf: {e}"))?;
        if !status.success() {
            return Err(format!("cargo build --bin wharf failed ({status})"));
        }
    } else if !cli.exists() {
        return Err(format!("{} is missing: the CLI tests should have built it", cli.display()));
    }
    let wheel = build_wheel(root, backends_root)?;
    let mlflow = env.iter().any(|(k, _)| k == "WHARF_TEST_MLFLOW_URI");
    ensure_java()?;
    let mut specs: Vec<&str> = TEST_SPECS.to_vec();
    specs.push(SPARK_SPEC);
    if mlflow {
        specs.push(backends::MLFLOW_SPEC);
    }
    let venv = fresh_venv(backends_root, if mlflow { "python-mlflow" } else { "python" }, &specs, &wheel)?;
    let mut pytest = Command::new(venv.join("bin").join("python"));
    pytest
        .current_dir(root.join("crates").join("wharf-py"))
        .env("WHARF_CLI", &cli)
        .env("WHARF_DATA", root.join("crates").join("wharf-ml").join("data"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("WHARF_TEST_SPARK", "1")
        .env_remove("WHARF_PROFILE")
        .env_remove("WHARF_CONFIG")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(["-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", "tests"])
        .stdout(Stdio::piped());
    if mlflow {
        // The server was provisioned, so it must be used: a skip would hide a broken setup.
        pytest.env("WHARF_TEST_REQUIRE_BACKENDS", "1");
    }
    let mut child = pytest.spawn().map_err(|e| format!("pytest: could not start: {e}"))?;
    let (mut passed, mut failed) = (0, 0);
    if let Some(out) = child.stdout.take() {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            println!("{line}");
            // pytest's summary: `12 passed, 1 skipped in 3.2s` (or `1 failed, 11 passed ...`).
            if let Some((head, _)) = line.trim().trim_matches('=').trim().split_once(" in ") {
                if !(head.contains("passed") || head.contains("failed")) {
                    continue;
                }
                let count = |word: &str| {
                    head.split(',').find_map(|part| part.trim().strip_suffix(word)?.trim().parse().ok()).unwrap_or(0)
                };
                passed = count(" passed");
                failed = count(" failed");
            }
        }
    }
    let status = child.wait().map_err(|e| format!("pytest: {e}"))?;
    if status.success() {
        Ok((passed, failed))
    } else {
        Err(format!("pytest failed ({status}); {passed} passed, {failed} failed"))
    }
}
