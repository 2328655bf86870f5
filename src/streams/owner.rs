//! One task per stream that owns its definition, its publisher, its live session and
//! its media thread (packager and ladder, see [`super::worker`]).
//!
//! Everything that changes a stream's live state goes through this task as a typed
//! [`Command`] with a reply: a publisher attaching or leaving, a catalog edit, a key
//! rotation, a delete. Its state is published as a [`LiveStatus`] snapshot that the
//! API reads without waiting. Media does not pass through the task: a publisher sends
//! it straight to the media thread through the bounded channel it was handed.
//!
//! The task never blocks: GStreamer work happens on the media thread, and the only
//! awaits are sends into bounded channels of this stream alone.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::definition::{StreamDef, StreamSource};
use super::events::{DisconnectReason, EventBus, SessionEndReason, StreamEvent, StreamRef};
use super::memory::{event_bytes, StreamMemory};
use super::session::{now_rfc3339, LifecycleState, LiveSessionInfo};
use super::status::{IngestState, LiveStatus};
use super::worker::{self, SinkFactory, WorkerInput, WorkerStatus};
use crate::ingest::rtsp::{self, RtspIngestSettings};
use crate::media::{MediaEvent, WallClockAnchor};

/// Commands queued for a stream's task. Senders wait when it is full; the task answers
/// each in microseconds, so this bound is never reached in practice.
const COMMAND_QUEUE: usize = 64;

/// How long a delete or the end of a session waits for the media thread to stop its
/// pipelines.
const CLOSE_LIMIT: Duration = Duration::from_secs(2);

/// What every stream's task needs from the server.
pub struct StreamContext {
    pub factory: Arc<dyn SinkFactory>,
    pub bus: EventBus,
    pub rtsp: RtspIngestSettings,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
    /// The stream tasks, so shutdown can wait until every stream has ended cleanly.
    pub tasks: TaskTracker,
    /// Pushed streams that may be live at once (`[limits] max_live_streams`).
    pub max_live_streams: usize,
    /// Bytes each stream may hold (`[limits] stream_memory_bytes`).
    pub stream_memory_bytes: u64,
}

/// How media reaches the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Rtmp,
    Rtsp,
}

impl Protocol {
    fn as_str(self) -> &'static str {
        match self {
            Protocol::Rtmp => "rtmp",
            Protocol::Rtsp => "rtsp",
        }
    }
}

/// Why a publisher was not attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PublishRefused {
    #[error("the stream is disabled")]
    Disabled,
    #[error("the stream pulls an RTSP camera and cannot be published")]
    PulledStream,
    #[error("the stream no longer exists")]
    Gone,
    #[error("the server is at its limit of {0} live streams")]
    AtCapacity(usize),
}

pub(crate) enum Command {
    Attach {
        peer: SocketAddr,
        protocol: Protocol,
        reply: oneshot::Sender<Result<PublishSession, PublishRefused>>,
    },
    Detach {
        generation: u64,
    },
    PullState(IngestState),
    Redefine {
        def: Arc<StreamDef>,
        reply: oneshot::Sender<()>,
    },
    Kick {
        reason: DisconnectReason,
        reply: oneshot::Sender<()>,
    },
    Delete {
        reply: oneshot::Sender<()>,
    },
}

/// A handle on a stream's task; cheap to clone.
#[derive(Clone)]
pub struct StreamHandle {
    slug: String,
    commands: mpsc::Sender<Command>,
    status: watch::Receiver<LiveStatus>,
    memory: Arc<StreamMemory>,
}

impl StreamHandle {
    pub fn slug(&self) -> &str {
        &self.slug
    }

    /// What the stream holds in memory, against its budget.
    pub fn memory(&self) -> &Arc<StreamMemory> {
        &self.memory
    }

    /// The stream's live state now.
    pub fn status(&self) -> LiveStatus {
        self.status.borrow().clone()
    }

    /// A receiver that sees every change of the live state.
    pub fn watch_status(&self) -> watch::Receiver<LiveStatus> {
        self.status.clone()
    }

    /// Makes `peer` the publisher, taking the stream over from any current one.
    pub async fn attach(
        &self,
        peer: SocketAddr,
        protocol: Protocol,
    ) -> Result<PublishSession, PublishRefused> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Attach {
            peer,
            protocol,
            reply,
        })
        .await;
        answer.await.unwrap_or(Err(PublishRefused::Gone))
    }

    /// What a pull source is doing (connecting, retrying); live and idle follow from
    /// attaching and detaching.
    pub async fn set_pull_state(&self, state: IngestState) {
        self.send(Command::PullState(state)).await;
    }

    pub(crate) async fn redefine(&self, def: Arc<StreamDef>) {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Redefine { def, reply }).await;
        let _ = answer.await;
    }

    pub(crate) async fn kick(&self, reason: DisconnectReason) {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Kick { reason, reply }).await;
        let _ = answer.await;
    }

    pub(crate) async fn delete(&self) {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Delete { reply }).await;
        let _ = answer.await;
    }

    async fn send(&self, command: Command) {
        // A task that has ended answers nothing: the reply sender is dropped and the
        // caller sees `Gone` (or simply nothing to do).
        let _ = self.commands.send(command).await;
    }

    /// Whether the task has ended.
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }
}

/// The current session's media went nowhere: the server ended this publisher (another
/// one took over, the key was rotated, the stream was disabled or deleted).
#[derive(Debug, thiserror::Error)]
#[error("publishing to {slug} was ended by the server")]
pub struct Superseded {
    pub slug: String,
}

/// One publisher's right to feed a stream. Dropping it detaches the publisher.
pub struct PublishSession {
    slug: String,
    generation: u64,
    media: mpsc::Sender<WorkerInput>,
    token: CancellationToken,
    commands: mpsc::Sender<Command>,
    memory: Arc<StreamMemory>,
}

impl PublishSession {
    /// Hands one event to the stream's media thread; waits while its queue
    /// ([`worker::MEDIA_QUEUE`]) is full.
    pub async fn push(&self, event: MediaEvent) -> Result<(), Superseded> {
        if self.token.is_cancelled() {
            return Err(self.superseded_error());
        }
        // Counted before it is queued: the media thread subtracts it when it takes it.
        let bytes = event_bytes(&event);
        self.memory.queue(bytes);
        let sent = self
            .media
            .send(WorkerInput::Media {
                generation: self.generation,
                event,
            })
            .await;
        if sent.is_err() {
            self.memory.dequeue(bytes);
            return Err(self.superseded_error());
        }
        Ok(())
    }

    fn superseded_error(&self) -> Superseded {
        Superseded {
            slug: self.slug.clone(),
        }
    }

    /// Resolves when the server ended this publisher.
    pub fn superseded(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.token.cancelled()
    }

    pub fn slug(&self) -> &str {
        &self.slug
    }
}

impl Drop for PublishSession {
    fn drop(&mut self) {
        let command = Command::Detach {
            generation: self.generation,
        };
        match self.commands.try_send(command) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(command)) => {
                // Drop cannot wait; a task delivers the detach once there is room.
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    let commands = self.commands.clone();
                    runtime.spawn(async move {
                        let _ = commands.send(command).await;
                    });
                }
            }
        }
    }
}

/// The attached publisher.
struct Publisher {
    generation: u64,
    token: CancellationToken,
    protocol: Protocol,
}

/// Starts the task (and media thread) of `def`.
pub(crate) fn spawn(def: Arc<StreamDef>, ctx: Arc<StreamContext>) -> std::io::Result<StreamHandle> {
    let memory = Arc::new(StreamMemory::new(ctx.stream_memory_bytes));
    let (worker, worker_status) = worker::spawn(&def, ctx.factory.as_ref(), Arc::clone(&memory))?;
    let (commands, rx) = mpsc::channel(COMMAND_QUEUE);
    let initial = LiveStatus {
        state: if def.enabled {
            LifecycleState::Idle
        } else {
            LifecycleState::Disabled
        },
        ..LiveStatus::default()
    };
    let (status, status_rx) = watch::channel(initial);
    let handle = StreamHandle {
        slug: def.slug.clone(),
        commands: commands.clone(),
        status: status_rx,
        memory: Arc::clone(&memory),
    };
    let owner = Owner {
        def,
        ctx,
        worker,
        worker_status,
        status,
        commands: commands.downgrade(),
        generation: 0,
        publisher: None,
        session: None,
        window_ends: None,
        active_generation: 0,
        puller: None,
        worker_closed: false,
        memory,
    };
    let tasks = owner.ctx.tasks.clone();
    tasks.spawn(owner.run(rx));
    Ok(handle)
}

struct Owner {
    def: Arc<StreamDef>,
    ctx: Arc<StreamContext>,
    worker: mpsc::Sender<WorkerInput>,
    worker_status: watch::Receiver<WorkerStatus>,
    status: watch::Sender<LiveStatus>,
    /// The task's own command queue, handed to publishers for their detach; weak so
    /// that it does not keep the queue open by itself.
    commands: mpsc::WeakSender<Command>,
    /// Bumped for every publisher; media of older generations is dropped.
    generation: u64,
    publisher: Option<Publisher>,
    session: Option<LiveSessionInfo>,
    /// When the reconnect window of a disconnected session closes.
    window_ends: Option<Instant>,
    /// The newest generation reported active.
    active_generation: u64,
    /// Cancels the RTSP puller of a pulled stream.
    puller: Option<CancellationToken>,
    worker_closed: bool,
    memory: Arc<StreamMemory>,
}

impl Owner {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let shutdown = self.ctx.shutdown.clone();
        self.start_puller();
        loop {
            let window = self.window_ends;
            tokio::select! {
                _ = shutdown.cancelled() => {
                    self.stop(DisconnectReason::Shutdown, SessionEndReason::Shutdown).await;
                    break;
                }
                command = rx.recv() => {
                    let Some(command) = command else { break };
                    if !self.handle(command).await {
                        break;
                    }
                }
                _ = sleep_until(window) => {
                    self.window_ends = None;
                    self.end_live_session(SessionEndReason::ReconnectWindowExpired).await;
                }
                changed = self.worker_status.changed() => {
                    if changed.is_err() {
                        tracing::error!(stream = %self.def.slug, "media thread ended unexpectedly");
                        break;
                    }
                    self.on_worker_status().await;
                }
            }
        }
        self.close_worker(false).await;
    }

    /// Handles one command; `false` ends the task.
    async fn handle(&mut self, command: Command) -> bool {
        match command {
            Command::Attach {
                peer,
                protocol,
                reply,
            } => {
                let result = self.attach(peer, protocol).await;
                let _ = reply.send(result);
            }
            Command::Detach { generation } => {
                if self.publisher.as_ref().map(|p| p.generation) == Some(generation) {
                    self.detach(DisconnectReason::Left).await;
                }
            }
            Command::PullState(state) => {
                if self.publisher.is_none() {
                    self.status.send_modify(|s| s.ingest = state);
                }
            }
            Command::Redefine { def, reply } => {
                self.redefine(def).await;
                let _ = reply.send(());
            }
            Command::Kick { reason, reply } => {
                if self.publisher.is_some() {
                    self.detach(reason).await;
                }
                let _ = reply.send(());
            }
            Command::Delete { reply } => {
                self.stop(DisconnectReason::Deleted, SessionEndReason::Deleted)
                    .await;
                self.close_worker(true).await;
                let _ = reply.send(());
                return false;
            }
        }
        true
    }

    fn stream_ref(&self) -> StreamRef {
        StreamRef::from(&*self.def)
    }

    fn publish(&self, event: StreamEvent) {
        self.ctx.bus.publish(event);
    }

    async fn to_worker(&self, input: WorkerInput) {
        if self.worker.send(input).await.is_err() {
            tracing::error!(stream = %self.def.slug, "media thread is gone");
        }
    }

    async fn attach(
        &mut self,
        peer: SocketAddr,
        protocol: Protocol,
    ) -> Result<PublishSession, PublishRefused> {
        if !self.def.enabled {
            return Err(PublishRefused::Disabled);
        }
        let pulled = matches!(self.def.source, StreamSource::RtspPull(_));
        if pulled != (protocol == Protocol::Rtsp) {
            return Err(PublishRefused::PulledStream);
        }
        let Some(commands) = self.commands.upgrade() else {
            return Err(PublishRefused::Gone);
        };
        if self.publisher.is_some() {
            tracing::warn!(stream = %self.def.slug, new_peer = %peer, "publisher takeover: closing the previous publisher");
            self.detach(DisconnectReason::TakenOver).await;
        }
        let reconnects = match self.session.as_mut() {
            Some(session) => {
                session.reconnects += 1;
                session.reconnects
            }
            None => {
                let session = LiveSessionInfo::start();
                self.publish(StreamEvent::LiveSessionStarted {
                    stream: self.stream_ref(),
                    session: session.clone(),
                });
                self.session = Some(session);
                0
            }
        };
        self.window_ends = None;
        self.generation += 1;
        let generation = self.generation;
        self.to_worker(WorkerInput::Begin {
            generation,
            stream: Arc::clone(&self.def),
            anchor: WallClockAnchor::now(),
        })
        .await;
        let token = CancellationToken::new();
        self.publisher = Some(Publisher {
            generation,
            token: token.clone(),
            protocol,
        });
        let session_id = self.session_id();
        let ladder = self.def.ladder.clone();
        let session = self.session.clone();
        self.status.send_modify(|s| {
            s.state = LifecycleState::Connected;
            s.live = true;
            s.ingest = IngestState::Live {
                since: now_rfc3339(),
            };
            s.session = session;
            s.running_ladder = Some(ladder);
        });
        tracing::info!(stream = %self.def.slug, %peer, protocol = protocol.as_str(), session = %session_id, reconnects, "publisher attached");
        self.publish(StreamEvent::Connected {
            stream: self.stream_ref(),
            session_id,
            protocol: protocol.as_str(),
            reconnects,
        });
        Ok(PublishSession {
            slug: self.def.slug.clone(),
            generation,
            media: self.worker.clone(),
            token,
            commands,
            memory: Arc::clone(&self.memory),
        })
    }

    fn session_id(&self) -> String {
        self.session
            .as_ref()
            .map(|s| s.id.clone())
            .unwrap_or_default()
    }

    /// Ends the current publisher's connection; the session waits for it to come back
    /// within the reconnect window.
    async fn detach(&mut self, reason: DisconnectReason) {
        let Some(publisher) = self.publisher.take() else {
            return;
        };
        publisher.token.cancel();
        if reason != DisconnectReason::TakenOver {
            // On a takeover the new publisher's `Begin` closes what this one left
            // open, without a moment where the stream looks offline.
            self.to_worker(WorkerInput::End {
                generation: publisher.generation,
            })
            .await;
        }
        tracing::info!(stream = %self.def.slug, ?reason, protocol = publisher.protocol.as_str(), "publisher detached");
        self.publish(StreamEvent::Disconnected {
            stream: self.stream_ref(),
            session_id: self.session_id(),
            reason,
        });
        self.status.send_modify(|s| {
            s.state = LifecycleState::Disconnected;
            s.live = false;
            s.ingest = IngestState::Idle;
        });
        let window = Duration::from_secs(u64::from(self.def.reconnect_window_s));
        if reason != DisconnectReason::TakenOver {
            self.window_ends = Some(Instant::now() + window);
        }
    }

    /// The session is over: the playlists end and the stream goes idle.
    async fn end_live_session(&mut self, reason: SessionEndReason) {
        self.window_ends = None;
        let Some(mut session) = self.session.take() else {
            return;
        };
        // The events go out once players can see the end (EXT-X-ENDLIST).
        let (done, ended) = oneshot::channel();
        self.to_worker(WorkerInput::EndLiveSession { done }).await;
        if tokio::time::timeout(CLOSE_LIMIT, ended).await.is_err() {
            tracing::warn!(stream = %self.def.slug, "media thread did not end the playlists within {CLOSE_LIMIT:?}");
        }
        session.end(reason);
        tracing::info!(stream = %self.def.slug, session = %session.id, ?reason, reconnects = session.reconnects, "live session ended");
        self.publish(StreamEvent::LiveSessionEnded {
            stream: self.stream_ref(),
            session,
            reason,
        });
        self.publish(StreamEvent::Idle {
            stream: self.stream_ref(),
        });
        let enabled = self.def.enabled;
        self.status.send_modify(|s| {
            s.state = if enabled {
                LifecycleState::Idle
            } else {
                LifecycleState::Disabled
            };
            s.live = false;
            s.session = None;
            s.running_ladder = None;
        });
    }

    /// Ends the publisher, the puller and the session at once.
    async fn stop(&mut self, disconnect: DisconnectReason, end: SessionEndReason) {
        self.stop_puller();
        self.detach(disconnect).await;
        self.end_live_session(end).await;
    }

    async fn on_worker_status(&mut self) {
        let WorkerStatus {
            active_generation: active,
            over_budget_generation,
        } = *self.worker_status.borrow_and_update();
        let Some(generation) = self.publisher.as_ref().map(|p| p.generation) else {
            return;
        };
        if over_budget_generation == generation {
            // The media thread stopped taking this publisher's media; the session
            // ends so the next publisher starts with empty windows.
            self.detach(DisconnectReason::MemoryBudget).await;
            self.end_live_session(SessionEndReason::MemoryBudget).await;
            return;
        }
        if active != generation || active == self.active_generation {
            return;
        }
        self.active_generation = active;
        self.status
            .send_modify(|s| s.state = LifecycleState::Active);
        self.publish(StreamEvent::Active {
            stream: self.stream_ref(),
            session_id: self.session_id(),
        });
    }

    async fn redefine(&mut self, def: Arc<StreamDef>) {
        let old = std::mem::replace(&mut self.def, Arc::clone(&def));
        // The media thread applies a new layout at the next keyframe and keeps the
        // definition for the next publish session (ladder).
        self.to_worker(WorkerInput::Redefine(Arc::clone(&def)))
            .await;
        if old.enabled && !def.enabled {
            self.stop(DisconnectReason::Disabled, SessionEndReason::Disabled)
                .await;
            self.status
                .send_modify(|s| s.state = LifecycleState::Disabled);
            return;
        }
        if !old.enabled && def.enabled {
            self.status.send_modify(|s| {
                if s.state == LifecycleState::Disabled {
                    s.state = LifecycleState::Idle;
                }
            });
        }
        if old.source != def.source || old.enabled != def.enabled {
            self.stop_puller();
            if self.publisher.is_some() {
                // A publisher of the old kind, or the old camera.
                self.detach(DisconnectReason::SourceChanged).await;
            }
            self.start_puller();
        }
    }

    fn start_puller(&mut self) {
        if !self.def.enabled || self.puller.is_some() {
            return;
        }
        let StreamSource::RtspPull(pull) = &self.def.source else {
            return;
        };
        let source = match pull.source() {
            Ok(source) => source,
            Err(e) => {
                // The catalog validated it; a bad value here is a bug, not a camera.
                tracing::error!(stream = %self.def.slug, error = %e, "RTSP source cannot be used");
                return;
            }
        };
        let Some(commands) = self.commands.upgrade() else {
            return;
        };
        let token = self.ctx.shutdown.child_token();
        let handle = StreamHandle {
            slug: self.def.slug.clone(),
            commands,
            status: self.status.subscribe(),
            memory: Arc::clone(&self.memory),
        };
        tokio::spawn(rtsp::supervise(
            Arc::clone(&self.def),
            source,
            handle,
            self.ctx.rtsp,
            token.clone(),
        ));
        self.puller = Some(token);
    }

    fn stop_puller(&mut self) {
        if let Some(token) = self.puller.take() {
            token.cancel();
            self.status.send_modify(|s| {
                if !s.live {
                    s.ingest = IngestState::Idle;
                }
            });
        }
    }

    /// Stops the media thread; `gone` when the stream was deleted (its output goes).
    async fn close_worker(&mut self, gone: bool) {
        if std::mem::replace(&mut self.worker_closed, true) {
            return;
        }
        let (done, closed) = oneshot::channel();
        self.to_worker(WorkerInput::Close { done, gone }).await;
        if tokio::time::timeout(CLOSE_LIMIT, closed).await.is_err() {
            tracing::warn!(stream = %self.def.slug, "media thread did not stop within {CLOSE_LIMIT:?}");
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
