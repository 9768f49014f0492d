//! `wharf serve`: serve registered models over HTTP until Ctrl-C or SIGTERM.

use std::sync::Arc;

use anyhow::Context;
use wharf::serve::{ModelsBuilder, ServeOptions};
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
    let options = ServeOptions::from_config(serving);
    let mut builder = ModelsBuilder::new().registry(registry);
    for reference in args.model {
        builder = builder.model(reference);
    }
    // Loading self-tests every model: one that cannot predict its own sample never serves.
    let models = builder.build().context("cannot start serving")?;
    wharf::serve::run(models, options, &addr).with_context(|| format!("serving on {addr}"))
}
