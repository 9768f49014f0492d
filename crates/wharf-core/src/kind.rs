//! Model kinds: the compiled scoring behaviour behind a [`Model`](crate::Model), and the
//! registry of decoders that turns an artifact's payload back into one.
//!
//! A [`Model`](crate::Model) is metadata (signature, params, metrics, tags) plus one
//! `Arc<dyn ModelKind>`. Everything that scores (the model servers, `wharf serve`, batch,
//! stream, the runner, SQL) goes through [`Model`](crate::Model)'s methods, so a new model
//! family is added by implementing [`ModelKind`] and registering a [`KindDecoder`] for its
//! payload. No consumer changes.
//!
//! # Registration
//!
//! Decoders are registered at run time, explicitly, with [`register`]. Link-time collection
//! (`inventory`, `linkme`) was avoided on purpose: a linker may drop a crate whose items are
//! never referenced, and then a kind silently fails to load. Registration is idempotent and
//! cheap, so every entry point that may load an artifact calls it:
//!
//! - `wharf_ml::register()` registers the built-in estimators (kind
//!   [`BUILTIN_ESTIMATOR_KIND`]). `wharf_ml`'s `Trainer`, its importers, and the `wharf`
//!   facade (building a `Wharf`, or `wharf::register_kinds()`) call it, as does the CLI.
//! - `wharf_trees::register()` registers the tree ensembles imported from XGBoost and
//!   LightGBM (kind [`TREE_ENSEMBLE_KIND`]); its importers and `wharf::register_kinds()` call
//!   it.
//! - A crate with its own kind calls [`register`] before loading, typically from the same
//!   kind of `register()` function.
//!
//! Loading an artifact whose kind has no decoder fails with
//! [`ArtifactError::UnknownKind`](crate::ArtifactError::UnknownKind), which names the kind
//! and says how to register it.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, RwLock};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::metadata::ModelMetadata;
use crate::prediction::{Predictions, Probabilities};
use crate::records::Records;
use crate::signature::Signature;
use crate::{Result, WharfError};

/// The kind id of Wharf's built-in estimators (logistic, linear, tree, random forest, k-means),
/// provided by the `wharf-ml` crate. Every format-1 artifact holds this kind.
pub const BUILTIN_ESTIMATOR_KIND: &str = "wharf.estimator";

/// The kind id of tree ensembles imported from XGBoost and LightGBM, provided by the
/// `wharf-trees` crate (named here only so an error can say where to find its decoder).
pub const TREE_ENSEMBLE_KIND: &str = "wharf.tree-ensemble";

/// A model family's compiled scoring behaviour.
///
/// Implementations receive the model's [`Signature`] on every call rather than keeping their
/// own copy, so a model's metadata stays the one source of truth for its inputs and classes.
/// The records given to [`predict`](Self::predict) and [`predict_proba`](Self::predict_proba)
/// have not been checked yet: checking them against the signature is part of the kind's job,
/// with errors that name the row and field (as [`WharfError::SchemaMismatch`] or
/// [`WharfError::InvalidInput`]) so servers can report and skip single rows.
pub trait ModelKind: Send + Sync + fmt::Debug + 'static {
    /// The stable id stored in the artifact, e.g. `wharf.estimator`. Never change it once
    /// artifacts exist: loading looks the decoder up by this id.
    fn kind_id(&self) -> &str;

    /// Checks `records` against `signature` exactly as scoring would, without scoring.
    fn validate(&self, signature: &Signature, records: &Records<'_>) -> Result<()>;

    /// One prediction per record.
    fn predict(&self, signature: &Signature, records: &Records<'_>) -> Result<Predictions>;

    /// Class probabilities per record, columns in `signature.classes` order. Only called
    /// for classification models; the default says the kind has none.
    fn predict_proba(&self, signature: &Signature, records: &Records<'_>) -> Result<Probabilities> {
        let _ = (signature, records);
        Err(WharfError::Unsupported(format!("predict_proba for model kind '{}'", self.kind_id())))
    }

    /// The kind's own payload, which its registered decoder reads back.
    fn encode(&self) -> Result<Vec<u8>>;

    /// Checks the decoded parts against `signature`, so a payload that decodes but does not
    /// fit its metadata is refused at load rather than failing (or panicking) in predict.
    fn check(&self, signature: &Signature) -> std::result::Result<(), String>;

    /// A rough count of the basic steps (multiply-adds, tree levels) scoring one row takes: a
    /// size, not a time. Servers score small requests on the spot and hand big ones to a pool.
    fn work_per_row(&self) -> usize;

    /// The concrete type, for callers that know the kind (`model.kind().as_any().downcast_ref`).
    fn as_any(&self) -> &dyn Any;
}

/// Decodes a kind's payload. Gets the already decoded metadata (the signature is in it) and
/// exactly the kind's bytes; returns a message on failure, which the loader wraps in
/// [`ArtifactError::Decode`](crate::ArtifactError::Decode). Consistency is checked after,
/// with [`ModelKind::check`].
pub type DecodeFn = fn(&ModelMetadata, &[u8]) -> std::result::Result<Arc<dyn ModelKind>, String>;

/// A registered decoder: the kind id, the crate that provides it (named in errors), and the
/// function.
#[derive(Clone, Copy)]
pub struct KindDecoder {
    /// The id [`ModelKind::kind_id`] returns for this kind.
    pub id: &'static str,
    /// The crate providing the kind, e.g. `wharf-ml`.
    pub provider: &'static str,
    /// Reads the payload.
    pub decode: DecodeFn,
}

impl fmt::Debug for KindDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KindDecoder").field("id", &self.id).field("provider", &self.provider).finish_non_exhaustive()
    }
}

static DECODERS: RwLock<Vec<KindDecoder>> = RwLock::new(Vec::new());

/// Registers a decoder. Idempotent: the first decoder registered for an id stays, and the
/// result says whether this call added it (`false` when the id was already known).
pub fn register(decoder: KindDecoder) -> bool {
    // A panic while holding the lock cannot leave the list half-written (a push is the only
    // write), so a poisoned lock is still safe to use.
    let mut list = DECODERS.write().unwrap_or_else(|e| e.into_inner());
    if list.iter().any(|d| d.id == decoder.id) {
        return false;
    }
    list.push(decoder);
    true
}

/// The decoder registered for `id`, if any.
pub fn decoder(id: &str) -> Option<KindDecoder> {
    DECODERS.read().unwrap_or_else(|e| e.into_inner()).iter().find(|d| d.id == id).copied()
}

/// The ids of every registered kind, in registration order.
pub fn registered() -> Vec<&'static str> {
    DECODERS.read().unwrap_or_else(|e| e.into_inner()).iter().map(|d| d.id).collect()
}

/// What an error says about an unregistered kind: who provides it and how to register it.
pub(crate) fn registration_hint(id: &str) -> String {
    if id == BUILTIN_ESTIMATOR_KIND {
        "it is provided by the wharf-ml crate: call wharf_ml::register() (or wharf::register_kinds()) \
         before loading; building a wharf::Wharf does this"
            .into()
    } else if id == TREE_ENSEMBLE_KIND {
        "it is provided by the wharf-trees crate (feature `kind`): call wharf_trees::register() (or \
         wharf::register_kinds()) before loading; building a wharf::Wharf does this"
            .into()
    } else {
        "register the decoder of the crate that defines this kind with wharf_core::kind::register \
         before loading"
            .into()
    }
}

/// The largest payload an artifact may announce ([`crate::artifact::DEFAULT_MAX_PAYLOAD`] is
/// this value): far above any model, far below what could exhaust memory.
pub(crate) const PAYLOAD_LIMIT: usize = 1 << 30;

/// Bytes bincode may account for per payload byte. Its limit counts every decoded integer at
/// its in-memory size (8 bytes for a `u64` stored as a 1-byte varint, a length prefix
/// included) and every string at its length, so a valid payload accounts for at most 8 times
/// its length, and a length prefix claiming more is refused before anything is allocated.
const ACCOUNTED_PER_BYTE: usize = 8;

/// The byte limit bincode decodes `len` payload bytes under: 8 times the length, rounded up
/// to the next of 512, 2048, 8192, … bytes (steps of 4: bincode's limit is a type
/// parameter, so it comes in steps), so at most 32 times the length and never under 512. So a 9-byte payload that announces a
/// gigabyte string is refused, where a fixed limit would allocate the gigabyte first.
pub fn decode_limit(len: usize) -> usize {
    let need = len.saturating_mul(ACCOUNTED_PER_BYTE);
    let mut limit = 1usize << 9;
    while limit < need {
        match limit.checked_mul(4) {
            Some(next) => limit = next,
            None => return usize::MAX,
        }
    }
    limit
}

/// Calls `$f::<$t, N>($bytes)` with `N` the bucket [`decode_limit`] picks for `$len`.
macro_rules! with_decode_limit {
    ($f:ident::<$t:ty>($bytes:expr, $len:expr)) => {{
        match $crate::kind::decode_limit($len) {
            n if n <= 1 << 9 => $f::<$t, { 1 << 9 }>($bytes),
            n if n <= 1 << 11 => $f::<$t, { 1 << 11 }>($bytes),
            n if n <= 1 << 13 => $f::<$t, { 1 << 13 }>($bytes),
            n if n <= 1 << 15 => $f::<$t, { 1 << 15 }>($bytes),
            n if n <= 1 << 17 => $f::<$t, { 1 << 17 }>($bytes),
            n if n <= 1 << 19 => $f::<$t, { 1 << 19 }>($bytes),
            n if n <= 1 << 21 => $f::<$t, { 1 << 21 }>($bytes),
            n if n <= 1 << 23 => $f::<$t, { 1 << 23 }>($bytes),
            n if n <= 1 << 25 => $f::<$t, { 1 << 25 }>($bytes),
            n if n <= 1 << 27 => $f::<$t, { 1 << 27 }>($bytes),
            n if n <= 1 << 29 => $f::<$t, { 1 << 29 }>($bytes),
            n if n <= 1 << 31 => $f::<$t, { 1 << 31 }>($bytes),
            _ => $f::<$t, { $crate::kind::PAYLOAD_LIMIT.saturating_mul(8) }>($bytes),
        }
    }};
}
pub(crate) use with_decode_limit;

/// bincode (the artifact's codec, standard configuration) with byte limit `N`, owned data.
fn decode_owned<T: DeserializeOwned, const N: usize>(
    bytes: &[u8],
) -> std::result::Result<(T, usize), bincode::error::DecodeError> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard().with_limit::<N>())
}

/// bincode with byte limit `N`, borrowing from `bytes` where the type allows.
pub(crate) fn decode_borrowed<'de, T: serde::Deserialize<'de>, const N: usize>(
    bytes: &'de [u8],
) -> std::result::Result<(T, usize), bincode::error::DecodeError> {
    bincode::serde::borrow_decode_from_slice(bytes, bincode::config::standard().with_limit::<N>())
}

/// Encodes `value` with the artifact's codec (bincode 2, standard configuration): a
/// convenience for kinds whose payload is a serde type.
pub fn encode_payload<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|e| WharfError::artifact("<bytes>", crate::ArtifactError::Decode(format!("encode: {e}"))))
}

/// Decodes a payload written by [`encode_payload`], with a byte limit set by the length of
/// `bytes` ([`decode_limit`]: no length prefix can claim memory the payload could not fill)
/// and refusing trailing bytes.
pub fn decode_payload<T: DeserializeOwned>(bytes: &[u8]) -> std::result::Result<T, String> {
    let (value, used): (T, usize) =
        with_decode_limit!(decode_owned::<T>(bytes, bytes.len())).map_err(|e| e.to_string())?;
    if used != bytes.len() {
        return Err(format!("{} bytes left after the model", bytes.len() - used));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decode_limit_follows_the_payload_length() {
        assert_eq!(decode_limit(0), 512);
        assert_eq!(decode_limit(9), 512);
        assert_eq!(decode_limit(100), 2048);
        assert!(decode_limit(1 << 20) >= 8 << 20 && decode_limit(1 << 20) <= 32 << 20);
        assert!(decode_limit(PAYLOAD_LIMIT) >= 8 * PAYLOAD_LIMIT);
        // A 9-byte payload announcing a 1 GiB string is refused without the allocation.
        let mut bomb = vec![0xFD];
        bomb.extend_from_slice(&(1u64 << 30).to_le_bytes());
        let err = decode_payload::<String>(&bomb).expect_err("refused");
        assert!(err.contains("Limit"), "{err}");
    }
}
