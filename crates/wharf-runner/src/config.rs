//! `models.toml`: the models (registered Wharf models) and built-in summaries of a run, for
//! the `wharf run-models` command and any program that wants a run described in a file.
//!
//! ```toml
//! [[model]]
//! model = "lead@champion"   # NAME, NAME@VERSION or NAME@ALIAS in the configured registry
//! status = "active"         # draft (the default), active, or production (= active)
//! input = "shared"          # slice (the default): data[name][version]; shared: all of data
//! # name = "lead"           # the result's name [default: the registered name]
//! # version = "3"           # the result's version [default: the registered version number]
//!
//! [model.fields.pages_viewed]  # optional: tighten or add field checks
//! type = "int"                 # int, float, str, bool
//! min = 0
//! max = 500
//!
//! [[model]]
//! model = "lead@1"
//! status = "active"
//! input = "shared"
//!
//! [[summary]]
//! name = "best"
//! version = "1"
//! status = "active"
//! kind = "max"              # max, min (or argmax, argmin), mean, sum
//! field = "prob_yes"        # the output field compared
//! depends_on = ["lead@3", "lead@1"]
//! ```
//!
//! A registered model's fields come from its signature (see
//! [`ModelSpec::from_model`](crate::ModelSpec::from_model)); `[model.fields.X]` replaces the
//! check of field `X` or adds one. An alias is resolved once, when the run starts, so every
//! record of the run is scored by the same version.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use wharf_core::{ModelRef, ModelServers, RegistryPort, Selector, WharfError};

use crate::builtin::Builtin;
use crate::fields::{FieldSpec, InputSource};
use crate::ident::{DepRef, Status};
use crate::spec::ModelSpec;
use crate::summary::SummarySpec;

/// A parsed `models.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunnerConfig {
    /// The `[[model]]` entries.
    #[serde(default, rename = "model")]
    pub models: Vec<ModelEntry>,
    /// The `[[summary]]` entries, run in this order.
    #[serde(default, rename = "summary")]
    pub summaries: Vec<SummaryEntry>,
}

/// One `[[model]]`: a registered model.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// `NAME`, `NAME@VERSION` or `NAME@ALIAS` in the configured registry.
    pub model: String,
    /// The result's name [default: the registered name].
    pub name: Option<String>,
    /// The result's version [default: the registered version number].
    pub version: Option<String>,
    /// Draft (default) or active.
    #[serde(default)]
    pub status: Status,
    /// Where the input is read from.
    #[serde(default)]
    pub input: InputSource,
    /// Field checks replacing or adding to the signature's.
    #[serde(default)]
    pub fields: BTreeMap<String, FieldSpec>,
}

/// One `[[summary]]`: a built-in summary.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummaryEntry {
    /// The result's name.
    pub name: String,
    /// The result's version [default: `1`].
    #[serde(default = "one")]
    pub version: String,
    /// Draft (default) or active.
    #[serde(default)]
    pub status: Status,
    /// Which built-in.
    pub kind: Builtin,
    /// The numeric output field it reads from each dependency.
    pub field: String,
    /// `name@version` of each dependency.
    pub depends_on: Vec<String>,
}

fn one() -> String {
    "1".to_string()
}

impl RunnerConfig {
    /// Parses TOML text; `source` names it in errors.
    pub fn from_toml_str(text: &str, source: &str) -> Result<RunnerConfig, WharfError> {
        let config: RunnerConfig = toml::from_str(text).map_err(|e| {
            let message = e.message().to_string();
            let place = e
                .span()
                .map(|span| {
                    let line = text.get(..span.start).unwrap_or(text).matches('\n').count() + 1;
                    format!(" (line {line})")
                })
                .unwrap_or_default();
            WharfError::config(source, format!("{message}{place}"))
        })?;
        if config.models.is_empty() && config.summaries.is_empty() {
            return Err(WharfError::config(source, "no [[model]] or [[summary]] entries"));
        }
        Ok(config)
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<RunnerConfig, WharfError> {
        let text = std::fs::read_to_string(path).map_err(|e| WharfError::io(path, e))?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Loads every model from `registry` and builds the specs, each model scoring in this
    /// process.
    pub fn build(&self, registry: &dyn RegistryPort) -> Result<(Vec<ModelSpec>, Vec<SummarySpec>), WharfError> {
        self.build_with(registry, &ModelServers::local())
    }

    /// Loads every model from `registry` onto a server of its own from `servers` (the
    /// container's factory, so `serving.backend` decides where the models score) and builds
    /// the specs.
    pub fn build_with(
        &self,
        registry: &dyn RegistryPort,
        servers: &ModelServers,
    ) -> Result<(Vec<ModelSpec>, Vec<SummarySpec>), WharfError> {
        let models = self
            .models
            .iter()
            .enumerate()
            .map(|(i, m)| m.build(registry, servers, i))
            .collect::<Result<Vec<_>, _>>()?;
        let summaries = self.summaries.iter().enumerate().map(|(i, s)| s.build(i)).collect::<Result<Vec<_>, _>>()?;
        Ok((models, summaries))
    }
}

impl ModelEntry {
    fn build(
        &self,
        registry: &dyn RegistryPort,
        servers: &ModelServers,
        index: usize,
    ) -> Result<ModelSpec, WharfError> {
        let at = |key: &str| format!("model[{index}].{key}");
        let reference: ModelRef =
            self.model.parse().map_err(|e: WharfError| WharfError::config(at("model"), e.to_string()))?;
        // Resolve an alias or `latest` to a number once, then load that exact version.
        let info = registry.version_info(&reference.name, &reference.selector)?;
        let model = registry.load_selected(&info.name, &Selector::Version(info.version))?;
        let name = self.name.clone().unwrap_or_else(|| info.name.clone());
        let version = self.version.clone().unwrap_or_else(|| info.version.to_string());
        let mut spec =
            ModelSpec::from_server(name, version, servers.serve(model)?)?.status(self.status).input(self.input);
        for (field, check) in &self.fields {
            if check.levels.is_some() && check.ty != crate::FieldType::Str {
                return Err(WharfError::config(at(&format!("fields.{field}.levels")), "levels apply to str fields"));
            }
            spec = spec.field(field.clone(), check.clone());
        }
        Ok(spec)
    }
}

impl SummaryEntry {
    fn build(&self, index: usize) -> Result<SummarySpec, WharfError> {
        let depends_on = self
            .depends_on
            .iter()
            .map(|d| d.parse::<DepRef>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| WharfError::config(format!("summary[{index}].depends_on"), e.to_string()))?;
        if depends_on.is_empty() {
            return Err(WharfError::config(format!("summary[{index}].depends_on"), "needs at least one name@version"));
        }
        Ok(SummarySpec::builtin(&self.name, &self.version, depends_on, self.kind, &self.field).status(self.status))
    }
}
