//! `GET /api/v1/streams/{stream}`: what a player or an admin needs to know of a stream.
//!
//! Public and unlisted streams answer anyone. A private stream answers a playback
//! token for it (`?token=` or `Authorization: Bearer`, as on HLS) or the access token
//! of its owner or an admin (in the header only).

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::Json;

use super::access::{bearer, query_token};
use super::catalog::{view, StreamView};
use super::problem::{ApiError, Problem};
use super::AppState;
use crate::streams::{StreamDef, Visibility};
use std::sync::Arc;

/// The stream by slug (or id), with its live state.
#[utoipa::path(get, path = "/api/v1/streams/{stream}", tag = "streams", operation_id = "get_stream",
    security((), ("bearer" = [])),
    params(("stream" = String, Path, description = "stream slug or id"),
           ("token" = Option<String>, Query, nullable = false,
            description = "playback token (private streams)")),
    responses((status = 200, body = StreamView),
              (status = 401, description = "a private stream, and no valid token for it"),
              (status = 403, description = "a private stream, and a token for another stream"),
              (status = 404, description = "no such stream")))]
pub async fn stream_info(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<StreamView>, ApiError> {
    let stream = visible_stream(&state, &slug, query.as_deref(), &headers)?;
    Ok(Json(view(&state, &stream)))
}

/// Stream `slug` (or id) if the request may see it: anyone for public and unlisted
/// streams; for a private one a playback token for it or its owner's or an admin's
/// access token. Also the live-state feed's gate ([`super::live_feed`]).
pub fn visible_stream(
    state: &AppState,
    slug: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Arc<StreamDef>, ApiError> {
    let Some(stream) = state.catalog.get(slug) else {
        return Err(Problem::not_found(format!("there is no stream named {slug}")).into());
    };
    if stream.visibility == Visibility::Private {
        let token = query_token(query).or_else(|| bearer(headers));
        // Access tokens only in the header: URLs end up in logs.
        let managed = bearer(headers)
            .and_then(|t| state.auth.caller(Some(t)).ok().flatten())
            .is_some_and(|caller| caller.may_manage(&stream));
        if !managed {
            state.auth.playback(&stream, token)?;
        }
    }
    Ok(stream)
}
