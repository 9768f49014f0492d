//! Project automation: `cargo xtask <command>`.
//!
//! `cargo xtask test` is the one command that checks everything CI checks: formatting,
//! lints, the dependency promise of `wharf-core`, every test, the docs, and the examples.
//! Later adapters extend it to provision their real backends first.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("deps-check") => deps_check(&root()),
        _ => {
            eprintln!("usage: cargo xtask <command>\n\ncommands:\n  test        fmt, clippy, dependency check, all tests, docs, examples\n  deps-check  prove wharf-core pulls in no network or async crates");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Runs one step, timing it; fails with the step's name.
fn step(name: &str, mut cmd: Command, timings: &mut Vec<(String, f64)>) -> Result<(), String> {
    eprintln!("\n==> {name}");
    let start = Instant::now();
    let status = cmd.status().map_err(|e| format!("{name}: could not start: {e}"))?;
    let secs = start.elapsed().as_secs_f64();
    timings.push((name.to_string(), secs));
    if status.success() {
        eprintln!("<== {name}: ok ({secs:.1}s)");
        Ok(())
    } else {
        Err(format!("{name} failed ({status})"))
    }
}

fn test() -> Result<(), String> {
    let root = root();
    let mut timings = Vec::new();
    let start = Instant::now();

    let mut fmt = cargo();
    fmt.current_dir(&root).args(["fmt", "--all", "--", "--check"]);
    step("cargo fmt --check", fmt, &mut timings)?;

    let mut clippy = cargo();
    clippy.current_dir(&root).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ]);
    step("cargo clippy -D warnings", clippy, &mut timings)?;

    eprintln!("\n==> dependency check");
    deps_check(&root)?;

    let mut tests = cargo();
    tests.current_dir(&root).args(["test", "--workspace", "--all-features"]);
    step("cargo test --workspace --all-features", tests, &mut timings)?;

    let mut doc = cargo();
    doc.current_dir(&root).env("RUSTDOCFLAGS", "-D warnings").args([
        "doc",
        "--workspace",
        "--no-deps",
        "--all-features",
    ]);
    step("cargo doc -D warnings", doc, &mut timings)?;

    // The examples that need no backend run for real, each in a scratch directory so the
    // files they write land nowhere near the checkout.
    for example in ["quickstart", "custom_adapter"] {
        let scratch = root.join("target").join("xtask-examples").join(example);
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
        let mut run = cargo();
        run.current_dir(&scratch)
            .env_remove("WHARF_PROFILE")
            .env_remove("WHARF_CONFIG")
            .args(["run", "--quiet", "--manifest-path"])
            .arg(root.join("Cargo.toml"))
            .args(["-p", "wharf", "--example", example]);
        step(&format!("example {example}"), run, &mut timings)?;
    }

    eprintln!("\nxtask test: all steps passed in {:.0}s", start.elapsed().as_secs_f64());
    for (name, secs) in timings {
        eprintln!("  {secs:>7.1}s  {name}");
    }
    Ok(())
}

/// `wharf-core` must stay free of networking and async runtimes: adapters bring those.
fn deps_check(root: &Path) -> Result<(), String> {
    let out = cargo()
        .current_dir(root)
        .args(["tree", "-p", "wharf-core", "-e", "normal", "--prefix", "none", "--all-features"])
        .output()
        .map_err(|e| format!("cargo tree: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo tree failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let tree = String::from_utf8_lossy(&out.stdout);
    let forbidden = ["reqwest", "tokio", "axum", "hyper", "async-std"];
    let found: Vec<&str> =
        tree.lines().filter_map(|l| l.split_whitespace().next()).filter(|name| forbidden.contains(name)).collect();
    // Guard the guard: if the tree's format changed and nothing parsed, say so.
    if !tree.lines().any(|l| l.starts_with("ndarray ")) {
        return Err("cargo tree output not understood (ndarray not found)".into());
    }
    if found.is_empty() {
        eprintln!("<== wharf-core depends on none of {forbidden:?} ({} crates checked)", tree.lines().count());
        Ok(())
    } else {
        Err(format!("wharf-core must not depend on {found:?}"))
    }
}
