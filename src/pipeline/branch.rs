//! One running GStreamer pipeline fed through an `appsrc`: start, bus errors,
//! draining on end of stream, teardown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::time::Instant;

use super::timing::PipelineClock;
use super::{lock, LadderEvents, Pace, PipelineError};
use crate::media::{AccessUnit, MediaEvent, TrackKind};

/// A playing pipeline and the `appsrc` that feeds it. Dropping it stops the pipeline
/// (state NULL), which joins its streaming threads.
pub struct Branch {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    eos: mpsc::Receiver<()>,
    failed: Arc<AtomicBool>,
}

impl Branch {
    /// Sets `pipeline` playing. Bus errors mark the branch failed and are reported
    /// once through `events`; bus messages are handled synchronously and never queue
    /// up (nothing polls this bus).
    pub fn start(
        pipeline: gst::Pipeline,
        src: gst_app::AppSrc,
        events: Arc<dyn LadderEvents>,
    ) -> Result<Self, PipelineError> {
        let bus = pipeline
            .bus()
            .ok_or_else(|| PipelineError::Build("pipeline without a bus".into()))?;
        let (eos_tx, eos) = mpsc::sync_channel(1);
        let failed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&failed);
        bus.set_sync_handler(move |_, message| {
            match message.view() {
                gst::MessageView::Eos(_) => {
                    let _ = eos_tx.try_send(());
                }
                // Only the first error is reported: later ones follow from it.
                gst::MessageView::Error(err) if !flag.swap(true, Ordering::SeqCst) => {
                    let from = err
                        .src()
                        .map(|s| s.path_string().to_string())
                        .unwrap_or_default();
                    let detail = err.debug().map(|d| d.to_string()).unwrap_or_default();
                    tracing::debug!(%from, %detail, "GStreamer error details");
                    events.failed(format!("{from}: {}", err.error()));
                }
                gst::MessageView::Warning(w) => {
                    tracing::debug!(warning = %w.error(), "GStreamer warning");
                }
                _ => {}
            }
            gst::BusSyncReply::Drop
        });
        if let Err(e) = pipeline.set_state(gst::State::Playing) {
            let _ = pipeline.set_state(gst::State::Null);
            return Err(PipelineError::Build(format!(
                "cannot start the pipeline: {e}"
            )));
        }
        Ok(Self {
            pipeline,
            src,
            eos,
            failed,
        })
    }

    /// Hands one buffer to the pipeline; `false` once the pipeline stopped taking
    /// data (it failed or is shutting down).
    pub fn push(&self, buffer: gst::Buffer) -> bool {
        self.src.push_buffer(buffer).is_ok() && !self.failed()
    }

    /// Buffers waiting in the `appsrc`: how far the first element lags behind.
    pub fn backlog(&self) -> u64 {
        self.src.current_level_buffers()
    }

    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    /// Ends the stream and lets the encoders drain for at most `limit`, so the last
    /// frames are published, then stops the pipeline.
    pub fn finish(self, limit: Duration) {
        if !self.failed()
            && self.src.end_of_stream().is_ok()
            && self.eos.recv_timeout(limit).is_err()
        {
            tracing::debug!("pipeline did not drain in time; stopping it");
        }
        // Drop stops it.
    }
}

impl Drop for Branch {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
        if let Some(bus) = self.pipeline.bus() {
            bus.unset_sync_handler();
        }
    }
}

/// Makes an element, naming the missing plugin when it is not installed.
pub fn element(factory: &str) -> Result<gst::Element, PipelineError> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| PipelineError::MissingElement(factory.to_string()))
}

/// Adds `elements` to `pipeline` and links them in order.
pub fn add_chain(
    pipeline: &gst::Pipeline,
    elements: &[&gst::Element],
) -> Result<(), PipelineError> {
    pipeline
        .add_many(elements.iter().copied())
        .map_err(|e| PipelineError::Build(e.to_string()))?;
    gst::Element::link_many(elements.iter().copied())
        .map_err(|e| PipelineError::Build(e.to_string()))
}

/// The queue in front of a rung, holding at most `buffers`. In real time it is leaky:
/// when full it drops its oldest buffer, reported through `events`; offline it blocks.
pub fn rung_queue(
    buffers: u32,
    pace: Pace,
    kind: TrackKind,
    index: usize,
    events: &Arc<dyn LadderEvents>,
) -> Result<gst::Element, PipelineError> {
    let queue = element("queue")?;
    queue.set_property("max-size-buffers", buffers);
    queue.set_property("max-size-bytes", 0u32);
    queue.set_property("max-size-time", 0u64);
    if pace == Pace::Realtime {
        queue.set_property_from_str("leaky", "downstream");
        let events = Arc::clone(events);
        // A full leaky queue drops its oldest buffer right after this signal.
        queue.connect("overrun", false, move |_| {
            events.dropped(kind, index, 1);
            None
        });
    }
    Ok(queue)
}

/// The running time of an output buffer: the pipeline time of its input. Its PTS is
/// not: GStreamer encoders shift timestamps and segment by 1000 hours (`min-pts`) so
/// that decode times are never negative.
pub fn running_time(sample: &gst::Sample, buffer: &gst::BufferRef) -> Option<gst::ClockTime> {
    let pts = buffer.pts()?;
    let segment = sample.segment()?.downcast_ref::<gst::ClockTime>()?;
    segment.to_running_time(pts)
}

/// The sample's `codec_data` when it differs from the last one seen (kept in `last`).
pub fn new_codec_data(sample: &gst::Sample, last: &Mutex<Option<Bytes>>) -> Option<Bytes> {
    let caps = sample.caps()?;
    let codec_data = caps.structure(0)?.get::<gst::Buffer>("codec_data").ok()?;
    let map = codec_data.map_readable().ok()?;
    let data = Bytes::copy_from_slice(map.as_slice());
    let mut last = lock(last);
    if last.as_ref() == Some(&data) {
        return None;
    }
    *last = Some(data.clone());
    Some(data)
}

/// The `appsink` callbacks of a rung: each encoded sample becomes the packager's
/// events, `parameters(codec_data)` when the caps carry new codec data, then the
/// access unit in the source's timebase. Rungs have no B-frames, so decode order is
/// presentation order and the unit's dts is its pts.
pub fn encoded_output(
    kind: TrackKind,
    index: usize,
    clock: PipelineClock,
    events: Arc<dyn LadderEvents>,
    parameters: impl Fn(Bytes) -> Option<MediaEvent> + Send + Sync + 'static,
) -> gst_app::AppSinkCallbacks {
    let last_codec_data: Mutex<Option<Bytes>> = Mutex::new(None);
    gst_app::AppSinkCallbacks::builder()
        .new_sample(move |sink| {
            let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
            if let Some(event) = new_codec_data(&sample, &last_codec_data).and_then(&parameters) {
                events.encoded(kind, index, event);
            }
            let Some(buffer) = sample.buffer() else {
                return Ok(gst::FlowSuccess::Ok);
            };
            let (Some(running_time), Ok(map)) =
                (running_time(&sample, buffer), buffer.map_readable())
            else {
                return Ok(gst::FlowSuccess::Ok);
            };
            let t = clock.to_ticks(running_time.nseconds());
            events.encoded(
                kind,
                index,
                MediaEvent::Unit(AccessUnit {
                    kind,
                    dts: t,
                    pts: t,
                    timebase: clock.timebase,
                    keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
                    data: Bytes::copy_from_slice(map.as_slice()),
                    received: Instant::now(),
                }),
            );
            Ok(gst::FlowSuccess::Ok)
        })
        .build()
}
