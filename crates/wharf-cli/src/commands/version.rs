//! `wharf version`: the versions that decide which models this build reads and writes.

use serde_json::{json, Map, Value};

use crate::output::{self, Output};

/// Runs `wharf version`. Needs no configuration.
pub fn run(out: &Output) -> anyhow::Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    let format = wharf::artifact::FORMAT_VERSION;
    let libraries = wharf::library_versions();
    if out.json {
        let libraries: Map<String, Value> = libraries.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        return out.json(&json!({ "wharf": version, "artifact_format": format, "libraries": libraries }));
    }
    out.line(format!("wharf {version}"))?;
    if out.quiet {
        return Ok(());
    }
    out.line(format!("artifact format {format}"))?;
    let mut table = output::table(["library", "version"]);
    for (name, v) in libraries {
        table.add_row(vec![name, v]);
    }
    out.table(&table)
}
