//! Credentials at the HTTP edge: the extractors API routes declare, and the gate every
//! HLS route passes. Both hand what they find to [`crate::auth::request::Authenticator`].

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::problem::Problem;
use super::AppState;
use crate::auth::request::Caller;
use crate::streams::Visibility;

/// The token of `Authorization: Bearer <token>`, if any.
pub fn bearer(parts: &axum::http::HeaderMap) -> Option<&str> {
    let value = parts.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The `token` query parameter, if any. Tokens are base64url and dots, so no
/// percent-decoding is needed; anything else will not verify.
pub fn query_token(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .filter(|t| !t.is_empty())
}

/// A caller with a valid access token (401 otherwise).
pub struct Authed(pub Caller);

impl FromRequestParts<AppState> for Authed {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        match state.auth.caller(bearer(&parts.headers))? {
            Some(caller) => Ok(Authed(caller)),
            None => Err(Problem::unauthorized(
                "this endpoint needs an access token (Authorization: Bearer)",
            )),
        }
    }
}

/// The caller if the request carries an access token; 401 if it carries an invalid one.
pub struct MaybeAuthed(pub Option<Caller>);

impl FromRequestParts<AppState> for MaybeAuthed {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        Ok(MaybeAuthed(state.auth.caller(bearer(&parts.headers))?))
    }
}

/// The client's address as the socket saw it (`None` when the server was not started
/// with connect info, e.g. in `oneshot` tests). Proxies' forwarding headers are not
/// trusted.
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ci| ci.0.ip()),
        ))
    }
}

/// What the playback gate let through, for the layers and handlers inside it (the
/// audience analytics).
#[derive(Clone)]
pub struct PlaybackGrant {
    pub stream: std::sync::Arc<crate::streams::StreamDef>,
    /// The verified playback token's claims; `None` when the stream needed none.
    pub claims: Option<crate::auth::tokens::Claims>,
}

/// Gate of every `/hls/{slug}/…` route: private streams need a playback token for
/// that stream, in `?token=` or `Authorization: Bearer`. Playlists fetched with
/// `?token=` come back with the token written into every URI, so players that never
/// heard of tokens keep sending it; shared caches are told to keep out.
pub async fn playback_gate(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let Some(slug) = path
        .strip_prefix("/hls/")
        .and_then(|rest| rest.split('/').next())
    else {
        return next.run(req).await;
    };
    let Some(stream) = state.catalog.get_slug(slug) else {
        // A deleted stream is gone at once, whatever its packager still holds.
        return Problem::not_found(format!("there is no stream named {slug}")).into_response();
    };
    let is_playlist = path.ends_with(".m3u8");
    let from_query = query_token(req.uri().query()).map(str::to_string);
    let token = from_query.as_deref().or_else(|| bearer(req.headers()));
    let claims = match state.auth.playback(&stream, token) {
        Ok(claims) => claims,
        Err(denied) => return Problem::from(denied).into_response(),
    };
    let private = stream.visibility == Visibility::Private;
    req.extensions_mut()
        .insert(PlaybackGrant { stream, claims });
    if !private {
        return next.run(req).await;
    }
    let mut response = next.run(req).await;
    let private_cache = response
        .headers()
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.replace("public", "private"));
    if let Some(value) = private_cache.and_then(|v| HeaderValue::from_str(&v).ok()) {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    match from_query {
        Some(token) if is_playlist && response.status() == StatusCode::OK => {
            let (parts, body) = response.into_parts();
            // Playlists are a few kilobytes; 4 MiB is far beyond any real one.
            let Ok(bytes) = axum::body::to_bytes(body, 4 << 20).await else {
                return Problem::internal(&"playlist body could not be read").into_response();
            };
            let text = String::from_utf8_lossy(&bytes);
            let mut parts = parts;
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, axum::body::Body::from(with_token(&text, &token)))
        }
        _ => response,
    }
}

/// `playlist` with `token=<token>` added to every URI: URI lines and `URI="…"`
/// attributes (EXT-X-MAP, EXT-X-PART, EXT-X-PRELOAD-HINT, EXT-X-RENDITION-REPORT,
/// EXT-X-MEDIA).
pub fn with_token(playlist: &str, token: &str) -> String {
    let add = |uri: &str| {
        let sep = if uri.contains('?') { '&' } else { '?' };
        format!("{uri}{sep}token={token}")
    };
    let mut out = String::with_capacity(playlist.len() + 64 * token.len());
    for line in playlist.split_inclusive('\n') {
        let (content, end) = match line.strip_suffix('\n') {
            Some(c) => (c, "\n"),
            None => (line, ""),
        };
        if content.starts_with('#') {
            let mut rest = content;
            while let Some(at) = rest.find("URI=\"") {
                let (before, after) = rest.split_at(at + 5);
                out.push_str(before);
                let Some(close) = after.find('"') else {
                    rest = after;
                    break;
                };
                out.push_str(&add(&after[..close]));
                rest = &after[close..];
            }
            out.push_str(rest);
        } else if !content.trim().is_empty() {
            out.push_str(&add(content));
        } else {
            out.push_str(content);
        }
        out.push_str(end);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_uri_carries_the_token() {
        let playlist = "#EXTM3U\n#EXT-X-MAP:URI=\"init-0.mp4\"\n\
            #EXT-X-PART:DURATION=0.2,URI=\"part-3-0.m4s\",INDEPENDENT=YES\n\
            #EXTINF:2.0,\nseg-3.m4s\n\
            #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-4-1.m4s\"\n\
            #EXT-X-RENDITION-REPORT:URI=\"audio.m3u8\",LAST-MSN=4\n";
        let out = with_token(playlist, "T.k-n");
        assert_eq!(
            out,
            "#EXTM3U\n#EXT-X-MAP:URI=\"init-0.mp4?token=T.k-n\"\n\
            #EXT-X-PART:DURATION=0.2,URI=\"part-3-0.m4s?token=T.k-n\",INDEPENDENT=YES\n\
            #EXTINF:2.0,\nseg-3.m4s?token=T.k-n\n\
            #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-4-1.m4s?token=T.k-n\"\n\
            #EXT-X-RENDITION-REPORT:URI=\"audio.m3u8?token=T.k-n\",LAST-MSN=4\n"
        );
    }

    #[test]
    fn token_query_parameter() {
        assert_eq!(query_token(Some("_HLS_msn=3&token=abc")), Some("abc"));
        assert_eq!(query_token(Some("token=")), None);
        assert_eq!(query_token(None), None);
    }
}
