//! Where each rendition's samples sit on the stream timeline.
//!
//! Every publish session's timestamps are shifted to continue where the previous
//! session ended, so decode times never go backwards across a takeover or a reconnect
//! (the join is still marked with EXT-X-DISCONTINUITY). Every rendition shares the
//! session's origin (its first unit) and wall-clock anchor, which keeps video and audio
//! in sync and gives aligned segments equal PROGRAM-DATE-TIME.
//!
//! Arithmetic is exact integer. A source timestamp in its own timebase (1000 for RTMP,
//! the RTP clock for RTSP: 90 000 for video, the sample rate for audio) is mapped onto
//! the track timescale (90 kHz video, the sample rate for audio) with one
//! multiply-then-divide in `i128`. When the timescale is a multiple of the timebase
//! the mapping has no remainder, so a 90 kHz timestamp is never rounded through
//! milliseconds and `tfdt` and sample durations never drift. Session offsets are kept
//! in each track's own ticks.
//!
//! [`SessionClock`] is the shared part (origin and wall clock); [`VideoTimeline`] and
//! [`AudioTimeline`] are one rendition's part: its offset, the frame waiting for its
//! duration (video), the expected next frame (audio), and where it ended.

mod audio;
mod video;

use std::time::{Duration, Instant, SystemTime};

pub use audio::{AudioPlacement, AudioTimeline};
pub use video::{Frame, VideoTimeline};

use crate::media::WallClockAnchor;

/// Ticks per second of every video track (the MPEG-TS/HLS convention; a multiple of
/// both RTMP's 1000 and RTP's 90 000).
pub const VIDEO_TIMESCALE: u32 = 90_000;

/// A time in an explicit timebase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaTime {
    pub ticks: i64,
    /// Ticks per second; never 0.
    pub timebase: u32,
}

impl MediaTime {
    /// A timebase of 0 (invalid input) is taken as 1.
    pub fn new(ticks: i64, timebase: u32) -> Self {
        Self {
            ticks,
            timebase: timebase.max(1),
        }
    }

    /// This time in `timescale` ticks, rounded to the nearest tick; exact when
    /// `timescale` is a multiple of the timebase.
    pub fn in_timescale(self, timescale: u32) -> i64 {
        div_round(
            i128::from(self.ticks) * i128::from(timescale.max(1)),
            i128::from(self.timebase),
        )
    }

    /// This time in `timescale` ticks, rounded up.
    pub fn in_timescale_ceil(self, timescale: u32) -> i64 {
        let num = i128::from(self.ticks) * i128::from(timescale.max(1));
        let den = i128::from(self.timebase);
        saturate(num.div_euclid(den) + i128::from(num.rem_euclid(den) != 0))
    }

    /// The later of two times, compared exactly (cross-multiplied).
    pub fn max(self, other: MediaTime) -> MediaTime {
        let a = i128::from(self.ticks) * i128::from(other.timebase);
        let b = i128::from(other.ticks) * i128::from(self.timebase);
        if b > a {
            other
        } else {
            self
        }
    }
}

/// `num / den` rounded to the nearest integer (halves up), saturated to `i64`.
fn div_round(num: i128, den: i128) -> i64 {
    saturate((2 * num + den).div_euclid(2 * den))
}

fn saturate(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// One publish session's origin: the source time of its first unit (of any track),
/// which lands on each track's session offset, and that unit's wall-clock time.
pub struct SessionClock {
    origin: Option<MediaTime>,
    wall_base: SystemTime,
    anchor: WallClockAnchor,
}

impl SessionClock {
    pub fn new(anchor: WallClockAnchor) -> Self {
        Self {
            origin: None,
            wall_base: anchor.wall,
            anchor,
        }
    }

    /// The origin, set by the first unit that calls this.
    fn anchor_on(&mut self, t: MediaTime, received: Instant) -> MediaTime {
        *self.origin.get_or_insert_with(|| {
            self.wall_base = self.anchor.wall_at(received);
            t
        })
    }
}

/// One track's mapping from source time to track ticks for the current session.
#[derive(Clone, Copy, Debug)]
struct TrackClock {
    timescale: u32,
    /// Track ticks at which the session's origin sits.
    offset: i64,
}

impl TrackClock {
    fn new(timescale: u32) -> Self {
        Self {
            timescale: timescale.max(1),
            offset: 0,
        }
    }

    /// The session starts at stream time `start`: rounded up, so a track never starts
    /// inside what it packaged in the previous session.
    fn begin_session(&mut self, start: MediaTime) {
        self.offset = start.in_timescale_ceil(self.timescale);
    }

    /// `t - origin` in track ticks plus the offset, with one rounding.
    fn at(&self, t: MediaTime, origin: MediaTime) -> i64 {
        let num = (i128::from(t.ticks) * i128::from(origin.timebase)
            - i128::from(origin.ticks) * i128::from(t.timebase))
            * i128::from(self.timescale);
        let den = i128::from(t.timebase) * i128::from(origin.timebase);
        div_round(num, den).saturating_add(self.offset)
    }

    /// Maps a unit's time, anchoring the session on it when it is the first.
    fn map(&self, clock: &mut SessionClock, t: MediaTime, received: Instant) -> i64 {
        let origin = clock.anchor_on(t, received);
        self.at(t, origin)
    }

    /// Where `t` would land, without anchoring the session on it.
    fn peek(&self, clock: &SessionClock, t: MediaTime) -> i64 {
        match clock.origin {
            Some(origin) => self.at(t, origin),
            None => self.offset,
        }
    }

    /// The wall-clock time of track time `ticks`.
    fn wall_at(&self, clock: &SessionClock, ticks: i64) -> SystemTime {
        let since = i128::from(ticks) - i128::from(self.offset);
        let nanos = since * 1_000_000_000 / i128::from(self.timescale);
        let magnitude =
            Duration::from_nanos(u64::try_from(nanos.unsigned_abs()).unwrap_or(u64::MAX));
        if nanos >= 0 {
            clock
                .wall_base
                .checked_add(magnitude)
                .unwrap_or(clock.wall_base)
        } else {
            clock
                .wall_base
                .checked_sub(magnitude)
                .unwrap_or(clock.wall_base)
        }
    }

    /// New parameters with another timescale (an audio sample rate change): the offset
    /// is carried over.
    fn set_timescale(&mut self, timescale: u32) {
        let timescale = timescale.max(1);
        self.offset = MediaTime::new(self.offset, self.timescale).in_timescale_ceil(timescale);
        self.timescale = timescale;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rescaling_is_exact_when_the_timescale_is_a_multiple() {
        assert_eq!(MediaTime::new(33, 1000).in_timescale(90_000), 2970);
        assert_eq!(MediaTime::new(3003, 90_000).in_timescale(90_000), 3003);
        assert_eq!(
            MediaTime::new(i64::from(u32::MAX) * 3003, 90_000).in_timescale(90_000),
            i64::from(u32::MAX) * 3003
        );
        // 1000 → 44 100 is not a multiple: nearest tick.
        assert_eq!(MediaTime::new(1, 1000).in_timescale(44_100), 44);
        assert_eq!(MediaTime::new(-1, 1000).in_timescale(44_100), -44);
        assert_eq!(MediaTime::new(1, 3).in_timescale_ceil(10), 4);
        assert_eq!(MediaTime::new(-1, 3).in_timescale_ceil(10), -3);
    }

    #[test]
    fn max_compares_across_timebases() {
        let video = MediaTime::new(90_000, 90_000);
        let audio = MediaTime::new(48_001, 48_000);
        assert_eq!(video.max(audio), audio);
        assert_eq!(audio.max(video), audio);
    }

    #[test]
    fn an_origin_in_another_timebase_shifts_every_frame_alike() {
        // RTSP: audio (48 kHz) arrives first at 1001 ticks; video at 90 kHz follows.
        let mut clock = SessionClock::new(WallClockAnchor::now());
        let video = TrackClock::new(VIDEO_TIMESCALE);
        let audio = TrackClock::new(48_000);
        let now = Instant::now();
        assert_eq!(audio.map(&mut clock, MediaTime::new(1001, 48_000), now), 0);
        let first = video.map(&mut clock, MediaTime::new(3003, 90_000), now);
        let later = video.map(&mut clock, MediaTime::new(3003 * 1000, 90_000), now);
        assert_eq!(later - first, 3003 * 999);
    }
}
