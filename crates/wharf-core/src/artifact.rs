//! The `.wharf` model artifact: a fixed header, a bincode payload, and its SHA-256.
//!
//! ```text
//! offset  size  field
//! 0       8     magic  b"WHARFMDL"
//! 8       2     format version (u16 LE), currently 2
//! 10      1     payload codec (1 = bincode 2, standard config, serde)
//! 11      1     reserved, 0
//! 12      16    wharf version that wrote it, UTF-8, NUL-padded
//! 28      8     payload length (u64 LE)
//! 36      32    SHA-256 of the payload
//! 68      n     payload
//! ```
//!
//! The payload (format 2) is the model's metadata, then its kind id (a string), then the
//! kind's own bytes, which the decoder registered for that id reads (see [`crate::kind`]).
//! Format 1 had no kind id: its payload was the metadata followed by the built-in estimator's
//! bytes, so a format-1 file is read as kind [`BUILTIN_ESTIMATOR_KIND`].
//!
//! Loading checks, in order: magic, version, codec, announced size against the limit,
//! actual size, checksum, then decodes with a byte limit (no allocation can exceed the
//! payload's size), finds the kind's decoder (an unregistered kind is
//! [`ArtifactError::UnknownKind`]) and finally checks the decoded model for internal
//! consistency. A kind id names a decoder registered in this process, never code to load:
//! unlike a pickle, loading can only ever yield data or a typed [`ArtifactError`].

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::ArtifactError;
use crate::kind::{self, decode_borrowed, BUILTIN_ESTIMATOR_KIND};
use crate::metadata::ModelMetadata;
use crate::{Model, Result, WharfError};

/// The first bytes of every artifact.
pub const MAGIC: [u8; 8] = *b"WHARFMDL";
/// The newest format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 2;
/// The first format, whose payload had no kind id (every model was a built-in estimator).
pub const FORMAT_VERSION_1: u16 = 1;
/// Codec id of bincode 2 (standard configuration) over serde.
pub const CODEC_BINCODE: u8 = 1;
/// Header size in bytes.
pub const HEADER_LEN: usize = 68;
/// Default ceiling on a payload: far above any model Wharf trains, far below what could
/// exhaust memory. A kind's own payload is decoded under the same ceiling
/// ([`kind::decode_payload`]).
pub const DEFAULT_MAX_PAYLOAD: u64 = kind::PAYLOAD_LIMIT as u64;

/// The parsed header of an artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Format version.
    pub format_version: u16,
    /// Payload codec id.
    pub codec: u8,
    /// The wharf version that wrote the file.
    pub writer_version: String,
    /// Payload length in bytes.
    pub payload_len: u64,
    /// SHA-256 of the payload.
    pub sha256: [u8; 32],
}

impl Header {
    /// The payload checksum as lower-case hex.
    pub fn sha256_hex(&self) -> String {
        crate::fsutil::hex(&self.sha256)
    }
}

fn bincode_config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Serialises `model` into artifact bytes.
pub fn encode(model: &Model) -> Result<Vec<u8>> {
    let encode_error =
        |e: bincode::error::EncodeError| WharfError::artifact("<bytes>", ArtifactError::Decode(format!("encode: {e}")));
    let mut payload = bincode::serde::encode_to_vec(model.metadata(), bincode_config()).map_err(encode_error)?;
    payload.extend(bincode::serde::encode_to_vec(model.kind_id(), bincode_config()).map_err(encode_error)?);
    payload.extend(model.kind().encode()?);
    let digest: [u8; 32] = Sha256::digest(&payload).into();
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.push(CODEC_BINCODE);
    out.push(0);
    let mut version = [0u8; 16];
    let v = env!("CARGO_PKG_VERSION").as_bytes();
    version[..v.len().min(16)].copy_from_slice(&v[..v.len().min(16)]);
    out.extend_from_slice(&version);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&digest);
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Parses and checks the header of `bytes` (which may hold only the header).
pub fn read_header(bytes: &[u8]) -> std::result::Result<Header, ArtifactError> {
    if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
        // A short file that is a prefix of the magic is a truncated artifact, not a foreign file.
        if bytes.len() < MAGIC.len() && MAGIC.starts_with(bytes) {
            return Err(ArtifactError::Truncated { expected: HEADER_LEN as u64, found: bytes.len() as u64 });
        }
        return Err(ArtifactError::BadMagic);
    }
    if bytes.len() < HEADER_LEN {
        return Err(ArtifactError::Truncated { expected: HEADER_LEN as u64, found: bytes.len() as u64 });
    }
    let format_version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if format_version == 0 || format_version > FORMAT_VERSION {
        return Err(ArtifactError::UnsupportedVersion { found: format_version, supported: FORMAT_VERSION });
    }
    let codec = bytes[10];
    if codec != CODEC_BINCODE {
        return Err(ArtifactError::UnknownCodec(codec));
    }
    let writer = &bytes[12..28];
    let end = writer.iter().position(|b| *b == 0).unwrap_or(writer.len());
    let writer_version = String::from_utf8_lossy(&writer[..end]).into_owned();
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[28..36]);
    let mut sha256 = [0u8; 32];
    sha256.copy_from_slice(&bytes[36..68]);
    Ok(Header { format_version, codec, writer_version, payload_len: u64::from_le_bytes(len), sha256 })
}

/// Decodes artifact bytes with the default payload limit.
pub fn decode(bytes: &[u8]) -> std::result::Result<Model, ArtifactError> {
    decode_with_limit(bytes, DEFAULT_MAX_PAYLOAD)
}

/// Decodes artifact bytes, refusing payloads larger than `limit`.
pub fn decode_with_limit(bytes: &[u8], limit: u64) -> std::result::Result<Model, ArtifactError> {
    let header = read_header(bytes)?;
    if header.payload_len > limit {
        return Err(ArtifactError::Oversized { size: header.payload_len, limit });
    }
    let body = &bytes[HEADER_LEN..];
    let found = body.len() as u64;
    if found < header.payload_len {
        return Err(ArtifactError::Truncated {
            expected: HEADER_LEN as u64 + header.payload_len,
            found: HEADER_LEN as u64 + found,
        });
    }
    if found > header.payload_len {
        return Err(ArtifactError::TrailingBytes(found - header.payload_len));
    }
    let digest: [u8; 32] = Sha256::digest(body).into();
    if digest != header.sha256 {
        return Err(ArtifactError::ChecksumMismatch);
    }
    // The limit follows the announced payload length (kind::decode_limit), so a length
    // prefix claiming more than the payload could hold is refused before any allocation:
    // a 9-byte payload cannot make the loader reserve a gigabyte.
    let decode_error = |e: bincode::error::DecodeError| ArtifactError::Decode(e.to_string());
    let (metadata, used): (ModelMetadata, usize) =
        kind::with_decode_limit!(decode_borrowed::<ModelMetadata>(body, body.len())).map_err(decode_error)?;
    let mut rest = &body[used..];
    let kind_id = if header.format_version == FORMAT_VERSION_1 {
        BUILTIN_ESTIMATOR_KIND.to_string()
    } else {
        let (id, used): (String, usize) =
            kind::with_decode_limit!(decode_borrowed::<String>(rest, rest.len())).map_err(decode_error)?;
        rest = &rest[used..];
        id
    };
    let decoder = kind::decoder(&kind_id)
        .ok_or_else(|| ArtifactError::UnknownKind { hint: kind::registration_hint(&kind_id), kind: kind_id.clone() })?;
    let decoded = (decoder.decode)(&metadata, rest).map_err(ArtifactError::Decode)?;
    if decoded.kind_id() != kind_id {
        return Err(ArtifactError::Decode(format!(
            "the decoder for kind '{kind_id}' returned a model of kind '{}'",
            decoded.kind_id()
        )));
    }
    Model::checked(metadata, decoded).map_err(ArtifactError::Decode)
}

/// Reads and decodes an artifact file. The file's size is checked against the limit before
/// anything is read, so a huge file is refused without being loaded.
pub fn read_file(path: &Path) -> Result<Model> {
    let bytes = read_bytes(path)?;
    decode(&bytes).map_err(|kind| WharfError::artifact(path.display().to_string(), kind))
}

/// An artifact file's bytes, for loaders that check them before decoding (a registry
/// comparing the checksum it recorded). The file's size is checked against the limit
/// before anything is read, and no more than the limit is ever read (a file growing while
/// it is read is cut there), so a huge or sparse file is refused at once.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => WharfError::not_found(format!("model artifact {shown}")),
        _ => WharfError::io(path, e),
    })?;
    let size = file.metadata().map_err(|e| WharfError::io(path, e))?.len();
    let max = HEADER_LEN as u64 + DEFAULT_MAX_PAYLOAD;
    if size > max {
        return Err(WharfError::artifact(
            shown,
            ArtifactError::Oversized { size: size - HEADER_LEN as u64, limit: DEFAULT_MAX_PAYLOAD },
        ));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(max + 1).read_to_end(&mut bytes).map_err(|e| WharfError::io(path, e))?;
    Ok(bytes)
}

impl Model {
    /// Saves the model as a `.wharf` artifact (atomically: a crash leaves the old file or
    /// none, never half of one).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let bytes = encode(self)?;
        crate::fsutil::write_atomic(path.as_ref(), &bytes)
    }

    /// Loads a `.wharf` artifact, verifying header, checksum and consistency. The model's
    /// kind must be registered (see [`crate::kind`]).
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        read_file(path.as_ref())
    }
}

/// Versions of the libraries that produce and read models, as far as the core knows: wharf
/// and the artifact format. Model crates add their own (`wharf_ml::library_versions`).
pub fn library_versions() -> BTreeMap<String, String> {
    [("wharf", env!("CARGO_PKG_VERSION").to_string()), ("artifact_format", FORMAT_VERSION.to_string())]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}
