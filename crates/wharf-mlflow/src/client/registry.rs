//! The Model Registry: registered models, versions and aliases.

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;
use wharf_core::retry::Call;
use wharf_core::{Result, WharfError};

use super::dto::{KeyValue, ModelVersionEntry, RegisteredModelEntry};
use super::transport::has_code;
use super::MlflowClient;

impl MlflowClient {
    /// Creates a registered model (`RESOURCE_ALREADY_EXISTS` is a Backend error; see
    /// [`ensure_registered_model`](Self::ensure_registered_model)).
    pub fn create_registered_model(&self, name: &str) -> Result<RegisteredModelEntry> {
        #[derive(Deserialize)]
        struct R {
            registered_model: RegisteredModelEntry,
        }
        let r: R = self.create("registered-models/create", &json!({ "name": name }))?;
        Ok(r.registered_model)
    }

    /// Creates the registered model `name` unless it exists.
    pub fn ensure_registered_model(&self, name: &str) -> Result<()> {
        match self.create_registered_model(name) {
            Ok(_) => Ok(()),
            Err(e) if has_code(&e, "RESOURCE_ALREADY_EXISTS") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The registered model `name`, with its aliases.
    pub fn get_registered_model(&self, name: &str) -> Result<RegisteredModelEntry> {
        #[derive(Deserialize)]
        struct R {
            registered_model: RegisteredModelEntry,
        }
        let r: R = self.get("registered-models/get", &[("name", name)])?;
        Ok(r.registered_model)
    }

    /// Every registered model (all pages).
    pub fn search_registered_models(&self) -> Result<Vec<RegisteredModelEntry>> {
        #[derive(Deserialize)]
        struct R {
            #[serde(default)]
            registered_models: Vec<RegisteredModelEntry>,
            #[serde(default)]
            next_page_token: Option<String>,
        }
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("max_results", "1000")];
            if let Some(t) = &token {
                query.push(("page_token", t));
            }
            let r: R = self.get("registered-models/search", &query)?;
            out.extend(r.registered_models);
            match r.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }

    /// Deletes a registered model with all its versions.
    pub fn delete_registered_model(&self, name: &str) -> Result<()> {
        let _: serde_json::Value =
            self.call(Method::DELETE, "registered-models/delete", Call::Idempotent, &json!({ "name": name }))?;
        Ok(())
    }

    /// Creates the next version of `name` from the files at `source`, produced by `run_id`.
    pub fn create_model_version(
        &self,
        name: &str,
        source: &str,
        run_id: &str,
        tags: &[KeyValue],
    ) -> Result<ModelVersionEntry> {
        #[derive(Deserialize)]
        struct R {
            model_version: ModelVersionEntry,
        }
        let body = json!({ "name": name, "source": source, "run_id": run_id, "tags": tags });
        let r: R = self.create("model-versions/create", &body)?;
        Ok(r.model_version)
    }

    /// Version `version` of `name` (with its aliases).
    pub fn get_model_version(&self, name: &str, version: &str) -> Result<ModelVersionEntry> {
        #[derive(Deserialize)]
        struct R {
            model_version: ModelVersionEntry,
        }
        let r: R = self.get("model-versions/get", &[("name", name), ("version", version)])?;
        Ok(r.model_version)
    }

    /// Deletes version `version` of `name` (MLflow drops its aliases and never reuses the number).
    pub fn delete_model_version(&self, name: &str, version: &str) -> Result<()> {
        let body = json!({ "name": name, "version": version });
        let _: serde_json::Value = self.call(Method::DELETE, "model-versions/delete", Call::Idempotent, &body)?;
        Ok(())
    }

    /// Where version `version` of `name` can be downloaded from (the source, verbatim).
    pub fn get_download_uri(&self, name: &str, version: &str) -> Result<String> {
        #[derive(Deserialize)]
        struct R {
            artifact_uri: String,
        }
        let r: R = self.get("model-versions/get-download-uri", &[("name", name), ("version", version)])?;
        Ok(r.artifact_uri)
    }

    /// Every live version of `name` (no aliases in the entries). `name` must be a valid Wharf
    /// model name, which keeps it safe inside MLflow's filter syntax.
    pub fn search_model_versions(&self, name: &str) -> Result<Vec<ModelVersionEntry>> {
        wharf_core::ports::registry::validate_name(name)?;
        #[derive(Deserialize)]
        struct R {
            #[serde(default)]
            model_versions: Vec<ModelVersionEntry>,
            #[serde(default)]
            next_page_token: Option<String>,
        }
        let filter = format!("name='{name}'");
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("filter", filter.as_str()), ("max_results", "10000")];
            if let Some(t) = &token {
                query.push(("page_token", t));
            }
            let r: R = self.get("model-versions/search", &query)?;
            out.extend(r.model_versions);
            match r.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }

    /// Points `alias` of `name` at `version`.
    pub fn set_alias(&self, name: &str, alias: &str, version: &str) -> Result<()> {
        let body = json!({ "name": name, "alias": alias, "version": version });
        let _: serde_json::Value = self.post("registered-models/alias", &body)?;
        Ok(())
    }

    /// Removes `alias` of `name`. MLflow answers 200 for an alias that does not exist; it
    /// wants the parameters as a JSON body, not a query string.
    pub fn delete_alias(&self, name: &str, alias: &str) -> Result<()> {
        let body = json!({ "name": name, "alias": alias });
        let _: serde_json::Value = self.call(Method::DELETE, "registered-models/alias", Call::Idempotent, &body)?;
        Ok(())
    }

    /// The version `alias` of `name` points at. An unknown alias is NotFound (MLflow answers
    /// it with a 400 INVALID_PARAMETER_VALUE).
    pub fn get_model_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersionEntry> {
        #[derive(Deserialize)]
        struct R {
            model_version: ModelVersionEntry,
        }
        match self.get::<R>("registered-models/alias", &[("name", name), ("alias", alias)]) {
            Ok(r) => Ok(r.model_version),
            Err(WharfError::InvalidInput { message, .. }) if message.contains("not found") => {
                Err(WharfError::not_found(format!("alias '{alias}' of model '{name}'")))
            }
            Err(e) => Err(e),
        }
    }
}
