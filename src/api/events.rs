//! `/api/v1/events`: scheduled events. Any signed-in account reads them (drafts only
//! their owner, their stream's owner and admins), and signed-out visitors the list of
//! public streams' announced ones; admins and broadcasters create
//! and change them. A client moves an event only from `draft` to
//! `scheduled` or to `cancelled`; `starting_soon`, `live` and `ended` are the server's
//! (see [`crate::schedule`]).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use super::access::{Authed, MaybeAuthed};
use super::body::{ApiJson, Page};
use super::problem::{ApiError, Problem};
use super::AppState;
use crate::auth::request::{listed_for, reachable_by, Caller};
use crate::auth::Role;
use crate::schedule::store::{EventFields, ScheduleError};
use crate::schedule::{draft_seen_by, EventState, ScheduledEvent};

/// Events `GET /api/v1/events` lists, soonest start first.
pub const EVENT_LIST_ITEMS: i64 = 500;

/// Body of `POST /api/v1/events`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    #[schema(schema_with = super::openapi::fields::event_title)]
    pub title: String,
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub description: String,
    #[serde(default)]
    #[schema(schema_with = super::openapi::fields::tags)]
    pub tags: Vec<String>,
    /// Id or slug of the stream the event is shown on.
    pub stream: String,
    /// RFC 3339 with zone.
    #[schema(format = DateTime)]
    pub scheduled_start: String,
    /// RFC 3339 with zone, after `scheduled_start`.
    #[schema(format = DateTime)]
    pub scheduled_end: Option<String>,
    /// Seconds before the start at which it becomes `starting_soon`: 0–86400,
    /// default 900.
    #[schema(maximum = 86400)]
    #[serde(default, deserialize_with = "whole_seconds")]
    pub starting_soon_lead_s: Option<u32>,
    /// `draft` or `scheduled` (default).
    pub state: Option<EventState>,
}

/// Body of `PATCH /api/v1/events/{event}`: absent fields stay; `state` may only
/// publish a draft (`scheduled`) or cancel (`cancelled`); moving the start or lead of
/// an event that is `starting_soon` makes it `scheduled` again.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventPatch {
    #[schema(schema_with = super::openapi::fields::event_title)]
    pub title: Option<String>,
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    #[schema(schema_with = super::openapi::fields::tags_patch)]
    pub tags: Option<Vec<String>>,
    #[schema(format = DateTime)]
    pub scheduled_start: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub scheduled_end: Option<Option<String>>,
    #[schema(maximum = 86400)]
    #[serde(default, deserialize_with = "whole_seconds")]
    pub starting_soon_lead_s: Option<u32>,
    pub state: Option<EventState>,
}

/// A whole number of seconds; JSON Schema's `integer` includes `900.0`.
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
                "starting_soon_lead_s: {n} is not a whole number of seconds"
            ))
        })
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn manager(caller: &Caller) -> Result<(), ApiError> {
    if caller.role == Role::Viewer {
        return Err(Problem::forbidden("viewers cannot manage events").into());
    }
    Ok(())
}

fn schedule_error(e: ScheduleError) -> ApiError {
    match e {
        ScheduleError::Invalid(why) => Problem::unprocessable(why).into(),
        ScheduleError::Conflict(why) => Problem::conflict(why).into(),
        ScheduleError::Db(e) => Problem::internal(&e).into(),
    }
}

fn no_event(id: &str) -> ApiError {
    Problem::not_found(format!("there is no event {id}")).into()
}

/// Schedule an event on a stream (admins and broadcasters).
#[utoipa::path(post, path = "/api/v1/events", tag = "events", operation_id = "create_event",
    security(("bearer" = [])), request_body = NewEvent,
    responses((status = 201, body = ScheduledEvent), (status = 403, description = "viewers cannot manage events"),
              (status = 422, description = "the body breaks the schema, `stream` names no stream the caller may see, or `scheduled_end` is not after `scheduled_start`"),
              (status = 500)))]
pub async fn create(
    State(state): State<AppState>,
    Authed(caller): Authed,
    ApiJson(req): ApiJson<NewEvent>,
) -> Result<impl IntoResponse, ApiError> {
    manager(&caller)?;
    let stream = state
        .catalog
        .get(&req.stream)
        .filter(|s| caller.may_see(s))
        .ok_or_else(|| Problem::unprocessable(format!("there is no stream {}", req.stream)))?;
    let event = state
        .schedule
        .create(EventFields {
            title: Some(req.title),
            description: Some(req.description),
            tags: Some(req.tags),
            stream_id: Some(stream.id.clone()),
            owner_id: Some(caller.user_id.clone()),
            scheduled_start: Some(req.scheduled_start),
            scheduled_end: Some(req.scheduled_end),
            lead_s: req.starting_soon_lead_s,
            state: req.state,
        })
        .await
        .map_err(schedule_error)?;
    Ok((StatusCode::CREATED, Json(event)))
}

/// List events, soonest start first (at most 500). Without a token: only the
/// announced (scheduled, starting soon, live) events of public streams. Drafts are
/// listed only to their owner, their stream's owner and admins.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", operation_id = "list_events",
    security((), ("bearer" = [])),
    responses((status = 200, body = Page<ScheduledEvent>), (status = 500)))]
pub async fn list(
    State(state): State<AppState>,
    MaybeAuthed(caller): MaybeAuthed,
) -> Result<Json<Page<ScheduledEvent>>, ApiError> {
    let items = state
        .schedule
        .list(EVENT_LIST_ITEMS)
        .await
        .map_err(|e| ApiError::from(Problem::internal(&e)))?
        .into_iter()
        .filter(|e| match &caller {
            Some(caller) => event_shown(&state, caller, e, Reach::Listed),
            None => announced_in_public(&state, e),
        })
        .collect();
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

/// One event. Someone else's draft answers 404, like a private stream's event.
#[utoipa::path(get, path = "/api/v1/events/{event}", tag = "events", operation_id = "get_event",
    security(("bearer" = [])), params(("event" = String, Path, description = "event id (`ev_…`)")),
    responses((status = 200, body = ScheduledEvent),
              (status = 404, description = "no such event, or one the caller may not see"),
              (status = 500)))]
pub async fn get(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Json<ScheduledEvent>, ApiError> {
    // A private stream's event, or someone else's draft, is as unknown as a missing one.
    shown_event(&state, &caller, &id).await.map(Json)
}

/// How an event is reached: in a list (which shows what is listed) or by its id
/// (which, like an unlisted stream's link, shows everything but the private).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    Listed,
    Direct,
}

/// Whether `caller` may see `event`: as its stream is seen (private streams only by
/// who manages them; in lists also unlisted ones), and every event without a stream;
/// a draft only by admins, its owner and its stream's owner
/// ([`crate::schedule::draft_seen_by`]).
pub fn event_shown(
    state: &AppState,
    caller: &Caller,
    event: &ScheduledEvent,
    reach: Reach,
) -> bool {
    let stream = event
        .stream_id
        .as_deref()
        .and_then(|id| state.catalog.get(id));
    if event.state == EventState::Draft
        && !draft_seen_by(
            caller,
            event.owner_id.as_deref(),
            stream.as_ref().and_then(|s| s.owner_id.as_deref()),
        )
    {
        return false;
    }
    let Some(stream) = stream else {
        return true;
    };
    match reach {
        Reach::Listed => listed_for(Some(caller), stream.visibility, stream.owner_id.as_deref()),
        Reach::Direct => reachable_by(caller, &stream),
    }
}

/// Event `id` when `caller` may see it (by id); a hidden one is as unknown as a
/// missing one, so changing it answers 404 too.
async fn shown_event(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<ScheduledEvent, ApiError> {
    match state
        .schedule
        .get(id)
        .await
        .map_err(|e| ApiError::from(Problem::internal(&e)))?
    {
        Some(event) if event_shown(state, caller, &event, Reach::Direct) => Ok(event),
        _ => Err(no_event(id)),
    }
}

/// Event `id` when `caller` may change it: seen by them, and theirs to manage, as a
/// draft is (admins, its creator, its stream's owner). Another broadcaster sees a
/// published event on a public stream but gets 403 for changing it.
async fn managed_event(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<ScheduledEvent, ApiError> {
    manager(caller)?;
    let event = shown_event(state, caller, id).await?;
    let stream_owner = event
        .stream_id
        .as_deref()
        .and_then(|s| state.catalog.get(s))
        .and_then(|s| s.owner_id.clone());
    if !draft_seen_by(caller, event.owner_id.as_deref(), stream_owner.as_deref()) {
        return Err(Problem::forbidden(
            "only the event's creator, its stream's owner or an admin may change it",
        )
        .into());
    }
    Ok(event)
}

/// Whether a signed-out visitor sees `event`: announced and not over, on a stream
/// that is public (not unlisted, not private, not gone).
fn announced_in_public(state: &AppState, event: &ScheduledEvent) -> bool {
    let announced = matches!(
        event.state,
        EventState::Scheduled | EventState::StartingSoon | EventState::Live
    );
    announced
        && event
            .stream_id
            .as_deref()
            .and_then(|id| state.catalog.get(id))
            .is_some_and(|s| s.visibility == crate::streams::Visibility::Public)
}

/// Change an event (admins and broadcasters).
#[utoipa::path(patch, path = "/api/v1/events/{event}", tag = "events", operation_id = "update_event",
    security(("bearer" = [])), params(("event" = String, Path, description = "event id (`ev_…`)")),
    request_body = EventPatch,
    responses((status = 200, body = ScheduledEvent), (status = 403, description = "viewers cannot manage events, nor broadcasters someone else's"),
              (status = 404), (status = 409, description = "the event cannot move to that state"),
              (status = 422, description = "the body breaks the schema, or `scheduled_end` would not be after `scheduled_start`"),
              (status = 500)))]
pub async fn update(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<EventPatch>,
) -> Result<Json<ScheduledEvent>, ApiError> {
    managed_event(&state, &caller, &id).await?;
    let fields = EventFields {
        title: patch.title,
        description: patch.description,
        tags: patch.tags,
        stream_id: None,
        owner_id: None,
        scheduled_start: patch.scheduled_start,
        scheduled_end: patch.scheduled_end,
        lead_s: patch.starting_soon_lead_s,
        state: patch.state,
    };
    match state
        .schedule
        .update(&id, fields)
        .await
        .map_err(schedule_error)?
    {
        Some(event) => Ok(Json(event)),
        None => Err(no_event(&id)),
    }
}

/// Remove an event (admins and broadcasters); to tell subscribers, cancel it instead.
#[utoipa::path(delete, path = "/api/v1/events/{event}", tag = "events", operation_id = "delete_event",
    security(("bearer" = [])), params(("event" = String, Path, description = "event id (`ev_…`)")),
    responses((status = 204, description = "deleted"), (status = 403, description = "viewers cannot manage events, nor broadcasters someone else's"),
              (status = 404), (status = 500)))]
pub async fn delete(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    managed_event(&state, &caller, &id).await?;
    if state
        .schedule
        .delete(&id)
        .await
        .map_err(|e| ApiError::from(Problem::internal(&e)))?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_event(&id))
    }
}
