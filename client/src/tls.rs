//! TLS (memcached's `-Z`) through rustls, over any runtime's [`ByteStream`]: written once,
//! so every adapter has it. Certificates are always verified: against the roots given here,
//! for the server's host name (or the name set with [`TlsConfig::server_name`]).

use crate::io::{AsFuturesIo, ByteStream, FuturesIo};
use futures_rustls::rustls::{self, pki_types};
use std::io;
use std::sync::Arc;

pub use futures_rustls::rustls as rustls_crate;

/// How to open TLS connections.
#[derive(Clone)]
pub struct TlsConfig {
    config: Arc<rustls::ClientConfig>,
    server_name: Option<String>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// From a rustls client configuration (roots, client certificates, protocol versions).
    pub fn new(config: Arc<rustls::ClientConfig>) -> Self {
        TlsConfig {
            config,
            server_name: None,
        }
    }

    /// Trusts the CA or self-signed certificates in `pem` (ring crypto, safe defaults).
    pub fn with_root_certificates_pem(pem: &[u8]) -> io::Result<Self> {
        use pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in pki_types::CertificateDer::pem_slice_iter(pem) {
            let cert =
                cert.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            roots
                .add(cert)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
        Self::with_roots(roots)
    }

    /// Trusts Mozilla's root certificates, built into the program (the `webpki-roots`
    /// crate; ring crypto, safe defaults). Feature `webpki-roots`.
    #[cfg(feature = "webpki-roots")]
    #[cfg_attr(docsrs, doc(cfg(feature = "webpki-roots")))]
    pub fn webpki_roots() -> io::Result<Self> {
        Self::with_roots(webpki_store())
    }

    /// Trusts the platform's root certificates, read when called (on Linux the system's
    /// CA bundle, `SSL_CERT_FILE`/`SSL_CERT_DIR` if set; ring crypto, safe defaults).
    /// Feature `native-roots`. An error of kind [`io::ErrorKind::NotFound`] if the platform
    /// has none that can be used; certificates that fail to load are skipped while others
    /// load.
    #[cfg(feature = "native-roots")]
    #[cfg_attr(docsrs, doc(cfg(feature = "native-roots")))]
    pub fn native_roots() -> io::Result<Self> {
        Self::with_roots(native_store()?)
    }

    /// A configuration trusting `roots`, with ring crypto and safe protocol versions.
    fn with_roots(roots: rustls::RootCertStore) -> io::Result<Self> {
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(TlsConfig::new(Arc::new(config)))
    }

    /// The name to verify the server's certificate against (default: the host of the
    /// address; required for a unix socket, which has no host).
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// The name certificates are checked against: the one set, else `host`.
    pub(crate) fn name_for<'a>(&'a self, host: Option<&'a str>) -> Option<&'a str> {
        self.server_name.as_deref().or(host)
    }

    /// A rustls client session for `name`, for the blocking client (which drives the
    /// handshake over its std socket).
    #[cfg(feature = "blocking")]
    pub(crate) fn session(&self, name: &str) -> io::Result<rustls::ClientConnection> {
        let name = pki_types::ServerName::try_from(name.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        rustls::ClientConnection::new(self.config.clone(), name).map_err(io::Error::other)
    }

    /// Runs the TLS handshake over `stream`.
    pub(crate) async fn handshake(
        &self,
        name: &str,
        stream: Box<dyn ByteStream>,
    ) -> io::Result<Box<dyn ByteStream>> {
        let name = pki_types::ServerName::try_from(name.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let tls = futures_rustls::TlsConnector::from(self.config.clone())
            .connect(name, AsFuturesIo(stream))
            .await?;
        Ok(Box::new(FuturesIo(tls)))
    }
}

/// The roots `memcaches://` trusts when no `TlsConfig` was given first (the blocking
/// builder's; the async one has the same rule): the platform's (feature `native-roots`), else
/// Mozilla's (feature `webpki-roots`), else [`ParseError::NoTlsRoots`].
#[cfg(feature = "blocking")]
pub(crate) fn url_roots(input: &str) -> Result<TlsConfig, crate::ParseError> {
    #[cfg(feature = "native-roots")]
    let loaded = Some(TlsConfig::native_roots());
    #[cfg(all(feature = "webpki-roots", not(feature = "native-roots")))]
    let loaded = Some(TlsConfig::webpki_roots());
    #[cfg(not(any(feature = "webpki-roots", feature = "native-roots")))]
    let loaded: Option<io::Result<TlsConfig>> = None;
    let input = input.to_string();
    match loaded {
        Some(roots) => roots.map_err(|e| crate::ParseError::TlsRoots {
            input,
            reason: e.to_string(),
        }),
        None => Err(crate::ParseError::NoTlsRoots { input }),
    }
}

/// Mozilla's roots as a store.
#[cfg(feature = "webpki-roots")]
fn webpki_store() -> rustls::RootCertStore {
    rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// The platform's roots as a store; `NotFound` if none loads.
#[cfg(feature = "native-roots")]
fn native_store() -> io::Result<rustls::RootCertStore> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found
            .errors
            .first()
            .map_or_else(|| "none found".to_string(), ToString::to_string);
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no usable root certificate on this platform: {why}"),
        ));
    }
    if !found.errors.is_empty() {
        tracing::debug!(errors = ?found.errors, "some platform root certificates did not load");
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    #[cfg(feature = "webpki-roots")]
    #[test]
    fn webpki_roots_are_built_in() {
        assert!(super::webpki_store().len() > 50);
        assert!(super::TlsConfig::webpki_roots().is_ok());
    }

    #[cfg(feature = "native-roots")]
    #[test]
    fn native_roots_load_or_say_why() {
        match super::TlsConfig::native_roots() {
            Ok(_) => assert!(super::native_store().is_ok_and(|s| !s.is_empty())),
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}");
                assert!(e.to_string().contains("root certificate"), "{e}");
            }
        }
    }

    #[test]
    fn pem_roots_refuse_garbage() {
        let pem = b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n";
        assert!(super::TlsConfig::with_root_certificates_pem(pem).is_err());
    }
}
