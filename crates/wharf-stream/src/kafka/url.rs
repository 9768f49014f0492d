//! The `kafka://` topic URL: brokers, topic, consumer group and settings.

use std::time::Duration;

use wharf_core::{Result, WharfError};

use crate::broker::query_pairs;

use super::DEFAULT_SESSION_TIMEOUT;

/// A parsed `kafka://` topic URL (see the [module docs](super)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaTopicUrl {
    /// The bootstrap servers, `host:port` separated by commas.
    pub brokers: String,
    /// The topic.
    pub topic: String,
    /// The consumer group (sources).
    pub group: Option<String>,
    /// This worker's name within the group (sources); the client id.
    pub consumer: Option<String>,
    /// How long a silent consumer keeps its partitions before they are reassigned.
    pub session_timeout: Duration,
    /// How often a consumer tells the group it is alive, which is also how soon it hears
    /// that the group is rebalancing (a joining or leaving worker); `None` is a third of
    /// the session timeout, at most 3 s (librdkafka's default).
    pub heartbeat_interval: Option<Duration>,
    /// Where messages that cannot be scored at all (no value) go.
    pub dead_letter: String,
}

impl KafkaTopicUrl {
    /// Parses `url`; an error names the part that is wrong.
    pub fn parse(url: &str) -> Result<KafkaTopicUrl> {
        let bad = |part: &str, message: String| WharfError::invalid(format!("{url} ({part})"), message);
        let rest = url
            .strip_prefix("kafka://")
            .ok_or_else(|| bad("scheme", "a Kafka topic URL starts with kafka://".into()))?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, topic) = rest.split_once('/').unwrap_or((rest, ""));
        if topic.is_empty() {
            return Err(bad("topic", "name the topic after the brokers: kafka://HOST:PORT/TOPIC".into()));
        }
        if authority.contains('@') {
            return Err(bad(
                "credentials",
                "credentials in the URL are not supported; this build speaks plaintext Kafka only".into(),
            ));
        }
        let mut brokers = Vec::new();
        for host in authority.split(',') {
            if host.is_empty() {
                return Err(bad("brokers", "a broker is missing: kafka://HOST:PORT[,HOST:PORT…]/TOPIC".into()));
            }
            brokers.push(if host.contains(':') { host.to_string() } else { format!("{host}:9092") });
        }
        let mut parsed = KafkaTopicUrl {
            brokers: brokers.join(","),
            topic: topic.to_string(),
            group: None,
            consumer: None,
            session_timeout: DEFAULT_SESSION_TIMEOUT,
            heartbeat_interval: None,
            dead_letter: format!("{topic}.dead"),
        };
        for (key, value) in query_pairs(query, bad)? {
            match key {
                "group" => parsed.group = Some(value.to_string()),
                "consumer" => parsed.consumer = Some(value.to_string()),
                "session_timeout_ms" => parsed.session_timeout = millis(key, value, &bad)?,
                "heartbeat_interval_ms" => parsed.heartbeat_interval = Some(millis(key, value, &bad)?),
                "dead_letter" => parsed.dead_letter = value.to_string(),
                other => {
                    return Err(bad(
                        other,
                        format!(
                            "unknown parameter `{other}` (known: group, consumer, session_timeout_ms, \
                             heartbeat_interval_ms, dead_letter)"
                        ),
                    ))
                }
            }
        }
        if let Some(heartbeat) = parsed.heartbeat_interval {
            if heartbeat >= parsed.session_timeout {
                return Err(bad(
                    "heartbeat_interval_ms",
                    format!(
                        "the heartbeat ({} ms) must be shorter than the session timeout ({} ms), or the group \
                         drops the worker between two heartbeats",
                        heartbeat.as_millis(),
                        parsed.session_timeout.as_millis()
                    ),
                ));
            }
        }
        Ok(parsed)
    }

    /// The heartbeat interval the consumer uses (see [`heartbeat_interval`](Self::heartbeat_interval)).
    pub fn heartbeat(&self) -> Duration {
        self.heartbeat_interval.unwrap_or_else(|| (self.session_timeout / 3).min(Duration::from_secs(3)))
    }

    /// The topic's name for lineage and errors: `kafka://brokers/topic`.
    pub fn name(&self) -> String {
        format!("kafka://{}/{}", self.brokers, self.topic)
    }
}

/// A positive number of milliseconds, for the parameter `key`.
fn millis(key: &str, value: &str, bad: &impl Fn(&str, String) -> WharfError) -> Result<Duration> {
    let ms = value.parse::<u64>().map_err(|_| bad(key, format!("`{key}={value}` is not a number of milliseconds")))?;
    Ok(Duration::from_millis(ms.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_names_brokers_topic_and_group() {
        let url = KafkaTopicUrl::parse("kafka://k1:19092,k2/rows?group=scorers&consumer=w1&session_timeout_ms=6000")
            .expect("parse");
        assert_eq!(url.brokers, "k1:19092,k2:9092");
        assert_eq!(url.topic, "rows");
        assert_eq!((url.group.as_deref(), url.consumer.as_deref()), (Some("scorers"), Some("w1")));
        assert_eq!(url.session_timeout, Duration::from_millis(6000));
        assert_eq!(url.heartbeat(), Duration::from_millis(2000), "a third of the session timeout");
        let fast = KafkaTopicUrl::parse("kafka://k1/rows?heartbeat_interval_ms=250").expect("parse");
        assert_eq!(fast.heartbeat(), Duration::from_millis(250));
        let default = KafkaTopicUrl::parse("kafka://k1/rows").expect("parse");
        assert_eq!(default.heartbeat(), Duration::from_secs(3), "librdkafka's default, at most");
        assert_eq!(url.dead_letter, "rows.dead");
        assert_eq!(url.name(), "kafka://k1:19092,k2:9092/rows");
    }

    #[test]
    fn a_bad_url_names_the_bad_part() {
        let cases = [
            ("http://h/t", "(scheme)"),
            ("kafka://h:1", "(topic)"),
            ("kafka://h,/t", "(brokers)"),
            ("kafka://u:pw@h/t", "(credentials)"),
            ("kafka://h/t?grp=g", "unknown parameter `grp`"),
            ("kafka://h/t?session_timeout_ms=soon", "is not a number of milliseconds"),
            ("kafka://h/t?group", "`group` needs a value"),
            ("kafka://h/t?heartbeat_interval_ms=soon", "is not a number of milliseconds"),
            ("kafka://h/t?session_timeout_ms=1000&heartbeat_interval_ms=1000", "must be shorter"),
        ];
        for (url, expected) in cases {
            let err = KafkaTopicUrl::parse(url).expect_err(url).to_string();
            assert!(err.contains(expected), "{url}: {err}");
        }
    }
}
