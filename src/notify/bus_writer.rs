//! The one writer of media-path events into the outbox: it listens on the lifecycle bus
//! ([`crate::streams::events`]) and records `stream.live` (the first complete segment
//! of a connection: viewers can watch) and `stream.offline` (the live session ended).
//! The media path only publishes on the bus, which never waits; this task does the
//! database writes.
//!
//! Bound: the bus keeps [`crate::streams::events::BUS_CAPACITY`] events per subscriber;
//! falling further behind loses the oldest, which is logged with the count.

use tokio_util::sync::CancellationToken;

use super::outbox;
use super::payloads::{StreamLive, StreamOffline};
use super::webhooks::MessageType;
use crate::db::Pool;
use crate::streams::events::{BusError, BusReceiver, StreamEvent};

/// The outbox message a bus event becomes, if any: its type and data.
pub fn message_of(event: &StreamEvent) -> Option<(MessageType, serde_json::Value)> {
    let message = match event {
        StreamEvent::Active { stream, session_id } => Some((
            MessageType::StreamLive,
            serde_json::to_value(StreamLive {
                stream: stream.clone(),
                session_id: session_id.clone(),
            }),
        )),
        StreamEvent::LiveSessionEnded {
            stream,
            session,
            reason,
        } => Some((
            MessageType::StreamOffline,
            serde_json::to_value(StreamOffline {
                stream: stream.clone(),
                session: session.clone(),
                reason: *reason,
            }),
        )),
        _ => None,
    };
    // Our own types always serialize.
    message.and_then(|(kind, data)| Some((kind, data.ok()?)))
}

/// Records the bus's media-path events until `shutdown`. `bus` must be subscribed
/// before the first publisher can connect.
pub fn spawn(pool: Pool, mut bus: BusReceiver, shutdown: CancellationToken) {
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => return,
                event = bus.recv() => event,
            };
            let event = match event {
                Ok(event) => event,
                Err(BusError::Lagged(n)) => {
                    tracing::error!(lost = n, "outbox writer fell behind the stream event bus");
                    continue;
                }
                Err(BusError::Closed) => return,
            };
            let Some((kind, data)) = message_of(&event.event) else {
                continue;
            };
            let written = async {
                let mut conn = pool.acquire().await?;
                outbox::enqueue_at(&mut conn, kind.as_str(), &data, &event.at, None).await
            }
            .await;
            if let Err(e) = written {
                tracing::error!(error = %e, kind = kind.as_str(), "cannot write an outbox message");
            }
        }
    });
}
