//! Installing Debian packages for the test backends (PostgreSQL, Redis, NATS) when a machine
//! lacks them, and the small process helpers that share.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Runs `cmd` to completion; its output is shown only if it fails.
pub fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    output(cmd, what).map(drop)
}

/// Runs `cmd` to completion and returns its trimmed stdout, or its stderr as the error.
pub fn output(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{what}: could not start: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!("{what} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Whether xtask runs as root, and so may install packages.
pub fn is_root() -> bool {
    output(Command::new("id").arg("-u"), "id -u").map(|uid| uid == "0").unwrap_or(false)
}

/// Installs Debian's `package` with apt-get (see [`install_all`]).
pub fn install(package: &str) -> Result<(), String> {
    install_all(&[package])
}

/// Installs Debian's `packages` with one `apt-get update` and one `apt-get install`. A
/// `policy-rc.d` that forbids starting services is in place during the install (if none
/// exists), so the packages start no system service: the tests run their own servers on
/// free ports.
pub fn install_all(packages: &[&str]) -> Result<(), String> {
    if packages.is_empty() {
        return Ok(());
    }
    let list = packages.join(" ");
    if !is_root() {
        return Err(format!("{list}: not installed and xtask is not root: run `sudo apt-get install {list}`"));
    }
    eprintln!("==> installing {list} (apt-get install {list})");
    let start = Instant::now();
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let placed = !policy.exists() && std::fs::write(policy, "#!/bin/sh\nexit 101\n").is_ok();
    if placed {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(policy, std::fs::Permissions::from_mode(0o755));
    }
    let result = run(Command::new("apt-get").args(["update", "-q"]), "apt-get update").and_then(|()| {
        run(
            Command::new("apt-get")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args(["install", "-y", "-q", "--no-install-recommends"])
                .args(packages),
            &format!("apt-get install {list}"),
        )
    });
    if placed {
        let _ = std::fs::remove_file(policy);
    }
    result?;
    eprintln!("<== {list} installed in {:.0}s", start.elapsed().as_secs_f64());
    Ok(())
}
