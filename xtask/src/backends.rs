//! Real backends for the adapter tests: installed into venvs under `target/backends/`,
//! started on free loopback ports with their PIDs held, waited for, and stopped on every
//! exit path (the `Services` guard kills them on drop, including after a failed step).
//!
//! Tests find them through environment variables (`WHARF_TEST_MLFLOW_URI`, …). Under
//! `cargo xtask test` `WHARF_TEST_REQUIRE_BACKENDS=1` is set, so a test whose backend is
//! missing fails instead of skipping.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// MLflow pinned to the version the adapter was verified against (3.18.0 is listed on PyPI
/// but its dependencies are not served, so an unpinned install backtracks).
pub const MLFLOW_SPEC: &str = "mlflow==3.17.2";
/// The same MLflow with the `auth` extra, for the basic-auth server.
pub const MLFLOW_AUTH_SPEC: &str = "mlflow[auth]==3.17.2";

/// BentoML pinned to the version the proxy adapter was verified against, with the
/// scikit-learn that trains its test model (pinned too: the known outputs the tests compare
/// against come from this version) and `requests`, the Python client the proxy benchmark
/// compares against.
pub const BENTOML_SPECS: &[&str] = &["bentoml==1.4.39", "scikit-learn==1.9.1", "requests==2.34.2"];

/// Running backends; dropping this stops them.
#[derive(Default)]
pub struct Services {
    children: Vec<(String, Child)>,
    /// `(variable, value)` pairs the tests need.
    pub env: Vec<(String, String)>,
}

impl Drop for Services {
    fn drop(&mut self) {
        for (name, child) in &mut self.children {
            // SIGTERM first (MLflow takes its workers down with it), then make sure.
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("<== stopped {name}");
        }
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// `GET path` on 127.0.0.1:port answers 200.
pub fn http_ok(port: u16, path: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && (head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.0 200"))
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let status = cmd.status().map_err(|e| format!("{what}: could not start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

/// The `uv` binary, installed from PyPI into `target/backends/uv` once.
fn uv(root: &Path) -> Result<PathBuf, String> {
    let dir = root.join("uv");
    let uv = dir.join("bin").join("uv");
    if !uv.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&dir), "python3 -m venv (is python3-venv installed?)")?;
        run(Command::new(dir.join("bin").join("pip")).args(["install", "--quiet", "uv"]), "pip install uv")?;
    }
    Ok(uv)
}

/// A venv at `target/backends/<name>` holding `packages`; reused when its stamp matches.
pub fn venv(root: &Path, name: &str, packages: &[&str]) -> Result<PathBuf, String> {
    make_venv(root, name, &packages.join("\n"), |install| {
        install.args(packages);
    })
}

/// A venv at `target/backends/<name>` installed from `requirements` (a requirements file's
/// text, every line pinned with `--hash`) with `--require-hashes`, for a binary that was not
/// built by a project we otherwise trust: a changed artifact fails the install.
pub fn venv_locked(root: &Path, name: &str, requirements: &str) -> Result<PathBuf, String> {
    let file = root.join(format!("{name}.requirements.txt"));
    std::fs::write(&file, requirements).map_err(|e| format!("{}: {e}", file.display()))?;
    make_venv(root, name, requirements, |install| {
        install.arg("--require-hashes").arg("-r").arg(&file);
    })
}

/// Makes the venv `name` with uv unless its stamp says `want` is installed; `packages` adds
/// what to install to the `uv pip install` command.
fn make_venv(root: &Path, name: &str, want: &str, packages: impl FnOnce(&mut Command)) -> Result<PathBuf, String> {
    let dir = root.join(name);
    let stamp = dir.join(".wharf-packages");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(want) {
        return Ok(dir);
    }
    let uv = uv(root)?;
    let start = Instant::now();
    let _ = std::fs::remove_dir_all(&dir);
    run(Command::new(&uv).args(["venv", "--quiet", "--python", "python3"]).arg(&dir), "uv venv")?;
    let mut install = Command::new(&uv);
    install.args(["pip", "install", "--quiet", "--compile-bytecode", "--python"]).arg(dir.join("bin").join("python"));
    packages(&mut install);
    let what = want.lines().collect::<Vec<_>>().join(" ");
    run(&mut install, &format!("uv pip install {what}"))?;
    std::fs::write(&stamp, want).map_err(|e| format!("{}: {e}", stamp.display()))?;
    eprintln!("<== venv {name}: {what} installed in {:.1}s", start.elapsed().as_secs_f64());
    Ok(dir)
}

/// Spawns `cmd` (stdout/stderr to `log`), registers it, and waits for `GET path` → 200.
fn start(
    services: &mut Services,
    name: &str,
    mut cmd: Command,
    log: &Path,
    port: u16,
    path: &str,
    timeout: Duration,
) -> Result<(), String> {
    let out = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .map_err(|e| format!("{name}: could not start: {e}"))?;
    services.children.push((name.to_string(), child));
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Some((_, child)) = services.children.last_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                let tail = std::fs::read_to_string(log).unwrap_or_default();
                let tail: Vec<&str> = tail.lines().rev().take(20).collect();
                return Err(format!(
                    "{name} exited ({status}); last log lines:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                ));
            }
        }
        if http_ok(port, path) {
            eprintln!("<== {name} ready on 127.0.0.1:{port} after {:.0}s", start.elapsed().as_secs_f64());
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(format!("{name} not ready after {}s (log: {})", timeout.as_secs(), log.display()))
}

/// Installs and starts a local MLflow tracking server (sqlite store, proxied artifacts).
pub fn mlflow(root: &Path, services: &mut Services) -> Result<(), String> {
    let venv = venv(root, "mlflow", &[MLFLOW_SPEC])?;
    let port = free_port()?;
    let data = root.join(format!("mlflow-data-{port}"));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(venv.join("bin").join("mlflow"));
    cmd.env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        .args(["server", "--host", "127.0.0.1", "--port", &port.to_string(), "--workers", "1"])
        .arg("--backend-store-uri")
        .arg(format!("sqlite:///{}", data.join("mlflow.db").display()))
        .arg("--artifacts-destination")
        .arg(data.join("artifacts"));
    start(services, "mlflow server", cmd, &data.join("mlflow.log"), port, "/health", Duration::from_secs(300))?;
    services.env.push(("WHARF_TEST_MLFLOW_URI".into(), format!("http://127.0.0.1:{port}")));
    Ok(())
}

/// Password of the admin user of the basic-auth MLflow server (a throwaway test server on
/// loopback; nothing secret).
const MLFLOW_AUTH_PASSWORD: &str = "wharf-test-password";

/// A second MLflow server with MLflow's `basic-auth` app, for the client's credential tests.
/// Its user store lives in the data directory (MLflow's default is the working directory);
/// the admin user is created on first start. Exports `WHARF_TEST_MLFLOW_AUTH_URI`,
/// `WHARF_TEST_MLFLOW_AUTH_USER` and `WHARF_TEST_MLFLOW_AUTH_PASSWORD`.
pub fn mlflow_basic_auth(root: &Path, services: &mut Services) -> Result<(), String> {
    // The auth app needs MLflow's `auth` extra (Flask-WTF). A venv of its own, so the plain
    // server's venv is never reinstalled under a running server.
    let venv = venv(root, "mlflow-auth", &[MLFLOW_AUTH_SPEC])?;
    let port = free_port()?;
    let data = root.join(format!("mlflow-auth-data-{port}"));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    let ini = data.join("basic_auth.ini");
    let config = format!(
        "[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///{}\nadmin_username = admin\n\
         admin_password = {MLFLOW_AUTH_PASSWORD}\n\
         authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n",
        data.join("auth.db").display()
    );
    std::fs::write(&ini, config).map_err(|e| format!("{}: {e}", ini.display()))?;
    let mut cmd = Command::new(venv.join("bin").join("mlflow"));
    cmd.env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        .env("MLFLOW_AUTH_CONFIG_PATH", &ini)
        .env("MLFLOW_FLASK_SERVER_SECRET_KEY", "wharf-test-only")
        .args(["server", "--app-name", "basic-auth", "--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--workers", "1"])
        .arg("--backend-store-uri")
        .arg(format!("sqlite:///{}", data.join("mlflow.db").display()))
        .arg("--artifacts-destination")
        .arg(data.join("artifacts"));
    start(
        services,
        "mlflow server (basic-auth)",
        cmd,
        &data.join("mlflow.log"),
        port,
        "/health",
        Duration::from_secs(300),
    )?;
    services.env.push(("WHARF_TEST_MLFLOW_AUTH_URI".into(), format!("http://127.0.0.1:{port}")));
    services.env.push(("WHARF_TEST_MLFLOW_AUTH_USER".into(), "admin".into()));
    services.env.push(("WHARF_TEST_MLFLOW_AUTH_PASSWORD".into(), MLFLOW_AUTH_PASSWORD.into()));
    Ok(())
}

/// Installs BentoML, saves the test model (an sklearn classifier on iris) into a fresh model
/// store, and serves `crates/wharf-bentoml/tests/fixtures/service.py`. Exports
/// `WHARF_TEST_BENTOML_URL` and `WHARF_TEST_BENTOML_KNOWN` (the model's own predictions and
/// probabilities for the iris inputs, written by the save script, for the tests to compare).
pub fn bentoml(root: &Path, fixtures: &Path, services: &mut Services) -> Result<(), String> {
    let venv = venv(root, "bentoml", BENTOML_SPECS)?;
    let port = free_port()?;
    let data = root.join(format!("bentoml-data-{port}"));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    let home = data.join("home");
    let known = data.join("known-outputs.json");
    // BENTOML_DO_NOT_TRACK: BentoML would otherwise send usage analytics to the internet.
    // PYTHONDONTWRITEBYTECODE: the fixtures live in the checkout; leave no __pycache__ there.
    let env = [
        ("BENTOML_HOME", home.as_os_str()),
        ("BENTOML_DO_NOT_TRACK", "true".as_ref()),
        ("PYTHONDONTWRITEBYTECODE", "1".as_ref()),
    ];
    run(
        Command::new(venv.join("bin").join("python"))
            .envs(env)
            .arg(fixtures.join("save_model.py"))
            .arg(&known)
            .stdin(Stdio::null()),
        "bentoml save_model.py",
    )?;
    let mut cmd = Command::new(venv.join("bin").join("bentoml"));
    cmd.envs(env).args(["serve", "service:WharfIris", "--working-dir"]).arg(fixtures);
    cmd.args(["--host", "127.0.0.1", "--port"]).arg(port.to_string());
    start(services, "bentoml serve", cmd, &data.join("bentoml.log"), port, "/readyz", Duration::from_secs(180))?;
    services.env.push(("WHARF_TEST_BENTOML_URL".into(), format!("http://127.0.0.1:{port}")));
    services.env.push(("WHARF_TEST_BENTOML_KNOWN".into(), known.display().to_string()));
    services.env.push(("WHARF_TEST_BENTOML_PYTHON".into(), venv.join("bin").join("python").display().to_string()));
    Ok(())
}

/// XGBoost and LightGBM, pinned, for the tree importers' agreement tests (with numpy), and
/// scikit-learn, skl2onnx, onnx and ONNX Runtime for the ONNX importer's. `xgboost-cpu` is
/// XGBoost's official CPU-only wheel (the same `xgboost` module) without the
/// multi-hundred-megabyte CUDA collective library the `xgboost` wheel pulls in on Linux.
pub const TREES_SPECS: &[&str] = &[
    "xgboost-cpu==3.2.0",
    "lightgbm==4.7.0",
    "numpy==2.4.6",
    "scikit-learn==1.9.1",
    "skl2onnx==1.20.0",
    // skl2onnx 1.20.0 writes HistGradientBoosting's boolean attributes, which protobuf 5+
    // refuses; onnx 1.17 still runs on protobuf 4.
    "onnx==1.17.0",
    "protobuf==4.25.9",
    "onnxruntime==1.31.1",
];

/// Debian's Chromium, which renders the model card in wharf-report's browser test, and its
/// WebDriver (`chromium-driver`, the same build, so versions always match), which drives
/// `wharf ui` in the CLI's browser test: installed when missing, their paths exported as
/// `WHARF_TEST_CHROMIUM` and `WHARF_TEST_CHROMEDRIVER`. No server: nothing to stop.
pub fn chromium(services: &mut Services) -> Result<(), String> {
    let bin = crate::brokers::ensure_installed("chromium", "chromium")?;
    services.env.push(("WHARF_TEST_CHROMIUM".into(), bin.display().to_string()));
    let driver = crate::brokers::ensure_installed("chromedriver", "chromium-driver")?;
    services.env.push(("WHARF_TEST_CHROMEDRIVER".into(), driver.display().to_string()));
    Ok(())
}

/// The WebDriver client of the `wharf ui` browser test: Selenium's Python bindings, the
/// reference client every browser's driver is tested against. Pinned; pure Python, so the
/// venv costs seconds and the Rust build nothing.
pub const UI_BROWSER_SPECS: &[&str] = &["selenium==4.51.0"];

/// A venv with [`UI_BROWSER_SPECS`], its Python exported as `WHARF_TEST_SELENIUM_PYTHON`.
pub fn ui_browser(root: &Path, services: &mut Services) -> Result<(), String> {
    let venv = venv(root, "ui-browser", UI_BROWSER_SPECS)?;
    services.env.push(("WHARF_TEST_SELENIUM_PYTHON".into(), venv.join("bin").join("python").display().to_string()));
    Ok(())
}

/// Installs the libraries, trains the test models at test time and writes them with the
/// libraries' own predictions (`crates/wharf-trees/tests/fixtures/generate.py`). Exports
/// `WHARF_TEST_TREES_DATA`, and the venv's Python as `WHARF_TEST_TREES_PYTHON`. No server:
/// nothing to stop.
pub fn trees(root: &Path, fixtures: &Path, services: &mut Services) -> Result<(), String> {
    let venv = venv(root, "trees", TREES_SPECS)?;
    let data = root.join("trees-data");
    let _ = std::fs::remove_dir_all(&data);
    let start = Instant::now();
    run(
        Command::new(venv.join("bin").join("python"))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .arg(fixtures.join("generate.py"))
            .arg(&data)
            .stdin(Stdio::null()),
        "wharf-trees generate.py",
    )?;
    // scikit-learn models exported with skl2onnx and scored by ONNX Runtime, in `onnx/`.
    run(
        Command::new(venv.join("bin").join("python"))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .arg(fixtures.join("generate_onnx.py"))
            .arg(data.join("onnx"))
            .stdin(Stdio::null()),
        "wharf-trees generate_onnx.py",
    )?;
    eprintln!("<== tree and ONNX models trained and predicted in {:.0}s", start.elapsed().as_secs_f64());
    services.env.push(("WHARF_TEST_TREES_DATA".into(), data.display().to_string()));
    // wharf-ml's booster is compared with LightGBM and scikit-learn trained in this venv.
    services.env.push(("WHARF_TEST_TREES_PYTHON".into(), venv.join("bin").join("python").display().to_string()));
    Ok(())
}
