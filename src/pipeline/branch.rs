//! One running GStreamer pipeline fed through an `appsrc`: start, bus errors,
//! draining on end of stream, teardown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::{LadderEvents, PipelineError};

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
