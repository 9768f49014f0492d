//! The `mlflow.*` system tags MLflow's own client sets on every run it creates, so a run
//! Wharf logs shows in MLflow's UI who ran it, from what program and at which commit.
//!
//! The commit is read from the git checkout the process runs in (its `HEAD`, through a
//! branch's loose or packed ref, and through a worktree's `gitdir` link), without running
//! `git`: a machine without git, or a directory outside any checkout, gets no commit tag.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::client::KeyValue;

/// `mlflow.user`, `mlflow.source.name`, `mlflow.source.type` and, inside a git checkout,
/// `mlflow.source.git.commit`, computed once per process.
pub(crate) fn tags() -> &'static [(String, String)] {
    static TAGS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    TAGS.get_or_init(|| {
        let mut tags = Vec::new();
        let user = ["USER", "USERNAME", "LOGNAME"].iter().find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
        if let Some(user) = user {
            tags.push(("mlflow.user".to_string(), user));
        }
        let program = std::env::args_os()
            .next()
            .map(PathBuf::from)
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
        if let Some(program) = program {
            tags.push(("mlflow.source.name".to_string(), program));
        }
        // MLflow's `SourceType`: a program run on a machine, not a notebook, job or project.
        tags.push(("mlflow.source.type".to_string(), "LOCAL".to_string()));
        if let Some(commit) = std::env::current_dir().ok().and_then(|dir| git_commit(&dir)) {
            tags.push(("mlflow.source.git.commit".to_string(), commit));
        }
        tags
    })
}

/// `tags` with the source tags added, where `tags` does not set them already.
pub(crate) fn with_source(mut tags: Vec<KeyValue>) -> Vec<KeyValue> {
    for (key, value) in self::tags() {
        if !tags.iter().any(|t| &t.key == key) {
            tags.push(KeyValue::new(key.clone(), value.clone()));
        }
    }
    tags
}

/// The commit `HEAD` points at in the checkout holding `dir`, if any.
pub(crate) fn git_commit(dir: &Path) -> Option<String> {
    let git_dir = dir.ancestors().find_map(|d| git_dir_of(&d.join(".git")))?;
    // A linked worktree keeps its own HEAD but shares refs with the main repository.
    let common = std::fs::read_to_string(git_dir.join("commondir"))
        .ok()
        .map(|c| git_dir.join(c.trim()))
        .unwrap_or_else(|| git_dir.clone());
    let head = std::fs::read_to_string(git_dir.join("HEAD")).ok()?;
    let head = head.trim();
    let Some(reference) = head.strip_prefix("ref:").map(str::trim) else {
        return is_sha(head).then(|| head.to_string());
    };
    for base in [&git_dir, &common] {
        if let Ok(sha) = std::fs::read_to_string(base.join(reference)) {
            let sha = sha.trim();
            if is_sha(sha) {
                return Some(sha.to_string());
            }
        }
    }
    let packed = std::fs::read_to_string(common.join("packed-refs")).ok()?;
    packed.lines().find_map(|line| {
        let (sha, name) = line.split_once(' ')?;
        (name.trim() == reference && is_sha(sha)).then(|| sha.to_string())
    })
}

/// The git directory `.git` names: the directory itself, or the one a `gitdir:` file
/// points to (worktrees, submodules).
fn git_dir_of(dot_git: &Path) -> Option<PathBuf> {
    if dot_git.is_dir() {
        return Some(dot_git.to_path_buf());
    }
    let text = std::fs::read_to_string(dot_git).ok()?;
    let target = PathBuf::from(text.trim().strip_prefix("gitdir:")?.trim());
    let target = if target.is_absolute() { target } else { dot_git.parent()?.join(target) };
    target.is_dir().then_some(target)
}

fn is_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0123456789abcdef0123456789abcdef01234567";
    const B: &str = "89abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn the_commit_is_found_through_loose_and_packed_refs_and_worktree_links() {
        let repo = tempfile::tempdir().unwrap();
        let git = repo.path().join(".git");
        std::fs::create_dir_all(git.join("refs/heads")).unwrap();
        std::fs::write(git.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        std::fs::write(git.join("refs/heads/main"), format!("{A}\n")).unwrap();
        let nested = repo.path().join("src/deep");
        std::fs::create_dir_all(&nested).unwrap();
        assert_eq!(git_commit(&nested).as_deref(), Some(A), "found from a subdirectory");

        std::fs::remove_file(git.join("refs/heads/main")).unwrap();
        std::fs::write(git.join("packed-refs"), format!("# pack-refs with: peeled\n{B} refs/heads/main\n")).unwrap();
        assert_eq!(git_commit(repo.path()).as_deref(), Some(B), "packed");

        // A linked worktree: `.git` is a file naming its own git dir, whose `commondir`
        // leads back to the shared refs; its HEAD is detached here.
        let wt_git = git.join("worktrees/wt");
        std::fs::create_dir_all(&wt_git).unwrap();
        std::fs::write(wt_git.join("commondir"), "../..\n").unwrap();
        std::fs::write(wt_git.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        let wt = tempfile::tempdir().unwrap();
        std::fs::write(wt.path().join(".git"), format!("gitdir: {}\n", wt_git.display())).unwrap();
        assert_eq!(git_commit(wt.path()).as_deref(), Some(B), "through the worktree link");
        std::fs::write(wt_git.join("HEAD"), format!("{A}\n")).unwrap();
        assert_eq!(git_commit(wt.path()).as_deref(), Some(A), "detached");

        let outside = tempfile::tempdir().unwrap();
        assert_eq!(git_commit(outside.path()), None);
    }
}
