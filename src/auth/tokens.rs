//! JSON Web Tokens (RFC 7519) for the API and for playback.
//!
//! The algorithm is pinned by configuration and never read from a token: a token whose
//! header names another algorithm (`none`, or HS256 "signed" with our public key) is
//! refused before any signature check. `exp`, `nbf`, `iss` and `aud` are required and
//! checked on every token. Audiences keep the two kinds apart: an access token
//! (`api`) never opens a stream, a playback token (`playback`) never calls the API.

use std::path::Path;

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Role;
use crate::config::{AuthConfig, JwtAlgorithm};

/// File in the data directory holding the Ed25519 private key (PKCS#8 DER, mode 0600).
pub const ED25519_KEY_FILE: &str = "jwt-ed25519.pk8";
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_S: u64 = 5;

/// Who a token is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// The REST API (access tokens).
    Api,
    /// HLS delivery of one stream (playback tokens).
    Playback,
}

impl Audience {
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Api => "api",
            Audience::Playback => "playback",
        }
    }
}

/// The claims panocast writes and reads.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// User id (access) or the requesting user's id (playback).
    pub sub: String,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
    /// Role of the user, in access tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Stream id, in playback tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
}

/// Why a token was refused. Deliberately coarse: the reason is logged at debug level,
/// the client only learns "invalid token".
#[derive(Debug, thiserror::Error)]
#[error("invalid token: {0}")]
pub struct TokenError(String);

/// Could not load or create the signing key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("JWT key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("JWT key file {path} is not an Ed25519 PKCS#8 key")]
    Invalid { path: String },
    #[error("HS256 needs auth.jwt_secret")]
    NoSecret,
}

/// Signing and verification keys, fixed for the life of the process.
pub struct TokenKeys {
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: Option<String>,
    jwks: serde_json::Value,
    issuer: String,
}

impl TokenKeys {
    /// The configured keys: for EdDSA, the key pair in `data_dir` (generated on first
    /// start); for HS256, the configured secret.
    pub fn load_or_create(config: &AuthConfig, data_dir: &Path) -> Result<Self, KeyError> {
        match config.jwt_algorithm {
            JwtAlgorithm::HS256 => {
                let secret = config.jwt_secret.as_ref().ok_or(KeyError::NoSecret)?;
                Ok(Self {
                    algorithm: Algorithm::HS256,
                    encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
                    decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
                    kid: None,
                    // A shared secret is never published.
                    jwks: serde_json::json!({ "keys": [] }),
                    issuer: config.issuer.clone(),
                })
            }
            JwtAlgorithm::EdDSA => {
                let path = data_dir.join(ED25519_KEY_FILE);
                let shown = path.display().to_string();
                let io = |source| KeyError::Io {
                    path: shown.clone(),
                    source,
                };
                let pkcs8 = match std::fs::read(&path) {
                    Ok(bytes) => bytes,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        std::fs::create_dir_all(data_dir).map_err(io)?;
                        let doc = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
                            .map_err(|_| KeyError::Invalid {
                                path: shown.clone(),
                            })?;
                        crate::data_dir::write_secret(&path, doc.as_ref()).map_err(io)?;
                        tracing::info!(path = %shown, "generated a new Ed25519 token signing key");
                        doc.as_ref().to_vec()
                    }
                    Err(e) => return Err(io(e)),
                };
                Self::from_ed25519_pkcs8(&pkcs8, &config.issuer).ok_or(KeyError::Invalid {
                    path: shown.clone(),
                })
            }
        }
    }

    /// EdDSA keys from a PKCS#8 document.
    pub fn from_ed25519_pkcs8(pkcs8: &[u8], issuer: &str) -> Option<Self> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).ok()?;
        let public = pair.public_key().as_ref().to_vec();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let kid = b64.encode(&Sha256::digest(&public)[..12]);
        let x = b64.encode(&public);
        Some(Self {
            algorithm: Algorithm::EdDSA,
            encoding: EncodingKey::from_ed_der(pkcs8),
            decoding: DecodingKey::from_ed_der(&public),
            jwks: serde_json::json!({
                "keys": [{
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "alg": "EdDSA",
                    "use": "sig",
                    "kid": kid,
                    "x": x,
                }]
            }),
            kid: Some(kid),
            issuer: issuer.to_string(),
        })
    }

    /// The public keys as a JWK Set (RFC 7517); empty for HS256.
    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Signs `claims` with the configured key.
    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        let mut header = Header::new(self.algorithm);
        header.kid = self.kid.clone();
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|e| TokenError(e.to_string()))
    }

    /// Claims for a new token of `audience`, valid from now for `ttl_s`.
    pub fn claims(&self, audience: Audience, sub: &str, ttl_s: u64) -> Claims {
        let now = crate::db::now().max(0) as u64;
        Claims {
            iss: self.issuer.clone(),
            aud: audience.as_str().to_string(),
            sub: sub.to_string(),
            exp: now + ttl_s,
            nbf: now,
            iat: now,
            role: None,
            stream: None,
        }
    }

    /// Verifies signature (with the pinned algorithm only), `exp`, `nbf`, `iss` and
    /// that `aud` is `audience`.
    pub fn verify(&self, token: &str, audience: Audience) -> Result<Claims, TokenError> {
        let mut validation = Validation::new(self.algorithm);
        validation.leeway = LEEWAY_S;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[self.issuer.as_str()]);
        validation.set_audience(&[audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|e| TokenError(e.to_string()))?;
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        let doc = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).expect("key");
        TokenKeys::from_ed25519_pkcs8(doc.as_ref(), "panocast").expect("keys")
    }

    #[test]
    fn audiences_do_not_mix() {
        let k = keys();
        let token = k.sign(&k.claims(Audience::Api, "usr_1", 60)).expect("sign");
        assert_eq!(k.verify(&token, Audience::Api).expect("valid").sub, "usr_1");
        assert!(k.verify(&token, Audience::Playback).is_err());
    }

    #[test]
    fn another_key_and_alg_none_are_refused() {
        let (a, b) = (keys(), keys());
        let token = a.sign(&a.claims(Audience::Api, "u", 60)).expect("sign");
        assert!(b.verify(&token, Audience::Api).is_err());
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = token.split('.').nth(1).expect("payload");
        let none = format!(
            "{}.{payload}.",
            b64.encode(br#"{"alg":"none","typ":"JWT"}"#)
        );
        assert!(a.verify(&none, Audience::Api).is_err());
    }
}
