//! Decode timestamps for RTP video, which carries presentation times only.
//!
//! An RTP timestamp is the sampling instant of the frame (RFC 6184 5.1), i.e. its PTS;
//! frames arrive in decode order. Without B-frames decode order is presentation order
//! and DTS = PTS. With B-frames, a decoder that may hold `R` frames for reordering
//! (`max_num_reorder_frames`, H.264 E.2.1) outputs the frame with the smallest PTS
//! once `R + 1` frames are waiting. The rule follows that model, in the stream's clock
//! (90 kHz for H.264):
//!
//! 1. Each frame's PTS goes into a set of waiting PTS values (at most `R + 1`).
//! 2. With more than `R` waiting, DTS is the smallest waiting PTS, which leaves the set.
//!    So a B-frame gets DTS = PTS and a reference frame decoded ahead of them a DTS
//!    below its PTS, and DTS ≤ PTS always holds while `R` is right.
//! 3. While fewer are waiting (the first `R` frames of a session), DTS is extrapolated
//!    back from the smallest waiting PTS by one frame duration per missing frame.
//! 4. DTS is strictly increasing: a value not above the previous DTS becomes previous
//!    DTS + 1 tick. When that happens to a value taken in step 2 the stream reorders
//!    more than `R` frames, so `R` grows by one (up to 16, the H.264 maximum). Such a
//!    frame has DTS > PTS, a negative composition offset that `trun` version 1
//!    carries; after a group of pictures or two the learned `R` fits and it stops.
//!    Waiting values at or below the new DTS are dropped, so the set stays ahead of it.
//!
//! `R` starts at the SPS value ([`DecodeTimes::announce_reorder`]), 0 when the SPS
//! does not say. A PTS more than [`MAX_BACKWARD_SECONDS`] behind the previous DTS is
//! no reordering but a camera clock reset, and is reported so the caller can start a
//! new session.
//!
//! The timestamps handed in are retina's, already extended past the 32-bit RTP wrap.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A PTS this far behind the previous DTS is a timestamp jump, not B-frame reordering.
pub const MAX_BACKWARD_SECONDS: i64 = 2;

/// H.264 allows at most 16 frames in the decoded picture buffer (A.3.1, item h).
pub const MAX_REORDER_FRAMES: u32 = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("video timestamp went back by {by} ticks of {clock_rate} Hz")]
pub struct TimestampJump {
    pub by: i64,
    pub clock_rate: u32,
}

#[derive(Clone, Debug)]
pub struct DecodeTimes {
    clock_rate: u32,
    /// `R`: frames that may be reordered.
    reorder: u32,
    /// One frame in ticks, for the extrapolation of step 3.
    frame_ticks: i64,
    waiting: BinaryHeap<Reverse<i64>>,
    last_dts: Option<i64>,
    /// Frames whose DTS had to be raised above the rule's value.
    late: u64,
}

impl DecodeTimes {
    pub fn new(clock_rate: u32) -> Self {
        let clock_rate = clock_rate.max(1);
        Self {
            clock_rate,
            reorder: 0,
            frame_ticks: i64::from(clock_rate) / 30,
            waiting: BinaryHeap::new(),
            last_dts: None,
            late: 0,
        }
    }

    /// New stream parameters: at least `reorder_frames` frames may be reordered, and a
    /// frame lasts about `frame_ticks`.
    pub fn announce_reorder(&mut self, reorder_frames: u32, frame_ticks: i64) {
        self.reorder = self.reorder.max(reorder_frames.min(MAX_REORDER_FRAMES));
        if frame_ticks > 0 {
            self.frame_ticks = frame_ticks;
        }
    }

    /// The DTS of the next frame in decode order, presented at `pts`.
    pub fn dts(&mut self, pts: i64) -> Result<i64, TimestampJump> {
        if let Some(last) = self.last_dts {
            let by = last.saturating_sub(pts);
            if by > MAX_BACKWARD_SECONDS * i64::from(self.clock_rate) {
                return Err(TimestampJump {
                    by,
                    clock_rate: self.clock_rate,
                });
            }
        }
        self.waiting.push(Reverse(pts));
        let waiting = self.waiting.len() as u64;
        let (candidate, popped) = if waiting > u64::from(self.reorder) {
            let Reverse(smallest) = self.waiting.pop().unwrap_or(Reverse(pts));
            (smallest, true)
        } else {
            let smallest = self.waiting.peek().map_or(pts, |r| r.0);
            let missing = i64::from(self.reorder) + 1 - waiting as i64;
            (
                smallest.saturating_sub(missing.saturating_mul(self.frame_ticks)),
                false,
            )
        };
        let dts = match self.last_dts {
            Some(last) if candidate <= last => {
                if popped {
                    self.reorder = (self.reorder + 1).min(MAX_REORDER_FRAMES);
                }
                last.saturating_add(1)
            }
            _ => candidate,
        };
        if dts > pts {
            self.late += 1;
        }
        self.waiting.retain(|r| r.0 > dts);
        self.last_dts = Some(dts);
        Ok(dts)
    }

    /// `R`, as announced or learned.
    pub fn reorder_frames(&self) -> u32 {
        self.reorder
    }

    /// Frames that got DTS > PTS while `R` was being learned.
    pub fn late(&self) -> u64 {
        self.late
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: i64 = 3000; // one frame at 30 fps in 90 kHz

    fn run(t: &mut DecodeTimes, pts_frames: &[i64]) -> Vec<i64> {
        let dts: Vec<i64> = pts_frames.iter().map(|&p| t.dts(p * F).unwrap()).collect();
        assert!(
            dts.windows(2).all(|w| w[1] > w[0]),
            "not increasing: {dts:?}"
        );
        dts
    }

    #[test]
    fn without_b_frames_dts_is_pts() {
        let mut t = DecodeTimes::new(90_000);
        let pts: Vec<i64> = (0..10).collect();
        assert_eq!(
            run(&mut t, &pts),
            pts.iter().map(|p| p * F).collect::<Vec<_>>()
        );
        assert_eq!((t.reorder_frames(), t.late()), (0, 0));
    }

    #[test]
    fn announced_b_frames() {
        // I0 P3 B1 B2 P6 B4 B5 in decode order: one frame of reorder.
        let mut t = DecodeTimes::new(90_000);
        t.announce_reorder(1, F);
        let dts = run(&mut t, &[0, 3, 1, 2, 6, 4, 5]);
        assert_eq!(dts, [-1, 0, 1, 2, 3, 4, 5].map(|n| n * F));
        // B-pyramid I0 P4 B2 b1 b3: two frames of reorder.
        let mut t = DecodeTimes::new(90_000);
        t.announce_reorder(2, F);
        let pts = [0, 4, 2, 1, 3, 8, 6, 5, 7];
        let dts = run(&mut t, &pts);
        assert_eq!(dts, [-2, -1, 0, 1, 2, 3, 4, 5, 6].map(|n| n * F));
        assert_eq!(t.late(), 0);
    }

    #[test]
    fn unannounced_b_frames_are_learned() {
        let mut t = DecodeTimes::new(90_000);
        let pts = [0, 3, 1, 2, 6, 4, 5, 9, 7, 8, 12, 10, 11, 15, 13, 14];
        let dts = run(&mut t, &pts);
        assert_eq!(t.reorder_frames(), 2);
        assert!(t.late() <= 4, "{} late", t.late());
        // From the third group on, every frame decodes before it is shown.
        for (d, p) in dts.iter().zip(pts).skip(7) {
            assert!(*d <= p * F, "dts {d} > pts {}", p * F);
        }
    }

    #[test]
    fn wrap_extended_timestamps_pass_through() {
        // retina extends the 32-bit RTP clock; values past 2^32 are ordinary.
        let mut t = DecodeTimes::new(90_000);
        let base = i64::from(u32::MAX) - F;
        assert_eq!(t.dts(base), Ok(base));
        assert_eq!(t.dts(base + F), Ok(base + F));
        assert_eq!(t.dts(base + 2 * F), Ok(base + 2 * F));
    }

    #[test]
    fn a_clock_reset_is_reported_a_repeat_is_held() {
        let mut t = DecodeTimes::new(90_000);
        t.dts(10 * 90_000).unwrap();
        assert_eq!(
            t.dts(0),
            Err(TimestampJump {
                by: 10 * 90_000,
                clock_rate: 90_000
            })
        );
        let mut t = DecodeTimes::new(90_000);
        assert_eq!(t.dts(F), Ok(F));
        assert_eq!(t.dts(F), Ok(F + 1));
    }
}
