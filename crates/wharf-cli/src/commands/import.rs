//! `wharf models import`: register a model fitted elsewhere (XGBoost JSON, LightGBM text,
//! ONNX, scikit-learn JSON exports).
//!
//! The file is read, converted and checked completely into a [`wharf::Model`] before the
//! registry is touched, so a bad file registers nothing.

use std::io::Read;
use std::path::Path;

use anyhow::bail;
use serde_json::json;
use wharf::import::{
    lightgbm_with, onnx_with, sklearn_forest_json, sklearn_logistic_json, xgboost_with, ImportOptions,
};
use wharf::{Model, Wharf};

use crate::args::ImportArgs;
use crate::output::Output;

/// Reads, converts and registers the model; sets the requested aliases.
pub fn run(ctx: &Wharf, args: ImportArgs, out: &Output) -> anyhow::Result<()> {
    let format = match &args.format {
        Some(format) => format.clone(),
        None => infer_format(&args.file)?.to_string(),
    };
    let model = read(&format, &args)?;
    let source = args.file.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let mut model = model.with_tag("import.format", format.as_str()).with_tag("import.file", source);
    if let Some(reference) = &args.reference {
        // A sample of the training data gives the imported model a drift reference.
        let records = super::drift::read_features(model.signature(), reference, &args.name)?;
        model = wharf::drift::with_profile(model, &records)?;
    }
    let version = ctx.registry().register(&model, &args.name)?;
    for alias in &args.aliases {
        ctx.registry().set_alias(&args.name, alias, &version)?;
    }
    if out.json {
        return out.json(&json!({
            "name": args.name,
            "version": version.0,
            "aliases": args.aliases,
            "format": format,
            "algorithm": model.metadata().algorithm,
            "task": model.task().to_string(),
            "features": model.signature().features.len(),
            "classes": model.classes(),
        }));
    }
    out.info(format!(
        "Imported {} ({}, {}, {} features{}) as {} version {version}",
        args.file.display(),
        model.metadata().algorithm,
        model.task(),
        model.signature().features.len(),
        if model.classes().is_empty() { String::new() } else { format!(", classes {}", model.classes().join(",")) },
        args.name
    ))?;
    for alias in &args.aliases {
        out.info(format!("Alias {alias} -> version {version}"))?;
    }
    Ok(())
}

fn read(format: &str, args: &ImportArgs) -> anyhow::Result<Model> {
    let trees = matches!(format, "xgboost" | "lightgbm" | "onnx");
    if !trees && (args.features.is_some() || args.classes.is_some()) {
        bail!("--features and --classes apply to xgboost, lightgbm and onnx files; a {format} export names its own");
    }
    let mut options = ImportOptions::new();
    if let Some(features) = &args.features {
        options = options.features(features.iter().map(|f| f.trim()));
    }
    if let Some(classes) = &args.classes {
        options = options.classes(classes.iter().map(|c| c.trim()));
    }
    Ok(match format {
        "xgboost" => xgboost_with(&args.file, &options)?,
        "lightgbm" => lightgbm_with(&args.file, &options)?,
        "onnx" => onnx_with(&args.file, &options)?,
        _ => {
            let text = std::fs::read_to_string(&args.file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.file.display()))?;
            match format {
                "sklearn-logistic-json" => sklearn_logistic_json(&text)?,
                "sklearn-forest-json" => sklearn_forest_json(&text)?,
                other => bail!("unknown import format '{other}'"),
            }
        }
    })
}

/// The format of a file given without `--format`: LightGBM's text models are `.txt`;
/// XGBoost's JSON starts with its `learner` object, which tells it from a scikit-learn export.
fn infer_format(file: &Path) -> anyhow::Result<&'static str> {
    let extension = file.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    match extension.as_str() {
        "txt" => Ok("lightgbm"),
        "onnx" => Ok("onnx"),
        "json" => {
            let mut head = [0u8; 64];
            let n = std::fs::File::open(file)
                .and_then(|mut f| f.read(&mut head))
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let text = String::from_utf8_lossy(&head[..n]);
            let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            if compact.starts_with("{\"learner\"") {
                Ok("xgboost")
            } else {
                bail!(
                    "cannot tell what {} holds: it is not an XGBoost model; give --format \
                     (sklearn-logistic-json or sklearn-forest-json for a scikit-learn export)",
                    file.display()
                )
            }
        }
        "ubj" => bail!(
            "{} is XGBoost's binary UBJSON, which is not read: save the model as JSON \
             (booster.save_model(\"model.json\")) and import that",
            file.display()
        ),
        _ => bail!("cannot tell the format of {} from its name: give --format", file.display()),
    }
}
