//! A `{"records": [{...}, ...]}` body read straight into a matrix, with no JSON tree.
//!
//! A JSON tree of named rows costs an allocation per key and per value of every row: a
//! 16 MiB body grew the server by about 130 MiB that way, before the matrix the model
//! needs was even built. Here a serde visitor walks the bytes once and writes each value
//! into its cell (numbers as they are, a categorical value as the index of its level, the
//! encoding [`Records::Matrix`](wharf_core::Records::Matrix) defines), so a request costs
//! the body, the matrix and the model's own work.
//!
//! Only bodies the core would accept take this path: every feature present once, no other
//! member, values of the right type, known levels. Anything else (a mistake to report, an
//! unusual shape) returns `None`, and the caller parses the body the general way, which
//! words the error exactly as before. So the answer to any body is unchanged; only its cost
//! is.

use std::fmt;

use ndarray::Array2;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use wharf_core::{format_number, FeatureKind, Signature};

/// The features (in signature order) and, for a score body, each record's target value.
pub struct RecordsMatrix {
    /// One row per record.
    pub matrix: Array2<f64>,
    /// The target's value of each record (empty without a target).
    pub targets: Vec<Value>,
}

/// Reads `body` as `{"records": [...]}` into a matrix; `None` when the body is anything but
/// valid records of every feature (and of `target`, when given) and nothing else.
pub fn records_matrix(body: &[u8], signature: &Signature, target: Option<&str>) -> Option<RecordsMatrix> {
    let width = signature.features.len();
    if width == 0
        || !signature.features.iter().all(|f| matches!(f.kind, FeatureKind::Numeric | FeatureKind::Categorical { .. }))
    {
        return None;
    }
    let mut parsed = Parsed { values: Vec::new(), targets: Vec::new(), rows: 0 };
    let mut de = serde_json::Deserializer::from_slice(body);
    BodySeed { signature, target, out: &mut parsed }.deserialize(&mut de).ok()?;
    de.end().ok()?;
    let matrix = Array2::from_shape_vec((parsed.rows, width), parsed.values).ok()?;
    Some(RecordsMatrix { matrix, targets: parsed.targets })
}

struct Parsed {
    values: Vec<f64>,
    targets: Vec<Value>,
    rows: usize,
}

/// Every refusal is the same: "take the general path".
fn refuse<E: de::Error>() -> E {
    E::custom("not a plain records body")
}

struct BodySeed<'a> {
    signature: &'a Signature,
    target: Option<&'a str>,
    out: &'a mut Parsed,
}

impl<'de> DeserializeSeed<'de> for BodySeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for BodySeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with records")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        match map.next_key_seed(KeySeed { signature: self.signature, target: None })? {
            Some(Key::Records) => {}
            _ => return Err(refuse()),
        }
        let mut seen = vec![false; self.signature.features.len()];
        map.next_value_seed(RecordsSeed {
            signature: self.signature,
            target: self.target,
            out: self.out,
            seen: &mut seen,
        })?;
        if map.next_key::<IgnoredAny>()?.is_some() || self.out.rows == 0 {
            return Err(refuse());
        }
        Ok(())
    }
}

struct RecordsSeed<'a> {
    signature: &'a Signature,
    target: Option<&'a str>,
    out: &'a mut Parsed,
    seen: &'a mut Vec<bool>,
}

impl<'de> DeserializeSeed<'de> for RecordsSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RecordsSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let (signature, target) = (self.signature, self.target);
        while seq
            .next_element_seed(RowSeed { signature, target, out: &mut *self.out, seen: &mut *self.seen })?
            .is_some()
        {
            self.out.rows += 1;
        }
        Ok(())
    }
}

struct RowSeed<'a> {
    signature: &'a Signature,
    target: Option<&'a str>,
    out: &'a mut Parsed,
    seen: &'a mut Vec<bool>,
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a record")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let start = self.out.values.len();
        self.out.values.resize(start + self.signature.features.len(), f64::NAN);
        self.seen.iter_mut().for_each(|s| *s = false);
        let mut target_seen = false;
        while let Some(key) = map.next_key_seed(KeySeed { signature: self.signature, target: self.target })? {
            match key {
                Key::Feature(j) => {
                    if std::mem::replace(&mut self.seen[j], true) {
                        return Err(refuse());
                    }
                    self.out.values[start + j] = map.next_value_seed(CellSeed(&self.signature.features[j].kind))?;
                }
                Key::Target if !target_seen => {
                    target_seen = true;
                    self.out.targets.push(map.next_value::<Value>()?);
                }
                _ => return Err(refuse()),
            }
        }
        if self.seen.iter().all(|s| *s) && target_seen == self.target.is_some() {
            Ok(())
        } else {
            Err(refuse())
        }
    }
}

enum Key {
    Records,
    Feature(usize),
    Target,
    Other,
}

/// A member name, matched without allocating.
struct KeySeed<'a> {
    signature: &'a Signature,
    target: Option<&'a str>,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }
    fn visit_str<E: de::Error>(self, name: &str) -> Result<Key, E> {
        Ok(if let Some(j) = self.signature.position(name) {
            Key::Feature(j)
        } else if self.target == Some(name) {
            Key::Target
        } else if name == "records" {
            Key::Records
        } else {
            Key::Other
        })
    }
}

/// One cell: a number (null is missing, `NaN`), or a categorical value as its level's index.
struct CellSeed<'a>(&'a FeatureKind);

impl<'de> DeserializeSeed<'de> for CellSeed<'_> {
    type Value = f64;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<f64, D::Error> {
        d.deserialize_any(self)
    }
}

impl CellSeed<'_> {
    /// A categorical value written as text, as the core compares it with the levels.
    fn level<E: de::Error>(&self, text: &str) -> Result<f64, E> {
        match self.0 {
            FeatureKind::Categorical { levels } => {
                levels.iter().position(|l| l == text).map(|p| p as f64).ok_or_else(refuse)
            }
            _ => Err(refuse()),
        }
    }

    fn number<E: de::Error>(&self, x: f64) -> Result<f64, E> {
        match self.0 {
            FeatureKind::Numeric => Ok(x),
            _ => self.level(&format_number(x)),
        }
    }
}

impl<'de> Visitor<'de> for CellSeed<'_> {
    type Value = f64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a feature value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<f64, E> {
        Ok(f64::NAN)
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<f64, E> {
        self.number(n as f64)
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<f64, E> {
        self.number(n as f64)
    }
    fn visit_f64<E: de::Error>(self, x: f64) -> Result<f64, E> {
        self.number(x)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<f64, E> {
        self.level(s)
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<f64, E> {
        self.level(if b { "true" } else { "false" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{parse_json, predict_records};
    use wharf_core::{Feature, Records, Task};

    fn signature() -> Signature {
        Signature {
            features: vec![
                Feature::numeric("x"),
                Feature::categorical("c", vec!["1".into(), "a".into(), "b".into(), "true".into()]),
            ],
            target: Some("y".into()),
            task: Task::Classification,
            classes: vec!["0".into(), "1".into()],
        }
    }

    #[test]
    fn plain_records_read_as_the_core_encodes_them() {
        let sig = signature();
        let body =
            br#"{"records": [{"x": 1.5, "c": "b"}, {"c": null, "x": null}, {"x": -2, "c": 1}, {"x": 0, "c": true}]}"#;
        let parsed = records_matrix(body, &sig, None).unwrap();
        let want = [[1.5, 2.0], [f64::NAN, f64::NAN], [-2.0, 0.0], [0.0, 3.0]];
        for (row, want) in parsed.matrix.rows().into_iter().zip(want) {
            for (got, want) in row.iter().zip(want) {
                assert!(got == &want || (got.is_nan() && want.is_nan()), "{got} vs {want}");
            }
        }
        // The general path accepts the same body.
        assert!(matches!(predict_records(parse_json(body).unwrap(), &sig), Ok(Records::Rows(_))));
        let scored = records_matrix(br#"{"records": [{"x": 1, "c": "a", "y": "1"}]}"#, &sig, Some("y")).unwrap();
        assert_eq!(scored.targets, vec![Value::String("1".into())]);
    }

    #[test]
    fn anything_the_core_would_word_goes_the_general_way() {
        let sig = signature();
        for body in [
            r#"{"records": []}"#,
            r#"{"records": [{"x": 1}]}"#,
            r#"{"records": [{"x": 1, "c": "a", "z": 0}]}"#,
            r#"{"records": [{"x": 1, "c": "a", "x": 2}]}"#,
            r#"{"records": [{"x": "1", "c": "a"}]}"#,
            r#"{"records": [{"x": 1, "c": "zzz"}]}"#,
            r#"{"records": [{"x": 1, "c": ["a"]}]}"#,
            r#"{"records": [{"x": 1, "c": "a"}], "extra": 1}"#,
            r#"{"instances": [[1, 0]]}"#,
            r#"{"records": [{"x": 1, "c": "a"}]} trailing"#,
            r#"{"records": [{"x": 1, "c": "a"}, 3]}"#,
            r#"{"records": {"x": 1}}"#,
            r#"[]"#,
            r#"{"records": [{"x": 1, "c": "a"}"#,
        ] {
            assert!(records_matrix(body.as_bytes(), &sig, None).is_none(), "{body}");
        }
        assert!(records_matrix(br#"{"records": [{"x": 1, "c": "a"}]}"#, &sig, Some("y")).is_none(), "target missing");
    }
}
