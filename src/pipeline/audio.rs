//! The audio ladder: `appsrc ! avdec_aac ! tee`, then per rendition
//! `queue ! audioconvert ! audioresample ! capsfilter ! avenc_aac ! appsink`.
//!
//! Bounds, in real time: the `appsrc` holds at most `AUDIO_INPUT` (72 AAC frames,
//! 1.5 s at 48 kHz) and when full drops its oldest frame: every AAC frame decodes on
//! its own, so a drop is a short gap that never damages what follows, and what stays
//! is the newest audio, which is what a live listener should hear. Each rendition's
//! queue holds `AUDIO_QUEUE_BUFFERS` decoded buffers and drops the one arriving when
//! full. Drops are counted per rendition through [`LadderEvents::dropped`]. Offline
//! every bound blocks the pusher instead.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::branch::{
    add_chain, element, encoded_output, rung_queue, Branch, Input, InputBound, Loses,
};
use super::profile::AudioRungConfig;
use super::timing::PipelineClock;
use super::{LadderEvents, Pace, PipelineError};
use crate::ingest::aac;
use crate::media::{AacConfig, AccessUnit, MediaEvent, TrackKind};

/// Decoded buffers an audio rendition may hold before its encoder (about 0.5 s).
const AUDIO_QUEUE_BUFFERS: u32 = 24;

/// The `appsrc` bound: AAC frames the decoder may lag behind, 1.5 s at 48 kHz (1024
/// samples a frame), 3 s at 24 kHz. 1 MiB is far above 72 frames of any AAC (at most
/// 768 bytes per channel each). When full the oldest frame goes.
const AUDIO_INPUT: InputBound = InputBound {
    buffers: 72,
    bytes: 1024 * 1024,
    loses: Loses::Oldest,
};

/// One source's running audio ladder.
pub struct AudioLadder {
    branch: Branch,
    clock: PipelineClock,
    renditions: usize,
    events: Arc<dyn LadderEvents>,
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
        let input = Input::new(&caps, pace, AUDIO_INPUT);
        let decoder = element("avdec_aac")?;
        let tee = element("tee")?;
        add_chain(&pipeline, &[input.element(), &decoder, &tee])?;
        for (index, rung) in rungs.iter().enumerate() {
            add_rendition(&pipeline, &tee, index, rung, pace, clock, &events)?;
        }
        let branch = Branch::start(pipeline, input, Arc::clone(&events))?;
        Ok(Self {
            branch,
            clock,
            renditions: rungs.len(),
            events,
        })
    }

    /// Feeds one source AAC frame. Never blocks in real time: a full input drops its
    /// oldest frame, counted for every rendition; offline it waits.
    pub fn push(&mut self, unit: &AccessUnit) {
        let Some(pts) = self.clock.to_nanos(unit.pts) else {
            return;
        };
        let mut buffer = gst::Buffer::from_slice(unit.data.clone());
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::from_nseconds(pts));
        }
        self.branch.push(buffer);
        let lost = self.branch.take_dropped();
        if lost > 0 {
            for index in 0..self.renditions {
                self.events.dropped(TrackKind::Audio, index, lost);
            }
        }
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::pipeline::test_media::{self, queued_decoded, wait_until, Recorder};

    /// 48 kHz, 1024 samples a frame.
    const FRAME_TICKS: i64 = 1024;

    fn unit(i: usize, frames: &[Bytes]) -> AccessUnit {
        let t = i as i64 * FRAME_TICKS;
        AccessUnit {
            kind: TrackKind::Audio,
            dts: t,
            pts: t,
            timebase: 48_000,
            keyframe: true,
            data: frames[i % frames.len()].clone(),
            received: Instant::now(),
        }
    }

    /// Seven minutes of audio pushed at once: the input fills to its bound and never
    /// past it (it used to grow without one), every frame is either encoded or
    /// counted as dropped, and frames pushed afterwards at the pace the pipeline
    /// keeps are all encoded, none dropped.
    #[test]
    fn a_source_far_faster_than_real_time_is_bounded_counted_and_recovers() {
        const BURST: usize = 20_000;
        const TAIL: usize = 100;
        let (config, frames) = test_media::aac(250);
        let rungs = [AudioRungConfig {
            name: "a48".into(),
            bitrate_kbps: 48,
            channels: 1,
        }];
        let events = Recorder::default();
        let mut ladder = AudioLadder::start(
            &config,
            0,
            48_000,
            &rungs,
            Pace::Realtime,
            Arc::new(events.clone()),
        )
        .expect("ladder");
        let mut peak = 0;
        for i in 0..BURST {
            ladder.push(&unit(i, &frames));
            peak = peak.max(ladder.branch.backlog());
        }
        assert_eq!(peak, AUDIO_INPUT.buffers, "the input's peak");
        assert!(events.dropped(TrackKind::Audio, 0) > 0, "no drop counted");

        // Each tail frame once everything before it reached the encoder.
        let idle = |ladder: &AudioLadder| {
            ladder.branch.backlog() == 0 && queued_decoded(ladder.branch.pipeline()) == 0
        };
        wait_until(Duration::from_secs(30), "drained", || idle(&ladder));
        let before_tail = (
            events.units(TrackKind::Audio, 0).len(),
            events.dropped(TrackKind::Audio, 0),
        );
        for i in BURST..BURST + TAIL {
            ladder.push(&unit(i, &frames));
            wait_until(Duration::from_secs(10), "took the frame", || idle(&ladder));
        }
        assert_eq!(
            events.dropped(TrackKind::Audio, 0),
            before_tail.1,
            "a tail frame dropped"
        );
        ladder.finish(Duration::from_secs(30));
        assert!(events.failures().is_empty(), "{:?}", events.failures());

        let units = events.units(TrackKind::Audio, 0);
        assert!(
            units.len() >= before_tail.0 + TAIL,
            "the tail did not come out"
        );
        // Every frame pushed was encoded or counted as dropped; the encoder adds a
        // frame or two of its own when it drains.
        let dropped = events.dropped(TrackKind::Audio, 0);
        let kept = (BURST + TAIL) as u64 - dropped;
        let encoded = units.len() as u64;
        assert!(
            (kept..=kept + 3).contains(&encoded),
            "{encoded} encoded, {dropped} dropped of {}",
            BURST + TAIL
        );
    }
}
