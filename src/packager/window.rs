//! The live window of one rendition: init segments, complete segments and the parts
//! of the segment in progress, all in memory.
//!
//! Published bytes never change: a part or an init segment is stored once as [`Bytes`]
//! and every viewer gets a reference-counted clone. A segment is its parts in order
//! (each part is a complete `moof`+`mdat`), so it is never copied into one buffer:
//! the window costs its media bytes once.

use std::collections::VecDeque;
use std::time::SystemTime;

use bytes::Bytes;

/// One published part.
#[derive(Clone, Debug)]
pub struct PartEntry {
    pub duration: f64,
    pub independent: bool,
    pub data: Bytes,
}

/// A segment, complete or in progress.
#[derive(Clone, Debug)]
pub struct SegmentEntry {
    pub msn: u64,
    pub duration: f64,
    pub parts: Vec<PartEntry>,
    /// Bytes of all parts.
    pub size: u64,
    pub program_date_time: SystemTime,
    /// The first segment after a publisher change.
    pub discontinuity: bool,
    pub init_id: u32,
}

/// Where the live edge of a rendition is: the last published part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub msn: u64,
    pub part: u32,
}

/// Playlist-shaping numbers, fixed for a stream.
#[derive(Clone, Copy, Debug)]
pub struct WindowConfig {
    pub part_target: f64,
    pub segment_target: f64,
    /// Complete segments kept.
    pub window_segments: usize,
    /// PART-HOLD-BACK in part targets.
    pub part_hold_back_parts: f64,
}

/// One rendition's live window.
pub struct RenditionWindow {
    pub config: WindowConfig,
    inits: Vec<(u32, Bytes)>,
    current_init: Option<u32>,
    next_init_id: u32,
    segments: VecDeque<SegmentEntry>,
    open: Option<SegmentEntry>,
    next_msn: u64,
    discontinuity_sequence: u64,
    pending_discontinuity: bool,
    /// EXT-X-TARGETDURATION: only grows, so players never see it shrink.
    target_duration: u64,
    /// Bytes and seconds of media published in this live session, for the average
    /// bitrate.
    total_bytes: u64,
    total_seconds: f64,
    /// The live session ended: the playlist carries EXT-X-ENDLIST and nothing is added.
    ended: bool,
}

impl RenditionWindow {
    pub fn new(config: WindowConfig) -> Self {
        Self {
            config,
            inits: Vec::new(),
            current_init: None,
            next_init_id: 0,
            segments: VecDeque::new(),
            open: None,
            next_msn: 0,
            discontinuity_sequence: 0,
            pending_discontinuity: false,
            target_duration: (config.segment_target.round() as u64).max(1),
            total_bytes: 0,
            total_seconds: 0.0,
            ended: false,
        }
    }

    /// Makes `init` the init segment of the segments that follow; identical bytes keep
    /// the current one.
    pub fn set_init(&mut self, init: Bytes) {
        if let Some(id) = self.current_init {
            if self.init(id).is_some_and(|cur| *cur == init) {
                return;
            }
        }
        let id = self.next_init_id;
        self.next_init_id += 1;
        self.inits.push((id, init));
        self.current_init = Some(id);
    }

    pub fn has_init(&self) -> bool {
        self.current_init.is_some()
    }

    /// The next segment joins a new timeline.
    pub fn mark_discontinuity(&mut self) {
        if self.next_msn > 0 || self.open.is_some() {
            self.pending_discontinuity = true;
        }
    }

    /// The live session ended (EXT-X-ENDLIST): the segment in progress is completed and
    /// the window is kept as it is, to be served until [`RenditionWindow::restart`].
    pub fn end_playlist(&mut self) {
        self.end_segment();
        self.ended = true;
    }

    /// Whether the playlist has ended (EXT-X-ENDLIST).
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Empties the window for a new live session: the old segments and parts are
    /// dropped and the playlist is open again. Sequence numbers go on from where they
    /// were, so no URI is ever reused for other bytes; the new session is a new
    /// discontinuity domain (EXT-X-DISCONTINUITY-SEQUENCE goes one past the old
    /// segments') without a leading EXT-X-DISCONTINUITY tag. The current init segment
    /// is kept: its bytes and URI stay valid.
    pub fn restart(&mut self) {
        let published = self.next_msn > 0 || self.open.is_some();
        if let Some(open) = self.open.take() {
            self.segments.push_back(open);
        }
        let dropped_discontinuities = self.segments.iter().filter(|s| s.discontinuity).count();
        self.discontinuity_sequence += dropped_discontinuities as u64 + u64::from(published);
        self.segments.clear();
        if let Some(current) = self.current_init {
            self.inits.retain(|(id, _)| *id == current);
        }
        self.pending_discontinuity = false;
        self.target_duration = (self.config.segment_target.round() as u64).max(1);
        self.total_bytes = 0;
        self.total_seconds = 0.0;
        self.ended = false;
    }

    /// Bytes the window holds: its init segments, complete segments and the segment
    /// in progress (for the stream's memory budget).
    pub fn held_bytes(&self) -> u64 {
        let inits: u64 = self.inits.iter().map(|(_, b)| b.len() as u64).sum();
        let segments: u64 = self.segments.iter().map(|s| s.size).sum();
        inits + segments + self.open.as_ref().map_or(0, |s| s.size)
    }

    /// Publishes a part; the first part of a segment opens it. Ignored once the
    /// playlist has ended.
    pub fn add_part(&mut self, data: Bytes, duration: f64, independent: bool, pdt: SystemTime) {
        if self.ended {
            return;
        }
        let init_id = self.current_init.unwrap_or(0);
        let open = self.open.get_or_insert_with(|| {
            let discontinuity = std::mem::take(&mut self.pending_discontinuity);
            let msn = self.next_msn;
            self.next_msn += 1;
            SegmentEntry {
                msn,
                duration: 0.0,
                parts: Vec::new(),
                size: 0,
                program_date_time: pdt,
                discontinuity,
                init_id,
            }
        });
        open.duration += duration;
        open.size += data.len() as u64;
        self.total_bytes += data.len() as u64;
        self.total_seconds += duration;
        open.parts.push(PartEntry {
            duration,
            independent,
            data,
        });
        self.grow_target_duration(open_duration(&self.open));
    }

    /// Completes the segment in progress, if any, and ages the window.
    pub fn end_segment(&mut self) {
        let Some(seg) = self.open.take() else {
            return;
        };
        self.segments.push_back(seg);
        while self.segments.len() > self.config.window_segments.max(1) {
            if let Some(old) = self.segments.pop_front() {
                if old.discontinuity {
                    self.discontinuity_sequence += 1;
                }
            }
        }
        let oldest_init = self.segments.front().map(|s| s.init_id);
        if let Some(oldest) = oldest_init {
            self.inits.retain(|(id, _)| *id >= oldest);
        }
    }

    fn grow_target_duration(&mut self, seconds: f64) {
        self.target_duration = self.target_duration.max(seconds.round() as u64);
    }

    pub fn target_duration(&self) -> u64 {
        self.target_duration
    }

    pub fn init(&self, id: u32) -> Option<&Bytes> {
        self.inits.iter().find(|(i, _)| *i == id).map(|(_, b)| b)
    }

    pub fn segments(&self) -> impl Iterator<Item = &SegmentEntry> {
        self.segments.iter()
    }

    pub fn open_segment(&self) -> Option<&SegmentEntry> {
        self.open.as_ref()
    }

    pub fn discontinuity_sequence(&self) -> u64 {
        self.discontinuity_sequence
    }

    /// Numbers the first segment `msn` (a rendition that joins a stream later takes
    /// the msn the others give the same media); no effect once the window has media.
    pub fn start_at_msn(&mut self, msn: u64) {
        if self.open.is_none() && self.segments.is_empty() && msn > self.next_msn {
            self.next_msn = msn;
        }
    }

    /// The msn the next new segment will get.
    pub fn next_msn(&self) -> u64 {
        self.next_msn
    }

    /// The parts that make up segment `msn`, in order, when it is complete and still
    /// in the window.
    pub fn segment(&self, msn: u64) -> Option<Vec<Bytes>> {
        let seg = self.segments.iter().find(|s| s.msn == msn)?;
        Some(seg.parts.iter().map(|p| p.data.clone()).collect())
    }

    /// Part `part` of segment `msn`, when published and still kept.
    pub fn part(&self, msn: u64, part: u32) -> Option<&Bytes> {
        let seg = match &self.open {
            Some(open) if open.msn == msn => open,
            _ => self.segments.iter().find(|s| s.msn == msn)?,
        };
        seg.parts.get(part as usize).map(|p| &p.data)
    }

    /// The last published part, `None` before the first.
    pub fn position(&self) -> Option<Position> {
        let seg = self.open.as_ref().or(self.segments.back())?;
        let part = u32::try_from(seg.parts.len().checked_sub(1)?).ok()?;
        Some(Position { msn: seg.msn, part })
    }

    /// The msn of the newest complete segment.
    pub fn last_complete_msn(&self) -> Option<u64> {
        self.segments.back().map(|s| s.msn)
    }

    /// Whether segment `msn` is final: it has ended (it may have aged out since), or
    /// the playlist has ended, so no segment or part will ever be added. Blocking
    /// requests use this to answer at once after EXT-X-ENDLIST instead of holding.
    pub fn segment_complete(&self, msn: u64) -> bool {
        self.ended || self.last_complete_msn().is_some_and(|last| msn <= last)
    }

    /// Bits per second of the newest complete segment: what is arriving now.
    pub fn current_bitrate(&self) -> Option<u64> {
        let seg = self.segments.back().filter(|s| s.duration > 0.0)?;
        Some((seg.size as f64 * 8.0 / seg.duration) as u64)
    }

    /// Peak and average bitrate in bits per second over the complete segments in the
    /// window (peak) and since start (average); `None` before any media.
    pub fn bitrates(&self) -> Option<(u64, u64)> {
        if self.total_seconds <= 0.0 {
            return None;
        }
        let average = (self.total_bytes as f64 * 8.0 / self.total_seconds) as u64;
        let peak = self
            .segments
            .iter()
            .filter(|s| s.duration > 0.0)
            .map(|s| (s.size as f64 * 8.0 / s.duration) as u64)
            .max()
            .unwrap_or(average)
            .max(average);
        Some((peak, average))
    }
}

/// A window of `complete` 2 s segments of ten 200 ms parts, then `open_parts` parts of
/// the next, with PROGRAM-DATE-TIME counting from 2023-11-14T22:13:20Z.
#[cfg(test)]
pub(crate) fn test_window(complete: usize, open_parts: usize) -> RenditionWindow {
    use std::time::Duration;
    let mut w = RenditionWindow::new(WindowConfig {
        part_target: 0.2,
        segment_target: 2.0,
        window_segments: 10,
        part_hold_back_parts: 3.0,
    });
    w.set_init(Bytes::from_static(b"init"));
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let part_at = |s: usize, p: usize| t0 + Duration::from_millis((s * 2000 + p * 200) as u64);
    for s in 0..complete {
        for p in 0..10 {
            w.add_part(Bytes::from_static(b"p"), 0.2, p == 0, part_at(s, p));
        }
        w.end_segment();
    }
    for p in 0..open_parts {
        w.add_part(Bytes::from_static(b"p"), 0.2, p == 0, part_at(complete, p));
    }
    w
}

fn open_duration(open: &Option<SegmentEntry>) -> f64 {
    open.as_ref().map_or(0.0, |s| s.duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(kept: usize) -> RenditionWindow {
        let mut w = RenditionWindow::new(WindowConfig {
            part_target: 0.2,
            segment_target: 2.0,
            window_segments: kept,
            part_hold_back_parts: 3.0,
        });
        w.set_init(Bytes::from_static(b"init"));
        w
    }

    fn fill_segment(w: &mut RenditionWindow, parts: usize) {
        for i in 0..parts {
            w.add_part(
                Bytes::from(vec![i as u8; 10]),
                0.2,
                i == 0,
                SystemTime::UNIX_EPOCH,
            );
        }
        w.end_segment();
    }

    #[test]
    fn a_segment_is_its_parts_concatenated() {
        let mut w = window(3);
        fill_segment(&mut w, 3);
        let seg: Vec<u8> = w.segment(0).expect("segment 0").concat();
        assert_eq!(seg.len(), 30);
        assert_eq!(&seg[10..20], &[1u8; 10]);
        assert_eq!(w.part(0, 2).map(|p| p.len()), Some(10));
    }

    #[test]
    fn the_window_ages_and_counts_discontinuities() {
        let mut w = window(2);
        fill_segment(&mut w, 2);
        w.mark_discontinuity();
        fill_segment(&mut w, 2);
        fill_segment(&mut w, 2);
        fill_segment(&mut w, 2);
        assert!(w.segment(0).is_none());
        assert!(w.segment(1).is_none());
        assert_eq!(w.discontinuity_sequence(), 1);
        assert_eq!(w.position(), Some(Position { msn: 3, part: 1 }));
    }

    #[test]
    fn an_ended_window_is_final_and_a_restart_empties_it() {
        let mut w = window(5);
        fill_segment(&mut w, 2);
        w.mark_discontinuity();
        fill_segment(&mut w, 2);
        w.add_part(Bytes::from_static(b"x"), 0.2, true, SystemTime::UNIX_EPOCH);
        w.end_playlist();
        assert!(w.is_ended());
        // The segment in progress was completed; nothing more can come.
        assert_eq!(w.last_complete_msn(), Some(2));
        assert!(w.segment_complete(3));
        w.add_part(Bytes::from_static(b"y"), 0.2, true, SystemTime::UNIX_EPOCH);
        assert_eq!(w.position(), Some(Position { msn: 2, part: 0 }));

        w.set_init(Bytes::from_static(b"init2"));
        w.restart();
        assert!(!w.is_ended());
        assert_eq!(w.segments().count(), 0);
        assert!(!w.segment_complete(3));
        // One discontinuity aged out with the old segments, plus the new session.
        assert_eq!(w.discontinuity_sequence(), 2);
        fill_segment(&mut w, 1);
        let seg = w.segments().next().expect("a segment");
        assert_eq!((seg.msn, seg.discontinuity, seg.init_id), (3, false, 1));
        assert!(w.init(0).is_none() && w.init(1).is_some());
    }

    #[test]
    fn identical_init_bytes_do_not_start_a_new_map() {
        let mut w = window(3);
        w.set_init(Bytes::from_static(b"init"));
        fill_segment(&mut w, 1);
        w.set_init(Bytes::from_static(b"init2"));
        fill_segment(&mut w, 1);
        let ids: Vec<u32> = w.segments().map(|s| s.init_id).collect();
        assert_eq!(ids, vec![0, 1]);
    }
}
