//! The video ladder: `appsrc ! avdec_h264 ! tee`, then per rung
//! `queue ! videoscale ! capsfilter ! x264enc ! appsink`.
//!
//! Alignment: every source keyframe's presentation time is queued for each rung, and
//! a probe in front of each encoder sends a force-key-unit event ahead of the first
//! frame at or after it. Cuts therefore follow the source's keyframes, not the
//! encoders' own GOP counters, so segments and parts line up across renditions.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use super::branch::{add_chain, element, encoded_output, rung_queue, Branch};
use super::profile::RungPlan;
use super::timing::PipelineClock;
use super::{lock, LadderEvents, Pace, PipelineError};
use crate::ingest::avc;
use crate::media::{AccessUnit, AvcConfig, MediaEvent, TrackKind};

/// Decoded frames a rung may hold before its encoder: about 200 ms at 30 fps. A
/// slower encoder loses the oldest frames rather than falling behind.
const RUNG_QUEUE_FRAMES: u32 = 6;

/// Compressed frames the decoder may lag behind (about 1.5 s at 30 fps); beyond it
/// the ladder skips source frames up to the next keyframe.
const DECODER_BACKLOG_FRAMES: u64 = 45;

/// Source keyframe times not yet reached by a rung; bounded, oldest dropped.
const PENDING_KEYFRAMES: usize = 64;

/// x264 may place its own keyframe only if the source sends none for this many
/// frames (at 30 fps: 20 s).
const X264_MAX_KEYINT: u32 = 600;

/// Encoded frames an `appsink` may hold (its callback takes each one at once).
pub(super) const APPSINK_BUFFERS: u32 = 4;

type KeyframeTimes = Arc<Mutex<VecDeque<u64>>>;

/// One source's running video ladder.
pub struct VideoLadder {
    branch: Branch,
    clock: PipelineClock,
    pace: Pace,
    keyframes: Vec<KeyframeTimes>,
    events: Arc<dyn LadderEvents>,
    /// Skipping source frames until the next keyframe (the decoder lags).
    skipping: bool,
    last_skip_log: Option<Instant>,
}

impl VideoLadder {
    /// Builds and starts the ladder for a source with parameters `source`, whose
    /// first unit has decode time `first_dts` (in `timebase` ticks).
    pub fn start(
        source: &AvcConfig,
        first_dts: i64,
        timebase: u32,
        rungs: &[RungPlan],
        pace: Pace,
        events: Arc<dyn LadderEvents>,
    ) -> Result<Self, PipelineError> {
        super::init()?;
        let clock = PipelineClock::new(first_dts, timebase);
        let pipeline = gst::Pipeline::new();
        let mut caps = gst::Caps::builder("video/x-h264")
            .field("stream-format", "avc")
            .field("alignment", "au")
            .field("codec_data", gst::Buffer::from_slice(source.record.clone()))
            .field("width", i32::try_from(source.width).unwrap_or(0))
            .field("height", i32::try_from(source.height).unwrap_or(0));
        if let Some(fps) = source.frame_rate.and_then(frame_rate_fraction) {
            caps = caps.field("framerate", fps);
        }
        let src = gst_app::AppSrc::builder()
            .caps(&caps.build())
            .format(gst::Format::Time)
            .is_live(pace == Pace::Realtime)
            .block(pace == Pace::Offline)
            .max_bytes(256 * 1024 * 1024)
            .build();
        let decoder = element("avdec_h264")?;
        // A damaged frame is dropped rather than encoded into every rung.
        decoder.set_property("output-corrupt", false);
        // Encoders send one slice per frame, so libav could only thread across frames,
        // which holds a frame back per thread and spends more CPU on synchronising;
        // one thread decodes a 4K30 source in about 40% of a core.
        decoder.set_property("max-threads", 1i32);
        let tee = element("tee")?;
        add_chain(&pipeline, &[src.upcast_ref(), &decoder, &tee])?;

        let mut keyframes = Vec::new();
        for (index, rung) in rungs.iter().enumerate() {
            let times: KeyframeTimes = Arc::new(Mutex::new(VecDeque::new()));
            add_rung(&pipeline, &tee, index, rung, pace, &times, clock, &events)?;
            keyframes.push(times);
        }
        let branch = Branch::start(pipeline, src, Arc::clone(&events))?;
        Ok(Self {
            branch,
            clock,
            pace,
            keyframes,
            events,
            skipping: false,
            last_skip_log: None,
        })
    }

    /// Feeds one source frame.
    pub fn push(&mut self, unit: &AccessUnit) {
        let (Some(pts), Some(dts)) = (self.clock.to_nanos(unit.pts), self.clock.to_nanos(unit.dts))
        else {
            return;
        };
        if self.pace == Pace::Realtime && self.decoder_lags(unit.keyframe) {
            return;
        }
        if unit.keyframe {
            for times in &self.keyframes {
                let mut t = lock(times);
                if t.len() == PENDING_KEYFRAMES {
                    t.pop_front();
                }
                t.push_back(pts);
            }
        }
        let mut buffer = gst::Buffer::from_slice(unit.data.clone());
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::from_nseconds(pts));
            b.set_dts(gst::ClockTime::from_nseconds(dts));
            if !unit.keyframe {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        self.branch.push(buffer);
    }

    /// Whether to skip this frame because the decoder cannot keep up: skipping starts
    /// when the backlog passes its bound and ends at a keyframe once it has halved,
    /// so the decoder never sees a frame whose references it lacks.
    fn decoder_lags(&mut self, keyframe: bool) -> bool {
        let backlog = self.branch.backlog();
        if !self.skipping && backlog > DECODER_BACKLOG_FRAMES {
            self.skipping = true;
            let now = Instant::now();
            if self
                .last_skip_log
                .is_none_or(|t| now.duration_since(t) > Duration::from_secs(10))
            {
                tracing::warn!(
                    backlog,
                    "transcoding cannot keep up: skipping source frames up to the next keyframe"
                );
                self.last_skip_log = Some(now);
            }
        }
        if self.skipping && keyframe && backlog <= DECODER_BACKLOG_FRAMES / 2 {
            self.skipping = false;
        }
        if self.skipping {
            for index in 0..self.keyframes.len() {
                self.events.dropped(TrackKind::Video, index, 1);
            }
        }
        self.skipping
    }

    pub fn failed(&self) -> bool {
        self.branch.failed()
    }

    /// Drains the encoders (at most `limit`) and stops.
    pub fn finish(self, limit: Duration) {
        self.branch.finish(limit);
    }
}

#[allow(clippy::too_many_arguments)]
fn add_rung(
    pipeline: &gst::Pipeline,
    tee: &gst::Element,
    index: usize,
    rung: &RungPlan,
    pace: Pace,
    keyframes: &KeyframeTimes,
    clock: PipelineClock,
    events: &Arc<dyn LadderEvents>,
) -> Result<(), PipelineError> {
    let queue = rung_queue(RUNG_QUEUE_FRAMES, pace, TrackKind::Video, index, events)?;
    let scale = element("videoscale")?;
    let size = element("capsfilter")?;
    size.set_property(
        "caps",
        gst::Caps::builder("video/x-raw")
            .field("width", i32::try_from(rung.width).unwrap_or(0))
            .field("height", i32::try_from(rung.height).unwrap_or(0))
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            .build(),
    );
    let encoder = x264_encoder(rung)?;
    let avc_caps = element("capsfilter")?;
    avc_caps.set_property(
        "caps",
        gst::Caps::builder("video/x-h264")
            .field("stream-format", "avc")
            .field("alignment", "au")
            .build(),
    );
    // The callback takes each sample at once; the bound is only a backstop.
    let sink = gst_app::AppSink::builder()
        .sync(false)
        .max_buffers(APPSINK_BUFFERS)
        .build();
    add_chain(
        pipeline,
        &[
            &queue,
            &scale,
            &size,
            &encoder,
            &avc_caps,
            sink.upcast_ref(),
        ],
    )?;
    tee.link(&queue)
        .map_err(|e| PipelineError::Build(e.to_string()))?;
    force_keyframes_at_source_keyframes(&size, Arc::clone(keyframes))?;
    sink.set_callbacks(encoded_output(
        TrackKind::Video,
        index,
        clock,
        Arc::clone(events),
        video_parameters,
    ));
    Ok(())
}

fn x264_encoder(rung: &RungPlan) -> Result<gst::Element, PipelineError> {
    let encoder = element("x264enc")?;
    encoder.set_property_from_str("speed-preset", &rung.preset);
    // zerolatency: no lookahead, no frame reordering, sliced threads.
    encoder.set_property_from_str("tune", "zerolatency");
    encoder.set_property("bframes", 0u32);
    encoder.set_property("b-adapt", false);
    encoder.set_property_from_str("pass", "cbr");
    encoder.set_property("bitrate", rung.bitrate_kbps);
    // VBV of one second at the rung's bitrate.
    encoder.set_property("vbv-buf-capacity", 1000u32);
    encoder.set_property("key-int-max", X264_MAX_KEYINT);
    // Keyframes come from the source's; a scene cut must not add its own.
    encoder.set_property("option-string", "scenecut=0");
    Ok(encoder)
}

/// Before each encoder: the first frame at or after a source keyframe time is
/// preceded by a force-key-unit event, so the encoder makes it an IDR frame. A frame
/// dropped by the leaky queue moves the keyframe to the next one.
fn force_keyframes_at_source_keyframes(
    before_encoder: &gst::Element,
    keyframes: KeyframeTimes,
) -> Result<(), PipelineError> {
    let pad = before_encoder
        .static_pad("src")
        .ok_or_else(|| PipelineError::Build("capsfilter without a src pad".into()))?;
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(gst::PadProbeData::Buffer(buffer)) = &info.data else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(pts) = buffer.pts() else {
            return gst::PadProbeReturn::Ok;
        };
        let force = {
            let mut times = lock(&keyframes);
            let mut reached = false;
            while times.front().is_some_and(|k| *k <= pts.nseconds()) {
                times.pop_front();
                reached = true;
            }
            reached
        };
        if force {
            let event = gst_video::DownstreamForceKeyUnitEvent::builder()
                .running_time(pts)
                .all_headers(true)
                .build();
            pad.push_event(event);
        }
        gst::PadProbeReturn::Ok
    });
    Ok(())
}

/// The rung's new parameters, from the encoder's avcC.
fn video_parameters(record: Bytes) -> Option<MediaEvent> {
    match avc::parse_decoder_config(record) {
        Ok(parsed) => Some(MediaEvent::VideoConfig(Arc::new(parsed.config))),
        Err(e) => {
            tracing::warn!(error = %e, "encoder produced an unreadable avcC");
            None
        }
    }
}

/// The frame rate as a GStreamer fraction (30000/1001 for NTSC rates).
fn frame_rate_fraction(fps: f64) -> Option<gst::Fraction> {
    if !(fps.is_finite() && fps > 0.0 && fps < 1000.0) {
        return None;
    }
    let ntsc = fps * 1001.0 / 1000.0;
    if (ntsc - ntsc.round()).abs() < 0.01 && (fps - fps.round()).abs() > 0.01 {
        return Some(gst::Fraction::new((ntsc.round() as i32) * 1000, 1001));
    }
    let millis = (fps * 1000.0).round() as i32;
    let divisor = gcd(millis, 1000);
    Some(gst::Fraction::new(millis / divisor, 1000 / divisor))
}

fn gcd(a: i32, b: i32) -> i32 {
    if b == 0 {
        a.max(1)
    } else {
        gcd(b, a % b)
    }
}
