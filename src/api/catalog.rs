//! `/api/v1/streams`: the catalog. Anyone reads public streams; broadcasters create
//! streams and manage their own; admins manage all. Stream keys are shown once, at
//! creation and rotation.

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
pub use super::stream_view::{view, StreamView};
use super::AppState;
use crate::auth::request::{listed_for, Caller};
use crate::auth::Role;
use crate::catalog::CatalogError;
use crate::streams::definition::{DualFisheyeLenses, RecordSettings, Secret};
use crate::streams::{Orientation, Projection, StreamDef, StreamSource, Visibility};

/// Body of `POST /api/v1/streams`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStream {
    /// `[a-z0-9-]`, 1–64 characters; fixed for the life of the stream.
    #[schema(pattern = "^[a-z0-9-]{1,64}$", min_length = 1, max_length = 64)]
    pub slug: String,
    #[schema(schema_with = super::openapi::fields::title)]
    pub title: Option<String>,
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub description: String,
    #[serde(default)]
    #[schema(schema_with = super::openapi::fields::tags)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub projection: Projection,
    #[serde(default)]
    #[schema(schema_with = super::openapi::fields::orientation)]
    pub orientation: Orientation,
    /// The lenses of a `dual-fisheye` stream; what is left out takes the defaults.
    #[serde(default)]
    pub fisheye: DualFisheyeLenses,
    /// Turn the pictures by `orientation` (signalled as neutral); default `false`.
    #[serde(default)]
    pub bake_orientation: bool,
    /// Deliver every rendition as an equi-angular cubemap (3x2) for panocast's
    /// player; default `false`.
    #[serde(default)]
    pub cubemap: bool,
    /// One of the server's ladder profiles; default `default` (the source alone).
    pub ladder: Option<String>,
    #[serde(default)]
    pub visibility: Visibility,
    /// Default `true`; a disabled stream refuses publishers.
    pub enabled: Option<bool>,
    /// 0–3600, default 60.
    #[schema(maximum = 3600)]
    #[serde(default, deserialize_with = "whole_seconds")]
    pub reconnect_window_s: Option<u32>,
    /// Default `{"kind": "rtmp-push"}`.
    pub source: Option<StreamSource>,
    /// Default `{"enabled": true}`: every live session becomes an on-demand asset.
    pub record: Option<RecordSettings>,
    /// RFC 3339; before `scheduled_end` when both are given.
    #[schema(format = DateTime)]
    pub scheduled_start: Option<String>,
    /// RFC 3339; after `scheduled_start` when both are given.
    #[schema(format = DateTime)]
    pub scheduled_end: Option<String>,
}

/// Body of `PATCH /api/v1/streams/{stream}`: fields to change; an absent field, or
/// `null`, leaves the field as it is, except that `null` clears a schedule time.
/// Every change applies to a live stream at once: a new projection or orientation
/// starts a new init segment at the next keyframe, `enabled: false` ends the live
/// session, a new `source` restarts the puller; a new `ladder` applies from the next
/// publisher. A `source` of kind `rtsp-pull` without `username`/`password` keeps the
/// current ones (unless its URL has userinfo); `""` removes them.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamPatch {
    #[schema(schema_with = super::openapi::fields::title)]
    pub title: Option<String>,
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    #[schema(schema_with = super::openapi::fields::tags_patch)]
    pub tags: Option<Vec<String>>,
    pub projection: Option<Projection>,
    #[schema(schema_with = super::openapi::fields::orientation_patch)]
    pub orientation: Option<Orientation>,
    /// Replaces the lenses (fields left out take the defaults); applies from the
    /// next publisher.
    pub fisheye: Option<DualFisheyeLenses>,
    pub bake_orientation: Option<bool>,
    /// Applies from the next publisher.
    pub cubemap: Option<bool>,
    /// One of the server's ladder profiles.
    pub ladder: Option<String>,
    pub visibility: Option<Visibility>,
    pub enabled: Option<bool>,
    /// 0–3600.
    #[schema(maximum = 3600)]
    #[serde(default, deserialize_with = "whole_seconds")]
    pub reconnect_window_s: Option<u32>,
    pub source: Option<StreamSource>,
    /// Replaces the recording settings; applies from the next live session.
    pub record: Option<RecordSettings>,
    /// RFC 3339, before `scheduled_end`; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub scheduled_start: Option<Option<String>>,
    /// RFC 3339, after `scheduled_start`; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub scheduled_end: Option<Option<String>>,
}

/// A whole number of seconds. JSON Schema's `integer` includes `60.0`, so a client
/// generated from the document may send it; serde alone would refuse it.
fn whole_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    use serde::de::Error;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let whole = n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= f64::from(u32::MAX))
            .map(|f| f as u64)
    });
    whole
        .and_then(|v| u32::try_from(v).ok())
        .map(Some)
        .ok_or_else(|| {
            D::Error::custom(format!(
                "reconnect_window_s: {n} is not a whole number of seconds"
            ))
        })
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

/// `def` with the fields `patch` sets.
fn apply_patch(def: &mut StreamDef, patch: StreamPatch) {
    let StreamPatch {
        title,
        description,
        tags,
        projection,
        orientation,
        fisheye,
        bake_orientation,
        cubemap,
        ladder,
        visibility,
        enabled,
        reconnect_window_s,
        source,
        record,
        scheduled_start,
        scheduled_end,
    } = patch;
    set(&mut def.title, title);
    set(&mut def.description, description);
    set(&mut def.tags, tags);
    set(&mut def.projection, projection);
    set(&mut def.orientation, orientation);
    set(&mut def.fisheye, fisheye);
    set(&mut def.bake_orientation, bake_orientation);
    set(&mut def.cubemap, cubemap);
    set(&mut def.ladder, ladder);
    set(&mut def.visibility, visibility);
    set(&mut def.enabled, enabled);
    set(&mut def.reconnect_window_s, reconnect_window_s);
    set(&mut def.record, record);
    set(&mut def.scheduled_start, scheduled_start);
    set(&mut def.scheduled_end, scheduled_end);
    if let Some(mut source) = source {
        if let (StreamSource::RtspPull(new), StreamSource::RtspPull(old)) =
            (&mut source, &def.source)
        {
            // Credentials are write-only, so a client cannot send back what it was
            // never shown: absent keeps them (unless the new URL carries its own),
            // empty removes them.
            let url_has_userinfo =
                url::Url::parse(&new.url).is_ok_and(|u| !u.username().is_empty());
            match &new.password {
                None if !url_has_userinfo => new.password = old.password.clone(),
                Some(p) if p.expose().is_empty() => new.password = None::<Secret>,
                _ => {}
            }
            match &new.username {
                None if !url_has_userinfo => new.username = old.username.clone(),
                Some(u) if u.is_empty() => new.username = None,
                _ => {}
            }
        }
        def.source = source;
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
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
pub(super) fn managed(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<Arc<StreamDef>, ApiError> {
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
#[utoipa::path(get, path = "/api/v1/streams", tag = "streams", operation_id = "list_streams",
    params(PageQuery), security((), ("bearer" = [])),
    responses((status = 200, body = Page<StreamView>),
              (status = 400, description = "`limit` outside 1..=100, or an unknown query parameter")))]
pub async fn list(
    State(state): State<AppState>,
    MaybeAuthed(caller): MaybeAuthed,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<Page<StreamView>>, ApiError> {
    let limit = page.limit()?;
    let (records, next_cursor) = state.catalog.list(page.cursor.as_deref(), limit, |r| {
        listed_for(caller.as_ref(), r.visibility, r.owner_id.as_deref())
    });
    Ok(Json(Page {
        items: records.iter().map(|r| view(&state, r)).collect(),
        next_cursor,
    }))
}

/// Create a stream (broadcasters and admins). The answer holds the stream key, once.
#[utoipa::path(post, path = "/api/v1/streams", tag = "streams", operation_id = "create_stream",
    security(("bearer" = [])), request_body = NewStream,
    responses((status = 201, body = StreamWithKey), (status = 403, description = "viewers cannot create streams"),
              (status = 409, description = "the slug is taken"),
              (status = 422, description = "the body breaks the schema, or `scheduled_end` is not after `scheduled_start`"),
              (status = 500)))]
pub async fn create(
    State(state): State<AppState>,
    Authed(caller): Authed,
    ApiJson(req): ApiJson<NewStream>,
) -> Result<impl IntoResponse, ApiError> {
    if caller.role == Role::Viewer {
        return Err(Problem::forbidden("viewers cannot create streams").into());
    }
    if let Some(ladder) = &req.ladder {
        known_ladder(&state, ladder)?;
    }
    let defaults = StreamDef::new(&req.slug);
    let def = StreamDef {
        title: req.title.unwrap_or(defaults.title.clone()),
        description: req.description,
        tags: req.tags,
        owner_id: Some(caller.user_id.clone()),
        projection: req.projection,
        orientation: req.orientation,
        fisheye: req.fisheye,
        bake_orientation: req.bake_orientation,
        cubemap: req.cubemap,
        ladder: req.ladder.unwrap_or(defaults.ladder.clone()),
        visibility: req.visibility,
        enabled: req.enabled.unwrap_or(true),
        reconnect_window_s: req
            .reconnect_window_s
            .unwrap_or(defaults.reconnect_window_s),
        source: req.source.unwrap_or_default(),
        record: req.record.unwrap_or_default(),
        scheduled_start: req.scheduled_start,
        scheduled_end: req.scheduled_end,
        ..defaults
    };
    let (record, stream_key) = state
        .streams
        .create(def, None)
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

/// Change a stream (owner or admin); a live stream follows at once. The slug cannot change.
#[utoipa::path(patch, path = "/api/v1/streams/{stream}", tag = "streams", operation_id = "update_stream",
    security(("bearer" = [])),
    params(("stream" = String, Path, description = "stream id or slug")), request_body = StreamPatch,
    responses((status = 200, body = StreamView), (status = 403, description = "neither the owner nor an admin"),
              (status = 404),
              (status = 422, description = "the body breaks the schema, or `scheduled_end` would not be after `scheduled_start`"),
              (status = 500)))]
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
    let updated = state
        .streams
        .update(&record.id, |def| apply_patch(def, patch))
        .await
        .map_err(catalog_error)?;
    Ok(Json(view(&state, &updated)))
}

/// Delete a stream (owner or admin). Its publisher is disconnected, its camera no
/// longer pulled, and its HLS URLs answer 404 by the time this answers.
#[utoipa::path(delete, path = "/api/v1/streams/{stream}", tag = "streams", operation_id = "delete_stream",
    security(("bearer" = [])),
    params(("stream" = String, Path, description = "stream id or slug")),
    responses((status = 204, description = "deleted"), (status = 403, description = "neither the owner nor an admin"),
              (status = 404), (status = 500)))]
pub async fn delete(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let record = managed(&state, &caller, &id)?;
    state
        .streams
        .delete(&record.id)
        .await
        .map_err(catalog_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replace the stream key (owner or admin); the old key stops working at once and the
/// publisher that used it is disconnected.
#[utoipa::path(post, path = "/api/v1/streams/{stream}/key", tag = "streams", operation_id = "rotate_stream_key",
    security(("bearer" = [])),
    params(("stream" = String, Path, description = "stream id or slug")),
    responses((status = 200, body = NewKey), (status = 403, description = "neither the owner nor an admin"),
              (status = 404), (status = 500)))]
pub async fn rotate_key(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Json<NewKey>, ApiError> {
    let record = managed(&state, &caller, &id)?;
    let stream_key = state
        .streams
        .rotate_key(&record.id)
        .await
        .map_err(catalog_error)?;
    Ok(Json(NewKey { stream_key }))
}

/// A short-lived playback token for one stream. Private streams: their owner and
/// admins only (a site backend logged in as the owner hands tokens to its viewers);
/// public and unlisted streams: any account (they play without one anyway).
#[utoipa::path(post, path = "/api/v1/streams/{stream}/playback-token", tag = "streams",
    operation_id = "create_playback_token", security(("bearer" = [])),
    params(("stream" = String, Path, description = "stream id or slug")),
    responses((status = 200, body = PlaybackToken), (status = 404), (status = 500)))]
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
