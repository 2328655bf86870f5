//! The figures, defined once. Everything the API, `/metrics` and the README report is
//! computed by these functions from sessions and samples.
//!
//! - **Session**: the requests of one viewer session id (see [`super::session_id`])
//!   for one stream. Active while requests arrive; ends [`session_timeout`] after the
//!   last one (3 × the target duration, at least `analytics.session_timeout_floor_s`).
//! - **Media seconds** of a session: the durations of the parts and segments it was
//!   sent, each counted once per rendition (a segment after its own parts adds
//!   nothing). Video renditions count; audio only for sessions that fetched no video
//!   (a video viewer also fetches the audio rendition, the same seconds).
//! - **Concurrent viewers**: active sessions, sampled every [`SAMPLE_INTERVAL`].
//! - **Peak**: the highest sample, with the time of the first sample that reached it.
//! - **View**: a session that received at least `analytics.view_threshold_s` media
//!   seconds ([`is_view`]).
//! - **Unique viewers**: distinct subjects (the playback token's `sub`, else the
//!   anonymous session id) among the sessions started in a day, or in a live session.
//! - **Watch time**: the media seconds of all sessions.
//! - **Share per rendition**: a rendition's media seconds over all media seconds
//!   ([`rendition_shares`]).
//!
//! Scopes: a stream (all its sessions), a live session (sessions that started during
//! it), an event (the live session that made it live), an asset (VOD sessions, counted
//! the same way once assets are served over HLS).

use std::time::Duration;

/// How often concurrent viewers are sampled.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// How long after its last request a session ends.
pub fn session_timeout(target_duration_s: u64, floor_s: u64) -> Duration {
    Duration::from_secs((3 * target_duration_s).max(floor_s))
}

/// Whether a session with `media_seconds` counts as a view.
pub fn is_view(media_seconds: f64, threshold_s: u64) -> bool {
    media_seconds >= threshold_s as f64
}

/// The media seconds of a session from its video and audio seconds.
pub fn media_seconds(video_s: f64, audio_s: f64) -> f64 {
    if video_s > 0.0 {
        video_s
    } else {
        audio_s
    }
}

/// Each rendition's share of the total, in the order given; all zero when nothing was
/// delivered.
pub fn rendition_shares<'a>(seconds: &[(&'a str, f64)]) -> Vec<(&'a str, f64)> {
    let total: f64 = seconds.iter().map(|(_, s)| s).sum();
    seconds
        .iter()
        .map(|&(name, s)| (name, if total > 0.0 { s / total } else { 0.0 }))
        .collect()
}

/// The highest sample and when it was first reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Peak {
    pub value: u64,
    /// Unix milliseconds; 0 before any sample above zero.
    pub at_ms: i64,
}

impl Peak {
    pub fn observe(&mut self, value: u64, at_ms: i64) {
        if value > self.value {
            *self = Peak { value, at_ms };
        }
    }
}

/// A time-series bucket width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
pub enum Interval {
    #[serde(rename = "1m")]
    Minute,
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "1d")]
    Day,
}

impl Interval {
    pub fn ms(self) -> i64 {
        match self {
            Interval::Minute => 60_000,
            Interval::Hour => 3_600_000,
            Interval::Day => 86_400_000,
        }
    }

    /// The start of the bucket holding `t_ms` (UTC days).
    pub fn bucket(self, t_ms: i64) -> i64 {
        t_ms.div_euclid(self.ms()) * self.ms()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Minute => "1m",
            Interval::Hour => "1h",
            Interval::Day => "1d",
        }
    }
}

/// Counts each part or segment of one rendition once: remembers the furthest position
/// delivered (`part == WHOLE` for a segment).
#[derive(Clone, Copy, Debug, Default)]
pub struct Furthest(Option<(u64, u32)>);

/// The position of a whole segment.
pub const WHOLE: u32 = u32::MAX;

impl Furthest {
    /// Whether `(msn, part)` is beyond everything delivered so far (then it is counted
    /// and becomes the furthest). A segment counts when no part of it was counted.
    pub fn advance(&mut self, msn: u64, part: u32) -> bool {
        let new = match self.0 {
            None => true,
            Some((m, _)) if part == WHOLE => msn > m,
            Some(last) => (msn, part) > last,
        };
        if new {
            self.0 = Some((msn, part));
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_is_three_targets_with_a_floor() {
        assert_eq!(session_timeout(2, 10), Duration::from_secs(10));
        assert_eq!(session_timeout(6, 10), Duration::from_secs(18));
    }

    #[test]
    fn views_need_the_threshold() {
        assert!(!is_view(9.99, 10));
        assert!(is_view(10.0, 10));
    }

    #[test]
    fn audio_counts_only_without_video() {
        assert_eq!(media_seconds(12.0, 12.0), 12.0);
        assert_eq!(media_seconds(0.0, 7.5), 7.5);
    }

    #[test]
    fn shares_add_up_to_one() {
        let s = rendition_shares(&[("r720", 30.0), ("r360", 10.0)]);
        assert_eq!(s, vec![("r720", 0.75), ("r360", 0.25)]);
        assert_eq!(rendition_shares(&[("a", 0.0)]), vec![("a", 0.0)]);
    }

    #[test]
    fn peak_keeps_the_first_time_of_the_highest() {
        let mut p = Peak::default();
        p.observe(3, 1000);
        p.observe(5, 2000);
        p.observe(5, 3000);
        p.observe(4, 4000);
        assert_eq!(
            p,
            Peak {
                value: 5,
                at_ms: 2000
            }
        );
    }

    #[test]
    fn buckets() {
        assert_eq!(Interval::Minute.bucket(125_000), 120_000);
        assert_eq!(Interval::Day.bucket(86_400_000 + 5), 86_400_000);
        assert_eq!(Interval::Hour.bucket(-1), -3_600_000);
    }

    #[test]
    fn each_part_counts_once() {
        let mut f = Furthest::default();
        assert!(f.advance(3, 0));
        assert!(f.advance(3, 1));
        assert!(!f.advance(3, 1), "a repeated part");
        assert!(!f.advance(3, WHOLE), "the segment of parts already counted");
        assert!(f.advance(4, WHOLE));
        assert!(!f.advance(4, 2), "a part of a segment already counted");
        assert!(f.advance(5, 0));
    }
}
