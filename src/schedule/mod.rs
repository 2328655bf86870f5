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
    /// Id of the account that created it (absent for events from before owners were
    /// kept, and when the account was deleted). A draft is shown only to its owner,
    /// its stream's owner and admins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
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

/// Longest an event without a `scheduled_end` may still go live after its start: a
/// stream going live later than this is not that event any more.
pub const OPEN_END_LIVE_S: i64 = 6 * 3600;

/// Whether an event starting at `start_ms` (lead `lead_s`, end `end_ms`) may go live
/// at `now_ms`: from the moment it is (or would be) `starting_soon` until its end, or
/// [`OPEN_END_LIVE_S`] after its start when it has none. A stream that goes live days
/// before an event is not that event starting.
pub fn live_window_contains(start_ms: i64, lead_s: u32, end_ms: Option<i64>, now_ms: i64) -> bool {
    let closes = end_ms.unwrap_or_else(|| start_ms.saturating_add(OPEN_END_LIVE_S * 1000));
    reminder_ms(start_ms, lead_s) <= now_ms && now_ms < closes
}

/// Whether `caller` may see an event in `draft`: admins, the event's owner and the
/// owner of its stream (`stream_owner`); a draft is nobody else's business.
pub fn draft_seen_by(
    caller: &crate::auth::request::Caller,
    event_owner: Option<&str>,
    stream_owner: Option<&str>,
) -> bool {
    caller.is_admin()
        || event_owner == Some(caller.user_id.as_str())
        || (stream_owner.is_some() && stream_owner == Some(caller.user_id.as_str()))
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
    fn an_event_goes_live_only_within_its_window() {
        let h = 3_600_000;
        let start = 100 * h;
        // Lead 900 s: from 15 min before the start.
        assert!(!live_window_contains(start, 900, None, start - 48 * h));
        assert!(!live_window_contains(start, 900, None, start - 901_000));
        assert!(live_window_contains(start, 900, None, start - 900_000));
        assert!(live_window_contains(start, 900, None, start + h));
        // No end: open for six hours after the start; with one: until it.
        assert!(!live_window_contains(start, 900, None, start + 6 * h));
        assert!(live_window_contains(
            start,
            900,
            Some(start + 8 * h),
            start + 7 * h
        ));
        assert!(!live_window_contains(
            start,
            900,
            Some(start + 2 * h),
            start + 2 * h
        ));
        // Lead 0: from the start itself.
        assert!(!live_window_contains(start, 0, None, start - 1));
        assert!(live_window_contains(start, 0, None, start));
    }

    #[test]
    fn drafts_are_seen_by_admins_and_owners_only() {
        use crate::auth::request::Caller;
        use crate::auth::Role;
        let who = |id: &str, role| Caller {
            user_id: id.into(),
            role,
        };
        let viewer = who("us_v", Role::Viewer);
        let broadcaster = who("us_b", Role::Broadcaster);
        assert!(draft_seen_by(
            &who("us_a", Role::Admin),
            Some("us_b"),
            Some("us_b")
        ));
        assert!(draft_seen_by(&broadcaster, Some("us_b"), Some("us_x")));
        assert!(draft_seen_by(&broadcaster, None, Some("us_b")));
        assert!(!draft_seen_by(&broadcaster, Some("us_x"), Some("us_x")));
        assert!(!draft_seen_by(&broadcaster, None, None));
        assert!(!draft_seen_by(&viewer, Some("us_b"), Some("us_b")));
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
