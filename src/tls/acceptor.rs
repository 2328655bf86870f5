//! rustls server configurations over one [`CertStore`]: HTTPS offers HTTP/2 and
//! HTTP/1.1 by ALPN (RFC 7301; Safari speaks LL-HLS only over h2), RTMPS offers none.

use std::sync::Arc;

use rustls::crypto::ring::default_provider;
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use super::resolver::CertStore;
use super::TlsError;

/// ALPN protocol ids, preferred first.
pub const HTTPS_ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

pub fn https(store: &Arc<CertStore>) -> Result<TlsAcceptor, TlsError> {
    let mut config = base(store)?;
    config.alpn_protocols = HTTPS_ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(TlsAcceptor::from(Arc::new(config)))
}

pub fn rtmps(store: &Arc<CertStore>) -> Result<TlsAcceptor, TlsError> {
    Ok(TlsAcceptor::from(Arc::new(base(store)?)))
}

/// TLS 1.2 and 1.3 with ring's default suites; certificates from `store`.
fn base(store: &Arc<CertStore>) -> Result<ServerConfig, TlsError> {
    let resolver: Arc<CertStore> = Arc::clone(store);
    Ok(
        ServerConfig::builder_with_provider(Arc::new(default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Generate(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(resolver),
    )
}
