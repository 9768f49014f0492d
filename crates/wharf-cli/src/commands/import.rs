//! `wharf models import`: register a model fitted elsewhere (scikit-learn JSON exports).

use serde_json::json;
use wharf::import::{sklearn_forest_json, sklearn_logistic_json};
use wharf::Wharf;

use crate::args::ImportArgs;
use crate::output::Output;

/// Reads, converts and registers the exported model; sets the requested aliases.
pub fn run(ctx: &Wharf, args: ImportArgs, out: &Output) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(&args.file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.file.display()))?;
    let model = match args.format.as_str() {
        "sklearn-logistic-json" => sklearn_logistic_json(&text)?,
        "sklearn-forest-json" => sklearn_forest_json(&text)?,
        other => anyhow::bail!("unknown import format '{other}'"),
    };
    let source = args.file.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let model = model.with_tag("import.format", args.format.as_str()).with_tag("import.file", source);
    let version = ctx.registry().register(&model, &args.name)?;
    for alias in &args.aliases {
        ctx.registry().set_alias(&args.name, alias, &version)?;
    }
    if out.json {
        return out.json(&json!({
            "name": args.name,
            "version": version.0,
            "aliases": args.aliases,
            "algorithm": model.metadata().algorithm,
            "features": model.signature().features.len(),
            "classes": model.classes(),
        }));
    }
    out.info(format!(
        "Imported {} ({}, {} features) as {} version {version}",
        args.file.display(),
        model.metadata().algorithm,
        model.signature().features.len(),
        args.name
    ))?;
    for alias in &args.aliases {
        out.info(format!("Alias {alias} -> version {version}"))?;
    }
    Ok(())
}
