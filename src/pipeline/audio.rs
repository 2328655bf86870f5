//! The audio ladder: `appsrc ! avdec_aac ! tee`, then per rendition
//! `queue ! audioconvert ! audioresample ! capsfilter ! avenc_aac ! appsink`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::branch::{add_chain, element, encoded_output, rung_queue, Branch};
use super::profile::AudioRungConfig;
use super::timing::PipelineClock;
use super::{LadderEvents, Pace, PipelineError};
use crate::ingest::aac;
use crate::media::{AacConfig, AccessUnit, MediaEvent, TrackKind};

/// Decoded buffers an audio rendition may hold before its encoder (about 0.5 s).
const AUDIO_QUEUE_BUFFERS: u32 = 24;

/// One source's running audio ladder.
pub struct AudioLadder {
    branch: Branch,
    clock: PipelineClock,
}

impl AudioLadder {
    pub fn start(
        source: &AacConfig,
        first_dts: i64,
        timebase: u32,
        rungs: &[AudioRungConfig],
        pace: Pace,
        events: Arc<dyn LadderEvents>,
    ) -> Result<Self, PipelineError> {
        super::init()?;
        let clock = PipelineClock::new(first_dts, timebase);
        let pipeline = gst::Pipeline::new();
        let caps = gst::Caps::builder("audio/mpeg")
            .field("mpegversion", 4i32)
            .field("stream-format", "raw")
            .field("codec_data", gst::Buffer::from_slice(source.asc.clone()))
            .field("rate", i32::try_from(source.sample_rate).unwrap_or(48_000))
            .field("channels", i32::from(source.channels.max(1)))
            .build();
        let src = gst_app::AppSrc::builder()
            .caps(&caps)
            .format(gst::Format::Time)
            .is_live(pace == Pace::Realtime)
            .block(pace == Pace::Offline)
            .max_bytes(16 * 1024 * 1024)
            .build();
        let decoder = element("avdec_aac")?;
        let tee = element("tee")?;
        add_chain(&pipeline, &[src.upcast_ref(), &decoder, &tee])?;
        for (index, rung) in rungs.iter().enumerate() {
            add_rendition(&pipeline, &tee, index, rung, pace, clock, &events)?;
        }
        let branch = Branch::start(pipeline, src, events)?;
        Ok(Self { branch, clock })
    }

    /// Feeds one source AAC frame.
    pub fn push(&mut self, unit: &AccessUnit) {
        let Some(pts) = self.clock.to_nanos(unit.pts) else {
            return;
        };
        let mut buffer = gst::Buffer::from_slice(unit.data.clone());
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::from_nseconds(pts));
        }
        self.branch.push(buffer);
    }

    pub fn failed(&self) -> bool {
        self.branch.failed()
    }

    pub fn finish(self, limit: Duration) {
        self.branch.finish(limit);
    }
}

fn add_rendition(
    pipeline: &gst::Pipeline,
    tee: &gst::Element,
    index: usize,
    rung: &AudioRungConfig,
    pace: Pace,
    clock: PipelineClock,
    events: &Arc<dyn LadderEvents>,
) -> Result<(), PipelineError> {
    let queue = rung_queue(AUDIO_QUEUE_BUFFERS, pace, TrackKind::Audio, index, events)?;
    let convert = element("audioconvert")?;
    let resample = element("audioresample")?;
    let shape = element("capsfilter")?;
    shape.set_property(
        "caps",
        gst::Caps::builder("audio/x-raw")
            .field("channels", i32::try_from(rung.channels).unwrap_or(1))
            .build(),
    );
    let encoder = element("avenc_aac")?;
    encoder.set_property(
        "bitrate",
        i32::try_from(rung.bitrate_kbps * 1000).unwrap_or(48_000),
    );
    let raw = element("capsfilter")?;
    raw.set_property(
        "caps",
        gst::Caps::builder("audio/mpeg")
            .field("mpegversion", 4i32)
            .field("stream-format", "raw")
            .build(),
    );
    let sink = gst_app::AppSink::builder()
        .sync(false)
        .max_buffers(super::video::APPSINK_BUFFERS)
        .build();
    add_chain(
        pipeline,
        &[
            &queue,
            &convert,
            &resample,
            &shape,
            &encoder,
            &raw,
            sink.upcast_ref(),
        ],
    )?;
    tee.link(&queue)
        .map_err(|e| PipelineError::Build(e.to_string()))?;
    sink.set_callbacks(encoded_output(
        TrackKind::Audio,
        index,
        clock,
        Arc::clone(events),
        audio_parameters,
    ));
    Ok(())
}

/// The rendition's new parameters, from the encoder's AudioSpecificConfig.
fn audio_parameters(asc: Bytes) -> Option<MediaEvent> {
    match aac::parse_audio_specific_config(asc) {
        Ok(config) => Some(MediaEvent::AudioConfig(Arc::new(config))),
        Err(e) => {
            tracing::warn!(error = %e, "encoder produced an unreadable AudioSpecificConfig");
            None
        }
    }
}
