//! Request bodies → [`Records`], with a [`Problem`] naming the failing field otherwise.
//!
//! The body is read as bytes and parsed here rather than by an extractor, so every failure —
//! wrong content type, malformed JSON, wrong shape — gets the same problem+json answer.

use axum::http::{header, HeaderMap, StatusCode};
use ndarray::Array2;
use serde_json::Value;
use wharf_core::json_type;
use wharf_core::{excerpt, format_number, FeatureKind, Records, Row, Signature, Task};

use crate::problem::Problem;

/// Refuses anything but a JSON body (`application/json`, `application/*+json`).
pub fn require_json(headers: &HeaderMap) -> Result<(), Problem> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let raw = content_type.as_bytes();
    let mime = raw[..raw.iter().position(|b| *b == b';').unwrap_or(raw.len())].trim_ascii();
    // Compared without lower-casing a copy: media types are case-insensitive (RFC 9110).
    let (head, tail) = ("application/".as_bytes(), "+json".as_bytes());
    let json = mime.eq_ignore_ascii_case(b"application/json")
        || (mime.len() >= head.len() + tail.len()
            && mime[..head.len()].eq_ignore_ascii_case(head)
            && mime[mime.len() - tail.len()..].eq_ignore_ascii_case(tail));
    if json {
        Ok(())
    } else {
        let shown = if content_type.is_empty() { "none" } else { content_type };
        Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported media type",
            format!("expected Content-Type: application/json, found {shown}"),
        ))
    }
}

/// Parses the body as JSON. `NaN` and `Infinity` are not JSON and end here.
pub fn parse_json(body: &[u8]) -> Result<Value, Problem> {
    serde_json::from_slice(body).map_err(|e| {
        Problem::new(StatusCode::BAD_REQUEST, "Malformed JSON", format!("the body is not valid JSON: {e}"))
            .with("line", e.line().into())
            .with("column", e.column().into())
    })
}

/// The predict body `{"instances": [[number, ...], ...]}` of an all-numeric model, read
/// straight from the bytes into a matrix, or `None` for any other body.
///
/// Most predict traffic has exactly this shape, and going through a JSON tree costs an
/// allocation per number plus a second pass; here each number is checked against JSON's
/// grammar and converted with correct rounding, in place ([`Scanner::number`]). On
/// `None` the caller parses the body the general way, which also words every error, so a
/// body this path does not take (a `null`, a missing value, a wrong row length, whitespace
/// in odd places, malformed JSON) behaves exactly as before.
pub fn numeric_instances(body: &[u8], signature: &Signature) -> Option<Array2<f64>> {
    let width = signature.features.len();
    if width == 0 || signature.features.iter().any(|f| !matches!(f.kind, FeatureKind::Numeric)) {
        return None;
    }
    // No UTF-8 check: any byte outside JSON's structure and numbers ends this path.
    let mut s = Scanner { bytes: body, at: 0 };
    s.expect(b'{')?;
    s.expect_literal(b"\"instances\"")?;
    s.expect(b':')?;
    s.expect(b'[')?;
    // A 17-digit float and its comma take about 20 bytes.
    let mut values = Vec::with_capacity(body.len() / 20 + width);
    let mut rows = 0;
    loop {
        s.expect(b'[')?;
        for j in 0..width {
            values.push(s.number()?);
            s.expect(if j + 1 < width { b',' } else { b']' })?;
        }
        rows += 1;
        match s.next()? {
            b',' => continue,
            b']' => break,
            _ => return None,
        }
    }
    s.expect(b'}')?;
    s.skip_whitespace();
    if s.at != body.len() {
        return None;
    }
    Array2::from_shape_vec((rows, width), values).ok()
}

/// A cursor over a JSON body, for [`numeric_instances`] (and the v2 protocol's tensor data,
/// whose numbers must read exactly as these do).
pub(crate) struct Scanner<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) at: usize,
}

impl Scanner<'_> {
    pub(crate) fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte that is not whitespace.
    pub(crate) fn next(&mut self) -> Option<u8> {
        self.skip_whitespace();
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    pub(crate) fn expect(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    pub(crate) fn expect_literal(&mut self, want: &[u8]) -> Option<()> {
        self.skip_whitespace();
        let end = self.at.checked_add(want.len())?;
        (self.bytes.get(self.at..end)? == want).then(|| self.at = end)
    }

    /// A JSON number (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`) that is a finite f64,
    /// correctly rounded ([`crate::number`]). A token that goes on with more number
    /// characters (`01`, `1e5e5`) or is not finite (`1e400`) is refused here, so the
    /// general path words the error.
    pub(crate) fn number(&mut self) -> Option<f64> {
        self.skip_whitespace();
        let (x, len) = crate::number::read(self.bytes.get(self.at..)?)?;
        self.at += len;
        Some(x)
    }
}

/// Takes the body's one member (`records` or `instances`) and refuses any other.
fn members(body: Value, allowed: &[&str]) -> Result<(String, Value), Problem> {
    let Value::Object(map) = body else {
        return Err(Problem::invalid("", format!("expected a JSON object with {}", allowed.join(" or "))));
    };
    if let Some(extra) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(Problem::invalid(extra.clone(), format!("unknown member; expected {}", allowed.join(" or "))));
    }
    if map.len() != 1 {
        return Err(Problem::invalid("", format!("expected exactly one of {}", allowed.join(", "))));
    }
    map.into_iter().next().ok_or_else(|| Problem::invalid("", "empty body"))
}

fn non_empty_array(key: &str, value: Value) -> Result<Vec<Value>, Problem> {
    match value {
        Value::Array(items) if items.is_empty() => Err(Problem::invalid(key, "at least one record is required")),
        Value::Array(items) => Ok(items),
        _ => Err(Problem::invalid(key, "expected an array")),
    }
}

fn rows(key: &str, items: Vec<Value>) -> Result<Vec<Row>, Problem> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Object(row) => Ok(row),
            _ => Err(Problem::invalid(format!("{key}[{i}]"), "expected an object of feature values")),
        })
        .collect()
}

/// A predict body: `{"records": [{...}]}` or `{"instances": [[...]]}`.
pub fn predict_records(body: Value, signature: &Signature) -> Result<Records<'static>, Problem> {
    let (key, value) = members(body, &["records", "instances"])?;
    let items = non_empty_array(&key, value)?;
    if key == "records" {
        return Ok(Records::Rows(rows(&key, items)?));
    }
    let width = signature.features.len();
    let mut matrix = Array2::<f64>::zeros((items.len(), width));
    for (i, item) in items.into_iter().enumerate() {
        let Value::Array(cells) = item else {
            return Err(Problem::invalid(format!("instances[{i}]"), "expected an array of feature values"));
        };
        if cells.len() != width {
            let names: Vec<&str> = signature.feature_names().collect();
            return Err(Problem::invalid(
                format!("instances[{i}]"),
                format!("expected {width} values ({}), found {}", names.join(", "), cells.len()),
            ));
        }
        for (j, (cell, feature)) in cells.iter().zip(&signature.features).enumerate() {
            let path = || format!("instances[{i}][{j}]");
            matrix[(i, j)] = match (cell, &feature.kind) {
                (Value::Null, _) => f64::NAN,
                (Value::Number(n), FeatureKind::Numeric) => n.as_f64().unwrap_or(f64::NAN),
                (Value::String(s), FeatureKind::Categorical { levels }) => {
                    levels.iter().position(|l| l == s).map(|p| p as f64).ok_or_else(|| {
                        Problem::invalid(path(), format!("unknown level '{}' of '{}'", excerpt(s), feature.name))
                    })?
                }
                // A number for a categorical feature is a level index, as in a matrix.
                (Value::Number(n), FeatureKind::Categorical { .. }) => n.as_f64().unwrap_or(f64::NAN),
                (other, FeatureKind::Numeric) => {
                    return Err(Problem::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "Schema mismatch",
                        format!("'{}' expects a number, found {}", feature.name, json_type(other)),
                    )
                    .at(path()))
                }
                (other, FeatureKind::Categorical { .. }) => {
                    return Err(Problem::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "Schema mismatch",
                        format!("'{}' expects a level name, found {}", feature.name, json_type(other)),
                    )
                    .at(path()))
                }
                (_, _) => {
                    return Err(Problem::invalid(
                        path(),
                        format!("'{}' has a feature type that positional instances cannot carry", feature.name),
                    ))
                }
            };
        }
    }
    Ok(Records::Matrix(matrix.into()))
}

/// The truth of a score body.
pub enum Truth {
    /// Class indices into the signature's classes.
    Classes(Vec<u32>),
    /// Numbers.
    Values(Vec<f64>),
}

/// A score body: `{"records": [{..., target: value}]}` → features and truth.
pub fn score_records(body: Value, signature: &Signature) -> Result<(Records<'static>, Truth), Problem> {
    let target = signature.target.clone().ok_or_else(|| {
        Problem::new(StatusCode::BAD_REQUEST, "Not supported", "the model has no target, so it cannot be scored")
    })?;
    if signature.task == Task::Clustering {
        return Err(Problem::new(StatusCode::BAD_REQUEST, "Not supported", "a clustering model cannot be scored"));
    }
    let (key, value) = members(body, &["records"])?;
    let mut rows = rows(&key, non_empty_array(&key, value)?)?;
    // Lazily, so a record's missing target and a bad class are found in record order.
    let labels = rows.iter_mut().enumerate().map(|(i, row)| {
        row.remove(&target).ok_or_else(|| Problem::invalid(format!("records[{i}].{target}"), "missing target value"))
    });
    let truth = truth(signature, labels)?;
    Ok((Records::Rows(rows), truth))
}

/// The truth of a score body from each record's target value.
pub fn truth(
    signature: &Signature,
    labels: impl IntoIterator<Item = Result<Value, Problem>>,
) -> Result<Truth, Problem> {
    let target = signature.target.as_deref().unwrap_or_default();
    let mut classes = Vec::new();
    let mut values = Vec::new();
    for (i, label) in labels.into_iter().enumerate() {
        let label = label?;
        let path = || format!("records[{i}].{target}");
        match signature.task {
            Task::Classification => {
                let text = match &label {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => format_number(n.as_f64().unwrap_or(f64::NAN)),
                    Value::Bool(b) => b.to_string(),
                    other => {
                        return Err(Problem::invalid(path(), format!("expected a class, found {}", json_type(other))))
                    }
                };
                let index = signature.classes.iter().position(|c| *c == text).ok_or_else(|| {
                    Problem::invalid(
                        path(),
                        format!(
                            "class '{}' was not seen in training ({})",
                            excerpt(&text),
                            signature.classes.join(", ")
                        ),
                    )
                })?;
                classes.push(index as u32);
            }
            _ => match label.as_f64() {
                Some(x) => values.push(x),
                None => {
                    return Err(Problem::invalid(path(), format!("expected a number, found {}", json_type(&label))))
                }
            },
        }
    }
    Ok(if signature.task == Task::Classification { Truth::Classes(classes) } else { Truth::Values(values) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wharf_core::Feature;

    #[test]
    fn json_media_types_are_matched_without_regard_to_case() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().expect("a header value"));
            require_json(&headers).map_err(|p| p.status)
        };
        for accepted in
            ["application/json", "Application/JSON; charset=utf-8", " application/vnd.api+JSON ", "application/+json"]
        {
            assert_eq!(with(accepted), Ok(()), "{accepted}");
        }
        for refused in ["text/plain", "application/jsonx", "text/x+json", "application+json", "json", ""] {
            assert_eq!(with(refused), Err(StatusCode::UNSUPPORTED_MEDIA_TYPE), "{refused}");
        }
        assert_eq!(require_json(&HeaderMap::new()).map_err(|p| p.status), Err(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }

    fn signature(width: usize) -> Signature {
        Signature {
            features: (0..width).map(|i| Feature::numeric(format!("f{i}"))).collect(),
            target: None,
            task: Task::Classification,
            classes: vec!["0".into(), "1".into()],
        }
    }

    #[test]
    fn numeric_instances_read_like_the_json_tree() {
        let sig = signature(3);
        let body = br#" { "instances" : [ [1, -2.5e-3, 0.1] ,[ 3.0000000000000004, 1E2, -0 ]
            ] } "#;
        let fast = numeric_instances(body, &sig).unwrap();
        let Records::Matrix(slow) = predict_records(parse_json(body).unwrap(), &sig).unwrap() else {
            panic!("instances make a matrix")
        };
        assert_eq!(fast, slow);
        // Correctly rounded: the shortest round-trip text of a float gives back that float.
        let x = 0.1f64 + 0.2;
        let body = format!(r#"{{"instances": [[{x:?}, {:?}, {:?}]]}}"#, 1e-300, f64::MAX);
        assert_eq!(numeric_instances(body.as_bytes(), &sig).unwrap().row(0).to_vec(), [x, 1e-300, f64::MAX]);
    }

    #[test]
    fn numbers_read_to_the_same_bits_as_the_standard_parser() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let mut texts: Vec<String> = ["0", "-0", "0.0", "-0.0e-5", "1e-400", "2.2250738585072011e-308", "4.9e-324"]
            .iter()
            .map(|t| t.to_string())
            .collect();
        for _ in 0..20_000 {
            let bits = next();
            let x = f64::from_bits(bits);
            if x.is_finite() {
                texts.push(format!("{x:?}"));
                texts.push(format!("{x:e}"));
            }
            // Long mantissas and halfway cases: 1 to 40 digits, a fraction, an exponent.
            let digits = 1 + (next() % 40) as usize;
            let mut t: String = (0..digits).map(|_| char::from(b'0' + (next() % 10) as u8)).collect();
            if t.len() > 1 {
                t = t.trim_start_matches('0').to_string();
                if t.is_empty() {
                    t.push('0');
                }
            }
            if next() % 2 == 0 {
                t.push_str(&format!(".{}", next() % 1_000_000_007));
            }
            t.push_str(&format!("e{}", (next() % 700) as i64 - 350));
            texts.push(t);
        }
        for text in &texts {
            let mut s = Scanner { bytes: text.as_bytes(), at: 0 };
            let standard = text.parse::<f64>().ok().filter(|x| x.is_finite());
            assert_eq!(s.number().map(f64::to_bits), standard.map(f64::to_bits), "{text}");
        }
    }

    #[test]
    fn anything_unusual_is_left_to_the_general_path() {
        let sig = signature(2);
        for body in [
            r#"{"instances": [[1, null]]}"#,
            r#"{"instances": [[1, 2, 3]]}"#,
            r#"{"instances": [[1]]}"#,
            r#"{"instances": []}"#,
            r#"{"instances": [[1, 2]], "extra": 1}"#,
            r#"{"records": [{"f0": 1, "f1": 2}]}"#,
            r#"{"instances": [[1, 2]]} x"#,
            r#"{"instances": [[01, 2]]}"#,
            r#"{"instances": [[1., 2]]}"#,
            r#"{"instances": [[.5, 2]]}"#,
            r#"{"instances": [[1e, 2]]}"#,
            r#"{"instances": [[1.e5, 2]]}"#,
            r#"{"instances": [[-.5, 2]]}"#,
            r#"{"instances": [[-, 2]]}"#,
            r#"{"instances": [[1e+, 2]]}"#,
            r#"{"instances": [[1-2, 2]]}"#,
            r#"{"instances": [[1.2.3, 2]]}"#,
            r#"{"instances": [[-01, 2]]}"#,
            r#"{"instances": [[+1, 2]]}"#,
            r#"{"instances": [[1e400, 2]]}"#,
            r#"{"instances": [[NaN, 2]]}"#,
            r#"{"instances": [["1", 2]]}"#,
            r#"{"instances": [[1, 2],]}"#,
            r#"{"instances": [[1, 2]"#,
            "",
        ] {
            assert_eq!(numeric_instances(body.as_bytes(), &sig), None, "{body}");
        }
        let categorical =
            Signature { features: vec![Feature::numeric("a"), Feature::categorical("b", vec!["x".into()])], ..sig };
        assert_eq!(numeric_instances(br#"{"instances": [[1, 0]]}"#, &categorical), None);
    }
}
