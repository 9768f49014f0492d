//! A user-written `TrackerPort`, registered in code, wins over whatever the configuration
//! selects — the container fills only the ports you leave empty.
//!
//! `cargo run --example custom_adapter`

use std::collections::BTreeMap;
use std::sync::Mutex;

use wharf::prelude::*;
use wharf::{RunInfo, RunStatus};

/// Prints every call instead of storing it — a stand-in for your company's tracker.
#[derive(Default)]
struct StdoutTracker {
    runs: Mutex<u64>,
}

impl TrackerPort for StdoutTracker {
    fn name(&self) -> &str {
        "stdout"
    }
    fn begin_run(&self, name: Option<&str>) -> wharf::Result<RunInfo> {
        let mut n = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        println!("start run #{n} {name:?}");
        Ok(RunInfo { id: format!("stdout-{n}"), name: name.unwrap_or("run").into() })
    }
    fn log_params(&self, run: &str, params: &BTreeMap<String, String>) -> wharf::Result<()> {
        println!("{run} params {params:?}");
        Ok(())
    }
    fn log_metrics(&self, run: &str, metrics: &BTreeMap<String, f64>, step: Option<u64>) -> wharf::Result<()> {
        println!("{run} metrics {metrics:?} step {step:?}");
        Ok(())
    }
    fn set_tags(&self, run: &str, tags: &BTreeMap<String, String>) -> wharf::Result<()> {
        println!("{run} tags {tags:?}");
        Ok(())
    }
    fn log_model(&self, run: &str, model: &Model, artifact: &str) -> wharf::Result<()> {
        println!("{run} model {artifact} ({})", model.metadata().algorithm);
        Ok(())
    }
    fn end_run(&self, run: &str, status: RunStatus) -> wharf::Result<()> {
        println!("{run} ended {status}");
        Ok(())
    }
}

fn main() -> wharf::Result<()> {
    // The configuration asks for the no-op tracker; the registered adapter still wins.
    let config = WharfConfig::from_toml_str("[tracking]\nbackend = \"noop\"\n[lineage]\nbackend = \"noop\"")?;
    let ctx = Wharf::builder().tracker(StdoutTracker::default()).build(config)?;
    print!("{}", ctx.report());
    assert_eq!(ctx.tracker().name(), "stdout");

    let model = Trainer::decision_tree().max_depth(Some(3)).fit(&wharf::datasets::iris())?;
    let run = ctx.tracker().start_run(Some("custom"))?;
    run.log_params(Trainer::decision_tree().params())?;
    run.log_model(&model, "iris-tree")?;
    run.finish()?;
    Ok(())
}
