//! `MlflowRegistry`: Wharf models as MLflow registered models and versions.
//!
//! `register` creates a run in the registry's experiment, uploads `model/model.wharf` and
//! `model/MLmodel` to it, creates the registered model if needed and then a model version
//! whose source is the run's `model` directory. The version number is MLflow's (MLflow
//! serialises concurrent registrations and never reuses a deleted number). The payload's
//! SHA-256 is a version tag, checked on every load, so a version loads bit-identical or not
//! at all. A version is created only after its files are stored, so a failed register leaves
//! no version behind (the run is marked FAILED).
//!
//! Versions not written by Wharf (no `wharf.sha256` tag) are left out of listings and refused
//! by `load`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use wharf_core::config::WharfConfig;
use wharf_core::ports::registry::{validate_alias, validate_name};
use wharf_core::{
    artifact, ArtifactError, Model, RegisteredModel, RegistryPort, Result, Selector, Version, VersionInfo, WharfError,
};

use crate::client::{KeyValue, MlflowClient, MlflowRunStatus, ModelVersionEntry};
use crate::config::MlflowConfig;
use crate::error::ADAPTER;
use crate::mlmodel::{self, WharfSection, MLMODEL_FILE, MODEL_FILE};
use crate::tracker::rename_config_key;

/// Version tag holding the SHA-256 of the artifact's payload.
pub const SHA256_TAG: &str = "wharf.sha256";
/// Version tag holding the [`WharfSection`] as JSON, when it fits MLflow's tag limit.
pub const INFO_TAG: &str = "wharf.info";
/// Directory of the model files under the registering run's artifacts.
const MODEL_DIR: &str = "model";
/// The most bytes of an `MLmodel` file read: it holds the signature (every categorical
/// level included), metrics and tags, never the model.
pub const MAX_MLMODEL_BYTES: u64 = 64 << 20;
/// MLflow's longest tag value.
const MAX_TAG_VALUE: usize = 8000;

/// A model registry backed by MLflow's model registry.
#[derive(Debug)]
pub struct MlflowRegistry {
    client: MlflowClient,
    experiment: String,
    experiment_id: Mutex<Option<String>>,
}

impl MlflowRegistry {
    /// A registry through `client`; registering runs go to `experiment`.
    pub fn new(client: MlflowClient, experiment: impl Into<String>) -> Self {
        MlflowRegistry { client, experiment: experiment.into(), experiment_id: Mutex::new(None) }
    }

    /// A registry from `[registry.mlflow]`, whose `uri` falls back to `tracking.mlflow.uri`.
    /// Neither set is a configuration error naming `registry.mlflow.uri`.
    pub fn from_config(config: &WharfConfig) -> Result<Self> {
        let own = MlflowConfig::registry(config)?;
        let tracking = MlflowConfig::tracking(config)?;
        let uri = own.uri.as_deref().or(tracking.uri.as_deref()).filter(|u| !u.trim().is_empty()).ok_or_else(|| {
            WharfError::config(
                "registry.mlflow.uri",
                "the MLflow registry needs the server's URI (registry.mlflow.uri or tracking.mlflow.uri)",
            )
        })?;
        let client = MlflowClient::new(uri, Duration::from_millis(own.timeout_ms.max(1)))
            .map_err(|e| rename_config_key(e, "registry.mlflow.uri"))?;
        Ok(MlflowRegistry::new(client, own.experiment.clone()))
    }

    /// The client this registry talks through.
    pub fn client(&self) -> &MlflowClient {
        &self.client
    }

    fn experiment_id(&self) -> Result<String> {
        let mut cached = self.experiment_id.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(id) = cached.as_ref() {
            return Ok(id.clone());
        }
        let id = self.client.get_or_create_experiment(&self.experiment)?.experiment_id;
        *cached = Some(id.clone());
        Ok(id)
    }

    /// The MLflow version entry `selector` designates (with aliases filled in).
    fn resolve(&self, name: &str, selector: &Selector) -> Result<ModelVersionEntry> {
        validate_name(name)?;
        let entry = match selector {
            Selector::Version(v) => self.client.get_model_version(name, &v.to_string())?,
            Selector::Alias(alias) => {
                validate_alias(alias)?;
                self.client.get_model_version_by_alias(name, alias)?
            }
            Selector::Latest => {
                let latest = self
                    .client
                    .search_model_versions(name)?
                    .into_iter()
                    .filter(|v| v.tag(SHA256_TAG).is_some())
                    .filter_map(|v| v.version.parse::<u64>().ok())
                    .max()
                    .ok_or_else(|| WharfError::not_found(format!("model '{name}'")))?;
                // The search answer has no aliases; `get` has.
                self.client.get_model_version(name, &latest.to_string())?
            }
            other => return Err(WharfError::Unsupported(format!("selector {other:?} in the MLflow registry"))),
        };
        if entry.tag(SHA256_TAG).is_none() {
            return Err(WharfError::Unsupported(format!(
                "model '{name}' version {} was not registered by Wharf (no {SHA256_TAG} tag)",
                entry.version
            )));
        }
        Ok(entry)
    }

    /// The `wharf` section of a version: from its tag, else from its `MLmodel` file.
    fn section(&self, entry: &ModelVersionEntry) -> Result<WharfSection> {
        if let Some(section) = entry.tag(INFO_TAG).and_then(|t| serde_json::from_str::<WharfSection>(t).ok()) {
            return Ok(section);
        }
        let (root, dir) = self.source_root(entry)?;
        // Only the small MLmodel file, never the model: `models show` and `list` read this.
        let path = if dir.is_empty() { MLMODEL_FILE.to_string() } else { format!("{dir}/{MLMODEL_FILE}") };
        mlmodel::read_section(&self.client.download_artifact_capped(&root, &path, MAX_MLMODEL_BYTES)?)
    }

    /// Splits a version's source into an artifact root the proxy serves and a path under it.
    fn source_root(&self, entry: &ModelVersionEntry) -> Result<(String, String)> {
        if entry.source.starts_with("mlflow-artifacts:") {
            return Ok((entry.source.clone(), String::new()));
        }
        if let Some(rest) = entry.source.strip_prefix("runs:/") {
            let (run_id, path) = rest.split_once('/').unwrap_or((rest, ""));
            let run = self.client.get_run(run_id)?;
            return Ok((run.info.artifact_uri, path.to_string()));
        }
        Err(WharfError::Unsupported(format!(
            "model '{}' version {} has source '{}', which the MLflow server does not serve",
            entry.name, entry.version, entry.source
        )))
    }

    fn info(&self, entry: &ModelVersionEntry, aliases: Vec<String>) -> Result<VersionInfo> {
        let section = self.section(entry)?;
        Ok(VersionInfo {
            name: entry.name.clone(),
            version: parse_version(&entry.version)?,
            created_at: Utc.timestamp_millis_opt(entry.creation_timestamp).single().unwrap_or_default(),
            sha256: entry.tag(SHA256_TAG).unwrap_or_default().to_string(),
            signature: section.signature,
            algorithm: section.algorithm,
            metrics: section.metrics,
            tags: section.tags,
            aliases,
        })
    }

    /// Stores the files and creates the version; the caller ends the run.
    fn register_in_run(&self, model: &Model, name: &str, run_id: &str, root: &str) -> Result<Version> {
        let mut logged = mlmodel::encode(model, MODEL_DIR, run_id)?;
        for (file, bytes) in logged.take_files() {
            self.client.upload_artifact(root, &format!("{MODEL_DIR}/{file}"), bytes)?;
        }
        self.client.ensure_registered_model(name)?;
        let mut tags =
            vec![KeyValue::new(SHA256_TAG, logged.sha256), KeyValue::new("wharf.algorithm", &logged.section.algorithm)];
        let info = serde_json::to_string(&logged.section).map_err(|e| WharfError::invalid("model", e.to_string()))?;
        if info.chars().count() <= MAX_TAG_VALUE {
            tags.push(KeyValue::new(INFO_TAG, info));
        }
        let source = format!("{}/{MODEL_DIR}", root.trim_end_matches('/'));
        let entry = self.client.create_model_version(name, &source, run_id, &tags)?;
        parse_version(&entry.version)
    }
}

impl RegistryPort for MlflowRegistry {
    fn name(&self) -> &str {
        ADAPTER
    }

    fn register(&self, model: &Model, name: &str) -> Result<Version> {
        validate_name(name)?;
        let experiment_id = self.experiment_id()?;
        let tags = [KeyValue::new("wharf.model_name", name)];
        let run = self.client.create_run(
            &experiment_id,
            Some(&format!("register-{name}")),
            Utc::now().timestamp_millis(),
            &tags,
        )?;
        let run_id = run.info.run_id.clone();
        let result = self.register_in_run(model, name, &run_id, &run.info.artifact_uri);
        let status = if result.is_ok() { MlflowRunStatus::Finished } else { MlflowRunStatus::Failed };
        if let Err(e) = self.client.update_run(&run_id, status, Some(Utc::now().timestamp_millis())) {
            tracing::warn!(run = %run_id, error = %e, "could not end the registering run");
        }
        result
    }

    fn load_selected(&self, name: &str, selector: &Selector) -> Result<Model> {
        let entry = self.resolve(name, selector)?;
        let expected = entry.tag(SHA256_TAG).unwrap_or_default();
        let (root, dir) = self.source_root(&entry)?;
        let path = if dir.is_empty() { MODEL_FILE.to_string() } else { format!("{dir}/{MODEL_FILE}") };
        let bytes = self.client.download_artifact(&root, &path)?;
        let where_ = format!("mlflow:{name}/{}", entry.version);
        let header = artifact::read_header(&bytes).map_err(|kind| WharfError::artifact(&where_, kind))?;
        if header.sha256_hex() != expected {
            return Err(WharfError::artifact(where_, ArtifactError::ChecksumMismatch));
        }
        artifact::decode(&bytes).map_err(|kind| WharfError::artifact(where_, kind))
    }

    fn version_info(&self, name: &str, selector: &Selector) -> Result<VersionInfo> {
        let entry = self.resolve(name, selector)?;
        let aliases = entry.aliases.clone();
        self.info(&entry, aliases)
    }

    fn list(&self) -> Result<Vec<RegisteredModel>> {
        let mut out = Vec::new();
        let mut models = self.client.search_registered_models()?;
        models.sort_by(|a, b| a.name.cmp(&b.name));
        for model in models {
            // Names outside Wharf's rule cannot be loaded through the port; skip them.
            if validate_name(&model.name).is_err() {
                continue;
            }
            let aliases_of = self.client.get_registered_model(&model.name)?.aliases;
            let mut aliases = BTreeMap::new();
            for a in &aliases_of {
                if let Ok(v) = parse_version(&a.version) {
                    aliases.insert(a.alias.clone(), v);
                }
            }
            let mut versions = Vec::new();
            for entry in self.client.search_model_versions(&model.name)? {
                if entry.tag(SHA256_TAG).is_none() {
                    continue;
                }
                let on_this: Vec<String> =
                    aliases_of.iter().filter(|a| a.version == entry.version).map(|a| a.alias.clone()).collect();
                versions.push(self.info(&entry, on_this)?);
            }
            versions.sort_by_key(|v| v.version);
            out.push(RegisteredModel { name: model.name, versions, aliases, unreadable: Vec::new() });
        }
        Ok(out)
    }

    fn set_alias(&self, name: &str, alias: &str, version: &Version) -> Result<()> {
        validate_name(name)?;
        validate_alias(alias)?;
        self.client.set_alias(name, alias, &version.to_string())
    }

    fn delete_alias(&self, name: &str, alias: &str) -> Result<()> {
        validate_name(name)?;
        validate_alias(alias)?;
        // MLflow answers 200 for an unknown alias; the port's contract says NotFound.
        let model = self.client.get_registered_model(name)?;
        if !model.aliases.iter().any(|a| a.alias == alias) {
            return Err(WharfError::not_found(format!("alias '{alias}' of model '{name}'")));
        }
        self.client.delete_alias(name, alias)
    }

    fn delete_version(&self, name: &str, version: &Version) -> Result<()> {
        validate_name(name)?;
        self.client.delete_model_version(name, &version.to_string())
    }

    fn store_card(&self, name: &str, version: &Version, html: &[u8]) -> Result<()> {
        let entry = self.resolve(name, &Selector::Version(*version))?;
        let (root, path) = self.card_path(&entry)?;
        self.client.upload_artifact(&root, &path, html.to_vec())
    }

    fn card(&self, name: &str, version: &Version) -> Result<Vec<u8>> {
        let entry = self.resolve(name, &Selector::Version(*version))?;
        let (root, path) = self.card_path(&entry)?;
        // Listed first: a missing file is `NotFound` whatever the artifact proxy answers for it.
        let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        let listed = self.client.list_artifacts(&root, dir)?;
        if !listed.iter().any(|f| !f.is_dir && f.path.rsplit('/').next() == Some(CARD_FILE)) {
            return Err(WharfError::not_found(format!("the model card of model '{name}' version {version}")));
        }
        self.client.download_artifact_capped(&root, &path, MAX_CARD_BYTES)
    }
}

impl MlflowRegistry {
    /// Where a version's card lives: beside its model files, so MLflow's UI shows it with
    /// the version and deleting the version's run takes it along.
    fn card_path(&self, entry: &ModelVersionEntry) -> Result<(String, String)> {
        let (root, dir) = self.source_root(entry)?;
        let path = if dir.is_empty() { CARD_FILE.to_string() } else { format!("{dir}/{CARD_FILE}") };
        Ok((root, path))
    }
}

/// The model card's file name beside a version's model files.
const CARD_FILE: &str = "card.html";
/// The largest card read back (a card is a few hundred kilobytes).
const MAX_CARD_BYTES: u64 = 64 * 1024 * 1024;

fn parse_version(text: &str) -> Result<Version> {
    text.parse::<Version>()
        .map_err(|_| WharfError::backend(ADAPTER, format!("MLflow answered a non-numeric version '{text}'"), None))
}
