//! `cargo xtask docs`: builds the guide (an mdBook under `docs/`) into `target/book`.
//!
//! The build must work from a clean clone with no internet once crates are fetched, so
//! mdBook is installed by Cargo into `target/tools` at a pinned version (with only the
//! `search` feature: the live-reload server and file watcher are never needed here and
//! would add minutes of compiling). When that binary is already there the command takes
//! seconds, so CI can run it on every change.
//!
//! Before building, it checks what the guide shares with the code and would otherwise rot:
//! the generated CLI reference (`docs/src/cli.md`, from `wharf`'s clap definitions) and the
//! configuration reference (`docs/src/configuration.md`, against `WharfConfig`). Both checks
//! are tests of `wharf-cli`; `--bless` rewrites the CLI reference instead of comparing it.
//! Then every page must be listed in `SUMMARY.md` and every relative link must point at a
//! file that exists, since mdBook itself does not check either.
//!
//! The `wharf ui` page shows screenshots of the real UI. `--bless` makes them: it runs the
//! CLI's browser test (headless Chromium driven by Selenium over two freshly trained models)
//! with its screenshots directed into `docs/src/images/ui/`. Without `--bless` they are only
//! required to exist, so the guide builds anywhere without a browser.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The mdBook this project's guide is built and tested with.
pub const MDBOOK_VERSION: &str = "0.5.4";

/// Entry point of `cargo xtask docs [--bless]`.
pub fn docs(root: &Path, bless: bool) -> Result<(), String> {
    check_references(root, bless)?;
    ui_screenshots(root, bless)?;
    check_pages(&root.join("docs").join("src"))?;
    check_performance_summary(root)?;
    let mdbook = ensure_mdbook(root)?;
    let out = root.join("target").join("book");
    eprintln!("==> {} build docs -d {}", mdbook.display(), out.display());
    let status = Command::new(&mdbook)
        .current_dir(root)
        .arg("build")
        .arg(root.join("docs"))
        .arg("-d")
        .arg(&out)
        .status()
        .map_err(|e| format!("{}: {e}", mdbook.display()))?;
    if !status.success() {
        return Err(format!("mdbook build failed ({status})"));
    }
    let index = out.join("index.html");
    if !index.is_file() {
        return Err(format!("mdbook reported success but wrote no {}", index.display()));
    }
    eprintln!("<== the guide is in {}", index.display());
    Ok(())
}

/// The screenshots `docs/src/ui.md` shows, by the name the browser test saves them under.
pub const UI_SCREENSHOTS: &[&str] = &["runs", "run", "compare", "model", "lineage"];

/// With `bless`, regenerates the `wharf ui` screenshots of the guide by running the CLI's
/// browser test (Chromium, its WebDriver and Selenium are installed as `cargo xtask test`
/// installs them); otherwise checks they are there.
fn ui_screenshots(root: &Path, bless: bool) -> Result<(), String> {
    let dir = root.join("docs").join("src").join("images").join("ui");
    if bless {
        let backends_root = root.join("target").join("backends");
        std::fs::create_dir_all(&backends_root).map_err(|e| format!("{}: {e}", backends_root.display()))?;
        let mut services = crate::backends::Services::default();
        crate::backends::chromium(&mut services)?;
        crate::backends::ui_browser(&backends_root, &mut services)?;
        let shots = root.join("target").join("ui-screenshots");
        let _ = std::fs::remove_dir_all(&shots);
        let mut cmd = crate::cargo();
        cmd.current_dir(root)
            .env("WHARF_TEST_REQUIRE_BACKENDS", "1")
            .env("WHARF_UI_SCREENSHOTS", &shots)
            .envs(services.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(["test", "--quiet", "-p", "wharf-cli", "--test", "ui_cli", "a_person_browses"]);
        eprintln!("==> ui screenshots (cargo test -p wharf-cli --test ui_cli a_person_browses)");
        let status = cmd.status().map_err(|e| format!("cargo test: {e}"))?;
        if !status.success() {
            return Err(format!("the ui browser test failed ({status}); no screenshots were updated"));
        }
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for name in UI_SCREENSHOTS {
            let from = shots.join(format!("{name}.png"));
            let to = dir.join(format!("{name}.png"));
            std::fs::copy(&from, &to).map_err(|e| format!("{} -> {}: {e}", from.display(), to.display()))?;
        }
        eprintln!("<== {} ui screenshots written to {}", UI_SCREENSHOTS.len(), dir.display());
        return Ok(());
    }
    let missing: Vec<&str> =
        UI_SCREENSHOTS.iter().copied().filter(|name| !dir.join(format!("{name}.png")).is_file()).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "docs/src/images/ui lacks the screenshots {missing:?}: run `cargo xtask docs --bless` (it needs apt for \
             Debian's chromium and chromium-driver)"
        ))
    }
}

/// Runs the `wharf-cli` tests that compare the guide's reference pages with the code.
fn check_references(root: &Path, bless: bool) -> Result<(), String> {
    let mut cmd = crate::cargo();
    cmd.current_dir(root).args(["test", "--quiet", "-p", "wharf-cli", "--all-features", "--bin", "wharf", "reference"]);
    if bless {
        cmd.env("WHARF_BLESS", "1");
    }
    eprintln!("==> reference pages (cargo test -p wharf-cli --all-features reference)");
    let status = cmd.status().map_err(|e| format!("cargo test: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "the reference-page tests failed ({status}; see above). If docs/src/cli.md is out of date, run \
             `cargo xtask docs --bless`; docs/src/configuration.md is fixed by hand"
        ))
    }
}

/// The mdBook binary: the pinned one under `target/tools`, installed there when missing.
fn ensure_mdbook(root: &Path) -> Result<PathBuf, String> {
    let tools = root.join("target").join("tools");
    let bin = tools.join("bin").join(if cfg!(windows) { "mdbook.exe" } else { "mdbook" });
    if installed_version(&bin).as_deref() == Some(MDBOOK_VERSION) {
        return Ok(bin);
    }
    eprintln!("==> installing mdbook {MDBOOK_VERSION} into {} (once; takes a few minutes)", tools.display());
    let status = crate::cargo()
        .current_dir(root)
        .args(["install", "mdbook", "--locked", "--version", MDBOOK_VERSION])
        .args(["--no-default-features", "--features", "search", "--root"])
        .arg(&tools)
        .status()
        .map_err(|e| format!("cargo install mdbook: {e}"))?;
    if !status.success() {
        return Err(format!("cargo install mdbook failed ({status})"));
    }
    match installed_version(&bin) {
        Some(v) if v == MDBOOK_VERSION => Ok(bin),
        other => Err(format!("{} reports version {other:?}, expected {MDBOOK_VERSION}", bin.display())),
    }
}

/// `mdbook --version` prints `mdbook v0.5.4`; the version without the `v`.
fn installed_version(bin: &Path) -> Option<String> {
    let out = Command::new(bin).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    Some(text.split_whitespace().last()?.trim_start_matches('v').to_string())
}

/// The first and last line of the performance summary, in the guide and in the README.
const SUMMARY_START: &str = "<!-- performance-summary:start";
const SUMMARY_END: &str = "<!-- performance-summary:end -->";

/// The README's performance table is a copy of the performance page's summary: one source
/// for every figure. Fails when the two blocks differ, showing the first differing line.
fn check_performance_summary(root: &Path) -> Result<(), String> {
    let block = |path: &Path| -> Result<String, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let start =
            text.find(SUMMARY_START).ok_or_else(|| format!("{}: no `{SUMMARY_START} ...` line", path.display()))?;
        let end =
            text[start..].find(SUMMARY_END).ok_or_else(|| format!("{}: no `{SUMMARY_END}` line", path.display()))?;
        Ok(text[start..start + end].to_string())
    };
    let page = root.join("docs").join("src").join("performance.md");
    let readme = root.join("README.md");
    let (source, copy) = (block(&page)?, block(&readme)?);
    if source == copy {
        eprintln!("<== the README's performance table matches docs/src/performance.md");
        return Ok(());
    }
    let first = source.lines().zip(copy.lines()).position(|(a, b)| a != b).unwrap_or(0);
    Err(format!(
        "the README's performance table differs from docs/src/performance.md (first at line {} of the block: \
         the page has {:?}, the README {:?}); the page is the source, copy its block into the README",
        first + 1,
        source.lines().nth(first).unwrap_or(""),
        copy.lines().nth(first).unwrap_or("")
    ))
}

/// Every page is in `SUMMARY.md`, and every relative link between pages resolves.
fn check_pages(src: &Path) -> Result<(), String> {
    let summary = std::fs::read_to_string(src.join("SUMMARY.md")).map_err(|e| format!("SUMMARY.md: {e}"))?;
    let listed: BTreeSet<String> = links(&summary).into_iter().filter_map(|l| local_target(&l)).collect();
    let mut problems = Vec::new();
    let mut pages = Vec::new();
    collect_pages(src, src, &mut pages).map_err(|e| format!("{}: {e}", src.display()))?;
    for page in &pages {
        if page != "SUMMARY.md" && !listed.contains(page) {
            problems.push(format!("{page} is not listed in SUMMARY.md"));
        }
        let text = std::fs::read_to_string(src.join(page)).map_err(|e| format!("{page}: {e}"))?;
        let dir = Path::new(page).parent().unwrap_or(Path::new(""));
        for link in links(&text) {
            let Some(target) = local_target(&link) else { continue };
            if !src.join(dir).join(&target).exists() {
                problems.push(format!("{page}: broken link to {link}"));
            }
        }
    }
    if problems.is_empty() {
        eprintln!("<== {} pages listed, links resolve", pages.len() - 1);
        Ok(())
    } else {
        Err(format!("the guide has problems:\n  {}", problems.join("\n  ")))
    }
}

fn collect_pages(src: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_pages(src, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "md") {
            if let Ok(rel) = path.strip_prefix(src) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    Ok(())
}

/// The targets of inline Markdown links, `[text](target)`, outside code blocks and spans.
fn links(markdown: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut in_fence = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        // Drop code spans so `a[i](x)` in code is not read as a link.
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        let mut rest = prose.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            found.push(after[..end].trim().to_string());
            rest = &after[end..];
        }
    }
    found
}

/// The file a link points at inside the book, or `None` for web links and in-page anchors.
fn local_target(link: &str) -> Option<String> {
    if link.contains("://") || link.starts_with('#') || link.starts_with("mailto:") || link.is_empty() {
        return None;
    }
    let path = link.split('#').next()?;
    (!path.is_empty()).then(|| path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_skip_code_and_web_addresses() {
        let md = "See [a](a.md#x), [w](https://x.org) and `m[0](1)`.\n```\n[no](b.md)\n```\n[c](sub/c.md)";
        let targets: Vec<_> = links(md).iter().filter_map(|l| local_target(l)).collect();
        assert_eq!(targets, ["a.md", "sub/c.md"]);
    }
}
