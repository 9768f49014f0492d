//! [`BentoMlModelServer`]: the [`ModelServerPort`] that forwards to a BentoML service.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::config::{BentoMlConfig, BentoMlPayload};
use reqwest::header::{HeaderName, HeaderValue};
use url::Url;
use wharf_core::retry::RetryPolicy;
use wharf_core::{
    FeatureKind, Model, ModelServerPort, Predictions, Probabilities, Records, Result, ServerCapabilities, Task,
    WharfError,
};

use crate::client::{BentoClient, ClientSettings};
use crate::payload;

/// Forwards predictions to a BentoML service; Wharf keeps the signature.
///
/// `load(model)` does not ship the model anywhere: the service already serves its own copy.
/// The loaded model supplies what the service does not tell: the signature records are
/// validated against (locally, before any request), the feature order of the payload, and
/// the class labels that the service's class ids (`0..k`) stand for. Load a model whose
/// signature matches what the service was trained on.
///
/// Batches larger than `max_batch` go out as several requests, one after another, and the
/// answers are concatenated in order. See the crate docs for the failure policy.
#[derive(Debug)]
pub struct BentoMlModelServer {
    client: BentoClient,
    api: String,
    proba_api: Option<String>,
    input_field: String,
    payload: BentoMlPayload,
    max_batch: usize,
    model: RwLock<Option<Arc<Model>>>,
}

impl BentoMlModelServer {
    /// Builds the server from `[serving.bentoml]`. Nothing is contacted yet.
    pub fn from_config(config: &BentoMlConfig) -> Result<Self> {
        let url =
            config.url.as_deref().map(str::trim).filter(|u| !u.is_empty()).ok_or_else(|| {
                WharfError::config("serving.bentoml.url", "required when serving.backend = \"bentoml\"")
            })?;
        let mut base = Url::parse(url).map_err(|e| {
            WharfError::config("serving.bentoml.url", format!("'{}': {e}", wharf_core::redact::url(url)))
        })?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(WharfError::config(
                "serving.bentoml.url",
                format!("'{}': expected an http(s) URL", wharf_core::redact::url(url)),
            ));
        }
        // A base without a trailing slash would lose its last segment on `join`.
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let api = non_empty(&config.api, "serving.bentoml.api")?;
        let input_field = non_empty(&config.input_field, "serving.bentoml.input_field")?;
        if config.timeout_ms == 0 {
            return Err(WharfError::config("serving.bentoml.timeout_ms", "must be at least 1"));
        }
        let max_batch = usize::try_from(config.max_batch)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| WharfError::config("serving.bentoml.max_batch", "must be at least 1"))?;
        let auth_header = config.auth_header.as_deref().map(parse_header).transpose()?;
        let settings = ClientSettings {
            base,
            timeout: Duration::from_millis(config.timeout_ms),
            auth_header,
            // Short pauses: a caller is waiting on a prediction.
            retry: RetryPolicy::default()
                .max_retries(u32::try_from(config.retries.min(10)).unwrap_or(10))
                .initial_delay(Duration::from_millis(50))
                .max_delay(Duration::from_secs(1))
                .max_elapsed(Duration::from_millis(config.timeout_ms.max(1)).saturating_mul(2)),
            breaker_failures: config.breaker_failures,
            breaker_cooldown: Duration::from_millis(config.breaker_cooldown_ms),
        };
        let proba_api = config.proba_api.trim();
        Ok(BentoMlModelServer {
            client: BentoClient::new(settings)?,
            api,
            proba_api: (!proba_api.is_empty()).then(|| proba_api.to_string()),
            input_field,
            payload: config.payload,
            max_batch,
            model: RwLock::new(None),
        })
    }

    /// The service's base URL.
    pub fn url(&self) -> &Url {
        self.client.base()
    }

    fn current(&self) -> Result<Arc<Model>> {
        self.model.read().unwrap_or_else(|p| p.into_inner()).clone().ok_or(WharfError::NoModelLoaded)
    }

    /// Validates locally, then sends one request per chunk of `max_batch` rows through `each`.
    fn chunked(
        &self,
        model: &Model,
        records: &Records,
        api: &str,
        mut each: impl FnMut(&str, &serde_json::Value, usize) -> Result<()>,
    ) -> Result<()> {
        model.validate(records)?;
        let rows = payload::feature_rows(model, records)?;
        for chunk in rows.chunks(self.max_batch) {
            let body = payload::body(model, &self.input_field, self.payload, chunk);
            let answer = self.client.call(api, &body)?;
            each(api, &answer, chunk.len())?;
        }
        Ok(())
    }
}

fn non_empty(value: &str, key: &str) -> Result<String> {
    let value = value.trim();
    if value.is_empty() {
        Err(WharfError::config(key, "must not be empty"))
    } else {
        Ok(value.to_string())
    }
}

/// `Name: value` → a header pair.
fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue)> {
    let key = "serving.bentoml.auth_header";
    let (name, value) = text.split_once(':').ok_or_else(|| WharfError::config(key, "expected 'Name: value'"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|e| WharfError::config(key, format!("bad header name: {e}")))?;
    let value =
        HeaderValue::from_str(value.trim()).map_err(|e| WharfError::config(key, format!("bad header value: {e}")))?;
    Ok((name, value))
}

impl ModelServerPort for BentoMlModelServer {
    fn name(&self) -> &str {
        "bentoml"
    }

    /// Records the model whose signature and classes describe the remote service. Only
    /// numeric features can be sent: a categorical feature is refused here rather than on
    /// every call.
    fn load(&self, model: Model) -> Result<()> {
        if let Some(f) = model.signature().features.iter().find(|f| matches!(f.kind, FeatureKind::Categorical { .. })) {
            return Err(WharfError::Unsupported(format!(
                "the BentoML proxy sends numeric features only; '{}' is categorical",
                f.name
            )));
        }
        *self.model.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(model));
        Ok(())
    }

    fn model(&self) -> Option<Arc<Model>> {
        self.model.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn predict(&self, records: &Records) -> Result<Predictions> {
        let model = self.current()?;
        let mut out = payload::empty_predictions(&model);
        let api = self.api.clone();
        self.chunked(&model, records, &api, |endpoint, answer, n| {
            payload::push_predictions(&model, endpoint, answer, n, &mut out)
        })?;
        Ok(out)
    }

    fn predict_proba(&self, records: &Records) -> Result<Probabilities> {
        let model = self.current()?;
        if model.task() != Task::Classification {
            return Err(WharfError::Unsupported(format!("predict_proba on a {} model", model.task())));
        }
        let api = self.proba_api.clone().ok_or_else(|| {
            WharfError::Unsupported("predict_proba: serving.bentoml.proba_api is empty (the service has none)".into())
        })?;
        let mut rows = Vec::with_capacity(records.len());
        self.chunked(&model, records, &api, |endpoint, answer, n| {
            rows.extend(payload::probability_rows(&model, endpoint, answer, n)?);
            Ok(())
        })?;
        payload::probabilities(&model, rows)
    }

    fn capabilities(&self) -> ServerCapabilities {
        ServerCapabilities::new(self.proba_api.is_some(), false)
    }

    /// A model is loaded and the service's `/readyz` answers 200 (within at most 2 s).
    fn ready(&self) -> bool {
        self.model().is_some() && self.client.ready()
    }
}
