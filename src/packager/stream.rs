//! One stream's packager: media events in, published parts, segments and playlists out.
//!
//! Timeline: every publish session's timestamps are shifted to continue where the
//! previous session ended, so decode times never go backwards across a takeover or a
//! reconnect; the join is still marked with EXT-X-DISCONTINUITY. Video and audio share
//! the shift, which keeps them in sync, and share the wall-clock anchor, which gives
//! aligned segments equal PROGRAM-DATE-TIME.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::fmp4::{self, AudioInit, VideoInit};
use super::latency::LatencyStats;
use super::media_playlist::{self, RenditionReport, RenditionUris};
use super::multivariant::{self, AudioVariant, VideoVariant};
use super::output::{rendition_name, OutputState, RenderedPlaylist, Rendition, StreamOutput};
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

struct VideoTrack {
    config: Option<Arc<AvcConfig>>,
    segmenter: Segmenter,
    pending: Option<PendingFrame>,
    /// No frame is packaged in a session before its first keyframe.
    started: bool,
    last_duration: u32,
    sequence: u32,
    /// Stream time (ms) just past the last frame.
    end_ms: i64,
    frames: u64,
    frame_ticks: u64,
}

struct AudioTrack {
    config: Option<Arc<AacConfig>>,
    segmenter: Segmenter,
    /// Where the next frame would start if the source is contiguous (track ticks).
    next_dts: Option<i64>,
    /// Video cut a segment here (stream ms); audio follows at its next frame.
    cut_at_ms: Option<i64>,
    sequence: u32,
    end_ms: i64,
}

/// The packager of one stream.
pub struct StreamPackager {
    config: PackagerConfig,
    output: Arc<StreamOutput>,
    latency: Arc<LatencyStats>,
    clock: SessionClock,
    video: VideoTrack,
    audio: AudioTrack,
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
            video: VideoTrack {
                config: None,
                segmenter: Segmenter::new(ticks(config.part_target, VIDEO_TIMESCALE), true),
                pending: None,
                started: false,
                last_duration: 3000,
                sequence: 0,
                end_ms: 0,
                frames: 0,
                frame_ticks: 0,
            },
            audio: AudioTrack {
                config: None,
                segmenter: Segmenter::new(0, false),
                next_dts: None,
                cut_at_ms: None,
                sequence: 0,
                end_ms: 0,
            },
        }
    }

    fn on_video_config(&mut self, state: &mut OutputState, config: Arc<AvcConfig>) {
        if self.video.config.as_deref() == Some(&*config) {
            return;
        }
        // New parameters start a new segment with a new init segment (EXT-X-MAP).
        self.flush_video(state);
        let init = fmp4::video_init_segment(&VideoInit {
            track_id: VIDEO_TRACK_ID,
            timescale: VIDEO_TIMESCALE,
            config: &config,
            projection: self.output.stream.projection,
            orientation: self.output.stream.orientation,
        });
        rendition(state, TrackKind::Video, self.config)
            .window
            .set_init(init);
        self.video.started = false;
        self.video.config = Some(config);
    }

    fn on_audio_config(&mut self, state: &mut OutputState, config: Arc<AacConfig>) {
        if self.audio.config.as_deref() == Some(&*config) {
            return;
        }
        self.flush_audio(state);
        let init = fmp4::audio_init_segment(&AudioInit {
            track_id: AUDIO_TRACK_ID,
            config: &config,
        });
        rendition(state, TrackKind::Audio, self.config)
            .window
            .set_init(init);
        self.audio.segmenter =
            Segmenter::new(ticks(self.config.part_target, config.sample_rate), false);
        self.audio.next_dts = None;
        self.audio.config = Some(config);
    }

    fn on_video_unit(&mut self, state: &mut OutputState, unit: AccessUnit) {
        if self.video.config.is_none() {
            return;
        }
        if !self.video.started {
            if !unit.keyframe {
                return;
            }
            self.video.started = true;
        }
        let (dts_ms, pts_ms) = self.clock.map_ms(&unit);
        let dts = dts_ms.saturating_mul(i64::from(VIDEO_TIMESCALE / 1000));
        let composition_offset = i32::try_from((pts_ms - dts_ms).saturating_mul(90)).unwrap_or(0);

        let mut cuts = Vec::new();
        if let Some(prev) = self.video.pending.take() {
            let duration = u32::try_from(dts - prev.dts)
                .ok()
                .filter(|d| *d > 0)
                .unwrap_or(self.video.last_duration);
            self.video.last_duration = duration;
            self.video.frames += 1;
            self.video.frame_ticks += u64::from(duration);
            self.video
                .segmenter
                .push(timed(prev, duration), false, &mut cuts);
        }
        // A keyframe at or after the target ends the segment now, without waiting for
        // this frame's duration.
        let segment_target = ticks(self.config.segment_target, VIDEO_TIMESCALE);
        if unit.keyframe
            && self.video.segmenter.segment_open()
            && self.video.segmenter.segment_duration() >= segment_target
        {
            self.video.segmenter.finish_segment(&mut cuts);
            self.audio.cut_at_ms = Some(dts_ms);
        }
        self.video.end_ms = dts_ms;
        self.video.pending = Some(PendingFrame {
            dts,
            composition_offset,
            keyframe: unit.keyframe,
            data: unit.data,
            received: unit.received,
        });
        self.apply_cuts(state, TrackKind::Video, cuts);
    }

    fn on_audio_unit(&mut self, state: &mut OutputState, unit: AccessUnit) {
        let Some(config) = self.audio.config.clone() else {
            return;
        };
        // Audio waits for the video's first keyframe so both renditions start their
        // first segment together (same msn, same start time).
        if self.video.config.is_some() && !self.video.started {
            return;
        }
        let (dts_ms, _) = self.clock.map_ms(&unit);
        let rate = i64::from(config.sample_rate);
        let frame = i64::from(AacConfig::SAMPLES_PER_FRAME);
        let from_ms = dts_ms.saturating_mul(rate) / 1000;
        // Millisecond timestamps jitter by up to 1 ms; a contiguous source is counted
        // in samples instead, and only a real gap re-anchors the track.
        let dts = match self.audio.next_dts {
            Some(expected) if (from_ms - expected).abs() <= frame / 2 => expected,
            _ => from_ms,
        };
        self.audio.next_dts = Some(dts + frame);
        self.audio.end_ms = dts_ms + frame * 1000 / rate.max(1);

        let starts_segment = match self.audio.cut_at_ms {
            Some(at) if dts_ms >= at => {
                self.audio.cut_at_ms = None;
                true
            }
            None if self.video.config.is_none() => {
                self.audio.segmenter.segment_duration()
                    >= ticks(self.config.segment_target, config.sample_rate)
            }
            _ => false,
        };
        let mut cuts = Vec::new();
        self.audio.segmenter.push(
            TimedSample {
                dts,
                duration: AacConfig::SAMPLES_PER_FRAME,
                composition_offset: 0,
                keyframe: true,
                data: unit.data,
                received: unit.received,
            },
            starts_segment && self.audio.segmenter.segment_open(),
            &mut cuts,
        );
        self.apply_cuts(state, TrackKind::Audio, cuts);
    }

    /// Publishes what the segmenter decided.
    fn apply_cuts(&mut self, state: &mut OutputState, kind: TrackKind, cuts: Vec<Cut>) {
        if cuts.is_empty() {
            return;
        }
        let now = Instant::now();
        let (track_id, timescale) = match kind {
            TrackKind::Video => (VIDEO_TRACK_ID, VIDEO_TIMESCALE),
            TrackKind::Audio => (
                AUDIO_TRACK_ID,
                self.audio.config.as_ref().map_or(48_000, |c| c.sample_rate),
            ),
        };
        let mut segment_ended = false;
        for cut in cuts {
            match cut {
                Cut::Part(part) => {
                    let sequence = match kind {
                        TrackKind::Video => &mut self.video.sequence,
                        TrackKind::Audio => &mut self.audio.sequence,
                    };
                    *sequence = sequence.wrapping_add(1);
                    let base = u64::try_from(part.base_dts).unwrap_or(0);
                    let data = fmp4::fragment(*sequence, track_id, base, &part.samples);
                    let start_ms = part.base_dts.saturating_mul(1000) / i64::from(timescale);
                    let pdt = self.clock.wall_at_ms(start_ms);
                    let seconds = part.duration as f64 / f64::from(timescale);
                    rendition(state, kind, self.config).window.add_part(
                        data,
                        seconds,
                        part.independent,
                        pdt,
                    );
                    self.latency.record_all(
                        kind,
                        part.received
                            .iter()
                            .map(|r| now.saturating_duration_since(*r)),
                    );
                }
                Cut::SegmentEnd => {
                    rendition(state, kind, self.config).window.end_segment();
                    segment_ended = true;
                }
            }
        }
        self.publish(state, segment_ended);
    }

    /// Packages the frame that waits for its duration, guessing it from the last one.
    fn flush_video(&mut self, state: &mut OutputState) {
        let mut cuts = Vec::new();
        if let Some(prev) = self.video.pending.take() {
            let duration = self.video.last_duration;
            self.video.end_ms = prev.dts / 90 + i64::from(duration / 90);
            self.video
                .segmenter
                .push(timed(prev, duration), false, &mut cuts);
        }
        self.video.segmenter.finish_segment(&mut cuts);
        self.apply_cuts(state, TrackKind::Video, cuts);
    }

    fn flush_audio(&mut self, state: &mut OutputState) {
        let mut cuts = Vec::new();
        self.audio.segmenter.finish_segment(&mut cuts);
        self.audio.cut_at_ms = None;
        self.apply_cuts(state, TrackKind::Audio, cuts);
    }

    /// Re-renders the playlists after a change and wakes blocked requests.
    fn publish(&self, state: &mut OutputState, multivariant_too: bool) {
        let positions: Vec<(TrackKind, Option<super::window::Position>)> = state
            .renditions
            .iter()
            .map(|r| (r.kind, r.window.position()))
            .collect();
        for r in &mut state.renditions {
            let reports: Vec<(String, Option<super::window::Position>)> = positions
                .iter()
                .filter(|(k, _)| *k != r.kind)
                .map(|(k, p)| (format!("{}.m3u8", rendition_name(*k)), *p))
                .collect();
            let reports: Vec<RenditionReport<'_>> = reports
                .iter()
                .map(|(uri, position)| RenditionReport {
                    uri,
                    position: *position,
                })
                .collect();
            let uris = RenditionUris { dir: r.name() };
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
        let bitrates = |kind| {
            state
                .renditions
                .iter()
                .find(|r| r.kind == kind)
                .and_then(|r| r.window.bitrates())
        };
        let measured_frame_rate = (self.video.frame_ticks > 0).then(|| {
            self.video.frames as f64 * f64::from(VIDEO_TIMESCALE) / self.video.frame_ticks as f64
        });
        let video = match (&self.video.config, bitrates(TrackKind::Video)) {
            (Some(config), Some(rates)) => Some(VideoVariant {
                config,
                bitrates: rates,
                measured_frame_rate,
                projection: self.output.stream.projection,
            }),
            _ => None,
        };
        let audio = match (&self.audio.config, bitrates(TrackKind::Audio)) {
            (Some(config), Some(rates)) => Some(AudioVariant {
                config,
                bitrates: rates,
            }),
            _ => None,
        };
        // Players read the multivariant playlist once: it appears only when every
        // announced track has media, or a player would never learn of the late one.
        let announced_missing = (self.video.config.is_some() && video.is_none())
            || (self.audio.config.is_some() && audio.is_none());
        if announced_missing {
            return None;
        }
        multivariant::render(video.as_ref(), audio.as_ref())
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

/// The rendition of `kind`, created with its window on first use.
fn rendition(state: &mut OutputState, kind: TrackKind, config: PackagerConfig) -> &mut Rendition {
    if state.rendition_mut(kind).is_none() {
        state.renditions.push(Rendition {
            kind,
            window: RenditionWindow::new(config.window()),
            playlist: None,
        });
        // Video first: it is the main rendition in every listing.
        state.renditions.sort_by_key(|r| r.kind != TrackKind::Video);
    }
    match state.renditions.iter().position(|r| r.kind == kind) {
        Some(i) => &mut state.renditions[i],
        None => unreachable!("rendition inserted above"),
    }
}

impl MediaSink for StreamPackager {
    fn begin_session(&mut self, anchor: WallClockAnchor) {
        let output = Arc::clone(&self.output);
        let mut state = output.lock();
        self.flush_video(&mut state);
        self.flush_audio(&mut state);
        for r in &mut state.renditions {
            r.window.mark_discontinuity();
        }
        // Continue the timeline after whatever ended last.
        self.clock = SessionClock {
            offset_ms: self.video.end_ms.max(self.audio.end_ms),
            first_dts_ms: None,
            wall_base: anchor.wall,
            anchor,
        };
        self.video.started = false;
        self.audio.next_dts = None;
        state.live = true;
        self.output.notify();
    }

    fn push(&mut self, event: MediaEvent) {
        let output = Arc::clone(&self.output);
        let mut state = output.lock();
        match event {
            MediaEvent::VideoConfig(config) => self.on_video_config(&mut state, config),
            MediaEvent::AudioConfig(config) => self.on_audio_config(&mut state, config),
            MediaEvent::Unit(unit) => match unit.kind {
                TrackKind::Video => self.on_video_unit(&mut state, unit),
                TrackKind::Audio => self.on_audio_unit(&mut state, unit),
            },
        }
    }

    fn end_session(&mut self) {
        let output = Arc::clone(&self.output);
        let mut state = output.lock();
        self.flush_video(&mut state);
        self.flush_audio(&mut state);
        state.live = false;
        self.publish(&mut state, true);
    }
}
