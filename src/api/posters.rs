//! `GET /api/v1/streams/{stream}/poster.jpg` and `GET /api/v1/assets/{asset}/poster.jpg`:
//! the posters [`crate::posters`] makes, gated exactly like playback (public and
//! unlisted for anyone, private with a playback token in `?token=` or
//! `Authorization: Bearer`, the rule `/hls` and `/vod` apply), with an `ETag` so a
//! page that polls the live poster gets 304 until it changes.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::access::{bearer, query_token};
use super::problem::{ApiError, Problem};
use super::uploads::FileBytes;
use super::AppState;
use crate::posters::Poster;
use crate::streams::Visibility;

/// A live poster is renewed every ten seconds.
const LIVE_CACHE: &str = "public, max-age=10";
/// An asset's poster is made once; an hour keeps a deleted asset's from lingering.
const ASSET_CACHE: &str = "public, max-age=3600";

/// The stream's newest poster (renewed every 10 s while it is live; the last one is
/// kept when it goes offline).
#[utoipa::path(get, path = "/api/v1/streams/{stream}/poster.jpg", tag = "streams",
    operation_id = "get_stream_poster", security((), ("bearer" = [])),
    params(("stream" = String, Path, description = "stream slug or id"),
           ("token" = Option<String>, Query, nullable = false,
            description = "playback token (private streams)"),
           ("If-None-Match" = Option<String>, Header, description = "an `ETag` of an earlier answer")),
    responses((status = 200, description = "the poster, 640 px wide (2:1 for equirectangular streams)",
               content_type = "image/jpeg", body = FileBytes,
               headers(("ETag" = String, description = "changes with the picture"),
                       ("Cache-Control" = String, description = "`max-age=10`"))),
              (status = 304, description = "the poster is still the one of `If-None-Match`"),
              (status = 401, description = "a private stream, and no valid token for it"),
              (status = 403, description = "a private stream, and a token for another stream"),
              (status = 404, description = "no such stream, or no poster yet (it has not been live)")))]
pub async fn stream_poster(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(def) = state.catalog.get(&stream) else {
        return Err(Problem::not_found(format!("there is no stream named {stream}")).into());
    };
    let token = query_token(query.as_deref()).or_else(|| bearer(&headers));
    state.auth.playback(&def, token)?;
    let poster = state.posters.live(&def.slug).ok_or_else(|| {
        Problem::not_found(format!(
            "stream {stream} has no poster yet: one is made within seconds of it going live"
        ))
    })?;
    let private = def.visibility == Visibility::Private;
    Ok(answer(&poster, &headers, LIVE_CACHE, private))
}

/// The asset's poster (a frame at about a tenth of it), made when the asset becomes
/// ready.
#[utoipa::path(get, path = "/api/v1/assets/{asset}/poster.jpg", tag = "assets",
    operation_id = "get_asset_poster", security((), ("bearer" = [])),
    params(("asset" = String, Path, description = "asset id"),
           ("token" = Option<String>, Query, nullable = false,
            description = "playback token (private assets)"),
           ("If-None-Match" = Option<String>, Header, description = "an `ETag` of an earlier answer")),
    responses((status = 200, description = "the poster, 640 px wide (2:1 for equirectangular assets)",
               content_type = "image/jpeg", body = FileBytes,
               headers(("ETag" = String, description = "changes with the picture"),
                       ("Cache-Control" = String, description = "`max-age=3600`"))),
              (status = 304, description = "the poster is still the one of `If-None-Match`"),
              (status = 401, description = "a private asset, and no valid token for it"),
              (status = 403, description = "a private asset, and a token for another asset"),
              (status = 404, description = "no such asset, or no poster yet (it is not ready)"),
              (status = 500)))]
pub async fn asset_poster(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let asset = state
        .vod
        .assets
        .store
        .get(&id)
        .await
        .map_err(|e| Problem::internal(&e))?
        .ok_or_else(|| Problem::not_found(format!("there is no asset {id}")))?;
    let token = query_token(query.as_deref()).or_else(|| bearer(&headers));
    state
        .auth
        .playback_asset(&asset.id, asset.visibility, token)?;
    let poster = state
        .posters
        .asset(&asset.id)
        .await
        .map_err(|e| Problem::internal(&e))?
        .ok_or_else(|| {
            Problem::not_found(format!(
                "asset {id} has no poster yet: one is made when it becomes ready"
            ))
        })?;
    let private = asset.visibility == Visibility::Private;
    Ok(answer(&poster, &headers, ASSET_CACHE, private))
}

/// 200 with the JPEG, or 304 when `If-None-Match` names it.
fn answer(poster: &Poster, headers: &HeaderMap, cache: &'static str, private: bool) -> Response {
    let cache = if private {
        HeaderValue::from_str(&cache.replace("public", "private"))
            .unwrap_or(HeaderValue::from_static("private, no-cache"))
    } else {
        HeaderValue::from_static(cache)
    };
    let etag = HeaderValue::from_str(&poster.etag).ok();
    let mut response = if if_none_match(headers, &poster.etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"))],
            poster.jpeg.clone(),
        )
            .into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, cache);
    if let Some(etag) = etag {
        h.insert(header::ETAG, etag);
    }
    response
}

/// Whether `If-None-Match` lists `etag` (weak comparison, RFC 9110 13.1.2) or `*`.
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(str::trim)
                .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_lists() {
        let mut h = HeaderMap::new();
        assert!(!if_none_match(&h, "\"a\""));
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"b\", W/\"a\""),
        );
        assert!(if_none_match(&h, "\"a\""));
        assert!(!if_none_match(&h, "\"c\""));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(if_none_match(&h, "\"c\""));
    }
}
