//! The video ladder: `appsrc ! avdec_h264 ! tee` (`avdec_h265` for an HEVC source,
//! `av1dec` for AV1: the source is decoded once), then per rung
//! `queue ! videoscale ! videoconvert ! capsfilter ! x264enc ! appsink` — H.264 by
//! default, the widest compatibility; `x265enc ! h265parse` for a rung that asks for
//! `codec = "h265"`. Rungs are 8-bit 4:2:0 whatever the source.
//!
//! Bounds, in real time: the `appsrc` holds at most `DECODER_BACKLOG_FRAMES` + 1
//! compressed frames (about 1.5 s at 30 fps) and 64 MiB. Past
//! `DECODER_BACKLOG_FRAMES` the ladder stops feeding it and skips source frames up to
//! the next keyframe, so the decoder never gets a frame whose reference it lacks; the
//! `appsrc`'s own bound (dropping the newest, see `VIDEO_INPUT`) is a backstop that
//! the skip keeps from filling, and a drop there also starts a skip. Each rung's queue
//! holds `RUNG_QUEUE_FRAMES` decoded frames and drops the one arriving when full.
//! Every frame lost either way is counted per rung through [`LadderEvents::dropped`].
//! Offline every bound blocks the pusher instead.
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

use super::branch::{
    add_chain, element, encoded_output, rung_queue, Branch, Input, InputBound, Loses,
};
use super::profile::{RungCodec, RungPlan};
use super::reproject::Reprojection;
use super::timing::PipelineClock;
use super::{lock, LadderEvents, Pace, PipelineError};
use crate::ingest::{avc, hevc};
use crate::media::{AccessUnit, MediaEvent, TrackKind, VideoConfig};

/// Decoded frames a rung may hold before its encoder: about 200 ms at 30 fps. A
/// slower encoder loses the oldest frames rather than falling behind.
const RUNG_QUEUE_FRAMES: u32 = 6;

/// Compressed frames the decoder may lag behind (about 1.5 s at 30 fps); beyond it
/// the ladder skips source frames up to the next keyframe.
const DECODER_BACKLOG_FRAMES: u64 = 45;

/// The `appsrc` bound: one frame above the skip threshold, so only a push the skip
/// did not stop can meet it full (it never does while the ladder is the only pusher);
/// 64 MiB stops frames far larger than 4K ones. When full it drops the frame being
/// pushed, so what is queued stays gapless, and the ladder skips to the next keyframe.
const VIDEO_INPUT: InputBound = InputBound {
    buffers: DECODER_BACKLOG_FRAMES + 1,
    bytes: 64 * 1024 * 1024,
    loses: Loses::Newest,
};

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
        source: &VideoConfig,
        first_dts: i64,
        timebase: u32,
        rungs: &[RungPlan],
        pace: Pace,
        events: Arc<dyn LadderEvents>,
    ) -> Result<Self, PipelineError> {
        Self::start_with_input(
            source,
            first_dts,
            timebase,
            rungs,
            pace,
            events,
            VIDEO_INPUT,
            None,
        )
    }

    /// [`VideoLadder::start`] with `panoproject` between the decoder and the rungs:
    /// every rung (the `video` rendition among them, see
    /// [`super::reproject::Reprojection::top_rung`]) is encoded from its output.
    pub fn start_reprojected(
        source: &VideoConfig,
        first_dts: i64,
        timebase: u32,
        rungs: &[RungPlan],
        pace: Pace,
        events: Arc<dyn LadderEvents>,
        reprojection: &Reprojection,
    ) -> Result<Self, PipelineError> {
        Self::start_with_input(
            source,
            first_dts,
            timebase,
            rungs,
            pace,
            events,
            VIDEO_INPUT,
            Some(reprojection),
        )
    }

    /// [`VideoLadder::start`] with another input bound (tests reach the backstop).
    #[allow(clippy::too_many_arguments)]
    fn start_with_input(
        source: &VideoConfig,
        first_dts: i64,
        timebase: u32,
        rungs: &[RungPlan],
        pace: Pace,
        events: Arc<dyn LadderEvents>,
        bound: InputBound,
        reprojection: Option<&Reprojection>,
    ) -> Result<Self, PipelineError> {
        super::init()?;
        let clock = PipelineClock::new(first_dts, timebase);
        let pipeline = gst::Pipeline::new();
        // Length-prefixed NAL units with the configuration record as codec_data: what
        // the ingest hands on, so no parser is needed in front of the decoder.
        // AV1: temporal units of sized OBUs (what ingest hands on); libaom's decoder,
        // the one AV1 decoder Debian 12's GStreamer has.
        let (media_type, stream_format, alignment, record, decoder) = match source {
            VideoConfig::Avc(c) => ("video/x-h264", "avc", "au", &c.record, "avdec_h264"),
            VideoConfig::Hevc(c) => ("video/x-h265", "hvc1", "au", &c.record, "avdec_h265"),
            VideoConfig::Av1(c) => ("video/x-av1", "obu-stream", "tu", &c.record, "av1dec"),
        };
        let mut caps = gst::Caps::builder(media_type)
            .field("stream-format", stream_format)
            .field("alignment", alignment)
            .field("codec_data", gst::Buffer::from_slice(record.clone()))
            .field("width", i32::try_from(source.width()).unwrap_or(0))
            .field("height", i32::try_from(source.height()).unwrap_or(0));
        if let Some(fps) = source.frame_rate().and_then(frame_rate_fraction) {
            caps = caps.field("framerate", fps);
        }
        let input = Input::new(&caps.build(), pace, bound);
        let decoder = element(decoder)?;
        if matches!(source, VideoConfig::Av1(_)) {
            // A damaged frame is dropped rather than encoded into every rung.
            decoder.set_property("discard-corrupted-frames", true);
        } else {
            decoder.set_property("output-corrupt", false);
            // Encoders send one slice per frame, so libav could only thread across
            // frames, which holds a frame back per thread and spends more CPU on
            // synchronising; one thread decodes a 4K30 source in about 40% of a core.
            decoder.set_property("max-threads", 1i32);
        }
        let tee = element("tee")?;
        match reprojection {
            // videoconvert: panoproject takes 8-bit I420 or NV12 (a 10-bit source is
            // converted here; an 8-bit one passes through untouched).
            Some(r) => add_chain(
                &pipeline,
                &[
                    input.element(),
                    &decoder,
                    &element("videoconvert")?,
                    &r.element()?,
                    &tee,
                ],
            )?,
            None => add_chain(&pipeline, &[input.element(), &decoder, &tee])?,
        }

        let mut keyframes = Vec::new();
        for (index, rung) in rungs.iter().enumerate() {
            let times: KeyframeTimes = Arc::new(Mutex::new(VecDeque::new()));
            add_rung(&pipeline, &tee, index, rung, pace, &times, clock, &events)?;
            keyframes.push(times);
        }
        let branch = Branch::start(pipeline, input, Arc::clone(&events))?;
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

    /// Feeds one source frame. Never blocks in real time: a frame the decoder has no
    /// room for is dropped and counted (see the module's bounds); offline it waits.
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
        // The backstop: the input dropped this frame, so its successors up to the
        // next keyframe would miss their references.
        let lost = self.branch.take_dropped();
        if lost > 0 {
            self.count_dropped(lost);
            self.start_skipping(self.branch.backlog());
        }
    }

    /// Whether to skip this frame because the decoder cannot keep up: skipping starts
    /// when the backlog passes [`DECODER_BACKLOG_FRAMES`] (or the input dropped a
    /// frame) and ends at a keyframe once it has halved, so the decoder never sees a
    /// frame whose references it lacks.
    fn decoder_lags(&mut self, keyframe: bool) -> bool {
        let backlog = self.branch.backlog();
        if !self.skipping && backlog > DECODER_BACKLOG_FRAMES {
            self.start_skipping(backlog);
        }
        if self.skipping && keyframe && backlog <= DECODER_BACKLOG_FRAMES / 2 {
            self.skipping = false;
        }
        if self.skipping {
            self.count_dropped(1);
        }
        self.skipping
    }

    fn start_skipping(&mut self, backlog: u64) {
        if self.skipping {
            return;
        }
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

    /// `frames` source frames lost before the decoder: lost to every rung.
    fn count_dropped(&self, frames: u64) {
        for index in 0..self.keyframes.len() {
            self.events.dropped(TrackKind::Video, index, frames);
        }
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
            // 8-bit 4:2:0: Debian's x264 also takes 10 bits, and High 10 H.264 is what
            // browsers cannot decode.
            .field("format", "I420")
            .field("width", i32::try_from(rung.width).unwrap_or(0))
            .field("height", i32::try_from(rung.height).unwrap_or(0))
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            .build(),
    );
    // Length-prefixed NAL units with the configuration record in the caps, as the
    // packager takes them. x265enc writes Annex B only, so h265parse repackages it.
    let (mut encode, media_type, stream_format): (Vec<gst::Element>, _, _) = match rung.codec {
        RungCodec::H264 => (vec![x264_encoder(rung)?], "video/x-h264", "avc"),
        RungCodec::H265 => (
            vec![x265_encoder(rung)?, element("h265parse")?],
            "video/x-h265",
            "hvc1",
        ),
    };
    let coded_caps = element("capsfilter")?;
    coded_caps.set_property(
        "caps",
        gst::Caps::builder(media_type)
            .field("stream-format", stream_format)
            .field("alignment", "au")
            .build(),
    );
    encode.push(coded_caps);
    // The callback takes each sample at once; the bound is only a backstop.
    let sink = gst_app::AppSink::builder()
        .sync(false)
        .max_buffers(APPSINK_BUFFERS)
        .build();
    // A 10-bit source (HEVC Main 10 from phones and HDR cameras) meets 8-bit encoders
    // here; for an 8-bit source videoconvert passes buffers through untouched.
    let convert = element("videoconvert")?;
    let mut chain: Vec<&gst::Element> = vec![&queue, &scale, &convert, &size];
    chain.extend(encode.iter());
    chain.push(sink.upcast_ref());
    add_chain(pipeline, &chain)?;
    tee.link(&queue)
        .map_err(|e| PipelineError::Build(e.to_string()))?;
    force_keyframes_at_source_keyframes(&size, Arc::clone(keyframes))?;
    let codec = rung.codec;
    sink.set_callbacks(encoded_output(
        TrackKind::Video,
        index,
        clock,
        Arc::clone(events),
        move |record| rung_parameters(codec, record),
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

/// x265 with the same rate control and keyframe rules as [`x264_encoder`]: zero-latency
/// tuning (no B-frames, no lookahead, one frame thread), CBR-like VBV of one second,
/// IDR frames only where the source has a keyframe.
fn x265_encoder(rung: &RungPlan) -> Result<gst::Element, PipelineError> {
    let encoder = element("x265enc")?;
    encoder.set_property_from_str("speed-preset", &rung.preset);
    encoder.set_property_from_str("tune", "zerolatency");
    encoder.set_property("bitrate", rung.bitrate_kbps);
    encoder.set_property(
        "key-int-max",
        i32::try_from(X264_MAX_KEYINT).unwrap_or(i32::MAX),
    );
    let kbps = rung.bitrate_kbps;
    encoder.set_property(
        "option-string",
        format!(
            "vbv-maxrate={kbps}:vbv-bufsize={kbps}:scenecut=0:open-gop=0:repeat-headers=0:log-level=error"
        ),
    );
    Ok(encoder)
}

/// Before each encoder: the first frame at or after a source keyframe time is
/// preceded by a force-key-unit event, so the encoder makes it an IDR frame. A frame
/// dropped by the rung's queue moves the keyframe to the next one.
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
/// The rung's decoder configuration record (from the caps' codec_data) as a config
/// event for the packager.
fn rung_parameters(codec: RungCodec, record: Bytes) -> Option<MediaEvent> {
    let parsed = match codec {
        RungCodec::H264 => avc::parse_decoder_config(record)
            .map(|p| VideoConfig::Avc(p.config))
            .map_err(|e| e.to_string()),
        RungCodec::H265 => hevc::parse_decoder_config(record)
            .map(|p| VideoConfig::Hevc(p.config))
            .map_err(|e| e.to_string()),
    };
    match parsed {
        Ok(config) => Some(MediaEvent::VideoConfig(Arc::new(config))),
        Err(error) => {
            tracing::warn!(%error, ?codec, "encoder produced an unreadable decoder configuration");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::test_media::{self, queued_decoded, wait_until, Recorder};

    const TIMEBASE: u32 = 90_000;
    /// One frame at 30 fps.
    const FRAME_TICKS: i64 = 3_000;

    fn unit(i: usize, (data, keyframe): &test_media::Frame) -> AccessUnit {
        let t = i as i64 * FRAME_TICKS;
        AccessUnit {
            kind: TrackKind::Video,
            dts: t,
            pts: t,
            timebase: TIMEBASE,
            keyframe: *keyframe,
            data: data.clone(),
            received: Instant::now(),
        }
    }

    /// The most an input held: buffers and bytes.
    #[derive(Debug, Default)]
    struct Peak {
        buffers: u64,
        bytes: u64,
    }

    /// What one run showed.
    struct Run {
        events: Recorder,
        /// Frames offered in all.
        offered: usize,
        /// Index of the first frame of the last GOP, pushed at the pipeline's pace.
        tail_start: usize,
        /// The input's peak during the burst.
        peak: Peak,
        /// Every buffer the decoder was fed: source frame index, keyframe.
        decoded: Vec<(i64, bool)>,
    }

    /// Records the source frame index and keyframe flag of every buffer entering the
    /// decoder.
    fn watch_decoder_input(ladder: &VideoLadder) -> Arc<Mutex<Vec<(i64, bool)>>> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let decoder = ladder
            .branch
            .pipeline()
            .iterate_elements()
            .into_iter()
            .flatten()
            .find(|e| e.factory().is_some_and(|f| f.name() == "avdec_h264"))
            .expect("the decoder");
        let log = Arc::clone(&seen);
        let clock = ladder.clock;
        decoder
            .static_pad("sink")
            .expect("decoder sink pad")
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(gst::PadProbeData::Buffer(b)) = &info.data {
                    let index = b
                        .pts()
                        .map_or(-1, |t| clock.to_ticks(t.nseconds()) / FRAME_TICKS);
                    let keyframe = !b.flags().contains(gst::BufferFlags::DELTA_UNIT);
                    lock(&log).push((index, keyframe));
                }
                gst::PadProbeReturn::Ok
            });
        seen
    }

    /// Frames the decoder must take from a full input before the burst ends.
    const FED_WHILE_FULL: usize = 20;

    /// 1280x640 video into a real-time ladder with the input bound `bound` picks for
    /// the frames: once the first
    /// frame is encoded, the first nine GOPs of ten seconds over and over as fast as
    /// they can be pushed, until the decoder has taken [`FED_WHILE_FULL`] frames since
    /// the first drop; then the last GOP at the pace the pipeline keeps.
    fn burst_then_last_gop(bound: impl FnOnce(&[test_media::Frame]) -> InputBound) -> Run {
        let (config, frames) = test_media::h264(1280, 640, 300, 30);
        let bound = bound(&frames);
        let last_gop = frames.iter().rposition(|f| f.1).expect("a keyframe");
        assert!(frames.len() - last_gop >= 20, "last GOP at {last_gop}");
        let rungs = [RungPlan {
            name: "r320".into(),
            width: 320,
            height: 160,
            bitrate_kbps: 300,
            preset: "ultrafast".into(),
            codec: RungCodec::H264,
        }];
        let events = Recorder::default();
        let mut ladder = VideoLadder::start_with_input(
            &VideoConfig::Avc(config),
            0,
            TIMEBASE,
            &rungs,
            Pace::Realtime,
            Arc::new(events.clone()),
            bound,
            None,
        )
        .expect("ladder");
        let decoded = watch_decoder_input(&ladder);
        // The burst starts once the first frame came out at the end: the whole
        // pipeline runs.
        ladder.push(&unit(0, &frames[0]));
        wait_until(Duration::from_secs(10), "encoding", || {
            !events.units(TrackKind::Video, 0).is_empty()
        });
        let mut peak = Peak::default();
        let mut fed_at_first_drop = None;
        let mut i = 1;
        let deadline = Instant::now() + Duration::from_secs(60);
        // Whole GOPs repeated: each starts with an IDR frame, so the stream stays
        // valid. It ends at a GOP boundary, after enough frames left a full input.
        while !(i % last_gop == 0
            && fed_at_first_drop.is_some_and(|n| lock(&decoded).len() >= n + FED_WHILE_FULL))
        {
            ladder.push(&unit(i, &frames[i % last_gop]));
            i += 1;
            peak.buffers = peak.buffers.max(ladder.branch.backlog());
            peak.bytes = peak.bytes.max(ladder.branch.backlog_bytes());
            if fed_at_first_drop.is_none() && events.dropped(TrackKind::Video, 0) > 0 {
                fed_at_first_drop = Some(lock(&decoded).len());
            }
            assert!(Instant::now() < deadline, "the decoder never took frames");
        }
        let tail_start = i;

        // Each frame of the last GOP once everything before it reached the encoder:
        // the pace the whole pipeline keeps.
        let idle = |ladder: &VideoLadder| {
            ladder.branch.backlog() == 0 && queued_decoded(ladder.branch.pipeline()) == 0
        };
        wait_until(Duration::from_secs(30), "drained", || idle(&ladder));
        for (j, frame) in frames[last_gop..].iter().enumerate() {
            ladder.push(&unit(tail_start + j, frame));
            wait_until(Duration::from_secs(10), "took the frame", || idle(&ladder));
        }
        ladder.finish(Duration::from_secs(30));
        assert!(events.failures().is_empty(), "{:?}", events.failures());
        let decoded = lock(&decoded).clone();
        Run {
            events,
            offered: tail_start + frames.len() - last_gop,
            tail_start,
            peak,
            decoded,
        }
    }

    /// The decoder only ever resumed after a gap at a keyframe; every frame offered
    /// was encoded or counted as dropped; the last GOP came out whole, starting with a
    /// keyframe.
    fn assert_sound(run: &Run) {
        let decoded = &run.decoded;
        assert!(
            decoded.first().is_some_and(|&(i, key)| i == 0 && key),
            "{decoded:?}"
        );
        let mut gaps = 0;
        for pair in decoded.windows(2) {
            let ((before, _), (after, keyframe)) = (pair[0], pair[1]);
            assert!(after > before, "out of order: {pair:?}");
            assert!(
                after == before + 1 || keyframe,
                "the decoder got frame {after} (not a keyframe) after frame {before}"
            );
            gaps += usize::from(after != before + 1);
        }
        assert!(gaps > 0, "the decoder saw no gap: {decoded:?}");
        let units = run.events.units(TrackKind::Video, 0);
        let dropped = run.events.dropped(TrackKind::Video, 0);
        assert_eq!(
            units.len() as u64 + dropped,
            run.offered as u64,
            "{} encoded + {dropped} dropped",
            units.len()
        );
        let start = run.tail_start as i64 * FRAME_TICKS;
        let tail: Vec<&(i64, bool)> = units.iter().filter(|(pts, _)| *pts >= start).collect();
        assert_eq!(tail.len(), run.offered - run.tail_start);
        assert_eq!(
            tail[0],
            &(start, true),
            "the last GOP starts with a keyframe"
        );
    }

    /// The skip to the next keyframe keeps the input under its bound: it fills to the
    /// skip threshold and one frame more, never further.
    #[test]
    fn a_source_far_faster_than_real_time_is_bounded_counted_and_recovers() {
        let run = burst_then_last_gop(|_| VIDEO_INPUT);
        assert_eq!(run.peak.buffers, VIDEO_INPUT.buffers, "{:?}", run.peak);
        assert_sound(&run);
    }

    /// Frames so large that the input's byte bound is met before the skip threshold:
    /// the input drops the newest frame, and the ladder skips to the next keyframe
    /// rather than feed the decoder frames whose references are gone.
    #[test]
    fn a_frame_the_full_input_drops_starts_a_skip_to_the_next_keyframe() {
        let mut bound = VIDEO_INPUT;
        let mut largest = 0;
        let run = burst_then_last_gop(|frames| {
            largest = frames
                .iter()
                .map(|(d, _)| d.len() as u64)
                .max()
                .unwrap_or(0);
            bound.bytes = 4 * largest;
            bound
        });
        let peak = &run.peak;
        assert!(
            peak.buffers < DECODER_BACKLOG_FRAMES,
            "the skip stopped it: {peak:?}"
        );
        // Full means "at or above the bound" before a push: one frame may top it.
        assert!(peak.bytes <= bound.bytes + largest, "{peak:?}");
        assert_sound(&run);
    }
}
