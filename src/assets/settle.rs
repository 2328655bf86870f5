//! The one rule for an asset's state once its jobs have run, applied whenever one of
//! them settles (`JobHandler::settled` of every asset job calls [`settle`]):
//!
//! - while any job of the asset is queued or running, it stays `preparing`;
//! - a failed or cancelled `transcode_hls` errors the asset with the job's message
//!   (the extraction's when it failed too: its probe says what is wrong with the file);
//! - an asset whose `hls` rendition is ready is `ready`, whatever happened to its
//!   audio (a failed extraction errors the pending audio renditions, not the asset);
//! - an asset without an `hls` rendition (made before on-demand transcoding) is
//!   its audio: ready when the extraction succeeded, errored when it did not.

use super::events::{AssetBus, AssetEvent};
use super::store::AssetStore;
use super::{AssetState, RenditionKind, RenditionState, EXTRACT_AUDIO, TRANSCODE_HLS};
use crate::jobs::{Job, JobState, JobStore};

/// Why a settled job did not do its work, for a person; `None` when it succeeded.
fn failure(job: &Job) -> Option<String> {
    let what = if job.kind == TRANSCODE_HLS {
        "the transcode"
    } else {
        "the extraction"
    };
    match job.state {
        JobState::Failed => Some(
            job.last_error
                .clone()
                .unwrap_or_else(|| format!("{what} failed")),
        ),
        JobState::Cancelled => Some(format!("{what} was cancelled; retry its job to finish it")),
        _ => None,
    }
}

/// Applies the rule to asset `id` (see the module) and publishes what changed.
pub async fn settle(assets: &AssetStore, jobs: &dyn JobStore, bus: &AssetBus, id: &str) {
    let list = match jobs.list(Some(id), 100).await {
        Ok(list) => list,
        Err(e) => {
            tracing::error!(asset = %id, error = %e, "cannot read the asset's jobs");
            return;
        }
    };
    if list.iter().any(|j| !j.state.is_final()) {
        return;
    }
    let Ok(Some(asset)) = assets.get(id).await else {
        return;
    };
    // Newest first: the latest job of each kind tells.
    let newest = |kind: &str| list.iter().find(|j| j.kind == kind);
    let video_failed = newest(TRANSCODE_HLS).and_then(failure);
    let audio_failed = newest(EXTRACT_AUDIO).and_then(failure);
    let hls = asset
        .renditions
        .iter()
        .find(|r| r.kind == RenditionKind::Hls);
    let hls_ready = hls.is_some_and(|r| r.state == RenditionState::Ready);
    let errored = match (&video_failed, hls) {
        // Both failed: the file itself is bad, and the extraction's probe names what
        // is wrong with it (not media, empty, unreadable).
        (Some(m), _) => Some(audio_failed.clone().unwrap_or_else(|| m.clone())),
        (None, _) if hls_ready => None,
        (None, None) => audio_failed.clone(),
        (None, Some(_)) => {
            Some("the on-demand video was not made; retry the asset's transcode job".into())
        }
    };
    let pending: Vec<RenditionKind> = asset
        .renditions
        .iter()
        .filter(|r| r.state == RenditionState::Pending)
        .map(|r| r.kind)
        .collect();
    match errored {
        None => {
            if let Some(failed) = &audio_failed {
                for kind in RenditionKind::AUDIO
                    .into_iter()
                    .filter(|k| pending.contains(k))
                {
                    let _ = assets
                        .set_rendition(id, kind, RenditionState::Errored, None, Some(failed))
                        .await;
                    bus.publish(AssetEvent::RenditionErrored {
                        asset_id: id.to_string(),
                        kind,
                        message: failed.clone(),
                    });
                }
            }
            // A recording's own message (cut short by a crash) stays.
            let own = asset.message.as_deref();
            if let Err(e) = assets.settle(id, AssetState::Ready, own).await {
                tracing::error!(asset = %id, error = %e, "cannot store the asset's state");
                return;
            }
            bus.publish(AssetEvent::Ready {
                asset_id: id.to_string(),
            });
        }
        Some(message) => {
            if let Err(e) = assets.settle(id, AssetState::Errored, Some(&message)).await {
                tracing::error!(asset = %id, error = %e, "cannot store the asset's state");
                return;
            }
            for kind in pending {
                bus.publish(AssetEvent::RenditionErrored {
                    asset_id: id.to_string(),
                    kind,
                    message: message.clone(),
                });
            }
            bus.publish(AssetEvent::Errored {
                asset_id: id.to_string(),
                message,
            });
        }
    }
}
