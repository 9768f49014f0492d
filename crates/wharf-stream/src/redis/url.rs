//! The `redis://` stream URL: server, stream, consumer group and the adapter's settings.

use std::time::Duration;

use wharf_core::{Result, WharfError};

use crate::broker::{query_pairs, redact};

use super::{DEFAULT_MAX_ATTEMPTS, DEFAULT_MIN_IDLE};

/// A parsed `redis://` stream URL (see the [module docs](super)).
#[derive(Clone, PartialEq, Eq)]
pub struct RedisStreamUrl {
    /// `host:port`, for names and for comparing servers.
    pub host: String,
    /// The database number.
    pub db: i64,
    /// The stream's key.
    pub stream: String,
    /// The consumer group (sources).
    pub group: Option<String>,
    /// This worker's consumer name (sources), unique within the group.
    pub consumer: Option<String>,
    /// How long an entry is pending before another consumer may reclaim it.
    pub min_idle: Duration,
    /// Deliveries after which an entry goes to the dead-letter stream.
    pub max_attempts: u32,
    /// The dead-letter stream.
    pub dead_letter: String,
    /// `redis://[user:password@]host:port/db`, as the client connects.
    pub(super) connect: String,
}

impl std::fmt::Debug for RedisStreamUrl {
    // The connection string may hold a password: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStreamUrl")
            .field("url", &self.name())
            .field("group", &self.group)
            .field("consumer", &self.consumer)
            .finish()
    }
}

impl RedisStreamUrl {
    /// Parses `url`; an error names the part that is wrong.
    pub fn parse(url: &str) -> Result<RedisStreamUrl> {
        let bad = |part: &str, message: String| WharfError::invalid(format!("{} ({part})", redact(url)), message);
        let rest = url
            .strip_prefix("redis://")
            .ok_or_else(|| bad("scheme", "a Redis stream URL starts with redis://".into()))?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, stream) = rest.split_once('/').unwrap_or((rest, ""));
        if stream.is_empty() {
            return Err(bad("stream", "name the stream after the server: redis://HOST:PORT/STREAM".into()));
        }
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((user, host)) => (Some(user), host),
            None => (None, authority),
        };
        if host.is_empty() {
            return Err(bad("host", "the server is missing: redis://HOST:PORT/STREAM".into()));
        }
        let host = if host.contains(':') { host.to_string() } else { format!("{host}:6379") };
        let mut parsed = RedisStreamUrl {
            host,
            db: 0,
            stream: stream.to_string(),
            group: None,
            consumer: None,
            min_idle: DEFAULT_MIN_IDLE,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            dead_letter: format!("{stream}:dead"),
            connect: String::new(),
        };
        for (key, value) in query_pairs(query, bad)? {
            let number =
                |what: &str| value.parse::<u64>().map_err(|_| bad(key, format!("`{key}={value}` is not {what}")));
            match key {
                "group" => parsed.group = Some(value.to_string()),
                "consumer" => parsed.consumer = Some(value.to_string()),
                "db" => parsed.db = i64::try_from(number("a database number")?).unwrap_or(i64::MAX),
                "min_idle_ms" => parsed.min_idle = Duration::from_millis(number("a number of milliseconds")?.max(1)),
                "max_attempts" => {
                    parsed.max_attempts = u32::try_from(number("a count")?.max(1)).unwrap_or(u32::MAX);
                }
                "dead_letter" => parsed.dead_letter = value.to_string(),
                other => {
                    return Err(bad(
                        other,
                        format!(
                            "unknown parameter `{other}` (known: group, consumer, db, min_idle_ms, max_attempts, \
                             dead_letter)"
                        ),
                    ))
                }
            }
        }
        let auth = userinfo.map(|u| format!("{u}@")).unwrap_or_default();
        parsed.connect = format!("redis://{auth}{}/{}", parsed.host, parsed.db);
        Ok(parsed)
    }

    /// The stream's name without credentials: `redis://host:port/stream` (with `?db=N` when
    /// not 0), used in lineage and errors.
    pub fn name(&self) -> String {
        let db = if self.db == 0 { String::new() } else { format!("?db={}", self.db) };
        format!("redis://{}/{}{db}", self.host, self.stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_names_server_stream_and_group() {
        let url = RedisStreamUrl::parse(
            "redis://user:secret@10.0.0.5:7000/rows?group=scorers&consumer=w1&db=2&min_idle_ms=1500&max_attempts=3",
        )
        .expect("parse");
        assert_eq!(url.host, "10.0.0.5:7000");
        assert_eq!((url.stream.as_str(), url.db), ("rows", 2));
        assert_eq!((url.group.as_deref(), url.consumer.as_deref()), (Some("scorers"), Some("w1")));
        assert_eq!((url.min_idle, url.max_attempts), (Duration::from_millis(1500), 3));
        assert_eq!(url.dead_letter, "rows:dead");
        assert_eq!(url.name(), "redis://10.0.0.5:7000/rows?db=2");
        assert!(!format!("{url:?}").contains("secret"), "{url:?}");
        assert_eq!(RedisStreamUrl::parse("redis://localhost/out").expect("parse").host, "localhost:6379");
    }

    #[test]
    fn a_bad_url_names_the_bad_part_and_hides_the_password() {
        let cases = [
            ("http://h/s", "(scheme)"),
            ("redis://h:1", "(stream)"),
            ("redis:///s", "(host)"),
            ("redis://h/s?grup=g", "unknown parameter `grup`"),
            ("redis://h/s?max_attempts=many", "`max_attempts=many` is not a count"),
            ("redis://h/s?group", "`group` needs a value"),
        ];
        for (url, expected) in cases {
            let err = RedisStreamUrl::parse(url).expect_err(url).to_string();
            assert!(err.contains(expected), "{url}: {err}");
        }
        let err = RedisStreamUrl::parse("redis://u:pw@h/s?x=1").expect_err("unknown").to_string();
        assert!(!err.contains("pw"), "{err}");
    }
}
