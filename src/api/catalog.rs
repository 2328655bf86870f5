//! `/api/v1/streams`: the catalog. Anyone reads public streams; broadcasters create
//! streams and manage their own; admins manage all. Stream keys are shown once, at
//! creation and rotation.

use crate::packager::output::TranscodeReport;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::access::{Authed, MaybeAuthed};
use super::body::{ApiJson, ApiQuery, Page, PageQuery};
use super::problem::{ApiError, Problem};
use super::AppState;
use crate::auth::request::Caller;
use crate::auth::Role;
use crate::catalog::{CatalogError, StreamFields, StreamRecord, Visibility};
use crate::streams::hub::IngestState;
use crate::streams::{Orientation, Projection};

/// A stream as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct StreamView {
    pub id: String,
    pub slug: String,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    /// User id of the owner; absent for streams imported from the config file.
    pub owner: Option<String>,
    pub projection: Projection,
    /// Initial view direction in degrees.
    pub orientation: Orientation,
    /// Transcoding ladder profile (`default`: the source alone); a change applies from
    /// the next publisher on.
    pub ladder: String,
    pub visibility: Visibility,
    /// RFC 3339.
    pub scheduled_start: Option<String>,
    pub scheduled_end: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
    /// Media is being published now.
    pub live: bool,
    /// What the ingest is doing (`status`: idle, connecting, live with `since`, retrying).
    #[schema(value_type = Object)]
    pub ingest: IngestState,
    /// RFC 3339 start of the current publish session.
    pub live_since: Option<String>,
    /// HLS renditions being served (`video`, `audio`, then the ladder's rungs).
    pub renditions: Vec<String>,
    /// What the transcoding ladder does; absent for streams passed through alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcode: Option<TranscodeReport>,
    /// Bits per second arriving now (all renditions, newest complete segment); only
    /// while live.
    pub current_bitrate_bps: Option<u64>,
    /// Multivariant playlist, relative to the server root (private streams: append
    /// `?token=<playback token>`).
    pub playback_url: String,
    /// Player page, relative to the server root.
    pub watch_url: String,
    /// HTML to embed the player.
    pub embed_html: String,
}

/// Builds the API view of `record` with its live state.
pub fn view(state: &AppState, record: &StreamRecord) -> StreamView {
    let ingest = state.hub.state(&record.slug);
    let live_since = match &ingest {
        IngestState::Live { since } => Some(since.clone()),
        _ => None,
    };
    let live = state.hub.is_live(&record.slug);
    let (renditions, current_bitrate_bps, transcode) = state
        .outputs
        .get(&record.slug)
        .map(|o| {
            let out = o.lock();
            let names = out
                .renditions
                .iter()
                .map(|r| r.name().to_string())
                .collect();
            let rates: Vec<u64> = out
                .renditions
                .iter()
                .filter_map(|r| r.window.current_bitrate())
                .collect();
            let current = (live && !rates.is_empty()).then(|| rates.iter().sum());
            (names, current, out.transcode.clone())
        })
        .unwrap_or_default();
    let watch_url = format!("/watch/{}", record.slug);
    StreamView {
        id: record.id.clone(),
        slug: record.slug.clone(),
        title: record.title.clone(),
        description: record.description.clone(),
        tags: record.tags.clone(),
        owner: record.owner_id.clone(),
        projection: record.projection,
        orientation: record.orientation,
        ladder: record.ladder.clone(),
        visibility: record.visibility,
        scheduled_start: record.scheduled_start.clone(),
        scheduled_end: record.scheduled_end.clone(),
        created_at: record.created_at,
        updated_at: record.updated_at,
        live,
        ingest,
        live_since,
        renditions,
        current_bitrate_bps,
        transcode,
        playback_url: format!("/hls/{}/index.m3u8", record.slug),
        embed_html: format!(
            "<iframe src=\"{watch_url}\" width=\"960\" height=\"540\" \
             allow=\"fullscreen; autoplay; gyroscope; accelerometer; xr-spatial-tracking\" \
             allowfullscreen></iframe>"
        ),
        watch_url,
    }
}

/// Body of `POST /api/v1/streams`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStream {
    /// `[a-z0-9-]`, 1–64 characters; fixed for the life of the stream.
    pub slug: String,
    pub title: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub projection: Projection,
    #[serde(default)]
    pub orientation: Orientation,
    pub ladder: Option<String>,
    #[serde(default)]
    pub visibility: Visibility,
    pub scheduled_start: Option<String>,
    pub scheduled_end: Option<String>,
}

/// Body of `PATCH /api/v1/streams/{stream}`: fields to change; `null` clears a
/// schedule time.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub tags: Option<Vec<String>>,
    pub projection: Option<Projection>,
    pub orientation: Option<Orientation>,
    pub ladder: Option<String>,
    pub visibility: Option<Visibility>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub scheduled_start: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub scheduled_end: Option<Option<String>>,
}

/// A field that is present (`Some`, possibly `null` → `Some(None)`), not absent.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A stream with its key, shown this once.
#[derive(Serialize, ToSchema)]
pub struct StreamWithKey {
    pub stream: StreamView,
    /// Publish with `rtmp://<host>:<port>/<app>/<stream_key>`. Not stored: keep it.
    pub stream_key: String,
}

/// A new stream key, shown this once.
#[derive(Serialize, ToSchema)]
pub struct NewKey {
    pub stream_key: String,
}

/// A playback token for one stream.
#[derive(Serialize, ToSchema)]
pub struct PlaybackToken {
    /// JWT, audience `playback`, bound to the stream.
    pub token: String,
    pub expires_in: u64,
    /// Multivariant playlist URL carrying the token.
    pub playback_url: String,
}

/// 422 unless `ladder` names a configured profile.
fn known_ladder(state: &AppState, ladder: &str) -> Result<(), ApiError> {
    if state.ladders.iter().any(|l| l == ladder) {
        return Ok(());
    }
    Err(Problem::unprocessable(format!(
        "unknown ladder {ladder:?}; the server has: {}",
        state.ladders.join(", ")
    ))
    .into())
}

fn catalog_error(e: CatalogError) -> ApiError {
    match e {
        CatalogError::SlugTaken(_) => Problem::conflict(e.to_string()).into(),
        CatalogError::Invalid(why) => Problem::unprocessable(why).into(),
        CatalogError::NotFound => Problem::not_found("there is no such stream").into(),
        CatalogError::Db(e) => Problem::internal(&e).into(),
    }
}

/// The stream `id` (id or slug) if `caller` may manage it: 404 if they may not even
/// see it, 403 if they see but may not change it.
fn managed(state: &AppState, caller: &Caller, id: &str) -> Result<Arc<StreamRecord>, ApiError> {
    let record = state
        .catalog
        .get(id)
        .filter(|r| caller.may_see(r) || r.visibility == Visibility::Unlisted)
        .ok_or_else(|| Problem::not_found(format!("there is no stream {id}")))?;
    if !caller.may_manage(&record) {
        return Err(Problem::forbidden("only the stream's owner or an admin may do this").into());
    }
    Ok(record)
}

/// List streams by slug: public ones, plus for a broadcaster their own and for an
/// admin all.
#[utoipa::path(get, path = "/api/v1/streams", tag = "streams", params(PageQuery),
    responses((status = 200, body = Page<StreamView>), (status = 400, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    MaybeAuthed(caller): MaybeAuthed,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<Page<StreamView>>, ApiError> {
    let limit = page.limit()?;
    let (records, next_cursor) = state.catalog.list(page.cursor.as_deref(), limit, |r| {
        caller
            .as_ref()
            .map_or(r.visibility == Visibility::Public, |c| c.may_see(r))
    });
    Ok(Json(Page {
        items: records.iter().map(|r| view(&state, r)).collect(),
        next_cursor,
    }))
}

/// Create a stream (broadcasters and admins). The answer holds the stream key, once.
#[utoipa::path(post, path = "/api/v1/streams", tag = "streams", security(("bearer" = [])), request_body = NewStream,
    responses((status = 201, body = StreamWithKey), (status = 403, body = Problem), (status = 409, body = Problem),
              (status = 422, body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    Authed(caller): Authed,
    ApiJson(req): ApiJson<NewStream>,
) -> Result<impl IntoResponse, ApiError> {
    if caller.role == Role::Viewer {
        return Err(Problem::forbidden("viewers cannot create streams").into());
    }
    let defaults = StreamFields::new(&req.slug);
    if let Some(ladder) = &req.ladder {
        known_ladder(&state, ladder)?;
    }
    let fields = StreamFields {
        title: req.title.unwrap_or(defaults.title),
        description: req.description,
        tags: req.tags,
        projection: req.projection,
        orientation: req.orientation,
        ladder: req.ladder.unwrap_or(defaults.ladder),
        visibility: req.visibility,
        scheduled_start: req.scheduled_start,
        scheduled_end: req.scheduled_end,
    };
    let (record, stream_key) = state
        .catalog
        .create(&req.slug, Some(&caller.user_id), fields, None)
        .await
        .map_err(catalog_error)?;
    Ok((
        StatusCode::CREATED,
        Json(StreamWithKey {
            stream: view(&state, &record),
            stream_key,
        }),
    ))
}

/// Change a stream's metadata (owner or admin). The slug cannot change.
#[utoipa::path(patch, path = "/api/v1/streams/{stream}", tag = "streams", security(("bearer" = [])),
    params(("stream" = String, Path, description = "stream id or slug")), request_body = StreamPatch,
    responses((status = 200, body = StreamView), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 422, body = Problem)))]
pub async fn update(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<StreamPatch>,
) -> Result<Json<StreamView>, ApiError> {
    let record = managed(&state, &caller, &id)?;
    if let Some(ladder) = &patch.ladder {
        known_ladder(&state, ladder)?;
    }
    let fields = StreamFields {
        title: patch.title.unwrap_or_else(|| record.title.clone()),
        description: patch
            .description
            .unwrap_or_else(|| record.description.clone()),
        tags: patch.tags.unwrap_or_else(|| record.tags.clone()),
        projection: patch.projection.unwrap_or(record.projection),
        orientation: patch.orientation.unwrap_or(record.orientation),
        ladder: patch.ladder.unwrap_or_else(|| record.ladder.clone()),
        visibility: patch.visibility.unwrap_or(record.visibility),
        scheduled_start: patch
            .scheduled_start
            .unwrap_or_else(|| record.scheduled_start.clone()),
        scheduled_end: patch
            .scheduled_end
            .unwrap_or_else(|| record.scheduled_end.clone()),
    };
    let updated = state
        .catalog
        .update(&record.id, fields)
        .await
        .map_err(catalog_error)?;
    Ok(Json(view(&state, &updated)))
}

/// Delete a stream (owner or admin).
#[utoipa::path(delete, path = "/api/v1/streams/{stream}", tag = "streams", security(("bearer" = [])),
    params(("stream" = String, Path, description = "stream id or slug")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let record = managed(&state, &caller, &id)?;
    state
        .catalog
        .delete(&record.id)
        .await
        .map_err(catalog_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replace the stream key (owner or admin); the old key stops working at once.
#[utoipa::path(post, path = "/api/v1/streams/{stream}/key", tag = "streams", security(("bearer" = [])),
    params(("stream" = String, Path, description = "stream id or slug")),
    responses((status = 200, body = NewKey), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn rotate_key(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Json<NewKey>, ApiError> {
    let record = managed(&state, &caller, &id)?;
    let stream_key = state
        .catalog
        .rotate_key(&record.id)
        .await
        .map_err(catalog_error)?;
    Ok(Json(NewKey { stream_key }))
}

/// A short-lived playback token for one stream. Private streams: their owner and
/// admins only (a site backend logged in as the owner hands tokens to its viewers);
/// public and unlisted streams: any account (they play without one anyway).
#[utoipa::path(post, path = "/api/v1/streams/{stream}/playback-token", tag = "streams", security(("bearer" = [])),
    params(("stream" = String, Path, description = "stream id or slug")),
    responses((status = 200, body = PlaybackToken), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn playback_token(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Json<PlaybackToken>, ApiError> {
    let record = state
        .catalog
        .get(&id)
        .filter(|r| caller.may_see(r) || r.visibility == Visibility::Unlisted)
        .ok_or_else(|| Problem::not_found(format!("there is no stream {id}")))?;
    let token = state
        .auth
        .playback_token(&caller.user_id, &record)
        .map_err(|e| Problem::internal(&e))?;
    Ok(Json(PlaybackToken {
        playback_url: format!("/hls/{}/index.m3u8?token={token}", record.slug),
        token,
        expires_in: state.auth.config.playback_ttl_s,
    }))
}
