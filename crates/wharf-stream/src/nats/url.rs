//! The `nats://` stream URL: server, credentials, stream, durable consumer and settings.

use std::time::Duration;

use wharf_core::{Result, WharfError};

use crate::broker::{query_pairs, redact};

use super::DEFAULT_MAX_ATTEMPTS;

/// How the client proves who it is.
#[derive(Clone, PartialEq, Eq)]
pub(super) enum Auth {
    None,
    UserPassword(String, String),
    Token(String),
}

/// A parsed `nats://` stream URL (see the [module docs](super)).
#[derive(Clone, PartialEq, Eq)]
pub struct NatsStreamUrl {
    /// `host:port`, for names and for connecting.
    pub host: String,
    /// The JetStream stream's name.
    pub stream: String,
    /// The subject the stream captures (its name by default).
    pub subject: String,
    /// The durable pull consumer the workers share (sources).
    pub group: Option<String>,
    /// This worker's name (sources), written into its results and dead letters.
    pub consumer: Option<String>,
    /// How long a delivery may stay unacknowledged; `None` keeps the durable consumer's
    /// setting, or [`DEFAULT_ACK_WAIT`](super::DEFAULT_ACK_WAIT) when this worker creates it.
    pub ack_wait: Option<Duration>,
    /// Deliveries after which a message goes to the dead-letter stream.
    pub max_attempts: u32,
    /// The dead-letter stream (its subject is its name).
    pub dead_letter: String,
    /// The de-duplication window of a stream this URL creates; `None` keeps an existing
    /// stream's, or [`DEFAULT_DUPLICATE_WINDOW`](super::DEFAULT_DUPLICATE_WINDOW).
    pub duplicate_window: Option<Duration>,
    pub(super) auth: Auth,
}

impl std::fmt::Debug for NatsStreamUrl {
    // The credentials are never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsStreamUrl")
            .field("url", &self.name())
            .field("subject", &self.subject)
            .field("group", &self.group)
            .field("consumer", &self.consumer)
            .finish()
    }
}

/// Whether `name` can be a JetStream stream or consumer name (and so a subject token).
pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c.is_control() || ".*>/\\".contains(c))
}

impl NatsStreamUrl {
    /// Parses `url`; an error names the part that is wrong.
    pub fn parse(url: &str) -> Result<NatsStreamUrl> {
        let bad = |part: &str, message: String| WharfError::invalid(format!("{} ({part})", redact(url)), message);
        let rest =
            url.strip_prefix("nats://").ok_or_else(|| bad("scheme", "a NATS stream URL starts with nats://".into()))?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, stream) = rest.split_once('/').unwrap_or((rest, ""));
        if stream.is_empty() {
            return Err(bad("stream", "name the stream after the server: nats://HOST:PORT/STREAM".into()));
        }
        if !valid_name(stream) {
            return Err(bad(
                "stream",
                format!("`{stream}` is not a JetStream stream name (no spaces, `.`, `*`, `>`, `/` or `\\`)"),
            ));
        }
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((user, host)) => (Some(user), host),
            None => (None, authority),
        };
        if host.is_empty() {
            return Err(bad("host", "the server is missing: nats://HOST:PORT/STREAM".into()));
        }
        let host = if host.contains(':') { host.to_string() } else { format!("{host}:4222") };
        let auth = match userinfo {
            None => Auth::None,
            Some(info) => match info.split_once(':') {
                Some((user, password)) => Auth::UserPassword(user.to_string(), password.to_string()),
                None => Auth::Token(info.to_string()),
            },
        };
        let mut parsed = NatsStreamUrl {
            host,
            stream: stream.to_string(),
            subject: stream.to_string(),
            group: None,
            consumer: None,
            ack_wait: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            dead_letter: format!("{stream}-dead"),
            duplicate_window: None,
            auth,
        };
        for (key, value) in query_pairs(query, bad)? {
            let number =
                |what: &str| value.parse::<u64>().map_err(|_| bad(key, format!("`{key}={value}` is not {what}")));
            let name = |what: &str| {
                if valid_name(value) {
                    Ok(value.to_string())
                } else {
                    Err(bad(key, format!("`{value}` is not a {what} name (no spaces, `.`, `*`, `>`, `/` or `\\`)")))
                }
            };
            match key {
                "group" => parsed.group = Some(name("JetStream consumer")?),
                "consumer" => parsed.consumer = Some(value.to_string()),
                "subject" => {
                    if value.contains(char::is_whitespace) || value.starts_with('.') || value.ends_with('.') {
                        return Err(bad(key, format!("`{value}` is not a NATS subject")));
                    }
                    parsed.subject = value.to_string();
                }
                "ack_wait_ms" => {
                    parsed.ack_wait = Some(Duration::from_millis(number("a number of milliseconds")?.max(1)));
                }
                "max_attempts" => {
                    parsed.max_attempts = u32::try_from(number("a count")?.max(1)).unwrap_or(u32::MAX);
                }
                "dead_letter" => parsed.dead_letter = name("JetStream stream")?,
                "duplicate_window_ms" => {
                    parsed.duplicate_window = Some(Duration::from_millis(number("a number of milliseconds")?.max(1)));
                }
                other => {
                    return Err(bad(
                        other,
                        format!(
                            "unknown parameter `{other}` (known: group, consumer, subject, ack_wait_ms, max_attempts, \
                             dead_letter, duplicate_window_ms)"
                        ),
                    ))
                }
            }
        }
        Ok(parsed)
    }

    /// The stream's name without credentials, `nats://host:port/stream`, used in lineage and
    /// errors.
    pub fn name(&self) -> String {
        format!("nats://{}/{}", self.host, self.stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_names_server_stream_consumer_and_worker() {
        let url = NatsStreamUrl::parse(
            "nats://user:secret@10.0.0.5:4333/ROWS?group=scorers&consumer=w1&subject=rows.in&ack_wait_ms=1500\
             &max_attempts=3&duplicate_window_ms=60000",
        )
        .expect("parse");
        assert_eq!(url.host, "10.0.0.5:4333");
        assert_eq!((url.stream.as_str(), url.subject.as_str()), ("ROWS", "rows.in"));
        assert_eq!((url.group.as_deref(), url.consumer.as_deref()), (Some("scorers"), Some("w1")));
        assert_eq!((url.ack_wait, url.max_attempts), (Some(Duration::from_millis(1500)), 3));
        assert_eq!(url.duplicate_window, Some(Duration::from_secs(60)));
        assert_eq!(url.dead_letter, "ROWS-dead");
        assert_eq!(url.name(), "nats://10.0.0.5:4333/ROWS");
        assert!(url.auth == Auth::UserPassword("user".into(), "secret".into()));
        assert!(!format!("{url:?}").contains("secret"), "{url:?}");

        let plain = NatsStreamUrl::parse("nats://localhost/out").expect("parse");
        assert_eq!((plain.host.as_str(), plain.subject.as_str()), ("localhost:4222", "out"));
        assert_eq!((plain.ack_wait, plain.duplicate_window), (None, None));
        assert!(NatsStreamUrl::parse("nats://s3cr3t@h/s").expect("token").auth == Auth::Token("s3cr3t".into()));
    }

    #[test]
    fn a_bad_url_names_the_bad_part_and_hides_the_credentials() {
        let cases = [
            ("redis://h/s", "(scheme)"),
            ("nats://h:1", "(stream)"),
            ("nats:///s", "(host)"),
            ("nats://h/a.b", "not a JetStream stream name"),
            ("nats://h/s?grup=g", "unknown parameter `grup`"),
            ("nats://h/s?max_attempts=many", "`max_attempts=many` is not a count"),
            ("nats://h/s?group", "`group` needs a value"),
            ("nats://h/s?group=a.b", "(group)"),
            ("nats://h/s?ack_wait_ms=soon", "(ack_wait_ms)"),
            ("nats://h/s?subject=a b", "not a NATS subject"),
        ];
        for (url, expected) in cases {
            let err = NatsStreamUrl::parse(url).expect_err(url).to_string();
            assert!(err.contains(expected), "{url}: {err}");
        }
        for url in ["nats://u:pw@h/s?x=1", "nats://tok3n@h/s?x=1"] {
            let err = NatsStreamUrl::parse(url).expect_err("unknown").to_string();
            assert!(!err.contains("pw") && !err.contains("tok3n"), "{err}");
        }
    }
}
