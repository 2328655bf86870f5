//! What a stream's owner publishes of its live state, for the API to read without
//! asking it (a `watch` snapshot: reading never waits on the owner).

use serde::Serialize;

use super::session::{LifecycleState, LiveSessionInfo};

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

/// A stream's live state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LiveStatus {
    pub state: LifecycleState,
    pub ingest: IngestState,
    /// A publisher is attached now.
    pub live: bool,
    /// The current live session (also while waiting for a publisher to come back).
    pub session: Option<LiveSessionInfo>,
    /// The ladder the current publish session runs (a new one applies at the next
    /// publish).
    pub running_ladder: Option<String>,
}
