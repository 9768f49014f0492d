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

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::apt;
use crate::backends::{free_port, Services};

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

/// `program` on `PATH`.
fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file())
}

/// `program`, installing Debian's `package` that provides it when it is not on `PATH`.
fn ensure_installed(program: &str, package: &str) -> Result<PathBuf, String> {
    if let Some(found) = on_path(program) {
        return Ok(found);
    }
    apt::install(package)?;
    on_path(program).ok_or_else(|| format!("{package} installed, but {program} is not on PATH"))
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
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    let log = data.join("wharf-server.log");
    let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let child = Command::new(&bin)
        .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "yes"])
        .arg("--dir")
        .arg(&data)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .map_err(|e| format!("redis-server: could not start: {e}"))?;
    let mut broker = Broker { name: "redis", child: Some(child), data };
    let start = Instant::now();
    while !redis_ready(port) {
        if let Some(Ok(Some(status))) = broker.child.as_mut().map(Child::try_wait) {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("redis-server exited ({status}); log {}:\n{tail}", log.display()));
        }
        if start.elapsed() > Duration::from_secs(60) {
            return Err(format!("redis-server not ready after 60s (log: {})", log.display()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("<== redis ready on 127.0.0.1:{port} after {:.1}s", start.elapsed().as_secs_f64());
    services.env.push(("WHARF_TEST_REDIS_URL".into(), format!("redis://127.0.0.1:{port}")));
    services.env.push(("WHARF_TEST_REDIS_SERVER".into(), bin.display().to_string()));
    Ok(broker)
}
