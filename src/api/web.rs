//! The web app: the viewer portal (`/`, `/s/{slug}`, `/v/{asset}`), the admin console
//! (`/admin`, `/admin/...`) and the API docs (`/api/v1/docs`), built from `player/src`
//! by `scripts/build-player.sh` into `player/dist/web` and embedded by `build.rs`.
//!
//! Pages are one small HTML shell per app, rendered here from `entries.json` (which the
//! build writes: each app's script, the chunks it imports and its stylesheets) and sent
//! `no-cache`; the files they name carry a content hash and are cached for good. Pages
//! allow scripts, styles and connections from this origin only: no inline code, no CDN.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::problem::Problem;

/// One embedded file of the web app and its gzip copy (see `build.rs`).
pub struct WebFile {
    pub name: &'static str,
    pub body: &'static [u8],
    pub gzip: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/web_files.rs"));

/// Hashed names: a file never changes under its name.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Shells name the current hashes: always revalidate.
const PAGE_CACHE: &str = "no-cache";

/// Everything from this origin only. `frame-src 'self'`: the portal plays in an
/// `<iframe>` of `/watch/...`; `img-src data:` for the docs' icons; `blob:` for
/// players.
const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; \
     frame-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// One app of `entries.json`.
#[derive(Deserialize)]
struct Entry {
    scripts: Vec<String>,
    styles: Vec<String>,
}

/// The apps of this build, by name (`portal`, `console`, `docs`).
fn entries() -> &'static HashMap<String, Entry> {
    static ENTRIES: OnceLock<HashMap<String, Entry>> = OnceLock::new();
    ENTRIES.get_or_init(|| {
        file("entries.json")
            .and_then(|f| serde_json::from_slice(f.body).ok())
            .unwrap_or_default()
    })
}

fn file(name: &str) -> Option<&'static WebFile> {
    FILES.iter().find(|f| f.name == name)
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") | Some("map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// The HTML shell of `app`, or `None` when this build has no such app.
fn shell(app: &str, title: &str) -> Option<String> {
    let entry = entries().get(app)?;
    let mut head = String::new();
    for style in &entry.styles {
        head.push_str(&format!("<link rel=\"stylesheet\" href=\"/{style}\">\n"));
    }
    for (i, script) in entry.scripts.iter().enumerate() {
        if i == 0 {
            head.push_str(&format!(
                "<script type=\"module\" src=\"/{script}\"></script>\n"
            ));
        } else {
            head.push_str(&format!(
                "<link rel=\"modulepreload\" href=\"/{script}\">\n"
            ));
        }
    }
    Some(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"dark light\">\n\
         <title>{title}</title>\n{head}</head>\n<body><div id=\"app\"></div>\n\
         <noscript>This page needs JavaScript.</noscript></body></html>\n"
    ))
}

fn page(app: &str, title: &str) -> Response {
    let Some(body) = shell(app, title) else {
        return Problem::not_found("this build has no web app; run scripts/build-player.sh")
            .into_response();
    };
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(PAGE_CACHE));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// `GET /`, `/s/{slug}`, `/v/{asset}`, `/signin`: the portal (it routes in the browser).
pub async fn portal() -> Response {
    page("portal", "panocast")
}

/// `GET /s/{slug}` and `/v/{asset}`.
pub async fn portal_item(Path(_id): Path<String>) -> Response {
    page("portal", "panocast")
}

/// `GET /admin` and `/admin/...`: the console.
pub async fn console() -> Response {
    page("console", "panocast console")
}

/// `GET /admin/{*rest}`.
pub async fn console_page(Path(_rest): Path<String>) -> Response {
    page("console", "panocast console")
}

/// `GET /api/v1/docs`: Swagger UI on `/api/v1/openapi.json`, bundled.
pub async fn docs() -> Response {
    page("docs", "panocast API")
}

/// `GET /web/{file}`: a hashed file of the web app, gzipped when the client takes it.
pub async fn web_file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(f) = file(&name) else {
        return Problem::not_found(format!("no web file named {name}")).into_response();
    };
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|c| c.split(';').next().is_some_and(|c| c.trim() == "gzip"))
        });
    let mut response = ([(header::CONTENT_TYPE, content_type(f.name))], {
        if gzip {
            f.gzip
        } else {
            f.body
        }
    })
        .into_response();
    let h = response.headers_mut();
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    // entries.json is not hashed; everything else is.
    let cache = if f.name == "entries.json" {
        PAGE_CACHE
    } else {
        IMMUTABLE
    };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_app_names_files_the_binary_holds() {
        for app in ["portal", "console", "docs"] {
            let entry = entries().get(app).expect("the build has the app");
            assert!(!entry.scripts.is_empty(), "{app} has a script");
            for url in entry.scripts.iter().chain(&entry.styles) {
                let name = url.strip_prefix("web/").expect("under web/");
                assert!(
                    file(name).is_some(),
                    "{app} names {name}, which is embedded"
                );
            }
        }
    }

    #[test]
    fn shells_load_nothing_inline_and_nothing_from_elsewhere() {
        let html = shell("portal", "panocast").expect("portal");
        assert!(!html.contains("<style") && !html.contains("style="));
        assert!(!html.contains("<script>"));
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(!PAGE_CSP.contains("unsafe") && !PAGE_CSP.contains("http"));
    }

    /// `player/openapi.json` is what a server with the default config serves: the web
    /// app's build checks its API calls and generates its types from that copy.
    /// `PANOCAST_UPDATE_OPENAPI=1 cargo test --lib web_openapi_copy` rewrites it.
    #[test]
    fn web_openapi_copy_is_current() {
        let ladders: Vec<String> = crate::config::Config::default()
            .ladder_profiles()
            .keys()
            .cloned()
            .collect();
        let served = super::super::openapi::document_json(&ladders);
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/player/openapi.json");
        if std::env::var_os("PANOCAST_UPDATE_OPENAPI").is_some() {
            let text = serde_json::to_string_pretty(&served).expect("JSON");
            std::fs::write(path, text + "\n").expect("writable player/openapi.json");
        }
        let committed: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("player/openapi.json"))
                .expect("player/openapi.json is JSON");
        assert!(
            committed == served,
            "player/openapi.json is stale: run PANOCAST_UPDATE_OPENAPI=1 cargo test --lib \
             web_openapi_copy, then scripts/build-player.sh"
        );
    }
}
