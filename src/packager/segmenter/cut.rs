//! Where segments start, in every rendition of a stream.
//!
//! Players switch renditions at segment boundaries, so every rendition cuts at the same
//! media time and gives the segment the same media sequence number (rfc8216bis 6.2.4).
//! One rendition leads: the source video, or the source audio of an audio-only stream.
//! The video leader starts a segment at a keyframe once the segment in progress has
//! reached the target, and at the next keyframe at once when a new init segment waits
//! (a layout change). Every other rendition follows: it queues the leader's
//! [`SegmentStart`]s and cuts where it reaches one. A rendition that starts late in a
//! session (a rung whose encoder has just started) joins at the next leader start, so
//! its first segment already matches the leader's.

use std::collections::VecDeque;

use crate::media::AacConfig;
use crate::packager::timeline::MediaTime;

/// Leader starts a follower has not reached yet. A follower that lags more than this
/// many segments loses the oldest, so it aligns again at the next one.
const PENDING_STARTS_BOUND: usize = 32;

/// A rung keyframe this close to a leader start is that start: RTMP timestamps are
/// whole milliseconds, and a rung's times are rounded to the source timebase.
const JOIN_TOLERANCE_MS: i64 = 1;

/// A leader keyframe this close to the segment target reaches it. RTMP timestamps are
/// whole milliseconds, and OBS cuts its frame times down to them: at 30 fps the
/// keyframe 2 s in is stamped 1999 ms, and a strict target would run the first segment
/// on to the next keyframe (and raise TARGETDURATION for the whole stream).
const TARGET_TOLERANCE_MS: u64 = 1;

/// Where the leader started a segment; followers start theirs there too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentStart {
    /// Presentation time of the segment's first sample on the stream timeline.
    pub pts: MediaTime,
    /// Media sequence number the leader gave the segment.
    pub msn: u64,
    /// The segment begins a new layout: followers mark a discontinuity there.
    pub new_layout: bool,
}

/// What a rendition does at the start of a segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentCut {
    /// A layout change takes effect here: video renditions switch to their new init
    /// segment and every rendition marks EXT-X-DISCONTINUITY.
    pub new_layout: bool,
}

/// The segment in progress of the rendition asking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentState {
    pub open: bool,
    /// Track ticks so far, including the open part.
    pub duration: u64,
}

/// Whether a unit is packaged at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Before the rendition's first unit of the session: drop it.
    Drop,
    /// Package it; `join` is the leader start a follower joins the session at.
    Package { join: Option<SegmentStart> },
}

/// Leader starts queued for one follower, oldest first (bounded, see
/// [`PENDING_STARTS_BOUND`]).
#[derive(Debug, Default)]
struct PendingStarts(VecDeque<SegmentStart>);

impl PendingStarts {
    fn push(&mut self, start: SegmentStart) {
        if self.0.len() == PENDING_STARTS_BOUND {
            self.0.pop_front();
        }
        self.0.push_back(start);
    }

    /// Takes every start at or before `ticks` (of `timescale`) and returns the latest;
    /// a layout change among those passed over is carried by the one returned.
    fn take_reached(&mut self, ticks: i64, timescale: u32) -> Option<SegmentStart> {
        let mut reached: Option<SegmentStart> = None;
        while let Some(front) = self.0.front().copied() {
            if front.pts.in_timescale(timescale) > ticks {
                break;
            }
            self.0.pop_front();
            let new_layout = reached.is_some_and(|r| r.new_layout) || front.new_layout;
            reached = Some(SegmentStart {
                new_layout,
                ..front
            });
        }
        reached
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

fn cut_at(start: SegmentStart) -> SegmentCut {
    SegmentCut {
        new_layout: start.new_layout,
    }
}

/// The cut policy of one video rendition: the leader's (the source video) or a
/// follower's (a rung).
#[derive(Debug)]
pub struct VideoCuts {
    /// The leader's segment target in track ticks; `None` for a follower.
    leader_target: Option<u64>,
    /// A keyframe has been packaged since the session or the parameters began.
    started: bool,
    starts: PendingStarts,
}

impl VideoCuts {
    /// The leader, cutting at keyframes once `segment_target` ticks are reached.
    pub fn leader(segment_target: u64) -> Self {
        Self {
            leader_target: Some(segment_target),
            started: false,
            starts: PendingStarts::default(),
        }
    }

    /// A follower, cutting where the leader's starts say.
    pub fn follower() -> Self {
        Self {
            leader_target: None,
            started: false,
            starts: PendingStarts::default(),
        }
    }

    /// A new session: wait for a keyframe (a follower: one at a leader start), forget
    /// the previous session's starts.
    pub fn begin_session(&mut self) {
        self.started = false;
        self.starts.clear();
    }

    /// New parameters: nothing is packaged before the next keyframe.
    pub fn restart(&mut self) {
        self.started = false;
    }

    /// The leader started a segment (followers only; the leader ignores it).
    pub fn follow(&mut self, start: SegmentStart) {
        if self.leader_target.is_none() {
            self.starts.push(start);
        }
    }

    /// Whether the frame presented at `pts` (track ticks of `timescale`) is packaged:
    /// nothing before the first keyframe; for a follower, nothing before a keyframe at
    /// a leader start, the start it joins at. Starts already passed are dropped: a
    /// segment begun there would not match the leader's.
    pub fn admit(&mut self, keyframe: bool, pts: i64, timescale: u32) -> Admit {
        if self.started {
            return Admit::Package { join: None };
        }
        if !keyframe {
            return Admit::Drop;
        }
        let mut join = None;
        if self.leader_target.is_none() {
            let tolerance = i64::from(timescale) * JOIN_TOLERANCE_MS / 1000;
            match self.starts.take_reached(pts, timescale) {
                Some(start) if pts - start.pts.in_timescale(timescale) <= tolerance => {
                    join = Some(start)
                }
                _ => return Admit::Drop,
            }
        }
        self.started = true;
        Admit::Package { join }
    }

    /// Whether the admitted frame at `pts` starts a segment. The leader: a keyframe
    /// when no segment is open, when the one in progress reached the target, or when
    /// `new_init` waits (a layout change does not wait for the target). A follower: the
    /// keyframe it joined at, or a keyframe at or past the leader's next start.
    pub fn starts_segment(
        &mut self,
        keyframe: bool,
        pts: i64,
        timescale: u32,
        segment: SegmentState,
        join: Option<SegmentStart>,
        new_init: bool,
    ) -> Option<SegmentCut> {
        if !keyframe {
            return None;
        }
        match self.leader_target {
            Some(target) => {
                let tolerance = u64::from(timescale) * TARGET_TOLERANCE_MS / 1000;
                let reached = segment.duration + tolerance >= target;
                (!segment.open || reached || new_init).then_some(SegmentCut {
                    new_layout: new_init,
                })
            }
            None => join
                .or_else(|| self.starts.take_reached(pts, timescale))
                .map(cut_at),
        }
    }
}

/// The cut policy of one audio rendition. The source audio leads when the stream has
/// no video; otherwise every audio rendition follows the source video.
#[derive(Debug, Default)]
pub struct AudioCuts {
    started: bool,
    starts: PendingStarts,
}

impl AudioCuts {
    pub fn new() -> Self {
        Self::default()
    }

    /// A new session: wait for the leader again, forget its previous starts.
    pub fn begin_session(&mut self) {
        self.started = false;
        self.starts.clear();
    }

    /// The leader started a segment.
    pub fn follow(&mut self, start: SegmentStart) {
        self.starts.push(start);
    }

    /// Whether the frame starting at `start` (track ticks of `timescale`) is packaged.
    /// A leader takes every frame; a follower begins with the frame that contains the
    /// leader's next start, so both segments start together (same msn, start times
    /// within one frame).
    pub fn admit(&mut self, leads: bool, start: i64, timescale: u32) -> Admit {
        if self.started || leads {
            self.started = true;
            return Admit::Package { join: None };
        }
        let frame = i64::from(AacConfig::SAMPLES_PER_FRAME);
        match self.starts.take_reached(start + frame, timescale) {
            Some(join) => {
                self.started = true;
                Admit::Package { join: Some(join) }
            }
            None => Admit::Drop,
        }
    }

    /// Whether the frame at `dts` starts a segment. The leader: when no segment is open
    /// or the one in progress reached `segment_target` ticks. A follower: the frame it
    /// joined with, or the frame nearest the leader's next start.
    pub fn starts_segment(
        &mut self,
        leads: bool,
        dts: i64,
        timescale: u32,
        segment: SegmentState,
        segment_target: u64,
        join: Option<SegmentStart>,
    ) -> Option<SegmentCut> {
        if leads {
            return (!segment.open || segment.duration >= segment_target)
                .then_some(SegmentCut::default());
        }
        let half_frame = i64::from(AacConfig::SAMPLES_PER_FRAME / 2);
        join.or_else(|| self.starts.take_reached(dts + half_frame, timescale))
            .map(cut_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packager::timeline::VIDEO_TIMESCALE;

    const TS: u32 = VIDEO_TIMESCALE;

    fn start(seconds: i64, msn: u64) -> SegmentStart {
        SegmentStart {
            pts: MediaTime::new(seconds * i64::from(TS), TS),
            msn,
            new_layout: false,
        }
    }

    const OPEN: SegmentState = SegmentState {
        open: true,
        duration: 90_000,
    };

    #[test]
    fn the_leader_waits_for_the_target_unless_a_new_layout_waits() {
        let mut cuts = VideoCuts::leader(180_000);
        assert_eq!(cuts.admit(false, 0, TS), Admit::Drop);
        assert_eq!(cuts.admit(true, 0, TS), Admit::Package { join: None });
        let closed = SegmentState {
            open: false,
            duration: 0,
        };
        assert!(cuts
            .starts_segment(true, 0, TS, closed, None, false)
            .is_some());
        assert_eq!(
            cuts.starts_segment(true, 90_000, TS, OPEN, None, false),
            None
        );
        assert_eq!(
            cuts.starts_segment(false, 90_000, TS, OPEN, None, true),
            None
        );
        assert_eq!(
            cuts.starts_segment(true, 90_000, TS, OPEN, None, true),
            Some(SegmentCut { new_layout: true })
        );
    }

    #[test]
    fn the_leader_takes_a_keyframe_a_millisecond_short_of_the_target() {
        let mut cuts = VideoCuts::leader(180_000);
        assert!(matches!(cuts.admit(true, 0, TS), Admit::Package { .. }));
        let after = |ms: u64| SegmentState {
            open: true,
            duration: ms * 90,
        };
        // 1999 ms: OBS's stamp of the keyframe 2 s in.
        assert!(cuts
            .starts_segment(true, 179_910, TS, after(1999), None, false)
            .is_some());
        assert_eq!(
            cuts.starts_segment(true, 179_820, TS, after(1998), None, false),
            None
        );
    }

    #[test]
    fn a_late_follower_joins_at_the_next_leader_start_only() {
        let mut cuts = VideoCuts::follower();
        cuts.follow(start(2, 1));
        cuts.follow(start(4, 2));
        // A keyframe of its own at 2.5 s: the start at 2 s has passed, so no join.
        assert_eq!(cuts.admit(true, 225_000, TS), Admit::Drop);
        // 4 s, half a millisecond late (rounded to the source timebase): joins.
        assert_eq!(
            cuts.admit(true, 360_045, TS),
            Admit::Package {
                join: Some(start(4, 2))
            }
        );
    }

    #[test]
    fn a_layout_change_carries_over_starts_passed_without_a_keyframe() {
        let mut cuts = VideoCuts::follower();
        cuts.follow(start(0, 0));
        assert!(matches!(cuts.admit(true, 0, TS), Admit::Package { .. }));
        cuts.follow(SegmentStart {
            new_layout: true,
            ..start(2, 1)
        });
        cuts.follow(start(4, 2));
        // The follower's keyframes fell between: its next one is at 5 s.
        assert_eq!(
            cuts.starts_segment(true, 450_000, TS, OPEN, None, false),
            Some(SegmentCut { new_layout: true })
        );
    }

    #[test]
    fn an_audio_follower_cuts_at_the_frame_nearest_the_video_start() {
        let mut cuts = AudioCuts::new();
        // Video starts at 2 s = 96 000 ticks at 48 kHz; audio frames every 1024 ticks.
        cuts.follow(start(0, 0));
        assert!(matches!(
            cuts.admit(false, -500, 48_000),
            Admit::Package { join: Some(_) }
        ));
        cuts.follow(start(2, 1));
        let frame_at = |n: i64| n * 1024 - 500;
        let cut_frame = (90..96)
            .find(|n| {
                cuts.starts_segment(false, frame_at(*n), 48_000, OPEN, 96_000, None)
                    .is_some()
            })
            .expect("a cut");
        // 93 × 1024 − 500 = 94 732, 94 × 1024 − 500 = 95 756: 244 ticks from the start.
        assert_eq!(cut_frame, 94);
    }
}
