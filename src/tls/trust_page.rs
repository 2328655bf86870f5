//! `GET /ca.crt` (the local CA, for devices to trust) and `GET /tls` (how to trust it on
//! each kind of device). Public like the player: the CA certificate is no secret.
//! Without `mode = "local-ca"` both answer 404.

use std::path::PathBuf;
use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::api::problem::Problem;
use crate::api::AppState;

/// What the pages need of a local CA: where its certificate is and where HTTPS
/// listens.
#[derive(Clone, Debug)]
pub struct TrustAnchor {
    /// `<data_dir>/tls/ca.crt`, read per request (a renewed CA is served at once).
    pub ca_cert: PathBuf,
    /// Set once the HTTPS listener is bound (port 0 binds a free one).
    pub https_port: OnceLock<u16>,
}

pub async fn ca_certificate(State(state): State<AppState>) -> Response {
    let Some(anchor) = state.trust.as_deref() else {
        return Problem::not_found("this server has no local certificate authority")
            .into_response();
    };
    match tokio::fs::read(&anchor.ca_cert).await {
        Ok(pem) => (
            [
                (header::CONTENT_TYPE, "application/x-x509-ca-cert"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"panocast-ca.crt\"",
                ),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            pem,
        )
            .into_response(),
        Err(e) => Problem::internal(&format!("reading the CA certificate: {e}")).into_response(),
    }
}

pub async fn instructions(State(state): State<AppState>) -> Response {
    let Some(anchor) = state.trust.as_deref() else {
        return Problem::not_found("this server has no local certificate authority")
            .into_response();
    };
    static CSP: OnceLock<HeaderValue> = OnceLock::new();
    let port = anchor
        .https_port
        .get()
        .map_or("(see the server's banner)".into(), u16::to_string);
    let html = PAGE.replace("{HTTPS_PORT}", &port);
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                crate::api::http_policy::cached_csp(&CSP, PAGE),
            ),
        ],
        html,
    )
        .into_response()
}

/// The page; `{HTTPS_PORT}` is filled in (outside `<style>`, so the CSP hash holds).
const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>panocast: trust this server for HTTPS</title>
<style>body{font-family:system-ui,sans-serif;max-width:42em;margin:2em auto;padding:0 1em;line-height:1.45}code{background:#eee;padding:0 .25em}h2{margin-top:1.6em}</style>
</head><body>
<h1>Trust this server for HTTPS</h1>
<p>Headsets enter VR (WebXR) and Safari plays low-latency HLS only over HTTPS. This
server signs its HTTPS certificate with a certificate authority of its own. Trust that
authority once on each device, then open the player on port {HTTPS_PORT} with
<code>https://</code>, for example <code>https://&lt;this address&gt;:{HTTPS_PORT}/watch/&lt;stream&gt;</code>.</p>
<p><a href="/ca.crt" download="panocast-ca.crt">Download the CA certificate (panocast-ca.crt)</a></p>
<p>Only trust it if you run this server: whoever holds its key could impersonate any site to the device.</p>
<h2>Meta Quest</h2>
<ol><li>In the headset browser, open this page over <code>http://</code> and download <code>panocast-ca.crt</code>.</li>
<li>Settings → Privacy &amp; Safety (or Security) → Encryption &amp; credentials → Install a certificate → CA certificate, then choose the downloaded file.</li>
<li>Restart the browser and open the <code>https://</code> address.</li></ol>
<h2>Apple Vision Pro, iPhone and iPad</h2>
<ol><li>Open this page in Safari and download the certificate; allow the configuration profile.</li>
<li>Settings → General → VPN &amp; Device Management → the panocast profile → Install.</li>
<li>Settings → General → About → Certificate Trust Settings → turn on full trust for "panocast local CA".</li></ol>
<h2>Android</h2>
<ol><li>Download the certificate.</li>
<li>Settings → Security → Encryption &amp; credentials → Install a certificate → CA certificate, and choose it.</li>
<li>Chrome then trusts it; some apps trust only built-in authorities.</li></ol>
<h2>Desktop</h2>
<ul><li>Windows: open the file → Install Certificate → Local Machine → "Trusted Root Certification Authorities".</li>
<li>macOS: open the file in Keychain Access (System keychain), then set "When using this certificate" to Always Trust.</li>
<li>Linux: copy it to <code>/usr/local/share/ca-certificates/panocast-ca.crt</code> and run <code>sudo update-ca-certificates</code>; Firefox: Settings → Privacy &amp; Security → Certificates → View Certificates → Authorities → Import.</li></ul>
</body></html>
"#;
