//! Artifacts through the server's proxy (`mlflow-artifacts:`): upload, download, list.

use serde::Deserialize;
use url::Url;
use wharf_core::bounded::{read_capped, CappedReadError};
use wharf_core::retry::Call;
use wharf_core::{artifact, ArtifactError, Result, WharfError};

use super::dto::FileInfo;
use super::MlflowClient;
use crate::error::ADAPTER;

/// The most bytes [`MlflowClient::download_artifact`] accepts: a model artifact's header
/// plus the largest payload the artifact format loads.
pub const MAX_DOWNLOAD_BYTES: u64 = artifact::HEADER_LEN as u64 + artifact::DEFAULT_MAX_PAYLOAD;

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

    /// Downloads `path` under the artifact root `root`, at most [`MAX_DOWNLOAD_BYTES`]
    /// (the largest model artifact Wharf loads).
    pub fn download_artifact(&self, root: &str, path: &str) -> Result<Vec<u8>> {
        self.download_artifact_capped(root, path, MAX_DOWNLOAD_BYTES)
    }

    /// Downloads `path` under the artifact root `root`, refusing a body over `limit` bytes
    /// with [`ArtifactError::Oversized`]: an announced `Content-Length` over the limit is
    /// refused before the body is read, and an unannounced body after `limit + 1` bytes. The
    /// body is streamed into the one buffer returned (no second copy).
    pub fn download_artifact_capped(&self, root: &str, path: &str, limit: u64) -> Result<Vec<u8>> {
        let url = self.artifact_url(root, path)?;
        let operation = "mlflow-artifacts/download";
        let resp = self.send(operation, Call::Idempotent, || self.http.get(url.clone()))?;
        let announced = resp.content_length();
        read_capped(resp, announced, limit).map_err(|e| match e {
            CappedReadError::TooLarge { announced, limit } => WharfError::artifact(
                format!("{root}/{path}"),
                ArtifactError::Oversized { size: announced.unwrap_or(limit.saturating_add(1)), limit },
            ),
            other => WharfError::backend(ADAPTER, format!("{operation}: {other}"), Some(Box::new(other))),
        })
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
