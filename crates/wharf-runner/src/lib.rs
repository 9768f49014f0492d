//! # wharf-runner
//!
//! The multi-model runner: many models, and then summary models over their results, applied
//! to every record of a batch, with each record's results stored in a [`ResultStore`]
//! (SQLite by default, PostgreSQL with the `postgres` feature). Two versions of one model
//! both keep their results, so a new version can be compared with the old one on the same
//! records; and a bad record or a failing model gives that record an error entry instead of
//! aborting the batch, so one bad input never costs the results of the others.
//!
//! ## The pieces
//!
//! - A [`ModelSpec`] is a model with a **name**, a **version**, a **status**
//!   ([`Status::Draft`] or [`Status::Active`]; `production` is accepted for `active`),
//!   declared input **fields** ([`FieldSpec`]: type `int`/`float`/`str`/`bool`, required or
//!   not, a numeric range or string levels) and the **model** that computes its result: a
//!   Rust function ([`ModelSpec::from_fn`]), a trained Wharf [`Model`](wharf_core::Model)
//!   ([`ModelSpec::from_model`], fields taken from its signature), or any [`Scorer`].
//! - A model reads its input from the record's data at `data[name][version]`
//!   ([`InputSource::Slice`]), or from the whole of `data`
//!   ([`InputSource::Shared`]) when several models take the same features.
//! - A [`SummarySpec`] runs after every model of the record. It declares the results it
//!   depends on (`name@version`) and gets every result so far ([`SummaryInput`]), to pick
//!   the winning score, say. [`Builtin`] offers `max`, `min`, `mean` and `sum` over one
//!   output field.
//! - [`run_all`] (or a configured [`Runner`]) runs a batch of [`Record`]s and returns one
//!   [`RecordResult`] per record: its id, `results[name][version]` (each a value or an
//!   error, with the model's status), and a timestamp. With a store, the batch is stored in
//!   one transaction.
//!
//! ## What happens to a record
//!
//! 1. Draft models and summaries are skipped unless the run includes drafts
//!    ([`Runner::include_drafts`]).
//! 2. For each model, its input is looked up; an absent slice is a `missing_input` error.
//!    Each declared field is checked — presence *and* type, range, levels — and a failure
//!    is a `missing_field` or `invalid_field` error naming the fields. The model is then not
//!    called.
//! 3. Models run in parallel (work is split by model and by slice of records over the
//!    available cores). A function's error, a panic, or an output that is not a JSON object
//!    is that record's `model_failed` or `invalid_output` error; other records and models
//!    carry on.
//! 4. Summaries run in declaration order. If a dependency has no result for the record the
//!    summary's result is a `dependency_missing` error naming `name@version` (for that
//!    record only: the rest of the batch still runs); if the dependency failed, a
//!    `dependency_failed` error. The summary function is only called when every dependency
//!    has a value.
//!
//! Errors are [`RunError`]s with an [`ErrorKind`], the field or dependency at fault, and a
//! message. `run_all` itself fails only on inconsistent specs (one `name@version` twice) or
//! when the store cannot write the batch — and then nothing of the batch is stored.
//!
//! ## Results and stores
//!
//! A stored result is `{record id, results, timestamp}`; the input data is not stored. A
//! result entry is `{"status": "active", "value": {…}}` or
//! `{"status": "active", "error": {"kind": "missing_field", "at": "b", "message": "…"}}`.
//!
//! A store keeps every result of a record id: [`ResultStore::current`] is the newest,
//! [`ResultStore::history`] all of them newest first. The SQL stores number each result
//! by its position in that history (0 = current), as `current_rank` in the view
//! `<table>_history`, so SQL can pick the current or an earlier result without a
//! subquery. See the [`store`] module.
//!
//! | store | URL ([`open_store`]) | feature |
//! |---|---|---|
//! | [`SqliteResultStore`] — a file, SQLite compiled in | `sqlite://results.db` | (always) |
//! | `PostgresResultStore` | `postgres://user@host:5432/db` | `postgres` |
//! | [`MemoryResultStore`] | `memory:` | (always) |
//!
//! The conformance suite (feature `conformance`) checks the store contract; every store
//! runs it, the PostgreSQL one against a real server.
//!
//! ## Example
//!
//! ```
//! use serde_json::json;
//! use wharf_runner::{run_all, FieldSpec, ModelSpec, Record, ResultStore, SqliteResultStore, Status, SummarySpec};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let add = |v1: &str| {
//!     ModelSpec::from_fn("add", v1, |row| {
//!         let a = row["a"].as_i64().ok_or("a is not an int")?;
//!         let b = row["b"].as_i64().ok_or("b is not an int")?;
//!         Ok(json!({ "c": a + b }))
//!     })
//!     .field("a", FieldSpec::int())
//!     .field("b", FieldSpec::int())
//!     .status(Status::Active)
//! };
//! let best = SummarySpec::new("best", "1", [("add", "1"), ("add", "2")], |input| {
//!     let c: i64 = input.dependencies().filter_map(|(_, v)| v["c"].as_i64()).sum();
//!     Ok(json!({ "total": c }))
//! })
//! .status(Status::Active);
//!
//! let data = json!({"add": {"1": {"a": 1, "b": 2}, "2": {"a": 10, "b": 20}}});
//! let records = vec![Record::new("7", data.as_object().cloned().unwrap_or_default())];
//! let store = SqliteResultStore::in_memory()?;
//! let out = run_all(&records, &[add("1"), add("2")], &[best], Some(&store))?;
//!
//! // Both versions of `add` keep their result.
//! let c = |name, version| out[0].results.get(name, version).and_then(|r| r.value()).map(|v| v["c"].clone());
//! assert_eq!((c("add", "1"), c("add", "2")), (Some(json!(3)), Some(json!(30))));
//! // The store's current result for record 7 is this run's.
//! let stored = store.current("7")?.ok_or("record 7 was not stored")?;
//! let best = stored.results.get("best", "1").and_then(|r| r.value()).map(|v| v["total"].clone());
//! assert_eq!(best, Some(json!(33)));
//! # Ok(())
//! # }
//! ```
//!
//! ## `models.toml`
//!
//! [`RunnerConfig`] reads a run described in a file — registered models by reference
//! (`lead@champion`) and built-in summaries — as the `wharf run-models` command does. The
//! file's format is on [`RunnerConfig`]'s module page, [`config`].
//!
//! ## `wharf run-models`
//!
//! ```text
//! wharf run-models --config models.toml --input records.jsonl --store sqlite://results.db \
//!     [--include-drafts] [--id-field id] [--batch-size 1000] [--json]
//! ```
//!
//! Each input line is `{"id": …, "data": {…}}` (the id a string or a number). The whole file
//! is read and checked first: a line that is not a JSON object with an id and a `data`
//! object stops the command with nothing stored. The models are loaded from the configured
//! registry (`wharf.toml`), then the records run in batches of `--batch-size`, each batch
//! stored in one transaction, with a progress bar on a terminal. The command ends with a
//! table per model (`name@version`, status, values, errors) or, with `--json`, the same as
//! JSON. Records whose models failed are stored with their error entries; they do not make
//! the command fail. `postgres://…` stores need `wharf-cli` built with the `postgres`
//! feature.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod builtin;
mod checked;
pub mod config;
#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
mod fields;
mod ident;
mod model_scorer;
mod results;
mod runner;
mod scorer;
mod spec;
pub mod store;
mod summary;

pub use builtin::Builtin;
pub use config::{ModelEntry, RunnerConfig, SummaryEntry};
pub use fields::{FieldProblem, FieldSpec, FieldType, InputSource};
pub use ident::{DepRef, Status};
pub use model_scorer::ModelScorer;
pub use results::{ErrorKind, ModelResult, Outcome, Record, RecordResult, Results, RunError, Tally};
pub use runner::{run_all, Runner};
pub use scorer::{BoxError, FnScorer, Scorer};
pub use spec::ModelSpec;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use store::PostgresResultStore;
pub use store::{open_store, MemoryResultStore, ResultStore, SqliteResultStore, StoreCount, StoredResult};
pub use summary::{SummaryFn, SummaryInput, SummarySpec};
