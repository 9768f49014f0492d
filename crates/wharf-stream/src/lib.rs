//! # wharf-stream
//!
//! Streaming scoring: records arrive as JSON lines on stdin or in a growing file, are
//! prepared (nulls dropped, event-time moving averages added), scored in micro-batches by a
//! registered model, and written to a file or stdout, with a checkpoint that makes a
//! restart neither lose nor duplicate output. This is the library behind `wharf stream`.
//!
//! ## The pieces
//!
//! | piece | built in | role |
//! |---|---|---|
//! | [`StreamSource`] | [`FileSource`] (optionally followed), [`ReaderSource`] (stdin) | records with a position, an idempotency key and an attempt count |
//! | [`StreamSink`] | [`FileSink`] (exactly once), [`WriterSink`] (stdout, at least once) | durable appends, cut back to the checkpoint on restart |
//! | [`CheckpointStore`] | [`FileCheckpoint`], [`MemoryCheckpoint`] | `{input_offset, output_len, counts, window state}` |
//! | [`ModelSource`] | [`FixedModel`], [`RegistryModel`] (follows an alias between batches) | the model server for each micro-batch, made by the container's [`ModelServers`](wharf_core::ModelServers) factory |
//! | [`WindowedMeans`] | | trailing moving averages per entity, with a watermark |
//! | [`StreamJob`] | | the loop: poll, prepare, score, write, commit, checkpoint; lineage START/COMPLETE/FAIL |
//!
//! The source and sink traits serve message brokers too: a broker source hands out
//! deliveries with an acknowledgement token ([`Delivery::token`]), an idempotency key and an
//! attempt count, and acknowledges in [`StreamSource::commit`]; a broker sink on the same
//! server writes results and acknowledges them in one atomic step
//! ([`StreamSink::write_acked`]). For a broker the acknowledgement is the checkpoint.
//!
//! ## Scale-out over a broker (features `redis`, `nats`, `kafka`)
//!
//! | broker | source | sink | a dead worker's records | a record committed twice |
//! |---|---|---|---|---|
//! | Redis Streams (`redis`) | `redis::RedisSource`, a consumer in a consumer group | `redis::RedisSink`, a stream | reclaimed by the others (`XAUTOCLAIM`) | written once: result and acknowledgement in one atomic script |
//! | NATS JetStream (`nats`) | `nats::NatsSource`, a worker on a durable pull consumer | `nats::NatsSink`, a stream | delivered again after `ack_wait` | stored once: `Nats-Msg-Id` de-duplication, within the stream's duplicate window |
//! | Kafka (`kafka`) | `kafka::KafkaSource`, a member of a consumer group | `kafka::KafkaSink`, a topic (idempotent producer) | its partitions reassigned; read again from the last committed offset | written again (at least once), keyed by the input record; tested against a Kafka-compatible broker only |
//!
//! [`connect`] opens the pair from two URLs, choosing the broker by scheme (`redis://`,
//! `nats://`, `kafka://`, or `file:` for files) and pairing the sink with its source as
//! the table says; a sink on another broker is refused, and a broker whose feature is not
//! compiled in is [`WharfError::AdapterUnavailable`](wharf_core::WharfError::AdapterUnavailable).
//!
//! Start one job per worker, with the same group and its own consumer name, on as many
//! machines as needed. Records that keep failing go to a dead-letter stream. Window state
//! is per worker. The guide's page "Scaling out" has the commands and says which engine to
//! use when.
//!
//! ## Exactly once, with a file sink
//!
//! After each micro-batch the job appends the results to the output file and flushes it to
//! disk, then atomically replaces the checkpoint (temporary file, flush, rename, flush of the
//! directory). A crash between the two leaves results the checkpoint does not cover: on
//! restart the output is cut back to the checkpoint's `output_len` and the input resumes at
//! its `input_offset`, with the window state of that moment, so the output ends up the same,
//! byte for byte, as that of a run that never stopped.
//!
//! With stdout the bytes already written cannot be taken back, so a restart may repeat the
//! records after the last checkpoint (at-least-once); every output record carries its input
//! `key` to let a consumer drop repeats. Stdin positions count the bytes read, so resuming
//! expects the producer to replay the stream from its start; the job skips what is done.
//!
//! ## Scoring
//!
//! Each micro-batch is scored by [`wharf_core::score`], the path every Wharf job shares, on
//! the server the [`ModelSource`] hands out: a [`RegistryModel`] serves each version on a
//! server from the container's [`ModelServers`](wharf_core::ModelServers) factory, so
//! `serving.backend` decides whether records are scored in process or by a remote service.
//! A record the model refuses stops the job, or is counted and reported under
//! [`OnError::Skip`] ([`StreamOptions::on_error`]).
//!
//! ## Micro-batches
//!
//! A batch is scored and written when it holds [`StreamOptions::batch_size`] records or when
//! its first record has waited [`StreamOptions::max_latency`], whichever comes first. The
//! model is looked up at each batch boundary, so moving an alias takes effect between
//! batches, and each output record names the `model` and `model_version` that scored it.
//!
//! ## Example
//!
//! ```
//! use std::time::Duration;
//! use wharf_ml::{datasets, Trainer};
//! use wharf_stream::{FixedModel, ReaderSource, ScoringModel, StreamJob, StreamOptions, WriterSink};
//!
//! # fn main() -> wharf_core::Result<()> {
//! let model = Trainer::decision_tree().fit(&datasets::iris())?;
//! let input = concat!(
//!     r#"{"id":1,"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2}"#, "\n",
//!     r#"{"id":2,"sepal_length":6.7,"sepal_width":3.0,"petal_length":5.2,"petal_width":2.3}"#, "\n",
//!     r#"{"id":3,"sepal_length":null,"sepal_width":3.0,"petal_length":5.2,"petal_width":2.3}"#, "\n",
//! );
//! let options = StreamOptions { batch_size: 100, max_latency: Duration::from_millis(50), ids: vec!["id".into()], ..Default::default() };
//! let report = StreamJob::new(
//!     ReaderSource::spawn("example", input.as_bytes()),
//!     WriterSink::new("stdout", std::io::stdout()),
//!     FixedModel::new(ScoringModel::new("iris", 1, model)),
//! )
//! .options(options)
//! .run()?;
//! assert_eq!(report.counts.records_in, 3);
//! assert_eq!(report.counts.records_out, 2);     // one line per scored record…
//! assert_eq!(report.counts.dropped_null, 1);    // …and the one with a null dropped
//! # Ok(())
//! # }
//! ```
//!
//! Each output line looks like
//! `{"id":1,"prediction":"setosa","prob_setosa":1.0,…,"model":"iris","model_version":1,"key":"example@0"}`.
//!
//! Windowed features are described in [`window`].
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod broker;
pub mod checkpoint;
mod connect;
mod job;
#[cfg(feature = "kafka")]
#[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
pub mod kafka;
mod model_source;
#[cfg(feature = "nats")]
#[cfg_attr(docsrs, doc(cfg(feature = "nats")))]
pub mod nats;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
pub mod sink;
pub mod source;
pub mod window;

pub use checkpoint::{Checkpoint, CheckpointStore, Counts, FileCheckpoint, MemoryCheckpoint};
pub use connect::{connect, ConnectOptions, Connected};
pub use job::{stop_on_signals, StopReason, StreamJob, StreamOptions, StreamReport, MAX_REPORTED_REJECTS};
pub use model_source::{FixedModel, ModelSource, RegistryModel, ScoringModel};
pub use sink::{FileSink, StreamSink, WriterSink};
pub use source::{BrokerStats, Delivery, FileSource, Polled, ReaderSource, StreamSource};
/// The one error policy of every Wharf job ([`wharf_core::OnError`]), re-exported so a
/// stream's options need no second import.
pub use wharf_core::OnError;
pub use window::{WindowSpec, WindowState, Windowed, WindowedMeans};
