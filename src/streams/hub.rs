//! The live publisher of each stream, and takeover.
//!
//! A stream has at most one publisher. A new publisher with a valid key takes over at
//! once: the old session is cancelled (its connection closes) and its later pushes are
//! refused, so OBS reconnecting before the server noticed the old socket died is never
//! told "already publishing". Media goes straight from the connection task into the
//! stream's sink under a short mutex; no task sits in the media path.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::media::{MediaEvent, WallClockAnchor};
use crate::streams::StreamDef;

/// Consumes one stream's media across publish sessions (the packager, later the
/// transcoding pipeline in front of it).
pub trait MediaSink: Send + 'static {
    /// The stream as it is now (its ladder may have changed since the last publisher);
    /// called before every [`MediaSink::begin_session`].
    fn set_stream(&mut self, _stream: &StreamDef) {}
    /// A publisher starts or takes over: what follows is a new timeline and must be
    /// joined with a discontinuity.
    fn begin_session(&mut self, anchor: WallClockAnchor);
    /// One event of the current session, in arrival order.
    fn push(&mut self, event: MediaEvent);
    /// The publisher left (or was replaced): publish what is complete, keep the window.
    fn end_session(&mut self);
}

/// Makes the sink of a stream the first time it is published.
pub trait SinkFactory: Send + Sync + 'static {
    fn create(&self, stream: &StreamDef) -> Box<dyn MediaSink>;
}

/// The current session's media went nowhere: another publisher took the stream over.
#[derive(Debug, thiserror::Error)]
#[error("stream {slug} was taken over by another publisher")]
pub struct Superseded {
    pub slug: String,
}

struct SinkState {
    /// Bumped by every takeover; a session pushes only while it holds the current one.
    generation: u64,
    sink: Box<dyn MediaSink>,
}

struct Slot {
    state: Arc<Mutex<SinkState>>,
    /// Generation and cancel handle of the current publisher's connection.
    current: Option<(u64, CancellationToken)>,
    peer: Option<SocketAddr>,
}

/// What the ingest of a stream is doing, as admins and players see it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum IngestState {
    /// Nobody publishes (push) or the source is not pulled.
    #[default]
    Idle,
    /// A pull source is being connected.
    Connecting,
    /// Media is arriving.
    Live {
        /// RFC 3339 time the current publisher started.
        since: String,
    },
    /// A pull source failed; the next attempt comes after `retry_in_ms`.
    Retrying {
        last_error: String,
        retry_in_ms: u64,
    },
}

/// Registry of streams that have been published since start.
pub struct StreamHub {
    factory: Arc<dyn SinkFactory>,
    slots: Mutex<HashMap<String, Slot>>,
    states: Mutex<HashMap<String, IngestState>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a media lock must not take every later publisher down.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl StreamHub {
    pub fn new(factory: Arc<dyn SinkFactory>) -> Arc<Self> {
        Arc::new(Self {
            factory,
            slots: Mutex::new(HashMap::new()),
            states: Mutex::new(HashMap::new()),
        })
    }

    /// Makes `peer` the publisher of `stream`, taking it over from any current one.
    pub fn start_publish(self: &Arc<Self>, stream: &StreamDef, peer: SocketAddr) -> PublishSession {
        let token = CancellationToken::new();
        let mut slots = lock(&self.slots);
        let slot = slots.entry(stream.slug.clone()).or_insert_with(|| Slot {
            state: Arc::new(Mutex::new(SinkState {
                generation: 0,
                sink: self.factory.create(stream),
            })),
            current: None,
            peer: None,
        });
        let state = Arc::clone(&slot.state);
        // Both locks are held so generation order equals takeover order.
        let generation = {
            let mut st = lock(&state);
            st.generation += 1;
            st.sink.set_stream(stream);
            // The sink closes what the old publisher left open and marks the join.
            st.sink.begin_session(WallClockAnchor::now());
            st.generation
        };
        if let Some((_, previous)) = slot.current.replace((generation, token.clone())) {
            tracing::warn!(
                stream = %stream.slug,
                old_peer = ?slot.peer,
                new_peer = %peer,
                "publisher takeover: closing the previous publisher"
            );
            previous.cancel();
        }
        slot.peer = Some(peer);
        drop(slots);
        let since = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now())
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        self.set_state(&stream.slug, IngestState::Live { since });
        PublishSession {
            hub: Arc::clone(self),
            slug: stream.slug.clone(),
            generation,
            state,
            token,
        }
    }

    /// Whether somebody publishes `slug` right now.
    pub fn is_live(&self, slug: &str) -> bool {
        lock(&self.slots)
            .get(slug)
            .is_some_and(|slot| slot.current.is_some())
    }

    /// Records what the ingest of `slug` is doing (pull sources report connecting and
    /// retrying themselves; publishing sets live and idle).
    pub fn set_state(&self, slug: &str, state: IngestState) {
        lock(&self.states).insert(slug.to_string(), state);
    }

    /// What the ingest of `slug` is doing.
    pub fn state(&self, slug: &str) -> IngestState {
        lock(&self.states).get(slug).cloned().unwrap_or_default()
    }

    fn finish(&self, slug: &str, generation: u64) {
        let mut slots = lock(&self.slots);
        if let Some(slot) = slots.get_mut(slug) {
            if slot.current.as_ref().is_some_and(|(g, _)| *g == generation) {
                slot.current = None;
                slot.peer = None;
                drop(slots);
                self.set_state(slug, IngestState::Idle);
            }
        }
    }
}

/// One publisher's right to feed a stream. Dropping it ends the session.
pub struct PublishSession {
    hub: Arc<StreamHub>,
    slug: String,
    generation: u64,
    state: Arc<Mutex<SinkState>>,
    token: CancellationToken,
}

impl PublishSession {
    /// Hands one event to the stream's sink.
    pub fn push(&self, event: MediaEvent) -> Result<(), Superseded> {
        let mut st = lock(&self.state);
        if st.generation != self.generation {
            return Err(Superseded {
                slug: self.slug.clone(),
            });
        }
        st.sink.push(event);
        Ok(())
    }

    /// Resolves when another publisher took the stream over.
    pub fn superseded(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.token.cancelled()
    }

    pub fn slug(&self) -> &str {
        &self.slug
    }
}

impl Drop for PublishSession {
    fn drop(&mut self) {
        {
            let mut st = lock(&self.state);
            if st.generation == self.generation {
                st.sink.end_session();
            }
        }
        self.hub.finish(&self.slug, self.generation);
    }
}
