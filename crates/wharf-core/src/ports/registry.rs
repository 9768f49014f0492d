//! `RegistryPort`: named, versioned, aliased model storage.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Model, Result, Signature, WharfError};

/// A model version number: 1, 2, 3, … per model name, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Version(pub u64);

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::str::FromStr for Version {
    type Err = WharfError;
    fn from_str(s: &str) -> Result<Self> {
        s.parse::<u64>()
            .ok()
            .filter(|v| *v > 0)
            .map(Version)
            .ok_or_else(|| WharfError::invalid("version", format!("'{s}' is not a version number (1, 2, …)")))
    }
}

/// Which version of a model to load.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Selector {
    /// The highest version.
    Latest,
    /// A version number.
    Version(Version),
    /// The version an alias points at.
    Alias(String),
}

impl Selector {
    /// Parses `latest`, a version number, or an alias name.
    pub fn parse(s: &str) -> Result<Selector> {
        let s = s.trim();
        if s.is_empty() || s == "latest" {
            Ok(Selector::Latest)
        } else if s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Selector::Version(s.parse()?))
        } else {
            validate_alias(s)?;
            Ok(Selector::Alias(s.to_string()))
        }
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selector::Latest => f.write_str("latest"),
            Selector::Version(v) => write!(f, "{v}"),
            Selector::Alias(a) => f.write_str(a),
        }
    }
}

/// A model reference as users write it: `name`, `name@3`, `name@champion`, `name@latest`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelRef {
    /// Registered model name.
    pub name: String,
    /// Which version.
    pub selector: Selector,
}

impl std::str::FromStr for ModelRef {
    type Err = WharfError;
    fn from_str(s: &str) -> Result<Self> {
        let (name, sel) = s.split_once('@').unwrap_or((s, "latest"));
        validate_name(name)?;
        Ok(ModelRef { name: name.to_string(), selector: Selector::parse(sel)? })
    }
}

impl std::fmt::Display for ModelRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.selector)
    }
}

/// Checks a model name: 1–128 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit. The
/// rule keeps names safe as directory names and URL path segments on every backend.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(WharfError::invalid(
            "name",
            format!("'{name}' is not a valid model name (1-128 of A-Z a-z 0-9 . _ -, starting with a letter or digit)"),
        ))
    }
}

/// Checks an alias: like a name but starting with a letter, and not `latest` (which always
/// means the highest version) nor `v<digits>` (which MLflow reserves).
pub fn validate_alias(alias: &str) -> Result<()> {
    let reserved = alias.eq_ignore_ascii_case("latest")
        || (alias.len() > 1 && alias.starts_with(['v', 'V']) && alias[1..].bytes().all(|b| b.is_ascii_digit()));
    let ok = !alias.is_empty()
        && alias.len() <= 128
        && alias.as_bytes()[0].is_ascii_alphabetic()
        && alias.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b));
    if ok && !reserved {
        Ok(())
    } else {
        Err(WharfError::invalid(
            "alias",
            format!("'{alias}' is not a valid alias (a letter, then letters, digits, _ or -; not 'latest' or v<N>)"),
        ))
    }
}

/// What the registry knows about one version, without loading the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// Model name.
    pub name: String,
    /// Version number.
    pub version: Version,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// SHA-256 of the stored artifact's payload.
    pub sha256: String,
    /// The model's signature.
    pub signature: Signature,
    /// Algorithm.
    pub algorithm: String,
    /// Metrics recorded with the model.
    #[serde(deserialize_with = "metrics_with_nan")]
    pub metrics: BTreeMap<String, f64>,
    /// Tags recorded with the model.
    pub tags: BTreeMap<String, String>,
    /// Aliases pointing at this version.
    pub aliases: Vec<String>,
}

/// A registered model name and its versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisteredModel {
    /// Name.
    pub name: String,
    /// Versions, oldest first.
    pub versions: Vec<VersionInfo>,
    /// Alias → version.
    pub aliases: BTreeMap<String, Version>,
    /// Versions (or files) that could not be read, left out of `versions` so one damaged
    /// file does not hide the rest; each names the file and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<Unreadable>,
}

/// A version a listing left out: it is there, but could not be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unreadable {
    /// The version (for a file of the whole name, such as its aliases, version 0).
    pub version: Version,
    /// Why, naming the file.
    pub reason: String,
}

impl RegisteredModel {
    /// The highest version.
    pub fn latest(&self) -> Option<&VersionInfo> {
        self.versions.last()
    }
}

/// Stores models by name with increasing versions and movable aliases.
///
/// # Contract
///
/// - [`register`](Self::register) gives the first version of a name `1` and each later one
///   the previous highest plus one, even across processes registering at once; numbers are
///   never reused, even after a delete.
/// - A version is visible only once completely stored; a failed register leaves nothing.
/// - [`load_selected`](Self::load_selected) returns a model equal to the one registered (bit-identical
///   predictions). Unknown names, versions and aliases are [`NotFound`](WharfError::NotFound).
/// - [`set_alias`](Self::set_alias) creates or moves an alias to an existing version;
///   [`delete_alias`](Self::delete_alias) removes it (unknown alias: `NotFound`).
/// - [`delete_version`](Self::delete_version) removes a version and any aliases on it (and
///   its card).
/// - [`store_card`](Self::store_card) then [`card`](Self::card) returns the bytes stored;
///   a version without a card is `NotFound`; a registry without cards answers
///   [`Unsupported`](WharfError::Unsupported) to both.
/// - Invalid names or aliases are [`InvalidInput`](WharfError::InvalidInput).
pub trait RegistryPort: Send + Sync {
    /// A short name for reports (`file`, `mlflow`).
    fn name(&self) -> &str;
    /// Stores `model` as the next version of `name`.
    fn register(&self, model: &Model, name: &str) -> Result<Version>;
    /// Loads a version of `name`.
    fn load_selected(&self, name: &str, selector: &Selector) -> Result<Model>;
    /// Metadata of a version of `name`.
    fn version_info(&self, name: &str, selector: &Selector) -> Result<VersionInfo>;
    /// Every registered model name with its versions, sorted by name.
    fn list(&self) -> Result<Vec<RegisteredModel>>;
    /// Points `alias` at `version` of `name`.
    fn set_alias(&self, name: &str, alias: &str, version: &Version) -> Result<()>;
    /// Removes `alias` from `name`.
    fn delete_alias(&self, name: &str, alias: &str) -> Result<()>;
    /// Removes a version (and its aliases).
    fn delete_version(&self, name: &str, version: &Version) -> Result<()>;
    /// Keeps `html`, the version's model card, with the version, replacing an earlier card.
    /// The card is evidence about the version (its holdout curves), so it lives and is
    /// deleted with it. An unknown version is [`NotFound`](WharfError::NotFound); a registry
    /// that cannot keep files answers [`Unsupported`](WharfError::Unsupported).
    fn store_card(&self, name: &str, version: &Version, html: &[u8]) -> Result<()> {
        let _ = (name, version, html);
        Err(WharfError::Unsupported(format!("registry '{}' keeps no model cards", self.name())))
    }
    /// The card stored with a version: [`NotFound`](WharfError::NotFound) when it has none;
    /// [`Unsupported`](WharfError::Unsupported) from a registry that keeps no cards.
    fn card(&self, name: &str, version: &Version) -> Result<Vec<u8>> {
        let _ = (name, version);
        Err(WharfError::Unsupported(format!("registry '{}' keeps no model cards", self.name())))
    }
}

/// Conveniences for every [`RegistryPort`].
pub trait RegistryExt: RegistryPort {
    /// Loads `name` at `selector` written as text: `latest`, `3`, or an alias.
    fn load(&self, name: &str, selector: &str) -> Result<Model> {
        self.load_selected(name, &Selector::parse(selector)?)
    }
    /// Loads a [`ModelRef`].
    fn load_ref(&self, reference: &ModelRef) -> Result<Model> {
        self.load_selected(&reference.name, &reference.selector)
    }
    /// The registered model called `name`.
    fn get(&self, name: &str) -> Result<RegisteredModel> {
        self.list()?
            .into_iter()
            .find(|m| m.name == name)
            .ok_or_else(|| WharfError::not_found(format!("model '{name}'")))
    }
}

impl<T: RegistryPort + ?Sized> RegistryExt for T {}

macro_rules! forward_registry {
    ($($wrapper:ident),*) => {$(
        impl<T: RegistryPort + ?Sized> RegistryPort for $wrapper<T> {
            fn name(&self) -> &str { (**self).name() }
            fn register(&self, model: &Model, name: &str) -> Result<Version> { (**self).register(model, name) }
            fn load_selected(&self, name: &str, selector: &Selector) -> Result<Model> { (**self).load_selected(name, selector) }
            fn version_info(&self, name: &str, selector: &Selector) -> Result<VersionInfo> { (**self).version_info(name, selector) }
            fn list(&self) -> Result<Vec<RegisteredModel>> { (**self).list() }
            fn set_alias(&self, name: &str, alias: &str, version: &Version) -> Result<()> { (**self).set_alias(name, alias, version) }
            fn delete_alias(&self, name: &str, alias: &str) -> Result<()> { (**self).delete_alias(name, alias) }
            fn delete_version(&self, name: &str, version: &Version) -> Result<()> { (**self).delete_version(name, version) }
            fn store_card(&self, name: &str, version: &Version, html: &[u8]) -> Result<()> { (**self).store_card(name, version, html) }
            fn card(&self, name: &str, version: &Version) -> Result<Vec<u8>> { (**self).card(name, version) }
        }
    )*};
}
forward_registry!(Arc, Box);

/// Metrics as `meta.json` holds them: JSON has no NaN, so an undefined metric (ROC AUC of a
/// holdout with one class) is written as `null` and read back as NaN, never as an error that
/// makes the version unreadable.
fn metrics_with_nan<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<BTreeMap<String, f64>, D::Error> {
    let raw: BTreeMap<String, Option<f64>> = Deserialize::deserialize(d)?;
    Ok(raw.into_iter().map(|(k, v)| (k, v.unwrap_or(f64::NAN))).collect())
}
