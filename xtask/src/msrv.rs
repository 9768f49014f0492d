//! The `rust-version` check: each crate of the workspace declares the oldest Rust that can
//! build it, and that is only true while none of the dependencies it resolves to declares a
//! newer one.
//!
//! Cargo only warns about this at build time and only with a toolchain older than a
//! dependency's `rust-version`, so a project built on a new toolchain never notices that its
//! own declaration went stale (a dependency's patch release can raise it). This reads
//! `cargo metadata` with every feature on, walks each workspace crate's normal and build
//! dependencies (dev-dependencies do not take part in building the crate for its users), and
//! fails naming every dependency whose `rust-version` is above the crate's.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// A `rust-version` as comparable numbers: `"1.94"` is `[1, 94, 0]`.
fn parse(version: &str) -> Option<[u64; 3]> {
    let mut parts = version.split('.').map(|p| p.parse::<u64>().ok());
    Some([parts.next()??, parts.next().unwrap_or(Some(0))?, parts.next().unwrap_or(Some(0))?])
}

/// Entry point of the check in `cargo xtask test`.
pub fn check(root: &Path) -> Result<(), String> {
    let out = crate::cargo()
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--all-features", "--locked"])
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let meta: Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata output: {e}"))?;
    let problems = violations(&meta)?;
    if problems.is_empty() {
        eprintln!("<== every crate's rust-version covers the rust-version of all it depends on");
        Ok(())
    } else {
        Err(format!(
            "rust-version is lower than a dependency needs:\n  {}\nraise the crate's rust-version (or pin the dependency)",
            problems.join("\n  ")
        ))
    }
}

/// One line per (workspace crate, dependency) pair whose `rust-version`s disagree.
fn violations(meta: &Value) -> Result<Vec<String>, String> {
    let packages = meta["packages"].as_array().ok_or("cargo metadata: no packages")?;
    let by_id: HashMap<&str, &Value> = packages.iter().filter_map(|p| Some((p["id"].as_str()?, p))).collect();
    let nodes = meta["resolve"]["nodes"].as_array().ok_or("cargo metadata: no resolve graph")?;
    // Package id -> the ids it depends on through normal or build edges.
    let mut edges: HashMap<&str, Vec<&str>> = HashMap::new();
    for node in nodes {
        let Some(id) = node["id"].as_str() else { continue };
        let deps = node["deps"].as_array().map(Vec::as_slice).unwrap_or_default();
        let wanted = deps.iter().filter(|dep| {
            dep["dep_kinds"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k["kind"].is_null() || k["kind"].as_str() == Some("build")))
        });
        edges.insert(id, wanted.filter_map(|dep| dep["pkg"].as_str()).collect());
    }
    let members = meta["workspace_members"].as_array().ok_or("cargo metadata: no workspace_members")?;
    let mut problems = Vec::new();
    for member in members.iter().filter_map(Value::as_str) {
        let Some(package) = by_id.get(member) else { continue };
        let name = package["name"].as_str().unwrap_or(member);
        let Some(own) = package["rust_version"].as_str() else {
            if package["publish"].as_array().is_some_and(Vec::is_empty) {
                continue; // never published (xtask, the guide's doctests): built with the pinned toolchain
            }
            problems.push(format!("{name} declares no rust-version"));
            continue;
        };
        let own_parsed = parse(own).ok_or_else(|| format!("{name}: rust-version {own:?} not understood"))?;
        let mut seen = BTreeSet::new();
        let mut stack = vec![member];
        let mut too_new: BTreeMap<String, String> = BTreeMap::new();
        while let Some(id) = stack.pop() {
            for &dep in edges.get(id).map(Vec::as_slice).unwrap_or_default() {
                if !seen.insert(dep) {
                    continue;
                }
                stack.push(dep);
                let Some(dep_pkg) = by_id.get(dep) else { continue };
                if let Some(theirs) = dep_pkg["rust_version"].as_str() {
                    if parse(theirs).is_some_and(|t| t > own_parsed) {
                        let label = format!(
                            "{} {}",
                            dep_pkg["name"].as_str().unwrap_or(dep),
                            dep_pkg["version"].as_str().unwrap_or("?")
                        );
                        too_new.insert(label, theirs.to_string());
                    }
                }
            }
        }
        // One line per crate: the dependency needing the newest Rust first, then a count.
        let mut offenders: Vec<(String, String)> = too_new.into_iter().collect();
        offenders.sort_by(|a, b| parse(&b.1).cmp(&parse(&a.1)).then_with(|| a.0.cmp(&b.0)));
        if let Some((dep, theirs)) = offenders.first() {
            let more = match offenders.len() - 1 {
                0 => String::new(),
                n => format!(" (and {n} more dependencies above {own})"),
            };
            problems.push(format!("{name} declares rust-version {own}, but {dep} needs {theirs}{more}"));
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(parse("1.94").unwrap() > parse("1.89.1").unwrap());
        assert!(parse("1.100").unwrap() > parse("1.94").unwrap());
        assert_eq!(parse("1.90"), Some([1, 90, 0]));
        assert_eq!(parse("one"), None);
    }

    /// A crate at 1.89 that reaches a 1.90 crate through another dependency fails; a
    /// dev-dependency needing more does not count.
    #[test]
    fn a_transitive_normal_dependency_counts_and_a_dev_dependency_does_not() {
        let meta = serde_json::json!({
            "packages": [
                {"id": "a", "name": "a", "version": "0.1.0", "rust_version": "1.89", "publish": null},
                {"id": "b", "name": "b", "version": "1.0.0", "rust_version": "1.80", "publish": null},
                {"id": "c", "name": "c", "version": "5.5.0", "rust_version": "1.90", "publish": null},
                {"id": "d", "name": "d", "version": "2.0.0", "rust_version": "1.99", "publish": null}
            ],
            "workspace_members": ["a"],
            "resolve": {"nodes": [
                {"id": "a", "deps": [
                    {"pkg": "b", "dep_kinds": [{"kind": null}]},
                    {"pkg": "d", "dep_kinds": [{"kind": "dev"}]}
                ]},
                {"id": "b", "deps": [{"pkg": "c", "dep_kinds": [{"kind": null}]}]},
                {"id": "c", "deps": []},
                {"id": "d", "deps": []}
            ]}
        });
        let problems = violations(&meta).unwrap();
        assert_eq!(problems, ["a declares rust-version 1.89, but c 5.5.0 needs 1.90"]);
    }
}
