//! One audio rendition's timeline: its session offset, and where the next frame
//! would start if the source is contiguous.
//!
//! A contiguous source is counted in samples, so the jitter of millisecond timestamps
//! never reaches `tfdt`; frames that step back into audio already packaged are
//! dropped, so the decode times of the rendition never go back.

use std::time::SystemTime;

use super::{MediaTime, SessionClock, TrackClock};
use crate::media::{AacConfig, AccessUnit};

/// How far back an audio frame may start inside audio already packaged and still be
/// dropped as a repeat, in milliseconds; a larger step back is a restarted clock, whose
/// audio is kept.
const MAX_OVERLAP_MS: i64 = 500;

/// Timescale assumed before the first parameters arrive.
const DEFAULT_SAMPLE_RATE: u32 = 48_000;

/// Where a frame goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioPlacement {
    /// Package it with this decode time (track ticks).
    At(i64),
    /// Drop it: it starts this many ticks inside audio already packaged.
    Overlap(i64),
}

/// One audio rendition's place on the stream timeline (ticks of its sample rate).
pub struct AudioTimeline {
    clock: TrackClock,
    /// Where the next frame would start if the source is contiguous (track ticks).
    next_dts: Option<i64>,
    /// Frames dropped because they started inside audio already packaged.
    overlaps_dropped: u64,
    /// Track ticks just past the last frame.
    end: i64,
}

impl Default for AudioTimeline {
    fn default() -> Self {
        Self::new()
    }
}

impl AudioTimeline {
    pub fn new() -> Self {
        Self {
            clock: TrackClock::new(DEFAULT_SAMPLE_RATE),
            next_dts: None,
            overlaps_dropped: 0,
            end: 0,
        }
    }

    /// New parameters: the timescale becomes their sample rate (offset and end carried
    /// over) and the next frame is placed at its own time.
    pub fn set_sample_rate(&mut self, rate: u32) {
        let old = self.clock.timescale;
        self.clock.set_timescale(rate);
        self.end = MediaTime::new(self.end, old).in_timescale_ceil(self.clock.timescale);
        self.next_dts = None;
    }

    /// Ticks per second of the track.
    pub fn timescale(&self) -> u32 {
        self.clock.timescale
    }

    /// A session starts at stream time `start`.
    pub fn begin_session(&mut self, start: MediaTime) {
        self.clock.begin_session(start);
        self.next_dts = None;
    }

    /// A unit's own time on the track (before contiguity), anchoring the session when
    /// it is the first unit of any rendition.
    pub fn map(&self, clock: &mut SessionClock, unit: &AccessUnit) -> i64 {
        self.clock.map(
            clock,
            MediaTime::new(unit.dts, unit.timebase),
            unit.received,
        )
    }

    /// Where a unit would land, without anchoring the session.
    pub fn peek(&self, clock: &SessionClock, unit: &AccessUnit) -> i64 {
        self.clock
            .peek(clock, MediaTime::new(unit.dts, unit.timebase))
    }

    /// Decides the decode time of the frame whose own time is `mapped`.
    pub fn place(&mut self, mapped: i64) -> AudioPlacement {
        let frame = i64::from(AacConfig::SAMPLES_PER_FRAME);
        let rate = i64::from(self.clock.timescale);
        let dts = match self.next_dts.map(|expected| (expected, mapped - expected)) {
            // Millisecond timestamps jitter by up to 1 ms; a contiguous source is
            // counted in samples instead.
            Some((expected, drift)) if drift.abs() <= frame / 2 => expected,
            // A frame that starts inside audio already packaged (a publisher looping a
            // file steps back by about a frame) is dropped: written at its own time it
            // would overlap the last part, and the decode times of the rendition would
            // go back, which stalls players (hls.js loses its place in the audio
            // playlist); written late it would put the audio out of sync for good.
            Some((_, drift)) if drift < 0 && -drift * 1000 <= MAX_OVERLAP_MS * rate => {
                self.overlaps_dropped += 1;
                return AudioPlacement::Overlap(-drift);
            }
            // A larger step back (a publisher whose clock restarted) keeps counting, so
            // the timeline never goes back; a gap re-anchors the track.
            Some((expected, drift)) if drift < 0 => expected,
            _ => mapped,
        };
        self.next_dts = Some(dts + frame);
        self.end = mapped + frame;
        AudioPlacement::At(dts)
    }

    /// Frames dropped as overlaps since start.
    pub fn overlaps_dropped(&self) -> u64 {
        self.overlaps_dropped
    }

    /// Where the track ends on the stream timeline.
    pub fn end(&self) -> MediaTime {
        MediaTime::new(self.end, self.clock.timescale)
    }

    /// The wall-clock time of track time `ticks` in this session.
    pub fn wall_at(&self, clock: &SessionClock, ticks: i64) -> SystemTime {
        self.clock.wall_at(clock, ticks)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use bytes::Bytes;

    use super::*;
    use crate::media::{TrackKind, WallClockAnchor};

    fn unit(dts: i64, timebase: u32) -> AccessUnit {
        AccessUnit {
            kind: TrackKind::Audio,
            dts,
            pts: dts,
            timebase,
            keyframe: true,
            data: Bytes::new(),
            received: Instant::now(),
        }
    }

    #[test]
    fn rtp_audio_at_its_own_rate_is_placed_exactly() {
        let mut clock = SessionClock::new(WallClockAnchor::now());
        let video = super::super::VideoTimeline::new();
        let mut audio = AudioTimeline::new();
        audio.set_sample_rate(48_000);
        // Video anchors the session at RTP time 0; audio starts 1001 samples later
        // (20.854 ms: no whole millisecond) and has a gap of 10 frames + 7 samples.
        let first_video = AccessUnit {
            kind: TrackKind::Video,
            ..unit(0, 90_000)
        };
        video.map(&mut clock, &first_video);
        let times = (0..20)
            .map(|i| 1001 + i * 1024)
            .chain([1001 + 30 * 1024 + 7]);
        let placed: Vec<_> = times
            .map(|t| {
                let mapped = audio.map(&mut clock, &unit(t, 48_000));
                audio.place(mapped)
            })
            .collect();
        for (i, p) in placed[..20].iter().enumerate() {
            assert_eq!(*p, AudioPlacement::At(1001 + i as i64 * 1024));
        }
        assert_eq!(placed[20], AudioPlacement::At(1001 + 30 * 1024 + 7));
        assert_eq!(audio.end(), MediaTime::new(1001 + 31 * 1024 + 7, 48_000));
    }

    #[test]
    fn a_frame_stepping_back_into_packaged_audio_is_dropped() {
        let mut clock = SessionClock::new(WallClockAnchor::now());
        let mut audio = AudioTimeline::new();
        audio.set_sample_rate(48_000);
        let ms = [0, 21, 43, 23, 64];
        let placed: Vec<_> = ms
            .iter()
            .map(|t| {
                let mapped = audio.map(&mut clock, &unit(*t, 1000));
                audio.place(mapped)
            })
            .collect();
        assert_eq!(
            placed,
            [
                AudioPlacement::At(0),
                AudioPlacement::At(1024),
                AudioPlacement::At(2048),
                AudioPlacement::Overlap(3072 - 23 * 48),
                AudioPlacement::At(3072),
            ]
        );
        assert_eq!(audio.overlaps_dropped(), 1);
    }
}
