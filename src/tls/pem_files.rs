//! A certificate chain and its private key read from PEM files into what rustls signs
//! handshakes with.

use std::path::Path;

use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::TlsError;

/// Reads `cert` (leaf first, then intermediates) and `key`, and checks that they
/// belong together.
pub fn load(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let bad = |path: &Path, why: String| TlsError::File {
        path: path.display().to_string(),
        why,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(bad(cert, "no CERTIFICATE block".into()));
    }
    // The error text of a bad key file never includes the key.
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, e.to_string()))?;
    from_der(chain, private).map_err(|why| bad(key, why))
}

/// Pairs a DER chain with its key; refuses a key that does not match the leaf.
pub fn from_der(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<CertifiedKey, String> {
    let signer = any_supported_type(&key).map_err(|e| format!("unusable private key: {e}"))?;
    let certified = CertifiedKey::new(chain, signer);
    certified
        .keys_match()
        .map_err(|e| format!("key does not match the certificate: {e}"))?;
    Ok(certified)
}
