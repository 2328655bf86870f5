//! Masks what looks like a secret in a formatted log line, replacing it with [`MASK`].
//!
//! This is the last line of defence: the code that logs leaves secrets out in the first
//! place (the request span masks the query, RTSP URLs lose their userinfo, keys and
//! passwords have redacting `Debug`). What it catches, in text and JSON lines and
//! inside JSON strings:
//!
//! - JSON Web Tokens: a dotted base64url run starting `eyJ` (`{"` encoded);
//! - the value of a field whose name says it is secret (`token`, `password`,
//!   `secret`, `authorization`, `cookie`, `signature`, `…key`, `…pwd`, …): after `=`,
//!   quoted or bare; after `:`, quoted, or bare when no space follows (a spaced bare
//!   word after `token: ` is prose); e.g. `?token=…`, `password="…"`,
//!   `"refresh_token":"…"`, `password: Some("…")`;
//! - credentials after `Bearer ` and `Basic `;
//! - URL userinfo (`rtsp://user:pass@cam` → `rtsp://***@cam`) and the stream key in
//!   an RTMP URL (`rtmp://host/live/KEY` → `rtmp://host/live/***`).
//!
//! It cannot know a secret with no shape and no name, such as a bare stream key in a
//! sentence; that is what the sources are for. One forward pass over the bytes, no
//! allocation when nothing is masked.

use std::borrow::Cow;
use std::ops::Range;

use base64::Engine;

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Longest field name looked at; longer runs are judged by their last bytes.
const MAX_NAME: usize = 48;
/// Shortest run after `Bearer ` / `Basic ` taken for credentials.
const MIN_CREDENTIALS: usize = 8;

/// `line` with every secret-looking value replaced by [`MASK`].
pub fn redact(line: &str) -> Cow<'_, str> {
    let b = line.as_bytes();
    let mut out: Option<String> = None;
    // `line[..copied]` is already in `out` (or needs no change).
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        let (first, second) = match b[i] {
            b'e' => (jwt(b, i), None),
            b':' if b[i + 1..].starts_with(b"//") => url(b, i),
            b'=' | b':' => (keyed_value(b, i, copied), None),
            b'B' | b'b' => (credentials_after_scheme(b, i, copied), None),
            _ => (None, None),
        };
        let Some(first) = first else {
            i += 1;
            continue;
        };
        let o = out.get_or_insert_with(|| String::with_capacity(line.len()));
        for r in [Some(first), second].into_iter().flatten() {
            o.push_str(&line[copied..r.start]);
            o.push_str(MASK);
            copied = r.end;
        }
        i = copied.max(i + 1);
    }
    match out {
        None => Cow::Borrowed(line),
        Some(mut o) => {
            o.push_str(&line[copied..]);
            Cow::Owned(o)
        }
    }
}

/// A JWT (or JWE) starting at `i`: `eyJ…` followed by at least two more dotted
/// base64url segments.
fn jwt(b: &[u8], i: usize) -> Option<Range<usize>> {
    if !b[i..].starts_with(b"eyJ") {
        return None;
    }
    let mut end = i;
    let mut dots = 0;
    while end < b.len() && (is_base64url(b[end]) || b[end] == b'.') {
        dots += usize::from(b[end] == b'.');
        end += 1;
    }
    if dots < 2 {
        return None;
    }
    // A sentence's full stop after a signed token is not part of it.
    if b[end - 1] == b'.' && dots > 2 {
        end -= 1;
    }
    Some(i..end)
}

/// The value after the separator at `sep` (`=` or `:`) when the name before it says
/// the value is secret. `floor`: where the name may start at the earliest.
fn keyed_value(b: &[u8], sep: usize, floor: usize) -> Option<Range<usize>> {
    // No space before the separator: `token_hash = $1` in an SQL statement is no secret.
    let mut k = skip_ansi_back(b, sep, floor);
    // The closing quote of a JSON key, maybe escaped inside a JSON string.
    if k > floor && b[k - 1] == b'"' {
        k -= 1;
        if k > floor && b[k - 1] == b'\\' {
            k -= 1;
        }
    }
    k = skip_ansi_back(b, k, floor);
    let name_end = k;
    while k > floor && name_end - k < MAX_NAME && is_name(b[k - 1]) {
        k -= 1;
    }
    if !is_secret_name(&b[k..name_end]) {
        return None;
    }
    let mut v = skip_ansi_fwd(b, sep + 1);
    // `name: value` with a space is prose as often as a field ("invalid token: expired",
    // a module path before its message): there only a quoted value counts.
    let spaced = b[sep] == b':' && b.get(v) == Some(&b' ');
    while b[sep] == b':' && v < b.len() && b[v] == b' ' {
        v += 1;
    }
    if b[v..].starts_with(b"Some(") {
        v += 5;
    }
    let range = if b[v..].starts_with(b"\\\"") {
        let start = v + 2;
        let end = find(b, start, b"\\\"").unwrap_or(b.len());
        start..end
    } else if b.get(v) == Some(&b'"') {
        quoted(b, v + 1)
    } else if spaced {
        return None;
    } else {
        let mut end = bare_end(b, v);
        // `authorization=Bearer abc`: the scheme word and the credentials after it.
        let word = &b[v..end];
        let scheme = [&b"bearer"[..], b"basic", b"digest", b"token"]
            .iter()
            .any(|s| word.eq_ignore_ascii_case(s));
        if scheme && b.get(end) == Some(&b' ') {
            end = bare_end(b, end + 1);
        }
        v..end
    };
    (!range.is_empty() && &b[range.clone()] != MASK.as_bytes()).then_some(range)
}

/// `scheme://` at `sep` (the colon): the userinfo, and for RTMP URLs the stream key
/// (everything after the application segment).
fn url(b: &[u8], sep: usize) -> (Option<Range<usize>>, Option<Range<usize>>) {
    let start = sep + 3;
    let mut end = start;
    while end < b.len() && !is_url_end(b[end]) {
        end += 1;
    }
    // The last `@` before the query: a password with an unencoded `/` or `@` still
    // goes (a path holding an `@` is masked with it).
    let query = b[start..end]
        .iter()
        .position(|&c| c == b'?' || c == b'#')
        .map_or(end, |p| start + p);
    let at = b[start..query]
        .iter()
        .rposition(|&c| c == b'@')
        .map(|p| start + p);
    let userinfo = at
        .filter(|&at| at > start && &b[start..at] != MASK.as_bytes())
        .map(|at| start..at);
    let host = at.map_or(start, |at| at + 1);
    let mut scheme_start = sep;
    while scheme_start > 0 && b[scheme_start - 1].is_ascii_alphabetic() {
        scheme_start -= 1;
    }
    let scheme = &b[scheme_start..sep];
    let rtmp = scheme.len() >= 4 && scheme[..4].eq_ignore_ascii_case(b"rtmp");
    let key = rtmp
        .then(|| {
            // host[:port] / app / key
            let app = host + b[host..end].iter().position(|&c| c == b'/')? + 1;
            let key = app + b[app..end].iter().position(|&c| c == b'/')? + 1;
            (key < end && &b[key..end] != MASK.as_bytes()).then_some(key..end)
        })
        .flatten();
    match (userinfo, key) {
        (Some(u), k) => (Some(u), k),
        (None, k) => (k, None),
    }
}

/// `Bearer <credentials>` (any case) or `Basic <base64 of user:password>` at `i`.
fn credentials_after_scheme(b: &[u8], i: usize, floor: usize) -> Option<Range<usize>> {
    if i > floor && b[i - 1].is_ascii_alphanumeric() {
        return None;
    }
    let rest = &b[i..];
    let basic = rest.starts_with(b"Basic ");
    let bearer = rest.len() > 7 && rest[..7].eq_ignore_ascii_case(b"bearer ");
    if !basic && !bearer {
        return None;
    }
    let mut start = i + if basic { 6 } else { 7 };
    while start < b.len() && b[start] == b' ' {
        start += 1;
    }
    let mut end = start;
    while end < b.len() && is_token68(b[end]) {
        end += 1;
    }
    let token = &b[start..end];
    // Credentials are long; "bearer of news" is English.
    if token.len() < MIN_CREDENTIALS || token == MASK.as_bytes() {
        return None;
    }
    if basic {
        // "Basic" is also a word: only a real `user:password` pair is masked.
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token)
            .ok()?;
        if !decoded.contains(&b':') {
            return None;
        }
    }
    Some(start..end)
}

/// Whether a field name marks its value as secret (ASCII case-insensitive).
fn is_secret_name(name: &[u8]) -> bool {
    if name.is_empty() {
        return false;
    }
    let mut lower = [0u8; MAX_NAME];
    let n = name.len().min(MAX_NAME);
    for (l, c) in lower.iter_mut().zip(&name[name.len() - n..]) {
        *l = c.to_ascii_lowercase();
    }
    let name = &lower[..n];
    let contains = |needle: &[u8]| name.windows(needle.len()).any(|w| w == needle);
    [
        "token",
        "password",
        "passwd",
        "secret",
        "authorization",
        "cookie",
        "credential",
        "signature",
    ]
    .iter()
    .any(|s| contains(s.as_bytes()))
        || [&b"key"[..], b"pwd", b"pass", b"sig"]
            .iter()
            .any(|s| name.ends_with(s))
}

/// The end of a quoted value whose first byte is at `start` (after the opening
/// quote): the unescaped closing quote, or the end of the line.
fn quoted(b: &[u8], start: usize) -> Range<usize> {
    let mut j = start;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => break,
            _ => j += 1,
        }
    }
    start..j.min(b.len())
}

fn bare_end(b: &[u8], start: usize) -> usize {
    let mut j = start;
    while j < b.len() && !is_bare_end(b[j]) {
        j += 1;
    }
    j
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

/// Before `k`, skips ANSI colour sequences (`ESC [ … m`), as the text format puts
/// around field names when it writes to a terminal.
fn skip_ansi_back(b: &[u8], mut k: usize, floor: usize) -> usize {
    while k > floor && b[k - 1] == b'm' {
        let mut j = k - 1;
        while j > floor && (b[j - 1].is_ascii_digit() || b[j - 1] == b';') {
            j -= 1;
        }
        if j >= floor + 2 && b[j - 1] == b'[' && b[j - 2] == 0x1b {
            k = j - 2;
        } else {
            break;
        }
    }
    k
}

fn skip_ansi_fwd(b: &[u8], mut v: usize) -> usize {
    while b[v..].starts_with(b"\x1b[") {
        let mut j = v + 2;
        while j < b.len() && (b[j].is_ascii_digit() || b[j] == b';') {
            j += 1;
        }
        if b.get(j) != Some(&b'm') {
            break;
        }
        v = j + 1;
    }
    v
}

fn is_base64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

/// RFC 7235 `token68`: what follows an auth scheme.
fn is_token68(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

fn is_name(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')
}

/// Where a bare value ends: whitespace, quotes, brackets and list separators.
fn is_bare_end(c: u8) -> bool {
    c.is_ascii_whitespace()
        || c.is_ascii_control()
        || matches!(
            c,
            b'&' | b','
                | b';'
                | b'"'
                | b'\''
                | b'\\'
                | b'('
                | b')'
                | b'['
                | b']'
                | b'{'
                | b'}'
                | b'<'
                | b'>'
                | b'|'
        )
}

fn is_url_end(c: u8) -> bool {
    c.is_ascii_whitespace()
        || c.is_ascii_control()
        || matches!(c, b'"' | b'\'' | b'\\' | b'<' | b'>' | b'`')
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl";

    fn r(s: &str) -> String {
        redact(s).into_owned()
    }

    #[test]
    fn ordinary_lines_are_borrowed_untouched() {
        for line in [
            "2026-01-01T00:00:00Z  INFO panocast::server: panocast is up http=127.0.0.1:80",
            r#"{"level":"INFO","fields":{"message":"stream created","stream":"cam"}}"#,
            "RTSP source failed: authentication failed (check the username and password)",
            "Basic setup done; bearer of bad news",
            "h2: max_header_list_size: 16384, encoder=\"Lavf59\" key rotated",
            "url=rtsp://127.0.0.1:8554/cam transport=tcp",
            "eyJ alone, eyJhbGc.x without a third part",
            "INFO panocast::auth::tokens: generated a new signing key",
            "access token refused error=invalid token: InvalidAudience",
            "",
        ] {
            assert!(matches!(redact(line), Cow::Borrowed(_)), "{line}");
        }
    }

    #[test]
    fn jwts_anywhere() {
        assert_eq!(
            r(&format!("uri=/hls/a?x={JWT}&b=1")),
            "uri=/hls/a?x=***&b=1"
        );
        assert_eq!(r(&format!("got {JWT}.")), "got ***.");
        assert_eq!(r(&format!(r#"{{"t":"{JWT}"}}"#)), r#"{"t":"***"}"#);
        // Unsigned (`alg: none`): the empty signature is still a token.
        assert_eq!(r("t eyJhbGciOiJub25lIn0.eyJzIjoxfQ. end"), "t *** end");
    }

    #[test]
    fn secret_fields_text_and_json() {
        assert_eq!(
            r("query=_HLS_msn=2&token=abc.def"),
            "query=_HLS_msn=2&token=***"
        );
        assert_eq!(r("a password=hunter22 b=1"), "a password=*** b=1");
        assert_eq!(r(r#"password="two words" b=1"#), r#"password="***" b=1"#);
        assert_eq!(r(r#"x stream_key="k\"q" y"#), r#"x stream_key="***" y"#);
        assert_eq!(
            r(r#"{"fields":{"refresh_token":"rt-1","API_KEY":"k2"},"n":1}"#),
            r#"{"fields":{"refresh_token":"***","API_KEY":"***"},"n":1}"#
        );
        // A Debug struct inside a JSON string.
        assert_eq!(
            r(r#"{"message":"Credentials { username: \"u\", password: \"p w\" }"}"#),
            r#"{"message":"Credentials { username: \"u\", password: \"***\" }"}"#
        );
        assert_eq!(
            r(r#"Opts { secret: Some("s3") }"#),
            r#"Opts { secret: Some("***") }"#
        );
        assert_eq!(
            r("authorization=Bearer abc.def xyz"),
            "authorization=*** xyz"
        );
        assert_eq!(
            r("authorization: Bearer abc.def-ghi x"),
            "authorization: Bearer *** x"
        );
        assert_eq!(r("cookie:sid=1; b=2"), "cookie:***; b=2");
        // Only `name=value` and `name:value`: SQL's `token_hash = $1` is no value.
        assert!(matches!(redact("WHERE token_hash = $1"), Cow::Borrowed(_)));
    }

    #[test]
    fn already_masked_values_stay_borrowed() {
        for line in [
            "query=token=***",
            "rtsp://***@cam",
            r#"password="***""#,
            "Bearer ***",
        ] {
            assert!(matches!(redact(line), Cow::Borrowed(_)), "{line}");
        }
    }

    #[test]
    fn auth_schemes() {
        assert_eq!(
            r("header Bearer abc-123_x.y~z+/= next"),
            "header Bearer *** next"
        );
        assert_eq!(r("BEARER abcdefgh"), "BEARER ***");
        // base64("user:pass")
        assert_eq!(r("Authorization=Basic dXNlcjpwYXNz"), "Authorization=***");
        assert_eq!(r("sent Basic dXNlcjpwYXNz!"), "sent Basic ***!");
        // Base64 that is no user:password pair, and a plain word.
        assert_eq!(
            r("Basic aGVsbG8= Basic words"),
            "Basic aGVsbG8= Basic words"
        );
        assert_eq!(r("unBearer abcdefgh"), "unBearer abcdefgh");
        assert_eq!(r("Bearer short"), "Bearer short");
    }

    #[test]
    fn url_userinfo_and_rtmp_keys() {
        assert_eq!(
            r("pulling rtsp://admin:pw@10.0.0.2:554/ch0 now"),
            "pulling rtsp://***@10.0.0.2:554/ch0 now"
        );
        assert_eq!(r("rtsp://admin:p/a@ss@cam/x"), "rtsp://***@cam/x");
        assert_eq!(r(r#"url="http://u@h/p""#), r#"url="http://***@h/p""#);
        assert_eq!(
            r("push to rtmp://127.0.0.1:1935/live/sk-123?x=1 done"),
            "push to rtmp://127.0.0.1:1935/live/*** done"
        );
        assert_eq!(r("RTMPS://u:p@host/app/key"), "RTMPS://***@host/app/***");
        assert_eq!(r("rtmp://host/live"), "rtmp://host/live");
        assert_eq!(r("rtmp://host/live/"), "rtmp://host/live/");
    }

    #[test]
    fn ansi_coloured_fields() {
        let line = "\x1b[3mtoken\x1b[0m\x1b[2m=\x1b[0mabc \x1b[3mstream\x1b[0m\x1b[2m=\x1b[0mcam";
        assert_eq!(
            r(line),
            "\x1b[3mtoken\x1b[0m\x1b[2m=\x1b[0m*** \x1b[3mstream\x1b[0m\x1b[2m=\x1b[0mcam"
        );
    }

    #[test]
    fn every_prefix_of_a_secret_line_is_handled() {
        // Truncated lines end anywhere: no panic, no slice off a char boundary.
        let line = format!(
            "é token=\"a\\\"b\" {JWT} Basic dXNlcjpwYXNz rtmp://u:p@h/a/k password: Some(\"x\") \x1b[2m=\x1b[0m ü"
        );
        for end in 0..=line.len() {
            if let Some(prefix) = line.get(..end) {
                let _ = redact(prefix);
            }
        }
    }
}
