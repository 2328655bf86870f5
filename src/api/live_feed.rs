//! `GET /api/v1/streams/{stream}/live-state/stream`: a stream's live state as
//! Server-Sent Events, straight from the lifecycle bus ([`crate::streams::events`]).
//!
//! The first event is `state` (the current state from the stream's status snapshot);
//! then every lifecycle event of the stream under its own `type` as the SSE event
//! name (`stream.connected`, `stream.active`, `stream.disconnected`, `stream.idle`,
//! `live_session.started`, `live_session.ended`), with `at` the server time it was
//! published. The feed ends when the stream is changed or deleted (a reconnect checks
//! visibility again). A feed that falls behind the bus gets `lagged` with the count
//! lost and a fresh `state`. Visibility as `GET /api/v1/streams/{stream}`.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use super::problem::ApiError;
use super::sse_feed::{self, json_event, FeedSender};
use super::streams::visible_stream;
use super::AppState;
use crate::notify::outbox::timestamp_now;
use crate::streams::events::{BusError, BusReceiver, StreamEvent, StreamRef};
use crate::streams::registry::StreamRegistry;
use crate::streams::session::{LifecycleState, LiveSessionInfo};

/// The `state` event: where the stream is now.
#[derive(Debug, Serialize, ToSchema)]
pub struct LiveState {
    /// Always `state`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// RFC 3339 server time it was read.
    pub at: String,
    #[schema(value_type = Object)]
    pub stream: StreamRef,
    pub state: LifecycleState,
    /// A publisher is attached now.
    pub live: bool,
    pub session: Option<LiveSessionInfo>,
}

/// The `lagged` event: the feed fell behind the bus and lost this many events.
#[derive(Debug, Serialize)]
struct Lagged {
    lost: u64,
}

/// Server-Sent Events of a stream's live state changes (see the module docs); public
/// streams for anyone, private ones with a token that may see them.
#[utoipa::path(get, path = "/api/v1/streams/{stream}/live-state/stream", tag = "streams",
    operation_id = "stream_live_state", security((), ("bearer" = [])),
    params(("stream" = String, Path, description = "stream slug or id"),
           ("token" = Option<String>, Query, nullable = false,
            description = "playback token (private streams)")),
    responses((status = 200, content_type = "text/event-stream", body = String,
               description = "`state`, then the stream's lifecycle events"),
              (status = 401, description = "a private stream, and no valid token for it"),
              (status = 403, description = "a private stream, and a token for another stream"),
              (status = 404, description = "no such stream")))]
pub async fn live_state(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let stream = visible_stream(&state, &slug, query.as_deref(), &headers)?;
    let stream = StreamRef::from(&*stream);
    // Subscribed before the state is read: a change in between is sent after it.
    let bus = state.streams.registry.bus().subscribe();
    let registry = Arc::clone(&state.streams.registry);
    let shutdown = state.notifications.shutdown.clone();
    let (tx, body) = sse_feed::feed("live-state");
    tokio::spawn(async move {
        tokio::select! {
            _ = follow(&registry, stream, bus, &tx) => {}
            _ = shutdown.cancelled() => {}
        }
    });
    Ok(body)
}

fn current(registry: &StreamRegistry, stream: &StreamRef) -> LiveState {
    let status = registry.status(&stream.slug);
    LiveState {
        kind: "state",
        at: timestamp_now(),
        stream: stream.clone(),
        state: status.state,
        live: status.live,
        session: status.session,
    }
}

async fn follow(
    registry: &StreamRegistry,
    stream: StreamRef,
    mut bus: BusReceiver,
    tx: &FeedSender,
) {
    if tx
        .push(json_event("state", None, &current(registry, &stream)))
        .is_err()
    {
        return;
    }
    loop {
        let next = tokio::select! {
            _ = tx.closed() => return,
            next = bus.recv() => next,
        };
        let event = match next {
            Ok(event) => event,
            Err(BusError::Lagged(lost)) => {
                let told = tx
                    .push(json_event("lagged", None, &Lagged { lost }))
                    .and_then(|()| tx.push(json_event("state", None, &current(registry, &stream))));
                if told.is_err() {
                    return;
                }
                continue;
            }
            Err(BusError::Closed) => return,
        };
        if event.event.slug() != stream.slug {
            continue;
        }
        let end = match &event.event {
            StreamEvent::Connected { .. }
            | StreamEvent::Active { .. }
            | StreamEvent::Disconnected { .. }
            | StreamEvent::Idle { .. }
            | StreamEvent::LiveSessionStarted { .. }
            | StreamEvent::LiveSessionEnded { .. } => false,
            // Its visibility may have changed, or it is gone: the client reconnects
            // through the gate again.
            StreamEvent::Updated { .. } | StreamEvent::Deleted { .. } => true,
            StreamEvent::Created { .. } | StreamEvent::KeyRotated { .. } => continue,
        };
        let id = event.seq.to_string();
        if tx
            .push(json_event(event.event.kind(), Some(&id), &*event))
            .is_err()
            || end
        {
            return;
        }
    }
}
