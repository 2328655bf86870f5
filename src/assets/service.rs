//! What the API does with assets: make one from a received file (and queue its
//! extraction), delete one with its files and jobs, retry its extraction.

use std::path::{Path, PathBuf};

use super::events::{AssetBus, AssetEvent};
use super::store::AssetStore;
use super::{
    files, Asset, NewAsset, EXTRACT_ATTEMPTS, EXTRACT_AUDIO, TRANSCODE_ATTEMPTS, TRANSCODE_HLS,
};
use crate::jobs::worker::JobQueue;
use crate::jobs::JobStoreError;

/// Why an asset could not be made or changed.
#[derive(Debug, thiserror::Error)]
pub enum AssetError {
    #[error("storing the file: {0}")]
    Io(#[from] std::io::Error),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("job queue: {0}")]
    Jobs(#[from] JobStoreError),
}

/// Assets, their files and their jobs.
#[derive(Clone)]
pub struct AssetService {
    pub data_dir: PathBuf,
    pub store: AssetStore,
    pub queue: JobQueue,
    pub bus: AssetBus,
}

impl AssetService {
    /// Makes an asset of the complete file at `received` (moved, not copied, into the
    /// asset's folder) and queues its audio extraction and its transcode to HLS.
    pub async fn create_from_file(
        &self,
        new: NewAsset,
        received: &Path,
    ) -> Result<Asset, AssetError> {
        let owner = new.owner_id.clone();
        let mut new = new;
        if new.projection.is_none() {
            let file = received.to_path_buf();
            let declared =
                tokio::task::spawn_blocking(move || super::spherical::projection_of(&file))
                    .await
                    .ok()
                    .flatten();
            if let Some(p) = declared {
                tracing::info!(projection = p.as_str(), "the file declares its projection");
            }
            new.projection = declared;
        }
        let asset = self.store.create(new).await?;
        let moved = async {
            tokio::fs::create_dir_all(files::dir(&self.data_dir, &asset.id)).await?;
            tokio::fs::rename(received, files::source(&self.data_dir, &asset.id)).await
        };
        if let Err(e) = moved.await {
            let _ = self.store.delete(&asset.id).await;
            return Err(e.into());
        }
        // Together: the extraction of a bad file fails at once, and were it alone in
        // the queue, the asset would be judged before its transcode job existed.
        self.queue
            .enqueue_all(
                &asset.id,
                &[
                    (EXTRACT_AUDIO, EXTRACT_ATTEMPTS),
                    (TRANSCODE_HLS, TRANSCODE_ATTEMPTS),
                ],
            )
            .await?;
        tracing::info!(asset = %asset.id, "asset created");
        self.bus.publish(AssetEvent::Created {
            asset_id: asset.id.clone(),
            owner_id: Some(owner),
        });
        Ok(asset)
    }

    /// Deletes the asset and its files; its unfinished jobs are cancelled (a running
    /// one stops at its next check) and stay listed for admins as history.
    pub async fn delete(&self, id: &str) -> Result<bool, AssetError> {
        for job in self.queue.store.list(Some(id), 100).await? {
            if !job.state.is_final() {
                let _ = self.queue.store.cancel(&job.id).await;
            }
        }
        let deleted = self.store.delete(id).await?;
        match tokio::fs::remove_dir_all(files::dir(&self.data_dir, id)).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        Ok(deleted)
    }
}
