//! Project automation: `cargo xtask <command>`.
//!
//! `cargo xtask test` is the one command that checks everything CI checks: formatting,
//! lints, the dependency promise of `wharf-core`, every test, the docs, and the examples.
//! Later adapters extend it to provision their real backends first.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

mod apt;
mod backends;
mod bench_peers;
mod brokers;
mod deny;
mod docs;
mod msrv;
mod postgres;
mod protocols;
mod python;
mod runnable;
mod soak;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("deps-check") => deps_check(&root()),
        Some("msrv") => msrv::check(&root()),
        Some("package") => package(&root()),
        Some("deny") => deny::check(&root()),
        Some("runnable") => runnable::run(&root()),
        Some("backends") => backends_foreground(),
        Some("docs") => docs::docs(&root(), args.iter().any(|a| a == "--bless")),
        Some("bench-peers") => bench_peers::bench_peers(&root()),
        Some("python") => python_only(),
        Some("soak") => soak::soak(&root()),
        _ => {
            eprintln!("usage: cargo xtask <command>\n\ncommands:\n  test        fmt, clippy, dependency check, all tests, docs, examples\n  deps-check  prove wharf-core pulls in no network, async or learning crates\n  msrv        check each crate's rust-version against its dependencies\n  package     cargo package every published crate (no build)\n  deny        cargo deny check licenses bans sources (installs cargo-deny under target/tools)\n  runnable    run the README's and the guide's ```bash,runnable blocks in a copy of the repository\n  python      build the Python wheel and run its pytest suite (MLflow tests with WHARF_TEST_MLFLOW_URI)\n  backends    start the test backends, print their variables, stop on Enter\n  docs        build the guide into target/book (--bless: regenerate the CLI reference and the ui screenshots)\n  bench-peers Wharf next to scikit-learn, ONNX Runtime, FastAPI and a minimal server: one table of ratios (slow)\n  soak        wharf serve under mixed load for SOAK_SECONDS (600): 5xx, wrong answers, RSS and descriptors over time");
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

/// Like [`step`], but passes the output through while summing cargo test's
/// `test result:` lines, so the run can end with one total.
fn counted_step(name: &str, mut cmd: Command, timings: &mut Vec<(String, f64)>) -> Result<(u64, u64), String> {
    use std::io::BufRead;
    eprintln!("\n==> {name}");
    let start = Instant::now();
    let mut child =
        cmd.stdout(std::process::Stdio::piped()).spawn().map_err(|e| format!("{name}: could not start: {e}"))?;
    let (mut passed, mut failed) = (0u64, 0u64);
    if let Some(out) = child.stdout.take() {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            println!("{line}");
            if let Some(rest) = line.strip_prefix("test result: ") {
                let count = |word: &str| {
                    rest.split(';')
                        .find_map(|part| {
                            part.trim()
                                .strip_suffix(word)
                                .and_then(|n| n.trim().rsplit(' ').next()?.parse::<u64>().ok())
                        })
                        .unwrap_or(0)
                };
                passed += count(" passed");
                failed += count(" failed");
            }
        }
    }
    let status = child.wait().map_err(|e| format!("{name}: {e}"))?;
    let secs = start.elapsed().as_secs_f64();
    timings.push((name.to_string(), secs));
    if status.success() {
        eprintln!("<== {name}: ok ({secs:.1}s, {passed} passed)");
        Ok((passed, failed))
    } else {
        Err(format!("{name} failed ({status}); {passed} passed, {failed} failed"))
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

    eprintln!("\n==> rust-version check (cargo xtask msrv)");
    msrv::check(&root)?;

    eprintln!("\n==> dependency policy (cargo xtask deny)");
    let deny_started = Instant::now();
    deny::check(&root)?;
    timings.push(("cargo deny".into(), deny_started.elapsed().as_secs_f64()));

    step("cargo package (every published crate, no build)", package_command(&root), &mut timings)?;

    // Real backends for the adapter tests, stopped when `services` drops (also on failure).
    eprintln!("\n==> backends");
    let backends_root = root.join("target").join("backends");
    std::fs::create_dir_all(&backends_root).map_err(|e| format!("{}: {e}", backends_root.display()))?;
    let started = Instant::now();
    let mut services = backends::Services::default();
    backends::mlflow(&backends_root, &mut services)?;
    backends::mlflow_basic_auth(&backends_root, &mut services)?;
    backends::bentoml(&backends_root, &bentoml_fixtures(&root), &mut services)?;
    backends::trees(&backends_root, &trees_fixtures(&root), &mut services)?;
    backends::chromium(&mut services)?;
    backends::ui_browser(&backends_root, &mut services)?;
    protocols::clients(&backends_root, &mut services)?;
    protocols::promtool(&mut services)?;
    let postgres = postgres::postgres(&backends_root, &mut services)?;
    brokers::install_missing()?;
    let redis = brokers::redis(&backends_root, &mut services)?;
    let nats = brokers::nats(&backends_root, &mut services)?;
    let kafka = brokers::kafka(&backends_root, &mut services)?;
    timings.push(("backends up".into(), started.elapsed().as_secs_f64()));

    // The scikit-learn import tests compare with scikit-learn's own outputs, generated here
    // with the scikit-learn pinned in the BentoML venv started above.
    let exports = sklearn_exports(&root, &backends_root)?;
    services.env.push(("WHARF_TEST_SKLEARN_EXPORTS".into(), exports.display().to_string()));

    let mut tests = cargo();
    tests.current_dir(&root).env("WHARF_TEST_REQUIRE_BACKENDS", "1").args(["test", "--workspace", "--all-features"]);
    tests.envs(services.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let (mut passed, mut failed) = counted_step("cargo test --workspace --all-features", tests, &mut timings)?;
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        free_test_executables(&root);
    }

    // The Python package: wheel, fresh venv, pytest (its MLflow tests against the server above).
    eprintln!("\n==> python package (maturin wheel, pytest)");
    let python_started = Instant::now();
    let (py_passed, py_failed) = python::test(&root, &backends_root, &services.env, false)?;
    eprintln!("<== python package: ok ({:.1}s, {py_passed} passed)", python_started.elapsed().as_secs_f64());
    timings.push(("python package".into(), python_started.elapsed().as_secs_f64()));
    passed += py_passed;
    failed += py_failed;
    // Test data in files outside the repository's tree outlives the servers: the run without
    // features below reads it too.
    let data_env: Vec<(String, String)> = services
        .env
        .iter()
        .filter(|(k, _)| {
            k == "WHARF_TEST_TREES_DATA"
                || k == "WHARF_TEST_TREES_PYTHON"
                || k == "WHARF_TEST_SKLEARN_EXPORTS"
                || k == "WHARF_TEST_CHROMIUM"
        })
        .cloned()
        .collect();
    drop(services);
    drop(postgres);
    drop(redis);
    drop(nats);
    drop(kafka);

    // The paths taken when a feature is missing (`AdapterUnavailable`, a command that names
    // the feature to enable) are `#[cfg(not(feature = ...))]`: the run above, with every
    // feature, never compiles them. The facade and the CLI once more with none.
    let mut bare = cargo();
    bare.current_dir(&root).args(["test", "-p", "wharf", "-p", "wharf-cli", "--no-default-features"]);
    bare.envs(data_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let (bare_passed, bare_failed) =
        counted_step("cargo test -p wharf -p wharf-cli --no-default-features", bare, &mut timings)?;
    let (passed, failed) = (passed + bare_passed, failed + bare_failed);

    let mut doc = cargo();
    doc.current_dir(&root).env("RUSTDOCFLAGS", "-D warnings").args([
        "doc",
        "--workspace",
        "--no-deps",
        "--all-features",
    ]);
    step("cargo doc -D warnings", doc, &mut timings)?;

    // The guide: reference pages current, links resolve, the mdBook site builds offline.
    eprintln!("\n==> guide (cargo xtask docs)");
    let guide_started = Instant::now();
    docs::docs(&root, false)?;
    timings.push(("guide".into(), guide_started.elapsed().as_secs_f64()));

    // What a newcomer copies from the README and the guide runs as written.
    eprintln!("\n==> runnable blocks (cargo xtask runnable)");
    let runnable_started = Instant::now();
    runnable::run(&root)?;
    timings.push(("runnable blocks".into(), runnable_started.elapsed().as_secs_f64()));

    // The examples that need no backend run for real, each in a scratch directory so the
    // files they write land nowhere near the checkout.
    for (package, example) in [
        ("wharf", "quickstart"),
        ("wharf", "custom_adapter"),
        ("wharf", "openlineage"),
        ("wharf-runner", "multi_model_runner"),
        ("wharf-pipeline", "scoring_pipe"),
        ("wharf-stream", "activity"),
        ("wharf-batch", "batch_scoring"),
    ] {
        let scratch = root.join("target").join("xtask-examples").join(example);
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
        let mut run = cargo();
        run.current_dir(&scratch)
            .env_remove("WHARF_PROFILE")
            .env_remove("WHARF_CONFIG")
            .args(["run", "--quiet", "--manifest-path"])
            .arg(root.join("Cargo.toml"))
            .args(["-p", package, "--all-features", "--example", example]);
        step(&format!("example {example}"), run, &mut timings)?;
    }

    eprintln!("\nxtask test: all steps passed in {:.0}s", start.elapsed().as_secs_f64());
    for (name, secs) in timings {
        eprintln!("  {secs:>7.1}s  {name}");
    }
    // The plain closing line CI readers understand, summed over every test binary.
    println!("xtask: {passed} passed, {failed} failed");
    Ok(())
}

/// On CI, where the clone is thrown away, drops the test executables the workspace run has
/// finished with: a few gigabytes that the later steps never read, on a disk that once filled
/// up mid-run. A developer's warm target keeps them, so a rerun links nothing again.
fn free_test_executables(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let deps = target.join("debug").join("deps");
    let Ok(entries) = std::fs::read_dir(&deps) else { return };
    let mut freed = 0u64;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        // Test executables are the extension-less executable files; libraries end in .so/.rlib.
        let executable = meta.is_file() && path.extension().is_none() && meta.permissions().mode() & 0o111 != 0;
        if executable && std::fs::remove_file(&path).is_ok() {
            freed += meta.len();
        }
    }
    eprintln!("<== freed {:.1} GB of finished test executables", freed as f64 / 1e9);
}

/// `cargo package` of every crate that is published, without building them (`--no-verify`):
/// it fails when a manifest lacks what crates.io requires or a crate cannot be packaged on
/// its own. `--allow-dirty`, so it also checks uncommitted work.
fn package_command(root: &Path) -> Command {
    let mut cmd = cargo();
    cmd.current_dir(root).args([
        "package",
        "--workspace",
        "--exclude",
        "xtask",
        "--exclude",
        "wharf-guide-doctests",
        "--no-verify",
        "--allow-dirty",
        "--quiet",
    ]);
    cmd
}

fn package(root: &Path) -> Result<(), String> {
    let status = package_command(root).status().map_err(|e| format!("cargo package: {e}"))?;
    if status.success() {
        eprintln!("<== every published crate packages");
        Ok(())
    } else {
        Err(format!("cargo package failed ({status})"))
    }
}

/// Writes the scikit-learn import tests' data (`xtask/python/sklearn_exports.py`) into
/// `target/sklearn-exports` with the BentoML venv's Python, unless the files there were
/// written by the same script with the same packages.
fn sklearn_exports(root: &Path, backends_root: &Path) -> Result<PathBuf, String> {
    let script = root.join("xtask").join("python").join("sklearn_exports.py");
    let out = root.join("target").join("sklearn-exports");
    let stamp = out.join(".wharf-stamp");
    let source = std::fs::read_to_string(&script).map_err(|e| format!("{}: {e}", script.display()))?;
    let want = format!("{}\n{source}", backends::BENTOML_SPECS.join("\n"));
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) {
        eprintln!("<== scikit-learn exports current in {}", out.display());
        return Ok(out);
    }
    let python = backends::venv(backends_root, "bentoml", backends::BENTOML_SPECS)?.join("bin").join("python");
    let _ = std::fs::remove_dir_all(&out);
    let mut cmd = Command::new(python);
    cmd.arg(&script).arg(&out).env("PYTHONDONTWRITEBYTECODE", "1");
    let mut timings = Vec::new();
    step("scikit-learn exports", cmd, &mut timings)?;
    std::fs::write(&stamp, want).map_err(|e| format!("{}: {e}", stamp.display()))?;
    Ok(out)
}

/// The BentoML test service and its save-model script.
fn bentoml_fixtures(root: &Path) -> PathBuf {
    root.join("crates").join("wharf-bentoml").join("tests").join("fixtures")
}

/// The tree importers' model-training script.
fn trees_fixtures(root: &Path) -> PathBuf {
    root.join("crates").join("wharf-trees").join("tests").join("fixtures")
}

/// `wharf-core` must stay free of networking and async runtimes (adapters bring those) and of
/// the learning libraries and their thread pool (`wharf-ml` brings those): every adapter
/// depends on the core, and none should compile an ML engine for it. A forbidden name also
/// rules out its family (`linfa-logistic`, `rayon-core`, `tokio-util`).
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
    let forbidden = ["reqwest", "tokio", "axum", "hyper", "async-std", "linfa", "smartcore", "rayon"];
    let is_forbidden =
        |name: &str| forbidden.iter().any(|f| name == *f || name.strip_prefix(f).is_some_and(|r| r.starts_with('-')));
    let mut found: Vec<&str> =
        tree.lines().filter_map(|l| l.split_whitespace().next()).filter(|name| is_forbidden(name)).collect();
    found.sort_unstable();
    found.dedup();
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

/// `cargo xtask python`: the Python package's build and tests alone. The MLflow pyfunc tests
/// run when `WHARF_TEST_MLFLOW_URI` is set (from `cargo xtask backends`).
fn python_only() -> Result<(), String> {
    let root = root();
    let backends_root = root.join("target").join("backends");
    std::fs::create_dir_all(&backends_root).map_err(|e| format!("{}: {e}", backends_root.display()))?;
    let env: Vec<(String, String)> = std::env::vars().filter(|(k, _)| k.starts_with("WHARF_TEST_MLFLOW")).collect();
    let (passed, failed) = python::test(&root, &backends_root, &env, true)?;
    println!("xtask: {passed} passed, {failed} failed");
    Ok(())
}

/// Starts the backends for a developer's own `cargo test` runs, prints the variables to
/// export, and stops them when Enter is pressed.
fn backends_foreground() -> Result<(), String> {
    let root = root().join("target").join("backends");
    std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    let mut services = backends::Services::default();
    backends::mlflow(&root, &mut services)?;
    backends::mlflow_basic_auth(&root, &mut services)?;
    backends::bentoml(&root, &bentoml_fixtures(&crate::root()), &mut services)?;
    backends::trees(&root, &trees_fixtures(&crate::root()), &mut services)?;
    backends::chromium(&mut services)?;
    backends::ui_browser(&root, &mut services)?;
    protocols::clients(&root, &mut services)?;
    protocols::promtool(&mut services)?;
    let _postgres = postgres::postgres(&root, &mut services)?;
    brokers::install_missing()?;
    let _redis = brokers::redis(&root, &mut services)?;
    let _nats = brokers::nats(&root, &mut services)?;
    let _kafka = brokers::kafka(&root, &mut services)?;
    for (k, v) in &services.env {
        println!("export {k}={v}");
    }
    eprintln!("backends up; press Enter to stop them");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    Ok(())
}
