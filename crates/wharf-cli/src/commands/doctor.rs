//! `wharf doctor`: what this build and this directory's configuration amount to.
//!
//! Prints as much as it can: the configuration, the features and adapters compiled in, and
//! the container's wiring. If the configuration or the wiring fails, what could be shown is
//! shown and the failure ends the command as an error.

use anyhow::anyhow;
use serde_json::{json, Value};
use wharf::container::Reason;
use wharf::{Wharf, WharfConfig};

use crate::output::{self, Output};

/// Runs `wharf doctor`.
pub fn run(out: &Output) -> anyhow::Result<()> {
    let config = WharfConfig::load();
    let ctx = match &config {
        Ok(config) => Some(Wharf::from_config(config.clone())),
        Err(_) => None,
    };
    // Names only: values may hold secrets.
    let mut env: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.to_str().map(str::to_string))
        .filter(|k| k.starts_with("WHARF_"))
        .collect();
    env.sort();
    let features = wharf::features();
    let adapters = wharf::adapter_catalog();
    let catalog = adapters.entries();
    // The settings in force: what was set, over each compiled-in adapter's defaults.
    let shown = config.as_ref().ok().map(|c| adapters.effective_config(c).unwrap_or_else(|_| c.clone()));
    let models = match &ctx {
        Some(Ok(ctx)) => Some(ctx.registry().list().map(|m| m.len())),
        _ => None,
    };

    // Errors may quote what they were given (a URL and its userinfo): the redaction rule.
    let failure = match (&config, &ctx, &models) {
        (Err(e), _, _) => Some(e.to_string()),
        (_, Some(Err(e)), _) => Some(e.to_string()),
        (_, _, Some(Err(e))) => Some(format!("registry: {e}")),
        _ => None,
    }
    .map(|message| wharf::redact::text(&message));

    if out.json {
        let report: Option<Vec<Value>> = match &ctx {
            Some(Ok(ctx)) => Some(
                ctx.report()
                    .choices
                    .iter()
                    .map(|c| {
                        let (reason, key, value) = match &c.reason {
                            Reason::Registered => ("registered", None, None),
                            Reason::Configured { key, value } => ("configured", Some(*key), Some(value.clone())),
                        };
                        json!({
                            "port": c.port,
                            "implementation": c.implementation,
                            "reason": reason,
                            "key": key,
                            "value": value,
                        })
                    })
                    .collect(),
            ),
            _ => None,
        };
        out.json(&json!({
            "ok": failure.is_none(),
            "error": failure,
            "config_toml": shown.as_ref().map(WharfConfig::to_toml_masked),
            "environment": env,
            "features": features.iter().map(|(name, on)| (name.to_string(), Value::from(*on))).collect::<serde_json::Map<_, _>>(),
            "adapters": catalog.iter().map(|(port, backend, feature, available)| json!({
                "port": port, "backend": backend, "feature": feature, "available": available,
            })).collect::<Vec<_>>(),
            "container": report,
            "registered_models": models.as_ref().and_then(|m| m.as_ref().ok().copied()),
        }))?;
    } else {
        if let Some(config) = &shown {
            out.line("Configuration (wharf.toml, WHARF_* variables, defaults; secrets masked)")?;
            out.line(config.to_toml_masked().trim_end())?;
            out.line("")?;
        }
        let env_line = if env.is_empty() { "none".to_string() } else { env.join(", ") };
        out.line(format!("WHARF_* variables set: {env_line}\n"))?;

        out.line("Cargo features")?;
        let mut table = output::table(["feature", "compiled in"]);
        for (name, on) in &features {
            table.add_row(vec![name.to_string(), yes_no(*on)]);
        }
        out.table(&table)?;

        out.line("\nAdapters")?;
        let mut table = output::table(["port", "backend", "feature", "available"]);
        for (port, backend, feature, available) in &catalog {
            table.add_row(vec![
                port.to_string(),
                backend.to_string(),
                feature.unwrap_or("-").to_string(),
                yes_no(*available),
            ]);
        }
        out.table(&table)?;

        if let Some(Ok(ctx)) = &ctx {
            out.line("\nContainer (port, implementation, why)")?;
            out.line(ctx.report().to_string().trim_end())?;
        }
        if let Some(Ok(n)) = models {
            out.line(format!("\nRegistry: {n} registered model{}", if n == 1 { "" } else { "s" }))?;
        }
    }
    match failure {
        Some(message) => Err(anyhow!(message)),
        None => Ok(()),
    }
}

fn yes_no(on: bool) -> String {
    if on { "yes" } else { "no" }.to_string()
}
