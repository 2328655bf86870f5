//! The `extract_audio` job: probe the asset's source, then make each audio rendition
//! that is not already there, then mark the asset ready. Every step can be repeated: a
//! rendition whose row says `ready` and whose file exists is kept, anything else is
//! written again from the start (see [`super::extract`]).

use std::path::PathBuf;

use async_trait::async_trait;

use super::events::{AssetBus, AssetEvent};
use super::extract::{self, ExtractError, Output};
use super::store::AssetStore;
use super::{files, AssetState, RenditionKind, RenditionState};
use crate::jobs::worker::{JobContext, JobHandler};
use crate::jobs::{Job, JobError, JobState};

/// Runs audio extraction for assets.
pub struct ExtractAudio {
    pub data_dir: PathBuf,
    pub assets: AssetStore,
    pub bus: AssetBus,
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
        let id = job.subject.as_str();
        let message = match job.state {
            JobState::Succeeded => None,
            JobState::Failed => Some(
                job.last_error
                    .clone()
                    .unwrap_or_else(|| "the extraction failed".into()),
            ),
            JobState::Cancelled => {
                Some("the extraction was cancelled; retry its job to finish it".to_string())
            }
            JobState::Queued | JobState::Running => return,
        };
        let before = self.assets.get(id).await.ok().flatten();
        // A recording plays whatever happens to its audio: a failed extraction errors
        // the audio renditions, not the asset. Its own message (cut short by a crash)
        // stays.
        let playable = before.as_ref().is_some_and(|a| {
            a.renditions
                .iter()
                .any(|r| r.kind == RenditionKind::Hls && r.state == RenditionState::Ready)
        });
        if playable {
            if let Some(failed) = &message {
                for kind in RenditionKind::AUDIO {
                    let pending = before
                        .iter()
                        .flat_map(|a| &a.renditions)
                        .any(|r| r.kind == kind && r.state == RenditionState::Pending);
                    if pending {
                        let _ = self
                            .assets
                            .set_rendition(id, kind, RenditionState::Errored, None, Some(failed))
                            .await;
                        self.bus.publish(AssetEvent::RenditionErrored {
                            asset_id: id.to_string(),
                            kind,
                            message: failed.clone(),
                        });
                    }
                }
            }
            let own = before.as_ref().and_then(|a| a.message.clone());
            if let Err(e) = self
                .assets
                .settle(id, AssetState::Ready, own.as_deref())
                .await
            {
                tracing::error!(asset = %id, error = %e, "cannot store the asset's state");
                return;
            }
            self.bus.publish(AssetEvent::Ready {
                asset_id: id.to_string(),
            });
            return;
        }
        let state = if message.is_some() {
            AssetState::Errored
        } else {
            AssetState::Ready
        };
        if let Err(e) = self.assets.settle(id, state, message.as_deref()).await {
            tracing::error!(asset = %id, error = %e, "cannot store the asset's state");
            return;
        }
        match message {
            None => self.bus.publish(AssetEvent::Ready {
                asset_id: id.to_string(),
            }),
            Some(message) => {
                for r in before.iter().flat_map(|a| &a.renditions) {
                    if r.state == RenditionState::Pending {
                        self.bus.publish(AssetEvent::RenditionErrored {
                            asset_id: id.to_string(),
                            kind: r.kind,
                            message: message.clone(),
                        });
                    }
                }
                self.bus.publish(AssetEvent::Errored {
                    asset_id: id.to_string(),
                    message,
                });
            }
        }
    }
}
