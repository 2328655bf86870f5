//! What browsers are told (issue 18 item 5): CORS open for media and configurable for
//! the REST API, and the security headers of every HTML page; the real server over
//! real HTTP.

mod common;

use std::time::Duration;

use common::*;
use reqwest::Method;

const PORTAL: &str = "https://portal.example";
const STREAM: &str = r#"
[[streams]]
slug = "cam"
key = "cam-secret-key-1"
projection = "equirect"
"#;

/// The CORS answer to a browser at `origin`: the preflight's and a GET's
/// `Access-Control-Allow-Origin`.
async fn allowed_origin(
    client: &reqwest::Client,
    url: &str,
    origin: &str,
) -> (Option<String>, Option<String>) {
    let header = |r: &reqwest::Response| {
        r.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let preflight = client
        .request(Method::OPTIONS, url)
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization,content-type",
        )
        .send()
        .await
        .expect("preflight");
    let get = client
        .get(url)
        .header("Origin", origin)
        .send()
        .await
        .expect("GET");
    (header(&preflight), header(&get))
}

#[tokio::test]
async fn the_api_answers_only_configured_origins_while_media_stays_open() {
    let server = Server::start(&format!("[api]\ncors_origins = [\"{PORTAL}\"]\n{STREAM}"));
    let client = client();
    let api = server.url("/api/v1/streams");
    assert_eq!(
        allowed_origin(&client, &api, PORTAL).await,
        (Some(PORTAL.to_owned()), Some(PORTAL.to_owned()))
    );
    assert_eq!(
        allowed_origin(&client, &api, "https://evil.example").await,
        (None, None),
        "an origin not listed gets no CORS grant"
    );
    // Playlists (404 until live) and the player bundle: every origin.
    for path in ["/hls/cam/index.m3u8", "/player/player.js"] {
        let (_, get) = allowed_origin(&client, &server.url(path), "https://evil.example").await;
        assert_eq!(get.as_deref(), Some("*"), "{path}");
    }
}

#[tokio::test]
async fn by_default_every_origin_may_call_the_api() {
    let server = Server::start(STREAM);
    let (preflight, get) = allowed_origin(
        &client(),
        &server.url("/api/v1/streams"),
        "https://anywhere.example",
    )
    .await;
    assert_eq!(
        (preflight.as_deref(), get.as_deref()),
        (Some("*"), Some("*"))
    );
}

#[test]
fn a_malformed_origin_is_refused_at_start() {
    for bad in [
        "portal.example",
        "https://portal.example/path",
        "ftp://x.example",
    ] {
        let out = serve_until_exit(
            &format!("[api]\ncors_origins = [\"{bad}\"]\n"),
            Duration::from_secs(20),
        );
        assert!(!out.status.success(), "{bad}: {}", out.output);
        assert!(
            out.output.contains("api.cors_origins"),
            "{bad}: {}",
            out.output
        );
    }
}

#[tokio::test]
async fn html_pages_carry_the_security_headers() {
    let server = Server::start(STREAM);
    let client = client();
    for path in ["/watch/cam", "/watch/no-such-stream", "/api/v1/docs"] {
        let r = client.get(server.url(path)).send().await.expect(path);
        let h = |name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert!(h("content-type").starts_with("text/html"), "{path}");
        assert_eq!(h("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(h("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(h("cross-origin-opener-policy"), "same-origin", "{path}");
        assert!(
            h("permissions-policy").contains("xr-spatial-tracking=(self)"),
            "{path}"
        );
        let csp = h("content-security-policy");
        assert!(
            csp.contains("default-src") && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
    }
    // The API docs page (Swagger UI, bundled) runs only this server's scripts, and is
    // never framed.
    let docs = client
        .get(server.url("/api/v1/docs"))
        .send()
        .await
        .expect("docs");
    let csp = docs.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        csp.contains("script-src 'self'")
            && !csp.contains("unsafe-inline")
            && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(docs.headers()["x-frame-options"], "DENY");
}
