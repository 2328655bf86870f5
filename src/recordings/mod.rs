//! Recording: every live session of a stream whose `record` setting is on becomes an
//! on-demand asset, written as it is packaged (no re-encoding) and finalised as VOD
//! HLS when the session ends.
//!
//! - [`follow`]: what to take from the stream's published output, once each.
//! - [`disk`]: the recording's files, appended as parts arrive.
//! - [`journal`]: the per-rendition record of what reached the disk.
//! - [`finalise`]: journals → VOD playlists, after the session or after a crash.
//! - [`retention`]: the per-stream age and byte limits.
//!
//! The recorder listens to the stream lifecycle bus: `live_session.started` makes the
//! asset and starts a writer task on the stream's output; `live_session.ended` stops
//! it once the output has ended (EXT-X-ENDLIST) and finalises. A recording still
//! marked `recording` at start-up was cut by a crash: it is finalised from what was
//! written, and its message says so. A failing disk (full, read-only) errors the
//! recording, never the live stream.

pub mod disk;
pub mod finalise;
pub mod follow;
pub mod journal;
pub mod retention;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::assets::events::AssetEvent;
use crate::assets::service::AssetService;
use crate::assets::{
    files, AssetState, NewRecording, RenditionKind, RenditionState, EXTRACT_ATTEMPTS, EXTRACT_AUDIO,
};
use crate::catalog::Catalog;
use crate::packager::{Outputs, StreamOutput};
use crate::streams::events::{BusError, BusReceiver, StreamEvent, StreamRef};
use crate::streams::session::LiveSessionInfo;
use disk::Disk;
use finalise::FinaliseError;
use follow::Follower;

/// How long a shutting-down server waits for the sessions' ends to be recorded.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);

/// More streams than any server holds, for one pass over the catalog.
const MAX_STREAMS: usize = 1_000_000;

/// How often every stream's retention is applied.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// What a crash-cut recording says about itself.
const CUT_SHORT: &str = "the server stopped while this live session was being recorded; \
     the recording holds what was written up to then";

/// The folder a recording's HLS is written to.
pub fn hls_dir(data_dir: &Path, asset_id: &str) -> PathBuf {
    files::dir(data_dir, asset_id).join("hls")
}

/// Records the live sessions of the streams that ask for it.
pub struct Recorder {
    pub assets: AssetService,
    pub catalog: Arc<Catalog>,
    pub outputs: Arc<Outputs>,
}

/// A session being recorded.
struct Active {
    asset_id: String,
    stop: CancellationToken,
    /// How many segments were lost; `None` when writing failed (the recording was
    /// marked errored at that moment).
    writer: JoinHandle<Option<u64>>,
}

/// What an errored recording says when its disk failed, for the person who reads it.
fn write_failed(e: &std::io::Error) -> String {
    let cause = if e.kind() == std::io::ErrorKind::StorageFull {
        "the disk holding the data directory is full".to_string()
    } else {
        format!("writing the recording failed ({e})")
    };
    format!(
        "{cause}: the recording stopped there and keeps what was written; the live stream \
         was not affected. Free disk space in the data directory (or lower the streams' \
         retention) and record the next session"
    )
}

impl Recorder {
    /// Finalises the recordings a crash cut short, then follows `bus` until shutdown
    /// (and for up to [`SHUTDOWN_GRACE`] after, so the sessions that shutdown ends
    /// are finalised too).
    pub async fn run(self: Arc<Self>, mut bus: BusReceiver, shutdown: CancellationToken) {
        self.recover().await;
        let mut active: HashMap<String, Active> = HashMap::new();
        let mut deadline = None;
        let mut hourly = tokio::time::interval(RETENTION_EVERY);
        loop {
            let grace = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => shutdown.cancelled().await,
                }
            };
            let event = tokio::select! {
                _ = hourly.tick() => {
                    self.apply_retention().await;
                    continue;
                }
                event = bus.recv() => event,
                () = grace => {
                    if deadline.is_some() || active.is_empty() {
                        break;
                    }
                    deadline = Some(tokio::time::Instant::now() + SHUTDOWN_GRACE);
                    continue;
                }
            };
            match event {
                Ok(event) => match &event.event {
                    StreamEvent::LiveSessionStarted { stream, session } => {
                        if let Some(a) = self.start(stream, session).await {
                            active.insert(stream.slug.clone(), a);
                        }
                    }
                    StreamEvent::LiveSessionEnded { stream, .. } => {
                        if let Some(a) = active.remove(&stream.slug) {
                            self.end(stream, a).await;
                        }
                        if deadline.is_some() && active.is_empty() {
                            break;
                        }
                    }
                    _ => {}
                },
                Err(BusError::Lagged(n)) => {
                    tracing::warn!(lost = n, "recorder fell behind the stream bus");
                }
                Err(BusError::Closed) => break,
            }
        }
        // Still open when the grace ran out (a media thread slow to end its session,
        // as on a loaded machine): what was written is flushed and finalised now, as the
        // session's end would have. Only a server stopped before this finishes leaves a
        // recording for the next start to finalise as cut short.
        for (slug, a) in active {
            tracing::info!(stream = %slug, asset = %a.asset_id, "finalising a recording the shutdown ended");
            self.close(&slug, a).await;
        }
    }

    /// Every stream's retention (the age limit needs a clock, not only new sessions).
    async fn apply_retention(&self) {
        let (streams, _) = self.catalog.list(None, MAX_STREAMS, |d| {
            d.record.retention_days.is_some() || d.record.max_bytes.is_some()
        });
        for def in streams {
            retention::apply(&self.assets, &self.catalog, &def.id).await;
        }
    }

    /// Spawns [`Recorder::run`] on `tasks`, so shutdown waits for it.
    pub fn spawn(self, bus: BusReceiver, shutdown: CancellationToken, tasks: &TaskTracker) {
        tasks.spawn(Arc::new(self).run(bus, shutdown));
    }

    fn data_dir(&self) -> &Path {
        &self.assets.data_dir
    }

    async fn start(
        self: &Arc<Self>,
        stream: &StreamRef,
        session: &LiveSessionInfo,
    ) -> Option<Active> {
        let def = self.catalog.get(&stream.id)?;
        if !def.record.enabled {
            return None;
        }
        let output = self.outputs.get_or_create(&stream.slug);
        let started = session.started_at.get(..16).unwrap_or(&session.started_at);
        let new = NewRecording {
            title: format!("{} ({} UTC)", def.title, started.replace('T', " ")),
            owner_id: def.owner_id.clone(),
            visibility: def.visibility,
            // What was packaged: a dual-fisheye stream records its stitched equirect,
            // a baked orientation is in the pixels.
            projection: crate::packager::Layout::of(&def).projection,
            orientation: crate::packager::Layout::of(&def).orientation,
            stream_id: def.id.clone(),
            live_session_id: session.id.clone(),
        };
        let asset = match self.assets.store.create_recording(new).await {
            Ok(asset) => asset,
            Err(e) => {
                tracing::error!(stream = %stream.slug, error = %e, "cannot start a recording");
                return None;
            }
        };
        tracing::info!(stream = %stream.slug, asset = %asset.id, session = %session.id, "recording started");
        self.assets.bus.publish(AssetEvent::Created {
            asset_id: asset.id.clone(),
            owner_id: asset.owner_id.clone(),
        });
        self.assets.bus.publish(AssetEvent::RecordingStarted {
            asset_id: asset.id.clone(),
            stream_id: def.id.clone(),
            live_session_id: session.id.clone(),
        });
        let stop = CancellationToken::new();
        let dir = hls_dir(self.data_dir(), &asset.id);
        // A failing disk errors the recording as it happens, not when the session ends;
        // the live stream never waits for this task.
        let recorder = Arc::clone(self);
        let (id, slug, stopped) = (asset.id.clone(), stream.slug.clone(), stop.clone());
        let writer = tokio::spawn(async move {
            match write(output, dir, stopped).await {
                Ok(lost) => Some(lost),
                Err(e) => {
                    let message = write_failed(&e);
                    tracing::error!(stream = %slug, asset = %id, %message, "recording errored");
                    recorder.errored(&id, &message).await;
                    None
                }
            }
        });
        Some(Active {
            asset_id: asset.id,
            stop,
            writer,
        })
    }

    async fn end(&self, stream: &StreamRef, active: Active) {
        self.close(&stream.slug, active).await;
        retention::apply(&self.assets, &self.catalog, &stream.id).await;
    }

    /// Stops the writer of the recording of stream `slug` and finalises what it wrote.
    async fn close(&self, slug: &str, active: Active) {
        active.stop.cancel();
        match active.writer.await {
            Ok(Some(lost)) => {
                if lost > 0 {
                    tracing::warn!(stream = %slug, asset = %active.asset_id, segments = lost, "recording missed segments it could not write in time");
                }
                self.finish(&active.asset_id, None).await;
            }
            // Errored when the write failed.
            Ok(None) => {}
            Err(e) => {
                let message = format!("the recording stopped: {e}");
                tracing::error!(stream = %slug, asset = %active.asset_id, %message, "recording errored");
                self.errored(&active.asset_id, &message).await;
            }
        }
    }

    /// Finalises every recording a crash left unfinished.
    async fn recover(&self) {
        let unfinished = match self.assets.store.unfinished_recordings().await {
            Ok(list) => list,
            Err(e) => {
                tracing::error!(error = %e, "cannot list unfinished recordings");
                return;
            }
        };
        for asset in unfinished {
            tracing::info!(asset = %asset.id, "finalising a recording cut short by a restart");
            self.finish(&asset.id, Some(CUT_SHORT)).await;
        }
    }

    /// Finalises the recording `id`: VOD playlists, the asset's duration and HLS
    /// rendition, then audio extraction (which makes the asset `ready`).
    async fn finish(&self, id: &str, message: Option<&str>) {
        let hls = hls_dir(self.data_dir(), id);
        let audio = files::source(self.data_dir(), id);
        let done =
            tokio::task::spawn_blocking(move || finalise::finalise(&hls, Some(&audio))).await;
        let finalised = match done {
            Ok(Ok(f)) => f,
            Ok(Err(FinaliseError::Nothing)) => {
                tracing::info!(asset = %id, "nothing was recorded; the recording is removed");
                if let Err(e) = self.assets.delete(id).await {
                    tracing::warn!(asset = %id, error = %e, "cannot remove an empty recording");
                }
                return;
            }
            Ok(Err(FinaliseError::Io(e))) => {
                return self
                    .errored(id, &format!("finalising the recording failed: {e}"))
                    .await;
            }
            Err(e) => return self.errored(id, &format!("finalising stopped: {e}")).await,
        };
        let ms = (finalised.duration_s * 1000.0).round() as u64;
        let store = &self.assets.store;
        let saved = async {
            store
                .set_rendition(
                    id,
                    RenditionKind::Hls,
                    RenditionState::Ready,
                    Some(finalised.bytes),
                    None,
                )
                .await?;
            store.end_recording(id, ms, message).await
        };
        if let Err(e) = saved.await {
            tracing::error!(asset = %id, error = %e, "cannot store a finalised recording");
            return;
        }
        self.assets.bus.publish(AssetEvent::RenditionReady {
            asset_id: id.to_string(),
            kind: RenditionKind::Hls,
            size_bytes: finalised.bytes,
        });
        let asset = store.get(id).await.ok().flatten();
        self.assets.bus.publish(AssetEvent::RecordingReady {
            asset_id: id.to_string(),
            stream_id: asset.as_ref().and_then(|a| a.stream_id.clone()),
            live_session_id: asset.as_ref().and_then(|a| a.live_session_id.clone()),
            duration_s: finalised.duration_s,
        });
        tracing::info!(asset = %id, duration_s = finalised.duration_s, bytes = finalised.bytes, "recording finalised");
        if finalised.has_audio {
            if let Err(e) = self
                .assets
                .queue
                .enqueue(EXTRACT_AUDIO, id, EXTRACT_ATTEMPTS)
                .await
            {
                tracing::error!(asset = %id, error = %e, "cannot queue the recording's audio extraction");
            }
            return;
        }
        let no_audio = "the live session had no audio";
        for kind in RenditionKind::AUDIO {
            let _ = store
                .set_rendition(id, kind, RenditionState::Errored, None, Some(no_audio))
                .await;
        }
        if store.settle(id, AssetState::Ready, message).await.is_ok() {
            self.assets.bus.publish(AssetEvent::Ready {
                asset_id: id.to_string(),
            });
        }
    }

    async fn errored(&self, id: &str, message: &str) {
        let store = &self.assets.store;
        let _ = store.end_recording(id, 0, Some(message)).await;
        if store
            .settle(id, AssetState::Errored, Some(message))
            .await
            .is_ok()
        {
            self.assets.bus.publish(AssetEvent::Errored {
                asset_id: id.to_string(),
                message: message.to_string(),
            });
        }
    }
}

/// Follows `output` into `dir` until `stop`, then takes what is left (the session's
/// end has been packaged by then). Returns how many segments were lost.
async fn write(
    output: Arc<StreamOutput>,
    dir: PathBuf,
    stop: CancellationToken,
) -> std::io::Result<u64> {
    let mut changes = output.subscribe();
    let mut follower = Follower::new(&output.lock(), false);
    let mut disk = Some(Disk::new(dir));
    let mut multivariant: Option<Bytes> = None;
    loop {
        let stopping = stop.is_cancelled();
        let (items, newest) = {
            let state = output.lock();
            (follower.collect(&state), state.multivariant.clone())
        };
        let index = newest.filter(|m| multivariant.as_ref() != Some(m));
        if !items.is_empty() || index.is_some() {
            if let Some(m) = &index {
                multivariant = Some(m.clone());
            }
            let mut d = disk
                .take()
                .ok_or_else(|| std::io::Error::other("writer gone"))?;
            d = tokio::task::spawn_blocking(move || {
                d.write(items)?;
                if let Some(m) = index {
                    d.save_multivariant(&m)?;
                }
                Ok::<_, std::io::Error>(d)
            })
            .await
            .map_err(std::io::Error::other)??;
            disk = Some(d);
        }
        if stopping {
            break;
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { break },
            () = stop.cancelled() => {}
        }
    }
    if let Some(d) = disk {
        tokio::task::spawn_blocking(move || d.finish())
            .await
            .map_err(std::io::Error::other)??;
    }
    Ok(follower.lost_segments)
}
