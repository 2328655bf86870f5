//! Transcoding ladders with GStreamer: the source is decoded once, scaled once per
//! rung and encoded with x264; the source rendition itself is never touched (it goes
//! straight to the packager). Audio rungs are made from the source AAC the same way.
//!
//! Each ladder is one pipeline fed through an `appsrc` with the ingested access
//! units; its rungs come out of `appsink`s as more access units for the packager.

pub mod audio;
mod branch;
pub mod profile;
pub mod reproject;
pub mod sink;
pub mod timing;
pub mod video;

#[cfg(test)]
mod test_media;

use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::media::{MediaEvent, TrackKind};

/// What a ladder pipeline reports, from its streaming threads.
pub trait LadderEvents: Send + Sync + 'static {
    /// Rung `index` (of `kind`, in plan order) produced parameters or a unit.
    fn encoded(&self, kind: TrackKind, index: usize, event: MediaEvent);
    /// Rung `index` lost `frames` because its encoder could not keep up.
    fn dropped(&self, kind: TrackKind, index: usize, frames: u64);
    /// The pipeline stopped with an error; no more media will come.
    fn failed(&self, message: String);
}

/// A ladder that cannot be built or run.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("GStreamer is not available: {0}")]
    Init(String),
    #[error("GStreamer element {0} is not installed")]
    MissingElement(String),
    #[error("cannot build the pipeline: {0}")]
    Build(String),
}

/// Locks `m` even if a streaming thread panicked while holding it: the data is
/// counters and queues that stay usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Initialises GStreamer once per process, with panocast's own elements
/// (`panoproject`, `pcmround`) registered from the linked gst-plugins crate: no plugin file to
/// install or find.
pub fn init() -> Result<(), PipelineError> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| {
        gstreamer::init().map_err(|e| e.to_string())?;
        gstpanocast::register_static()
            .map_err(|e| format!("registering panoproject and pcmround: {e}"))
    })
    .clone()
    .map_err(PipelineError::Init)
}

/// Whether the ladder runs against the clock (the server) or as fast as it can (the
/// benchmark, which measures CPU per media second).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    /// Every queue is bounded and drops when full, counted per rung: the input in
    /// front of each decoder (video skips to the next keyframe, audio loses its oldest
    /// frame) and the queue in front of each encoder, so nothing drifts behind the
    /// source and a push never blocks.
    Realtime,
    /// The same bounds block the pusher: every frame is encoded.
    Offline,
}
