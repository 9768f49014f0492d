//! HTTPS: rustls (ring provider, as the HTTP clients of the workspace already build it) from
//! PEM files, with an optional check of client certificates (mTLS).
//!
//! Files are read once, at start: a missing or unreadable file, a key that does not match,
//! or a CA file with no certificate stops the server before it listens, with the config key
//! and the path in the error (never a file's content).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// The TLS files of `[serving]`: `tls_cert`, `tls_key` and optionally `tls_client_ca`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of the certificate.
    pub key: PathBuf,
    /// PEM CA certificates; when set, a client must present a certificate one of them
    /// signed, or the handshake fails.
    pub client_ca: Option<PathBuf>,
}

fn error(key: &str, path: &Path, detail: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("serving.{key} ({}): {detail}", path.display()))
}

fn certificates(key: &str, path: &Path) -> std::io::Result<Vec<CertificateDer<'static>>> {
    if path.as_os_str().is_empty() {
        return Err(std::io::Error::other(format!("serving.{key} is not set (TLS needs tls_cert and tls_key)")));
    }
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| error(key, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(key, path, e))?;
    if certs.is_empty() {
        return Err(error(key, path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

/// The acceptor for `files`, or an error naming the setting at fault.
pub(crate) fn acceptor(files: &TlsFiles) -> std::io::Result<TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates("tls_cert", &files.cert)?;
    if files.key.as_os_str().is_empty() {
        return Err(std::io::Error::other("serving.tls_key is not set (TLS needs tls_cert and tls_key)"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| error("tls_key", &files.key, e))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates("tls_client_ca", path)? {
                roots.add(cert).map_err(|e| error("tls_client_ca", path, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| error("tls_client_ca", path, e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| error("tls_key", &files.key, e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
