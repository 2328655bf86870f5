//! Uploads: the tus 1.0 resumable protocol (core, creation, termination, expiration,
//! checksum)
//! and the rows and files of uploads in progress.
//!
//! Why our own: there is no maintained tus server crate for axum (the crates that
//! exist are unmaintained or tied to other frameworks), and the part a server needs is
//! small — four requests and five headers. The header logic here is pure and
//! unit-tested; [`store`] keeps the rows and files; `crate::api::uploads` is the HTTP
//! edge. Spec: <https://tus.io/protocols/resumable-upload> (1.0.0).

pub mod checksum;
pub mod store;

use std::collections::BTreeMap;

use base64::Engine;

/// The one protocol version spoken (`Tus-Resumable`, `Tus-Version`).
pub const TUS_VERSION: &str = "1.0.0";
/// `Tus-Extension`.
pub const TUS_EXTENSIONS: &str = "creation,termination,expiration,checksum";
/// The media type of PATCH bodies.
pub const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";

/// Base64 as clients write it: padding optional, and unused trailing bits (which some
/// encoders leave non-zero) ignored.
const METADATA_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Parses `Upload-Metadata` (tus 1.0 "Upload-Metadata"): comma-separated pairs of a
/// key and an optional base64 value. Keys must be non-empty and free of spaces and
/// commas, values base64. A repeated key keeps its first value, and values that are not
/// UTF-8 are read lossily: neither harms, and the keys panocast reads are all text.
pub fn parse_metadata(header: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    if header.trim().is_empty() {
        return Ok(out);
    }
    for pair in header.split(',') {
        let mut parts = pair.trim().splitn(2, ' ');
        let key = parts.next().unwrap_or_default();
        if key.is_empty() || !key.is_ascii() {
            return Err("Upload-Metadata: every pair needs an ASCII key".into());
        }
        let value = match parts.next().map(str::trim) {
            None | Some("") => String::new(),
            Some(b64) => {
                let bytes = METADATA_BASE64
                    .decode(b64)
                    .map_err(|_| format!("Upload-Metadata: the value of {key} is not base64"))?;
                String::from_utf8_lossy(&bytes).into_owned()
            }
        };
        out.entry(key.to_string()).or_insert(value);
    }
    Ok(out)
}

/// A non-negative decimal header value (`Upload-Length`, `Upload-Offset`).
pub fn parse_u64(value: &str) -> Option<u64> {
    let v = value.trim();
    (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .then(|| v.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_as_tus_js_client_sends_it() {
        // tus-js-client: `filename dGVzdC5tcDQ=,title TXkgdGFsaw==,empty`
        let m = parse_metadata("filename dGVzdC5tcDQ=,title TXkgdGFsaw==,empty").expect("parses");
        assert_eq!(m["filename"], "test.mp4");
        assert_eq!(m["title"], "My talk");
        assert_eq!(m["empty"], "");
        assert!(parse_metadata("").expect("empty").is_empty());
        assert!(parse_metadata("a !!!").is_err());
        // A repeated key keeps its first value; non-UTF-8 values are read lossily.
        assert_eq!(parse_metadata("a YQ==,a Yg==").expect("parses")["a"], "a");
        assert_eq!(parse_metadata("a b/8=").expect("parses")["a"], "o\u{fffd}");
        // Non-zero unused bits (schemathesis found "…qv=="), and no padding.
        assert!(parse_metadata("a 250W2zSkH2D0Rc/ZeIv0KZZ5qv==").is_ok());
        assert_eq!(parse_metadata("a YQ").expect("parses")["a"], "a");
        assert!(parse_metadata("a b c").is_err());
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u64("42"), Some(42));
        assert_eq!(parse_u64("-1"), None);
        assert_eq!(parse_u64("1e3"), None);
        assert_eq!(parse_u64(""), None);
        assert_eq!(parse_u64("99999999999999999999999"), None);
    }
}
