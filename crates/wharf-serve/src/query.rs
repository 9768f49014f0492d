//! Reading a request's query and path segments by hand, without serde: the model endpoints
//! read at most two query parameters, and deserializing every parameter into a map cost a
//! fifth of a 1-row request's handler time. The handlers and the request-metrics layer read
//! a request through these same functions, so both always agree on the version it asks for.

use std::borrow::Cow;

/// The value of query parameter `key`, decoded as a form (`+` is a space, `%XX` a byte,
/// bytes that are not UTF-8 replaced, so a bad value names no served version rather than
/// falling back to the default one); when the parameter is repeated, the last one counts.
pub(crate) fn param<'q>(query: Option<&'q str>, key: &str) -> Option<Cow<'q, str>> {
    // Pairs are found by bytes, last first, and split at ASCII bytes, so every piece is still
    // UTF-8: on a query of a few dozen bytes the `str` pattern searchers' set-up cost more
    // than the search (three lookups were about 1,500 instructions of a 1-row predict).
    let query = query?;
    let bytes = query.as_bytes();
    let mut end = bytes.len();
    loop {
        let start = bytes[..end].iter().rposition(|b| *b == b'&').map_or(0, |at| at + 1);
        let pair = &query[start..end];
        let (k, v) = match pair.bytes().position(|b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, ""),
        };
        // A key without escapes is itself decoded: compared as it is, with no decoding.
        let escaped = k.bytes().any(|b| b == b'+' || b == b'%');
        if if escaped { form_decoded(k) == key } else { k == key } {
            return Some(form_decoded(v));
        }
        end = start.checked_sub(1)?;
    }
}

fn form_decoded(text: &str) -> Cow<'_, str> {
    if !text.bytes().any(|b| b == b'+' || b == b'%') {
        return Cow::Borrowed(text);
    }
    let spaced = text.replace('+', " ");
    let bytes = decoded_bytes(&spaced).unwrap_or_else(|| spaced.into_bytes());
    Cow::Owned(String::from_utf8_lossy(&bytes).into_owned())
}

/// `text` with its `%XX` escapes decoded, as the router decodes a path segment
/// (`lead%40champion` is `lead@champion`); `None` when the result is not UTF-8. Allocates
/// only when there is an escape.
pub(crate) fn percent_decoded(text: &str) -> Option<Cow<'_, str>> {
    match decoded_bytes(text) {
        None => Some(Cow::Borrowed(text)),
        Some(bytes) => String::from_utf8(bytes).ok().map(Cow::Owned),
    }
}

/// The bytes `text`'s `%XX` escapes stand for; `None` when it has no `%` at all. A `%` not
/// followed by two hex digits stays as it is.
fn decoded_bytes(text: &str) -> Option<Vec<u8>> {
    if !text.as_bytes().contains(&b'%') {
        return None;
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok());
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(hi * 16 + lo);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_found_decoded_and_the_last_repeat_wins() {
        let q = Some("probabilities=array&version=champion");
        assert_eq!(param(q, "version").as_deref(), Some("champion"));
        assert_eq!(param(q, "probabilities").as_deref(), Some("array"));
        assert_eq!(param(q, "missing"), None);
        assert_eq!(param(None, "version"), None);
        assert_eq!(param(Some("version=1&version=2"), "version").as_deref(), Some("2"));
        assert_eq!(param(Some("version=a%40b+c"), "version").as_deref(), Some("a@b c"));
        assert_eq!(param(Some("ver%73ion=3"), "version").as_deref(), Some("3"));
        assert_eq!(param(Some("version"), "version").as_deref(), Some(""));
        assert_eq!(param(Some("versions=2&xversion=1"), "version"), None);
        assert_eq!(param(Some("version=%ff"), "version").as_deref(), Some("\u{fffd}"));
        assert_eq!(param(Some(""), "version"), None);
        assert_eq!(param(Some("&&version=1&"), "version").as_deref(), Some("1"));
        assert_eq!(param(Some("=x&version=é&"), "version").as_deref(), Some("é"));
    }

    #[test]
    fn escapes_are_decoded_and_bad_ones_kept() {
        assert_eq!(percent_decoded("lead%40champion").as_deref(), Some("lead@champion"));
        assert_eq!(percent_decoded("lead").as_deref(), Some("lead"));
        assert_eq!(percent_decoded("100%"), Some(Cow::Owned("100%".into())));
        assert_eq!(percent_decoded("a+b").as_deref(), Some("a+b"));
        assert_eq!(percent_decoded("%ff"), None);
    }
}
