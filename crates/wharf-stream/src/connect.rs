//! [`connect`]: one door to every source and sink, chosen by URL scheme.
//!
//! A deployment moves from one broker to another by changing a URL, never code: the caller
//! names where records come from and where results go, and gets back a source and a sink
//! already paired the way that broker needs (results and acknowledgements written in one
//! atomic step where the broker allows it). A broker whose Cargo feature is not compiled in
//! is a [`WharfError::AdapterUnavailable`] naming the feature, not an unknown scheme.

use std::sync::Arc;

use wharf_core::{Result, WharfError};

use crate::sink::{FileSink, StreamSink, WriterSink};
use crate::source::{BrokerStats, FileSource, ReaderSource, StreamSource};

/// What a URL names: a broker (with the Cargo feature that brings it in), or a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Redis,
    Nats,
    Kafka,
    /// A file path (`file:PATH`), or `-` for stdin / stdout.
    File,
}

impl Kind {
    /// The broker schemes, in the order errors list them.
    const BROKERS: [(&'static str, Kind); 3] =
        [("redis://", Kind::Redis), ("nats://", Kind::Nats), ("kafka://", Kind::Kafka)];

    fn of(url: &str) -> Option<Kind> {
        if url == "-" || url.starts_with("file:") {
            return Some(Kind::File);
        }
        Kind::BROKERS.iter().find(|(scheme, _)| url.starts_with(scheme)).map(|(_, kind)| *kind)
    }

    /// The scheme as errors show it (`kafka://…`).
    fn scheme(self) -> &'static str {
        match self {
            Kind::Redis => "redis://…",
            Kind::Nats => "nats://…",
            Kind::Kafka => "kafka://…",
            Kind::File => "file:…",
        }
    }
}

/// How [`connect`] opens what the URLs name.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// Keep reading a `file:` source as it grows (see [`FileSource::open`]).
    pub follow: bool,
    /// How errors name the source and the sink: `source` and `sink` by default, the flags
    /// that gave them in a command line (`--source`, `--sink`).
    pub names: (String, String),
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions { follow: false, names: ("source".into(), "sink".into()) }
    }
}

impl ConnectOptions {
    /// Follows a growing `file:` source.
    pub fn follow(mut self, follow: bool) -> Self {
        self.follow = follow;
        self
    }

    /// Names the source and the sink in errors as `source` and `sink` do.
    pub fn names(mut self, source: impl Into<String>, sink: impl Into<String>) -> Self {
        self.names = (source.into(), sink.into());
        self
    }
}

/// A source and its sink, as [`connect`] opened and paired them.
#[non_exhaustive]
pub struct Connected {
    /// Where records come from.
    pub source: Box<dyn StreamSource>,
    /// Where results go (stdout when no sink was named).
    pub sink: Box<dyn StreamSink>,
    /// What the broker did besides delivering (reclaimed, dead-lettered, duplicate
    /// results); `None` for a file or stdin.
    pub stats: Option<Arc<BrokerStats>>,
}

impl std::fmt::Debug for Connected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connected").field("source", &self.source.name()).field("sink", &self.sink.name()).finish()
    }
}

/// Opens the source `source_url` names and the sink `sink_url` names (stdout when `None`
/// or `-`), paired for the broker:
///
/// | `source_url` | `sink_url` | pairing |
/// |---|---|---|
/// | `redis://HOST/STREAM?group=G&consumer=C` | `redis://HOST/STREAM` | same server: each result written and its entry acknowledged in one script; another server: written, then acknowledged (at least once) |
/// | `nats://HOST/STREAM?group=G&consumer=C` | `nats://HOST/STREAM` | results stored (de-duplicated by `Nats-Msg-Id`), then acknowledged on the source's connection |
/// | `kafka://HOST/TOPIC?group=G&consumer=C` | `kafka://HOST/TOPIC` | results written, then offsets committed (at least once) |
/// | `file:PATH` or `-` (stdin) | `file:PATH` | the job's checkpoint pairs them |
///
/// A sink on another broker than its source is refused: nothing could acknowledge a record
/// together with its result. The URLs are checked before anything is contacted, so a
/// mistaken pair fails at once. A broker whose feature (`redis`, `nats`, `kafka`) is not
/// compiled in is [`WharfError::AdapterUnavailable`].
///
/// ```
/// use wharf_stream::{connect, ConnectOptions};
///
/// # fn main() -> wharf_core::Result<()> {
/// let dir = tempfile::tempdir().expect("temp dir");
/// let input = dir.path().join("in.jsonl");
/// std::fs::write(&input, "{\"x\":1}\n").expect("input");
/// let output = format!("file:{}", dir.path().join("out.jsonl").display());
/// let pair = connect(&format!("file:{}", input.display()), Some(&output), &ConnectOptions::default())?;
/// assert!(pair.stats.is_none());
///
/// let err = connect("pulsar://h/rows", None, &ConnectOptions::default()).expect_err("unknown scheme");
/// assert!(err.to_string().contains("unknown scheme"));
/// # Ok(())
/// # }
/// ```
pub fn connect(source_url: &str, sink_url: Option<&str>, options: &ConnectOptions) -> Result<Connected> {
    let (source_name, sink_name) = (&options.names.0, &options.names.1);
    let kind = Kind::of(source_url).ok_or_else(|| unknown_scheme(source_name, source_url))?;
    let sink_url = sink_url.filter(|url| *url != "-");
    if let Some(sink) = sink_url {
        let sink_kind = Kind::of(sink).ok_or_else(|| unknown_scheme(sink_name, sink))?;
        if sink_kind != kind {
            return Err(WharfError::invalid(
                format!("{sink_name} {}", crate::broker::redact(sink)),
                format!(
                    "use the same broker as {source_name} ({}), or leave {sink_name} out for stdout",
                    kind.scheme()
                ),
            ));
        }
    }
    match kind {
        Kind::File => file(source_url, sink_url, options.follow),
        Kind::Redis => redis(source_url, sink_url),
        Kind::Nats => nats(source_url, sink_url),
        Kind::Kafka => kafka(source_url, sink_url),
    }
}

fn unknown_scheme(name: &str, url: &str) -> WharfError {
    let brokers: Vec<String> = Kind::BROKERS.iter().map(|(scheme, _)| format!("{scheme}…")).collect();
    WharfError::invalid(
        format!("{name} {}", crate::broker::redact(url)),
        format!("unknown scheme; use {} (or file:PATH)", brokers.join(", ")),
    )
}

/// stdout, the sink of a source given no sink.
fn stdout() -> Box<dyn StreamSink> {
    Box::new(WriterSink::stdout())
}

fn file(source_url: &str, sink_url: Option<&str>, follow: bool) -> Result<Connected> {
    let path = |url: &str| url.strip_prefix("file://").or_else(|| url.strip_prefix("file:")).unwrap_or(url).to_string();
    let source: Box<dyn StreamSource> = if source_url == "-" {
        Box::new(ReaderSource::stdin())
    } else {
        Box::new(FileSource::open(path(source_url), follow)?)
    };
    let sink: Box<dyn StreamSink> = match sink_url {
        Some(url) => Box::new(FileSink::open(path(url))?),
        None => stdout(),
    };
    Ok(Connected { source, sink, stats: None })
}

#[cfg(not(all(feature = "redis", feature = "nats", feature = "kafka")))]
fn not_built(feature: &str) -> WharfError {
    WharfError::AdapterUnavailable { adapter: feature.to_string(), feature: feature.to_string() }
}

#[cfg(feature = "redis")]
fn redis(source_url: &str, sink_url: Option<&str>) -> Result<Connected> {
    use crate::redis::{RedisSink, RedisSource, RedisStreamUrl};
    let source_url = RedisStreamUrl::parse(source_url)?;
    let sink_url = sink_url.map(RedisStreamUrl::parse).transpose()?;
    let source = RedisSource::open(&source_url)?;
    let stats = source.stats();
    let sink: Box<dyn StreamSink> = match sink_url {
        Some(sink_url) => {
            let sink = RedisSink::open(&sink_url, source_url.consumer.clone().unwrap_or_default())?;
            // Same server: results and acknowledgements in one atomic step.
            if sink_url.host == source_url.host && sink_url.db == source_url.db {
                Box::new(sink.acknowledging(source.acknowledgement())?)
            } else {
                Box::new(sink)
            }
        }
        None => stdout(),
    };
    Ok(Connected { source: Box::new(source), sink, stats: Some(stats) })
}

#[cfg(not(feature = "redis"))]
fn redis(_: &str, _: Option<&str>) -> Result<Connected> {
    Err(not_built("redis"))
}

#[cfg(feature = "nats")]
fn nats(source_url: &str, sink_url: Option<&str>) -> Result<Connected> {
    use crate::nats::{NatsSink, NatsSource, NatsStreamUrl};
    let source_url = NatsStreamUrl::parse(source_url)?;
    let sink_url = sink_url.map(NatsStreamUrl::parse).transpose()?;
    let source = NatsSource::open(&source_url)?;
    let stats = source.stats();
    let sink: Box<dyn StreamSink> = match sink_url {
        // Acknowledgements travel on the source's own connection, so the sink pairs with it
        // on any server of the cluster.
        Some(sink_url) => Box::new(
            NatsSink::open(&sink_url, source_url.consumer.clone().unwrap_or_default())?
                .acknowledging(source.acknowledgement())?,
        ),
        None => stdout(),
    };
    Ok(Connected { source: Box::new(source), sink, stats: Some(stats) })
}

#[cfg(not(feature = "nats"))]
fn nats(_: &str, _: Option<&str>) -> Result<Connected> {
    Err(not_built("nats"))
}

#[cfg(feature = "kafka")]
fn kafka(source_url: &str, sink_url: Option<&str>) -> Result<Connected> {
    use crate::kafka::{KafkaSink, KafkaSource, KafkaTopicUrl};
    let source_url = KafkaTopicUrl::parse(source_url)?;
    let sink_url = sink_url.map(KafkaTopicUrl::parse).transpose()?;
    let source = KafkaSource::open(&source_url)?;
    let stats = source.stats();
    let sink: Box<dyn StreamSink> = match sink_url {
        // Offsets are committed by the source after the results are written: at least once.
        Some(sink_url) => Box::new(KafkaSink::open(&sink_url, source_url.consumer.clone().unwrap_or_default())?),
        None => stdout(),
    };
    Ok(Connected { source: Box::new(source), sink, stats: Some(stats) })
}

#[cfg(not(feature = "kafka"))]
fn kafka(_: &str, _: Option<&str>) -> Result<Connected> {
    Err(not_built("kafka"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(source: &str, sink: Option<&str>) -> String {
        let options = ConnectOptions::default().names("--source", "--sink");
        connect(source, sink, &options).map(|_| ()).expect_err("refused").to_string()
    }

    #[test]
    fn schemes_are_checked_before_anything_is_contacted() {
        // Port 1: a broker would be tried (and time out) if the pair were not refused first.
        let err = refused("pulsar://h:6650/rows", None);
        assert!(
            err.contains("--source pulsar://h:6650/rows: unknown scheme; use redis://…, nats://…, kafka://…"),
            "{err}"
        );
        let err = refused("kafka://127.0.0.1:1/rows?group=g&consumer=w", Some("redis://u:pw@h/out"));
        assert!(err.contains("--sink redis://***@h/out") && !err.contains("pw@"), "{err}");
        assert!(err.contains("use the same broker as --source (kafka://…)"), "{err}");
        let err = refused("redis://127.0.0.1:1/rows?group=g&consumer=w", Some("file:out.jsonl"));
        assert!(err.contains("use the same broker as --source (redis://…)"), "{err}");
        let err = refused("-", Some("nats://h/out"));
        assert!(err.contains("use the same broker as --source (file:…)"), "{err}");
    }

    #[test]
    fn a_broker_left_out_of_the_build_names_its_feature() {
        for (url, feature, built) in [
            ("redis://h/rows?group=g&consumer=w", "redis", cfg!(feature = "redis")),
            ("nats://h/rows?group=g&consumer=w", "nats", cfg!(feature = "nats")),
            ("kafka://h/rows?group=g&consumer=w", "kafka", cfg!(feature = "kafka")),
        ] {
            if built {
                continue;
            }
            match connect(url, None, &ConnectOptions::default()) {
                Err(WharfError::AdapterUnavailable { adapter, feature: f }) => {
                    assert_eq!((adapter.as_str(), f.as_str()), (feature, feature))
                }
                other => panic!("{url}: {:?}", other.map(|c| c.source.name().to_string())),
            }
        }
    }

    #[test]
    fn files_pair_with_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let input = dir.path().join("in.jsonl");
        std::fs::write(&input, "{}\n").expect("input");
        let out = dir.path().join("out.jsonl");
        let pair = connect(
            &format!("file://{}", input.display()),
            Some(&format!("file:{}", out.display())),
            &ConnectOptions::default(),
        )
        .expect("files");
        assert!(pair.stats.is_none() && pair.sink.exactly_once());
        assert!(out.exists());
    }
}
