//! The media half of a stream's owner: a blocking thread that owns the stream's sink
//! (packager and ladder) and is fed through one bounded channel.
//!
//! Why a thread: starting, draining and stopping GStreamer pipelines blocks (a ladder
//! drains for up to half a second), and none of that may run on the async runtime or
//! under a lock another stream needs. The thread is the only owner of the sink, so no
//! lock is shared with the control task, the API or other streams.
//!
//! Publishers send media straight into this thread's channel; the control task sends
//! session boundaries and definition changes through the same channel, so media and
//! boundaries are applied in the order they were sent.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

use super::definition::StreamDef;
use super::memory::{event_bytes, StreamMemory};
use crate::media::{MediaEvent, WallClockAnchor};

/// Inputs queued for the media thread. About 6 s of a 30 fps stream with AAC audio
/// (≈ 77 events/s). When it is full, publishers wait (`send().await`): the RTMP
/// connection stops reading its socket and TCP flow control slows the encoder, so
/// nothing already received is dropped and memory stays bounded.
pub const MEDIA_QUEUE: usize = 512;

/// Consumes one stream's media across publish sessions (the packager, with the
/// transcoding ladder in front of it). Called only from the stream's media thread.
pub trait MediaSink: Send + 'static {
    /// The stream's definition changed (or is given before a session). The layout
    /// (projection, orientation) applies at once, at the next keyframe; the ladder
    /// applies from the next publish session.
    fn set_stream(&mut self, stream: &Arc<StreamDef>);
    /// A publisher starts or takes over: what follows is a new timeline and must be
    /// joined with a discontinuity (or starts fresh playlists after
    /// [`MediaSink::end_live_session`]).
    fn begin_session(&mut self, anchor: WallClockAnchor);
    /// One event of the current session, in arrival order.
    fn push(&mut self, event: MediaEvent);
    /// The publisher left (or was replaced): publish what is complete, keep the window.
    fn end_session(&mut self);
    /// The live session is over: the playlists end (`EXT-X-ENDLIST`).
    fn end_live_session(&mut self);
    /// While players can play the stream (its multivariant playlist is out): the
    /// newest media sequence number that every source rendition has complete.
    fn playable_msn(&self) -> Option<u64>;
    /// The stream is going away: stop every pipeline; `gone` (deleted): withdraw its
    /// output as well.
    fn close(&mut self, gone: bool);
    /// Bytes of media the sink holds now (windows, media held back), for the
    /// stream's memory budget ([`super::memory`]).
    fn held_bytes(&self) -> u64 {
        0
    }
}

/// Makes the sink of a stream when its owner starts.
pub trait SinkFactory: Send + Sync + 'static {
    fn create(&self, stream: &Arc<StreamDef>) -> Box<dyn MediaSink>;
}

/// What the control task and publishers queue for the media thread.
pub(crate) enum WorkerInput {
    Begin {
        generation: u64,
        stream: Arc<StreamDef>,
        anchor: WallClockAnchor,
    },
    Media {
        generation: u64,
        event: MediaEvent,
    },
    End {
        generation: u64,
    },
    Redefine(Arc<StreamDef>),
    /// `done` is answered once the playlists carry EXT-X-ENDLIST.
    EndLiveSession {
        done: oneshot::Sender<()>,
    },
    /// Stop everything; `done` is answered once the pipelines are stopped. `gone`: the
    /// stream was deleted, so its output goes too; otherwise (shutdown) the ended
    /// playlists stay served to the requests still being answered.
    Close {
        done: oneshot::Sender<()>,
        gone: bool,
    },
}

/// What the media thread reports back; read by the control task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct WorkerStatus {
    /// The newest publish generation that completed a segment players can fetch.
    pub active_generation: u64,
    /// The newest publish generation that took the stream past its memory budget;
    /// the media thread already stopped taking its media.
    pub over_budget_generation: u64,
}

/// Starts the media thread of `stream`.
pub(crate) fn spawn(
    stream: &Arc<StreamDef>,
    factory: &dyn SinkFactory,
    memory: Arc<StreamMemory>,
) -> std::io::Result<(mpsc::Sender<WorkerInput>, watch::Receiver<WorkerStatus>)> {
    let (tx, rx) = mpsc::channel(MEDIA_QUEUE);
    let (status_tx, status_rx) = watch::channel(WorkerStatus::default());
    let sink = factory.create(stream);
    let slug = stream.slug.clone();
    std::thread::Builder::new()
        .name(format!("media-{slug}"))
        .spawn(move || run(slug, sink, rx, status_tx, &memory))?;
    Ok((tx, status_rx))
}

fn run(
    slug: String,
    mut sink: Box<dyn MediaSink>,
    mut rx: mpsc::Receiver<WorkerInput>,
    status: watch::Sender<WorkerStatus>,
    memory: &StreamMemory,
) {
    // The publish generation whose media is accepted; 0 = none.
    let mut current = 0u64;
    // Until the current generation is active: the msn that was complete before it.
    let mut waiting_for_active: Option<Option<u64>> = None;
    let mut closed = None;
    while let Some(input) = rx.blocking_recv() {
        match input {
            WorkerInput::Begin {
                generation,
                stream,
                anchor,
            } => {
                sink.set_stream(&stream);
                sink.begin_session(anchor);
                current = generation;
                waiting_for_active = Some(sink.playable_msn());
                memory.set_held(sink.held_bytes());
            }
            WorkerInput::Media { generation, event } => {
                memory.dequeue(event_bytes(&event));
                // Media of a replaced publisher that was still queued is dropped.
                if generation != current {
                    continue;
                }
                sink.push(event);
                memory.set_held(sink.held_bytes());
                if memory.over_budget() {
                    // Nothing more of this publisher is taken; the owner drops it and
                    // ends the live session, so the next one starts with empty windows.
                    tracing::warn!(
                        stream = %slug,
                        held = memory.held(),
                        queued = memory.queued(),
                        budget = memory.budget(),
                        "stream memory budget exceeded: dropping the publisher"
                    );
                    memory.record_drop();
                    sink.end_session();
                    current = 0;
                    waiting_for_active = None;
                    status.send_modify(|s| s.over_budget_generation = generation);
                    continue;
                }
                if let Some(before) = waiting_for_active {
                    let now = sink.playable_msn();
                    if now.is_some() && now != before {
                        waiting_for_active = None;
                        status.send_modify(|s| s.active_generation = generation);
                    }
                }
            }
            WorkerInput::End { generation } => {
                if generation == current {
                    sink.end_session();
                    current = 0;
                    waiting_for_active = None;
                }
                memory.set_held(sink.held_bytes());
            }
            WorkerInput::Redefine(stream) => sink.set_stream(&stream),
            WorkerInput::EndLiveSession { done } => {
                if current != 0 {
                    sink.end_session();
                    current = 0;
                    waiting_for_active = None;
                }
                sink.end_live_session();
                memory.set_held(sink.held_bytes());
                let _ = done.send(());
            }
            WorkerInput::Close { done, gone } => {
                closed = Some((done, gone));
                break;
            }
        }
    }
    if current != 0 {
        sink.end_session();
    }
    let gone = closed.as_ref().is_some_and(|(_, gone)| *gone);
    sink.close(gone);
    if let Some((done, _)) = closed {
        let _ = done.send(());
    }
    tracing::debug!(stream = %slug, "media thread stopped");
}
