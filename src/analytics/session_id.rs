//! Viewer session ids: who a run of HLS requests belongs to.
//!
//! Three sources, strongest first:
//! - a playback token: its `sid` claim (its own digest for tokens signed before the
//!   claim existed), with the token's subject as the viewer;
//! - an anonymous id the server handed out: `a` + 16 hex nonce + 16 hex HMAC-SHA256 tag
//!   (key made at start, so ids of a previous run do not verify), carried as the path
//!   segment `/hls/{slug}/s/{sid}/…`;
//! - neither (a player that skipped the multivariant playlist): a digest of the client
//!   address, user agent and stream, so it still counts once.
//!
//! Pure functions, no I/O.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Hex digits of the nonce and of the tag.
const PART_HEX: usize = 16;

/// Mints and checks anonymous session ids.
pub struct SessionIds {
    key: [u8; 32],
}

impl SessionIds {
    pub fn new() -> Self {
        use rand::RngCore;
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self { key }
    }

    /// A new anonymous id for a viewer of stream `stream_id`.
    pub fn mint(&self, stream_id: &str) -> String {
        use rand::RngCore;
        let mut nonce = [0u8; PART_HEX / 2];
        rand::rng().fill_bytes(&mut nonce);
        let nonce = crate::db::hex(&nonce);
        let tag = self.tag(stream_id, &nonce);
        format!("a{nonce}{tag}")
    }

    /// Whether `sid` is an id [`Self::mint`] made for `stream_id`; constant time in the
    /// tag.
    pub fn verify(&self, stream_id: &str, sid: &str) -> bool {
        let Some(rest) = sid.strip_prefix('a') else {
            return false;
        };
        if rest.len() != 2 * PART_HEX || !rest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return false;
        }
        let (nonce, tag) = rest.split_at(PART_HEX);
        let expected = self.tag(stream_id, nonce);
        subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), tag.as_bytes()).into()
    }

    fn tag(&self, stream_id: &str, nonce: &str) -> String {
        // HMAC accepts keys of any length: new_from_slice cannot fail here.
        let Ok(mut mac) = HmacSha256::new_from_slice(&self.key) else {
            return String::new();
        };
        mac.update(stream_id.as_bytes());
        mac.update(b"/");
        mac.update(nonce.as_bytes());
        crate::db::hex(&mac.finalize().into_bytes()[..PART_HEX / 2])
    }
}

impl Default for SessionIds {
    fn default() -> Self {
        Self::new()
    }
}

/// The session id of a playback token without a `sid` claim: a digest of the token, so
/// each token is still one session and the token itself is never kept.
pub fn of_token(token: &str) -> String {
    format!(
        "vt_{}",
        crate::db::hex(&Sha256::digest(token.as_bytes())[..12])
    )
}

/// The session id of a request with neither token nor anonymous id.
pub fn of_client(stream_id: &str, address: Option<std::net::IpAddr>, user_agent: &str) -> String {
    let mut h = Sha256::new();
    h.update(stream_id.as_bytes());
    h.update(b"|");
    h.update(
        address
            .map(|a| a.to_string())
            .unwrap_or_default()
            .as_bytes(),
    );
    h.update(b"|");
    h.update(user_agent.as_bytes());
    format!("vc_{}", crate::db::hex(&h.finalize()[..12]))
}

/// The anonymous id in a path below `/hls/{slug}/`: `s/{sid}/…`.
pub fn in_path(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/hls/")?;
    let mut segments = rest.split('/');
    segments.next()?;
    (segments.next()? == "s").then_some(())?;
    segments.next().filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_ids_verify_for_their_stream_only() {
        let ids = SessionIds::new();
        let sid = ids.mint("st_1");
        assert_eq!(sid.len(), 33);
        assert!(ids.verify("st_1", &sid));
        assert!(!ids.verify("st_2", &sid));
        assert!(!SessionIds::new().verify("st_1", &sid));
        let mut forged = sid.clone();
        forged.replace_range(32.., if sid.ends_with('0') { "1" } else { "0" });
        assert!(!ids.verify("st_1", &forged));
        assert!(!ids.verify("st_1", "a"));
        assert!(!ids.verify("st_1", &sid[1..]));
    }

    #[test]
    fn path_segment() {
        assert_eq!(in_path("/hls/cam/s/a12/video.m3u8"), Some("a12"));
        assert_eq!(in_path("/hls/cam/s/a12/video/part-1-0.m4s"), Some("a12"));
        assert_eq!(in_path("/hls/cam/video.m3u8"), None);
        assert_eq!(in_path("/hls/cam/s//x"), None);
    }

    #[test]
    fn token_and_client_ids_are_stable_and_distinct() {
        assert_eq!(of_token("a.b.c"), of_token("a.b.c"));
        assert_ne!(of_token("a.b.c"), of_token("a.b.d"));
        let ip = Some(std::net::IpAddr::from([127, 0, 0, 1]));
        assert_eq!(of_client("s", ip, "ua"), of_client("s", ip, "ua"));
        assert_ne!(of_client("s", ip, "ua"), of_client("s", ip, "other"));
    }
}
