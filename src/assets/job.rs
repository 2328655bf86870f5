//! The `extract_audio` job: probe the asset's source, then make each audio rendition
//! that is not already there, then mark the asset ready. Every step can be repeated: a
//! rendition whose row says `ready` and whose file exists is kept, anything else is
//! written again from the start (see [`super::extract`]). What the asset becomes is
//! [`super::settle`]'s to say.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

use super::events::{AssetBus, AssetEvent};
use super::extract::{self, ExtractError, Output};
use super::store::AssetStore;
use super::{files, settle, RenditionKind, RenditionState};
use crate::jobs::worker::{JobContext, JobHandler};
use crate::jobs::{Job, JobError, JobStore};

/// Runs audio extraction for assets.
pub struct ExtractAudio {
    pub data_dir: PathBuf,
    pub assets: AssetStore,
    pub bus: AssetBus,
    /// The queue's store, to see the asset's other jobs when settling.
    pub jobs: Arc<dyn JobStore>,
}

fn job_error(e: ExtractError) -> JobError {
    match e {
        ExtractError::BadInput(_) | ExtractError::NoAudio => JobError::Permanent(e.to_string()),
        ExtractError::Server(m) => JobError::Retryable(m),
        ExtractError::Cancelled => JobError::Cancelled,
    }
}

fn db_error(e: sqlx::Error) -> JobError {
    JobError::Retryable(format!("database: {e}"))
}

#[async_trait]
impl JobHandler for ExtractAudio {
    fn run(&self, job: &Job, ctx: &JobContext) -> Result<(), JobError> {
        let id = job.subject.as_str();
        let asset = ctx
            .rt
            .block_on(self.assets.get(id))
            .map_err(db_error)?
            .ok_or_else(|| JobError::Permanent("the asset was deleted".into()))?;
        let src = files::source(&self.data_dir, id);
        let cancelled = || ctx.cancelled();
        let probe = extract::probe(&src, &cancelled).map_err(job_error)?;
        // A recording's duration comes from what was recorded, exactly.
        if let Some(d) = probe.duration.filter(|_| asset.duration_s.is_none()) {
            let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
            ctx.rt
                .block_on(self.assets.set_duration(id, ms))
                .map_err(db_error)?;
        }
        let aac = probe.audio.as_ref().is_some_and(|a| a.aac);
        // Progress: the M4A pass (a copy, fast) is the first 20 %, the MP3 pass the rest.
        let passes = [
            (
                RenditionKind::AudioM4a,
                if aac {
                    Output::M4aCopy
                } else {
                    Output::M4aEncode
                },
                0.0,
                20.0,
            ),
            (RenditionKind::AudioMp3, Output::Mp3, 20.0, 80.0),
        ];
        for (kind, output, base, span) in passes {
            let dst = files::rendition(&self.data_dir, id, kind);
            let done = asset
                .renditions
                .iter()
                .any(|r| r.kind == kind && r.state == RenditionState::Ready);
            if done && dst.is_file() {
                continue;
            }
            let progress = |f: f64| ctx.set_progress((base + span * f) as u8);
            match extract::render(&src, &dst, output, probe.duration, &progress, &cancelled) {
                Ok(size) => {
                    ctx.rt
                        .block_on(self.assets.set_rendition(
                            id,
                            kind,
                            RenditionState::Ready,
                            Some(size),
                            None,
                        ))
                        .map_err(db_error)?;
                    self.bus.publish(AssetEvent::RenditionReady {
                        asset_id: id.to_string(),
                        kind,
                        size_bytes: size,
                    });
                }
                Err(e) => return Err(job_error(e)),
            }
        }
        Ok(())
    }

    async fn settled(&self, job: &Job) {
        if job.state.is_final() {
            settle::settle(&self.assets, &*self.jobs, &self.bus, &job.subject).await;
        }
    }
}
