//! The tus checksum extension: a PATCH may carry `Upload-Checksum: <algorithm>
//! <base64 digest>` of its body; the bytes are kept only if the digest matches.

use base64::Engine;
use sha1::Digest;

/// `Tus-Checksum-Algorithm`: what a client may ask for.
pub const ALGORITHMS: &str = "sha1,sha256";

/// A digest being computed over a PATCH body, and the one it must come to.
pub struct Expected {
    hasher: Hasher,
    want: Vec<u8>,
}

enum Hasher {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl Expected {
    /// Parses an `Upload-Checksum` value; the error says what to fix (a 400).
    pub fn parse(header: &str) -> Result<Expected, String> {
        let (algorithm, digest) = header
            .trim()
            .split_once(' ')
            .ok_or("Upload-Checksum is `<algorithm> <base64 digest>`")?;
        let want = base64::engine::general_purpose::STANDARD
            .decode(digest.trim())
            .map_err(|_| "the Upload-Checksum digest is not base64".to_string())?;
        let (hasher, len) = match algorithm {
            "sha1" => (Hasher::Sha1(sha1::Sha1::new()), 20),
            "sha256" => (Hasher::Sha256(sha2::Sha256::new()), 32),
            other => {
                return Err(format!(
                    "checksum algorithm {other:?} is not supported: use one of {ALGORITHMS}"
                ))
            }
        };
        if want.len() != len {
            return Err(format!("a {algorithm} digest has {len} bytes"));
        }
        Ok(Expected { hasher, want })
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.hasher {
            Hasher::Sha1(h) => h.update(bytes),
            Hasher::Sha256(h) => h.update(bytes),
        }
    }

    /// Whether what went through [`Expected::update`] has the expected digest.
    pub fn matches(self) -> bool {
        let got = match self.hasher {
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
        };
        got == self.want
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_checked_and_bad_headers_explained() {
        // sha1("hello") and sha256("hello"), base64.
        for header in [
            "sha1 qvTGHdzF6KLavt4PO0gs2a6pQ00=",
            "sha256 LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=",
        ] {
            let mut e = Expected::parse(header).expect(header);
            e.update(b"hel");
            e.update(b"lo");
            assert!(e.matches(), "{header}");
            let mut e = Expected::parse(header).expect(header);
            e.update(b"hello!");
            assert!(!e.matches(), "{header}");
        }
        for bad in [
            "md5 XUFAKrxLKna5cZ2REBfFkg==",
            "sha1",
            "sha1 !!!",
            "sha1 aGVsbG8=",
            "",
        ] {
            assert!(Expected::parse(bad).is_err(), "{bad}");
        }
    }
}
