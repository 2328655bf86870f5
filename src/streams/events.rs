//! The stream lifecycle bus: what happened to streams and their live sessions, from
//! the one place that knows (the catalog service for definitions, each stream's task
//! for its lifecycle).
//!
//! Contract:
//! - Bounded: [`BUS_CAPACITY`] events are kept for subscribers. Publishing never waits
//!   and never fails, so the media path and the API are never slowed by a subscriber.
//! - A subscriber that falls more than [`BUS_CAPACITY`] events behind loses the oldest
//!   ones and is told so: [`BusReceiver::recv`] returns [`BusError::Lagged`] with the
//!   count, then continues with the oldest event still kept. Subscribers that must not
//!   lose anything (the notification outbox) record what they need promptly and
//!   reconcile from the catalog after a lag.
//! - Order: events of one stream are published in the order they happened; `seq`
//!   increases by one per event across all streams.
//! - Subscribers only see events published after they subscribed.
//!
//! Event types (`type` in JSON), dot-namespaced, past tense:
//! `stream.created|updated|deleted|key_rotated` (from the catalog service),
//! `stream.connected` (a publisher attached or the puller delivered its first unit),
//! `stream.active` (the first complete segment of the connection),
//! `stream.disconnected` (the publisher left, was taken over, kicked or refused),
//! `stream.idle` (the live session ended), `live_session.started`,
//! `live_session.ended` (with the reason).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast;

use super::definition::StreamDef;
use super::session::LiveSessionInfo;

/// Events kept for subscribers that have not read them yet.
pub const BUS_CAPACITY: usize = 1024;

/// Why a publisher's connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DisconnectReason {
    /// The publisher closed the connection or it failed.
    Left,
    /// Another publisher with the stream's key took over.
    TakenOver,
    /// The stream key was rotated.
    KeyRotated,
    /// The stream was disabled.
    Disabled,
    /// The stream was deleted.
    Deleted,
    /// The stream's source was changed (a puller restarts with the new one).
    SourceChanged,
    /// The server is shutting down.
    Shutdown,
    /// The stream went past its memory budget (`[limits] stream_memory_bytes`).
    MemoryBudget,
}

/// Why a live session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionEndReason {
    /// No publisher came back within the stream's reconnect window.
    ReconnectWindowExpired,
    Disabled,
    Deleted,
    Shutdown,
    /// The publisher was dropped for going past the stream's memory budget.
    MemoryBudget,
}

/// What happened.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type")]
pub enum StreamEvent {
    #[serde(rename = "stream.created")]
    Created { stream: StreamSummary },
    #[serde(rename = "stream.updated")]
    Updated {
        stream: StreamSummary,
        /// Names of the fields that changed.
        changed: Vec<&'static str>,
    },
    #[serde(rename = "stream.deleted")]
    Deleted { stream: StreamSummary },
    #[serde(rename = "stream.key_rotated")]
    KeyRotated { stream: StreamSummary },
    #[serde(rename = "stream.connected")]
    Connected {
        stream: StreamRef,
        session_id: String,
        /// `rtmp` or `rtsp`.
        protocol: &'static str,
        /// How many times the session's publisher came back before this one.
        reconnects: u32,
    },
    #[serde(rename = "stream.active")]
    Active {
        stream: StreamRef,
        session_id: String,
    },
    #[serde(rename = "stream.disconnected")]
    Disconnected {
        stream: StreamRef,
        session_id: String,
        reason: DisconnectReason,
    },
    #[serde(rename = "stream.idle")]
    Idle { stream: StreamRef },
    #[serde(rename = "live_session.started")]
    LiveSessionStarted {
        stream: StreamRef,
        session: LiveSessionInfo,
    },
    #[serde(rename = "live_session.ended")]
    LiveSessionEnded {
        stream: StreamRef,
        session: LiveSessionInfo,
        reason: SessionEndReason,
    },
}

impl StreamEvent {
    /// The `type` string.
    pub fn kind(&self) -> &'static str {
        match self {
            StreamEvent::Created { .. } => "stream.created",
            StreamEvent::Updated { .. } => "stream.updated",
            StreamEvent::Deleted { .. } => "stream.deleted",
            StreamEvent::KeyRotated { .. } => "stream.key_rotated",
            StreamEvent::Connected { .. } => "stream.connected",
            StreamEvent::Active { .. } => "stream.active",
            StreamEvent::Disconnected { .. } => "stream.disconnected",
            StreamEvent::Idle { .. } => "stream.idle",
            StreamEvent::LiveSessionStarted { .. } => "live_session.started",
            StreamEvent::LiveSessionEnded { .. } => "live_session.ended",
        }
    }

    /// The slug of the stream it is about.
    pub fn slug(&self) -> &str {
        match self {
            StreamEvent::Created { stream }
            | StreamEvent::Updated { stream, .. }
            | StreamEvent::Deleted { stream }
            | StreamEvent::KeyRotated { stream } => &stream.slug,
            StreamEvent::Connected { stream, .. }
            | StreamEvent::Active { stream, .. }
            | StreamEvent::Disconnected { stream, .. }
            | StreamEvent::Idle { stream }
            | StreamEvent::LiveSessionStarted { stream, .. }
            | StreamEvent::LiveSessionEnded { stream, .. } => &stream.slug,
        }
    }
}

/// Which stream an event is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StreamRef {
    pub id: String,
    pub slug: String,
}

impl From<&StreamDef> for StreamRef {
    fn from(def: &StreamDef) -> Self {
        Self {
            id: def.id.clone(),
            slug: def.slug.clone(),
        }
    }
}

/// A stream's definition as events carry it: everything but secrets (no key, no
/// source credentials).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct StreamSummary {
    pub id: String,
    pub slug: String,
    pub title: String,
    pub owner_id: Option<String>,
    pub visibility: &'static str,
    pub projection: &'static str,
    pub enabled: bool,
    pub source: &'static str,
    #[serde(skip)]
    #[schema(ignore)]
    pub def: Arc<StreamDef>,
}

impl From<&Arc<StreamDef>> for StreamSummary {
    fn from(def: &Arc<StreamDef>) -> Self {
        Self {
            id: def.id.clone(),
            slug: def.slug.clone(),
            title: def.title.clone(),
            owner_id: def.owner_id.clone(),
            visibility: def.visibility.as_str(),
            projection: def.projection.as_str(),
            enabled: def.enabled,
            source: def.source.kind(),
            def: Arc::clone(def),
        }
    }
}

/// One published event.
#[derive(Clone, Debug, Serialize)]
pub struct BusEvent {
    /// Increases by one per event published on this bus.
    pub seq: u64,
    /// RFC 3339 time it was published.
    pub at: String,
    #[serde(flatten)]
    pub event: StreamEvent,
}

/// The bus; cheap to clone.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<BusEvent>>,
    seq: Arc<AtomicU64>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        Self {
            tx: broadcast::Sender::new(BUS_CAPACITY),
            seq: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Publishes `event` to every current subscriber; never waits.
    pub fn publish(&self, event: StreamEvent) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!(seq, kind = event.kind(), stream = %event.slug(), "stream event");
        let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        // No subscriber is not an error: nobody needed to hear it.
        let _ = self.tx.send(Arc::new(BusEvent { seq, at, event }));
    }

    /// A receiver of every event published from now on.
    pub fn subscribe(&self) -> BusReceiver {
        BusReceiver {
            rx: self.tx.subscribe(),
        }
    }
}

/// Why [`BusReceiver::recv`] returned no event.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// This many events were lost because the subscriber fell behind; the next call
    /// continues with the oldest event still kept.
    #[error("fell behind the stream event bus and lost {0} events")]
    Lagged(u64),
    /// The bus is gone (the server is shutting down).
    #[error("the stream event bus is closed")]
    Closed,
}

/// One subscriber's view of the bus.
pub struct BusReceiver {
    rx: broadcast::Receiver<Arc<BusEvent>>,
}

impl BusReceiver {
    /// The next event. Cancel-safe.
    pub async fn recv(&mut self) -> Result<Arc<BusEvent>, BusError> {
        match self.rx.recv().await {
            Ok(event) => Ok(event),
            Err(broadcast::error::RecvError::Lagged(n)) => Err(BusError::Lagged(n)),
            Err(broadcast::error::RecvError::Closed) => Err(BusError::Closed),
        }
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<Result<Arc<BusEvent>, BusError>> {
        match self.rx.try_recv() {
            Ok(event) => Some(Ok(event)),
            Err(broadcast::error::TryRecvError::Empty) => None,
            Err(broadcast::error::TryRecvError::Lagged(n)) => Some(Err(BusError::Lagged(n))),
            Err(broadcast::error::TryRecvError::Closed) => Some(Err(BusError::Closed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idle(slug: &str) -> StreamEvent {
        StreamEvent::Idle {
            stream: StreamRef {
                id: format!("st_{slug}"),
                slug: slug.into(),
            },
        }
    }

    #[tokio::test]
    async fn events_arrive_in_order_with_increasing_seq() {
        let bus = EventBus::new();
        let mut rx = bus.subscribe();
        bus.publish(idle("a"));
        bus.publish(idle("b"));
        let first = rx.recv().await.expect("first");
        let second = rx.recv().await.expect("second");
        assert_eq!(first.event.slug(), "a");
        assert_eq!(second.seq, first.seq + 1);
        let json = serde_json::to_value(&*second).expect("json");
        assert_eq!(json["type"], "stream.idle");
        assert_eq!(json["stream"]["slug"], "b");
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_told_how_much_it_lost() {
        let bus = EventBus::new();
        let mut rx = bus.subscribe();
        for i in 0..BUS_CAPACITY + 5 {
            bus.publish(idle(&format!("s{i}")));
        }
        assert_eq!(rx.recv().await.unwrap_err(), BusError::Lagged(5));
        let next = rx.recv().await.expect("continues");
        assert_eq!(next.event.slug(), "s5");
    }
}
