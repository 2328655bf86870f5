//! One running GStreamer pipeline fed through an `appsrc`: the bounded input, start,
//! bus errors, draining on end of stream, teardown.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

/// How much the `appsrc` in front of a decoder holds, and which buffer goes when it
/// is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputBound {
    /// Buffers queued at most.
    pub buffers: u64,
    /// Bytes queued at most: the guard against frames far larger than planned for.
    pub bytes: u64,
    /// In real time, the buffer a full queue loses (offline a full queue blocks the
    /// pusher instead, so every frame is encoded).
    pub loses: Loses,
}

/// Which buffer a full real-time input drops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loses {
    /// The one being pushed (`leaky-type=upstream`): what is queued stays a gapless
    /// run, which video needs (the caller then skips to the next keyframe).
    Newest,
    /// The oldest queued (`leaky-type=downstream`): the newest media stays, for inputs
    /// whose every frame decodes alone (AAC).
    Oldest,
}

/// The `appsrc` of a branch, with the count of buffers its bound dropped.
pub struct Input {
    src: gst_app::AppSrc,
    dropped: Arc<AtomicU64>,
}

impl Input {
    /// An `appsrc` for `caps` (time format) holding at most `bound`. In real time it
    /// is live and never blocks: when full it drops one buffer per push as
    /// `bound.loses` says, counted for [`Branch::take_dropped`]; offline a push waits
    /// for room.
    pub fn new(caps: &gst::Caps, pace: Pace, bound: InputBound) -> Self {
        let dropped = Arc::new(AtomicU64::new(0));
        let realtime = pace == Pace::Realtime;
        let mut builder = gst_app::AppSrc::builder()
            .caps(caps)
            .format(gst::Format::Time)
            .is_live(realtime)
            .block(!realtime)
            .max_buffers(bound.buffers)
            .max_bytes(bound.bytes)
            .max_time(None);
        if realtime {
            let leaky = match bound.loses {
                Loses::Newest => gst_app::AppLeakyType::Upstream,
                Loses::Oldest => gst_app::AppLeakyType::Downstream,
            };
            let count = Arc::clone(&dropped);
            // A full leaky appsrc calls enough-data on the pushing thread once for
            // each buffer it then drops (gstappsrc.c, push_internal); GStreamer 1.22
            // has no counter of its own.
            builder = builder.leaky_type(leaky).callbacks(
                gst_app::AppSrcCallbacks::builder()
                    .enough_data(move |_| {
                        count.fetch_add(1, Ordering::Relaxed);
                    })
                    .build(),
            );
        }
        Self {
            src: builder.build(),
            dropped,
        }
    }

    /// The element, to add to the pipeline.
    pub fn element(&self) -> &gst::Element {
        self.src.upcast_ref()
    }
}

/// A playing pipeline and the `appsrc` that feeds it. Dropping it stops the pipeline
/// (state NULL), which joins its streaming threads.
pub struct Branch {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    /// Buffers the input's bound dropped, not yet taken.
    dropped: Arc<AtomicU64>,
    eos: mpsc::Receiver<()>,
    failed: Arc<AtomicBool>,
}

impl Branch {
    /// Sets `pipeline` playing. Bus errors mark the branch failed and are reported
    /// once through `events`; bus messages are handled synchronously and never queue
    /// up (nothing polls this bus).
    pub fn start(
        pipeline: gst::Pipeline,
        input: Input,
        events: Arc<dyn LadderEvents>,
    ) -> Result<Self, PipelineError> {
        let Input { src, dropped } = input;
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
            dropped,
            eos,
            failed,
        })
    }

    /// Hands one buffer to the pipeline; `false` once the pipeline stopped taking
    /// data (it failed or is shutting down). In real time it never blocks: a full
    /// input drops a buffer (see [`Input::new`]), which [`Branch::take_dropped`] then
    /// reports.
    pub fn push(&self, buffer: gst::Buffer) -> bool {
        let before = self.dropped.load(Ordering::Relaxed);
        let taken = match self.src.push_buffer(buffer) {
            Ok(_) => true,
            // GStreamer 1.22.0 answers EOS for the buffer a full `leaky-type=upstream`
            // input drops (later versions answer OK); the stream goes on.
            Err(gst::FlowError::Eos) => self.dropped.load(Ordering::Relaxed) > before,
            Err(_) => false,
        };
        taken && !self.failed()
    }

    /// Buffers waiting in the `appsrc`: how far the first element lags behind. Never
    /// more than the input's bound.
    pub fn backlog(&self) -> u64 {
        self.src.current_level_buffers()
    }

    /// The pipeline, for tests that look inside.
    #[cfg(test)]
    pub fn pipeline(&self) -> &gst::Pipeline {
        &self.pipeline
    }

    /// Bytes waiting in the `appsrc`.
    #[cfg(test)]
    pub fn backlog_bytes(&self) -> u64 {
        self.src.current_level_bytes()
    }

    /// Buffers the input's bound dropped since the last call. Drops happen inside
    /// [`Branch::push`], so after a push this is up to date.
    pub fn take_dropped(&self) -> u64 {
        self.dropped.swap(0, Ordering::Relaxed)
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

/// The queue in front of a rung, holding at most `buffers`. In real time a decoded
/// frame arriving at a full queue is dropped at its door and reported through
/// `events`, so the decoder never waits for a slow encoder; offline the queue blocks.
///
/// Dropping the arriving frame rather than the oldest (`leaky=downstream`) keeps the
/// count exact: a leaky queue signals `overrun` before it looks again and may then
/// find room and drop nothing. Decoded frames stand alone, so which one goes does not
/// matter to the encoder, and a full queue is as old either way.
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
        let door = queue
            .static_pad("sink")
            .ok_or_else(|| PipelineError::Build("queue without a sink pad".into()))?;
        let events = Arc::clone(events);
        let weak = queue.downgrade();
        // Only this pad's streaming thread fills the queue, so a level below the
        // bound here still leaves room when the buffer gets in.
        door.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            let Some(queue) = weak.upgrade() else {
                return gst::PadProbeReturn::Ok;
            };
            if queue.property::<u32>("current-level-buffers") < buffers {
                return gst::PadProbeReturn::Ok;
            }
            events.dropped(kind, index, 1);
            // `Handled` rather than `Drop`: the binding already owns the buffer and
            // frees it, and GStreamer 1.22 would then unref a null pointer (a
            // GStreamer-CRITICAL per dropped frame).
            gst::PadProbeReturn::Handled
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// What the drop count rests on: a full real-time input drops one buffer per push,
    /// the one `loses` names, calls enough-data once for it, and never holds more
    /// than its bound.
    #[test]
    fn a_full_input_drops_the_named_buffer_and_counts_each() {
        crate::pipeline::init().expect("GStreamer");
        for (loses, kept) in [(Loses::Newest, 0..5u64), (Loses::Oldest, 15..20u64)] {
            let bound = InputBound {
                buffers: 5,
                bytes: 0,
                loses,
            };
            let input = Input::new(
                &gst::Caps::new_empty_simple("application/x-test"),
                Pace::Realtime,
                bound,
            );
            let sink = element("fakesink").expect("fakesink");
            let pipeline = gst::Pipeline::new();
            add_chain(&pipeline, &[input.element(), &sink]).expect("link");
            let seen = Arc::new(Mutex::new(Vec::new()));
            let log = Arc::clone(&seen);
            sink.static_pad("sink").expect("sink pad").add_probe(
                gst::PadProbeType::BUFFER,
                move |_, info| {
                    if let Some(gst::PadProbeData::Buffer(b)) = &info.data {
                        lock(&log).push(b.pts().map_or(u64::MAX, |t| t.seconds()));
                    }
                    gst::PadProbeReturn::Ok
                },
            );
            // A live source hands out nothing before PLAYING: the queue only fills.
            let _ = pipeline.set_state(gst::State::Paused);
            for i in 0..20u64 {
                let mut buffer = gst::Buffer::with_size(100).expect("buffer");
                if let Some(b) = buffer.get_mut() {
                    b.set_pts(gst::ClockTime::from_seconds(i));
                }
                let pushed = input.src.push_buffer(buffer);
                // 1.22.0 answers EOS for a dropped newest buffer (see Branch::push).
                let dropped_newest = loses == Loses::Newest && i >= 5;
                assert!(
                    pushed.is_ok() || (dropped_newest && pushed == Err(gst::FlowError::Eos)),
                    "{loses:?} {i}: {pushed:?}"
                );
                assert!(input.src.current_level_buffers() <= 5, "{loses:?}");
            }
            assert_eq!(input.dropped.load(Ordering::Relaxed), 15, "{loses:?}");
            pipeline.set_state(gst::State::Playing).expect("play");
            let deadline = Instant::now() + Duration::from_secs(10);
            while lock(&seen).len() < 5 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            assert_eq!(*lock(&seen), kept.collect::<Vec<_>>(), "{loses:?}");
            let _ = pipeline.set_state(gst::State::Null);
        }
    }
}
