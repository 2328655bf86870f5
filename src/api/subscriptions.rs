//! `/api/v1/me/subscriptions` and `/api/v1/me/notification-preferences`: the signed-in
//! user's follows and how they want to be told (see [`crate::subscriptions`]).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

use super::access::Authed;
use super::body::{ApiJson, Page};
use super::problem::{ApiError, Problem};
use super::{events, AppState};
use crate::auth::request::reachable_by;
use crate::subscriptions::{self, Preferences, SubscribeError, Subscription, Target};

/// Subscriptions `GET /api/v1/me/subscriptions` lists, oldest first.
pub const SUBSCRIPTION_LIST_ITEMS: i64 = 1000;

/// Body of `POST /api/v1/me/subscriptions`: exactly one of `stream` and `event`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    /// Id or slug of the stream to follow.
    #[schema(min_length = 1, max_length = 200)]
    pub stream: Option<String>,
    /// Id (`ev_…`) of the event to follow.
    #[schema(min_length = 1, max_length = 200)]
    pub event: Option<String>,
}

fn internal(e: sqlx::Error) -> ApiError {
    Problem::internal(&e).into()
}

/// The signed-in user's subscriptions (at most 1000).
#[utoipa::path(get, path = "/api/v1/me/subscriptions", tag = "subscriptions",
    operation_id = "list_subscriptions", security(("bearer" = [])),
    responses((status = 200, body = Page<Subscription>), (status = 500)))]
pub async fn list(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> Result<Json<Page<Subscription>>, ApiError> {
    let items = subscriptions::list(&state.auth.pool, &caller.user_id, SUBSCRIPTION_LIST_ITEMS)
        .await
        .map_err(internal)?;
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

/// Follow a stream or one event.
#[utoipa::path(post, path = "/api/v1/me/subscriptions", tag = "subscriptions",
    operation_id = "create_subscription", security(("bearer" = [])), request_body = NewSubscription,
    responses((status = 201, body = Subscription),
              (status = 409, description = "already subscribed to it"),
              (status = 500)))]
pub async fn create(
    State(state): State<AppState>,
    Authed(caller): Authed,
    ApiJson(req): ApiJson<NewSubscription>,
) -> Result<impl IntoResponse, ApiError> {
    let target = match (req.stream, req.event) {
        (Some(stream), None) => Target::Stream(stream),
        (None, Some(event)) => Target::Event(event),
        _ => {
            return Err(Problem::unprocessable("give exactly one of stream and event").into());
        }
    };
    // A private stream (and its events) is followed only by who may see it; to anyone
    // else it answers as if it did not exist, so its name gives nothing away.
    let hidden = match &target {
        Target::Stream(id) => state
            .catalog
            .get(id)
            .is_some_and(|def| !reachable_by(&caller, &def)),
        Target::Event(id) => state
            .schedule
            .get(id)
            .await
            .map_err(internal)?
            .is_some_and(|e| !events::event_shown(&state, &caller, &e, events::Reach::Direct)),
    };
    if hidden {
        let missing = match &target {
            Target::Stream(id) => SubscribeError::NoStream(id.clone()),
            Target::Event(id) => SubscribeError::NoEvent(id.clone()),
        };
        return Err(Problem::unprocessable(missing.to_string()).into());
    }
    match subscriptions::subscribe(&state.auth.pool, &caller.user_id, &target).await {
        Ok(sub) => Ok((StatusCode::CREATED, Json(sub))),
        Err(e @ (SubscribeError::NoStream(_) | SubscribeError::NoEvent(_))) => {
            Err(Problem::unprocessable(e.to_string()).into())
        }
        Err(SubscribeError::Duplicate) => {
            Err(Problem::conflict("you are already subscribed to it").into())
        }
        Err(SubscribeError::Db(e)) => Err(internal(e)),
    }
}

/// Stop following.
#[utoipa::path(delete, path = "/api/v1/me/subscriptions/{subscription}", tag = "subscriptions",
    operation_id = "delete_subscription", security(("bearer" = [])),
    params(("subscription" = String, Path, description = "subscription id (`sub_…`)")),
    responses((status = 204, description = "deleted"), (status = 404), (status = 500)))]
pub async fn delete(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if subscriptions::unsubscribe(&state.auth.pool, &caller.user_id, &id)
        .await
        .map_err(internal)?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found(format!("you have no subscription {id}")).into())
    }
}

/// Which notification types reach the signed-in user on which channel.
#[utoipa::path(get, path = "/api/v1/me/notification-preferences", tag = "subscriptions",
    operation_id = "get_notification_preferences", security(("bearer" = [])),
    responses((status = 200, body = Preferences), (status = 500)))]
pub async fn get_preferences(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> Result<Json<Preferences>, ApiError> {
    subscriptions::preferences(&state.auth.pool, &caller.user_id)
        .await
        .map(Json)
        .map_err(internal)
}

/// Replace the signed-in user's notification preferences.
#[utoipa::path(put, path = "/api/v1/me/notification-preferences", tag = "subscriptions",
    operation_id = "put_notification_preferences", security(("bearer" = [])), request_body = Preferences,
    responses((status = 200, body = Preferences), (status = 500)))]
pub async fn put_preferences(
    State(state): State<AppState>,
    Authed(caller): Authed,
    ApiJson(prefs): ApiJson<Preferences>,
) -> Result<Json<Preferences>, ApiError> {
    subscriptions::set_preferences(&state.auth.pool, &caller.user_id, &prefs)
        .await
        .map_err(internal)?;
    Ok(Json(prefs))
}
