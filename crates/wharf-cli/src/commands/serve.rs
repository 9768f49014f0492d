//! `wharf serve`: serve registered models over HTTP until Ctrl-C or SIGTERM.

use std::sync::Arc;

use anyhow::Context;
use wharf::serve::{MicroBatch, ModelsBuilder, ServeOptions};
use wharf::{FileRegistry, RegistryPort, Wharf};

use crate::args::ServeArgs;
use crate::output::Output;

/// Runs `wharf serve`.
pub fn run(args: ServeArgs, _out: &Output) -> anyhow::Result<()> {
    wharf::serve::init_tracing(args.log_format == "json");
    let ctx = Wharf::load()?;
    let registry: Arc<dyn RegistryPort> = match &args.registry {
        Some(dir) => {
            anyhow::ensure!(dir.is_dir(), "registry directory {} does not exist", dir.display());
            Arc::new(FileRegistry::new(dir))
        }
        None => ctx.registry().clone(),
    };
    let serving = &ctx.config().serving;
    let addr = args.addr.clone().unwrap_or_else(|| serving.addr.clone());
    let mut options = ServeOptions::load(serving)?;
    if args.micro_batch && options.micro_batch.is_none() {
        let wait = std::time::Duration::from_micros(serving.micro_batch_wait_us);
        options.micro_batch = Some(MicroBatch { wait, ..MicroBatch::default() });
    }
    if let Some(default) = &args.default_model {
        anyhow::ensure!(
            args.model.iter().any(|m| m.name == default.name),
            "--default-model {default}: '{}' is not among the --model references served",
            default.name
        );
        options.default_model = Some(default.to_string());
    }
    // One model server per loaded version, of the configured backend (`serving.backend`):
    // in process by default, or a proxy to a BentoML service.
    let mut builder = ModelsBuilder::new().registry(registry).servers(ctx.model_servers().clone());
    for reference in args.model {
        builder = builder.model(reference);
    }
    for reference in args.shadow {
        builder = builder.shadow(reference);
    }
    if let Some(dir) = args.shadow_log {
        options.shadow_log.dir = dir;
    }
    if let Some(sample) = args.log_sample {
        anyhow::ensure!((0.0..=1.0).contains(&sample), "--log-sample {sample}: expected a fraction from 0 to 1");
        options.prediction_log.sample = sample;
    }
    if let Some(dir) = args.log_path {
        options.prediction_log.dir = dir;
    }
    if args.no_drift {
        options.drift.enabled = false;
    }
    // Loading self-tests every model: one that cannot predict its own sample never serves.
    let models = builder.build().context("cannot start serving")?;
    wharf::serve::run(models, options, &addr).with_context(|| format!("serving on {addr}"))
}
