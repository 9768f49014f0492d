//! `wharf ui`: browse runs, models, cards and lineage over the configured ports.

use anyhow::Context;
use wharf::Wharf;

use crate::args::UiArgs;
use crate::output::Output;

/// The variable a token may come in (a secret never belongs on a command line).
const TOKEN_VAR: &str = "WHARF_UI_TOKEN";

/// Runs `wharf ui`.
pub fn run(args: UiArgs, _out: &Output) -> anyhow::Result<()> {
    let ctx = Wharf::load()?;
    // The admin token guards `wharf serve`'s control endpoints; the UI reuses it (inline or
    // from its file) so one secret covers the operator's tools.
    let token = match std::env::var(TOKEN_VAR).ok().filter(|t| !t.trim().is_empty()) {
        Some(token) => Some(token),
        None => wharf::serve::ServeOptions::load(&ctx.config().serving)?.admin_token,
    };
    let ui = wharf_ui::Ui::new(ctx.tracker().clone(), ctx.registry().clone(), ctx.lineage().clone());
    let mut options = wharf_ui::UiOptions::default().addr(args.addr.clone());
    if let Some(token) = token {
        options = options.token(token);
    }
    wharf_ui::run(ui, options).with_context(|| format!("wharf ui on {}", args.addr))
}
