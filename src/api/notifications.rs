//! `/api/v1/me/notifications`: the signed-in user's in-app notifications (see
//! [`crate::notify::in_app`]): a list newest first, marking read, and a live SSE feed
//! that resumes after a reconnect from `Last-Event-ID`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use utoipa::{IntoParams, ToSchema};

use super::access::Authed;
use super::body::{ApiQuery, MAX_PAGE_ITEMS};
use super::problem::{ApiError, Problem};
use super::sse_feed::{self, json_event, FeedSender, Gone};
use super::AppState;
use crate::notify::in_app::{store, InApp, Notification};

/// Notifications read from the database per replay query.
const REPLAY_BATCH: i64 = 100;

/// Query of `GET /api/v1/me/notifications`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NotificationQuery {
    /// Items per page (default 20).
    #[param(minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(nullable = false, pattern = "^[1-9][0-9]{0,17}$")]
    pub cursor: Option<String>,
    /// Only unread notifications.
    #[param(nullable = false)]
    pub unread: Option<bool>,
}

/// A page of notifications, newest first, and how many are unread in all.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationPage {
    pub items: Vec<Notification>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    pub unread_count: i64,
}

/// Answer of `POST /api/v1/me/notifications/read-all`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MarkedRead {
    /// How many were unread before.
    pub marked: u64,
    /// Unread now (0, unless one arrived meanwhile).
    pub unread_count: i64,
}

/// Query of the SSE feed.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ResumeQuery {
    /// For clients without EventSource: the `id:` of the last event received (the
    /// `Last-Event-ID` header wins when both are given).
    #[param(nullable = false)]
    pub last_event_id: Option<String>,
}

fn internal(e: sqlx::Error) -> ApiError {
    Problem::internal(&e).into()
}

/// The signed-in user's notifications, newest first.
#[utoipa::path(get, path = "/api/v1/me/notifications", tag = "notifications",
    operation_id = "list_notifications", security(("bearer" = [])), params(NotificationQuery),
    responses((status = 200, body = NotificationPage),
              (status = 400, description = "`limit` outside 1..=100, a malformed cursor, or an unknown query parameter"),
              (status = 500)))]
pub async fn list(
    State(state): State<AppState>,
    Authed(caller): Authed,
    ApiQuery(q): ApiQuery<NotificationQuery>,
) -> Result<Json<NotificationPage>, ApiError> {
    let limit = match q.limit.unwrap_or(20) {
        n @ 1..=MAX_PAGE_ITEMS => i64::from(n),
        _ => {
            return Err(Problem::bad_request(format!("limit must be 1..={MAX_PAGE_ITEMS}")).into())
        }
    };
    let before = match q.cursor.as_deref() {
        None => None,
        Some(c) => Some(
            c.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| Problem::bad_request("cursor is not one this server gave"))?,
        ),
    };
    let pool = &state.notifications.pool;
    let user = &caller.user_id;
    // One more than asked tells whether there is a next page.
    let mut items = store::page(pool, user, before, q.unread.unwrap_or(false), limit + 1)
        .await
        .map_err(internal)?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|n| n.seq.to_string())
    } else {
        None
    };
    let unread_count = store::unread_count(pool, user).await.map_err(internal)?;
    Ok(Json(NotificationPage {
        items,
        next_cursor,
        unread_count,
    }))
}

/// Mark one notification read (again is fine: the first time is kept).
#[utoipa::path(post, path = "/api/v1/me/notifications/{notification}/read", tag = "notifications",
    operation_id = "mark_notification_read", security(("bearer" = [])),
    params(("notification" = String, Path, description = "notification id (`ntf_…`)")),
    responses((status = 200, body = Notification),
              (status = 404, description = "you have no notification by that id"),
              (status = 500)))]
pub async fn mark_read(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Json<Notification>, ApiError> {
    store::mark_read(&state.notifications.pool, &caller.user_id, &id)
        .await
        .map_err(internal)?
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("you have no notification {id}")).into())
}

/// Mark every notification of the signed-in user read.
#[utoipa::path(post, path = "/api/v1/me/notifications/read-all", tag = "notifications",
    operation_id = "mark_all_notifications_read", security(("bearer" = [])),
    responses((status = 200, body = MarkedRead), (status = 500)))]
pub async fn mark_all_read(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> Result<Json<MarkedRead>, ApiError> {
    let pool = &state.notifications.pool;
    let marked = store::mark_all_read(pool, &caller.user_id)
        .await
        .map_err(internal)?;
    let unread_count = store::unread_count(pool, &caller.user_id)
        .await
        .map_err(internal)?;
    Ok(Json(MarkedRead {
        marked,
        unread_count,
    }))
}

/// Server-Sent Events of the signed-in user's new notifications: `event: notification`,
/// `id:` the notification id, `data:` the notification. After a reconnect with
/// `Last-Event-ID` (or `?last_event_id=`) the ones missed meanwhile come first, in
/// order; an id that is not one of yours resumes from now. Keep-alive comments every
/// 15 s; a client more than 64 events behind is dropped.
#[utoipa::path(get, path = "/api/v1/me/notifications/stream", tag = "notifications",
    operation_id = "stream_notifications", security(("bearer" = [])), params(ResumeQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "id of the last event received")),
    responses((status = 200, content_type = "text/event-stream", body = String,
               description = "the feed, until the client leaves or falls behind"),
              (status = 500)))]
pub async fn stream(
    State(state): State<AppState>,
    Authed(caller): Authed,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ResumeQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let in_app = Arc::clone(&state.notifications);
    let user = caller.user_id;
    // Subscribed before the replay is read, so nothing falls between the two.
    let live = in_app.subscribe();
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or(q.last_event_id);
    let from = match last_id {
        Some(id) => store::seq_of(&in_app.pool, &user, &id)
            .await
            .map_err(internal)?,
        None => None,
    };
    let from = match from {
        Some(seq) => seq,
        None => store::newest_seq(&in_app.pool, &user)
            .await
            .map_err(internal)?,
    };
    let (tx, body) = sse_feed::feed("notifications");
    tokio::spawn(follow(in_app, user, from, live, tx));
    Ok(body)
}

/// Sends `user`'s notifications after `seq`: first from the database, then from the
/// hub; after falling behind the hub, from the database again.
async fn follow(
    in_app: Arc<InApp>,
    user: String,
    mut seq: i64,
    mut live: tokio::sync::broadcast::Receiver<Arc<Notification>>,
    tx: FeedSender,
) {
    let mut replay = true;
    loop {
        if replay {
            match catch_up(&in_app, &user, seq, &tx).await {
                Ok(Some(last)) => seq = last,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "notification feed cannot read the database");
                    return;
                }
            }
            replay = false;
        }
        let next = tokio::select! {
            _ = tx.closed() => return,
            _ = in_app.shutdown.cancelled() => return,
            next = live.recv() => next,
        };
        match next {
            Ok(n) if n.user_id == user && n.seq > seq => {
                if send(&tx, &n).is_err() {
                    return;
                }
                seq = n.seq;
            }
            Ok(_) => {}
            Err(RecvError::Lagged(_)) => replay = true,
            Err(RecvError::Closed) => return,
        }
    }
}

/// Sends what is stored after `seq`; the last seq sent, None when the client went.
async fn catch_up(
    in_app: &InApp,
    user: &str,
    mut seq: i64,
    tx: &FeedSender,
) -> Result<Option<i64>, sqlx::Error> {
    loop {
        let batch = store::after(&in_app.pool, user, seq, REPLAY_BATCH).await?;
        for n in &batch {
            if tx
                .send_paced(json_event("notification", Some(&n.id), n))
                .await
                .is_err()
            {
                return Ok(None);
            }
            seq = n.seq;
        }
        if (batch.len() as i64) < REPLAY_BATCH {
            return Ok(Some(seq));
        }
    }
}

fn send(tx: &FeedSender, n: &Notification) -> Result<(), Gone> {
    tx.push(json_event("notification", Some(&n.id), n))
}
