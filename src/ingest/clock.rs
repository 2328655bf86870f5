//! RTMP timestamps → panocast media time.
//!
//! RTMP message timestamps are unsigned 32-bit milliseconds that wrap after about 49.7
//! days (RTMP 1.0 spec, 5.3.1.1 and 6.1.1: "timestamps are adjacent if they are within
//! 2^31 − 1 milliseconds of each other"). Encoders also step back a little: ffmpeg and
//! OBS interleave audio and video by their own clocks and now and then stamp a message
//! a few milliseconds before the previous one of the same track.
//!
//! The rule, per track, in [`crate::media::RTMP_TIMEBASE`] ticks:
//!
//! 1. The first timestamp of a session is taken as is, so media time starts where the
//!    encoder's clock does and both tracks keep the encoder's A/V alignment.
//! 2. Every later timestamp is unwrapped against the previous raw one: the wrapping
//!    difference read as a signed 32-bit number is added to the running value. A first
//!    timestamp of the second track is unwrapped the same way against the newest raw
//!    timestamp of the other track, so a session that starts near the wrap point puts
//!    both tracks on the same side of it.
//! 3. The value handed on is the running value clamped to be no less than the previous
//!    one handed on for that track: `dts` never decreases. The running value itself is
//!    not clamped, so a backward blip does not shift the timestamps that follow it.

use crate::media::TrackKind;

/// The newest raw timestamp and its unwrapped value.
#[derive(Clone, Copy, Debug)]
struct Anchor {
    raw: u32,
    unwrapped: i64,
}

impl Anchor {
    fn unwrap(self, raw: u32) -> i64 {
        // Reading the wrapping difference as i32 picks the nearer of forward and backward.
        self.unwrapped + i64::from(raw.wrapping_sub(self.raw) as i32)
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct TrackState {
    last: Option<Anchor>,
    /// The last value handed on, for the non-decreasing clamp.
    last_out: Option<i64>,
}

/// Unwraps the message timestamps of one RTMP publish session, per track.
#[derive(Clone, Debug, Default)]
pub struct SessionClock {
    video: TrackState,
    audio: TrackState,
    /// The newest timestamp of either track.
    newest: Option<Anchor>,
    /// How many timestamps were clamped, for the log line at session end.
    clamped: u64,
}

impl SessionClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// The decode timestamp of a message of `track` stamped `raw` by the encoder.
    pub fn dts(&mut self, track: TrackKind, raw: u32) -> i64 {
        let state = match track {
            TrackKind::Video => &mut self.video,
            TrackKind::Audio => &mut self.audio,
        };
        let unwrapped = match state.last.or(self.newest) {
            Some(anchor) => anchor.unwrap(raw),
            None => i64::from(raw),
        };
        let anchor = Anchor { raw, unwrapped };
        state.last = Some(anchor);
        self.newest = Some(anchor);
        let out = match state.last_out {
            Some(previous) if unwrapped < previous => {
                self.clamped += 1;
                previous
            }
            _ => unwrapped,
        };
        state.last_out = Some(out);
        out
    }

    /// How many timestamps went backwards and were held at the previous value.
    pub fn clamped(&self) -> u64 {
        self.clamped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TrackKind::{Audio, Video};

    #[test]
    fn starts_at_the_encoder_clock() {
        let mut c = SessionClock::new();
        assert_eq!(c.dts(Video, 1000), 1000);
        assert_eq!(c.dts(Audio, 990), 990);
        assert_eq!(c.dts(Video, 1033), 1033);
    }

    #[test]
    fn unwraps_across_2_pow_32() {
        let mut c = SessionClock::new();
        let near = u32::MAX - 10;
        assert_eq!(c.dts(Video, near), i64::from(near));
        assert_eq!(c.dts(Video, 5), i64::from(u32::MAX) + 6);
        // A track that begins after the wrap lands on the same side as the other.
        assert_eq!(c.dts(Audio, 20), i64::from(u32::MAX) + 21);
        // And the other way: audio first, just before the wrap; video just after.
        let mut c = SessionClock::new();
        assert_eq!(c.dts(Audio, u32::MAX), i64::from(u32::MAX));
        assert_eq!(c.dts(Video, 3), i64::from(u32::MAX) + 4);
    }

    #[test]
    fn backward_steps_are_held_without_shifting_later_ones() {
        let mut c = SessionClock::new();
        assert_eq!(c.dts(Audio, 100), 100);
        assert_eq!(c.dts(Audio, 95), 100);
        assert_eq!(c.dts(Audio, 121), 121);
        assert_eq!(c.clamped(), 1);
        // A backward step across the wrap point is a step, not a jump of 2^32.
        let mut c = SessionClock::new();
        assert_eq!(c.dts(Video, 2), 2);
        assert_eq!(c.dts(Video, u32::MAX), 2);
        assert_eq!(c.dts(Video, 40), 40);
    }

    #[test]
    fn tracks_clamp_independently() {
        let mut c = SessionClock::new();
        assert_eq!(c.dts(Video, 200), 200);
        // Audio may run behind video: not clamped against the other track.
        assert_eq!(c.dts(Audio, 150), 150);
        assert_eq!(c.dts(Video, 233), 233);
        assert_eq!(c.clamped(), 0);
    }
}
