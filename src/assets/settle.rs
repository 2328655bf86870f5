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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assets::{Asset, NewAsset};
    use crate::auth::{accounts, Role};
    use crate::db;
    use crate::jobs::sqlite::SqliteJobStore;
    use crate::jobs::JobError;
    use crate::streams::{Orientation, Projection, Visibility};

    struct Upload {
        _dir: tempfile::TempDir,
        assets: AssetStore,
        jobs: SqliteJobStore,
        bus: AssetBus,
        id: String,
    }

    /// An upload with both its jobs queued, as `AssetService::create_from_file` leaves it.
    async fn upload() -> Upload {
        let dir = tempfile::tempdir().expect("temp dir");
        let pool = db::open(dir.path()).await.expect("db");
        let user = accounts::create_user(&pool, "caster", "caster-password-1", Role::Broadcaster)
            .await
            .expect("user");
        let assets = AssetStore::new(pool.clone());
        let asset = assets
            .create(NewAsset {
                title: "talk".into(),
                owner_id: user.id,
                visibility: Visibility::Private,
                projection: Some(Projection::Equirect),
                orientation: Orientation::default(),
                filename: "talk.mp4".into(),
            })
            .await
            .expect("asset");
        let jobs = SqliteJobStore::new(pool);
        for kind in [EXTRACT_AUDIO, TRANSCODE_HLS] {
            jobs.enqueue(kind, &asset.id, 3).await.expect("enqueue");
        }
        Upload {
            _dir: dir,
            assets,
            jobs,
            bus: AssetBus::default(),
            id: asset.id,
        }
    }

    impl Upload {
        /// Runs the next queued job: `ok` for a kind succeeds (a transcode marks the
        /// HLS ready first, as the job does), any other fails for good; then settles.
        async fn run_next(&self, ok: &[&str]) -> Asset {
            let job = self
                .jobs
                .claim(db::now())
                .await
                .expect("claim")
                .expect("a queued job");
            let outcome = if ok.contains(&job.kind.as_str()) {
                if job.kind == TRANSCODE_HLS {
                    self.assets
                        .set_rendition(
                            &self.id,
                            RenditionKind::Hls,
                            RenditionState::Ready,
                            Some(1),
                            None,
                        )
                        .await
                        .expect("hls ready");
                }
                Ok(())
            } else {
                Err(JobError::Permanent(format!("{} broke", job.kind)))
            };
            self.jobs
                .finish(&job.id, outcome, db::now())
                .await
                .expect("finish");
            settle(&self.assets, &self.jobs, &self.bus, &self.id).await;
            self.assets
                .get(&self.id)
                .await
                .expect("get")
                .expect("asset")
        }
    }

    fn state_of(asset: &Asset, kind: RenditionKind) -> RenditionState {
        asset
            .renditions
            .iter()
            .find(|r| r.kind == kind)
            .map(|r| r.state)
            .expect("rendition")
    }

    #[tokio::test]
    async fn ready_only_once_both_jobs_are_done_and_the_hls_is_ready() {
        let u = upload().await;
        let all = [EXTRACT_AUDIO, TRANSCODE_HLS];
        assert_eq!(u.run_next(&all).await.state, AssetState::Preparing);
        let asset = u.run_next(&all).await;
        assert_eq!(asset.state, AssetState::Ready, "{asset:?}");
        assert_eq!(asset.message, None);
    }

    #[tokio::test]
    async fn a_failed_extraction_errors_the_audio_not_a_playable_asset() {
        let u = upload().await;
        u.run_next(&[TRANSCODE_HLS]).await;
        let asset = u.run_next(&[TRANSCODE_HLS]).await;
        assert_eq!(asset.state, AssetState::Ready, "{asset:?}");
        assert_eq!(state_of(&asset, RenditionKind::Hls), RenditionState::Ready);
        for kind in RenditionKind::AUDIO {
            assert_eq!(state_of(&asset, kind), RenditionState::Errored, "{asset:?}");
        }
    }

    #[tokio::test]
    async fn a_failed_transcode_errors_the_asset_with_its_reason() {
        let u = upload().await;
        u.run_next(&[EXTRACT_AUDIO]).await;
        let asset = u.run_next(&[EXTRACT_AUDIO]).await;
        assert_eq!(asset.state, AssetState::Errored, "{asset:?}");
        assert_eq!(asset.message.as_deref(), Some("transcode_hls broke"));
        assert_eq!(
            state_of(&asset, RenditionKind::Hls),
            RenditionState::Errored
        );
    }
}
