//! `wharf drift`: does a file, or what a served model logged, still look like the model's
//! training data? The same profile, window and statistics `wharf serve` watches live.

use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};
use wharf::drift::{DriftReport, DriftRule, Profile, Window};
use wharf::{predlog, read_csv, FeatureKind, ModelRef, Predictions, Records, RegistryExt, Task, Wharf};

use crate::output::{self, Output};

/// Rows read from a prediction log before they are binned: bounds memory on any log size.
const CHUNK: usize = 10_000;

/// `wharf drift`
#[derive(Debug, Args)]
#[command(after_help = "Each feature (and the prediction) is binned as the model's training data was \
    profiled: numbers in 20 quantile bins, categories by level, missing values as a bin of their own. \
    PSI at or above --psi-threshold flags a feature; KS (numbers) and Jensen-Shannon (categories) are \
    shown beside it. Models trained before Wharf kept a profile have none: retrain them.\n\n\
    Examples:\n  \
    wharf drift --model lead@champion --input this_week.csv --html drift.html\n  \
    wharf drift --model lead --log wharf-predictions --fail-on-drift")]
pub struct DriftArgs {
    /// The registered model whose training profile is the reference.
    #[arg(long, value_name = "NAME[@VERSION|@ALIAS]")]
    pub model: ModelRef,

    /// A CSV file with a header row holding the model's features.
    #[arg(long, value_name = "FILE", required_unless_present = "log", conflicts_with = "log")]
    pub input: Option<PathBuf>,

    /// A prediction log (`wharf serve --log-sample`): its directory or one of its files;
    /// the rows of this model (every version) are read.
    #[arg(long, value_name = "DIR")]
    pub log: Option<PathBuf>,

    /// PSI at or above which a feature has drifted.
    #[arg(long, value_name = "PSI", default_value_t = 0.2)]
    pub psi_threshold: f64,

    /// Rows needed before anything is flagged.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub min_rows: usize,

    /// Exit with status 1 when any feature has drifted.
    #[arg(long)]
    pub fail_on_drift: bool,

    /// Also write the report as one self-contained HTML file: every feature's distribution
    /// now against training, and each feature's PSI, drawn as the model card draws its plots.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// Runs `wharf drift`.
pub fn run(args: DriftArgs, out: &Output) -> anyhow::Result<()> {
    anyhow::ensure!(args.psi_threshold > 0.0, "--psi-threshold {}: expected a positive number", args.psi_threshold);
    let ctx = Wharf::load()?;
    let model = ctx.registry().load_ref(&args.model)?;
    let profile = Profile::of_model(&model)?.ok_or_else(|| {
        anyhow::anyhow!(
            "{} has no reference profile of its training data (models trained before Wharf kept one, and \
             imported models, have none): retrain it to get one",
            args.model
        )
    })?;
    let signature = model.signature().clone();
    let mut window = Window::new(std::sync::Arc::new(profile), usize::MAX >> 8);
    let mut unjudged = None;
    let source = if let Some(path) = &args.input {
        let records = read_features(&signature, path, &args.model.to_string())?;
        // A file the model cannot score (a level it never saw) still has its features judged;
        // only the prediction is left out, and the reason said.
        let predictions = match model.predict(&records) {
            Ok(p) => Some(p),
            Err(e) => {
                unjudged = Some(format!("{} cannot score this file: {e}", args.model));
                None
            }
        };
        window.observe(&window.profile().bin_records(&signature, &records, predictions.as_ref())?);
        path.display().to_string()
    } else if let Some(log) = &args.log {
        let mut rows = Vec::with_capacity(CHUNK);
        let mut predicted = Vec::with_capacity(CHUNK);
        let flush =
            |rows: &mut Vec<wharf::Row>, predicted: &mut Vec<Value>, window: &mut Window| -> anyhow::Result<()> {
                let predictions = logged_predictions(&signature, predicted);
                let records = Records::Rows(std::mem::take(rows));
                window.observe(&window.profile().bin_records(&signature, &records, predictions.as_ref())?);
                predicted.clear();
                Ok(())
            };
        predlog::for_each_record(log, |r| {
            if r.model == args.model.name {
                rows.push(r.features);
                predicted.push(r.prediction);
            }
            if rows.len() >= CHUNK {
                flush(&mut rows, &mut predicted, &mut window)
                    .map_err(|e| wharf::WharfError::Training(e.to_string()))?;
            }
            Ok(())
        })?;
        flush(&mut rows, &mut predicted, &mut window)?;
        log.display().to_string()
    } else {
        unreachable!("clap requires --input or --log")
    };
    let report = window.report(DriftRule { psi_threshold: args.psi_threshold, min_rows: args.min_rows });
    if let Some(path) = &args.html {
        let html = wharf::report::drift_html(&args.model.to_string(), &source, &report, window.profile())?;
        wharf::fsutil::write_atomic(path, html.as_bytes())?;
    }
    if out.json {
        let mut body = json!({ "model": args.model.to_string(), "source": source });
        if let Some(why) = &unjudged {
            body["prediction_not_judged"] = json!(why);
        }
        if let (Value::Object(map), Ok(Value::Object(r))) = (&mut body, serde_json::to_value(&report)) {
            map.extend(r);
        }
        out.json(&body)?;
    } else {
        print(&report, &args.model, &source, out)?;
        if let Some(why) = &unjudged {
            out.info(format!("The prediction is not judged: {why}."))?;
        }
    }
    if args.fail_on_drift && !report.drifted.is_empty() {
        anyhow::bail!("drift in {} feature(s): {}", report.drifted.len(), report.drifted.join(", "));
    }
    Ok(())
}

/// The model's features from a CSV file with a header row, typed as the signature types them;
/// a missing feature column is an error naming it and `model`.
pub(crate) fn read_features(
    signature: &wharf::Signature,
    path: &std::path::Path,
    model: &str,
) -> anyhow::Result<Records<'static>> {
    let of_kind = |categorical: bool| -> Vec<String> {
        signature
            .features
            .iter()
            .filter(|f| matches!(f.kind, FeatureKind::Categorical { .. }) == categorical)
            .map(|f| f.name.clone())
            .collect()
    };
    let file = std::fs::File::open(path).map_err(|e| wharf::WharfError::io(path, e))?;
    let frame = read_csv(file, &path.display().to_string(), &of_kind(true), &of_kind(false))?;
    for name in signature.feature_names() {
        anyhow::ensure!(frame.column(name).is_some(), "{}: no column '{name}', a feature of {model}", path.display());
    }
    Ok(Records::Columns(frame))
}

/// A log's predictions as the model's own, when every one can be read so: class labels by
/// their index, regression values as numbers. Otherwise none (the prediction is not judged).
fn logged_predictions(signature: &wharf::Signature, predicted: &[Value]) -> Option<Predictions> {
    match signature.task {
        Task::Classification => {
            let indices = predicted
                .iter()
                .map(|p| {
                    let text = match p {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    signature.classes.iter().position(|c| *c == text).and_then(|i| u32::try_from(i).ok())
                })
                .collect::<Option<Vec<u32>>>()?;
            Some(Predictions::Classes { classes: signature.classes.clone(), indices })
        }
        Task::Regression => predicted.iter().map(Value::as_f64).collect::<Option<Vec<f64>>>().map(Predictions::Values),
        _ => None,
    }
}

fn print(report: &DriftReport, model: &ModelRef, source: &str, out: &Output) -> anyhow::Result<()> {
    out.line(format!(
        "Drift of {source} against the training data of {model}: {} rows ({} in training)",
        report.window_rows, report.reference_rows
    ))?;
    let mut table = output::table(["feature", "kind", "psi", "ks / js", "missing (train → now)", "drifted"]);
    for v in report.features.iter().chain(report.prediction.as_ref()) {
        let shape = match (v.ks, v.js) {
            (Some(ks), _) => format!("ks {ks:.3}"),
            (_, Some(js)) => format!("js {js:.3}"),
            _ => "-".into(),
        };
        let missing = format!("{:.1}% → {:.1}%", 100.0 * v.missing_expected, 100.0 * v.missing_live);
        let flag = if v.drifted { "DRIFT" } else { "" };
        table.add_row(vec![v.name.clone(), v.kind.into(), format!("{:.4}", v.psi), shape, missing, flag.into()]);
    }
    out.table(&table)?;
    if !report.judged {
        out.line(format!(
            "Too few rows to judge: {} of the {} needed (--min-rows).",
            report.window_rows, report.min_rows
        ))?;
    } else if report.drifted.is_empty() {
        out.line(format!("No feature drifted (PSI below {}).", report.psi_threshold))?;
    } else {
        out.line(format!("Drifted (PSI ≥ {}): {}", report.psi_threshold, report.drifted.join(", ")))?;
    }
    Ok(())
}
