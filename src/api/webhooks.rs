//! `/api/v1/webhooks`: webhook endpoints (admins only). The secret is shown on
//! creation and rotation, never again. Targets on internal networks are refused with
//! 422 unless `webhooks.allow_private_targets` (see [`crate::notify::webhooks::target`]).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::Authed;
use super::body::{ApiJson, Page};
use super::problem::{ApiError, Problem};
use super::AppState;
use crate::auth::request::Caller;
use crate::notify::webhooks::target;
use crate::notify::webhooks::{Delivery, MessageType, Webhook, WebhookEdit};

/// Deliveries `GET …/deliveries` lists, newest first.
pub const DELIVERY_LOG_ITEMS: i64 = 100;

/// Body of `POST /api/v1/webhooks`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// `http` or `https`; its host must not be internal (unless the server allows it).
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = "^[hH][tT][tT][pP][sS]?://"
    )]
    pub url: String,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: String,
    /// Message types to receive; absent or empty: every type.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub event_types: Vec<MessageType>,
}

/// Body of `PATCH /api/v1/webhooks/{webhook}`: absent fields stay as they are.
/// `enabled: true` re-enables an endpoint that was disabled after persistent failure.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = "^[hH][tT][tT][pP][sS]?://"
    )]
    pub url: Option<String>,
    #[schema(max_length = 500)]
    pub description: Option<String>,
    #[schema(max_items = 20)]
    pub event_types: Option<Vec<MessageType>>,
    pub enabled: Option<bool>,
}

/// An endpoint with its signing secret, shown this once.
#[derive(Serialize, ToSchema)]
pub struct WebhookWithSecret {
    pub webhook: Webhook,
    /// `whsec_` + base64: verify `webhook-signature` with it (Standard Webhooks).
    pub secret: String,
}

/// A new signing secret, shown this once.
#[derive(Serialize, ToSchema)]
pub struct WebhookSecret {
    pub secret: String,
}

fn admin(caller: &Caller) -> Result<(), ApiError> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(Problem::forbidden("only admins manage webhooks").into())
    }
}

fn db_error(e: sqlx::Error) -> ApiError {
    Problem::internal(&e).into()
}

fn no_webhook(id: &str) -> ApiError {
    Problem::not_found(format!("there is no webhook {id}")).into()
}

async fn checked_url(state: &AppState, url: &str) -> Result<(), ApiError> {
    if url.len() > 2000 {
        return Err(Problem::unprocessable("url: at most 2000 characters").into());
    }
    target::check(url, state.webhooks.config.allow_private_targets)
        .await
        .map(|_| ())
        .map_err(|e| Problem::unprocessable(e.to_string()).into())
}

fn check_lengths(description: Option<&str>, types: Option<&[MessageType]>) -> Result<(), ApiError> {
    if description.is_some_and(|d| d.chars().count() > 500) {
        return Err(Problem::unprocessable("description: at most 500 characters").into());
    }
    if types.is_some_and(|t| t.len() > 20) {
        return Err(Problem::unprocessable("event_types: at most 20").into());
    }
    Ok(())
}

/// Register a webhook endpoint (admins). The answer holds its secret, once.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", operation_id = "create_webhook",
    security(("bearer" = [])), request_body = NewWebhook,
    responses((status = 201, body = WebhookWithSecret), (status = 403, description = "not an admin"),
              (status = 422, description = "the body breaks the schema, or the URL is not an http(s) URL of a public host"),
              (status = 500)))]
pub async fn create(
    State(state): State<AppState>,
    Authed(caller): Authed,
    ApiJson(req): ApiJson<NewWebhook>,
) -> Result<impl IntoResponse, ApiError> {
    admin(&caller)?;
    check_lengths(Some(&req.description), Some(&req.event_types))?;
    checked_url(&state, &req.url).await?;
    let (webhook, secret) = state
        .webhooks
        .create(&req.url, &req.description, &req.event_types)
        .await
        .map_err(db_error)?;
    Ok((
        StatusCode::CREATED,
        Json(WebhookWithSecret { webhook, secret }),
    ))
}

/// List webhook endpoints (admins), oldest first.
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", operation_id = "list_webhooks",
    security(("bearer" = [])),
    responses((status = 200, body = Page<Webhook>), (status = 403, description = "not an admin"), (status = 500)))]
pub async fn list(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> Result<Json<Page<Webhook>>, ApiError> {
    admin(&caller)?;
    let items = state.webhooks.list().await.map_err(db_error)?;
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

/// One webhook endpoint (admins).
#[utoipa::path(get, path = "/api/v1/webhooks/{webhook}", tag = "webhooks", operation_id = "get_webhook",
    security(("bearer" = [])), params(("webhook" = String, Path, description = "webhook id (`wh_…`)")),
    responses((status = 200, body = Webhook), (status = 403, description = "not an admin"), (status = 404), (status = 500)))]
pub async fn get(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Json<Webhook>, ApiError> {
    admin(&caller)?;
    match state.webhooks.get(&id).await.map_err(db_error)? {
        Some(webhook) => Ok(Json(webhook)),
        None => Err(no_webhook(&id)),
    }
}

/// Change a webhook endpoint (admins).
#[utoipa::path(patch, path = "/api/v1/webhooks/{webhook}", tag = "webhooks", operation_id = "update_webhook",
    security(("bearer" = [])), params(("webhook" = String, Path, description = "webhook id (`wh_…`)")),
    request_body = WebhookPatch,
    responses((status = 200, body = Webhook), (status = 403, description = "not an admin"), (status = 404),
              (status = 422, description = "the body breaks the schema, or the URL is not an http(s) URL of a public host"),
              (status = 500)))]
pub async fn update(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<WebhookPatch>,
) -> Result<Json<Webhook>, ApiError> {
    admin(&caller)?;
    if state.webhooks.get(&id).await.map_err(db_error)?.is_none() {
        return Err(no_webhook(&id));
    }
    check_lengths(patch.description.as_deref(), patch.event_types.as_deref())?;
    if let Some(url) = &patch.url {
        checked_url(&state, url).await?;
    }
    let edit = WebhookEdit {
        url: patch.url,
        description: patch.description,
        event_types: patch.event_types,
        enabled: patch.enabled,
    };
    match state.webhooks.update(&id, edit).await.map_err(db_error)? {
        Some(webhook) => Ok(Json(webhook)),
        None => Err(no_webhook(&id)),
    }
}

/// Remove a webhook endpoint and its delivery log (admins).
#[utoipa::path(delete, path = "/api/v1/webhooks/{webhook}", tag = "webhooks", operation_id = "delete_webhook",
    security(("bearer" = [])), params(("webhook" = String, Path, description = "webhook id (`wh_…`)")),
    responses((status = 204, description = "deleted"), (status = 403, description = "not an admin"), (status = 404), (status = 500)))]
pub async fn delete(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    admin(&caller)?;
    if state.webhooks.delete(&id).await.map_err(db_error)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_webhook(&id))
    }
}

/// Replace the signing secret (admins); the old one signs nothing more. The answer
/// holds the new secret, once.
#[utoipa::path(post, path = "/api/v1/webhooks/{webhook}/rotate-secret", tag = "webhooks",
    operation_id = "rotate_webhook_secret", security(("bearer" = [])),
    params(("webhook" = String, Path, description = "webhook id (`wh_…`)")),
    responses((status = 200, body = WebhookSecret), (status = 403, description = "not an admin"), (status = 404), (status = 500)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Json<WebhookSecret>, ApiError> {
    admin(&caller)?;
    match state.webhooks.rotate_secret(&id).await.map_err(db_error)? {
        Some(secret) => Ok(Json(WebhookSecret { secret })),
        None => Err(no_webhook(&id)),
    }
}

/// The delivery log of an endpoint (admins): its newest 100 deliveries, newest first,
/// each with every attempt's status code, latency and error.
#[utoipa::path(get, path = "/api/v1/webhooks/{webhook}/deliveries", tag = "webhooks",
    operation_id = "list_webhook_deliveries", security(("bearer" = [])),
    params(("webhook" = String, Path, description = "webhook id (`wh_…`)")),
    responses((status = 200, body = Page<Delivery>), (status = 403, description = "not an admin"), (status = 404), (status = 500)))]
pub async fn deliveries(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Json<Page<Delivery>>, ApiError> {
    admin(&caller)?;
    if state.webhooks.get(&id).await.map_err(db_error)?.is_none() {
        return Err(no_webhook(&id));
    }
    let items = state
        .webhooks
        .deliveries(&id, DELIVERY_LOG_ITEMS)
        .await
        .map_err(db_error)?;
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

/// Send a delivery's message again (admins), as a new delivery with the same
/// `webhook-id`.
#[utoipa::path(post, path = "/api/v1/webhooks/{webhook}/deliveries/{delivery}/replay", tag = "webhooks",
    operation_id = "replay_webhook_delivery", security(("bearer" = [])),
    params(("webhook" = String, Path, description = "webhook id (`wh_…`)"),
           ("delivery" = String, Path, description = "delivery id (`dlv_…`)")),
    responses((status = 202, body = Delivery, description = "queued"), (status = 403, description = "not an admin"),
              (status = 404, description = "no such webhook or delivery"), (status = 500)))]
pub async fn replay(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    admin(&caller)?;
    match state
        .webhooks
        .replay(&id, &delivery)
        .await
        .map_err(db_error)?
    {
        Some(d) => Ok((StatusCode::ACCEPTED, Json(d))),
        None => Err(Problem::not_found(format!("webhook {id} has no delivery {delivery}")).into()),
    }
}

/// Send a `webhook.test` message to this endpoint alone (admins).
#[utoipa::path(post, path = "/api/v1/webhooks/{webhook}/test", tag = "webhooks",
    operation_id = "test_webhook", security(("bearer" = [])),
    params(("webhook" = String, Path, description = "webhook id (`wh_…`)")),
    responses((status = 202, body = Delivery, description = "queued"), (status = 403, description = "not an admin"),
              (status = 404), (status = 500)))]
pub async fn test_send(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    admin(&caller)?;
    match state.webhooks.test_send(&id).await.map_err(db_error)? {
        Some(d) => Ok((StatusCode::ACCEPTED, Json(d))),
        None => Err(no_webhook(&id)),
    }
}
