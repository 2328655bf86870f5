//! One stream's packager: media events in, published parts, segments and playlists out.
//!
//! Timeline: every publish session's timestamps are shifted to continue where the
//! previous session ended, so decode times never go backwards across a takeover or a
//! reconnect; the join is still marked with EXT-X-DISCONTINUITY. Video and audio share
//! the shift, which keeps them in sync, and share the wall-clock anchor, which gives
//! aligned segments equal PROGRAM-DATE-TIME.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::fmp4::{self, AudioInit, VideoInit};
use super::latency::LatencyStats;
use super::media_playlist::{self, RenditionReport, RenditionUris};
use super::multivariant::{self, AudioVariant, VideoVariant};
use super::output::{
    source_rendition_name, OutputState, RenderedPlaylist, Rendition, StreamOutput,
};
use super::segmenter::{Cut, Segmenter, TimedSample};
use super::window::{RenditionWindow, WindowConfig};
use crate::media::{AacConfig, AccessUnit, AvcConfig, MediaEvent, TrackKind, WallClockAnchor};
use crate::streams::hub::MediaSink;

/// Track timescale for video (the MPEG-TS/HLS convention, exact for ms input).
const VIDEO_TIMESCALE: u32 = 90_000;
const VIDEO_TRACK_ID: u32 = 1;
const AUDIO_TRACK_ID: u32 = 2;

/// Segment and part shape.
#[derive(Clone, Copy, Debug)]
pub struct PackagerConfig {
    pub part_target: Duration,
    pub segment_target: Duration,
    pub window_segments: usize,
}

impl PackagerConfig {
    fn window(&self) -> WindowConfig {
        WindowConfig {
            part_target: self.part_target.as_secs_f64(),
            segment_target: self.segment_target.as_secs_f64(),
            window_segments: self.window_segments,
        }
    }
}

fn ticks(d: Duration, timescale: u32) -> u64 {
    (d.as_secs_f64() * f64::from(timescale)).round() as u64
}

/// Maps a publish session's millisecond timestamps onto the stream's timeline.
struct SessionClock {
    /// Stream time (ms) at which this session's first unit sits.
    offset_ms: i64,
    /// Source dts (ms) of the session's first unit.
    first_dts_ms: Option<i64>,
    /// Wall-clock time of the session's first unit.
    wall_base: SystemTime,
    anchor: WallClockAnchor,
}

impl SessionClock {
    fn map_ms(&mut self, unit: &AccessUnit) -> (i64, i64) {
        let scale = |t: i64| t.saturating_mul(1000) / i64::from(unit.timebase.max(1));
        let dts = scale(unit.dts);
        let pts = scale(unit.pts);
        let first = *self.first_dts_ms.get_or_insert_with(|| {
            self.wall_base = self.anchor.wall_at(unit.received);
            dts
        });
        let shift = self.offset_ms - first;
        (dts.saturating_add(shift), pts.saturating_add(shift))
    }

    /// Where a timestamp of this session lands on the stream timeline, without
    /// anchoring the session on it.
    fn peek_ms(&self, t: i64, timebase: u32) -> i64 {
        let ms = t.saturating_mul(1000) / i64::from(timebase.max(1));
        match self.first_dts_ms {
            Some(first) => ms.saturating_add(self.offset_ms - first),
            None => self.offset_ms,
        }
    }

    fn wall_at_ms(&self, stream_ms: i64) -> SystemTime {
        let since = stream_ms - self.offset_ms;
        if since >= 0 {
            self.wall_base + Duration::from_millis(since as u64)
        } else {
            self.wall_base - Duration::from_millis(since.unsigned_abs())
        }
    }
}

/// A video frame waiting for the next one, which tells its duration.
struct PendingFrame {
    dts: i64,
    composition_offset: i32,
    keyframe: bool,
    data: Bytes,
    received: Instant,
}

/// Where the leading track started a segment; followers start theirs there too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SegmentStart {
    /// Presentation time (stream ms) of the segment's first sample.
    pts_ms: i64,
    /// Media sequence number the leader gave the segment.
    msn: u64,
}

/// Segment starts a follower has not reached yet. Bounded: a follower that lags more
/// than this many segments loses the oldest, so it aligns again at the next one.
#[derive(Default)]
struct PendingStarts(VecDeque<SegmentStart>);

const PENDING_STARTS_BOUND: usize = 32;

/// A rung keyframe this close to a source segment start (stream ms) is that start:
/// RTMP timestamps are whole milliseconds.
const JOIN_TOLERANCE_MS: i64 = 1;

/// How far back an audio frame may start inside audio already packaged and still be
/// dropped as a repeat; a larger step back is a restarted clock, whose audio is kept.
const MAX_AUDIO_OVERLAP_MS: i64 = 500;

impl PendingStarts {
    fn push(&mut self, start: SegmentStart) {
        if self.0.len() == PENDING_STARTS_BOUND {
            self.0.pop_front();
        }
        self.0.push_back(start);
    }

    /// Takes every start at or before `pts_ms`, returning the latest of them.
    fn take_reached(&mut self, pts_ms: i64) -> Option<SegmentStart> {
        let mut reached = None;
        while let Some(front) = self.0.front().copied() {
            if front.pts_ms > pts_ms {
                break;
            }
            reached = self.0.pop_front();
        }
        reached
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// Which rendition of the stream an event belongs to: index 0 is the source (the
/// `video` and `audio` renditions), higher indexes are transcoded rungs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackRef {
    Video(usize),
    Audio(usize),
}

struct VideoTrack {
    name: String,
    config: Option<Arc<AvcConfig>>,
    segmenter: Segmenter,
    pending: Option<PendingFrame>,
    /// No frame is packaged in a session before its first keyframe (for rungs: before
    /// the first keyframe at a segment start of the source).
    started: bool,
    last_duration: u32,
    sequence: u32,
    /// Stream time (ms) just past the last frame.
    end_ms: i64,
    frames: u64,
    frame_ticks: u64,
    /// Rungs: segment starts decided by the source video.
    starts: PendingStarts,
    /// Listed in the multivariant playlist (the source: whenever it has parameters).
    announced: bool,
}

impl VideoTrack {
    fn new(name: &str, part_target: Duration) -> Self {
        Self {
            name: name.to_string(),
            config: None,
            segmenter: Segmenter::new(ticks(part_target, VIDEO_TIMESCALE), true),
            pending: None,
            started: false,
            last_duration: 3000,
            sequence: 0,
            end_ms: 0,
            frames: 0,
            frame_ticks: 0,
            starts: PendingStarts::default(),
            announced: false,
        }
    }
}

struct AudioTrack {
    name: String,
    config: Option<Arc<AacConfig>>,
    segmenter: Segmenter,
    /// Where the next frame would start if the source is contiguous (track ticks).
    next_dts: Option<i64>,
    /// Frames dropped because they started inside audio already packaged.
    overlaps_dropped: u64,
    /// Segment starts decided by the source video (or, for audio-only streams, by the
    /// source audio).
    starts: PendingStarts,
    started: bool,
    sequence: u32,
    end_ms: i64,
    announced: bool,
}

impl AudioTrack {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            config: None,
            segmenter: Segmenter::new(0, false),
            next_dts: None,
            overlaps_dropped: 0,
            starts: PendingStarts::default(),
            started: false,
            sequence: 0,
            end_ms: 0,
            announced: false,
        }
    }
}

/// The packager of one stream: the source renditions plus any transcoded rungs, all
/// cut where the source video cuts.
pub struct StreamPackager {
    config: PackagerConfig,
    output: Arc<StreamOutput>,
    latency: Arc<LatencyStats>,
    clock: SessionClock,
    /// `[0]` is the source video (`video`), the rest are rungs.
    video: Vec<VideoTrack>,
    /// `[0]` is the source audio (`audio`), the rest are rungs.
    audio: Vec<AudioTrack>,
}

impl StreamPackager {
    pub fn new(
        config: PackagerConfig,
        output: Arc<StreamOutput>,
        latency: Arc<LatencyStats>,
    ) -> Self {
        let anchor = WallClockAnchor::now();
        Self {
            config,
            output,
            latency,
            clock: SessionClock {
                offset_ms: 0,
                first_dts_ms: None,
                wall_base: anchor.wall,
                anchor,
            },
            video: vec![VideoTrack::new(
                source_rendition_name(TrackKind::Video),
                config.part_target,
            )],
            audio: vec![AudioTrack::new(source_rendition_name(TrackKind::Audio))],
        }
    }

    /// Declares the rungs of the session that starts: these are listed in the
    /// multivariant playlist once they have media, earlier rungs no longer are.
    /// Returns the track of each name, in order.
    pub fn declare_rungs(&mut self, video: &[String], audio: &[String]) -> Vec<TrackRef> {
        let part_target = self.config.part_target;
        for t in self.video.iter_mut().skip(1) {
            t.announced = false;
        }
        for t in self.audio.iter_mut().skip(1) {
            t.announced = false;
        }
        let mut refs = Vec::new();
        for name in video {
            let i = match self.video.iter().position(|t| t.name == *name) {
                Some(i) => i,
                None => {
                    self.video.push(VideoTrack::new(name, part_target));
                    self.video.len() - 1
                }
            };
            self.video[i].announced = true;
            refs.push(TrackRef::Video(i));
        }
        for name in audio {
            let i = match self.audio.iter().position(|t| t.name == *name) {
                Some(i) => i,
                None => {
                    self.audio.push(AudioTrack::new(name));
                    self.audio.len() - 1
                }
            };
            self.audio[i].announced = true;
            refs.push(TrackRef::Audio(i));
        }
        refs
    }

    /// A rung stopped for good in this session (its pipeline failed): players are no
    /// longer offered it.
    pub fn withdraw_rung(&mut self, track: TrackRef) {
        match track {
            TrackRef::Video(i) if i > 0 => {
                if let Some(t) = self.video.get_mut(i) {
                    t.announced = false;
                }
            }
            TrackRef::Audio(i) if i > 0 => {
                if let Some(t) = self.audio.get_mut(i) {
                    t.announced = false;
                }
            }
            _ => return,
        }
        let output = Arc::clone(&self.output);
        let mut state = output.lock();
        self.flush(&mut state, track);
        self.publish(&mut state, None, true);
    }

    /// One event of a transcoded rung (what its encoder produced).
    pub fn push_rung(&mut self, track: TrackRef, event: MediaEvent) {
        let output = Arc::clone(&self.output);
        let mut state = output.lock();
        match (track, event) {
            (TrackRef::Video(i), MediaEvent::VideoConfig(c)) if i > 0 => {
                self.on_video_config(&mut state, i, c)
            }
            (TrackRef::Audio(i), MediaEvent::AudioConfig(c)) if i > 0 => {
                self.on_audio_config(&mut state, i, c)
            }
            (TrackRef::Video(i), MediaEvent::Unit(u)) if i > 0 && u.kind == TrackKind::Video => {
                self.on_video_unit(&mut state, i, u)
            }
            (TrackRef::Audio(i), MediaEvent::Unit(u)) if i > 0 && u.kind == TrackKind::Audio => {
                self.on_audio_unit(&mut state, i, u)
            }
            (track, _) => tracing::debug!(?track, "event does not belong to this rung"),
        }
    }

    /// The rungs' encoders are drained: publish what they left open.
    pub fn end_rungs(&mut self) {
        let output = Arc::clone(&self.output);
        let mut state = output.lock();
        for i in 1..self.video.len() {
            self.flush(&mut state, TrackRef::Video(i));
        }
        for i in 1..self.audio.len() {
            self.flush(&mut state, TrackRef::Audio(i));
        }
        self.publish(&mut state, None, true);
    }

    fn on_video_config(&mut self, state: &mut OutputState, i: usize, config: Arc<AvcConfig>) {
        if self.video[i].config.as_deref() == Some(&*config) {
            return;
        }
        // New parameters start a new segment with a new init segment (EXT-X-MAP).
        self.flush(state, TrackRef::Video(i));
        let init = fmp4::video_init_segment(&VideoInit {
            track_id: VIDEO_TRACK_ID,
            timescale: VIDEO_TIMESCALE,
            config: &config,
            projection: self.output.stream.projection,
            orientation: self.output.stream.orientation,
        });
        let track = &mut self.video[i];
        rendition(state, &track.name, TrackKind::Video, self.config)
            .window
            .set_init(init);
        track.started = false;
        track.config = Some(config);
        if i == 0 {
            track.announced = true;
        }
    }

    fn on_audio_config(&mut self, state: &mut OutputState, i: usize, config: Arc<AacConfig>) {
        if self.audio[i].config.as_deref() == Some(&*config) {
            return;
        }
        self.flush(state, TrackRef::Audio(i));
        let init = fmp4::audio_init_segment(&AudioInit {
            track_id: AUDIO_TRACK_ID,
            config: &config,
        });
        let track = &mut self.audio[i];
        rendition(state, &track.name, TrackKind::Audio, self.config)
            .window
            .set_init(init);
        track.segmenter = Segmenter::new(ticks(self.config.part_target, config.sample_rate), false);
        track.next_dts = None;
        track.config = Some(config);
        if i == 0 {
            track.announced = true;
        }
    }

    /// The msn the next segment of source track `leader` will get.
    fn next_segment_msn(state: &OutputState, name: &str, segmenter: &Segmenter) -> u64 {
        let Some(window) = state.rendition(name).map(|r| &r.window) else {
            return 0;
        };
        // Parts of the segment in progress may still be on their way to the window.
        let in_progress_unpublished = segmenter.segment_open() && window.open_segment().is_none();
        window.next_msn() + u64::from(in_progress_unpublished)
    }

    /// The source started a segment at `pts_ms`: every follower starts one there too.
    fn announce_start(&mut self, start: SegmentStart, from_audio: bool) {
        for t in self.video.iter_mut().skip(1) {
            t.starts.push(start);
        }
        let followers = if from_audio { 1 } else { 0 };
        for t in self.audio.iter_mut().skip(followers) {
            t.starts.push(start);
        }
    }

    fn on_video_unit(&mut self, state: &mut OutputState, i: usize, unit: AccessUnit) {
        if self.video[i].config.is_none() {
            return;
        }
        let mut join = None;
        if !self.video[i].started {
            if !unit.keyframe {
                return;
            }
            if i > 0 {
                // A rung joins at a segment start of the source, so its msn and cut
                // points are the source's from its first segment on. Starts already
                // passed are stale: a segment begun there would not match the source's.
                let pts_ms = self.clock.peek_ms(unit.pts, unit.timebase);
                match self.video[i].starts.take_reached(pts_ms) {
                    Some(start) if pts_ms - start.pts_ms <= JOIN_TOLERANCE_MS => join = Some(start),
                    _ => return,
                }
            }
            self.video[i].started = true;
        }
        let (dts_ms, pts_ms) = self.clock.map_ms(&unit);
        let dts = dts_ms.saturating_mul(i64::from(VIDEO_TIMESCALE / 1000));
        let composition_offset = i32::try_from((pts_ms - dts_ms).saturating_mul(90)).unwrap_or(0);

        let mut cuts = Vec::new();
        let track = &mut self.video[i];
        if let Some(prev) = track.pending.take() {
            let duration = u32::try_from(dts - prev.dts)
                .ok()
                .filter(|d| *d > 0)
                .unwrap_or(track.last_duration);
            track.last_duration = duration;
            track.frames += 1;
            track.frame_ticks += u64::from(duration);
            track
                .segmenter
                .push(timed(prev, duration), false, &mut cuts);
        }
        let starts_segment = if i == 0 {
            // A keyframe at or after the target ends the segment now, without waiting
            // for this frame's duration.
            let segment_target = ticks(self.config.segment_target, VIDEO_TIMESCALE);
            unit.keyframe
                && (!track.segmenter.segment_open()
                    || track.segmenter.segment_duration() >= segment_target)
        } else {
            unit.keyframe && (join.is_some() || track.starts.take_reached(pts_ms).is_some())
        };
        if starts_segment {
            if i == 0 {
                let msn = Self::next_segment_msn(state, &track.name, &track.segmenter);
                track.segmenter.finish_segment(&mut cuts);
                self.announce_start(SegmentStart { pts_ms, msn }, false);
            } else {
                track.segmenter.finish_segment(&mut cuts);
            }
        }
        let track = &mut self.video[i];
        track.end_ms = dts_ms;
        track.pending = Some(PendingFrame {
            dts,
            composition_offset,
            keyframe: unit.keyframe,
            data: unit.data,
            received: unit.received,
        });
        if let Some(start) = join {
            align_msn(state, &track.name, start.msn);
        }
        self.apply_cuts(state, TrackRef::Video(i), cuts);
    }

    fn on_audio_unit(&mut self, state: &mut OutputState, i: usize, unit: AccessUnit) {
        let Some(config) = self.audio[i].config.clone() else {
            return;
        };
        let video_leads = self.video[0].config.is_some();
        let rate = i64::from(config.sample_rate);
        let frame = i64::from(AacConfig::SAMPLES_PER_FRAME);
        let frame_ms = frame * 1000 / rate.max(1);
        let mut join = None;
        if !self.audio[i].started {
            if i == 0 && !video_leads {
                // Audio-only stream: the source audio leads.
                self.audio[i].started = true;
            } else {
                // Follow the leader from its next segment start on, beginning with the
                // frame that contains it, so both segments start together (same msn,
                // start times within one frame).
                let start_ms = self.clock.peek_ms(unit.dts, unit.timebase);
                let Some(start) = self.audio[i].starts.take_reached(start_ms + frame_ms) else {
                    return;
                };
                join = Some(start);
                self.audio[i].started = true;
            }
        }
        let (dts_ms, _) = self.clock.map_ms(&unit);
        let track = &mut self.audio[i];
        let from_ms = dts_ms.saturating_mul(rate) / 1000;
        let dts = match track
            .next_dts
            .map(|expected| (expected, from_ms - expected))
        {
            // Millisecond timestamps jitter by up to 1 ms; a contiguous source is
            // counted in samples instead.
            Some((expected, drift)) if drift.abs() <= frame / 2 => expected,
            // A frame that starts inside audio already packaged (a publisher looping a
            // file steps back by about a frame) is dropped: written at its own time it
            // would overlap the last part, and the decode times of the rendition would
            // go back, which stalls players (hls.js loses its place in the audio
            // playlist); written late it would put the audio out of sync for good.
            Some((_, drift)) if drift < 0 && -drift * 1000 <= MAX_AUDIO_OVERLAP_MS * rate => {
                track.overlaps_dropped += 1;
                tracing::debug!(
                    rendition = %track.name,
                    overlap_ms = -drift * 1000 / rate.max(1),
                    dropped = track.overlaps_dropped,
                    "audio frame overlaps the packaged audio; dropped"
                );
                return;
            }
            // A larger step back (a publisher whose clock restarted) keeps counting, so
            // the timeline never goes back; a gap re-anchors the track.
            Some((expected, drift)) if drift < 0 => expected,
            _ => from_ms,
        };
        track.next_dts = Some(dts + frame);
        track.end_ms = dts_ms + frame_ms;

        let leads = i == 0 && !video_leads;
        let starts_segment = if leads {
            track.segmenter.segment_duration()
                >= ticks(self.config.segment_target, config.sample_rate)
        } else {
            // The frame nearest the leader's start begins the segment.
            join.is_none() && track.starts.take_reached(dts_ms + frame_ms / 2).is_some()
        };
        let mut cuts = Vec::new();
        let mut announce = None;
        if leads && (starts_segment || !track.segmenter.segment_open()) {
            let msn = Self::next_segment_msn(state, &track.name, &track.segmenter);
            announce = Some(SegmentStart {
                pts_ms: dts_ms,
                msn,
            });
        }
        track.segmenter.push(
            TimedSample {
                dts,
                duration: AacConfig::SAMPLES_PER_FRAME,
                composition_offset: 0,
                keyframe: true,
                data: unit.data,
                received: unit.received,
            },
            starts_segment && track.segmenter.segment_open(),
            &mut cuts,
        );
        if let Some(start) = join {
            align_msn(state, &track.name, start.msn);
        }
        if let Some(start) = announce {
            self.announce_start(start, true);
        }
        self.apply_cuts(state, TrackRef::Audio(i), cuts);
    }

    /// Publishes what the segmenter decided.
    fn apply_cuts(&mut self, state: &mut OutputState, track: TrackRef, cuts: Vec<Cut>) {
        if cuts.is_empty() {
            return;
        }
        let now = Instant::now();
        let (name, kind, track_id, timescale, sequence) = match track {
            TrackRef::Video(i) => {
                let t = &mut self.video[i];
                (
                    &t.name,
                    TrackKind::Video,
                    VIDEO_TRACK_ID,
                    VIDEO_TIMESCALE,
                    &mut t.sequence,
                )
            }
            TrackRef::Audio(i) => {
                let t = &mut self.audio[i];
                let rate = t.config.as_ref().map_or(48_000, |c| c.sample_rate);
                (
                    &t.name,
                    TrackKind::Audio,
                    AUDIO_TRACK_ID,
                    rate,
                    &mut t.sequence,
                )
            }
        };
        // Only the source renditions measure server-added latency; a rung's parts
        // also carry the transcoding delay, which its own figures report.
        let measured = matches!(track, TrackRef::Video(0) | TrackRef::Audio(0));
        let mut segment_ended = false;
        for cut in cuts {
            match cut {
                Cut::Part(part) => {
                    *sequence = sequence.wrapping_add(1);
                    let base = u64::try_from(part.base_dts).unwrap_or(0);
                    let data = fmp4::fragment(*sequence, track_id, base, &part.samples);
                    // PROGRAM-DATE-TIME is the first sample's presentation time, which
                    // is what lines up across renditions (a rung has no B-frames, the
                    // source may).
                    let first_cts = part
                        .samples
                        .first()
                        .map_or(0, |s| i64::from(s.composition_offset));
                    let start_ms =
                        (part.base_dts + first_cts).saturating_mul(1000) / i64::from(timescale);
                    let pdt = self.clock.wall_at_ms(start_ms);
                    let seconds = part.duration as f64 / f64::from(timescale);
                    rendition(state, name, kind, self.config).window.add_part(
                        data,
                        seconds,
                        part.independent,
                        pdt,
                    );
                    if measured {
                        self.latency.record_all(
                            kind,
                            part.received
                                .iter()
                                .map(|r| now.saturating_duration_since(*r)),
                        );
                    }
                }
                Cut::SegmentEnd => {
                    rendition(state, name, kind, self.config)
                        .window
                        .end_segment();
                    segment_ended = true;
                }
            }
        }
        let changed = match track {
            TrackRef::Video(i) => self.video[i].name.clone(),
            TrackRef::Audio(i) => self.audio[i].name.clone(),
        };
        self.publish(state, Some(&changed), segment_ended);
    }

    /// Packages what a track holds back (a video frame waiting for its duration is
    /// given the last one's) and ends its segment.
    fn flush(&mut self, state: &mut OutputState, track: TrackRef) {
        let mut cuts = Vec::new();
        match track {
            TrackRef::Video(i) => {
                let Some(t) = self.video.get_mut(i) else {
                    return;
                };
                if let Some(prev) = t.pending.take() {
                    let duration = t.last_duration;
                    t.end_ms = prev.dts / 90 + i64::from(duration / 90);
                    t.segmenter.push(timed(prev, duration), false, &mut cuts);
                }
                t.segmenter.finish_segment(&mut cuts);
            }
            TrackRef::Audio(i) => {
                let Some(t) = self.audio.get_mut(i) else {
                    return;
                };
                t.segmenter.finish_segment(&mut cuts);
            }
        }
        self.apply_cuts(state, track, cuts);
    }

    fn flush_all(&mut self, state: &mut OutputState) {
        for i in 0..self.video.len() {
            self.flush(state, TrackRef::Video(i));
        }
        for i in 0..self.audio.len() {
            self.flush(state, TrackRef::Audio(i));
        }
    }

    /// Re-renders the playlists after a change and wakes blocked requests. Only the
    /// `changed` rendition is rendered again (`None`: all): with a ladder, every part of
    /// every rung would otherwise re-render every playlist. The others' rendition
    /// reports catch up at their own next part, at most one part later.
    fn publish(&self, state: &mut OutputState, changed: Option<&str>, multivariant_too: bool) {
        let positions: Vec<(String, Option<super::window::Position>)> = state
            .renditions
            .iter()
            .map(|r| (format!("{}.m3u8", r.name), r.window.position()))
            .collect();
        for r in &mut state.renditions {
            if changed.is_some_and(|name| name != r.name) && r.playlist.is_some() {
                continue;
            }
            let own = format!("{}.m3u8", r.name);
            let reports: Vec<RenditionReport<'_>> = positions
                .iter()
                .filter(|(uri, _)| *uri != own)
                .map(|(uri, position)| RenditionReport {
                    uri,
                    position: *position,
                })
                .collect();
            let uris = RenditionUris { dir: &r.name };
            r.playlist = Some(RenderedPlaylist {
                full: Bytes::from(media_playlist::render(&r.window, &uris, &reports, false)),
                delta: Bytes::from(media_playlist::render(&r.window, &uris, &reports, true)),
            });
        }
        if multivariant_too || state.multivariant.is_none() {
            state.multivariant = self.render_multivariant(state).map(Bytes::from);
        }
        self.output.notify();
    }

    fn render_multivariant(&self, state: &OutputState) -> Option<String> {
        // BANDWIDTH is the peak segment bitrate: known once a segment is complete.
        let bitrates = |name: &str| {
            state
                .rendition(name)
                .filter(|r| r.window.last_complete_msn().is_some())
                .and_then(|r| r.window.bitrates())
        };
        let video_uris: Vec<String> = self
            .video
            .iter()
            .map(|t| format!("{}.m3u8", t.name))
            .collect();
        let audio_uris: Vec<String> = self
            .audio
            .iter()
            .map(|t| format!("{}.m3u8", t.name))
            .collect();
        let mut videos = Vec::new();
        for (t, uri) in self.video.iter().zip(&video_uris) {
            if !t.announced {
                continue;
            }
            // Players read the multivariant playlist once: it appears only when every
            // announced rendition has a complete segment, or a player would never
            // learn of the late one (nor its real bandwidth).
            let (Some(config), Some(rates)) = (&t.config, bitrates(&t.name)) else {
                return None;
            };
            let measured_frame_rate = (t.frame_ticks > 0)
                .then(|| t.frames as f64 * f64::from(VIDEO_TIMESCALE) / t.frame_ticks as f64);
            videos.push(VideoVariant {
                uri,
                config,
                bitrates: rates,
                measured_frame_rate,
                projection: self.output.stream.projection,
            });
        }
        let mut audios = Vec::new();
        for (t, uri) in self.audio.iter().zip(&audio_uris) {
            if !t.announced {
                continue;
            }
            let (Some(config), Some(rates)) = (&t.config, bitrates(&t.name)) else {
                return None;
            };
            audios.push(AudioVariant {
                uri,
                config,
                bitrates: rates,
            });
        }
        multivariant::render(&videos, &audios)
    }
}

/// A follower joining the stream takes the leader's msn for its first segment, so the
/// same msn means the same time in every rendition. Only an empty window can jump:
/// within a playlist, segment numbers are consecutive.
fn align_msn(state: &mut OutputState, name: &str, msn: u64) {
    if let Some(r) = state.rendition_mut(name) {
        r.window.start_at_msn(msn);
    }
}

fn timed(frame: PendingFrame, duration: u32) -> TimedSample {
    TimedSample {
        dts: frame.dts,
        duration,
        composition_offset: frame.composition_offset,
        keyframe: frame.keyframe,
        data: frame.data,
        received: frame.received,
    }
}

/// The rendition `name`, created with its window on first use.
fn rendition<'a>(
    state: &'a mut OutputState,
    name: &str,
    kind: TrackKind,
    config: PackagerConfig,
) -> &'a mut Rendition {
    let i = match state.renditions.iter().position(|r| r.name == name) {
        Some(i) => i,
        None => {
            // Video before audio, sources before rungs: the order listings show.
            let is_source = name == source_rendition_name(kind);
            let at = state
                .renditions
                .iter()
                .position(|r| match kind {
                    TrackKind::Video => r.kind == TrackKind::Audio || is_source,
                    TrackKind::Audio => r.kind == TrackKind::Audio && is_source,
                })
                .unwrap_or(state.renditions.len());
            state.renditions.insert(
                at,
                Rendition {
                    name: name.to_string(),
                    kind,
                    window: RenditionWindow::new(config.window()),
                    playlist: None,
                },
            );
            at
        }
    };
    &mut state.renditions[i]
}

impl MediaSink for StreamPackager {
    fn begin_session(&mut self, anchor: WallClockAnchor) {
        let output = Arc::clone(&self.output);
        let mut state = output.lock();
        self.flush_all(&mut state);
        for r in &mut state.renditions {
            r.window.mark_discontinuity();
        }
        // Continue the timeline after whatever ended last.
        let end_ms = self
            .video
            .iter()
            .map(|t| t.end_ms)
            .chain(self.audio.iter().map(|t| t.end_ms))
            .max()
            .unwrap_or(0);
        self.clock = SessionClock {
            offset_ms: end_ms,
            first_dts_ms: None,
            wall_base: anchor.wall,
            anchor,
        };
        for t in &mut self.video {
            t.started = false;
            t.starts.clear();
        }
        for t in &mut self.audio {
            t.started = false;
            t.next_dts = None;
            t.starts.clear();
        }
        state.live = true;
        self.output.notify();
    }

    fn push(&mut self, event: MediaEvent) {
        let output = Arc::clone(&self.output);
        let mut state = output.lock();
        match event {
            MediaEvent::VideoConfig(config) => self.on_video_config(&mut state, 0, config),
            MediaEvent::AudioConfig(config) => self.on_audio_config(&mut state, 0, config),
            MediaEvent::Unit(unit) => match unit.kind {
                TrackKind::Video => self.on_video_unit(&mut state, 0, unit),
                TrackKind::Audio => self.on_audio_unit(&mut state, 0, unit),
            },
        }
    }

    fn end_session(&mut self) {
        let output = Arc::clone(&self.output);
        let mut state = output.lock();
        self.flush_all(&mut state);
        state.live = false;
        self.publish(&mut state, None, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::{Orientation, Projection, StreamDef};

    const FRAME_MS: f64 = 1000.0 / 30.0;

    fn packager() -> (StreamPackager, Arc<StreamOutput>) {
        let output = Arc::new(StreamOutput::new(StreamDef {
            slug: "cam".into(),
            projection: Projection::Equirect,
            orientation: Orientation::default(),
            ladder: "test".into(),
        }));
        let config = PackagerConfig {
            part_target: Duration::from_millis(200),
            segment_target: Duration::from_secs(2),
            window_segments: 10,
        };
        let p = StreamPackager::new(
            config,
            Arc::clone(&output),
            Arc::new(LatencyStats::default()),
        );
        (p, output)
    }

    fn avc(width: u32) -> Arc<AvcConfig> {
        Arc::new(AvcConfig {
            record: Bytes::from_static(&[1, 0x64, 0, 0x28, 0xff, 0xe0, 0]),
            sps: vec![],
            pps: vec![],
            profile_idc: 0x64,
            constraint_flags: 0,
            level_idc: 0x28,
            width,
            height: width / 2,
            frame_rate: Some(30.0),
        })
    }

    fn frame(i: u64, cts_ms: i64) -> AccessUnit {
        let dts = (i as f64 * FRAME_MS).round() as i64;
        AccessUnit {
            kind: TrackKind::Video,
            dts,
            pts: dts + cts_ms,
            timebase: 1000,
            keyframe: i % 60 == 0,
            data: Bytes::from(vec![0u8; 100]),
            received: Instant::now(),
        }
    }

    /// (msn, duration, PDT) of each complete segment of `name`.
    fn segments(output: &StreamOutput, name: &str) -> Vec<(u64, f64, SystemTime)> {
        let st = output.lock();
        st.rendition(name)
            .map(|r| {
                r.window
                    .segments()
                    .map(|s| (s.msn, s.duration, s.program_date_time))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn aac() -> Arc<AacConfig> {
        Arc::new(AacConfig {
            asc: Bytes::from_static(&[0x11, 0x90]),
            object_type: 2,
            sample_rate: 48_000,
            channels: 2,
        })
    }

    /// (tfdt, sample count, declared duration in ticks) of every part of `name`.
    fn audio_parts(output: &StreamOutput, name: &str) -> Vec<(u64, u32, i64)> {
        use crate::packager::fmp4::reader::{path, u32_at};
        let st = output.lock();
        let rendition = st.rendition(name).expect("rendition");
        let segments: Vec<_> = rendition.window.segments().cloned().collect();
        segments
            .iter()
            .flat_map(|s| s.parts.iter())
            .map(|part| {
                let tfdt = path(&part.data, &[b"moof", b"traf", b"tfdt"]).body;
                let base = u64::from_be_bytes(tfdt[4..12].try_into().expect("64-bit tfdt"));
                let trun = path(&part.data, &[b"moof", b"traf", b"trun"]).body;
                let declared = (part.duration * 48_000.0).round() as i64;
                (base, u32_at(trun, 4), declared)
            })
            .collect()
    }

    #[test]
    fn audio_that_steps_back_into_packaged_audio_keeps_a_contiguous_timeline() {
        let (mut p, output) = packager();
        p.begin_session(WallClockAnchor::now());
        p.push(MediaEvent::AudioConfig(aac()));
        // A publisher looping a file whose audio is a frame longer than its video: at
        // each loop the audio timestamps step back by 20 ms, into audio already sent.
        let frames = 48_000 * 12 / 1024;
        for i in 0..frames {
            let loops = i / 200;
            let ms = (i * 1024 * 1000 + 24_000) / 48_000 - loops * 20;
            p.push(MediaEvent::Unit(AccessUnit {
                kind: TrackKind::Audio,
                dts: ms,
                pts: ms,
                timebase: 1000,
                keyframe: true,
                data: Bytes::from(vec![2u8; 50]),
                received: Instant::now(),
            }));
        }
        let parts = audio_parts(&output, "audio");
        assert!(parts.len() > 40, "{parts:?}");
        for pair in parts.windows(2) {
            let ((t0, n0, d0), (t1, _, _)) = (pair[0], pair[1]);
            assert_eq!(i64::from(n0) * 1024, d0, "declared duration {pair:?}");
            assert_eq!(
                t0 + u64::from(n0) * 1024,
                t1,
                "the timeline is not contiguous: {pair:?}"
            );
        }
        // One frame per loop (two loops) was dropped, and nothing else: the timeline
        // has no gaps either.
        let packaged: u32 = parts.iter().map(|p| p.1).sum();
        let (first, (last, last_n, _)) = (parts[0].0, parts[parts.len() - 1]);
        assert_eq!(
            u64::from(packaged) * 1024,
            last + u64::from(last_n) * 1024 - first
        );
        assert_eq!(p.audio[0].overlaps_dropped, 2);
    }

    #[test]
    fn a_late_rung_without_b_frames_is_cut_where_the_source_is() {
        let (mut p, output) = packager();
        p.begin_session(WallClockAnchor::now());
        let rung = p.declare_rungs(&["r1".to_string()], &[])[0];
        p.push(MediaEvent::VideoConfig(avc(1920)));
        p.push_rung(rung, MediaEvent::VideoConfig(avc(960)));
        // The source has B-frames (pts 67 ms after dts); the rung has none and comes
        // out of its encoder 8 frames late, with the source's presentation times.
        let delay = 8;
        for i in 0..(60 * 5 + delay) {
            if i < 60 * 5 {
                p.push(MediaEvent::Unit(frame(i, 67)));
            }
            if let Some(j) = i.checked_sub(delay) {
                let source = frame(j, 67);
                let unit = AccessUnit {
                    dts: source.pts,
                    data: Bytes::from(vec![1u8; 40]),
                    ..source
                };
                p.push_rung(rung, MediaEvent::Unit(unit));
            }
        }
        let source = segments(&output, "video");
        let rung = segments(&output, "r1");
        assert!(source.len() >= 4, "{source:?}");
        assert_eq!(source.len(), rung.len(), "{source:?}\n{rung:?}");
        for (s, r) in source.iter().zip(&rung) {
            assert_eq!(s.0, r.0, "msn");
            assert!((s.1 - r.1).abs() < 0.0015, "durations {s:?} {r:?}");
            assert_eq!(s.2, r.2, "PROGRAM-DATE-TIME");
        }
        let multivariant = output.lock().multivariant.clone().expect("multivariant");
        let text = String::from_utf8_lossy(&multivariant);
        assert!(text.contains("RESOLUTION=960x480"), "{text}");
        assert!(text.contains("RESOLUTION=1920x960"), "{text}");
    }

    #[test]
    fn a_rung_that_starts_mid_segment_joins_at_the_next_source_segment() {
        let (mut p, output) = packager();
        p.begin_session(WallClockAnchor::now());
        let rung = p.declare_rungs(&["r1".to_string()], &[])[0];
        p.push(MediaEvent::VideoConfig(avc(1920)));
        p.push_rung(rung, MediaEvent::VideoConfig(avc(960)));
        for i in 0..(60 * 6) {
            p.push(MediaEvent::Unit(frame(i, 0)));
            // The rung's encoder starts at frame 75 with a keyframe of its own.
            if i >= 75 {
                let mut unit = frame(i, 0);
                unit.keyframe = unit.keyframe || i == 75;
                p.push_rung(rung, MediaEvent::Unit(unit));
            }
        }
        let source = segments(&output, "video");
        let rung = segments(&output, "r1");
        // The source's segment 1 starts at frame 60 (before the rung), segment 2 at
        // frame 120: the rung's first segment is msn 2 with the source's time.
        assert_eq!(rung.first().map(|s| s.0), Some(2), "{rung:?}");
        for r in &rung {
            let s = source
                .iter()
                .find(|s| s.0 == r.0)
                .expect("same msn in source");
            assert_eq!(s.2, r.2, "PROGRAM-DATE-TIME of msn {}", r.0);
        }
    }

    #[test]
    fn a_withdrawn_rung_leaves_the_multivariant_playlist() {
        let (mut p, output) = packager();
        p.begin_session(WallClockAnchor::now());
        let rung = p.declare_rungs(&["r1".to_string()], &[])[0];
        p.push(MediaEvent::VideoConfig(avc(1920)));
        for i in 0..150 {
            p.push(MediaEvent::Unit(frame(i, 0)));
        }
        // The rung never produced anything: no multivariant playlist yet.
        assert!(output.lock().multivariant.is_none());
        p.withdraw_rung(rung);
        let text = output.lock().multivariant.clone().expect("multivariant");
        let text = String::from_utf8_lossy(&text).to_string();
        assert!(!text.contains("r1.m3u8"), "{text}");
        assert!(text.contains("video.m3u8"), "{text}");
    }
}
