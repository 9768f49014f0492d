//! Built-in summary functions over one numeric output field of each dependency, so a
//! `models.toml` can pick a winning score without Rust code.
//!
//! | kind | result |
//! |---|---|
//! | `max`, `min` | `{"value": x, "model": name, "version": v}` — the dependency holding the extreme (the first on a tie) |
//! | `argmax`, `argmin` | the same (aliases that read better when the model is what matters) |
//! | `mean`, `sum` | `{"value": x}` |
//!
//! A dependency whose output lacks the field, or holds something other than a number, makes
//! the summary's result a `model_failed` error naming the dependency and the field.

use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use wharf_core::WharfError;

use crate::ident::DepRef;
use crate::scorer::BoxError;
use crate::summary::{SummaryFn, SummaryInput};

/// A built-in summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Builtin {
    /// The largest value, with the dependency that gave it.
    #[serde(alias = "argmax")]
    Max,
    /// The smallest value, with the dependency that gave it.
    #[serde(alias = "argmin")]
    Min,
    /// The mean of the values.
    Mean,
    /// The sum of the values.
    Sum,
}

impl FromStr for Builtin {
    type Err = WharfError;
    fn from_str(s: &str) -> Result<Self, WharfError> {
        match s {
            "max" | "argmax" => Ok(Builtin::Max),
            "min" | "argmin" => Ok(Builtin::Min),
            "mean" => Ok(Builtin::Mean),
            "sum" => Ok(Builtin::Sum),
            _ => Err(WharfError::invalid("kind", format!("'{s}' is not a built-in summary (max, min, mean, sum)"))),
        }
    }
}

impl Builtin {
    /// The summary function applying this built-in to `field` of every dependency.
    pub fn function(self, field: impl Into<String>) -> SummaryFn {
        let field = field.into();
        Arc::new(move |input: &SummaryInput<'_>| self.apply(input, &field))
    }

    fn apply(self, input: &SummaryInput<'_>, field: &str) -> Result<Value, BoxError> {
        let mut values: Vec<(&DepRef, f64)> = Vec::new();
        for (dep, output) in input.dependencies() {
            let x = output.get(field).and_then(Value::as_f64).ok_or_else(|| -> BoxError {
                match output.get(field) {
                    None => format!("{dep} has no output field '{field}'").into(),
                    Some(v) => format!("{dep} output '{field}' is {v}, not a number").into(),
                }
            })?;
            values.push((dep, x));
        }
        if values.is_empty() {
            return Err("no dependencies to summarise".into());
        }
        let pick = |better: fn(f64, f64) -> bool| {
            let mut best = values[0];
            for &(dep, x) in &values[1..] {
                if better(x, best.1) {
                    best = (dep, x);
                }
            }
            json!({"value": best.1, "model": best.0.name, "version": best.0.version})
        };
        let sum: f64 = values.iter().map(|(_, x)| x).sum();
        Ok(match self {
            Builtin::Max => pick(|a, b| a > b),
            Builtin::Min => pick(|a, b| a < b),
            Builtin::Mean => json!({"value": sum / values.len() as f64}),
            Builtin::Sum => json!({ "value": sum }),
        })
    }
}
