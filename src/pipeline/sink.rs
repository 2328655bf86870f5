//! The sink of a stream with a ladder: the source goes to the packager as it arrives,
//! and into the ladder pipelines, whose rungs come back as more renditions.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::audio::AudioLadder;
use super::profile::{self, LadderProfile, RungPlan};
use super::reproject::Reprojection;
use super::video::VideoLadder;
use super::{lock, LadderEvents, Pace};
use crate::media::{AacConfig, AccessUnit, MediaEvent, TrackKind, VideoConfig, WallClockAnchor};
use crate::packager::latency::LatencyStats;
use crate::packager::output::{AudioRungReport, RungReport, TranscodeReport, TranscodeState};
use crate::packager::stream::TrackRef;
use crate::packager::{Layout, Outputs, PackagerConfig, StreamOutput, StreamPackager};
use crate::streams::worker::{MediaSink, SinkFactory};
use crate::streams::{Projection, StreamDef};

/// How long a leaving publisher's encoders may drain before the pipeline stops.
const DRAIN_LIMIT: Duration = Duration::from_millis(500);

/// How long an offline ladder (a file) may drain: every queued frame is encoded, so
/// this only bounds a stuck pipeline.
const OFFLINE_DRAIN_LIMIT: Duration = Duration::from_secs(120);

/// A rung that keeps dropping logs at most this often.
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Source audio frames a reprojected stream holds back while its video is being
/// encoded (about 10 s of 48 kHz AAC); when full the oldest is let through.
const HELD_AUDIO_FRAMES: usize = 500;

/// Makes each stream's sink: the packager alone, wrapped so a ladder can start
/// whenever the stream's profile asks for one.
pub struct LadderSinkFactory {
    pub packager: PackagerConfig,
    pub outputs: Arc<Outputs>,
    pub latency: Arc<LatencyStats>,
    pub profiles: Arc<BTreeMap<String, LadderProfile>>,
}

impl SinkFactory for LadderSinkFactory {
    fn create(&self, stream: &Arc<StreamDef>) -> Box<dyn MediaSink> {
        let output = self.outputs.get_or_create(&stream.slug);
        let packager = StreamPackager::new(
            self.packager,
            Arc::clone(&output),
            Arc::clone(&self.latency),
            Layout::of(stream),
        );
        Box::new(LadderSink {
            packager: Arc::new(Mutex::new(packager)),
            output,
            outputs: Some(Arc::clone(&self.outputs)),
            profiles: Arc::clone(&self.profiles),
            stream: Arc::clone(stream),
            session: None,
            pace: Pace::Realtime,
            drain: DRAIN_LIMIT,
        })
    }
}

/// One stream's packager plus the ladder of the current publisher.
pub struct LadderSink {
    packager: Arc<Mutex<StreamPackager>>,
    output: Arc<StreamOutput>,
    /// Where `output` is published; it is removed from there when the stream goes.
    /// `None` for an offline sink, whose output nobody else sees.
    outputs: Option<Arc<Outputs>>,
    profiles: Arc<BTreeMap<String, LadderProfile>>,
    /// The newest definition; its ladder applies from the next publish session.
    stream: Arc<StreamDef>,
    session: Option<LadderSession>,
    /// Real time for publishers; offline for files (every frame encoded).
    pace: Pace,
    /// How long the ladders may drain when a session ends.
    drain: Duration,
}

/// The ladder of one publish session.
struct LadderSession {
    profile: LadderProfile,
    pace: Pace,
    events: Arc<RungEvents>,
    video: Option<VideoLadder>,
    audio: Option<AudioLadder>,
    /// Source parameters waiting for the first unit (its time is the pipeline's zero).
    video_config: Option<Arc<VideoConfig>>,
    audio_config: Option<Arc<AacConfig>>,
    /// The video rungs planned for the current source parameters.
    rungs: Vec<RungPlan>,
    /// The source parameters the ladders were built for.
    source_video: Option<Arc<VideoConfig>>,
    source_audio: Option<Arc<AacConfig>>,
    /// The stream reprojects ([`StreamDef::reprojects`], fixed for the session): the
    /// source video never reaches the packager, the `video` rendition is encoded.
    reprojects: bool,
    /// The orientation is turned into the pixels (and signalled as neutral).
    bakes: bool,
    /// Every rendition is an equi-angular cubemap (and carries no 360 signaling).
    cubes: bool,
    /// What `panoproject` does for the current source parameters.
    reprojection: Option<Reprojection>,
    /// Source audio waiting for the encoded video to reach its time (reprojecting
    /// only): the video leads the segment cuts, so the audio must not run ahead of
    /// it or it would miss the starts it follows.
    held_audio: VecDeque<AccessUnit>,
}

impl LadderSink {
    /// The sink of a file rather than a publisher (on-demand transcoding): the same
    /// packager and ladder rules, writing into `output`, which is published nowhere
    /// (invisible to `/hls`). The ladder runs [`Pace::Offline`]: every frame is
    /// encoded and [`MediaSink::push`] waits while the ladder's bounded input is full;
    /// ending the session drains every queued frame.
    pub fn offline(
        packager: PackagerConfig,
        output: Arc<StreamOutput>,
        profiles: Arc<BTreeMap<String, LadderProfile>>,
        stream: Arc<StreamDef>,
    ) -> Self {
        let packager = StreamPackager::new(
            packager,
            Arc::clone(&output),
            Arc::new(LatencyStats::default()),
            Layout::of(&stream),
        );
        LadderSink {
            packager: Arc::new(Mutex::new(packager)),
            output,
            outputs: None,
            profiles,
            stream,
            session: None,
            pace: Pace::Offline,
            drain: OFFLINE_DRAIN_LIMIT,
        }
    }

    fn stop_ladders(&mut self) {
        let drain = self.drain;
        if let Some(session) = self.session.as_mut() {
            if let Some(v) = session.video.take() {
                v.finish(drain);
            }
            if let Some(a) = session.audio.take() {
                a.finish(drain);
            }
            lock(&self.packager).end_rungs();
        }
    }

    fn on_video_config(&mut self, config: &Arc<VideoConfig>) {
        let drain = self.drain;
        let Some(session) = self.session.as_mut() else {
            return;
        };
        // Sources may repeat their parameters (RTSP cameras re-send them in band):
        // only a change rebuilds the ladder.
        if session.source_video.as_deref() == Some(&**config) {
            return;
        }
        session.source_video = Some(Arc::clone(config));
        if let Some(v) = session.video.take() {
            // New source parameters: a new plan (the size may have changed).
            v.finish(drain);
        }
        // The session's delivery stays as it began (a changed `cubemap` waits for the
        // next publisher, like the signaling).
        let delivered = StreamDef {
            cubemap: session.cubes,
            ..(*self.stream).clone()
        };
        session.reprojection = session
            .reprojects
            .then(|| Reprojection::for_stream(&delivered, config.width(), config.height()))
            .flatten();
        // A reprojected stream's rungs go down from the element's equirect output.
        let (projection, width, height) = match &session.reprojection {
            Some(r) => (Projection::Equirect, r.width, r.height),
            None => (self.stream.projection, config.width(), config.height()),
        };
        let mut plan = profile::plan(&session.profile, projection, width, height);
        for (name, reason) in &plan.skipped {
            tracing::warn!(stream = %self.stream.slug, rung = %name, %reason, "ladder rung skipped: the ladder never upscales");
        }
        let audio_names: Vec<String> = session
            .profile
            .audio
            .iter()
            .map(|a| a.name.clone())
            .collect();
        let video_names: Vec<String> = plan.rungs.iter().map(|r| r.name.clone()).collect();
        let mut tracks = lock(&self.packager).declare_rungs(&video_names, &audio_names);
        if let Some(r) = &session.reprojection {
            // The `video` rendition is plan index 0 and the packager's source track.
            plan.rungs
                .insert(0, r.top_rung(config.frame_rate(), &session.profile.preset));
            tracks.insert(0, TrackRef::Video(0));
        }
        session
            .events
            .set_tracks(&tracks, &plan.rungs, &session.profile);
        let skipped = (!plan.skipped.is_empty()).then(|| {
            let names: Vec<&str> = plan.skipped.iter().map(|(n, _)| n.as_str()).collect();
            format!(
                "skipped (would upscale the {}x{} source): {}",
                config.width(),
                config.height(),
                names.join(", ")
            )
        });
        session.events.report(|r| r.message = skipped);
        session.video_config = (!plan.rungs.is_empty()).then(|| Arc::clone(config));
        session.rungs = plan.rungs;
    }

    fn on_audio_config(&mut self, config: &Arc<AacConfig>) {
        let drain = self.drain;
        let Some(session) = self.session.as_mut() else {
            return;
        };
        if session.source_audio.as_deref() == Some(&**config) {
            return;
        }
        session.source_audio = Some(Arc::clone(config));
        if let Some(a) = session.audio.take() {
            a.finish(drain);
        }
        session.audio_config = (!session.profile.audio.is_empty()).then(|| Arc::clone(config));
    }
}

impl MediaSink for LadderSink {
    fn set_stream(&mut self, stream: &Arc<StreamDef>) {
        if stream.layout_differs(&self.stream) {
            let bakes = self.session.as_ref().is_some_and(|s| s.bakes);
            let cubes = self.session.as_ref().is_some_and(|s| s.cubes);
            lock(&self.packager).set_layout(signalled_layout(stream, bakes, cubes));
        }
        self.stream = Arc::clone(stream);
    }

    fn begin_session(&mut self, anchor: WallClockAnchor) {
        self.stop_ladders();
        self.session = None;
        let profile = match self.profiles.get(&self.stream.ladder) {
            Some(p) => p.clone(),
            None => {
                tracing::warn!(stream = %self.stream.slug, ladder = %self.stream.ladder, "unknown ladder: passing the source through alone");
                LadderProfile {
                    preset: "veryfast".into(),
                    rungs: Vec::new(),
                    audio: Vec::new(),
                }
            }
        };
        let reprojects = self.stream.reprojects();
        let bakes = reprojects && self.stream.bake_orientation;
        let cubes = reprojects && self.stream.cubemap;
        {
            let mut packager = lock(&self.packager);
            // Before the session starts, so its first init segment has it.
            packager.set_layout(signalled_layout(&self.stream, bakes, cubes));
            packager.declare_rungs(&[], &[]);
            packager.begin_session(anchor);
        }
        if profile.is_passthrough() && !reprojects {
            self.output.lock().transcode = None;
            return;
        }
        let events = Arc::new(RungEvents {
            packager: Arc::downgrade(&self.packager),
            output: Arc::clone(&self.output),
            slug: self.stream.slug.clone(),
            tracks: Mutex::new(RungTracks::default()),
            last_drop_log: Mutex::new(Vec::new()),
            video_reached_ns: AtomicI64::new(i64::MIN),
        });
        self.output.lock().transcode = Some(TranscodeReport {
            ladder: self.stream.ladder.clone(),
            state: TranscodeState::Running,
            message: None,
            rungs: Vec::new(),
            audio: Vec::new(),
        });
        self.session = Some(LadderSession {
            profile,
            pace: self.pace,
            events,
            video: None,
            audio: None,
            video_config: None,
            audio_config: None,
            rungs: Vec::new(),
            source_video: None,
            source_audio: None,
            reprojects,
            bakes,
            cubes,
            reprojection: None,
            held_audio: VecDeque::new(),
        });
    }

    fn push(&mut self, event: MediaEvent) {
        let reprojects = self.session.as_ref().is_some_and(|s| s.reprojects);
        let source_video = matches!(&event, MediaEvent::VideoConfig(_))
            || matches!(&event, MediaEvent::Unit(u) if u.kind == TrackKind::Video);
        let source_audio = matches!(&event, MediaEvent::Unit(u) if u.kind == TrackKind::Audio);
        if !reprojects || !(source_video || source_audio) {
            lock(&self.packager).push(event.clone());
        }
        match &event {
            MediaEvent::VideoConfig(c) => self.on_video_config(c),
            MediaEvent::AudioConfig(c) => self.on_audio_config(c),
            MediaEvent::Unit(unit) => {
                let Some(session) = self.session.as_mut() else {
                    return;
                };
                if reprojects && unit.kind == TrackKind::Audio {
                    session.hold_audio(unit.clone());
                } else {
                    session.feed(unit);
                }
            }
        }
        if let Some(session) = self.session.as_mut() {
            let reached = session.events.video_reached();
            session.release_audio(&self.packager, |u| reached.is_some_and(|r| nanos(u) <= r));
        }
    }

    fn end_session(&mut self) {
        self.stop_ladders();
        if let Some(session) = self.session.as_mut() {
            session.release_audio(&self.packager, |_| true);
        }
        if let Some(session) = self.session.take() {
            session.events.report(|r| {
                if r.state == TranscodeState::Running {
                    r.state = TranscodeState::Off;
                }
            });
        }
        lock(&self.packager).end_session();
    }

    fn end_live_session(&mut self) {
        lock(&self.packager).end_live_session();
    }

    fn playable_msn(&self) -> Option<u64> {
        let state = self.output.lock();
        state.multivariant.as_ref()?;
        let sources: Option<Vec<u64>> = state
            .renditions
            .iter()
            .filter(|r| r.name() == "video" || r.name() == "audio")
            .map(|r| r.window.last_complete_msn())
            .collect();
        sources?.into_iter().min()
    }

    fn close(&mut self, gone: bool) {
        self.stop_ladders();
        self.session = None;
        // At shutdown the ended playlists stay: a request woken by EXT-X-ENDLIST must
        // still find them, not a stream that looks deleted.
        if gone {
            if let Some(outputs) = &self.outputs {
                outputs.remove(&self.stream.slug);
            }
            self.output.close();
        }
    }

    fn held_bytes(&self) -> u64 {
        let held_audio: u64 = self.session.as_ref().map_or(0, |s| {
            s.held_audio.iter().map(|u| u.data.len() as u64).sum()
        });
        self.output.lock().held_bytes() + held_audio
    }
}

impl LadderSession {
    /// Holds a source audio frame until the encoded video reaches its time; when
    /// the hold is full its oldest frame goes on at once.
    fn hold_audio(&mut self, unit: AccessUnit) {
        if self.held_audio.len() == HELD_AUDIO_FRAMES {
            if let Some(oldest) = self.held_audio.pop_front() {
                self.events.passed_held_audio(oldest.clone());
                self.feed(&oldest);
            }
        }
        self.held_audio.push_back(unit);
    }

    /// Sends the held audio frames that `due` lets go, in order, to the packager and
    /// to the audio ladder.
    fn release_audio(
        &mut self,
        packager: &Mutex<StreamPackager>,
        due: impl Fn(&AccessUnit) -> bool,
    ) {
        while self.held_audio.front().is_some_and(&due) {
            let Some(unit) = self.held_audio.pop_front() else {
                break;
            };
            lock(packager).push(MediaEvent::Unit(unit.clone()));
            self.feed(&unit);
        }
    }

    /// Hands a source unit to its ladder, starting the ladder at the first keyframe.
    fn feed(&mut self, unit: &crate::media::AccessUnit) {
        let events: Arc<dyn LadderEvents> = self.events.clone();
        match unit.kind {
            TrackKind::Video => {
                if self.video.as_ref().is_some_and(|v| v.failed()) {
                    self.video = None;
                }
                if self.video.is_none() && unit.keyframe {
                    if let Some(config) = self.video_config.take() {
                        let started = match &self.reprojection {
                            Some(r) => VideoLadder::start_reprojected(
                                &config,
                                unit.dts,
                                unit.timebase,
                                &self.rungs,
                                self.pace,
                                events,
                                r,
                            ),
                            None => VideoLadder::start(
                                &config,
                                unit.dts,
                                unit.timebase,
                                &self.rungs,
                                self.pace,
                                events,
                            ),
                        };
                        match started {
                            Ok(v) => self.video = Some(v),
                            Err(e) => self.events.failed(e.to_string()),
                        }
                    }
                }
                if let Some(v) = self.video.as_mut() {
                    v.push(unit);
                }
            }
            TrackKind::Audio => {
                if self.audio.as_ref().is_some_and(|a| a.failed()) {
                    self.audio = None;
                }
                if self.audio.is_none() {
                    if let Some(config) = self.audio_config.take() {
                        match AudioLadder::start(
                            &config,
                            unit.dts,
                            unit.timebase,
                            &self.profile.audio,
                            self.pace,
                            events,
                        ) {
                            Ok(a) => self.audio = Some(a),
                            Err(e) => self.events.failed(e.to_string()),
                        }
                    }
                }
                if let Some(a) = self.audio.as_mut() {
                    a.push(unit);
                }
            }
        }
    }
}

/// Packager tracks of the current plan's rungs, by kind and plan index.
#[derive(Default)]
struct RungTracks {
    video: Vec<TrackRef>,
    audio: Vec<TrackRef>,
}

/// Where a session's rung output goes: the packager's rung tracks and the stream's
/// transcode report.
struct RungEvents {
    packager: Weak<Mutex<StreamPackager>>,
    output: Arc<StreamOutput>,
    slug: String,
    tracks: Mutex<RungTracks>,
    last_drop_log: Mutex<Vec<(TrackRef, Instant)>>,
    /// Presentation time (ns of the source clock) of the newest encoded `video` frame
    /// of a reprojected stream; `i64::MIN` before the first.
    video_reached_ns: AtomicI64,
}

/// What the packager signals for `stream` while the running session does (`bakes`)
/// or does not bake its orientation, and does (`cubes`) or does not make cubemaps: a
/// change of `bake_orientation` or `cubemap` reaches the pixels with the next
/// publisher, so the signaling waits for it too.
fn signalled_layout(stream: &StreamDef, bakes: bool, cubes: bool) -> Layout {
    Layout::of(&StreamDef {
        bake_orientation: bakes,
        cubemap: cubes,
        ..stream.clone()
    })
}

/// A unit's presentation time in nanoseconds of the source clock (audio and video
/// share it, each in its own timebase).
fn nanos(unit: &AccessUnit) -> i64 {
    let ns = i128::from(unit.pts) * 1_000_000_000 / i128::from(unit.timebase.max(1));
    i64::try_from(ns).unwrap_or(if ns < 0 { i64::MIN } else { i64::MAX })
}

impl RungEvents {
    /// How far the encoded `video` rendition has come (reprojecting streams).
    fn video_reached(&self) -> Option<i64> {
        let ns = self.video_reached_ns.load(Ordering::Acquire);
        (ns != i64::MIN).then_some(ns)
    }

    /// A held audio frame the full hold lets through ahead of the video.
    fn passed_held_audio(&self, unit: AccessUnit) {
        if let Some(packager) = self.packager.upgrade() {
            lock(&packager).push(MediaEvent::Unit(unit));
        }
    }

    fn set_tracks(&self, tracks: &[TrackRef], rungs: &[RungPlan], profile: &LadderProfile) {
        let mut t = lock(&self.tracks);
        t.video = tracks
            .iter()
            .copied()
            .filter(|t| matches!(t, TrackRef::Video(_)))
            .collect();
        t.audio = tracks
            .iter()
            .copied()
            .filter(|t| matches!(t, TrackRef::Audio(_)))
            .collect();
        drop(t);
        self.report(|r| {
            r.rungs = rungs
                .iter()
                .map(|p| RungReport {
                    name: p.name.clone(),
                    width: p.width,
                    height: p.height,
                    bitrate_kbps: p.bitrate_kbps,
                    codec: p.codec,
                    dropped_frames: 0,
                })
                .collect();
            r.audio = profile
                .audio
                .iter()
                .map(|a| AudioRungReport {
                    name: a.name.clone(),
                    bitrate_kbps: a.bitrate_kbps,
                    channels: a.channels,
                    dropped_frames: 0,
                })
                .collect();
        });
    }

    fn track(&self, kind: TrackKind, index: usize) -> Option<TrackRef> {
        let t = lock(&self.tracks);
        match kind {
            TrackKind::Video => t.video.get(index).copied(),
            TrackKind::Audio => t.audio.get(index).copied(),
        }
    }

    /// Edits the stream's transcode report.
    fn report(&self, edit: impl FnOnce(&mut TranscodeReport)) {
        if let Some(r) = self.output.lock().transcode.as_mut() {
            edit(r);
        }
    }

    /// Whether a drop on `track` should be logged now (at most once per interval).
    fn should_log_drop(&self, track: TrackRef) -> bool {
        let now = Instant::now();
        let mut log = lock(&self.last_drop_log);
        match log.iter_mut().find(|(t, _)| *t == track) {
            Some((_, at)) if now.duration_since(*at) < DROP_LOG_INTERVAL => false,
            Some((_, at)) => {
                *at = now;
                true
            }
            None => {
                log.push((track, now));
                true
            }
        }
    }
}

impl LadderEvents for RungEvents {
    fn encoded(&self, kind: TrackKind, index: usize, event: MediaEvent) {
        let (Some(packager), Some(track)) = (self.packager.upgrade(), self.track(kind, index))
        else {
            return;
        };
        if track == TrackRef::Video(0) {
            // The encoded `video` rendition of a reprojected stream: the source track.
            let reached = match &event {
                MediaEvent::Unit(u) => Some(nanos(u)),
                _ => None,
            };
            lock(&packager).push(event);
            if let Some(ns) = reached {
                self.video_reached_ns.fetch_max(ns, Ordering::AcqRel);
            }
            return;
        }
        lock(&packager).push_rung(track, event);
    }

    fn dropped(&self, kind: TrackKind, index: usize, frames: u64) {
        let Some(track) = self.track(kind, index) else {
            return;
        };
        let mut name = String::new();
        self.report(|r| match kind {
            TrackKind::Video => {
                if let Some(rung) = r.rungs.get_mut(index) {
                    rung.dropped_frames += frames;
                    name = rung.name.clone();
                }
            }
            TrackKind::Audio => {
                if let Some(rung) = r.audio.get_mut(index) {
                    rung.dropped_frames += frames;
                    name = rung.name.clone();
                }
            }
        });
        if self.should_log_drop(track) {
            tracing::warn!(stream = %self.slug, rung = %name, ?kind, "a rung is dropping frames: the machine cannot encode it in real time");
        }
    }

    fn failed(&self, message: String) {
        tracing::error!(stream = %self.slug, error = %message, "transcoding failed; the source rendition stays live");
        self.report(|r| {
            r.state = TranscodeState::Failed;
            r.message = Some(message);
        });
        let tracks: Vec<TrackRef> = {
            let t = lock(&self.tracks);
            t.video.iter().chain(&t.audio).copied().collect()
        };
        if let Some(packager) = self.packager.upgrade() {
            let mut p = lock(&packager);
            for track in tracks {
                p.withdraw_rung(track);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::media::AccessUnit;
    use crate::pipeline::profile::AudioRungConfig;

    fn factory() -> LadderSinkFactory {
        let mut profiles = profile::builtin_profiles();
        profiles.insert(
            "voice".into(),
            LadderProfile {
                preset: "ultrafast".into(),
                rungs: Vec::new(),
                audio: vec![AudioRungConfig {
                    name: "audio-32k".into(),
                    bitrate_kbps: 32,
                    channels: 1,
                }],
            },
        );
        LadderSinkFactory {
            packager: PackagerConfig {
                part_target: Duration::from_millis(200),
                segment_target: Duration::from_secs(2),
                window_segments: 5,
                part_hold_back_parts: 3.0,
            },
            outputs: Arc::new(Outputs::default()),
            latency: Arc::new(LatencyStats::default()),
            profiles: Arc::new(profiles),
        }
    }

    fn stream(ladder: &str) -> Arc<StreamDef> {
        Arc::new(StreamDef {
            ladder: ladder.into(),
            ..StreamDef::new("cam")
        })
    }

    fn aac_frame(i: i64) -> MediaEvent {
        MediaEvent::Unit(AccessUnit {
            kind: TrackKind::Audio,
            dts: i * 21,
            pts: i * 21,
            timebase: 1000,
            keyframe: true,
            data: Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef, 0x00, 0x11]),
            received: Instant::now(),
        })
    }

    /// A decoder that cannot open its input is a GStreamer error: the stream's
    /// transcode state says so with the message, and the source audio plays on.
    #[test]
    fn a_pipeline_error_becomes_the_failed_state_and_the_source_stays() {
        let factory = factory();
        let def = stream("voice");
        let mut sink = factory.create(&def);
        sink.set_stream(&def);
        sink.begin_session(WallClockAnchor::now());
        // Object type 31 escapes to an extended type no decoder knows.
        sink.push(MediaEvent::AudioConfig(Arc::new(AacConfig {
            asc: Bytes::from_static(&[0xf8, 0x00, 0x00]),
            object_type: 2,
            sample_rate: 48_000,
            channels: 2,
        })));
        let output = factory.outputs.get("cam").expect("output");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut i = 0;
        let report = loop {
            sink.push(aac_frame(i));
            i += 1;
            let report = output.lock().transcode.clone().expect("report");
            if report.state == TranscodeState::Failed || Instant::now() > deadline {
                break report;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        assert_eq!(report.state, TranscodeState::Failed, "{report:?}");
        assert!(
            report.message.as_deref().is_some_and(|m| !m.is_empty()),
            "{report:?}"
        );
        // The source rendition kept packaging.
        for j in i..i + 200 {
            sink.push(aac_frame(j));
        }
        let st = output.lock();
        let audio = st.rendition("audio").expect("source audio");
        assert!(audio.window.last_complete_msn().is_some());
        assert!(st
            .rendition("audio-32k")
            .is_none_or(|r| r.window.last_complete_msn().is_none()));
        drop(st);
        sink.end_session();
        let report = output.lock().transcode.clone().expect("report");
        assert_eq!(
            report.state,
            TranscodeState::Failed,
            "failed stays visible after the session"
        );
    }

    #[test]
    fn a_passthrough_stream_has_no_transcode_report() {
        let factory = factory();
        let def = stream(profile::PASSTHROUGH);
        let mut sink = factory.create(&def);
        sink.set_stream(&def);
        sink.begin_session(WallClockAnchor::now());
        let output = factory.outputs.get("cam").expect("output");
        assert!(output.lock().transcode.is_none());
    }
}
