//! Audio extraction with GStreamer, blocking (the `extract_audio` job runs it on a
//! blocking thread; GStreamer adds its own streaming threads).
//!
//! Every pipeline starts `filesrc ! parsebin`: parsebin finds the container and
//! exposes each elementary stream not decoded; audio parsed, video as the demuxer
//! hands it out (no parser reads it), so video costs its demuxing only.
//! The first audio stream goes to the rendition's tail, every other stream to a
//! `fakesink` (in a rendition pass its buffers are dropped at the pad, and the whole
//! pass runs in the demuxer's thread):
//! - probe: `fakesink` for all, prerolled, to read the streams' caps and the duration;
//! - M4A from AAC: `aacparse ! mp4mux` — the AAC frames are copied, not re-encoded;
//! - M4A from other audio: `decodebin ! audioconvert ! audioresample ! avenc_aac ! aacparse ! mp4mux`;
//! - MP3: `decodebin ! audioconvert ! audioresample ! pcmround ! lamemp3enc (192 kb/s CBR)
//!   ! xingmux ! id3v2mux` (the Xing header gives players the frame count, so durations
//!   and seeking are exact). `pcmround` (ours, in `gst-plugins/`) makes the 16-bit
//!   samples LAME takes by rounding, where `audioconvert` would dither or truncate:
//!   either turns a decoded pair of identical channels into two that differ, and
//!   LAME spends bits and about a third more CPU on coding that difference.
//!
//! Writers write `<file>.tmp`, fsync it and rename it over the final name, so a
//! repeated attempt (after a crash) starts clean and a final name is always complete.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;

/// Why extraction failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    /// The file is not something we can read; the text is for the asset's owner.
    #[error("{0}")]
    BadInput(String),
    /// The file has no audio stream.
    #[error(
        "the file has no audio track, so there is no audio to download; upload a file with sound"
    )]
    NoAudio,
    /// The server could not write or run the pipeline; worth another attempt.
    #[error("{0}")]
    Server(String),
    #[error("cancelled")]
    Cancelled,
}

/// What the probe found.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub duration: Option<Duration>,
    /// Caps name of the first audio stream, with `aac` set when it is AAC.
    pub audio: Option<AudioStream>,
    pub has_video: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AudioStream {
    pub caps: String,
    pub aac: bool,
}

/// What a rendition pass makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// AAC in MP4, copied from the source.
    M4aCopy,
    /// AAC in MP4, encoded from decoded audio.
    M4aEncode,
    /// MP3, 192 kb/s CBR.
    Mp3,
}

impl Output {
    /// Whether the tail decodes (`decodebin` in front of [`Output::tail`],
    /// linked by hand: decodebin's pad appears later).
    fn decodes(self) -> bool {
        !matches!(self, Output::M4aCopy)
    }

    fn tail(self) -> &'static str {
        match self {
            Output::M4aCopy => "aacparse ! mp4mux faststart=true ! filesink name=out",
            Output::M4aEncode => {
                "audioconvert ! audioresample ! avenc_aac bitrate=160000 ! aacparse \
                 ! mp4mux faststart=true ! filesink name=out"
            }
            Output::Mp3 => {
                "audioconvert ! audioresample ! audio/x-raw,format=F32LE ! pcmround \
                 ! lamemp3enc target=bitrate bitrate=192 cbr=true ! xingmux ! id3v2mux \
                 ! filesink name=out"
            }
        }
    }
}

/// How long a probe may take before the file counts as unreadable.
const PROBE_LIMIT: Duration = Duration::from_secs(20);
/// A pass whose position does not move for this long has stalled.
const STALL_LIMIT: Duration = Duration::from_secs(60);

fn gst_init() -> Result<(), ExtractError> {
    crate::pipeline::init().map_err(|e| ExtractError::Server(format!("GStreamer: {e}")))
}

fn is_audio(caps: &str) -> bool {
    caps.starts_with("audio/")
}

/// Whether `s` is an elementary video stream (not a container whose caps are
/// `video/…` too, like `video/quicktime`).
fn is_video_codec(s: &gst::StructureRef) -> bool {
    const CODECS: [&str; 10] = [
        "video/x-h264",
        "video/x-h265",
        "video/x-vp8",
        "video/x-vp9",
        "video/x-av1",
        "video/x-divx",
        "video/x-xvid",
        "video/x-prores",
        "video/x-raw",
        "image/jpeg",
    ];
    CODECS.contains(&s.name().as_str())
        || (s.name() == "video/mpeg" && s.get::<bool>("systemstream") != Ok(true))
}

fn is_aac(caps: &gst::CapsRef) -> bool {
    caps.structure(0).is_some_and(|s| {
        s.name() == "audio/mpeg" && matches!(s.get::<i32>("mpegversion"), Ok(2 | 4))
    })
}

/// `filesrc location=src ! parsebin`, with `on_pad` linking each exposed stream.
fn source_pipeline(
    src: &Path,
    on_pad: impl Fn(&gst::Pipeline, &gst::Pad) + Send + Sync + 'static,
) -> Result<gst::Pipeline, ExtractError> {
    let make = |name: &str| {
        gst::ElementFactory::make(name)
            .build()
            .map_err(|e| ExtractError::Server(format!("GStreamer element {name}: {e}")))
    };
    let pipeline = gst::Pipeline::new();
    let filesrc = make("filesrc")?;
    filesrc.set_property("location", src.to_string_lossy().as_ref());
    let parsebin = make("parsebin")?;
    // Video is never used here: parsebin exposes it as the demuxer hands it out,
    // without plugging a parser that would read every byte of it (the bulk of the
    // file, and most of what extraction from a 4K source cost).
    parsebin.connect("autoplug-continue", false, |args| {
        let elementary_video = args
            .get(2)
            .and_then(|v| v.get::<gst::Caps>().ok())
            .is_some_and(|caps| caps.structure(0).is_some_and(is_video_codec));
        Some((!elementary_video).to_value())
    });
    pipeline
        .add_many([&filesrc, &parsebin])
        .and_then(|_| {
            filesrc
                .link(&parsebin)
                .map_err(|e| gst::glib::bool_error!("{e}"))
        })
        .map_err(|e| ExtractError::Server(format!("GStreamer: {e}")))?;
    let weak = pipeline.downgrade();
    parsebin.connect_pad_added(move |_, pad| {
        if let Some(pipeline) = weak.upgrade() {
            on_pad(&pipeline, pad);
        }
    });
    Ok(pipeline)
}

/// `queue ! fakesink` for a stream nobody wants. The queue matters: the demuxer
/// feeds every stream from one thread, and a sink waiting for preroll would block it
/// before the other streams got their first buffer.
fn link_fakesink(pipeline: &gst::Pipeline, pad: &gst::Pad) {
    let Ok(bin) = gst::parse::bin_from_description("queue ! fakesink sync=false", true) else {
        return;
    };
    if pipeline.add(&bin).is_err() {
        return;
    }
    let _ = bin.sync_state_with_parent();
    if let Some(sinkpad) = bin.static_pad("sink") {
        let _ = pad.link(&sinkpad);
    }
}

/// A sink for a stream a rendition pass does not use, costing the demuxer thread
/// nothing: buffers are dropped at the pad, so the sink never prerolls and
/// (`async=false`) the pipeline does not wait for it. Events (caps, EOS) still
/// reach it. Unlike [`link_fakesink`] no queue thread wakes for each buffer; with
/// the decoding tail also in the demuxer's thread, a pass runs in one thread as
/// ffmpeg does, instead of handing every video and audio buffer to another.
fn link_dropping_sink(pipeline: &gst::Pipeline, pad: &gst::Pad) {
    let Ok(sink) = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .property("async", false)
        .build()
    else {
        return;
    };
    if pipeline.add(&sink).is_err() {
        return;
    }
    let _ = sink.sync_state_with_parent();
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        |_, _| gst::PadProbeReturn::Drop,
    );
    if let Some(sinkpad) = sink.static_pad("sink") {
        let _ = pad.link(&sinkpad);
    }
}

fn pad_caps(pad: &gst::Pad) -> gst::Caps {
    pad.current_caps().unwrap_or_else(|| pad.query_caps(None))
}

/// The text of an error message for a person: the error and GStreamer's detail.
fn error_text(err: &gst::message::Error) -> String {
    let mut text = err.error().to_string();
    if let Some(debug) = err.debug() {
        // The debug string starts with a source location; keep its last line only.
        if let Some(last) = debug.lines().last() {
            let last = last.rsplit(':').next().unwrap_or(last).trim();
            if !last.is_empty() && !text.contains(last) {
                text = format!("{text} ({last})");
            }
        }
    }
    text
}

fn stop(pipeline: &gst::Pipeline) {
    let _ = pipeline.set_state(gst::State::Null);
}

/// Reads the file's streams and duration. Empty files, files GStreamer cannot read
/// and files without audio are [`ExtractError::BadInput`] / [`ExtractError::NoAudio`].
pub fn probe(src: &Path, cancelled: &dyn Fn() -> bool) -> Result<Probe, ExtractError> {
    gst_init()?;
    let size = std::fs::metadata(src)
        .map_err(|e| ExtractError::Server(format!("cannot read the uploaded file: {e}")))?
        .len();
    if size == 0 {
        return Err(ExtractError::BadInput(
            "the file is empty (0 bytes); upload it again".into(),
        ));
    }
    let found: Arc<Mutex<Vec<gst::Caps>>> = Arc::default();
    let sink_found = Arc::clone(&found);
    let pipeline = source_pipeline(src, move |pipeline, pad| {
        sink_found
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(pad_caps(pad));
        link_fakesink(pipeline, pad);
    })?;
    let result = (|| {
        pipeline
            .set_state(gst::State::Paused)
            .map_err(|_| not_media("GStreamer could not open it"))?;
        let bus = pipeline
            .bus()
            .ok_or_else(|| ExtractError::Server("pipeline without a bus".into()))?;
        let deadline = Instant::now() + PROBE_LIMIT;
        loop {
            if cancelled() {
                return Err(ExtractError::Cancelled);
            }
            if Instant::now() > deadline {
                return Err(not_media("reading it took too long"));
            }
            let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(200)) else {
                continue;
            };
            match msg.view() {
                gst::MessageView::AsyncDone(_) => break,
                gst::MessageView::Eos(_) => break,
                gst::MessageView::Error(err) => return Err(not_media(&error_text(err))),
                _ => {}
            }
        }
        let duration = pipeline
            .query_duration::<gst::ClockTime>()
            .map(|d| Duration::from_nanos(d.nseconds()));
        let caps = found.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let names: Vec<String> = caps
            .iter()
            .filter_map(|c| c.structure(0).map(|s| s.name().to_string()))
            .collect();
        if names.is_empty() {
            return Err(not_media("it holds no audio or video stream"));
        }
        let audio = caps.iter().find_map(|c| {
            let name = c.structure(0)?.name().to_string();
            is_audio(&name).then(|| AudioStream {
                caps: name,
                aac: is_aac(c),
            })
        });
        Ok(Probe {
            duration,
            has_video: names.iter().any(|n| n.starts_with("video/")),
            audio,
        })
    })();
    stop(&pipeline);
    let probe = result?;
    if probe.audio.is_none() {
        return Err(ExtractError::NoAudio);
    }
    Ok(probe)
}

fn not_media(why: &str) -> ExtractError {
    ExtractError::BadInput(format!("not a media file GStreamer can read: {why}"))
}

/// Writes `output` of the first audio stream of `src` to `dst` (through `dst.tmp`).
/// `progress` gets 0.0–1.0 from the pipeline position over `duration`.
pub fn render(
    src: &Path,
    dst: &Path,
    output: Output,
    duration: Option<Duration>,
    progress: &dyn Fn(f64),
    cancelled: &dyn Fn() -> bool,
) -> Result<u64, ExtractError> {
    gst_init()?;
    let tmp = super::files::temp_of(dst);
    let _ = std::fs::remove_file(&tmp);
    let linked = Arc::new(AtomicBool::new(false));
    let link_error: Arc<Mutex<Option<String>>> = Arc::default();
    let tmp_path = tmp.to_string_lossy().into_owned();
    let (flag, errors) = (Arc::clone(&linked), Arc::clone(&link_error));
    let pipeline = source_pipeline(src, move |pipeline, pad| {
        let caps = pad_caps(pad);
        let name = caps
            .structure(0)
            .map(|s| s.name().to_string())
            .unwrap_or_default();
        if !is_audio(&name) || flag.swap(true, Ordering::SeqCst) {
            link_dropping_sink(pipeline, pad);
            return;
        }
        let linked = (|| -> Result<(), String> {
            let bin =
                gst::parse::bin_from_description(output.tail(), true).map_err(|e| e.to_string())?;
            if let Some(out) = bin.by_name("out") {
                out.set_property("location", &tmp_path);
            }
            pipeline.add(&bin).map_err(|e| e.to_string())?;
            bin.sync_state_with_parent().map_err(|e| e.to_string())?;
            let sink = bin.static_pad("sink").ok_or("tail without a sink pad")?;
            if !output.decodes() {
                pad.link(&sink).map_err(|e| format!("{e:?}"))?;
                return Ok(());
            }
            let make = |name: &str| {
                gst::ElementFactory::make(name)
                    .build()
                    .map_err(|e| format!("GStreamer element {name}: {e}"))
            };
            // No queue in front: decoding and encoding run in the demuxer's thread
            // (see link_dropping_sink).
            let dec = make("decodebin")?;
            pipeline.add(&dec).map_err(|e| e.to_string())?;
            let decoded = AtomicBool::new(false);
            dec.connect_pad_added(move |_, dpad| {
                let caps = pad_caps(dpad);
                let audio = caps
                    .structure(0)
                    .is_some_and(|s| s.name().starts_with("audio/"));
                if audio && !decoded.swap(true, Ordering::SeqCst) {
                    let _ = dpad.link(&sink);
                }
            });
            dec.sync_state_with_parent().map_err(|e| e.to_string())?;
            let dsink = dec
                .static_pad("sink")
                .ok_or("decodebin without a sink pad")?;
            pad.link(&dsink).map_err(|e| format!("{e:?}"))?;
            Ok(())
        })();
        if let Err(e) = linked {
            *errors.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        }
    })?;
    let result = run_to_eos(&pipeline, duration, progress, cancelled);
    stop(&pipeline);
    if let Some(e) = link_error.lock().unwrap_or_else(|p| p.into_inner()).take() {
        let _ = std::fs::remove_file(&tmp);
        return Err(ExtractError::Server(format!("GStreamer: {e}")));
    }
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if !linked.load(Ordering::SeqCst) {
        return Err(ExtractError::NoAudio);
    }
    let io = |e: std::io::Error| ExtractError::Server(format!("writing {}: {e}", dst.display()));
    let file = std::fs::File::open(&tmp).map_err(io)?;
    file.sync_all().map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    std::fs::rename(&tmp, dst).map_err(io)?;
    if let Some(dir) = dst.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(size)
}

fn run_to_eos(
    pipeline: &gst::Pipeline,
    duration: Option<Duration>,
    progress: &dyn Fn(f64),
    cancelled: &dyn Fn() -> bool,
) -> Result<(), ExtractError> {
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| not_media("GStreamer could not open it"))?;
    let bus = pipeline
        .bus()
        .ok_or_else(|| ExtractError::Server("pipeline without a bus".into()))?;
    let mut last_position = None;
    let mut moved_at = Instant::now();
    loop {
        if cancelled() {
            return Err(ExtractError::Cancelled);
        }
        if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(200)) {
            match msg.view() {
                gst::MessageView::Eos(_) => return Ok(()),
                gst::MessageView::Error(err) => {
                    return Err(ExtractError::BadInput(format!(
                        "the file could not be read to its end: {}",
                        error_text(err)
                    )))
                }
                _ => {}
            }
        }
        let position = pipeline.query_position::<gst::ClockTime>();
        if position != last_position {
            last_position = position;
            moved_at = Instant::now();
        } else if moved_at.elapsed() > STALL_LIMIT {
            return Err(ExtractError::Server("the extraction stalled".into()));
        }
        if let (Some(pos), Some(total)) = (position, duration) {
            if !total.is_zero() {
                progress((pos.nseconds() as f64 / total.as_nanos() as f64).clamp(0.0, 1.0));
            }
        }
    }
}
