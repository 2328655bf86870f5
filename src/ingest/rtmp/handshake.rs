//! The server side of the RTMP handshake (RTMP 1.0 spec, section 5.2), fed bytes.
//!
//! A thin layer over `rml_rtmp::handshake::Handshake`, which accepts both the plain
//! handshake of the spec and the digest ("FP9") handshake Flash-era clients use; ffmpeg
//! sends a digest C1 and librtmp (OBS) a plain one. It is kept, and called without
//! `catch_unwind`, because it cannot panic on input: it copies into fixed 1536-byte
//! arrays only once that many bytes are buffered, its digest offsets are reduced
//! modulo 728 (at most 775 + 728 + 32 = 1535 < 1536), and HMAC-SHA256 takes keys of
//! any length. `fuzz/rtmp_handshake` checks that claim in CI. What this layer adds: a
//! byte count for the log line of a failed handshake. The library buffers no more than
//! what one `feed` call brings plus one handshake packet.

use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};

/// C0 + C1 + C2: one version byte and two 1536-byte packets.
pub const HANDSHAKE_LEN: usize = 1 + 1536 + 1536;

#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("RTMP handshake failed: {0}")]
    Rejected(#[from] rml_rtmp::handshake::HandshakeError),
}

/// What one call to [`ServerHandshake::feed`] produced.
#[derive(Debug, PartialEq, Eq)]
pub enum HandshakeStep {
    /// Send `reply` and read more.
    InProgress { reply: Vec<u8> },
    /// Send `reply`; the handshake is over and `leftover` is the start of the chunk
    /// stream, to be fed to the session.
    Done { reply: Vec<u8>, leftover: Vec<u8> },
}

pub struct ServerHandshake {
    inner: Handshake,
    fed: usize,
}

impl Default for ServerHandshake {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerHandshake {
    pub fn new() -> Self {
        Self {
            inner: Handshake::new(PeerType::Server),
            fed: 0,
        }
    }

    /// Feeds bytes from the peer. Call with at most one read's worth at a time: the
    /// handshake buffers at most that plus [`HANDSHAKE_LEN`].
    pub fn feed(&mut self, bytes: &[u8]) -> Result<HandshakeStep, HandshakeError> {
        self.fed = self.fed.saturating_add(bytes.len());
        let result = self.inner.process_bytes(bytes)?;
        Ok(match result {
            HandshakeProcessResult::InProgress { response_bytes } => HandshakeStep::InProgress {
                reply: response_bytes,
            },
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => HandshakeStep::Done {
                reply: response_bytes,
                leftover: remaining_bytes,
            },
        })
    }

    /// How many bytes the peer has sent so far, for the log line of a failed handshake.
    pub fn bytes_fed(&self) -> usize {
        self.fed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_with_rml_client() {
        let mut client = Handshake::new(PeerType::Client);
        let mut server = ServerHandshake::new();
        let c0c1 = client.generate_outbound_p0_and_p1().unwrap();
        let HandshakeStep::InProgress { reply } = server.feed(&c0c1).unwrap() else {
            panic!("server finished early");
        };
        let HandshakeProcessResult::Completed { response_bytes, .. } =
            client.process_bytes(&reply).unwrap()
        else {
            panic!("client did not finish");
        };
        let mut c2_and_more = response_bytes;
        c2_and_more.extend_from_slice(&[1, 2, 3]);
        // Bytes after C2 belong to the chunk stream.
        assert_eq!(
            server.feed(&c2_and_more).unwrap(),
            HandshakeStep::Done {
                reply: vec![],
                leftover: vec![1, 2, 3]
            }
        );
    }

    #[test]
    fn wrong_version_byte_fails() {
        let mut server = ServerHandshake::new();
        assert!(server.feed(b"GET / HTTP/1.1\r\n").is_err());
    }

    #[test]
    fn byte_by_byte_is_fine() {
        let mut client = Handshake::new(PeerType::Client);
        let mut server = ServerHandshake::new();
        let c0c1 = client.generate_outbound_p0_and_p1().unwrap();
        let mut replies = Vec::new();
        for b in &c0c1 {
            match server.feed(std::slice::from_ref(b)).unwrap() {
                HandshakeStep::InProgress { reply } => replies.extend(reply),
                HandshakeStep::Done { .. } => panic!("too early"),
            }
        }
        // S0 + S1 + S2.
        assert_eq!(replies.len(), HANDSHAKE_LEN);
    }
}
