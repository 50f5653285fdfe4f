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
