//! What the broker adapters (Redis, NATS, Kafka) share: their URLs' common parts and the
//! result lines they write. One copy, so the adapters word their errors alike and a fix to
//! one reaches all.

// Without a broker feature only `redact` is used (by `connect`, for any URL).
#![cfg_attr(not(any(feature = "redis", feature = "nats", feature = "kafka")), allow(dead_code))]

use wharf_core::{Result, WharfError};

use crate::source::Delivery;

/// How a broker link waits between reconnection attempts: the project's one retry policy
/// (exponential backoff with full jitter, so workers that lost the same server do not come
/// back in lockstep), 50 ms doubling to 1 s, for at most `reconnect_for`. Every command a
/// link repeats is safe to repeat (reads, acknowledgements, de-duplicated writes), so the
/// count of retries is bounded only by the time.
#[allow(dead_code)] // unused when no broker feature is compiled in
pub(crate) fn reconnect_policy(reconnect_for: std::time::Duration) -> wharf_core::retry::RetryPolicy {
    wharf_core::retry::RetryPolicy::default()
        .max_retries(u32::MAX)
        .initial_delay(std::time::Duration::from_millis(50))
        .max_delay(std::time::Duration::from_secs(1))
        .max_elapsed(reconnect_for)
}

/// `url` with any password or token replaced, for error messages: the project's one
/// redaction rule ([`wharf_core::redact::url`]).
pub(crate) fn redact(url: &str) -> String {
    wharf_core::redact::url(url)
}

/// The `key=value` pairs of a URL's query; a key without a value is an error built by `bad`
/// (which names the URL and the part).
pub(crate) fn query_pairs(query: &str, bad: impl Fn(&str, String) -> WharfError) -> Result<Vec<(&str, &str)>> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !value.is_empty() => Ok((key, value)),
            _ => {
                let key = pair.split_once('=').map_or(pair, |(k, _)| k);
                Err(bad(key, format!("`{key}` needs a value ({key}=…)")))
            }
        })
        .collect()
}

/// The group and the consumer name a broker source needs, or an error naming the one that is
/// missing, with the URL shape as `example`.
pub(crate) fn group_and_consumer(
    name: &str,
    broker: &str,
    example: &str,
    group: &Option<String>,
    consumer: &Option<String>,
) -> Result<(String, String)> {
    let missing = |part: &str| {
        WharfError::invalid(format!("{name} ({part})"), format!("a {broker} source needs ?{part}=…: {example}"))
    };
    let group = group.clone().ok_or_else(|| missing("group"))?;
    let consumer = consumer.clone().ok_or_else(|| missing("consumer"))?;
    Ok((group, consumer))
}

/// The non-empty lines of a micro-batch's output.
pub(crate) fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty())
}

/// The `key` of a result line, which the job always writes: the input record's idempotency
/// key, by which results are matched to deliveries and de-duplicated.
pub(crate) fn result_key(line: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Keyed {
        key: String,
    }
    serde_json::from_slice::<Keyed>(line).ok().map(|k| k.key)
}

/// The acknowledgement tokens of `deliveries`; a delivery without one (from another kind of
/// source) is an error naming it, `what` being the broker's word for the token.
#[cfg_attr(not(any(feature = "redis", feature = "nats")), allow(dead_code))]
pub(crate) fn tokens(deliveries: &[Delivery], place: &str, what: &str) -> Result<Vec<String>> {
    deliveries
        .iter()
        .map(|d| {
            d.token.clone().ok_or_else(|| {
                WharfError::invalid(d.key.clone(), format!("{place}: the record has no {what} to acknowledge"))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden_and_query_pairs_need_values() {
        assert_eq!(redact("redis://u:pw@h:1/s"), "redis://***@h:1/s");
        assert_eq!(redact("nats://h/s"), "nats://h/s");
        let bad = |part: &str, message: String| WharfError::invalid(part.to_string(), message);
        assert_eq!(query_pairs("a=1&&b=x", bad).expect("pairs"), vec![("a", "1"), ("b", "x")]);
        for query in ["a=1&b", "b=", "b=&a=1"] {
            let err = query_pairs(query, bad).expect_err(query).to_string();
            assert!(err.contains("`b` needs a value"), "{query}: {err}");
        }
        assert_eq!(result_key(br#"{"id":1,"key":"rows@1-0"}"#), Some("rows@1-0".into()));
        assert_eq!(result_key(b"not json"), None);
        assert_eq!(lines(b"a\n\nb\n").collect::<Vec<_>>(), vec![b"a".as_slice(), b"b".as_slice()]);
    }
}
