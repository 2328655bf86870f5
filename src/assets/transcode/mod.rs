//! The `transcode_hls` job: an uploaded file becomes on-demand HLS made exactly like
//! a live stream's. The file is demuxed ([`demux`]) into the same media events an
//! ingest hands on, fed as fast as the machine goes into the live path's own sink
//! (`LadderSink::offline`: the packager plus the `[vod] ladder` profile, on an output
//! published nowhere), and written with the recorder's `Follower` + `Disk` into
//! `<asset>/hls/`, then finalised as VOD playlists (`recordings::finalise`). So the
//! segment rules, codecs strings and 360 boxes are the live stream's.
//!
//! Bounds: the demuxer waits when its channel is full; the ladder's input blocks
//! the pusher when full (offline pace), so the rungs stay within a few seconds of the
//! source, and the follower is driven after every event, so nothing leaves the
//! packager's window unseen (checked: a lost segment fails the attempt).
//!
//! Repeatable: every attempt starts over into an empty `hls` folder; the rendition is
//! marked ready only after the playlists are written.

pub mod demux;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;

use super::events::{AssetBus, AssetEvent};
use super::store::AssetStore;
use super::{files, settle, Asset, RenditionKind, RenditionState};
use crate::jobs::worker::{JobContext, JobHandler};
use crate::jobs::{Job, JobError, JobStore};
use crate::media::WallClockAnchor;
use crate::packager::output::TranscodeState;
use crate::packager::{PackagerConfig, StreamOutput};
use crate::pipeline::profile::LadderProfile;
use crate::pipeline::sink::LadderSink;
use crate::recordings::disk::Disk;
use crate::recordings::finalise::{self, FinaliseError};
use crate::recordings::follow::Follower;
use crate::recordings::hls_dir;
use crate::streams::worker::MediaSink;
use crate::streams::StreamDef;
use demux::{DemuxError, Demuxer, Next};

/// How long one wait for the demuxer lasts before the cancel flag is read again.
const POLL: Duration = Duration::from_millis(100);
/// A demuxer that hands over nothing for this long has stalled (a damaged file the
/// parser waits on forever); the attempt fails rather than hold a worker.
const STALL_LIMIT: Duration = Duration::from_secs(60);
/// Progress up to here comes from the file position; finalising is the rest.
const PACKAGED_PERCENT: f64 = 95.0;
/// Complete segments the private packager keeps at least: the rungs trail the
/// source by a few seconds, far less than this many segments.
const MIN_WINDOW_SEGMENTS: usize = 10;

/// Runs on-demand transcodes of uploads.
pub struct TranscodeHls {
    pub data_dir: PathBuf,
    pub assets: AssetStore,
    pub bus: AssetBus,
    /// The queue's store, to see the asset's other jobs when settling.
    pub jobs: Arc<dyn JobStore>,
    /// The live packager's shape (parts, segments).
    pub packager: PackagerConfig,
    pub profiles: Arc<BTreeMap<String, LadderProfile>>,
    /// The ladder profile uploads are encoded to (`[vod] ladder`).
    pub ladder: String,
}

fn db_error(e: sqlx::Error) -> JobError {
    JobError::Retryable(format!("database: {e}"))
}

fn io_error(e: std::io::Error) -> JobError {
    JobError::Retryable(format!("writing the on-demand video: {e}"))
}

fn demux_error(e: DemuxError) -> JobError {
    match e {
        DemuxError::BadInput(m) => JobError::Permanent(format!(
            "the file cannot be made into a video ({m}); upload an MP4, MOV or MKV file \
             with H.264, HEVC, VP9 or AV1 video"
        )),
        DemuxError::Server(m) => JobError::Retryable(m),
    }
}

/// Takes what the packager published since the last call and writes it, with the
/// multivariant playlist when it changed.
fn drain(
    output: &StreamOutput,
    follower: &mut Follower,
    disk: &mut Disk,
    saved: &mut Option<Bytes>,
) -> Result<(), JobError> {
    let (items, multivariant) = {
        let state = output.lock();
        (follower.collect(&state), state.multivariant.clone())
    };
    disk.write(items).map_err(io_error)?;
    if let Some(m) = multivariant.filter(|m| saved.as_ref() != Some(m)) {
        disk.save_multivariant(&m).map_err(io_error)?;
        *saved = Some(m);
    }
    Ok(())
}

impl TranscodeHls {
    /// Packages the whole file at `src` into `hls`.
    fn package(
        &self,
        asset: &Asset,
        src: &Path,
        hls: &Path,
        ctx: &JobContext,
    ) -> Result<(), JobError> {
        let stream = Arc::new(StreamDef {
            ladder: self.ladder.clone(),
            projection: asset.projection,
            orientation: asset.orientation,
            ..StreamDef::new(&asset.id)
        });
        let output = Arc::new(StreamOutput::new(&asset.id));
        let config = PackagerConfig {
            window_segments: self.packager.window_segments.max(MIN_WINDOW_SEGMENTS),
            ..self.packager
        };
        let mut sink = LadderSink::offline(
            config,
            Arc::clone(&output),
            Arc::clone(&self.profiles),
            Arc::clone(&stream),
        );
        sink.set_stream(&stream);
        sink.begin_session(WallClockAnchor::now());
        let mut follower = Follower::new(&output.lock(), true);
        let mut disk = Disk::new(hls.to_path_buf());
        let mut saved = None;
        let result = (|| {
            let mut demux = Demuxer::open(src).map_err(demux_error)?;
            let mut events = 0u64;
            let mut last_event = Instant::now();
            loop {
                if ctx.cancelled() {
                    return Err(JobError::Cancelled);
                }
                match demux.next(POLL).map_err(demux_error)? {
                    Next::Event(event) => {
                        last_event = Instant::now();
                        sink.push(event);
                        events += 1;
                        if events % 32 == 0 {
                            if let Some(f) = demux.position() {
                                ctx.set_progress((f * PACKAGED_PERCENT) as u8);
                            }
                        }
                    }
                    Next::Idle if last_event.elapsed() > STALL_LIMIT => {
                        return Err(JobError::Retryable(format!(
                            "reading the file stalled for {} s",
                            STALL_LIMIT.as_secs()
                        )));
                    }
                    Next::Idle => {}
                    Next::End => break,
                }
                drain(&output, &mut follower, &mut disk, &mut saved)?;
            }
            // Every queued frame is encoded before the playlists end.
            sink.end_session();
            sink.end_live_session();
            drain(&output, &mut follower, &mut disk, &mut saved)?;
            let failed = output
                .lock()
                .transcode
                .as_ref()
                .filter(|t| t.state == TranscodeState::Failed)
                .map(|t| t.message.clone().unwrap_or_default());
            if let Some(m) = failed {
                return Err(JobError::Retryable(format!("the ladder failed: {m}")));
            }
            if follower.lost_segments > 0 {
                return Err(JobError::Retryable(format!(
                    "{} segments left the packager before they were written",
                    follower.lost_segments
                )));
            }
            Ok(())
        })();
        sink.close(true);
        result?;
        disk.finish().map_err(io_error)
    }
}

#[async_trait]
impl JobHandler for TranscodeHls {
    fn run(&self, job: &Job, ctx: &JobContext) -> Result<(), JobError> {
        let id = job.subject.as_str();
        let asset = ctx
            .rt
            .block_on(self.assets.get(id))
            .map_err(db_error)?
            .ok_or_else(|| JobError::Permanent("the asset was deleted".into()))?;
        let src = files::source(&self.data_dir, id);
        let hls = hls_dir(&self.data_dir, id);
        // Start over: what an earlier attempt (or a crash) left is not trusted.
        match std::fs::remove_dir_all(&hls) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(e)),
        }
        if let Err(e) = self.package(&asset, &src, &hls, ctx) {
            // Nothing half-written stays behind (the next attempt starts over anyway).
            let _ = std::fs::remove_dir_all(&hls);
            return Err(e);
        }
        let finalised = match finalise::finalise(&hls, None) {
            Ok(f) => f,
            Err(FinaliseError::Nothing) => {
                return Err(JobError::Permanent(
                    "the file holds no complete video frame; upload another file".into(),
                ))
            }
            Err(FinaliseError::Io(e)) => return Err(io_error(e)),
        };
        let store = &self.assets;
        ctx.rt
            .block_on(store.set_rendition(
                id,
                RenditionKind::Hls,
                RenditionState::Ready,
                Some(finalised.bytes),
                None,
            ))
            .map_err(db_error)?;
        let now = ctx.rt.block_on(store.get(id)).map_err(db_error)?;
        if now.is_some_and(|a| a.duration_s.is_none()) {
            let ms = (finalised.duration_s * 1000.0).round() as u64;
            ctx.rt
                .block_on(store.set_duration(id, ms))
                .map_err(db_error)?;
        }
        ctx.set_progress(100);
        tracing::info!(asset = %id, duration_s = finalised.duration_s, bytes = finalised.bytes, "upload transcoded to on-demand HLS");
        self.bus.publish(AssetEvent::RenditionReady {
            asset_id: id.to_string(),
            kind: RenditionKind::Hls,
            size_bytes: finalised.bytes,
        });
        Ok(())
    }

    async fn settled(&self, job: &Job) {
        if job.state.is_final() {
            settle::settle(&self.assets, &*self.jobs, &self.bus, &job.subject).await;
        }
    }
}
