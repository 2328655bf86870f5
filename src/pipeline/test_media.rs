//! For the pipeline's tests: real H.264 and AAC made by GStreamer's own encoders, and
//! a [`LadderEvents`] that records what a ladder reports.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::{lock, LadderEvents};
use crate::ingest::{aac, avc};
use crate::media::{AacConfig, AvcConfig, MediaEvent, TrackKind};

/// One encoded frame: its bytes and whether it is a keyframe.
pub type Frame = (Bytes, bool);

/// `frames` frames of a `width`x`height` 30 fps test pattern, H.264 (x264 ultrafast,
/// no B-frames, a keyframe every `gop` frames), with the stream's parameters.
pub fn h264(width: u32, height: u32, frames: u32, gop: u32) -> (AvcConfig, Vec<Frame>) {
    let launch = format!(
        "videotestsrc num-buffers={frames} pattern=ball \
         ! video/x-raw,width={width},height={height},framerate=30/1 \
         ! x264enc speed-preset=ultrafast tune=zerolatency bframes=0 key-int-max={gop} \
           option-string=scenecut=0 \
         ! video/x-h264,stream-format=avc,alignment=au ! appsink name=out sync=false"
    );
    let (codec_data, frames) = encode(&launch);
    let config = avc::parse_decoder_config(codec_data)
        .expect("x264's avcC parses")
        .config;
    (config, frames)
}

/// `frames` AAC-LC frames (1024 samples each) of a 48 kHz stereo sine.
pub fn aac(frames: u32) -> (AacConfig, Vec<Bytes>) {
    let launch = format!(
        "audiotestsrc num-buffers={frames} samplesperbuffer=1024 \
         ! audio/x-raw,rate=48000,channels=2 ! avenc_aac \
         ! audio/mpeg,mpegversion=4,stream-format=raw ! appsink name=out sync=false"
    );
    let (codec_data, frames) = encode(&launch);
    let config = aac::parse_audio_specific_config(codec_data).expect("avenc_aac's ASC parses");
    (config, frames.into_iter().map(|(data, _)| data).collect())
}

/// Runs `launch` to its end; returns the `codec_data` of the caps at `out` and every
/// buffer that reached it.
fn encode(launch: &str) -> (Bytes, Vec<Frame>) {
    super::init().expect("GStreamer");
    let pipeline = gst::parse::launch(launch)
        .expect("test pipeline")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let sink = pipeline
        .by_name("out")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .expect("appsink out");
    pipeline
        .set_state(gst::State::Playing)
        .expect("test pipeline plays");
    let mut codec_data = None;
    let mut frames = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        if codec_data.is_none() {
            codec_data = sample
                .caps()
                .and_then(|c| c.structure(0))
                .and_then(|s| s.get::<gst::Buffer>("codec_data").ok())
                .map(|b| Bytes::copy_from_slice(&b.map_readable().expect("readable")));
        }
        let buffer = sample.buffer().expect("buffer");
        let map = buffer.map_readable().expect("readable");
        let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        frames.push((Bytes::copy_from_slice(&map), keyframe));
    }
    let _ = pipeline.set_state(gst::State::Null);
    (codec_data.expect("codec_data in the caps"), frames)
}

/// Everything a ladder reported, by kind and rung index.
#[derive(Default)]
pub struct Recorded {
    /// Presentation times (source ticks) and keyframe flags of encoded units.
    pub units: HashMap<(TrackKind, usize), Vec<(i64, bool)>>,
    pub dropped: HashMap<(TrackKind, usize), u64>,
    pub failures: Vec<String>,
}

/// A [`LadderEvents`] that keeps what it is told.
#[derive(Clone, Default)]
pub struct Recorder(pub Arc<Mutex<Recorded>>);

impl Recorder {
    pub fn units(&self, kind: TrackKind, index: usize) -> Vec<(i64, bool)> {
        let r = lock(&self.0);
        r.units.get(&(kind, index)).cloned().unwrap_or_default()
    }

    pub fn dropped(&self, kind: TrackKind, index: usize) -> u64 {
        let r = lock(&self.0);
        r.dropped.get(&(kind, index)).copied().unwrap_or(0)
    }

    pub fn failures(&self) -> Vec<String> {
        lock(&self.0).failures.clone()
    }
}

impl LadderEvents for Recorder {
    fn encoded(&self, kind: TrackKind, index: usize, event: MediaEvent) {
        if let MediaEvent::Unit(unit) = event {
            let mut r = lock(&self.0);
            r.units
                .entry((kind, index))
                .or_default()
                .push((unit.pts, unit.keyframe));
        }
    }

    fn dropped(&self, kind: TrackKind, index: usize, frames: u64) {
        *lock(&self.0).dropped.entry((kind, index)).or_default() += frames;
    }

    fn failed(&self, message: String) {
        lock(&self.0).failures.push(message);
    }
}

/// Decoded buffers waiting in the queues in front of `pipeline`'s encoders.
pub fn queued_decoded(pipeline: &gst::Pipeline) -> u32 {
    pipeline
        .iterate_elements()
        .into_iter()
        .flatten()
        .filter(|e| e.factory().is_some_and(|f| f.name() == "queue"))
        .map(|q| q.property::<u32>("current-level-buffers"))
        .sum()
}

/// Polls `done` until it holds; panics with `what` after `limit`.
pub fn wait_until(limit: std::time::Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        assert!(std::time::Instant::now() < deadline, "never {what}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
