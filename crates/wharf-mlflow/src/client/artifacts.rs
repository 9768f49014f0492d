//! Artifacts through the server's proxy (`mlflow-artifacts:`): upload, download, list.

use serde::Deserialize;
use url::Url;
use wharf_core::retry::Call;
use wharf_core::{Result, WharfError};

use super::dto::FileInfo;
use super::MlflowClient;
use crate::error::{MlflowError, ADAPTER};

impl MlflowClient {
    /// The proxy URL of `path` under the artifact root `root` (`mlflow-artifacts:/1/<run>/artifacts`).
    fn artifact_url(&self, root: &str, path: &str) -> Result<Url> {
        let mut url = self.url("api/2.0/mlflow-artifacts/artifacts")?;
        let rel = proxy_path(root)?;
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|_| WharfError::backend(ADAPTER, "the MLflow URI cannot take a path", None))?;
            segments.extend(rel.split('/').chain(path.split('/')).filter(|s| !s.is_empty()));
        }
        Ok(url)
    }

    /// Uploads `bytes` as `path` under the artifact root `root` (overwriting).
    pub fn upload_artifact(&self, root: &str, path: &str, bytes: Vec<u8>) -> Result<()> {
        let url = self.artifact_url(root, path)?;
        // A retry needs the body again; cloning is cheap next to the upload itself.
        self.send("mlflow-artifacts/upload", Call::Idempotent, || self.http.put(url.clone()).body(bytes.clone()))?;
        Ok(())
    }

    /// Downloads `path` under the artifact root `root`.
    pub fn download_artifact(&self, root: &str, path: &str) -> Result<Vec<u8>> {
        let url = self.artifact_url(root, path)?;
        let operation = "mlflow-artifacts/download";
        let resp = self.send(operation, Call::Idempotent, || self.http.get(url.clone()))?;
        let bytes = resp
            .bytes()
            .map_err(|source| WharfError::from(MlflowError::Transport { operation: operation.to_string(), source }))?;
        Ok(bytes.to_vec())
    }

    /// The entries of directory `path` under the artifact root `root` (paths relative to it).
    pub fn list_artifacts(&self, root: &str, path: &str) -> Result<Vec<FileInfo>> {
        #[derive(Deserialize)]
        struct R {
            #[serde(default)]
            files: Vec<FileInfo>,
        }
        let rel = proxy_path(root)?;
        let full = [rel.as_str(), path.trim_matches('/')].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>();
        let full = full.join("/");
        let url = self.url("api/2.0/mlflow-artifacts/artifacts")?;
        let operation = "mlflow-artifacts/list";
        let resp = self.send(operation, Call::Idempotent, || self.http.get(url.clone()).query(&[("path", &full)]))?;
        let r: R = Self::decode(operation, resp)?;
        Ok(r.files)
    }
}

/// The proxy-relative path of an artifact root: `mlflow-artifacts:/1/<run>/artifacts` (or
/// `mlflow-artifacts://host/1/…`) → `1/<run>/artifacts`. Other schemes (an experiment with a
/// local or S3 `artifact_location`) cannot go through the server and are refused clearly.
pub fn proxy_path(root: &str) -> Result<String> {
    let rest = root.strip_prefix("mlflow-artifacts:").ok_or_else(|| {
        WharfError::Unsupported(format!(
            "artifact location '{root}' is not served by the MLflow server (start it with --serve-artifacts, \
             the default, and use experiments whose artifact_location is mlflow-artifacts:)"
        ))
    })?;
    let rest = match rest.strip_prefix("//") {
        Some(with_host) => with_host.split_once('/').map(|(_, p)| p).unwrap_or(""),
        None => rest,
    };
    let rel = rest.trim_matches('/');
    if rel.split('/').any(|s| s == ".." || s == ".") {
        return Err(WharfError::invalid("artifact_uri", format!("'{root}' is not a plain path")));
    }
    Ok(rel.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_paths() {
        assert_eq!(proxy_path("mlflow-artifacts:/1/abc/artifacts").unwrap(), "1/abc/artifacts");
        assert_eq!(proxy_path("mlflow-artifacts://host:5000/1/abc/artifacts").unwrap(), "1/abc/artifacts");
        assert!(matches!(proxy_path("s3://bucket/x"), Err(WharfError::Unsupported(_))));
        assert!(proxy_path("mlflow-artifacts:/1/../etc").is_err());
    }
}
