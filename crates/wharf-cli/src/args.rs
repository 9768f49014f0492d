//! The command-line surface of the subcommands, and the parsers of their values.

use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Subcommand};
use wharf::{Algorithm, MaxFeatures, ModelRef, Version};

/// `wharf train`
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  wharf train --input leads.csv --target converted --id lead_id --name lead --alias champion"
)]
pub struct TrainArgs {
    /// CSV file with a header row.
    #[arg(long, short = 'i', value_name = "FILE")]
    pub input: PathBuf,

    /// Column to predict (not used by kmeans).
    #[arg(long, short = 't', value_name = "COL")]
    pub target: Option<String>,

    /// Id column, kept out of the features (repeatable).
    #[arg(long = "id", value_name = "COL")]
    pub ids: Vec<String>,

    /// Registered model name [default: the input file's stem].
    #[arg(long, short = 'n', value_name = "NAME", value_parser = parse_name)]
    pub name: Option<String>,

    /// Estimator to fit.
    #[arg(long, short = 'a', default_value = "logistic", value_parser = algorithm_parser())]
    pub algorithm: Algorithm,

    /// Treat a column as categorical even if its values look numeric (repeatable).
    #[arg(long = "categorical", value_name = "COL")]
    pub categorical: Vec<String>,

    /// Treat a column as numeric; a cell that does not parse is an error (repeatable).
    #[arg(long = "numeric", value_name = "COL")]
    pub numeric: Vec<String>,

    /// Leave a column out entirely (repeatable).
    #[arg(long = "drop", value_name = "COL")]
    pub drop: Vec<String>,

    /// Fraction of rows held out for evaluation, in [0, 1); 0 for none.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.2, value_parser = parse_holdout)]
    pub holdout: f64,

    /// Seed of the holdout split and of the estimator's random choices.
    #[arg(long, value_name = "N", default_value_t = 42)]
    pub seed: u64,

    /// Point this alias at the new version (repeatable).
    #[arg(long = "alias", value_name = "ALIAS", value_parser = parse_alias)]
    pub aliases: Vec<String>,

    /// Number of trees (random-forest), or of boosting rounds (gbdt, gbdt-regressor).
    #[arg(long, value_name = "N", value_parser = parse_positive)]
    pub trees: Option<usize>,

    /// Maximum tree depth (tree, random-forest, gbdt, gbdt-regressor).
    #[arg(long, value_name = "N", value_parser = parse_positive)]
    pub max_depth: Option<usize>,

    /// Features drawn as candidates at each split: sqrt (default), log2, all, a count, or a
    /// fraction such as 0.5 (random-forest).
    #[arg(long, value_name = "SQRT|LOG2|ALL|N|FRACTION", value_parser = parse_max_features)]
    pub max_features: Option<MaxFeatures>,

    /// Number of clusters (kmeans).
    #[arg(long, short = 'k', value_name = "N", value_parser = parse_positive)]
    pub k: Option<usize>,

    /// Gradient-boosting settings (gbdt, gbdt-regressor).
    #[command(flatten)]
    pub boost: BoostArgs,

    /// Move the --over alias to the new version only if it beats that alias's version on the
    /// held-out rows (the new version is registered either way; exit status 1 when refused).
    #[arg(long)]
    pub promote_if_better: bool,

    /// The alias --promote-if-better compares with and moves.
    #[arg(long, value_name = "@ALIAS", default_value = "@champion", value_parser = crate::commands::gate::parse_at_alias)]
    pub over: String,

    /// The metric --promote-if-better compares by [default: roc_auc for two classes,
    /// accuracy for more, rmse for regression].
    #[arg(long, value_name = "METRIC", requires = "promote_if_better")]
    pub metric: Option<String>,

    /// Margin, resamples and confidence of --promote-if-better.
    #[command(flatten)]
    pub gate: crate::commands::gate::GateArgs,

    /// Do not write the model card (by default it is logged to the run as card.html and
    /// kept with the version; `wharf report` writes one on demand).
    #[arg(long)]
    pub no_report: bool,
}

impl TrainArgs {
    /// Checks the combinations clap cannot: the target and the estimator settings depend on
    /// the algorithm.
    pub fn validate(&self) -> Result<(), String> {
        let alg = self.algorithm;
        if self.target.is_none() && alg != Algorithm::KMeans {
            return Err(format!("--target <COL> is required for --algorithm {}", alg.as_str()));
        }
        let only = |flag: &str, set: bool, allowed: &[Algorithm]| {
            if set && !allowed.contains(&alg) {
                let names: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
                Err(format!("{flag} applies to --algorithm {} only, not {}", names.join(" or "), alg.as_str()))
            } else {
                Ok(())
            }
        };
        only("--max-features", self.max_features.is_some(), &[Algorithm::RandomForest])?;
        let boosting = [Algorithm::GradientBoosting, Algorithm::GradientBoostingRegressor];
        only("--trees", self.trees.is_some(), &[Algorithm::RandomForest, boosting[0], boosting[1]])?;
        let trees = [Algorithm::Tree, Algorithm::RandomForest, boosting[0], boosting[1]];
        only("--max-depth", self.max_depth.is_some(), &trees)?;
        for flag in self.boost.given() {
            only(flag, true, &boosting)?;
        }
        only("--loss", self.boost.loss.is_some(), &[Algorithm::GradientBoostingRegressor])?;
        only("--huber-delta", self.boost.huber_delta.is_some(), &[Algorithm::GradientBoostingRegressor])?;
        if self.boost.huber_delta.is_some() && self.boost.loss != Some(wharf::RegressionLoss::Huber) {
            return Err("--huber-delta applies to --loss huber only".into());
        }
        only("--k", self.k.is_some(), &[Algorithm::KMeans])
    }
}

/// The booster's flags; each left out keeps the trainer's default.
#[derive(Debug, Args)]
pub struct BoostArgs {
    /// Shrinkage of each round's trees [default: 0.1].
    #[arg(long, value_name = "RATE", value_parser = parse_unit)]
    pub learning_rate: Option<f64>,

    /// Most leaves of a tree [default: 31].
    #[arg(long, value_name = "N", value_parser = parse_positive)]
    pub max_leaves: Option<usize>,

    /// Fewest training rows in a leaf [default: 20].
    #[arg(long, value_name = "N", value_parser = parse_positive)]
    pub min_samples_leaf: Option<usize>,

    /// L2 penalty on leaf values [default: 0].
    #[arg(long, value_name = "LAMBDA")]
    pub l2: Option<f64>,

    /// Most bins per feature, 2 to 255 [default: 255].
    #[arg(long, value_name = "N", value_parser = parse_positive)]
    pub max_bins: Option<usize>,

    /// Fraction of rows each round draws [default: 1].
    #[arg(long, value_name = "FRACTION", value_parser = parse_unit)]
    pub subsample: Option<f64>,

    /// Fraction of features each tree draws [default: 1].
    #[arg(long, value_name = "FRACTION", value_parser = parse_unit)]
    pub colsample: Option<f64>,

    /// Class weights: none or balanced [default: none].
    #[arg(long, value_name = "none|balanced")]
    pub class_weight: Option<wharf::ClassWeight>,

    /// Hold out this fraction of the training rows and stop early when their loss stops
    /// improving [default: 0, no early stopping].
    #[arg(long, value_name = "FRACTION", value_parser = parse_holdout)]
    pub validation_fraction: Option<f64>,

    /// Rounds without improvement before stopping early [default: 10].
    #[arg(long, value_name = "N", value_parser = parse_positive)]
    pub patience: Option<usize>,

    /// Choose splits on the exact gradients rather than on gradients quantized to 8 bits
    /// (slower; for a model to compare against).
    #[arg(long)]
    pub exact_gradients: bool,

    /// What the regressor minimises: squared_error, absolute_error or huber (gbdt-regressor)
    /// [default: squared_error].
    #[arg(long, value_name = "squared_error|absolute_error|huber")]
    pub loss: Option<wharf::RegressionLoss>,

    /// Where huber turns from squared to absolute, in the target's units [default: 1].
    #[arg(long, value_name = "DELTA", value_parser = parse_positive_number)]
    pub huber_delta: Option<f64>,
}

impl BoostArgs {
    /// The flags given.
    fn given(&self) -> Vec<&'static str> {
        [
            ("--learning-rate", self.learning_rate.is_some()),
            ("--max-leaves", self.max_leaves.is_some()),
            ("--min-samples-leaf", self.min_samples_leaf.is_some()),
            ("--l2", self.l2.is_some()),
            ("--max-bins", self.max_bins.is_some()),
            ("--subsample", self.subsample.is_some()),
            ("--colsample", self.colsample.is_some()),
            ("--class-weight", self.class_weight.is_some()),
            ("--validation-fraction", self.validation_fraction.is_some()),
            ("--patience", self.patience.is_some()),
            ("--exact-gradients", self.exact_gradients),
        ]
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(flag, _)| flag)
        .collect()
    }

    /// `trainer` with the flags given.
    pub fn apply(&self, mut trainer: wharf::Trainer) -> wharf::Trainer {
        if let Some(v) = self.learning_rate {
            trainer = trainer.learning_rate(v);
        }
        if let Some(v) = self.max_leaves {
            trainer = trainer.max_leaves(v);
        }
        if let Some(v) = self.min_samples_leaf {
            trainer = trainer.min_samples_leaf(v);
        }
        if let Some(v) = self.l2 {
            trainer = trainer.l2(v);
        }
        if let Some(v) = self.max_bins {
            trainer = trainer.max_bins(v);
        }
        if let Some(v) = self.subsample {
            trainer = trainer.subsample(v);
        }
        if let Some(v) = self.colsample {
            trainer = trainer.colsample(v);
        }
        if let Some(v) = self.class_weight {
            trainer = trainer.class_weight(v);
        }
        if let Some(v) = self.validation_fraction {
            trainer = trainer.validation_fraction(v);
        }
        if let Some(v) = self.patience {
            trainer = trainer.patience(v);
        }
        if self.exact_gradients {
            trainer = trainer.quantized_gradients(false);
        }
        if let Some(v) = self.loss {
            trainer = trainer.loss(v);
        }
        if let Some(v) = self.huber_delta {
            trainer = trainer.huber_delta(v);
        }
        trainer
    }
}

fn parse_positive_number(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() => Ok(x),
        _ => Err(format!("'{s}' is not a positive number")),
    }
}

fn parse_unit(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x > 0.0 && x <= 1.0 => Ok(x),
        _ => Err(format!("'{s}' is not a number in (0, 1]")),
    }
}

/// What `wharf score` (alias `wharf predict`) scores, where it writes, and which id columns
/// ride along.
#[derive(Debug, Args)]
pub struct ScoreJobArgs {
    /// The model: NAME (latest version), NAME@VERSION or NAME@ALIAS.
    #[arg(long, short = 'm', value_name = "NAME[@VERSION|@ALIAS]")]
    pub model: ModelRef,

    /// Records to score: a .csv file with a header row, a .jsonl file of JSON objects, or a
    /// .parquet file.
    #[arg(long, short = 'i', value_name = "FILE")]
    pub input: PathBuf,

    /// Where to write the scores: .csv, .jsonl or .parquet (replaced only when scoring succeeds).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,

    /// Input column to copy to the output, in front of the prediction (repeatable). Added to
    /// the model's own id columns (those given to `wharf train --id`), which are copied by
    /// default whenever the input has them; a column named here must be in the input.
    #[arg(long = "id", value_name = "COL")]
    pub ids: Vec<String>,

    /// Do not copy the model's own id columns: only the --id columns are copied.
    #[arg(long)]
    pub no_model_ids: bool,
}

/// `wharf serve`
#[cfg(feature = "serve")]
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  wharf serve --model lead@champion --model churn@3 --addr 127.0.0.1:8080")]
pub struct ServeArgs {
    /// A model to serve: NAME, NAME@VERSION or NAME@ALIAS (repeatable; the same name may be
    /// given with several versions, the first is the default).
    #[arg(long, short = 'm', value_name = "NAME[@VERSION|@ALIAS]", required = true)]
    pub model: Vec<ModelRef>,

    /// A file registry directory [default: the configured registry].
    #[arg(long, value_name = "DIR")]
    pub registry: Option<PathBuf>,

    /// Address to listen on [default: serving.addr, 127.0.0.1:8080].
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: Option<String>,

    /// Log format on stderr.
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,

    /// Score concurrent single-row requests to a model together (micro-batching; sizes from
    /// serving.micro_batch_max_rows [64 when 0] and serving.micro_batch_wait_us).
    #[arg(long)]
    pub micro_batch: bool,

    /// A challenger to shadow its model's default version with (repeatable, one per model):
    /// the default version answers every request; the challenger scores the same records
    /// afterwards, off the request path, and both answers go to the shadow log.
    #[arg(long, value_name = "NAME@ALIAS|NAME@VERSION")]
    pub shadow: Vec<ModelRef>,

    /// Directory of the shadow log [default: serving.shadow_log, wharf-shadow].
    #[arg(long, value_name = "DIR", requires = "shadow")]
    pub shadow_log: Option<PathBuf>,

    /// The model MLflow's `POST /invocations` scores when a request names none in its
    /// X-Wharf-Model header [default: the only model served].
    #[arg(long, value_name = "NAME[@VERSION|@ALIAS]")]
    pub default_model: Option<ModelRef>,

    /// Log this fraction of requests (0 to 1) to the prediction log: each row's features,
    /// prediction, probabilities and latency, written off the request path [default:
    /// serving.log.sample, 0 = off].
    #[arg(long, value_name = "FRACTION")]
    pub log_sample: Option<f64>,

    /// Directory of the prediction log [default: serving.log.path, wharf-predictions].
    #[arg(long, value_name = "DIR")]
    pub log_path: Option<PathBuf>,

    /// Do not watch live inputs for drift against the training profile (on by default for
    /// models that carry one; serving.drift.enabled).
    #[arg(long)]
    pub no_drift: bool,
}

/// `wharf ui`
#[cfg(feature = "serve")]
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  wharf ui --addr 127.0.0.1:8090\n\nOn any address but loopback the UI requires a token: WHARF_UI_TOKEN, or serving.admin_token(_file)."
)]
pub struct UiArgs {
    /// Address to listen on. Any interface but loopback requires a token.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8090")]
    pub addr: String,
}

/// `wharf models …`
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List registered models with their latest version.
    List,
    /// Show one version's metadata: signature, metrics, checksum, tags, aliases.
    Show {
        /// The model: NAME (latest version), NAME@VERSION or NAME@ALIAS.
        #[arg(value_name = "NAME[@VERSION|@ALIAS]")]
        model: ModelRef,
    },
    /// Point an alias at a version, or remove it with --delete.
    Alias {
        /// Model name.
        #[arg(value_parser = parse_name)]
        name: String,
        /// Alias (a letter, then letters, digits, _ or -).
        #[arg(value_parser = parse_alias)]
        alias: String,
        /// Version the alias should point at.
        #[arg(required_unless_present = "delete", conflicts_with = "delete")]
        version: Option<Version>,
        /// Remove the alias instead.
        #[arg(long)]
        delete: bool,
    },
    /// Import a model fitted elsewhere (XGBoost JSON, LightGBM text, ONNX, a scikit-learn JSON
    /// export) as a new version.
    #[command(after_help = "The model is read and checked completely before anything is registered: a \
        file that cannot be read is an error naming its format and the field, line or column, and \
        registers nothing.\n\n\
        Examples:\n  \
        wharf models import --format xgboost churn.json --name churn --classes stays,churns --alias champion\n  \
        wharf models import model.txt --name churn-lgb --features tenure,plan,monthly_fee\n  \
        wharf models import pipeline.onnx --name churn-sk --features tenure,plan,monthly_fee\n  \
        wharf models import --format sklearn-logistic-json logistic.json --name peer-lr")]
    Import(ImportArgs),
    /// Delete a version (and the aliases pointing at it).
    Delete {
        /// Model name.
        #[arg(value_parser = parse_name)]
        name: String,
        /// Version to delete.
        version: Version,
    },
}

/// `wharf models import`
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// What FILE holds [default: lightgbm for a .txt file; onnx for a .onnx file; xgboost for a
    /// .json file written by XGBoost]. sklearn-logistic-json and sklearn-forest-json are
    /// scikit-learn exports (see the guide).
    #[arg(
        long,
        value_name = "FORMAT",
        value_parser = ["xgboost", "lightgbm", "onnx", "sklearn-logistic-json", "sklearn-forest-json"]
    )]
    pub format: Option<String>,
    /// The model file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Registered model name.
    #[arg(long, short = 'n', value_name = "NAME", value_parser = parse_name)]
    pub name: String,
    /// Point this alias at the new version (repeatable).
    #[arg(long = "alias", value_name = "ALIAS", value_parser = parse_alias)]
    pub aliases: Vec<String>,
    /// Feature names in the model's column order, replacing the file's (xgboost, lightgbm,
    /// onnx); as many as the model reads.
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub features: Option<Vec<String>>,
    /// Class labels in the order of the model's class indices 0, 1, … (xgboost, lightgbm, onnx):
    /// the second is a binary model's positive class [default: 0,1,…; an ONNX file's own labels].
    #[arg(long, value_name = "LABELS", value_delimiter = ',')]
    pub classes: Option<Vec<String>>,
    /// A CSV sample of the data the model was trained on (a header row and the model's
    /// features): its profile is kept with the model, so `wharf serve` and `wharf drift` watch
    /// for drift as they do for models trained in Wharf.
    #[arg(long, value_name = "FILE")]
    pub reference: Option<PathBuf>,
}

fn algorithm_parser() -> impl TypedValueParser<Value = Algorithm> {
    PossibleValuesParser::new(["logistic", "linear", "tree", "random-forest", "kmeans", "gbdt", "gbdt-regressor"])
        .try_map(|s| s.parse::<Algorithm>())
}

fn parse_name(s: &str) -> Result<String, String> {
    wharf::ports::registry::validate_name(s).map(|()| s.to_string()).map_err(|e| e.to_string())
}

fn parse_alias(s: &str) -> Result<String, String> {
    wharf::ports::registry::validate_alias(s).map(|()| s.to_string()).map_err(|e| e.to_string())
}

fn parse_holdout(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if (0.0..1.0).contains(&x) => Ok(x),
        _ => Err(format!("'{s}' is not a fraction in [0, 1)")),
    }
}

fn parse_max_features(s: &str) -> Result<MaxFeatures, String> {
    s.parse::<MaxFeatures>().map_err(|e| e.to_string())
}

fn parse_positive(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("'{s}' is not a positive whole number")),
    }
}

/// `wharf runs …`
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Send runs spooled while MLflow was unreachable (`tracking.mlflow.spool_dir`) to MLflow.
    Sync,
}

/// `wharf lineage …`
#[derive(Debug, Subcommand)]
pub enum LineageCommand {
    /// Send OpenLineage events spooled while the receiver was unreachable
    /// (`lineage.openlineage.spool_path`); events it still refuses stay in the spool.
    Replay,
}

/// `wharf run-models`
#[derive(Debug, Args)]
#[command(
    after_help = "Each input line is {\"id\": …, \"data\": {…}}; a model reads data[name][version], or all of data\nwith input = \"shared\" in models.toml.\n\nExample:\n  wharf run-models --config models.toml --input records.jsonl --store sqlite://results.db"
)]
pub struct RunModelsArgs {
    /// The run: registered models (`[[model]]`) and built-in summaries (`[[summary]]`).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: PathBuf,

    /// Records as JSON lines: one object per line with an id and a `data` object.
    #[arg(long, short = 'i', value_name = "FILE")]
    pub input: PathBuf,

    /// Where results go: sqlite://FILE, or postgres://USER@HOST:PORT/DB (feature `postgres`).
    #[arg(long, short = 's', value_name = "URL")]
    pub store: String,

    /// Run draft models and summaries too (skipped by default).
    #[arg(long)]
    pub include_drafts: bool,

    /// The field of each input line holding the record's id.
    #[arg(long, value_name = "FIELD", default_value = "id")]
    pub id_field: String,

    /// Records per stored batch (one transaction each).
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = parse_positive)]
    pub batch_size: usize,
}
