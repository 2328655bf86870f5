//! Live sessions: one broadcast of a stream, from its first publisher to the end of
//! its reconnect window.
//!
//! A publisher that returns within the stream's `reconnect_window_s` (or takes over
//! a live publisher) continues the session: the same playlists with a discontinuity.
//! After the window the session ends, the playlists get `EXT-X-ENDLIST`, and the next
//! publisher starts a new session with a new id.

use serde::Serialize;

use super::events::SessionEndReason;

/// A live session as the API and the events show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LiveSessionInfo {
    /// `ls_…`.
    pub id: String,
    /// RFC 3339 time the first publisher attached.
    pub started_at: String,
    /// RFC 3339 time the session ended; absent while it lasts.
    pub ended_at: Option<String>,
    /// How many times a publisher came back (or took over) within the session.
    pub reconnects: u32,
    /// Why it ended; absent while it lasts.
    #[schema(value_type = Option<String>)]
    pub end_reason: Option<SessionEndReason>,
}

impl utoipa::PartialSchema for SessionEndReason {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some([
                "reconnect_window_expired",
                "disabled",
                "deleted",
                "shutdown",
                "memory_budget",
            ]))
            .into()
    }
}

impl utoipa::ToSchema for SessionEndReason {}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl LiveSessionInfo {
    /// A session starting now.
    pub fn start() -> Self {
        Self {
            id: crate::db::new_id("ls"),
            started_at: now_rfc3339(),
            ended_at: None,
            reconnects: 0,
            end_reason: None,
        }
    }

    pub fn end(&mut self, reason: SessionEndReason) {
        self.ended_at = Some(now_rfc3339());
        self.end_reason = Some(reason);
    }
}

/// Where a stream is in its lifecycle (`idle → connected → active → disconnected →
/// idle`; `disabled` refuses publishers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleState {
    /// No live session.
    #[default]
    Idle,
    /// A publisher is attached; no complete segment yet.
    Connected,
    /// A publisher is attached and segments are being published.
    Active,
    /// The publisher left; the session waits for it within the reconnect window.
    Disconnected,
    /// The stream is disabled.
    Disabled,
}
