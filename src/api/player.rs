//! The built-in 360 player: `GET /watch/{slug}` (the page) and `GET /player/{file}`
//! (its bundle, built from `player/` by `scripts/build-player.sh` and embedded in the
//! binary, so the page works with no internet access and no CDN).
//!
//! The page is a shell: the bundle reads the stream's projection and orientation from
//! `GET /api/v1/streams/{slug}` and plays `/hls/{slug}/index.m3u8`. A `?token=` on the
//! page URL is passed on by the bundle to every request; the server never writes it into
//! the page.

use crate::html::escape_html;
use std::sync::OnceLock;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::AppState;

/// One embedded bundle file, with its gzip copy.
pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static [u8],
    pub gzip: &'static [u8],
}

const SCRIPT: Asset = Asset {
    content_type: "text/javascript; charset=utf-8",
    body: include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/player/dist/player.js"
    )),
    gzip: include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/player/dist/player.js.gz"
    )),
};

const STYLE: Asset = Asset {
    content_type: "text/css; charset=utf-8",
    body: include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/player/dist/player.css"
    )),
    gzip: include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/player/dist/player.css.gz"
    )),
};

/// Bundle URLs carry `?v=<version>`; a request with the current version may be cached
/// for good, any other is revalidated with the ETag.
const VERSIONED_CACHE: &str = "public, max-age=31536000, immutable";
const UNVERSIONED_CACHE: &str = "no-cache";
/// The page is tiny and names the bundle version: always revalidate.
const PAGE_CACHE: &str = "no-cache";

/// The page loads only its own bundle and talks only to this server. `blob:` media is
/// hls.js's MediaSource; WebGL textures come from the same-origin `<video>`.
const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; \
     worker-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'none'";

/// FNV-1a over both bundle files: changes whenever the bundle does.
pub fn bundle_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in SCRIPT.body.iter().chain(STYLE.body) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{hash:016x}")
    })
}

/// The bundle file named `file`, if there is one.
pub fn asset(file: &str) -> Option<&'static Asset> {
    match file {
        "player.js" => Some(&SCRIPT),
        "player.css" => Some(&STYLE),
        _ => None,
    }
}

/// `GET /watch/{slug}`.
pub async fn watch(State(state): State<AppState>, Path(slug): Path<String>) -> Response {
    if state.directory.by_slug(&slug).await.is_none() {
        let body = html_page(
            "no such stream · panocast",
            &format!(
                "<main class=\"pc-notfound\"><h1>There is no stream named {}.</h1></main>",
                escape_html(&slug)
            ),
        );
        return page_response(StatusCode::NOT_FOUND, body);
    }
    page_response(StatusCode::OK, watch_page(&slug))
}

/// `GET /watch/vod/{asset}`: the player on an asset's on-demand HLS, with a seek bar.
/// The page names the asset's projection and view so the player needs no API call
/// (a private asset plays with a playback token, which the asset API does not take);
/// the playlists themselves are gated like live.
pub async fn watch_vod(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let asset = match state.vod.assets.store.get(&id).await {
        Ok(Some(asset)) => asset,
        Ok(None) => {
            let body = html_page(
                "no such video · panocast",
                &format!(
                    "<main class=\"pc-notfound\"><h1>There is no video {}.</h1></main>",
                    escape_html(&id)
                ),
            );
            return page_response(StatusCode::NOT_FOUND, body);
        }
        Err(e) => return super::problem::Problem::internal(&e).into_response(),
    };
    let o = asset.orientation;
    let v = bundle_version();
    let body = html_page(
        &format!("{} · panocast", escape_html(&asset.title)),
        &format!(
            "<div id=\"panocast\" data-asset=\"{}\" data-projection=\"{}\" \
             data-yaw=\"{}\" data-pitch=\"{}\" data-roll=\"{}\"></div>\n\
             <noscript>The 360 player needs JavaScript.</noscript>\n\
             <script type=\"module\" src=\"/player/player.js?v={v}\"></script>",
            escape_html(&asset.id),
            asset.projection.as_str(),
            o.yaw,
            o.pitch,
            o.roll
        ),
    );
    page_response(StatusCode::OK, body)
}

/// The player page for `slug`: the mount point and the versioned bundle.
pub fn watch_page(slug: &str) -> String {
    let slug = escape_html(slug);
    let v = bundle_version();
    html_page(
        &format!("{slug} · panocast"),
        &format!(
            "<div id=\"panocast\" data-slug=\"{slug}\"></div>\n\
             <noscript>The 360 player needs JavaScript.</noscript>\n\
             <script type=\"module\" src=\"/player/player.js?v={v}\"></script>"
        ),
    )
}

fn html_page(title: &str, body: &str) -> String {
    let v = bundle_version();
    format!(
        "<!doctype html>\n\
         <html lang=\"en\">\n\
         <head>\n\
         <meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1, viewport-fit=cover\">\n\
         <title>{title}</title>\n\
         <link rel=\"stylesheet\" href=\"/player/player.css?v={v}\">\n\
         </head>\n\
         <body>\n{body}\n</body>\n\
         </html>\n"
    )
}

fn page_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, PAGE_CACHE),
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            // A ?token= in the page URL must not leak to other sites.
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

/// `GET /player/{file}`: the embedded bundle, gzip when the client takes it.
pub async fn bundle(
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(asset) = asset(&file) else {
        return super::problem::Problem::not_found(format!("no player file named {file}"))
            .into_response();
    };
    let version = bundle_version();
    let etag = format!("\"{version}\"");
    let versioned = query
        .as_deref()
        .is_some_and(|q| q.split('&').any(|kv| kv == format!("v={version}")));
    let cache = if versioned {
        VERSIONED_CACHE
    } else {
        UNVERSIONED_CACHE
    };
    let mut response = if if_none_match(&headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else if accepts_gzip(headers.get(header::ACCEPT_ENCODING)) {
        let mut r = ([(header::CONTENT_TYPE, asset.content_type)], asset.gzip).into_response();
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, value);
    }
    response
}

fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

/// Whether an `Accept-Encoding` value (RFC 9110 12.5.3) accepts gzip: `gzip` or `*`
/// listed with a weight other than 0.
pub fn accepts_gzip(value: Option<&HeaderValue>) -> bool {
    let Some(value) = value.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mut star = None;
    for item in value.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let weight_ok = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .all(|q| q.trim().parse::<f32>().is_ok_and(|q| q > 0.0));
        match coding.as_str() {
            "gzip" | "x-gzip" => return weight_ok,
            "*" => star = Some(weight_ok),
            _ => {}
        }
    }
    star.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    #[test]
    fn gzip_is_taken_when_listed_with_a_weight() {
        assert!(accepts_gzip(Some(&hv("gzip, deflate, br"))));
        assert!(accepts_gzip(Some(&hv("br;q=1.0, gzip;q=0.8"))));
        assert!(accepts_gzip(Some(&hv("*"))));
        assert!(!accepts_gzip(Some(&hv("gzip;q=0"))));
        assert!(!accepts_gzip(Some(&hv("br, identity"))));
        assert!(!accepts_gzip(Some(&hv("*;q=0"))));
        assert!(!accepts_gzip(None));
    }

    #[test]
    fn html_special_characters_are_escaped() {
        assert_eq!(
            escape_html(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn page_names_the_slug_and_the_versioned_bundle() {
        let page = watch_page("cam-1");
        let v = bundle_version();
        assert!(page.starts_with("<!doctype html>"));
        assert!(page.contains(r#"<div id="panocast" data-slug="cam-1"></div>"#));
        assert!(page.contains(&format!(
            r#"<script type="module" src="/player/player.js?v={v}"></script>"#
        )));
        assert!(page.contains(&format!(r#"href="/player/player.css?v={v}""#)));
    }

    #[test]
    fn only_the_bundle_files_are_served() {
        assert!(asset("player.js").is_some());
        assert!(asset("player.css").is_some());
        assert!(asset("../Cargo.toml").is_none());
        assert!(asset("player.js.gz").is_none());
    }
}
