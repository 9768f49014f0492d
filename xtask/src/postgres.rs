//! A real PostgreSQL server for the result-store tests of `wharf-runner`.
//!
//! Installed from Debian's packages when missing (`apt-get install postgresql`, as root),
//! then run as a throwaway cluster: `initdb` into `target/backends/postgres-data-<port>`
//! (owned by the non-root `postgres` user when xtask runs as root, since the server refuses
//! to run as root), started directly by PID on a free loopback port with Unix sockets off,
//! waited for with `pg_isready`, given a `wharf_test` database, and stopped (fast shutdown,
//! then the data directory removed) when the returned guard drops. The system's own
//! PostgreSQL service, if any, is never used or touched.
//!
//! Exports `WHARF_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:<port>/wharf_test`; the
//! cluster trusts loopback connections, so the URL holds no password.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::apt::{self, is_root, output, run};
use crate::backends::{free_port, Services};

/// The database the tests use.
const DATABASE: &str = "wharf_test";

/// A running test cluster; dropping it stops the server and removes its data.
pub struct Postgres {
    child: Option<Child>,
    data: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A fast shutdown rolls back open sessions; `-w` waits (up to 30 s) for the exit.
            let stopped = as_owner(&self.bin.join("pg_ctl"), self.as_postgres)
                .args(["stop", "-m", "fast", "-w", "-t", "30", "-D"])
                .arg(&self.data)
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !stopped {
                let _ = child.kill();
            }
            let _ = child.wait();
            eprintln!("<== stopped postgres");
        }
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// The newest `/usr/lib/postgresql/<major>/bin` holding `initdb` and `postgres`.
fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let major = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("postgres").is_file()).then_some((major, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// A command running `program` as the cluster's owner: the `postgres` user when xtask is
/// root (the server refuses to run as root), else the current user. `setpriv` execs the
/// program itself, so the PID held is the server's own.
fn as_owner(program: &Path, root: bool) -> Command {
    if root {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=postgres", "--regid=postgres", "--init-groups", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// True when every directory above `dir` can be entered by other users, so the `postgres`
/// user reaches a data directory there.
fn reachable_by_others(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    dir.ancestors().skip(1).all(|a| std::fs::metadata(a).map(|m| m.permissions().mode() & 0o001 != 0).unwrap_or(false))
}

/// Hands `dir` to the `postgres` user, mode 700 (initdb insists).
fn give_to_postgres(dir: &Path) -> Result<(), String> {
    let uid = output(Command::new("id").args(["-u", "postgres"]), "id -u postgres")?;
    let gid = output(Command::new("id").args(["-g", "postgres"]), "id -g postgres")?;
    let (uid, gid) = (uid.parse::<u32>().map_err(|e| e.to_string())?, gid.parse::<u32>().map_err(|e| e.to_string())?);
    std::os::unix::fs::chown(dir, Some(uid), Some(gid)).map_err(|e| format!("chown {}: {e}", dir.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| format!("{}: {e}", dir.display()))
}

/// Installs (if needed) and starts a throwaway PostgreSQL cluster; see the module docs.
pub fn postgres(root: &Path, services: &mut Services) -> Result<Postgres, String> {
    let bin = match bin_dir() {
        Some(bin) => bin,
        None => {
            apt::install("postgresql")?;
            bin_dir().ok_or("PostgreSQL installed, but no /usr/lib/postgresql/*/bin/initdb")?
        }
    };
    let root_user = is_root();
    let port = free_port()?;
    // Under target/ when the postgres user can reach it there, else in the temp directory.
    let parent = if !root_user || reachable_by_others(root) { root.to_path_buf() } else { std::env::temp_dir() };
    let data = parent.join(format!("postgres-data-{port}"));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    let mut guard = Postgres { child: None, data: data.clone(), bin: bin.clone(), as_postgres: root_user };
    if root_user {
        give_to_postgres(&data)?;
    }
    run(
        as_owner(&bin.join("initdb"), root_user)
            .args(["--auth=trust", "--username=postgres", "--encoding=UTF8", "--locale=C", "--no-instructions", "-D"])
            .arg(&data)
            .stdout(Stdio::null()),
        "initdb",
    )?;
    // The log goes with the data: a failed start shows its tail, a clean stop removes both.
    let log = data.join("wharf-server.log");
    let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    // Test settings: loopback only, no Unix socket (its path could exceed the OS limit under
    // a deep target/), and no fsync, since the data is thrown away.
    let child = as_owner(&bin.join("postgres"), root_user)
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string()])
        .args(["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "fsync=off"])
        .args(["-c", "full_page_writes=off", "-c", "max_connections=200"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .map_err(|e| format!("postgres: could not start: {e}"))?;
    guard.child = Some(child);

    let start = Instant::now();
    let port_text = port.to_string();
    let ready = || {
        Command::new(bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &port_text, "-U", "postgres"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    while !ready() {
        if let Some(Ok(Some(status))) = guard.child.as_mut().map(Child::try_wait) {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("postgres exited ({status}); log {}:\n{tail}", log.display()));
        }
        if start.elapsed() > Duration::from_secs(120) {
            return Err(format!("postgres not ready after 120s (log: {})", log.display()));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    run(
        Command::new(bin.join("createdb")).args(["-h", "127.0.0.1", "-p", &port_text, "-U", "postgres", DATABASE]),
        "createdb",
    )?;
    eprintln!("<== postgres ready on 127.0.0.1:{port} after {:.0}s", start.elapsed().as_secs_f64());
    services.env.push(("WHARF_TEST_POSTGRES_URL".into(), format!("postgres://postgres@127.0.0.1:{port}/{DATABASE}")));
    Ok(guard)
}
