//! Who may do what: accounts, passwords, tokens, rate limits, and the one place every
//! request asks (`request`).
//!
//! - [`password`]: argon2id hashing of user passwords.
//! - [`tokens`]: JWT signing and verification with a pinned algorithm (EdDSA or
//!   HS256), `iss`/`aud`/`exp`/`nbf` always checked; the JWKS.
//! - [`accounts`]: users and refresh-token families in the database.
//! - [`disabled`]: the disabled accounts, in memory, checked on every token.
//! - [`rate_limit`]: bounded keyed token buckets for login and refresh.
//! - [`verified`]: playback tokens already verified, so HLS requests skip the
//!   signature check.
//! - [`request`]: credentials of an HTTP request and the decisions on them (API caller,
//!   playback of a stream).

pub mod accounts;
pub mod disabled;
pub mod password;
pub mod rate_limit;
pub mod request;
pub mod tokens;
pub mod verified;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What an account may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything: users, every stream.
    Admin,
    /// Creates streams and manages its own.
    Broadcaster,
    /// Reads the catalog.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Broadcaster => "broadcaster",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "broadcaster" => Some(Role::Broadcaster),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// Lookup hash of a high-entropy random secret (stream key, refresh token), hex.
///
/// SHA-256 is enough here: these secrets are 192+ random bits, so there is nothing to
/// brute-force and a slow hash would only slow every publish and refresh. argon2id is
/// for passwords, which people choose ([`password`]).
pub fn secret_hash(secret: &str) -> String {
    crate::db::hex(&Sha256::digest(secret.as_bytes()))
}

/// A new random secret: `bytes` random bytes, base64url without padding (URL- and
/// RTMP-path-safe).
pub fn random_secret(bytes: usize) -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}
