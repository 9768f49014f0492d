//! The README's and the guide's shell blocks marked ` ```bash,runnable `, run as written.
//!
//! A newcomer copies these commands into a terminal in a fresh clone, so that is where they
//! run: in a scratch copy of the repository's tracked files (`git ls-files`, with their
//! working-tree contents, so uncommitted edits are checked too), under `bash -euo pipefail`,
//! each block in a new copy so none depends on what another left behind. The copy keeps the
//! files' modification times and builds into the workspace's own `target/` directory, so
//! `cargo run` in a block compiles only what changed.
//!
//! A block may call `wharf` as a reader who followed the README's `cargo install --path
//! crates/wharf-cli` would: the `wharf` built from the workspace (default features) is first
//! on the block's `PATH`.
//!
//! Mark a block runnable only when it needs nothing but the repository and a Rust toolchain:
//! no running server, no network beyond crates.io, no command that never ends.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The info string that marks a block to run.
pub const MARKER: &str = "bash,runnable";

/// One block: where it is and what it says.
#[derive(Debug, PartialEq)]
pub struct Block {
    /// `README.md:158`: the file and the line of the opening fence.
    pub origin: String,
    /// The block's lines, without the fences.
    pub script: String,
}

/// The runnable blocks of one Markdown text.
pub fn blocks(name: &str, markdown: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut open: Option<(usize, String, bool)> = None;
    for (i, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    open = Some((i + 1, String::new(), info.trim() == MARKER));
                }
            }
            Some((start, script, runnable)) => {
                if trimmed.starts_with("```") {
                    if *runnable {
                        found.push(Block { origin: format!("{name}:{start}"), script: std::mem::take(script) });
                    }
                    open = None;
                } else {
                    script.push_str(line);
                    script.push('\n');
                }
            }
        }
    }
    found
}

/// Entry point: `cargo xtask runnable`, and a step of `cargo xtask test`.
pub fn run(root: &Path) -> Result<(), String> {
    let mut pages = vec![root.join("README.md")];
    let src = root.join("docs").join("src");
    let mut guide: Vec<PathBuf> = std::fs::read_dir(&src)
        .map_err(|e| format!("{}: {e}", src.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    guide.sort();
    pages.extend(guide);
    let mut all = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).map_err(|e| format!("{}: {e}", page.display()))?;
        let name = page.strip_prefix(root).unwrap_or(page).display().to_string();
        all.extend(blocks(&name, &text));
    }
    // Guard the guard: a renamed marker must not turn this into a check of nothing.
    if all.is_empty() {
        return Err(format!("no ```{MARKER} block found in the README or the guide"));
    }
    eprintln!("==> cargo build -p wharf-cli (the `wharf` the blocks call)");
    let built = crate::cargo()
        .current_dir(root)
        .args(["build", "--quiet", "-p", "wharf-cli", "--bin", "wharf"])
        .status()
        .map_err(|e| format!("cargo build: {e}"))?;
    if !built.success() {
        return Err(format!("cargo build -p wharf-cli failed ({built})"));
    }
    let bin_dir = root.join("target").join("debug");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(&path)))
        .map_err(|e| format!("PATH: {e}"))?;
    let scratch = root.join("target").join("xtask-runnable").join("checkout");
    for block in &all {
        eprintln!("==> {} ({} lines)", block.origin, block.script.lines().count());
        fresh_copy(root, &scratch)?;
        let script = scratch.join(".runnable-block.sh");
        std::fs::write(&script, &block.script).map_err(|e| format!("{}: {e}", script.display()))?;
        let mut cmd = Command::new("bash");
        cmd.args(["-euo", "pipefail"]).arg(&script).current_dir(&scratch).stdin(Stdio::null());
        cmd.env("CARGO_TARGET_DIR", root.join("target")).env("PATH", &path);
        // The reader's shell has no Wharf configuration: neither may the block's.
        for (key, _) in std::env::vars() {
            if key.starts_with("WHARF_") {
                cmd.env_remove(key);
            }
        }
        let status = cmd.status().map_err(|e| format!("bash: {e}"))?;
        if !status.success() {
            return Err(format!("the runnable block at {} failed ({status})", block.origin));
        }
    }
    eprintln!("<== {} runnable blocks ran as written", all.len());
    Ok(())
}

/// `dest` becomes a copy of the tracked files, modification times kept.
fn fresh_copy(root: &Path, dest: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dest);
    std::fs::create_dir_all(dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    let files = Command::new("git")
        .current_dir(root)
        .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        .output()
        .map_err(|e| format!("git ls-files: {e}"))?;
    if !files.status.success() {
        return Err(format!("git ls-files failed: {}", String::from_utf8_lossy(&files.stderr)));
    }
    // Files deleted in the working tree are still listed by --cached; leave them out.
    let present: Vec<u8> = files
        .stdout
        .split(|b| *b == 0)
        .filter(|f| !f.is_empty() && root.join(String::from_utf8_lossy(f).as_ref()).exists())
        .flat_map(|f| f.iter().copied().chain([0]))
        .collect();
    let mut pack = Command::new("tar")
        .current_dir(root)
        .args(["--null", "-T", "-", "-cf", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("tar: {e}"))?;
    let mut input = pack.stdin.take().ok_or("tar: no stdin")?;
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut input, &present));
    let packed = pack.stdout.take().ok_or("tar: no stdout")?;
    let unpack = Command::new("tar").current_dir(dest).args(["-xf", "-"]).stdin(Stdio::from(packed)).status();
    let written = writer.join().map_err(|_| "tar: writer panicked".to_string())?;
    let packed_ok = pack.wait().map_err(|e| format!("tar: {e}"))?.success();
    match (unpack, written, packed_ok) {
        (Ok(status), Ok(()), true) if status.success() => Ok(()),
        (unpack, written, _) => Err(format!("copying the repository failed: {unpack:?} {written:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_marked_blocks_are_taken_with_their_line() {
        let md = "# T\n```bash\nnot me\n```\n\n```bash,runnable\necho one\necho two\n```\n```text\nno\n```\n";
        assert_eq!(blocks("p.md", md), [Block { origin: "p.md:6".into(), script: "echo one\necho two\n".into() }]);
    }
}
