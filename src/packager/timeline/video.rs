//! One video rendition's timeline: its session offset, and the frame held back until
//! the next one tells its duration.

use std::time::{Instant, SystemTime};

use bytes::Bytes;

use super::{MediaTime, SessionClock, TrackClock, VIDEO_TIMESCALE};
use crate::media::AccessUnit;
use crate::packager::segmenter::TimedSample;

/// Duration given to a frame whose successor does not tell one (the first of a session
/// that ends at once, or a successor with the same or an earlier dts): 30 fps.
const FALLBACK_DURATION: u32 = VIDEO_TIMESCALE / 30;

/// A video frame placed on the track, duration still unknown.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Decode time in track ticks.
    pub dts: i64,
    pub composition_offset: i32,
    pub keyframe: bool,
    pub data: Bytes,
    pub received: Instant,
}

/// One video rendition's place on the stream timeline (90 kHz ticks).
pub struct VideoTimeline {
    clock: TrackClock,
    pending: Option<Frame>,
    last_duration: u32,
    /// Track ticks just past the last frame (while one is held: its dts).
    end: i64,
    /// Frames and ticks packaged, for the measured frame rate.
    frames: u64,
    frame_ticks: u64,
}

impl Default for VideoTimeline {
    fn default() -> Self {
        Self::new()
    }
}

impl VideoTimeline {
    pub fn new() -> Self {
        Self {
            clock: TrackClock::new(VIDEO_TIMESCALE),
            pending: None,
            last_duration: FALLBACK_DURATION,
            end: 0,
            frames: 0,
            frame_ticks: 0,
        }
    }

    /// A session starts at stream time `start`. The held frame must have been
    /// released ([`VideoTimeline::release`]) before.
    pub fn begin_session(&mut self, start: MediaTime) {
        debug_assert!(self.pending.is_none(), "a frame crossed a session start");
        self.clock.begin_session(start);
    }

    /// Places a unit on the track: (dts, pts) in track ticks. The first unit of the
    /// session (of any rendition) anchors the session.
    pub fn map(&self, clock: &mut SessionClock, unit: &AccessUnit) -> (i64, i64) {
        let dts = self.clock.map(
            clock,
            MediaTime::new(unit.dts, unit.timebase),
            unit.received,
        );
        let pts = self.clock.map(
            clock,
            MediaTime::new(unit.pts, unit.timebase),
            unit.received,
        );
        (dts, pts)
    }

    /// Where a unit's presentation time would land, without anchoring the session.
    pub fn peek_pts(&self, clock: &SessionClock, unit: &AccessUnit) -> i64 {
        self.clock
            .peek(clock, MediaTime::new(unit.pts, unit.timebase))
    }

    /// Holds `frame` until the next one; returns the frame held before, now that its
    /// duration is known (a successor that does not advance gives it the last one's).
    pub fn hold(&mut self, frame: Frame) -> Option<TimedSample> {
        let released = self.pending.take().map(|prev| {
            let duration = u32::try_from(frame.dts - prev.dts)
                .ok()
                .filter(|d| *d > 0)
                .unwrap_or(self.last_duration);
            self.timed(prev, duration)
        });
        self.end = frame.dts;
        self.pending = Some(frame);
        released
    }

    /// The held frame with the last duration: the session or the parameters end.
    pub fn release(&mut self) -> Option<TimedSample> {
        let prev = self.pending.take()?;
        let duration = self.last_duration;
        Some(self.timed(prev, duration))
    }

    fn timed(&mut self, frame: Frame, duration: u32) -> TimedSample {
        self.last_duration = duration;
        self.frames += 1;
        self.frame_ticks += u64::from(duration);
        self.end = frame.dts.saturating_add(i64::from(duration));
        TimedSample {
            dts: frame.dts,
            duration,
            composition_offset: frame.composition_offset,
            keyframe: frame.keyframe,
            data: frame.data,
            received: frame.received,
        }
    }

    /// Where the track ends on the stream timeline.
    pub fn end(&self) -> MediaTime {
        MediaTime::new(self.end, VIDEO_TIMESCALE)
    }

    /// The wall-clock time of track time `ticks` in this session.
    pub fn wall_at(&self, clock: &SessionClock, ticks: i64) -> SystemTime {
        self.clock.wall_at(clock, ticks)
    }

    /// Frames per second measured over what was packaged, `None` before any frame.
    pub fn measured_frame_rate(&self) -> Option<f64> {
        (self.frame_ticks > 0)
            .then(|| self.frames as f64 * f64::from(VIDEO_TIMESCALE) / self.frame_ticks as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{TrackKind, WallClockAnchor};

    fn unit(dts: i64, timebase: u32) -> AccessUnit {
        AccessUnit {
            kind: TrackKind::Video,
            dts,
            pts: dts,
            timebase,
            keyframe: false,
            data: Bytes::new(),
            received: Instant::now(),
        }
    }

    /// Maps and holds every unit; returns the released samples' (dts, duration).
    fn run(units: impl Iterator<Item = AccessUnit>) -> Vec<(i64, u32)> {
        let mut clock = SessionClock::new(WallClockAnchor::now());
        let mut timeline = VideoTimeline::new();
        let mut out = Vec::new();
        for u in units {
            let (dts, pts) = timeline.map(&mut clock, &u);
            let frame = Frame {
                dts,
                composition_offset: (pts - dts) as i32,
                keyframe: u.keyframe,
                data: u.data,
                received: u.received,
            };
            out.extend(timeline.hold(frame).map(|s| (s.dts, s.duration)));
        }
        out.extend(timeline.release().map(|s| (s.dts, s.duration)));
        out
    }

    #[test]
    fn an_hour_of_29_97_fps_at_90_khz_is_exact() {
        let frames = 3600 * 30_000 / 1001;
        let out = run((0..frames).map(|i| unit(1_000_000 + i * 3003, 90_000)));
        assert_eq!(out.len(), frames as usize);
        for (i, (dts, duration)) in out.iter().enumerate() {
            assert_eq!((*dts, *duration), (i as i64 * 3003, 3003), "frame {i}");
        }
    }

    #[test]
    fn millisecond_input_maps_as_whole_milliseconds() {
        // RTMP's 30 fps: 0, 33, 67, 100 ms.
        let out = run([0, 33, 67, 100].into_iter().map(|ms| unit(ms, 1000)));
        assert_eq!(out, [(0, 2970), (2970, 3060), (6030, 2970), (9000, 2970)]);
    }

    #[test]
    fn the_next_session_starts_where_this_one_ended() {
        let mut clock = SessionClock::new(WallClockAnchor::now());
        let mut timeline = VideoTimeline::new();
        for i in 0..3 {
            let (dts, _) = timeline.map(&mut clock, &unit(500 + i * 3003, 90_000));
            timeline.hold(Frame {
                dts,
                composition_offset: 0,
                keyframe: false,
                data: Bytes::new(),
                received: Instant::now(),
            });
        }
        timeline.release();
        assert_eq!(timeline.end(), MediaTime::new(3 * 3003, VIDEO_TIMESCALE));
        let mut clock = SessionClock::new(WallClockAnchor::now());
        timeline.begin_session(timeline.end());
        // The new publisher's clock starts anywhere: its first frame lands on the end.
        assert_eq!(timeline.map(&mut clock, &unit(77, 1000)).0, 3 * 3003);
    }
}
