//! The one writer of asset events into the outbox: it listens on the asset bus
//! ([`crate::assets::events`]), where the upload API, the job workers and the recorder
//! publish without waiting, and records `asset.created`, `asset.ready`,
//! `asset.errored`, `recording.started` and `recording.ready` with the asset as it is
//! then. Like [`super::bus_writer`], the producers never touch the database for it.
//!
//! Bound: the bus keeps [`crate::assets::events::ASSET_BUS_CAPACITY`] events; falling
//! further behind loses the oldest, which is logged with the count.

use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

use super::outbox;
use super::payloads::AssetChanged;
use super::webhooks::MessageType;
use crate::assets::events::AssetEvent;
use crate::assets::store::AssetStore;
use crate::db::Pool;

/// The outbox type an asset event becomes, with the asset it is about; `None` for
/// events that are not delivered (upload progress, single renditions).
pub fn message_type(event: &AssetEvent) -> Option<(MessageType, &str)> {
    Some(match event {
        AssetEvent::Created { asset_id, .. } => (MessageType::AssetCreated, asset_id),
        AssetEvent::Ready { asset_id } => (MessageType::AssetReady, asset_id),
        AssetEvent::Errored { asset_id, .. } => (MessageType::AssetErrored, asset_id),
        AssetEvent::RecordingStarted { asset_id, .. } => (MessageType::RecordingStarted, asset_id),
        AssetEvent::RecordingReady { asset_id, .. } => (MessageType::RecordingReady, asset_id),
        AssetEvent::UploadCreated { .. }
        | AssetEvent::UploadCompleted { .. }
        | AssetEvent::RenditionReady { .. }
        | AssetEvent::RenditionErrored { .. } => return None,
    })
}

/// Records the asset bus's events until `shutdown`. `bus` must be subscribed before
/// anything can publish on it.
pub fn spawn(
    pool: Pool,
    assets: AssetStore,
    mut bus: broadcast::Receiver<AssetEvent>,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => return,
                event = bus.recv() => event,
            };
            let event = match event {
                Ok(event) => event,
                Err(RecvError::Lagged(n)) => {
                    tracing::error!(lost = n, "outbox writer fell behind the asset bus");
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            let Some((kind, id)) = message_type(&event) else {
                continue;
            };
            let asset = match assets.get(id).await {
                Ok(Some(asset)) => asset,
                // Deleted since: nobody is to be told about it any more.
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(error = %e, asset = %id, "cannot read an asset for the outbox");
                    continue;
                }
            };
            let Ok(data) = serde_json::to_value(AssetChanged { asset }) else {
                continue;
            };
            let written = async {
                let mut conn = pool.acquire().await?;
                outbox::enqueue(&mut conn, kind.as_str(), &data).await
            }
            .await;
            if let Err(e) = written {
                tracing::error!(error = %e, kind = kind.as_str(), "cannot write an outbox message");
            }
        }
    });
}
