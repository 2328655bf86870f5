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
pub(crate) const LEEWAY_S: u64 = 5;

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
    /// Stream id, in playback tokens of a live stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// Asset id, in playback tokens of an on-demand asset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<String>,
    /// Viewer session id (`vs_…`), in playback tokens: the audience analytics count
    /// one session per token (src/analytics). Tokens signed before it existed have
    /// none and still verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
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

/// Directory in the data directory holding the public halves of retired Ed25519 keys,
/// one file each, named `<valid until, Unix seconds>-<kid>.pub` (32 raw bytes).
pub const RETIRED_KEYS_DIR: &str = "jwt-retired";

/// The key that signs new tokens.
struct SigningKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// `None` for HS256 (one shared secret, nothing to tell apart).
    kid: Option<String>,
    /// The public JWK; `None` for HS256, whose secret is never published.
    jwk: Option<serde_json::Value>,
}

/// A key that signed tokens before a rotation: it still verifies them until the last
/// one it signed has expired.
struct RetiredKey {
    kid: String,
    decoding: DecodingKey,
    jwk: serde_json::Value,
    /// Unix seconds.
    valid_until: u64,
}

struct KeySet {
    signing: SigningKey,
    retired: Vec<RetiredKey>,
}

/// A retired key as the API shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct RetiredKeyInfo {
    pub kid: String,
    /// Until when tokens it signed still verify (RFC 3339).
    pub valid_until: String,
}

/// The signing keys as the API shows them (no key material).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SigningKeysInfo {
    /// `kid` of the key that signs new tokens.
    pub current_kid: String,
    pub retired: Vec<RetiredKeyInfo>,
}

/// Why a rotation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error("HS256 signs with auth.jwt_secret from the config: change the secret there")]
    SharedSecret,
    #[error("{0}")]
    Key(#[from] KeyError),
}

/// Signing and verification keys. EdDSA keys rotate at run time ([`TokenKeys::rotate`]);
/// retired keys keep verifying (and stay in the JWKS) until every token they signed has
/// expired, and are kept on disk so a restart does not cut those tokens off.
pub struct TokenKeys {
    algorithm: Algorithm,
    issuer: String,
    keys: std::sync::RwLock<KeySet>,
    /// Where the Ed25519 keys live; `None` for HS256 and for keys made in memory.
    dir: Option<std::path::PathBuf>,
    /// How long a retired key keeps verifying: the longest token lifetime.
    keep_s: u64,
}

impl TokenKeys {
    /// The configured keys: for EdDSA, the key pair in `data_dir` (generated on first
    /// start) and the retired keys still needed; for HS256, the configured secret.
    pub fn load_or_create(config: &AuthConfig, data_dir: &Path) -> Result<Self, KeyError> {
        let keep_s = config.access_ttl_s.max(config.playback_ttl_s) + LEEWAY_S;
        match config.jwt_algorithm {
            JwtAlgorithm::HS256 => {
                let secret = config.jwt_secret.as_ref().ok_or(KeyError::NoSecret)?;
                let signing = SigningKey {
                    encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
                    decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
                    kid: None,
                    jwk: None,
                };
                Ok(Self::with(
                    Algorithm::HS256,
                    &config.issuer,
                    signing,
                    Vec::new(),
                    None,
                    keep_s,
                ))
            }
            JwtAlgorithm::EdDSA => {
                let path = data_dir.join(ED25519_KEY_FILE);
                let io = io_error(&path);
                let pkcs8 = match std::fs::read(&path) {
                    Ok(bytes) => bytes,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        std::fs::create_dir_all(data_dir).map_err(&io)?;
                        let doc = new_ed25519_pkcs8(&path)?;
                        crate::data_dir::write_secret(&path, &doc).map_err(&io)?;
                        tracing::info!(path = %path.display(), "generated a new Ed25519 token signing key");
                        doc
                    }
                    Err(e) => return Err(io(e)),
                };
                let signing = ed25519_signing(&pkcs8).ok_or(KeyError::Invalid {
                    path: path.display().to_string(),
                })?;
                let retired = load_retired(&data_dir.join(RETIRED_KEYS_DIR))?;
                Ok(Self::with(
                    Algorithm::EdDSA,
                    &config.issuer,
                    signing,
                    retired,
                    Some(data_dir.to_path_buf()),
                    keep_s,
                ))
            }
        }
    }

    /// EdDSA keys from a PKCS#8 document, in memory only (rotations are not kept).
    pub fn from_ed25519_pkcs8(pkcs8: &[u8], issuer: &str) -> Option<Self> {
        let signing = ed25519_signing(pkcs8)?;
        Some(Self::with(
            Algorithm::EdDSA,
            issuer,
            signing,
            Vec::new(),
            None,
            3600,
        ))
    }

    fn with(
        algorithm: Algorithm,
        issuer: &str,
        signing: SigningKey,
        retired: Vec<RetiredKey>,
        dir: Option<std::path::PathBuf>,
        keep_s: u64,
    ) -> Self {
        Self {
            algorithm,
            issuer: issuer.to_string(),
            keys: std::sync::RwLock::new(KeySet { signing, retired }),
            dir,
            keep_s,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, KeySet> {
        self.keys.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The public keys as a JWK Set (RFC 7517): the signing key and every retired key
    /// still in use; empty for HS256.
    pub fn jwks(&self) -> serde_json::Value {
        let now = unix_now();
        let set = self.read();
        let keys: Vec<_> = set
            .signing
            .jwk
            .iter()
            .chain(
                set.retired
                    .iter()
                    .filter(|r| r.valid_until > now)
                    .map(|r| &r.jwk),
            )
            .cloned()
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// The current and retired key ids, for the API.
    pub fn info(&self) -> SigningKeysInfo {
        let now = unix_now();
        let set = self.read();
        SigningKeysInfo {
            current_kid: set.signing.kid.clone().unwrap_or_default(),
            retired: set
                .retired
                .iter()
                .filter(|r| r.valid_until > now)
                .map(|r| RetiredKeyInfo {
                    kid: r.kid.clone(),
                    valid_until: rfc3339(r.valid_until),
                })
                .collect(),
        }
    }

    /// Makes a new Ed25519 signing key; the old one verifies the tokens it signed
    /// until they expire. On disk first (the old public key into the retired
    /// directory, the new private key written beside and renamed over the old one), so
    /// a crash at any point leaves keys that verify every token handed out.
    pub fn rotate(&self) -> Result<SigningKeysInfo, RotateError> {
        if self.algorithm != Algorithm::EdDSA {
            return Err(RotateError::SharedSecret);
        }
        let mut set = self.keys.write().unwrap_or_else(|p| p.into_inner());
        let now = unix_now();
        let valid_until = now + self.keep_s;
        let (Some(old_kid), Some(old_jwk)) = (set.signing.kid.clone(), set.signing.jwk.clone())
        else {
            return Err(RotateError::SharedSecret);
        };
        let pkcs8 = match &self.dir {
            Some(dir) => {
                let current = dir.join(ED25519_KEY_FILE);
                let fresh = dir.join(format!("{ED25519_KEY_FILE}.new"));
                let retired_dir = dir.join(RETIRED_KEYS_DIR);
                let io = io_error(&retired_dir);
                std::fs::create_dir_all(&retired_dir)
                    .map_err(&io)
                    .map_err(RotateError::from)?;
                let public = old_jwk["x"]
                    .as_str()
                    .and_then(|x| {
                        base64::engine::general_purpose::URL_SAFE_NO_PAD
                            .decode(x)
                            .ok()
                    })
                    .ok_or(KeyError::Invalid {
                        path: current.display().to_string(),
                    })?;
                let retired_file = retired_dir.join(format!("{valid_until}-{old_kid}.pub"));
                crate::data_dir::write_secret(&retired_file, &public)
                    .map_err(io_error(&retired_file))
                    .map_err(RotateError::from)?;
                let doc = new_ed25519_pkcs8(&fresh)?;
                crate::data_dir::write_secret(&fresh, &doc)
                    .map_err(io_error(&fresh))
                    .map_err(RotateError::from)?;
                std::fs::rename(&fresh, &current)
                    .map_err(io_error(&current))
                    .map_err(RotateError::from)?;
                doc
            }
            None => new_ed25519_pkcs8(Path::new("memory"))?,
        };
        let signing = ed25519_signing(&pkcs8).ok_or(KeyError::Invalid {
            path: "new key".into(),
        })?;
        let old = std::mem::replace(&mut set.signing, signing);
        set.retired.retain(|r| r.valid_until > now);
        set.retired.push(RetiredKey {
            kid: old_kid.clone(),
            decoding: old.decoding,
            jwk: old_jwk,
            valid_until,
        });
        drop(set);
        let info = self.info();
        tracing::info!(retired = %old_kid, current = %info.current_kid, "token signing key rotated");
        Ok(info)
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Signs `claims` with the current key.
    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        let set = self.read();
        let mut header = Header::new(self.algorithm);
        header.kid = set.signing.kid.clone();
        jsonwebtoken::encode(&header, claims, &set.signing.encoding)
            .map_err(|e| TokenError(e.to_string()))
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
            asset: None,
            sid: None,
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
        // The key is chosen by `kid` among ours; the algorithm stays the pinned one.
        let kid = jsonwebtoken::decode_header(token)
            .map_err(|e| TokenError(e.to_string()))?
            .kid;
        let set = self.read();
        // A token without a `kid` (ours always carry one) is tried with the current key.
        let decoding = if kid.is_none() || kid == set.signing.kid {
            &set.signing.decoding
        } else {
            let now = unix_now();
            &set.retired
                .iter()
                .find(|r| Some(&r.kid) == kid.as_ref() && r.valid_until > now)
                .ok_or_else(|| TokenError("signed by a key this server does not know".into()))?
                .decoding
        };
        let data = jsonwebtoken::decode::<Claims>(token, decoding, &validation)
            .map_err(|e| TokenError(e.to_string()))?;
        Ok(data.claims)
    }
}

fn unix_now() -> u64 {
    crate::db::now().max(0) as u64
}

fn rfc3339(unix_s: u64) -> String {
    chrono::DateTime::from_timestamp(i64::try_from(unix_s).unwrap_or(i64::MAX), 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn new_ed25519_pkcs8(path: &Path) -> Result<Vec<u8>, KeyError> {
    Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
        .map(|doc| doc.as_ref().to_vec())
        .map_err(|_| KeyError::Invalid {
            path: path.display().to_string(),
        })
}

/// The signing key of a PKCS#8 document, its `kid` (a hash of the public key) and JWK.
fn ed25519_signing(pkcs8: &[u8]) -> Option<SigningKey> {
    let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).ok()?;
    let public = pair.public_key().as_ref().to_vec();
    let kid = kid_of(&public);
    Some(SigningKey {
        encoding: EncodingKey::from_ed_der(pkcs8),
        decoding: DecodingKey::from_ed_der(&public),
        jwk: Some(ed25519_jwk(&kid, &public)),
        kid: Some(kid),
    })
}

fn kid_of(public: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&Sha256::digest(public)[..12])
}

fn ed25519_jwk(kid: &str, public: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "alg": "EdDSA",
        "use": "sig",
        "kid": kid,
        "x": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public),
    })
}

/// The retired public keys in `dir` still needed; expired ones are deleted, and files
/// that are not ours are skipped with a warning.
fn load_retired(dir: &Path) -> Result<Vec<RetiredKey>, KeyError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(dir)(e)),
    };
    let now = unix_now();
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let parsed = name
            .strip_suffix(".pub")
            .and_then(|stem| stem.split_once('-'))
            .and_then(|(until, kid)| Some((until.parse::<u64>().ok()?, kid.to_string())));
        let public = std::fs::read(&path).ok().filter(|p| p.len() == 32);
        let (Some((valid_until, kid)), Some(public)) = (parsed, public) else {
            tracing::warn!(path = %path.display(), "not a retired signing key; left alone");
            continue;
        };
        if valid_until <= now {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        if kid_of(&public) != kid {
            tracing::warn!(path = %path.display(), "retired key does not match its name; left alone");
            continue;
        }
        out.push(RetiredKey {
            decoding: DecodingKey::from_ed_der(&public),
            jwk: ed25519_jwk(&kid, &public),
            kid,
            valid_until,
        });
    }
    Ok(out)
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
    fn a_rotated_key_keeps_verifying_what_it_signed_and_stays_in_the_jwks() {
        let dir = tempfile::tempdir().expect("tmp");
        let config = AuthConfig::default();
        let k = TokenKeys::load_or_create(&config, dir.path()).expect("keys");
        let old = k.sign(&k.claims(Audience::Api, "usr_1", 60)).expect("sign");
        let old_kid = k.info().current_kid;
        let info = k.rotate().expect("rotate");
        assert_ne!(info.current_kid, old_kid);
        assert_eq!(info.retired.len(), 1);
        assert_eq!(info.retired[0].kid, old_kid);
        let new = k.sign(&k.claims(Audience::Api, "usr_2", 60)).expect("sign");
        assert_eq!(
            k.verify(&old, Audience::Api).expect("old token").sub,
            "usr_1"
        );
        assert_eq!(
            k.verify(&new, Audience::Api).expect("new token").sub,
            "usr_2"
        );
        assert_eq!(k.jwks()["keys"].as_array().map(Vec::len), Some(2));
        // A restart on the same directory still knows both keys.
        let again = TokenKeys::load_or_create(&config, dir.path()).expect("reload");
        assert!(again.verify(&old, Audience::Api).is_ok());
        assert!(again.verify(&new, Audience::Api).is_ok());
        assert_eq!(again.info().current_kid, info.current_kid);
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
