//! Tokens read from files (`serving.admin_token_file`, `serving.scoring_tokens_file`), the
//! form secrets take when an orchestrator mounts them (a Kubernetes secret volume, Docker
//! secrets): the token never passes through the environment or the configuration file.
//!
//! One token per line; blank lines and lines starting with `#` are skipped, and each line
//! is trimmed, so a trailing newline does not become part of the token. Errors name the
//! file and the line number, never a line's content.

use std::path::Path;

use wharf_core::WharfError;

/// A token file larger than this is not a token file.
const MAX_BYTES: u64 = 1 << 20;

/// The tokens in `path`, for the setting `key` (named in errors).
pub(crate) fn read(key: &str, path: &Path) -> Result<Vec<String>, WharfError> {
    let file = std::fs::File::open(path).map_err(|e| WharfError::io(path, e))?;
    let announced = file.metadata().ok().map(|m| m.len());
    warn_if_world_readable(key, path, &file);
    let bytes = wharf_core::bounded::read_capped(file, announced, MAX_BYTES)
        .map_err(|e| WharfError::config(key, format!("{}: {e}", path.display())))?;
    let text =
        String::from_utf8(bytes).map_err(|_| WharfError::config(key, format!("{}: not UTF-8 text", path.display())))?;
    let tokens: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
        .collect();
    if tokens.is_empty() {
        return Err(WharfError::config(key, format!("{} holds no token", path.display())));
    }
    if let Some(n) = tokens.iter().position(|t| t.chars().any(char::is_whitespace)) {
        return Err(WharfError::config(key, format!("{}: token {} holds whitespace", path.display(), n + 1)));
    }
    Ok(tokens)
}

#[cfg(unix)]
fn warn_if_world_readable(key: &str, path: &Path, file: &std::fs::File) {
    use std::os::unix::fs::PermissionsExt;
    if file.metadata().is_ok_and(|m| m.permissions().mode() & 0o004 != 0) {
        tracing::warn!(setting = key, file = %path.display(), "the token file is readable by every user; chmod o-r it");
    }
}

#[cfg(not(unix))]
fn warn_if_world_readable(_: &str, _: &Path, _: &std::fs::File) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_token_per_line_skipping_comments_and_blanks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, "# rotated 2026-12\n\ntok-a\n  tok-b  \n").unwrap();
        assert_eq!(read("serving.scoring_tokens_file", &path).unwrap(), ["tok-a", "tok-b"]);
    }

    #[test]
    fn refuses_empty_missing_oversized_and_spaced_files_without_echoing_them() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "# nothing\n\n").unwrap();
        assert!(read("k", &empty).unwrap_err().to_string().contains("holds no token"));
        assert!(matches!(read("k", &dir.path().join("absent")), Err(WharfError::Io { .. })));
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; (MAX_BYTES + 1) as usize]).unwrap();
        assert!(read("k", &big).unwrap_err().to_string().contains("larger than the limit"));
        let spaced = dir.path().join("spaced");
        std::fs::write(&spaced, "secret-one secret-two\n").unwrap();
        let message = read("k", &spaced).unwrap_err().to_string();
        assert!(message.contains("token 1 holds whitespace"), "{message}");
        assert!(!message.contains("secret-one"), "{message}");
    }
}
