//! One track's part and segment assembly. Pure: samples in, parts out.
//!
//! Parts never exceed the part target (draft-pantos-hls-rfc8216bis 4.4.3.7: every
//! EXT-X-PART duration ≤ PART-TARGET). A part is closed as soon as the next sample is
//! not expected to fit, so it is published at the arrival of its own last sample,
//! not one sample later; when a sample turns out longer than expected it starts the
//! next part instead. Segment starts are decided by the cut policy ([`super::cut`])
//! and always begin a new, independent part.

use std::time::Instant;

use bytes::Bytes;

use crate::packager::fmp4::Sample;

/// A sample whose duration is known, in the track's timescale.
#[derive(Clone, Debug)]
pub struct TimedSample {
    pub dts: i64,
    pub duration: u32,
    pub composition_offset: i32,
    pub keyframe: bool,
    pub data: Bytes,
    pub received: Instant,
}

/// A finished part, ready to be written as one `moof`+`mdat`.
#[derive(Debug)]
pub struct PartDraft {
    /// Decode time of the first sample (`tfdt`).
    pub base_dts: i64,
    pub duration: u64,
    /// Starts with a sync sample (EXT-X-PART INDEPENDENT=YES).
    pub independent: bool,
    pub samples: Vec<Sample>,
    /// Arrival time of each sample, for the latency figures.
    pub received: Vec<Instant>,
}

/// What the segmenter decided after a push.
#[derive(Debug)]
pub enum Cut {
    /// A part is complete.
    Part(PartDraft),
    /// The segment in progress is complete (its last part came just before).
    SegmentEnd,
}

/// How many recent sample durations the "will the next one fit" guess averages.
const RECENT_DURATIONS: usize = 8;

/// One track's part and segment assembly.
pub struct Segmenter {
    part_target: u64,
    /// Video: a sync sample mid-segment starts a new part. Audio: every sample is a
    /// sync sample, so this is off.
    split_at_sync_samples: bool,
    open: Option<PartDraft>,
    segment_duration: u64,
    segment_open: bool,
    recent: [u32; RECENT_DURATIONS],
    recent_len: usize,
    recent_pos: usize,
}

impl Segmenter {
    /// `part_target` in the track's timescale.
    pub fn new(part_target: u64, split_at_sync_samples: bool) -> Self {
        Self {
            part_target: part_target.max(1),
            split_at_sync_samples,
            open: None,
            segment_duration: 0,
            segment_open: false,
            recent: [0; RECENT_DURATIONS],
            recent_len: 0,
            recent_pos: 0,
        }
    }

    /// Duration of the segment in progress, including its open part.
    pub fn segment_duration(&self) -> u64 {
        self.segment_duration
    }

    /// Whether a segment is in progress.
    pub fn segment_open(&self) -> bool {
        self.segment_open
    }

    /// Adds a sample; `starts_segment` ends the segment in progress first.
    pub fn push(&mut self, sample: TimedSample, starts_segment: bool, out: &mut Vec<Cut>) {
        if starts_segment {
            self.finish_segment(out);
        } else if let Some(open) = &self.open {
            // The exact check: a sample longer than guessed goes to the next part.
            let too_long = open.duration + u64::from(sample.duration) > self.part_target;
            // A keyframe mid-segment starts its own part so players can join there.
            if too_long || (sample.keyframe && self.split_at_sync_samples) {
                self.close_part(out);
            }
        }
        self.remember_duration(sample.duration);
        self.segment_open = true;
        self.segment_duration += u64::from(sample.duration);
        let open = self.open.get_or_insert_with(|| PartDraft {
            base_dts: sample.dts,
            duration: 0,
            independent: sample.keyframe,
            samples: Vec::new(),
            received: Vec::new(),
        });
        open.duration += u64::from(sample.duration);
        open.received.push(sample.received);
        open.samples.push(Sample {
            duration: sample.duration,
            composition_offset: sample.composition_offset,
            keyframe: sample.keyframe,
            data: sample.data,
        });
        // The guess: close now when the next sample, as long as the recent ones,
        // would not fit. This publishes the part at its last sample's arrival.
        let open_duration = open.duration;
        let expected_next = self.mean_recent_duration();
        if open_duration + expected_next > self.part_target + expected_next / 4 {
            self.close_part(out);
        }
    }

    /// Ends the segment in progress (publisher left, or a new one starts).
    pub fn finish_segment(&mut self, out: &mut Vec<Cut>) {
        self.close_part(out);
        if self.segment_open {
            out.push(Cut::SegmentEnd);
        }
        self.segment_open = false;
        self.segment_duration = 0;
    }

    fn close_part(&mut self, out: &mut Vec<Cut>) {
        if let Some(part) = self.open.take() {
            out.push(Cut::Part(part));
        }
    }

    fn remember_duration(&mut self, duration: u32) {
        self.recent[self.recent_pos] = duration;
        self.recent_pos = (self.recent_pos + 1) % RECENT_DURATIONS;
        self.recent_len = (self.recent_len + 1).min(RECENT_DURATIONS);
    }

    fn mean_recent_duration(&self) -> u64 {
        if self.recent_len == 0 {
            return 0;
        }
        let sum: u64 = self.recent[..self.recent_len]
            .iter()
            .map(|d| u64::from(*d))
            .sum();
        sum / self.recent_len as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dts: i64, duration: u32, keyframe: bool) -> TimedSample {
        TimedSample {
            dts,
            duration,
            composition_offset: 0,
            keyframe,
            data: Bytes::from_static(b"x"),
            received: Instant::now(),
        }
    }

    /// Feeds `n` samples of the given durations (ms timestamps at 90 kHz) and returns
    /// the part durations, with `None` marking segment ends.
    fn run(durations: &[u32], gop: usize, part_target: u64) -> Vec<Option<u64>> {
        let mut seg = Segmenter::new(part_target, true);
        let mut out = Vec::new();
        let mut dts = 0i64;
        for (i, d) in durations.iter().enumerate() {
            let key = i % gop == 0;
            seg.push(sample(dts, *d, key), key && i > 0, &mut out);
            dts += i64::from(*d);
        }
        seg.finish_segment(&mut out);
        out.into_iter()
            .map(|c| match c {
                Cut::Part(p) => Some(p.duration),
                Cut::SegmentEnd => None,
            })
            .collect()
    }

    #[test]
    fn thirty_fps_from_millisecond_timestamps_fills_200ms_parts() {
        // RTMP's 30 fps: 33/34/33 ms, i.e. 2970/3060/2970 ticks at 90 kHz.
        let pattern = [2970u32, 3060, 2970];
        let durations: Vec<u32> = (0..120).map(|i| pattern[i % 3]).collect();
        let cuts = run(&durations, 60, 18_000);
        let parts: Vec<u64> = cuts.iter().flatten().copied().collect();
        assert!(parts.iter().all(|d| *d <= 18_000), "{parts:?}");
        assert_eq!(parts.iter().filter(|d| **d == 18_000).count(), 20);
        assert_eq!(cuts.iter().filter(|c| c.is_none()).count(), 2);
    }

    #[test]
    fn parts_never_exceed_the_target_with_jittery_durations() {
        // 29.97 fps in ms: 33/34 irregularly, plus an occasional long frame.
        let durations: Vec<u32> = (0..300)
            .map(|i| match i % 7 {
                0 | 3 => 3060,
                5 if i % 35 == 5 => 4500,
                _ => 2970,
            })
            .collect();
        let parts: Vec<u64> = run(&durations, 60, 18_000).into_iter().flatten().collect();
        assert!(parts.iter().all(|d| *d <= 18_000), "{parts:?}");
        let total: u64 = durations.iter().map(|d| u64::from(*d)).sum();
        assert_eq!(parts.iter().sum::<u64>(), total, "no sample lost");
    }

    #[test]
    fn segments_start_with_an_independent_part() {
        let mut seg = Segmenter::new(18_000, true);
        let mut out = Vec::new();
        for i in 0..90i64 {
            let key = i % 30 == 0;
            seg.push(sample(i * 3000, 3000, key), key && i > 0, &mut out);
        }
        let mut after_end = true;
        for cut in &out {
            match cut {
                Cut::SegmentEnd => after_end = true,
                Cut::Part(p) => {
                    assert_eq!(p.independent, after_end, "part at {}", p.base_dts);
                    after_end = false;
                }
            }
        }
        assert_eq!(
            out.iter().filter(|c| matches!(c, Cut::SegmentEnd)).count(),
            2
        );
    }

    #[test]
    fn audio_parts_close_on_the_frame_that_fills_them() {
        // AAC at 48 kHz: 1024-sample frames, part target 200 ms = 9600 ticks.
        let mut seg = Segmenter::new(9600, false);
        let mut out = Vec::new();
        for i in 0..9i64 {
            seg.push(sample(i * 1024, 1024, true), false, &mut out);
        }
        // 9 frames = 9216 ticks; a 10th would not fit, so the part is out already.
        assert_eq!(out.len(), 1);
        match &out[0] {
            Cut::Part(p) => assert_eq!(p.samples.len(), 9),
            Cut::SegmentEnd => panic!("segment end before any segment target"),
        }
    }
}
