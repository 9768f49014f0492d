//! A model's declared input fields: their types, ranges and levels, and where the model
//! finds its input in a record.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use wharf_core::json_type;

/// The JSON type a declared input field must have. The runner checks a field's type, not
/// only that it is present, so `"12"` never reaches a model expecting 12.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// A whole number (`3`, or `3.0`, which JSON writers often produce for integers).
    #[serde(alias = "integer")]
    Int,
    /// Any number.
    #[serde(alias = "number", alias = "double")]
    Float,
    /// A string.
    #[serde(alias = "string", alias = "text")]
    Str,
    /// `true` or `false`.
    #[serde(alias = "boolean")]
    Bool,
}

impl FieldType {
    /// `int`, `float`, `str` or `bool`.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Int => "int",
            FieldType::Float => "float",
            FieldType::Str => "str",
            FieldType::Bool => "bool",
        }
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One declared input field: its type, whether it must be there, and the values allowed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// The JSON type the value must have.
    #[serde(rename = "type")]
    pub ty: FieldType,
    /// When true (the default), the field must be present and not `null`. When false, an
    /// absent or `null` field passes and the model decides what it means (a Wharf model
    /// imputes a missing number with its training mean).
    #[serde(default = "yes")]
    pub required: bool,
    /// Smallest allowed number (inclusive), for `int` and `float`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Largest allowed number (inclusive), for `int` and `float`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// The allowed strings, for `str`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub levels: Option<Vec<String>>,
}

fn yes() -> bool {
    true
}

impl FieldSpec {
    /// A required field of type `ty`, any value of that type allowed.
    pub fn new(ty: FieldType) -> Self {
        FieldSpec { ty, required: true, min: None, max: None, levels: None }
    }
    /// A required whole number.
    pub fn int() -> Self {
        Self::new(FieldType::Int)
    }
    /// A required number.
    pub fn float() -> Self {
        Self::new(FieldType::Float)
    }
    /// A required string.
    pub fn str() -> Self {
        Self::new(FieldType::Str)
    }
    /// A required boolean.
    pub fn bool() -> Self {
        Self::new(FieldType::Bool)
    }
    /// Lets the field be absent or `null`.
    pub fn optional(mut self) -> Self {
        self.required = false;
        self
    }
    /// Allows only numbers in `min..=max`.
    pub fn range(mut self, min: f64, max: f64) -> Self {
        self.min = Some(min);
        self.max = Some(max);
        self
    }
    /// Allows only these strings.
    pub fn levels<I, S>(mut self, levels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.levels = Some(levels.into_iter().map(Into::into).collect());
        self
    }

    /// Checks one value (`None` when the field is absent). The error is a sentence about
    /// the value, without the field's name, which the caller adds.
    pub fn check(&self, value: Option<&Value>) -> Result<(), FieldProblem> {
        let value = match value {
            None | Some(Value::Null) if self.required => return Err(FieldProblem::Missing),
            None | Some(Value::Null) => return Ok(()),
            Some(v) => v,
        };
        let wrong = || FieldProblem::Invalid(format!("expected {}, found {}", self.ty, json_type(value)));
        match self.ty {
            FieldType::Int | FieldType::Float => {
                let x = value.as_f64().ok_or_else(wrong)?;
                if self.ty == FieldType::Int && x.fract() != 0.0 {
                    return Err(FieldProblem::Invalid(format!("expected int, found {value}")));
                }
                if let Some(min) = self.min.filter(|min| x < *min) {
                    return Err(FieldProblem::Invalid(format!("{value} is below the minimum {min}")));
                }
                if let Some(max) = self.max.filter(|max| x > *max) {
                    return Err(FieldProblem::Invalid(format!("{value} is above the maximum {max}")));
                }
            }
            FieldType::Str => {
                let s = value.as_str().ok_or_else(wrong)?;
                if let Some(levels) = self.levels.as_ref().filter(|l| !l.iter().any(|l| l == s)) {
                    return Err(FieldProblem::Invalid(format!("'{s}' is not one of {}", levels.join(", "))));
                }
            }
            FieldType::Bool => {
                value.as_bool().ok_or_else(wrong)?;
            }
        }
        Ok(())
    }

    /// The value the self-test ([`ModelSpec::self_test`](crate::ModelSpec::self_test)) feeds
    /// a field of this type (int 1, float 1.2, str `"lorem ipsum"`, bool true): a plain value
    /// any model should take, moved into the declared range or levels if it is outside, so
    /// the field check never rejects it.
    pub fn synthetic(&self) -> Value {
        match self.ty {
            FieldType::Int => {
                let x = self.clamp(1.0);
                Value::from(x.ceil() as i64)
            }
            FieldType::Float => serde_json::Number::from_f64(self.clamp(1.2)).map(Value::Number).unwrap_or(Value::Null),
            FieldType::Str => match self.levels.as_ref().and_then(|l| l.first()) {
                Some(level) => Value::String(level.clone()),
                None => Value::String("lorem ipsum".into()),
            },
            FieldType::Bool => Value::Bool(true),
        }
    }

    fn clamp(&self, x: f64) -> f64 {
        let x = self.min.map_or(x, |min| x.max(min));
        self.max.map_or(x, |max| x.min(max))
    }
}

/// Why one field failed its check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldProblem {
    /// A required field is absent or `null`.
    Missing,
    /// The value has the wrong type, or is outside the range or levels.
    Invalid(String),
}

/// Where a model finds its input in a record's `data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputSource {
    /// `data[name][version]`: each model (and each version of it) has its own slice, so two
    /// versions can take different inputs. The default.
    #[default]
    Slice,
    /// The whole `data` object, shared by every model reading it: for models that take the
    /// same features (two versions of one registered model, say).
    Shared,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_types_read_their_aliases() {
        let ty: FieldType = serde_json::from_value(json!("integer")).unwrap();
        assert_eq!(ty, FieldType::Int);
        let typo = serde_json::from_value::<FieldSpec>(json!({"type": "int", "mni": 0}));
        assert!(typo.unwrap_err().to_string().contains("mni"), "a misspelt check is refused, not ignored");
    }

    #[test]
    fn optional_fields_accept_absent_and_null_but_not_wrong_types() {
        let spec = FieldSpec::bool().optional();
        assert_eq!(spec.check(None), Ok(()));
        assert_eq!(spec.check(Some(&Value::Null)), Ok(()));
        assert_eq!(spec.check(Some(&json!(1))), Err(FieldProblem::Invalid("expected bool, found a number".into())));
        let levels = FieldSpec::str().levels(["a", "b"]);
        assert_eq!(levels.check(Some(&json!("c"))), Err(FieldProblem::Invalid("'c' is not one of a, b".into())));
    }
}
