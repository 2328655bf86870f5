//! Playback tokens already verified, so the players of a private stream do not pay a
//! signature check on every playlist reload and part (two requests a part, five parts
//! a second per viewer, each an Ed25519 verification worth more CPU than the rest of
//! the request).
//!
//! Only what [`super::tokens::TokenKeys::verify`] decides is cached: the signature and
//! the claims it accepted. What the claims allow (this stream, this asset) is still
//! checked by the caller on every request. An entry is used only while the token's
//! `exp` (with the verifier's leeway) has not passed, so a cached token expires when it
//! would have; keys are never revoked early (a retired key verifies until its last
//! token expires), so a rotation needs no invalidation. Refused tokens are not cached.
//! Entries are keyed by the token's SHA-256, so the cache holds no usable secret.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::tokens::Claims;

/// Entries held at most: a few hundred bytes each, so a few megabytes at worst.
pub const DEFAULT_CAPACITY: usize = 16_384;

pub struct VerifiedTokens {
    entries: Mutex<HashMap<[u8; 32], Claims>>,
    capacity: usize,
    /// Seconds past `exp` a token still verifies (the verifier's leeway).
    leeway_s: u64,
}

impl VerifiedTokens {
    pub fn new(capacity: usize, leeway_s: u64) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            leeway_s,
        }
    }

    /// The claims of `token`: from the cache while it has not expired at `now` (Unix
    /// seconds), from `verify` otherwise (and cached when it succeeds).
    pub fn get_or_verify<E>(
        &self,
        token: &str,
        now: u64,
        verify: impl FnOnce(&str) -> Result<Claims, E>,
    ) -> Result<Claims, E> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let live = |claims: &Claims| now.saturating_sub(self.leeway_s) <= claims.exp;
        {
            let mut entries = self.lock();
            match entries.get(&key) {
                Some(claims) if live(claims) => return Ok(claims.clone()),
                Some(_) => {
                    entries.remove(&key);
                }
                None => {}
            }
        }
        // Verified outside the lock: other requests go on meanwhile.
        let claims = verify(token)?;
        let mut entries = self.lock();
        if entries.len() >= self.capacity {
            entries.retain(|_, c| live(c));
            if entries.len() >= self.capacity {
                // Every entry is live (a flood of distinct valid tokens): start over
                // rather than track recency on every hit. The cost is one more
                // verification per token, as without the cache.
                entries.clear();
            }
        }
        entries.insert(key, claims.clone());
        Ok(claims)
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Claims>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> Claims {
        Claims {
            iss: "panocast".into(),
            aud: "playback".into(),
            sub: "u1".into(),
            exp,
            nbf: 0,
            iat: 0,
            role: None,
            stream: Some("st_1".into()),
            asset: None,
            sid: None,
        }
    }

    /// A verifier that counts its calls and accepts tokens named `ok-<exp>`.
    fn verifier(calls: &std::cell::Cell<u32>) -> impl Fn(&str) -> Result<Claims, String> + '_ {
        move |token: &str| {
            calls.set(calls.get() + 1);
            token
                .strip_prefix("ok-")
                .and_then(|exp| exp.parse().ok())
                .map(claims)
                .ok_or_else(|| "refused".to_string())
        }
    }

    #[test]
    fn a_token_is_verified_once_while_it_lives() {
        let cache = VerifiedTokens::new(8, 5);
        let calls = std::cell::Cell::new(0);
        for now in [100, 150, 1000, 1005] {
            let got = cache.get_or_verify("ok-1000", now, verifier(&calls));
            assert_eq!(got.map(|c| c.exp), Ok(1000));
        }
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn an_expired_token_is_verified_again_and_refused_ones_are_not_kept() {
        let cache = VerifiedTokens::new(8, 5);
        let calls = std::cell::Cell::new(0);
        assert!(cache
            .get_or_verify("ok-1000", 100, verifier(&calls))
            .is_ok());
        // Past exp + leeway the cache does not answer: the verifier decides (and
        // would refuse it: here it is the one that knows).
        let refuse = |_: &str| Err::<Claims, _>("expired");
        assert_eq!(
            cache.get_or_verify("ok-1000", 1006, refuse).map(|c| c.exp),
            Err("expired")
        );
        assert!(cache.is_empty());
        assert!(cache.get_or_verify("bad", 100, verifier(&calls)).is_err());
        assert!(cache.get_or_verify("bad", 100, verifier(&calls)).is_err());
        assert_eq!(calls.get(), 3);
        assert!(cache.is_empty());
    }

    #[test]
    fn the_cache_stays_within_its_capacity() {
        let cache = VerifiedTokens::new(4, 5);
        let calls = std::cell::Cell::new(0);
        // Two expired by the time the others arrive: they go first.
        for (token, now) in [("ok-10", 1), ("ok-11", 1), ("ok-900", 1), ("ok-901", 1)] {
            assert!(cache.get_or_verify(token, now, verifier(&calls)).is_ok());
        }
        assert!(cache.get_or_verify("ok-902", 100, verifier(&calls)).is_ok());
        assert_eq!(cache.len(), 3);
        for token in ["ok-903", "ok-904", "ok-905", "ok-906"] {
            assert!(cache.get_or_verify(token, 100, verifier(&calls)).is_ok());
            assert!(cache.len() <= 4);
        }
    }
}
