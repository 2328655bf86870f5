//! What every response tells the browser about who may use it: CORS (open for media,
//! configurable for the REST API) and the security headers of HTML pages.

use std::sync::OnceLock;

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use sha2::{Digest, Sha256};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

use super::uploads;

/// The request headers browsers may send: auth, ranges, JSON bodies and tus.
fn allowed_headers() -> Vec<HeaderName> {
    [header::AUTHORIZATION, header::RANGE, header::CONTENT_TYPE]
        .into_iter()
        .chain(uploads::TUS_HEADERS)
        .collect()
}

/// What scripts may read of a response: tus clients in browsers read Location and the
/// Upload-* headers, players the content range.
fn exposed_headers() -> Vec<HeaderName> {
    [
        header::CONTENT_LENGTH,
        header::CONTENT_TYPE,
        header::CONTENT_RANGE,
        header::CONTENT_DISPOSITION,
        header::LOCATION,
    ]
    .into_iter()
    .chain(uploads::TUS_HEADERS)
    .collect()
}

/// Playlists, segments and the player: every origin. WebGL players can only sample a
/// cross-origin `<video>` with CORS on every playlist and segment; private streams are
/// gated by their tokens, not by the origin.
pub fn media_cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
        .allow_headers(allowed_headers())
        .expose_headers(exposed_headers())
}

/// The REST API: the origins of `[api] cors_origins` (validated at load), every origin
/// for `["*"]`.
pub fn api_cors(origins: &[String]) -> CorsLayer {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::OPTIONS,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers(allowed_headers())
        .expose_headers(exposed_headers())
}

/// The headers every HTML page gets unless its handler set its own: no MIME sniffing,
/// no referrer (a `?token=` in a page URL must not leak), a window of its own, sensors
/// and WebXR for this origin only, and a strict CSP for pages without one.
pub async fn html_security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !html {
        return response;
    }
    let h = response.headers_mut();
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("permissions-policy"),
            "xr-spatial-tracking=(self), gyroscope=(self), accelerometer=(self), \
             magnetometer=(self), fullscreen=(self), camera=(), microphone=(), geolocation=()",
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
    ] {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

/// A CSP for a self-contained page: its inline `<style>` and `<script>` blocks allowed
/// by their SHA-256 (CSP Level 2 hash sources), data from this origin only, no framing.
pub fn inline_page_csp(html: &str) -> String {
    let hashes = |tag: &str| -> String {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        let mut out = String::new();
        let mut rest = html;
        while let Some(start) = rest.find(&open) {
            let body = &rest[start + open.len()..];
            let Some(end) = body.find(&close) else { break };
            let digest = Sha256::digest(&body.as_bytes()[..end]);
            let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
            out.push_str(&format!(" 'sha256-{b64}'"));
            rest = &body[end + close.len()..];
        }
        out
    };
    format!(
        "default-src 'none'; script-src{}; style-src{}; connect-src 'self'; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        hashes("script"),
        hashes("style")
    )
}

/// [`inline_page_csp`] of a static page, computed once.
pub fn cached_csp(cell: &'static OnceLock<HeaderValue>, html: &str) -> HeaderValue {
    cell.get_or_init(|| {
        HeaderValue::from_str(&inline_page_csp(html))
            .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_blocks_are_allowed_by_their_hash_only() {
        let csp = inline_page_csp("<style>a{}</style><script>go()</script><script>x</script>");
        let hash = |s: &str| {
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(s.as_bytes()))
        };
        assert!(
            csp.contains(&format!(
                "script-src 'sha256-{}' 'sha256-{}';",
                hash("go()"),
                hash("x")
            )),
            "{csp}"
        );
        assert!(
            csp.contains(&format!("style-src 'sha256-{}';", hash("a{}"))),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"));
        assert!(csp.contains("frame-ancestors 'none'"));
    }
}
