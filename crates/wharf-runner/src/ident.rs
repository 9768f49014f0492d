//! How a model's result is named and filed: its `(name, version)` ([`DepRef`]) and its
//! status. Results, stores and specs all use these; they depend on nothing else here.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use wharf_core::WharfError;

/// Where a model is in its life. Draft models are being tested (a model built from a
/// development branch should be a draft) and are skipped unless the run includes drafts.
///
/// Written `draft` or `active`; `production` is accepted as another name for `active`, the
/// word the issue tracker uses. The default is `draft`, so a model reaches
/// production results only when someone says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being tested; skipped unless drafts are included.
    #[default]
    Draft,
    /// In production.
    #[serde(alias = "production")]
    Active,
}

impl Status {
    /// `draft` or `active`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Active => "active",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = WharfError;
    fn from_str(s: &str) -> Result<Self, WharfError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "draft" => Ok(Status::Draft),
            "active" | "production" => Ok(Status::Active),
            _ => Err(WharfError::invalid("status", format!("'{s}' is not a status (draft, active or production)"))),
        }
    }
}

/// A model's identity in results: `(name, version)`, written `name@version`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DepRef {
    /// Model name.
    pub name: String,
    /// Model version.
    pub version: String,
}

impl DepRef {
    /// `name@version`.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        DepRef { name: name.into(), version: version.into() }
    }
}

impl fmt::Display for DepRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

impl FromStr for DepRef {
    type Err = WharfError;
    /// Parses `name@version`; the version is everything after the last `@`.
    fn from_str(s: &str) -> Result<Self, WharfError> {
        match s.rsplit_once('@') {
            Some((name, version)) if !name.trim().is_empty() && !version.trim().is_empty() => {
                Ok(DepRef::new(name.trim(), version.trim()))
            }
            _ => Err(WharfError::invalid("depends_on", format!("'{s}' is not name@version"))),
        }
    }
}

impl<N: Into<String>, V: Into<String>> From<(N, V)> for DepRef {
    fn from((name, version): (N, V)) -> Self {
        DepRef::new(name, version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dependency_references_split_at_the_last_at() {
        let dep: DepRef = "team@lead@0.0.1".parse().unwrap();
        assert_eq!((dep.name.as_str(), dep.version.as_str()), ("team@lead", "0.0.1"));
        assert!("lead".parse::<DepRef>().is_err());
        assert!("lead@".parse::<DepRef>().is_err());
        assert!("@1".parse::<DepRef>().is_err());
    }

    #[test]
    fn statuses_read_their_aliases() {
        let status: Status = serde_json::from_value(json!("production")).unwrap();
        assert_eq!(status, Status::Active);
        assert_eq!(serde_json::to_value(status).unwrap(), json!("active"), "written back as active");
    }
}
