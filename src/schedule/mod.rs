//! Scheduled events (issue 12): a VR class or a match announced before it starts, with
//! a lifecycle `draft → scheduled → starting_soon → live → ended`, or `cancelled`.
//!
//! - [`store`]: the `scheduled_events` table; every state change writes its outbox
//!   message (`event.scheduled`, `event.starting_soon`, `event.live`, `event.ended`,
//!   `event.cancelled`) in the same transaction.
//! - [`timer`]: the task that moves `scheduled` events to `starting_soon` at
//!   start − lead, and follows the lifecycle bus: the stream going active makes its
//!   current event `live`, the live session ending makes it `ended`.
//!
//! Named `schedule`, not `events`: [`crate::streams::events`] is the lifecycle bus.

pub mod store;
pub mod timer;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Default "starting soon" lead: 15 minutes.
pub const DEFAULT_LEAD_S: u32 = 900;
/// Longest lead: one day.
pub const MAX_LEAD_S: u32 = 86_400;

/// Where an event is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventState {
    /// Not announced yet: no reminder, never goes live.
    Draft,
    Scheduled,
    /// Within the lead before the start.
    StartingSoon,
    /// Its stream is live.
    Live,
    /// The live session ended.
    Ended,
    Cancelled,
}

impl EventState {
    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Draft => "draft",
            EventState::Scheduled => "scheduled",
            EventState::StartingSoon => "starting_soon",
            EventState::Live => "live",
            EventState::Ended => "ended",
            EventState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "draft" => EventState::Draft,
            "scheduled" => EventState::Scheduled,
            "starting_soon" => EventState::StartingSoon,
            "live" => EventState::Live,
            "ended" => EventState::Ended,
            "cancelled" => EventState::Cancelled,
            _ => return None,
        })
    }

    /// Whether a client may move an event from `self` to `to` (the others are the
    /// timer's and the bus's): publish a draft, cancel what has not ended.
    pub fn client_may_move_to(self, to: EventState) -> bool {
        use EventState::*;
        matches!(
            (self, to),
            (Draft, Scheduled) | (Draft | Scheduled | StartingSoon | Live, Cancelled)
        ) || self == to
    }
}

/// A scheduled event.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ScheduledEvent {
    /// `ev_…`.
    pub id: String,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    /// Id of the stream it is shown on (absent when the stream was deleted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
    /// RFC 3339 with zone, as given.
    pub scheduled_start: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_end: Option<String>,
    /// Seconds before the start at which it becomes `starting_soon`.
    pub starting_soon_lead_s: u32,
    pub state: EventState,
    /// The live session that made it live.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The asset recording that live session (`as_…`), once it went live with
    /// recording on: the replay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording_asset_id: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
}

/// Unix milliseconds of an RFC 3339 time with zone; `None` for anything else.
pub fn parse_time_ms(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// When an event in `scheduled` becomes `starting_soon`, in Unix milliseconds.
pub fn reminder_ms(start_ms: i64, lead_s: u32) -> i64 {
    start_ms.saturating_sub(i64::from(lead_s) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_need_a_zone() {
        assert_eq!(
            parse_time_ms("2026-01-01T00:00:01Z"),
            Some(1_767_225_601_000)
        );
        assert_eq!(
            parse_time_ms("2026-01-01T01:00:01+01:00"),
            Some(1_767_225_601_000)
        );
        assert_eq!(parse_time_ms("2026-01-01T00:00:01"), None);
        assert_eq!(parse_time_ms("tomorrow"), None);
        assert_eq!(reminder_ms(10_000, 3), 7_000);
    }

    #[test]
    fn clients_publish_drafts_and_cancel_but_never_make_events_live() {
        use EventState::*;
        assert!(Draft.client_may_move_to(Scheduled));
        assert!(StartingSoon.client_may_move_to(Cancelled));
        assert!(!Scheduled.client_may_move_to(Live));
        assert!(!Ended.client_may_move_to(Cancelled));
        assert!(!Cancelled.client_may_move_to(Scheduled));
        assert!(!Scheduled.client_may_move_to(Draft));
    }
}
