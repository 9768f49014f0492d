//! The guide's two reference pages, kept true to the code by tests.
//!
//! - `docs/src/cli.md` is generated here from the clap definitions, so it cannot be
//!   hand-copied and drift. The test fails when the file differs from what the code renders;
//!   `WHARF_BLESS=1 cargo test -p wharf-cli --all-features reference` (or
//!   `cargo xtask docs --bless`) rewrites it.
//! - `docs/src/configuration.md` is written by hand, because each key's meaning needs prose,
//!   but its table is checked against `WharfConfig`: the same keys, the same defaults, and an
//!   environment variable that really sets each key.
//!
//! The CLI's surface depends on Cargo features (`serve` adds `wharf serve`), so the page is
//! rendered from, and only compared in, a build with every feature, which is what
//! `cargo xtask` uses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::CommandFactory;

/// The guide's source directory.
fn guide_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/src")
}

/// Renders the whole command tree as one Markdown page: each command's long help, in the
/// order `wharf --help` lists them, depth first.
pub fn cli_markdown() -> String {
    let mut cmd = crate::Cli::command().term_width(100);
    cmd.build();
    let mut page = String::from(
        "<!-- Generated from the `wharf` command's clap definitions by crates/wharf-cli/src/reference.rs.\n     \
         Do not edit by hand: run `cargo xtask docs --bless` after changing the CLI. -->\n\n# CLI reference\n\n\
         The `wharf` command works from the current directory's configuration (see the\n\
         [configuration reference](configuration.md)). Every command accepts the global `--json` and\n\
         `--quiet` options. A failure prints one `error:` line on stderr and exits with status 1; a\n\
         usage error exits with status 2.\n\n\
         This page shows each command's `--help` as built with every Cargo feature of `wharf-cli`.\n",
    );
    render(&mut cmd, "", &mut page);
    page
}

fn render(cmd: &mut clap::Command, parent: &str, page: &mut String) {
    let path = if parent.is_empty() { cmd.get_name().to_string() } else { format!("{parent} {}", cmd.get_name()) };
    let help = cmd.render_long_help().to_string();
    let help: Vec<&str> = help.lines().map(str::trim_end).collect();
    page.push_str(&format!("\n## `{path}`\n\n```text\n{}\n```\n", help.join("\n").trim_end()));
    // An alias gets a heading of its own, so a reader (or an old link) looking for it lands
    // on the command it names.
    let anchor = path.replace(' ', "-");
    for alias in cmd.get_visible_aliases() {
        let alias_path = format!("{parent} {alias}");
        page.push_str(&format!(
            "\n## `{alias_path}`\n\nAnother name for [`{path}`](#{anchor}): the same options, the same output.\n"
        ));
    }
    let names: Vec<String> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .map(|s| s.get_name().to_string())
        .collect();
    for name in names {
        if let Some(sub) = cmd.find_subcommand_mut(&name) {
            render(sub, &path, page);
        }
    }
}

/// One row of the configuration reference: key → (environment variable, default).
fn configuration_rows(page: &str) -> BTreeMap<String, (String, String)> {
    let mut rows = BTreeMap::new();
    for line in page.lines() {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[0].starts_with('`') || !cells[1].starts_with("`WHARF_") {
            continue;
        }
        let unquote = |s: &str| s.trim_matches('`').to_string();
        let previous = rows.insert(unquote(cells[0]), (unquote(cells[1]), unquote(cells[2])));
        assert!(previous.is_none(), "configuration.md lists {} twice", cells[0]);
    }
    rows
}

/// Every leaf of the default configuration as dotted key → the text the page shows.
fn default_leaves(value: &serde_json::Value, prefix: &str, out: &mut BTreeMap<String, String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                default_leaves(v, &key, out);
            }
        }
        serde_json::Value::Null => {
            out.insert(prefix.to_string(), "unset".into());
        }
        serde_json::Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// Follows a dotted key through a JSON value.
fn lookup<'a>(value: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    key.split('.').try_fold(value, |v, part| v.get(part))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(
        feature = "serve",
        feature = "mlflow",
        feature = "openlineage",
        feature = "bentoml",
        feature = "datafusion"
    ))]
    #[test]
    fn cli_reference_is_current() {
        let path = guide_dir().join("cli.md");
        let rendered = cli_markdown();
        if std::env::var_os("WHARF_BLESS").is_some() {
            std::fs::write(&path, &rendered).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            return;
        }
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current != rendered {
            // Name the first line that differs, so the failure says what changed.
            let (old, new): (Vec<&str>, Vec<&str>) = (current.lines().collect(), rendered.lines().collect());
            let at = old.iter().zip(&new).position(|(a, b)| a != b).unwrap_or(old.len().min(new.len()));
            panic!(
                "docs/src/cli.md is out of date with the CLI (line {}: the page has {:?}, the CLI renders {:?}); \
                 regenerate it with `cargo xtask docs --bless` \
                 (or `WHARF_BLESS=1 cargo test -p wharf-cli --all-features reference`)",
                at + 1,
                old.get(at).copied().unwrap_or("<end>"),
                new.get(at).copied().unwrap_or("<end>"),
            );
        }
    }

    #[test]
    fn cli_reference_covers_every_command() {
        let page = cli_markdown();
        for command in ["wharf", "wharf train", "wharf predict", "wharf models alias", "wharf doctor"] {
            assert!(page.contains(&format!("## `{command}`")), "{command} missing");
        }
        assert!(!page.contains("## `wharf help`"));
    }

    // The page documents every adapter's table, so every adapter must be compiled in.
    #[cfg(all(feature = "mlflow", feature = "openlineage", feature = "bentoml"))]
    #[test]
    fn configuration_reference_matches_the_config_struct() {
        use wharf::WharfConfig;

        let page = std::fs::read_to_string(guide_dir().join("configuration.md")).expect("configuration.md");
        let rows = configuration_rows(&page);
        // The core's keys plus each adapter's own table, with its defaults (as JSON, so unset
        // options stay visible as null).
        let mut defaults_json = serde_json::to_value(WharfConfig::default()).expect("config serializes");
        let tables = [
            (wharf::mlflow::config::TRACKING_KEY, serde_json::to_value(wharf::mlflow::MlflowConfig::default())),
            (wharf::mlflow::config::REGISTRY_KEY, serde_json::to_value(wharf::mlflow::MlflowConfig::default())),
            (wharf::openlineage::config::KEY, serde_json::to_value(wharf::openlineage::OpenLineageConfig::default())),
            (wharf::bentoml::config::KEY, serde_json::to_value(wharf::bentoml::BentoMlConfig::default())),
        ];
        let keys: Vec<&str> = tables.iter().map(|(key, _)| *key).collect();
        for (key, table) in tables {
            let (section, name) = key.split_once('.').expect("section.adapter");
            defaults_json[section][name] = table.expect("adapter config serializes");
        }
        // `wharf serve`'s own tables: the prediction log and drift.
        #[cfg(feature = "serve")]
        for (key, table) in wharf::serve::watch_config::default_tables() {
            let (section, name) = key.split_once('.').expect("section.table");
            defaults_json[section][name] = table;
        }
        // The catalog declares the same tables, so `wharf doctor` shows every one of them.
        let shown = wharf::adapter_catalog().effective_config(&WharfConfig::default()).expect("defaults");
        for key in keys {
            assert!(shown.adapter_table(key).is_some(), "the catalog does not declare [{key}]");
        }
        let mut defaults = BTreeMap::new();
        default_leaves(&defaults_json, "", &mut defaults);

        let undocumented: Vec<&String> = defaults.keys().filter(|k| !rows.contains_key(*k)).collect();
        let unknown: Vec<&String> = rows.keys().filter(|k| !defaults.contains_key(*k)).collect();
        assert!(
            undocumented.is_empty() && unknown.is_empty(),
            "configuration.md must list exactly the keys of WharfConfig; missing: {undocumented:?}, not keys: {unknown:?}"
        );

        let dir = tempfile::tempdir().expect("tempdir");
        for (key, (env, default)) in &rows {
            assert_eq!(&defaults[key], default, "configuration.md: wrong default for {key}");
            let expected_env = format!("WHARF_{}", key.replace('.', "__").to_ascii_uppercase());
            assert_eq!(env, &expected_env, "configuration.md: wrong environment variable for {key}");
            // The variable really sets the key: load with it and read the key back.
            let value = if default == "unset" { "sample".to_string() } else { default.clone() };
            let loaded = WharfConfig::load_from(dir.path(), [(env.clone(), value.clone())])
                .unwrap_or_else(|e| panic!("{env}={value} is refused: {e}"));
            let json = serde_json::to_value(&loaded).expect("config serializes");
            let mut got = BTreeMap::new();
            default_leaves(lookup(&json, key).expect("key present"), "", &mut got);
            assert_eq!(got.get(""), Some(&value), "{env} does not set {key}");
        }
    }

    #[test]
    fn configuration_reference_names_the_loader_variables() {
        let page = std::fs::read_to_string(guide_dir().join("configuration.md")).expect("configuration.md");
        for var in wharf::config::LOADER_VARIABLES {
            assert!(page.contains(&format!("`{var}`")), "configuration.md does not mention {var}");
        }
        for (var, key) in wharf::config::OPENLINEAGE_VARIABLES {
            assert!(page.contains(&format!("`{var}`")), "configuration.md does not mention {var} ({key})");
        }
    }
}
