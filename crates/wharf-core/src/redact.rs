//! The one rule for secret-bearing values: what is a secret, and how it is shown.
//!
//! Every place that prints, logs or returns text that may hold a credential goes through
//! these functions, so the rule is written once:
//!
//! - a URL's userinfo (`user:password@`) becomes `***@`: HTTP clients send it as basic auth,
//!   and a token may sit in the user slot alone, so neither part is shown;
//! - a query parameter whose name names a credential ([`is_secret_key`]: `password`,
//!   `token`, `key`, `secret`, `auth`, …) keeps its name and loses its value
//!   (`?password=***`);
//! - a header (`Authorization: Bearer …`) keeps its name and loses its value;
//! - a configuration value under a credential's key (an API key, an admin token) is `***`.
//!
//! Free text (an error message from a library that embeds the URL it called) goes through
//! [`text`], which applies the URL rule to every URL it finds and masks `Bearer`/`Basic`
//! credentials.

use std::fmt;

/// What a masked value is shown as.
pub const MASK: &str = "***";

/// Words that make a key (a configuration key, a query parameter, a header) a credential.
const SECRET_WORDS: [&str; 7] = ["key", "token", "password", "passwd", "secret", "auth", "credential"];

/// Whether a key names a credential, whose value is never shown: `api_key`, `admin_token`,
/// `password`, `client_secret`, `auth_header`, `sslpassword`…
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|word| key.contains(word)) || key == "pwd" || key == "pass"
}

/// `url` with its userinfo and its credential query parameters masked. Text that is not a
/// URL (no `://`) is returned as it is, but for a `key=value&…` tail after `?`.
pub fn url(url: &str) -> String {
    // The userinfo ends at the last `@`: a password may hold `/`, `?` or `#` unencoded, and
    // showing too little of a path with an `@` in it costs nothing.
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let mut out = String::with_capacity(url.len());
    out.push_str(scheme);
    let rest = match rest.rfind('@') {
        Some(at) if !scheme.is_empty() => {
            out.push_str(MASK);
            &rest[at..]
        }
        _ => rest,
    };
    let (before_fragment, fragment) = match rest.find('#') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match before_fragment.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            out.push_str(&query_pairs(query));
        }
        None => out.push_str(before_fragment),
    }
    out.push_str(fragment);
    out
}

/// `a=1&password=x` → `a=1&password=***`.
fn query_pairs(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret_key(name) => format!("{name}={MASK}"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A header line `Name: value` with its value masked (the name stays, so one can see which
/// credential is configured). Text without a colon is masked whole.
pub fn header(header: &str) -> String {
    match header.split_once(':') {
        Some((name, _)) => format!("{}: {MASK}", name.trim()),
        None => MASK.to_string(),
    }
}

/// `value`, the value of configuration key `key`, as it may be shown: `***` under a
/// credential's key (a header keeps its name), else with every URL in it masked.
pub fn value(key: &str, value: &str) -> String {
    if is_secret_key(key) {
        if key.to_ascii_lowercase().contains("header") && value.contains(':') {
            header(value)
        } else {
            MASK.to_string()
        }
    } else {
        text(value)
    }
}

/// Free text with every URL in it masked by [`url`], and the credential after `Bearer `
/// or `Basic ` masked: for messages built by libraries that embed what they were given.
pub fn text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        // The scheme: the letters, digits, `+`, `-` and `.` just before `://`.
        let start = rest[..i]
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            .last()
            .map_or(i, |(j, _)| j);
        let end = rest[i..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`' | ')'))
            .map_or(rest.len(), |j| i + j);
        out.push_str(&rest[..start]);
        out.push_str(&url(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    mask_schemes(&out)
}

/// Masks the word after `Bearer ` / `Basic ` (any case).
fn mask_schemes(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut i = 0;
    while i < text.len() {
        let found = ["bearer ", "basic "].iter().find(|s| lower[i..].starts_with(**s));
        match found {
            Some(scheme) if i == 0 || !lower.as_bytes()[i - 1].is_ascii_alphanumeric() => {
                let value_start = i + scheme.len();
                let value_end = text[value_start..]
                    .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ')'))
                    .map_or(text.len(), |j| value_start + j);
                if value_end > value_start {
                    out.push_str(&text[last..value_start]);
                    out.push_str(MASK);
                    last = value_end;
                }
                i = value_end.max(value_start);
            }
            _ => i += text[i..].chars().next().map_or(1, char::len_utf8),
        }
    }
    out.push_str(&text[last..]);
    out
}

/// A value that is shown as `***` by both `Debug` and `Display`, so it can sit in a struct
/// that derives `Debug`, or in a tracing span, without ever being printed.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Redacted<T>(pub T);

impl<T> Redacted<T> {
    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl<T> fmt::Display for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_userinfo_and_credential_parameters() {
        assert_eq!(url("http://u:pw@h:5000/x"), "http://***@h:5000/x");
        assert_eq!(url("redis://:pw@h/0"), "redis://***@h/0");
        assert_eq!(url("https://tok@h"), "https://***@h");
        assert_eq!(
            url("postgres://me@db/x?sslmode=require&password=pw"),
            "postgres://***@db/x?sslmode=require&password=***"
        );
        assert_eq!(url("http://h/p?api_key=k&Token=t&a=b#f"), "http://h/p?api_key=***&Token=***&a=b#f");
        assert_eq!(url("http://u:p/s?s#s@h/x"), "http://***@h/x", "a password with URL delimiters in it");
        assert_eq!(url("sqlite://results.db"), "sqlite://results.db");
        assert_eq!(url("not a url"), "not a url");
    }

    #[test]
    fn text_masks_every_url_and_scheme_credential() {
        let t = text("error sending request for url (http://u:pw@h/api?x=1&secret=s): Bearer abc, basic Zm9v");
        assert_eq!(t, "error sending request for url (http://***@h/api?x=1&secret=***): Bearer ***, basic ***");
        assert_eq!(text("'mlflow://a:b@c' is not a URL"), "'mlflow://***@c' is not a URL");
        assert_eq!(text("plain words, no secrets"), "plain words, no secrets");
        assert_eq!(text("ünïcode bearer"), "ünïcode bearer");
    }

    #[test]
    fn values_follow_their_key() {
        assert_eq!(value("admin_token", "t"), MASK);
        assert_eq!(value("auth_header", "X-Api-Key: k"), "X-Api-Key: ***");
        assert_eq!(value("uri", "http://u:p@h"), "http://***@h");
        assert_eq!(value("addr", "127.0.0.1:8080"), "127.0.0.1:8080");
        assert!(is_secret_key("API_KEY") && is_secret_key("sslpassword") && !is_secret_key("uri"));
        assert_eq!(format!("{:?} {}", Redacted("s"), Redacted("s")), "*** ***");
    }
}
