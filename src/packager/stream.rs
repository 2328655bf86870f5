//! One stream's packager: media events in, published parts, segments and playlists out.
//!
//! A thin coordinator over the rooms: [`super::segmenter`] decides where segments and
//! parts start, [`super::timeline`] places samples on the stream timeline,
//! [`super::fmp4`] writes the boxes, [`super::window`] holds what is published, and
//! [`super::publish`] renders the playlists once per change.
//!
//! Sessions: a *publish session* runs from [`StreamPackager::begin_session`] to
//! [`StreamPackager::end_session`]; a *live session* is one or more publish sessions
//! joined in one playlist (a reconnect or a takeover continues it, with a
//! discontinuity), ended by [`StreamPackager::end_live_session`] (EXT-X-ENDLIST). The
//! next publish session after that starts a new live session with fresh playlists.

use std::sync::Arc;
use std::time::Duration;

use super::fmp4::{self, AudioInit, VideoInit};
use super::latency::LatencyStats;
use super::layout::Layout;
use super::output::{source_rendition_name, OutputState, StreamOutput};
use super::publish::{self, AudioListing, CutTarget, VideoListing};
use super::segmenter::cut::Admit;
use super::segmenter::{Cut, SegmentCut, SegmentStart, Segmenter, TimedSample, VideoCuts};
use super::timeline::{AudioPlacement, Frame, MediaTime, SessionClock, VIDEO_TIMESCALE};
use super::track::{segment_state, AudioTrack, VideoTrack};
use super::window::WindowConfig;
use crate::media::{AacConfig, AccessUnit, MediaEvent, TrackKind, VideoConfig, WallClockAnchor};

pub use super::track::TrackRef;

const VIDEO_TRACK_ID: u32 = 1;
const AUDIO_TRACK_ID: u32 = 2;

/// Segment and part shape.
#[derive(Clone, Copy, Debug)]
pub struct PackagerConfig {
    pub part_target: Duration,
    pub segment_target: Duration,
    pub window_segments: usize,
    /// PART-HOLD-BACK in part targets (`hls.part_hold_back_parts`).
    pub part_hold_back_parts: f64,
}

impl PackagerConfig {
    fn window(&self) -> WindowConfig {
        WindowConfig {
            part_target: self.part_target.as_secs_f64(),
            segment_target: self.segment_target.as_secs_f64(),
            window_segments: self.window_segments,
            part_hold_back_parts: self.part_hold_back_parts,
        }
    }
}

/// `d` in ticks of `timescale`, to the nearest tick.
fn ticks(d: Duration, timescale: u32) -> u64 {
    let nanos = d.as_nanos() * u128::from(timescale);
    u64::try_from((nanos + 500_000_000) / 1_000_000_000).unwrap_or(u64::MAX)
}

/// The packager of one stream: the source renditions plus any transcoded rungs, all
/// cut where the source video cuts.
pub struct StreamPackager {
    config: PackagerConfig,
    output: Arc<StreamOutput>,
    latency: Arc<LatencyStats>,
    layout: Layout,
    clock: SessionClock,
    /// `[0]` is the source video (`video`), the rest are rungs.
    video: Vec<VideoTrack>,
    /// `[0]` is the source audio (`audio`), the rest are rungs.
    audio: Vec<AudioTrack>,
    /// A publish session is running.
    live: bool,
    /// The live session ended: the playlists carry EXT-X-ENDLIST, media is dropped,
    /// and the next publish session starts a new live session.
    ended: bool,
}

impl StreamPackager {
    /// A packager writing into `output`, signaling `layout` until
    /// [`StreamPackager::set_layout`] changes it.
    pub fn new(
        config: PackagerConfig,
        output: Arc<StreamOutput>,
        latency: Arc<LatencyStats>,
        layout: Layout,
    ) -> Self {
        let source = VideoTrack::new(
            source_rendition_name(TrackKind::Video),
            ticks(config.part_target, VIDEO_TIMESCALE),
            VideoCuts::leader(ticks(config.segment_target, VIDEO_TIMESCALE)),
        );
        Self {
            config,
            output,
            latency,
            layout,
            clock: SessionClock::new(WallClockAnchor::now()),
            video: vec![source],
            audio: vec![AudioTrack::new(source_rendition_name(TrackKind::Audio))],
            live: false,
            ended: false,
        }
    }

    /// The layout signaled now (or from the next keyframe on, after a change).
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Changes the 360° signaling. The same layout again does nothing. While a
    /// publisher is live, every video rendition switches to a new init segment version
    /// carrying the new boxes (flat: no `st3d`/`sv3d`/`vexu`) at the next keyframe of
    /// the source: a segment boundary is forced there without waiting for the segment
    /// target, and the new segment is preceded by EXT-X-DISCONTINUITY (in every
    /// rendition, so discontinuity sequences stay aligned) and a new EXT-X-MAP; the
    /// multivariant playlist is rendered again at once, so `REQ-VIDEO-LAYOUT` follows
    /// the new projection (absent for flat). While not live, the change applies from
    /// the next publish session on.
    pub fn set_layout(&mut self, layout: Layout) {
        if layout == self.layout {
            return;
        }
        self.layout = layout;
        if self.live {
            let output = Arc::clone(&self.output);
            let mut state = output.lock();
            state.multivariant = self.render_multivariant(&state);
            state.wake(None);
            self.output.notify();
        }
    }

    /// A publisher starts or takes over: what follows is a new timeline. The segments
    /// left open are completed, and the timeline continues after whatever ended last,
    /// so decode times never go back.
    ///
    /// Within a live session (no [`StreamPackager::end_live_session`] since the last
    /// call) the playlists go on, the join marked with EXT-X-DISCONTINUITY. After
    /// `end_live_session` this starts a new live session: every window is emptied (old
    /// segments dropped, no EXT-X-ENDLIST), media sequence numbers keep increasing (no
    /// URI is reused) and the discontinuity sequence continues.
    pub fn begin_session(&mut self, anchor: WallClockAnchor) {
        let output = Arc::clone(&self.output);
        let mut state = output.lock();
        self.flush_all(&mut state);
        let new_live_session = std::mem::take(&mut self.ended);
        for r in &mut state.renditions {
            if new_live_session {
                r.window.restart();
            } else {
                r.window.mark_discontinuity();
            }
        }
        let start = self
            .video
            .iter()
            .map(|t| t.timeline.end())
            .chain(self.audio.iter().map(|t| t.timeline.end()))
            .fold(MediaTime::new(0, VIDEO_TIMESCALE), MediaTime::max);
        self.clock = SessionClock::new(anchor);
        for t in &mut self.video {
            t.timeline.begin_session(start);
            t.cuts.begin_session();
        }
        for t in &mut self.audio {
            t.timeline.begin_session(start);
            t.cuts.begin_session();
        }
        self.live = true;
        state.live = true;
        if new_live_session {
            self.publish(&mut state, None, true);
        } else {
            state.wake(None);
            self.output.notify();
        }
    }

    /// One event of the current publish session, in arrival order. Dropped after
    /// [`StreamPackager::end_live_session`] until the next `begin_session`.
    pub fn push(&mut self, event: MediaEvent) {
        if self.ended {
            tracing::debug!(stream = %self.output.slug(), "media after the live session ended; dropped");
            return;
        }
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

    /// The publisher left (or was replaced): publishes what is complete (a frame
    /// waiting for its duration gets the last one's) and keeps the window served.
    pub fn end_session(&mut self) {
        let output = Arc::clone(&self.output);
        let mut state = output.lock();
        self.flush_all(&mut state);
        self.live = false;
        state.live = false;
        self.publish(&mut state, None, true);
    }

    /// The live session is over (the publisher did not come back in time, or the
    /// stream was stopped): ends the publish session if one runs, publishes what is
    /// complete and adds EXT-X-ENDLIST to every media playlist (full and delta
    /// renderings), so players stop instead of stalling. Requests held for a segment or
    /// part that will now never come are woken at once: the window reports every
    /// segment final ([`super::window::RenditionWindow::segment_complete`]). The window
    /// stays served. Idempotent.
    pub fn end_live_session(&mut self) {
        let output = Arc::clone(&self.output);
        let mut state = output.lock();
        self.flush_all(&mut state);
        for r in &mut state.renditions {
            r.window.end_playlist();
        }
        self.live = false;
        self.ended = true;
        state.live = false;
        self.publish(&mut state, None, true);
    }

    /// Declares the rungs of the session that starts: these are listed in the
    /// multivariant playlist once they have media, earlier rungs no longer are.
    /// Returns the track of each name, in order.
    pub fn declare_rungs(&mut self, video: &[String], audio: &[String]) -> Vec<TrackRef> {
        let part_target = ticks(self.config.part_target, VIDEO_TIMESCALE);
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
                    let cuts = VideoCuts::follower();
                    self.video.push(VideoTrack::new(name, part_target, cuts));
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

    /// One event of a transcoded rung (what its encoder produced). Dropped after
    /// [`StreamPackager::end_live_session`] until the next `begin_session`.
    pub fn push_rung(&mut self, track: TrackRef, event: MediaEvent) {
        if self.ended {
            return;
        }
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

    fn on_video_config(&mut self, state: &mut OutputState, i: usize, config: Arc<VideoConfig>) {
        if self.video[i].config.as_deref() == Some(&*config) {
            return;
        }
        // New parameters start a new segment with a new init segment (EXT-X-MAP).
        self.flush(state, TrackRef::Video(i));
        let track = &mut self.video[i];
        track.config = Some(config);
        track.cuts.restart();
        if i == 0 {
            track.announced = true;
        }
        self.write_video_init(state, i);
    }

    /// Makes an init segment of the current parameters and layout the one of the
    /// video rendition's next segments.
    fn write_video_init(&mut self, state: &mut OutputState, i: usize) {
        let layout = self.layout;
        let track = &mut self.video[i];
        let Some(config) = &track.config else {
            return;
        };
        let init = fmp4::video_init_segment(&VideoInit {
            track_id: VIDEO_TRACK_ID,
            timescale: VIDEO_TIMESCALE,
            config,
            projection: layout.projection,
            orientation: layout.orientation,
        });
        publish::rendition(state, &track.name, TrackKind::Video, self.config.window())
            .window
            .set_init(init);
        track.init_layout = Some(layout);
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
        publish::rendition(state, &track.name, TrackKind::Audio, self.config.window())
            .window
            .set_init(init);
        track.segmenter = Segmenter::new(ticks(self.config.part_target, config.sample_rate), false);
        track.timeline.set_sample_rate(config.sample_rate);
        track.config = Some(config);
        if i == 0 {
            track.announced = true;
        }
    }

    fn on_video_unit(&mut self, state: &mut OutputState, i: usize, unit: AccessUnit) {
        let layout = self.layout;
        let track = &mut self.video[i];
        if track.config.is_none() {
            return;
        }
        let peek = track.timeline.peek_pts(&self.clock, &unit);
        let join = match track.cuts.admit(unit.keyframe, peek, VIDEO_TIMESCALE) {
            Admit::Drop => return,
            Admit::Package { join } => join,
        };
        let (dts, pts) = track.timeline.map(&mut self.clock, &unit);
        let frame = Frame {
            dts,
            composition_offset: i32::try_from(pts - dts).unwrap_or(0),
            keyframe: unit.keyframe,
            data: unit.data,
            received: unit.received,
        };
        let mut cuts = Vec::new();
        // This frame tells the held one's duration; it goes into the segment in
        // progress before this one can start the next.
        if let Some(prev) = track.timeline.hold(frame) {
            track.segmenter.push(prev, false, &mut cuts);
        }
        let cut = track.cuts.starts_segment(
            unit.keyframe,
            pts,
            VIDEO_TIMESCALE,
            segment_state(&track.segmenter),
            join,
            track.init_outdated(layout),
        );
        let mut announce = None;
        if let Some(cut) = cut {
            if i == 0 {
                announce = Some(SegmentStart {
                    pts: MediaTime::new(pts, VIDEO_TIMESCALE),
                    msn: next_segment_msn(state, &track.name, &track.segmenter),
                    new_layout: cut.new_layout,
                });
            }
            track.segmenter.finish_segment(&mut cuts);
        }
        if let Some(start) = join {
            align_msn(state, &track.name, start.msn);
        }
        if let Some(start) = announce {
            self.announce_start(start, false);
        }
        let ended = self.write_cuts(state, TrackRef::Video(i), cuts);
        if let Some(cut) = cut {
            self.open_segment(state, TrackRef::Video(i), cut);
        }
        if let Some(ended) = ended {
            self.publish_rendition(state, TrackRef::Video(i), ended);
        }
    }

    fn on_audio_unit(&mut self, state: &mut OutputState, i: usize, unit: AccessUnit) {
        let video_leads = self.video[0].config.is_some();
        let segment_target = self.config.segment_target;
        let track = &mut self.audio[i];
        if track.config.is_none() {
            return;
        }
        // The source audio leads an audio-only stream.
        let leads = i == 0 && !video_leads;
        let timescale = track.timeline.timescale();
        let peek = track.timeline.peek(&self.clock, &unit);
        let join = match track.cuts.admit(leads, peek, timescale) {
            Admit::Drop => return,
            Admit::Package { join } => join,
        };
        let mapped = track.timeline.map(&mut self.clock, &unit);
        let dts = match track.timeline.place(mapped) {
            AudioPlacement::At(dts) => dts,
            AudioPlacement::Overlap(ticks) => {
                state.discarded_frames += 1;
                tracing::debug!(
                    rendition = %track.name,
                    overlap_ms = ticks * 1000 / i64::from(timescale),
                    dropped = track.timeline.overlaps_dropped(),
                    "audio frame overlaps the packaged audio; dropped"
                );
                return;
            }
        };
        let cut = track.cuts.starts_segment(
            leads,
            mapped,
            timescale,
            segment_state(&track.segmenter),
            ticks(segment_target, timescale),
            join,
        );
        let mut before = Vec::new();
        let mut announce = None;
        if let Some(cut) = cut {
            if leads {
                announce = Some(SegmentStart {
                    pts: MediaTime::new(mapped, timescale),
                    msn: next_segment_msn(state, &track.name, &track.segmenter),
                    new_layout: cut.new_layout,
                });
            }
            track.segmenter.finish_segment(&mut before);
        }
        let before = self.write_cuts(state, TrackRef::Audio(i), before);
        if let Some(cut) = cut {
            self.open_segment(state, TrackRef::Audio(i), cut);
        }
        let track = &mut self.audio[i];
        let mut after = Vec::new();
        track.segmenter.push(
            TimedSample {
                dts,
                duration: AacConfig::SAMPLES_PER_FRAME,
                composition_offset: 0,
                keyframe: true,
                data: unit.data,
                received: unit.received,
            },
            false,
            &mut after,
        );
        if let Some(start) = join {
            align_msn(state, &track.name, start.msn);
        }
        if let Some(start) = announce {
            self.announce_start(start, true);
        }
        let after = self.write_cuts(state, TrackRef::Audio(i), after);
        if before.is_some() || after.is_some() {
            let ended = before == Some(true) || after == Some(true);
            self.publish_rendition(state, TrackRef::Audio(i), ended);
        }
    }

    /// The leader started a segment: every follower starts one there too.
    fn announce_start(&mut self, start: SegmentStart, from_audio: bool) {
        for t in self.video.iter_mut().skip(1) {
            t.cuts.follow(start);
        }
        let followers = usize::from(from_audio);
        for t in self.audio.iter_mut().skip(followers) {
            t.cuts.follow(start);
        }
    }

    /// What changes where a rendition's new segment starts, after the previous one
    /// was written and before the new one's first part: a video rendition whose init
    /// segment predates the current layout switches to a new one, and a layout change
    /// is marked with EXT-X-DISCONTINUITY.
    fn open_segment(&mut self, state: &mut OutputState, track: TrackRef, cut: SegmentCut) {
        let name = match track {
            TrackRef::Video(i) => {
                if self.video[i].init_outdated(self.layout) {
                    self.write_video_init(state, i);
                }
                &self.video[i].name
            }
            TrackRef::Audio(i) => &self.audio[i].name,
        };
        if cut.new_layout {
            if let Some(r) = state.rendition_mut(name) {
                r.window.mark_discontinuity();
            }
        }
    }

    /// Writes what the segmenter decided into the window; `None` when there was
    /// nothing, else whether a segment ended. The caller publishes.
    fn write_cuts(
        &mut self,
        state: &mut OutputState,
        track: TrackRef,
        cuts: Vec<Cut>,
    ) -> Option<bool> {
        if cuts.is_empty() {
            return None;
        }
        let window = self.config.window();
        let clock = &self.clock;
        let latency = &self.latency;
        let measure_latency = matches!(track, TrackRef::Video(0) | TrackRef::Audio(0));
        let ended = match track {
            TrackRef::Video(i) => {
                let t = &mut self.video[i];
                let target = CutTarget {
                    name: &t.name,
                    kind: TrackKind::Video,
                    track_id: VIDEO_TRACK_ID,
                    timescale: VIDEO_TIMESCALE,
                    measure_latency,
                };
                let timeline = &t.timeline;
                publish::write_cuts(
                    state,
                    window,
                    &target,
                    &mut t.sequence,
                    cuts,
                    |ticks| timeline.wall_at(clock, ticks),
                    latency,
                )
            }
            TrackRef::Audio(i) => {
                let t = &mut self.audio[i];
                let target = CutTarget {
                    name: &t.name,
                    kind: TrackKind::Audio,
                    track_id: AUDIO_TRACK_ID,
                    timescale: t.timeline.timescale(),
                    measure_latency,
                };
                let timeline = &t.timeline;
                publish::write_cuts(
                    state,
                    window,
                    &target,
                    &mut t.sequence,
                    cuts,
                    |ticks| timeline.wall_at(clock, ticks),
                    latency,
                )
            }
        };
        Some(ended)
    }

    /// Packages what a track holds back (a video frame waiting for its duration is
    /// given the last one's), ends its segment and publishes.
    fn flush(&mut self, state: &mut OutputState, track: TrackRef) {
        let mut cuts = Vec::new();
        match track {
            TrackRef::Video(i) => {
                let Some(t) = self.video.get_mut(i) else {
                    return;
                };
                if let Some(prev) = t.timeline.release() {
                    t.segmenter.push(prev, false, &mut cuts);
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
        if let Some(ended) = self.write_cuts(state, track, cuts) {
            self.publish_rendition(state, track, ended);
        }
    }

    fn flush_all(&mut self, state: &mut OutputState) {
        for i in 0..self.video.len() {
            self.flush(state, TrackRef::Video(i));
        }
        for i in 0..self.audio.len() {
            self.flush(state, TrackRef::Audio(i));
        }
    }

    /// Publishes a change of one rendition: its playlists, and the multivariant
    /// playlist when a segment ended (bandwidths may have changed).
    fn publish_rendition(&self, state: &mut OutputState, track: TrackRef, segment_ended: bool) {
        let name = match track {
            TrackRef::Video(i) => self.video[i].name.as_str(),
            TrackRef::Audio(i) => self.audio[i].name.as_str(),
        };
        self.publish(state, Some(name), segment_ended);
    }

    /// Renders the playlists again after a change (`changed`: only that rendition's
    /// media playlist; `None`: all) and wakes blocked requests.
    fn publish(&self, state: &mut OutputState, changed: Option<&str>, multivariant_too: bool) {
        publish::render_media_playlists(state, changed);
        if multivariant_too || state.multivariant.is_none() {
            state.multivariant = self.render_multivariant(state);
        }
        state.wake(changed);
        self.output.notify();
    }

    fn render_multivariant(&self, state: &OutputState) -> Option<bytes::Bytes> {
        let videos: Vec<VideoListing<'_>> = self
            .video
            .iter()
            .map(|t| VideoListing {
                name: &t.name,
                config: t.config.as_deref(),
                announced: t.announced,
                measured_frame_rate: t.timeline.measured_frame_rate(),
            })
            .collect();
        let audios: Vec<AudioListing<'_>> = self
            .audio
            .iter()
            .map(|t| AudioListing {
                name: &t.name,
                config: t.config.as_deref(),
                announced: t.announced,
            })
            .collect();
        publish::render_multivariant(state, &videos, &audios, self.layout.projection)
    }
}

/// The msn the next segment of leading rendition `name` will get.
fn next_segment_msn(state: &OutputState, name: &str, segmenter: &Segmenter) -> u64 {
    let Some(window) = state.rendition(name).map(|r| &r.window) else {
        return 0;
    };
    // Parts of the segment in progress may still be on their way to the window.
    let in_progress_unpublished = segmenter.segment_open() && window.open_segment().is_none();
    window.next_msn() + u64::from(in_progress_unpublished)
}

/// A follower joining the stream takes the leader's msn for its first segment, so the
/// same msn means the same time in every rendition. Only an empty window can jump:
/// within a playlist, segment numbers are consecutive.
fn align_msn(state: &mut OutputState, name: &str, msn: u64) {
    if let Some(r) = state.rendition_mut(name) {
        r.window.start_at_msn(msn);
    }
}

/// The hub's view of the packager, until the per-stream task calls the inherent
/// methods directly.
#[cfg(test)]
mod tests {
    use std::time::{Instant, SystemTime};

    use bytes::Bytes;

    use super::*;
    use crate::packager::fmp4::reader::{path, u32_at};
    use crate::streams::{Orientation, Projection};

    const FRAME_MS: f64 = 1000.0 / 30.0;

    const EQUIRECT: Layout = Layout {
        projection: Projection::Equirect,
        orientation: Orientation {
            yaw: 0.0,
            pitch: 0.0,
            roll: 0.0,
        },
    };

    /// The live defaults: 200 ms parts in 2 s segments, ten kept.
    fn packager() -> (StreamPackager, Arc<StreamOutput>) {
        packager_with(Duration::from_millis(200), Duration::from_secs(2), 10)
    }

    fn packager_with(
        part_target: Duration,
        segment_target: Duration,
        window_segments: usize,
    ) -> (StreamPackager, Arc<StreamOutput>) {
        let output = Arc::new(StreamOutput::new("cam"));
        let config = PackagerConfig {
            part_target,
            segment_target,
            window_segments,
            part_hold_back_parts: 3.0,
        };
        let p = StreamPackager::new(
            config,
            Arc::clone(&output),
            Arc::new(LatencyStats::default()),
            EQUIRECT,
        );
        (p, output)
    }

    fn avc(width: u32) -> Arc<VideoConfig> {
        Arc::new(VideoConfig::Avc(crate::media::AvcConfig {
            record: Bytes::from_static(&[1, 0x64, 0, 0x28, 0xff, 0xe0, 0]),
            sps: vec![],
            pps: vec![],
            profile_idc: 0x64,
            constraint_flags: 0,
            level_idc: 0x28,
            width,
            height: width / 2,
            frame_rate: Some(30.0),
        }))
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
        assert_eq!(p.audio[0].timeline.overlaps_dropped(), 2);
    }

    /// OBS stamps frame n at n × 33 333 333 ns cut to whole milliseconds, so the
    /// keyframe 2 s in is at 1999 ms (tests/data/obs-studio-*.bin). With 2 s keyframes
    /// and a 2 s target, the first segment ended 4 s in and raised TARGETDURATION.
    #[test]
    fn keyframes_a_millisecond_short_of_the_target_cut_as_obs_stamps_them() {
        let (mut p, output) = packager();
        p.begin_session(WallClockAnchor::now());
        p.push(MediaEvent::VideoConfig(avc(640)));
        // 6 s of video, the keyframe 6 s in closing the third segment.
        for i in 0..60 * 3 + 1 {
            let dts = i * 33_333_333 / 1_000_000;
            p.push(MediaEvent::Unit(AccessUnit {
                dts,
                pts: dts + 66,
                ..frame(i as u64, 0)
            }));
        }
        let durations: Vec<f64> = segments(&output, "video").iter().map(|s| s.1).collect();
        assert_eq!(durations.len(), 3, "{durations:?}");
        assert!(
            durations.iter().all(|d| (d - 2.0).abs() < 0.0015),
            "{durations:?}"
        );
        assert_eq!(
            output
                .lock()
                .rendition("video")
                .map(|r| r.window.target_duration()),
            Some(2)
        );
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

    // ------------------------------------------------------------ exact timebases

    /// `tfdt` and the sample durations of a part.
    fn part_times(part: &[u8]) -> (u64, Vec<u32>) {
        let tfdt = path(part, &[b"moof", b"traf", b"tfdt"]).body;
        let base = u64::from_be_bytes(tfdt[4..12].try_into().expect("64-bit tfdt"));
        let trun = path(part, &[b"moof", b"traf", b"trun"]).body;
        let durations = (0..u32_at(trun, 4) as usize)
            .map(|k| u32_at(trun, 12 + 16 * k))
            .collect();
        (base, durations)
    }

    /// (tfdt, sample durations) of every part of `name` in the window, in order.
    fn window_part_times(output: &StreamOutput, name: &str) -> Vec<(u64, Vec<u32>)> {
        let st = output.lock();
        let window = &st.rendition(name).expect("rendition").window;
        window
            .segments()
            .chain(window.open_segment())
            .flat_map(|s| s.parts.iter())
            .map(|p| part_times(&p.data))
            .collect()
    }

    fn unit(kind: TrackKind, dts: i64, timebase: u32, keyframe: bool) -> AccessUnit {
        AccessUnit {
            kind,
            dts,
            pts: dts,
            timebase,
            keyframe,
            data: Bytes::from(vec![0u8; 20]),
            received: Instant::now(),
        }
    }

    #[test]
    fn an_hour_of_29_97_fps_rtsp_video_keeps_exact_decode_times() {
        let (mut p, output) = packager();
        p.begin_session(WallClockAnchor::now());
        p.push(MediaEvent::VideoConfig(avc(1920)));
        // RTP's 90 kHz clock, 3003 ticks a frame, keyframes every 60 frames, for an
        // hour; the camera's clock starts anywhere.
        let frames: i64 = 3600 * 30_000 / 1001;
        for i in 0..frames {
            let dts = 123_456_789 + i * 3003;
            p.push(MediaEvent::Unit(unit(
                TrackKind::Video,
                dts,
                90_000,
                i % 60 == 0,
            )));
        }
        p.end_session();
        let parts = window_part_times(&output, "video");
        assert!(parts.len() > 50, "{}", parts.len());
        let mut expected_next = None;
        for (tfdt, durations) in &parts {
            assert_eq!(tfdt % 3003, 0, "tfdt {tfdt} is not on a frame");
            if let Some(next) = expected_next {
                assert_eq!(*tfdt, next, "a gap or overlap between parts");
            }
            assert!(durations.iter().all(|d| *d == 3003), "{durations:?}");
            expected_next = Some(tfdt + 3003 * durations.len() as u64);
        }
        // The last frame ends exactly an hour of frames after the first.
        assert_eq!(expected_next, Some(3003 * frames as u64));
    }

    #[test]
    fn millisecond_video_is_placed_on_whole_milliseconds() {
        let (mut p, output) = packager();
        p.begin_session(WallClockAnchor::now());
        p.push(MediaEvent::VideoConfig(avc(1920)));
        for i in 0..200 {
            p.push(MediaEvent::Unit(frame(i, 0)));
        }
        p.end_session();
        let mut dts: Vec<u64> = Vec::new();
        for (tfdt, durations) in window_part_times(&output, "video") {
            let mut t = tfdt;
            for d in durations {
                dts.push(t);
                t += u64::from(d);
            }
        }
        // RTMP's 30 fps: 0, 33, 67, 100 ms… at 90 ticks a millisecond.
        let expected: Vec<u64> = (0..200)
            .map(|i| (i as f64 * FRAME_MS).round() as u64 * 90)
            .collect();
        assert_eq!(dts, expected);
    }

    #[test]
    fn rtsp_audio_at_48_khz_is_placed_to_the_sample() {
        let (mut p, output) = packager();
        p.begin_session(WallClockAnchor::now());
        p.push(MediaEvent::VideoConfig(avc(1920)));
        p.push(MediaEvent::AudioConfig(aac()));
        // Both RTP clocks start together; the first audio frame is 1001 samples in
        // (20.854 ms, no whole millisecond: through milliseconds it would land on 960).
        let audio_at = |k: i64| 1001 + k * 1024;
        let mut k = 0;
        for i in 0..(30 * 6) {
            let video_dts = i * 3000;
            p.push(MediaEvent::Unit(unit(
                TrackKind::Video,
                video_dts,
                90_000,
                i % 60 == 0,
            )));
            while audio_at(k) * 90_000 / 48_000 <= video_dts {
                p.push(MediaEvent::Unit(unit(
                    TrackKind::Audio,
                    audio_at(k),
                    48_000,
                    true,
                )));
                k += 1;
            }
        }
        p.end_session();
        let parts = window_part_times(&output, "audio");
        assert_eq!(parts[0].0, 1001, "first audio tfdt");
        let mut samples = Vec::new();
        for (tfdt, durations) in parts {
            samples.extend((0..durations.len() as u64).map(|n| tfdt + n * 1024));
        }
        let expected: Vec<u64> = (0..k).map(|k| audio_at(k) as u64).collect();
        assert_eq!(samples, expected);
    }

    // ------------------------------------------------------------ live sessions

    /// A wall clock and the instant it was read, so PROGRAM-DATE-TIME is exact.
    fn fixed_anchor() -> WallClockAnchor {
        WallClockAnchor {
            wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            instant: Instant::now(),
        }
    }

    /// Frame `i` at 30 fps (90 kHz, exact), a keyframe every second, arriving at the
    /// anchor's instant.
    fn exact_frame(anchor: &WallClockAnchor, i: i64) -> AccessUnit {
        AccessUnit {
            received: anchor.instant,
            ..unit(TrackKind::Video, i * 3000, 90_000, i % 30 == 0)
        }
    }

    /// 500 ms parts in 1 s segments, eight kept.
    fn short_packager() -> (StreamPackager, Arc<StreamOutput>) {
        packager_with(Duration::from_millis(500), Duration::from_secs(1), 8)
    }

    fn playlist(output: &StreamOutput, name: &str) -> (String, String) {
        let st = output.lock();
        let p = st
            .rendition(name)
            .and_then(|r| r.playlist.clone())
            .expect("playlist");
        (
            String::from_utf8_lossy(&p.full).into_owned(),
            String::from_utf8_lossy(&p.delta).into_owned(),
        )
    }

    /// Eight seconds of video, then the live session ends.
    fn ended_stream() -> (StreamPackager, Arc<StreamOutput>) {
        let (mut p, output) = short_packager();
        let anchor = fixed_anchor();
        p.begin_session(anchor);
        p.push(MediaEvent::VideoConfig(avc(1920)));
        for i in 0..240 {
            p.push(MediaEvent::Unit(exact_frame(&anchor, i)));
        }
        p.end_session();
        p.end_live_session();
        (p, output)
    }

    const ENDED_HEAD: &str = "\
#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:1
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6.0,PART-HOLD-BACK=1.500
#EXT-X-PART-INF:PART-TARGET=0.500
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-DISCONTINUITY-SEQUENCE:0
";

    const ENDED_TAIL: &str = "\
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.000Z
#EXTINF:1.00000,
video/seg-2.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:23.000Z
#EXTINF:1.00000,
video/seg-3.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:24.000Z
#EXTINF:1.00000,
video/seg-4.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:25.000Z
#EXT-X-PART:DURATION=0.50000,URI=\"video/part-5-0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.50000,URI=\"video/part-5-1.m4s\"
#EXTINF:1.00000,
video/seg-5.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:26.000Z
#EXT-X-PART:DURATION=0.50000,URI=\"video/part-6-0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.50000,URI=\"video/part-6-1.m4s\"
#EXTINF:1.00000,
video/seg-6.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:27.000Z
#EXT-X-PART:DURATION=0.50000,URI=\"video/part-7-0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.50000,URI=\"video/part-7-1.m4s\"
#EXTINF:1.00000,
video/seg-7.m4s
#EXT-X-ENDLIST
";

    #[test]
    fn an_ended_live_session_has_endlist_in_full_and_delta_playlists() {
        let (_p, output) = ended_stream();
        let (full, delta) = playlist(&output, "video");
        let expected_full = format!(
            "{ENDED_HEAD}\
#EXT-X-MAP:URI=\"video/init-0.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z
#EXTINF:1.00000,
video/seg-0.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:21.000Z
#EXTINF:1.00000,
video/seg-1.m4s
{ENDED_TAIL}"
        );
        assert_eq!(full, expected_full);
        // 8 s of media: the segment ending more than CAN-SKIP-UNTIL (6 s) before the
        // end is skipped.
        let expected_delta = format!(
            "{ENDED_HEAD}\
#EXT-X-SKIP:SKIPPED-SEGMENTS=1
#EXT-X-MAP:URI=\"video/init-0.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:21.000Z
#EXTINF:1.00000,
video/seg-1.m4s
{ENDED_TAIL}"
        );
        assert_eq!(delta, expected_delta);
    }

    #[test]
    fn requests_held_for_the_future_are_answered_at_once_when_the_session_ends() {
        use crate::api::blocking::{
            missing_part, playlist_readiness, Directives, PartWait, Readiness,
        };
        let (mut p, output) = short_packager();
        let anchor = fixed_anchor();
        p.begin_session(anchor);
        p.push(MediaEvent::VideoConfig(avc(1920)));
        for i in 0..100 {
            p.push(MediaEvent::Unit(exact_frame(&anchor, i)));
        }
        let next = Directives {
            msn: Some(4),
            part: None,
            skip: false,
        };
        let hinted = |output: &StreamOutput| {
            let st = output.lock();
            let w = &st.rendition("video").expect("video").window;
            (playlist_readiness(&next, w), missing_part(w, 4, 0))
        };
        assert_eq!(hinted(&output), (Readiness::Wait, PartWait::Hold));
        let changes = output.subscribe();
        p.end_live_session();
        assert!(
            changes.has_changed().expect("output alive"),
            "held requests were not woken"
        );
        assert_eq!(hinted(&output), (Readiness::Ready, PartWait::Never));
        let (full, _) = playlist(&output, "video");
        assert!(
            full.ends_with("video/seg-3.m4s\n#EXT-X-ENDLIST\n"),
            "{full}"
        );
        assert!(!full.contains("PRELOAD-HINT"), "{full}");
        // Media after the end goes nowhere until a new session begins.
        p.push(MediaEvent::Unit(exact_frame(&anchor, 100)));
        assert_eq!(playlist(&output, "video").0, full);
    }

    #[test]
    fn a_new_live_session_after_endlist_starts_a_fresh_playlist() {
        let (mut p, output) = ended_stream();
        let anchor = fixed_anchor();
        p.begin_session(anchor);
        // Fresh: nothing of the old session, numbers go on, no ENDLIST.
        let (full, _) = playlist(&output, "video");
        let fresh = "\
#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:1
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6.0,PART-HOLD-BACK=1.500
#EXT-X-PART-INF:PART-TARGET=0.500
#EXT-X-MEDIA-SEQUENCE:8
#EXT-X-DISCONTINUITY-SEQUENCE:1
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"video/part-8-0.m4s\"
";
        assert_eq!(full, fresh);
        assert!(output.lock().multivariant.is_none());
        // The new publisher's clock starts at 0 again.
        p.push(MediaEvent::VideoConfig(avc(1920)));
        for i in 0..61 {
            p.push(MediaEvent::Unit(exact_frame(&anchor, i)));
        }
        let (full, _) = playlist(&output, "video");
        assert!(full.contains("#EXT-X-MEDIA-SEQUENCE:8\n#EXT-X-DISCONTINUITY-SEQUENCE:1\n#EXT-X-MAP:URI=\"video/init-0.mp4\"\n"), "{full}");
        assert!(full.contains("video/seg-9.m4s\n"), "{full}");
        for gone in ["ENDLIST", "#EXT-X-DISCONTINUITY\n", "seg-7.m4s", "part-7-"] {
            assert!(!full.contains(gone), "{gone} in {full}");
        }
        // Decode times go on after the old session's.
        assert_eq!(window_part_times(&output, "video")[0].0, 240 * 3000);
        assert!(output.lock().multivariant.is_some());
    }

    #[test]
    fn a_reconnect_within_the_live_session_continues_the_playlist() {
        let (mut p, output) = short_packager();
        let anchor = fixed_anchor();
        p.begin_session(anchor);
        p.push(MediaEvent::VideoConfig(avc(1920)));
        for i in 0..61 {
            p.push(MediaEvent::Unit(exact_frame(&anchor, i)));
        }
        p.end_session();
        p.begin_session(anchor);
        p.push(MediaEvent::VideoConfig(avc(1920)));
        for i in 0..31 {
            p.push(MediaEvent::Unit(exact_frame(&anchor, i)));
        }
        let (full, _) = playlist(&output, "video");
        assert!(full.contains("#EXT-X-MEDIA-SEQUENCE:0\n"), "{full}");
        assert!(
            full.contains("video/seg-2.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME"),
            "{full}"
        );
        assert!(!full.contains("ENDLIST"), "{full}");
    }

    // ------------------------------------------------------------ layout changes

    fn init_of(output: &StreamOutput, name: &str, id: u32) -> Bytes {
        let st = output.lock();
        let window = &st.rendition(name).expect("rendition").window;
        window.init(id).cloned().expect("init segment")
    }

    fn has_box(data: &[u8], fourcc: &[u8; 4]) -> bool {
        data.windows(4).any(|w| w == fourcc)
    }

    fn multivariant_text(output: &StreamOutput) -> String {
        let m = output.lock().multivariant.clone().expect("multivariant");
        String::from_utf8_lossy(&m).into_owned()
    }

    const FLAT: Layout = Layout {
        projection: Projection::Flat,
        orientation: Orientation {
            yaw: 0.0,
            pitch: 0.0,
            roll: 0.0,
        },
    };

    #[test]
    fn a_layout_change_takes_effect_at_the_next_keyframe_with_a_new_map() {
        let (mut p, output) = packager();
        let anchor = fixed_anchor();
        p.begin_session(anchor);
        let rung = p.declare_rungs(&["r1".to_string()], &[])[0];
        p.push(MediaEvent::VideoConfig(avc(1920)));
        p.push_rung(rung, MediaEvent::VideoConfig(avc(960)));
        p.push(MediaEvent::AudioConfig(aac()));
        let mut audio_frames = 0;
        let mut push_until = |p: &mut StreamPackager, from: i64, to: i64| {
            for i in from..to {
                let f = exact_frame(&anchor, i);
                p.push(MediaEvent::Unit(f.clone()));
                p.push_rung(rung, MediaEvent::Unit(f));
                // 48 kHz audio up to this frame's time.
                while audio_frames * 1024 * 90_000 / 48_000 <= i * 3000 {
                    let mut a = unit(TrackKind::Audio, audio_frames * 1024, 48_000, true);
                    a.received = anchor.instant;
                    p.push(MediaEvent::Unit(a));
                    audio_frames += 1;
                }
            }
        };
        // Keyframes every second, 2 s segments: segment 1 starts at frame 60.
        push_until(&mut p, 0, 66);
        assert!(multivariant_text(&output).contains("REQ-VIDEO-LAYOUT=\"PROJ-EQUI\""));
        p.set_layout(FLAT);
        // The multivariant playlist follows at once.
        let text = multivariant_text(&output);
        assert!(!text.contains("REQ-VIDEO-LAYOUT"), "{text}");
        assert!(text.contains("#EXT-X-VERSION:9\n"), "{text}");
        // The next keyframe (frame 90, 1 s into segment 1) starts segment 2 at once.
        push_until(&mut p, 66, 200);
        let (full, _) = playlist(&output, "video");
        assert!(
            full.contains(
                "#EXTINF:1.00000,
video/seg-1.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI=\"video/init-1.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:23.000Z
#EXT-X-PART:DURATION=0.20000,URI=\"video/part-2-0.m4s\",INDEPENDENT=YES
"
            ),
            "{full}"
        );
        assert_eq!(full.matches("#EXT-X-MAP").count(), 2, "{full}");
        // The rung switches at the same segment; audio marks the discontinuity there
        // too (one discontinuity sequence for all), keeping its own init segment.
        let (rung_text, _) = playlist(&output, "r1");
        assert!(
            rung_text
                .contains("r1/seg-1.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"r1/init-1.mp4\"\n"),
            "{rung_text}"
        );
        let (audio_text, _) = playlist(&output, "audio");
        assert!(
            audio_text.contains("audio/seg-1.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME"),
            "{audio_text}"
        );
        assert_eq!(audio_text.matches("#EXT-X-MAP").count(), 1, "{audio_text}");
        // The old init segment is spherical, the new one is not.
        for name in ["video", "r1"] {
            let (old, new) = (init_of(&output, name, 0), init_of(&output, name, 1));
            assert!(has_box(&old, b"sv3d") && has_box(&old, b"st3d"), "{name}");
            assert!(
                !has_box(&new, b"sv3d") && !has_box(&new, b"st3d") && !has_box(&new, b"vexu"),
                "{name}"
            );
        }
        // The same layout again changes nothing.
        p.set_layout(FLAT);
        push_until(&mut p, 200, 300);
        let (full, _) = playlist(&output, "video");
        assert_eq!(full.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{full}");
        assert_eq!(full.matches("#EXT-X-MAP").count(), 2, "{full}");
    }

    #[test]
    fn a_layout_change_while_not_live_applies_to_the_next_session() {
        let (mut p, output) = packager();
        let anchor = fixed_anchor();
        p.begin_session(anchor);
        p.push(MediaEvent::VideoConfig(avc(1920)));
        for i in 0..121 {
            p.push(MediaEvent::Unit(exact_frame(&anchor, i)));
        }
        p.end_session();
        let before = multivariant_text(&output);
        p.set_layout(FLAT);
        // Nothing is live: what is served stays as it was.
        assert_eq!(multivariant_text(&output), before);
        assert!(before.contains("REQ-VIDEO-LAYOUT"));
        p.begin_session(anchor);
        p.push(MediaEvent::VideoConfig(avc(1920)));
        for i in 0..61 {
            p.push(MediaEvent::Unit(exact_frame(&anchor, i)));
        }
        let (full, _) = playlist(&output, "video");
        assert!(
            full.contains(
                "video/seg-2.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"video/init-1.mp4\"\n"
            ),
            "{full}"
        );
        assert!(!has_box(&init_of(&output, "video", 1), b"sv3d"));
        assert!(!multivariant_text(&output).contains("REQ-VIDEO-LAYOUT"));
    }
}
