//! A file as the packager's media events (blocking): `filesrc ! parsebin` (MP4, MOV,
//! MKV, WebM), then for the first video and the first audio stream
//!
//! - H.264: `h264parse` to length-prefixed access units with the `avcC` from the
//!   caps, passed as they are;
//! - other video (HEVC, VP9, AV1, …): `decodebin ! videoconvert ! x264enc` first,
//!   so every upload's source rendition is H.264 (what every player decodes);
//! - AAC: `aacparse` to raw frames with the AudioSpecificConfig, passed as they are;
//! - other audio (Opus, MP3, …): `decodebin ! audioconvert ! audioresample !
//!   avenc_aac` first.
//!
//! Timestamps go into the timebases the ingest uses: 90 kHz for video, the sample
//! rate for AAC. The branches' streaming threads hand events over through a channel of
//! [`QUEUE`] events; when it is full the demuxer waits, so memory stays bounded and
//! the file is read as fast as the consumer packages it, never in real time.

use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::ingest::{aac, avc};
use crate::media::{AccessUnit, MediaEvent, TrackKind, VideoConfig};

/// Ticks per second of video units (as RTSP ingest).
pub const VIDEO_TIMEBASE: u32 = 90_000;
/// Events between the streaming thread and the packager (about 3 s of 30 fps video
/// with 48 kHz AAC).
const QUEUE: usize = 256;
/// What each branch may queue ahead of its decoder or parser: short, so the branches
/// stay interleaved in time on their way into the one channel.
const BRANCH_QUEUE: Duration = Duration::from_millis(500);
const BRANCH_QUEUE_BYTES: u32 = 64 * 1024 * 1024;
/// x264 settings of a source that is not H.264: near-transparent constant quality,
/// a keyframe at least every 2 s at 30 fps (segments cut at keyframes).
const REENCODE_QUANTIZER: u32 = 20;
/// How long a file may take to yield its first event. parsebin drops the errors of a
/// demuxer it is still autoplugging, so a damaged file (a cut-off `moov`) can leave
/// the pipeline waiting forever without an error when the demuxer's streaming
/// thread fails inside that window; a valid file yields its first event within
/// milliseconds.
const FIRST_EVENT_LIMIT: Duration = Duration::from_secs(10);
const REENCODE_KEY_INT: u32 = 60;

/// Why a file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum DemuxError {
    /// The file itself: not media, damaged, or a codec without a decoder.
    #[error("{0}")]
    BadInput(String),
    /// This server: a missing element, a pipeline that would not start.
    #[error("{0}")]
    Server(String),
}

/// What [`Demuxer::next`] found.
pub enum Next {
    Event(MediaEvent),
    /// Nothing within the wait; ask again.
    Idle,
    /// The whole file was read.
    End,
}

/// Which streams were taken (the first of each kind).
#[derive(Default)]
struct Taken {
    video: bool,
    audio: bool,
}

/// A running demux pipeline; stopped on drop.
pub struct Demuxer {
    pipeline: gst::Pipeline,
    /// `None` only while dropping.
    rx: Option<Receiver<MediaEvent>>,
    taken: Arc<Mutex<Taken>>,
    ended: bool,
    started: Instant,
    /// An event came out: the file is being read.
    reading: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn make(factory: &str) -> Result<gst::Element, DemuxError> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| DemuxError::Server(format!("GStreamer element {factory} is not installed")))
}

impl Demuxer {
    /// Starts reading `path`.
    pub fn open(path: &Path) -> Result<Self, DemuxError> {
        crate::pipeline::init().map_err(|e| DemuxError::Server(e.to_string()))?;
        let pipeline = gst::Pipeline::new();
        let src = make("filesrc")?;
        src.set_property("location", path.to_string_lossy().as_ref());
        let parse = make("parsebin")?;
        pipeline
            .add_many([&src, &parse])
            .map_err(|e| DemuxError::Server(e.to_string()))?;
        src.link(&parse)
            .map_err(|e| DemuxError::Server(e.to_string()))?;
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let taken = Arc::new(Mutex::new(Taken::default()));
        let weak = pipeline.downgrade();
        let seen = Arc::clone(&taken);
        parse.connect_pad_added(move |parse, pad| {
            let Some(pipeline) = weak.upgrade() else {
                return;
            };
            if let Err(e) = link_stream(&pipeline, pad, &seen, &tx) {
                gst::element_error!(parse, gst::StreamError::Failed, ("{}", e));
            }
        });
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| DemuxError::BadInput(describe_failure(&pipeline)))?;
        Ok(Self {
            pipeline,
            rx: Some(rx),
            taken,
            ended: false,
            started: Instant::now(),
            reading: false,
        })
    }

    /// The next event, waiting at most `wait`; errors of the pipeline (a file that
    /// is not media, a damaged one) come out here.
    pub fn next(&mut self, wait: Duration) -> Result<Next, DemuxError> {
        let Some(rx) = self.rx.as_ref() else {
            return Ok(Next::End);
        };
        if self.ended {
            return Ok(match rx.try_recv() {
                Ok(e) => Next::Event(e),
                Err(_) => Next::End,
            });
        }
        match rx.recv_timeout(wait) {
            Ok(e) => {
                self.reading = true;
                return Ok(Next::Event(e));
            }
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {}
        }
        let Some(bus) = self.pipeline.bus() else {
            return Err(DemuxError::Server("the pipeline has no bus".into()));
        };
        while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error, gst::MessageType::Eos]) {
            match msg.view() {
                gst::MessageView::Error(err) => {
                    return Err(DemuxError::BadInput(err.error().to_string()));
                }
                gst::MessageView::Eos(_) => {
                    // Every sink has seen its last sample: what is queued is all.
                    if !lock(&self.taken).video {
                        return Err(DemuxError::BadInput("the file has no video track".into()));
                    }
                    self.ended = true;
                    return self.next(wait);
                }
                _ => {}
            }
        }
        if !self.reading && self.started.elapsed() > FIRST_EVENT_LIMIT {
            return Err(DemuxError::BadInput(format!(
                "no audio or video could be read from it within {} s",
                FIRST_EVENT_LIMIT.as_secs()
            )));
        }
        Ok(Next::Idle)
    }

    /// How far into the file the pipeline is, 0.0–1.0, when it knows its length.
    pub fn position(&self) -> Option<f64> {
        let pos = self.pipeline.query_position::<gst::ClockTime>()?;
        let len = self.pipeline.query_duration::<gst::ClockTime>()?;
        (len.nseconds() > 0).then(|| (pos.nseconds() as f64 / len.nseconds() as f64).min(1.0))
    }

    /// The file's length, when the container says.
    pub fn duration(&self) -> Option<Duration> {
        self.pipeline
            .query_duration::<gst::ClockTime>()
            .map(|d| Duration::from_nanos(d.nseconds()))
    }
}

impl Drop for Demuxer {
    fn drop(&mut self) {
        // A streaming thread waiting on a full channel fails its send and stops.
        drop(self.rx.take());
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// The error a pipeline that would not start posted, or a general reason.
fn describe_failure(pipeline: &gst::Pipeline) -> String {
    pipeline
        .bus()
        .and_then(|bus| bus.pop_filtered(&[gst::MessageType::Error]))
        .and_then(|msg| match msg.view() {
            gst::MessageView::Error(err) => Some(err.error().to_string()),
            _ => None,
        })
        .unwrap_or_else(|| "the file cannot be read".into())
}

/// Links one stream parsebin found: the first video and the first audio to their
/// branches, anything else to a `fakesink` (so the demuxer is never refused).
fn link_stream(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    taken: &Mutex<Taken>,
    tx: &SyncSender<MediaEvent>,
) -> Result<(), String> {
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    let Some(s) = caps.structure(0) else {
        return Ok(());
    };
    let name = s.name().to_string();
    let kind = if name.starts_with("video/") && !name.starts_with("video/x-raw") {
        Some(TrackKind::Video)
    } else if name.starts_with("audio/") && !name.starts_with("audio/x-raw") {
        Some(TrackKind::Audio)
    } else {
        None
    };
    let first = match kind {
        Some(TrackKind::Video) => !std::mem::replace(&mut lock(taken).video, true),
        Some(TrackKind::Audio) => !std::mem::replace(&mut lock(taken).audio, true),
        None => false,
    };
    let el = |f: &str| make(f).map_err(|e| e.to_string());
    let (Some(kind), true) = (kind, first) else {
        let sink = el("fakesink")?;
        sink.set_property("sync", false);
        pipeline.add(&sink).map_err(|e| e.to_string())?;
        sink.sync_state_with_parent().map_err(|e| e.to_string())?;
        return pad
            .link(&sink.static_pad("sink").ok_or("fakesink without a pad")?)
            .map(|_| ())
            .map_err(|e| e.to_string());
    };
    let passes = match kind {
        TrackKind::Video => name == "video/x-h264",
        TrackKind::Audio => name == "audio/mpeg" && s.get::<i32>("mpegversion").ok() == Some(4),
    };
    // The encoded tail every branch ends with: parsed, packaged as the packager takes it.
    let (tail, caps_out): (Vec<gst::Element>, gst::Caps) = match kind {
        TrackKind::Video => (
            vec![el("h264parse")?],
            gst::Caps::builder("video/x-h264")
                .field("stream-format", "avc")
                .field("alignment", "au")
                .build(),
        ),
        TrackKind::Audio => (
            vec![el("aacparse")?],
            gst::Caps::builder("audio/mpeg")
                .field("mpegversion", 4i32)
                .field("stream-format", "raw")
                .build(),
        ),
    };
    let filter = el("capsfilter")?;
    filter.set_property("caps", &caps_out);
    let sink = gst_app::AppSink::builder()
        .sync(false)
        .max_buffers(4)
        .build();
    // No preroll: one streaming thread feeds every branch, so a sink waiting for
    // the others to preroll would block the branch an encoder still fills.
    sink.set_property("async", false);
    sink.set_callbacks(output_callbacks(kind, tx.clone()));
    // Each branch runs in its own thread behind a short queue: decodebin delays the
    // pipeline's preroll until its pad appears, which needs data the demuxer could
    // not push while another branch's sink sat waiting for that preroll.
    let queue = el("queue")?;
    queue.set_property("max-size-buffers", 0u32);
    queue.set_property("max-size-bytes", BRANCH_QUEUE_BYTES);
    queue.set_property("max-size-time", BRANCH_QUEUE.as_nanos() as u64);
    // Decode and encode first when the codec is not one the packager takes as is.
    let mut chain: Vec<gst::Element> = Vec::new();
    if !passes {
        match kind {
            TrackKind::Video => {
                let convert = el("videoconvert")?;
                let raw = el("capsfilter")?;
                raw.set_property(
                    "caps",
                    gst::Caps::builder("video/x-raw")
                        .field("format", "I420")
                        .build(),
                );
                let enc = el("x264enc")?;
                enc.set_property_from_str("speed-preset", "veryfast");
                // No lookahead: frames come out as they go in, so the video stays
                // interleaved with the audio the same thread hands on.
                enc.set_property_from_str("tune", "zerolatency");
                enc.set_property_from_str("pass", "quant");
                enc.set_property("quantizer", REENCODE_QUANTIZER);
                enc.set_property("key-int-max", REENCODE_KEY_INT);
                enc.set_property("bframes", 0u32);
                chain.extend([convert, raw, enc]);
            }
            TrackKind::Audio => {
                let enc = el("avenc_aac")?;
                enc.set_property("bitrate", 160_000i32);
                chain.extend([el("audioconvert")?, el("audioresample")?, enc]);
            }
        }
    }
    chain.extend(tail);
    chain.push(filter);
    chain.push(sink.upcast());
    pipeline.add_many(&chain).map_err(|e| e.to_string())?;
    gst::Element::link_many(&chain).map_err(|e| e.to_string())?;
    for e in &chain {
        e.sync_state_with_parent().map_err(|e| e.to_string())?;
    }
    let head = chain[0]
        .static_pad("sink")
        .ok_or("branch without a sink pad")?;
    pipeline.add(&queue).map_err(|e| e.to_string())?;
    queue.sync_state_with_parent().map_err(|e| e.to_string())?;
    let queue_in = queue.static_pad("sink").ok_or("queue without a sink pad")?;
    pad.link(&queue_in).map_err(|e| e.to_string())?;
    if passes {
        return queue.link(&chain[0]).map_err(|e| e.to_string());
    }
    // decodebin's source pad appears once it knows the stream.
    let decode = el("decodebin")?;
    pipeline.add(&decode).map_err(|e| e.to_string())?;
    decode.connect_pad_added(move |_, decoded| {
        if !head.is_linked() {
            let _ = decoded.link(&head);
        }
    });
    decode.sync_state_with_parent().map_err(|e| e.to_string())?;
    queue.link(&decode).map_err(|e| e.to_string())
}

/// `ns` in ticks of `timebase`, to the nearest tick.
fn ticks(ns: u64, timebase: u32) -> i64 {
    let t = (u128::from(ns) * u128::from(timebase) + 500_000_000) / 1_000_000_000;
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// The appsink callbacks of one branch: a config event whenever the caps' codec data
/// changes, then each buffer as an access unit.
fn output_callbacks(kind: TrackKind, tx: SyncSender<MediaEvent>) -> gst_app::AppSinkCallbacks {
    let mut codec_data: Option<Bytes> = None;
    let mut timebase = VIDEO_TIMEBASE;
    gst_app::AppSinkCallbacks::builder()
        .new_sample(move |sink| {
            let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
            let data = sample
                .caps()
                .and_then(|c| c.structure(0))
                .and_then(|s| s.get::<gst::Buffer>("codec_data").ok())
                .and_then(|b| b.map_readable().ok().map(|m| Bytes::copy_from_slice(&m)));
            if let Some(data) = data.filter(|d| codec_data.as_ref() != Some(d)) {
                codec_data = Some(data.clone());
                let event = match kind {
                    TrackKind::Video => avc::parse_decoder_config(data)
                        .map(|p| MediaEvent::VideoConfig(Arc::new(VideoConfig::Avc(p.config))))
                        .map_err(|e| e.to_string()),
                    TrackKind::Audio => aac::parse_audio_specific_config(data)
                        .map(|c| {
                            timebase = c.sample_rate.max(1);
                            MediaEvent::AudioConfig(Arc::new(c))
                        })
                        .map_err(|e| e.to_string()),
                };
                match event {
                    Ok(event) => tx.send(event).map_err(|_| gst::FlowError::Flushing)?,
                    Err(e) => {
                        gst::element_error!(
                            sink,
                            gst::StreamError::Decode,
                            ("unreadable codec parameters: {}", e)
                        );
                        return Err(gst::FlowError::Error);
                    }
                }
            }
            if codec_data.is_none() {
                // Units before their parameters cannot be packaged.
                return Ok(gst::FlowSuccess::Ok);
            }
            let Some(buffer) = sample.buffer() else {
                return Ok(gst::FlowSuccess::Ok);
            };
            let Some(pts) = buffer.pts() else {
                return Ok(gst::FlowSuccess::Ok);
            };
            // Running time, not buffer time: encoders shift their timestamps (x264enc
            // by 1000 hours, see `pipeline::timing`) and their segment with them. The
            // decode time keeps its distance to the presentation time.
            let Some(running) = sample
                .segment()
                .and_then(|s| s.downcast_ref::<gst::ClockTime>())
                .and_then(|s| s.to_running_time(pts))
            else {
                return Ok(gst::FlowSuccess::Ok);
            };
            let pts_ticks = ticks(running.nseconds(), timebase);
            let dts_ticks = match buffer.dts() {
                Some(dts) => {
                    pts_ticks - (ticks(pts.nseconds(), timebase) - ticks(dts.nseconds(), timebase))
                }
                None => pts_ticks,
            };
            let Ok(map) = buffer.map_readable() else {
                return Ok(gst::FlowSuccess::Ok);
            };
            let unit = AccessUnit {
                kind,
                dts: dts_ticks,
                pts: pts_ticks,
                timebase,
                keyframe: kind == TrackKind::Audio
                    || !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
                data: Bytes::copy_from_slice(map.as_slice()),
                received: Instant::now(),
            };
            tx.send(MediaEvent::Unit(unit))
                .map_err(|_| gst::FlowError::Flushing)?;
            Ok(gst::FlowSuccess::Ok)
        })
        .build()
}
