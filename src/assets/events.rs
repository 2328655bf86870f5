//! Asset lifecycle events, for in-process subscribers (notifications later). Same
//! contract as the stream bus ([`crate::streams::events`]): bounded to
//! [`ASSET_BUS_CAPACITY`], publishing never waits, a slow subscriber lags and is told.

use serde::Serialize;
use tokio::sync::broadcast;

use super::RenditionKind;

pub const ASSET_BUS_CAPACITY: usize = 256;

/// What happened to an asset or an upload (`type` in JSON).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum AssetEvent {
    #[serde(rename = "upload.created")]
    UploadCreated {
        upload_id: String,
        owner_id: String,
        length: u64,
    },
    #[serde(rename = "upload.completed")]
    UploadCompleted { upload_id: String, asset_id: String },
    #[serde(rename = "asset.created")]
    Created {
        asset_id: String,
        owner_id: Option<String>,
    },
    #[serde(rename = "asset.ready")]
    Ready { asset_id: String },
    #[serde(rename = "asset.errored")]
    Errored { asset_id: String, message: String },
    #[serde(rename = "recording.started")]
    RecordingStarted {
        asset_id: String,
        stream_id: String,
        live_session_id: String,
    },
    /// The recording is on-demand HLS (its audio renditions may still be made).
    #[serde(rename = "recording.ready")]
    RecordingReady {
        asset_id: String,
        stream_id: Option<String>,
        live_session_id: Option<String>,
        duration_s: f64,
    },
    #[serde(rename = "rendition.ready")]
    RenditionReady {
        asset_id: String,
        kind: RenditionKind,
        size_bytes: u64,
    },
    #[serde(rename = "rendition.errored")]
    RenditionErrored {
        asset_id: String,
        kind: RenditionKind,
        message: String,
    },
}

/// The sender side; clone freely.
#[derive(Clone)]
pub struct AssetBus {
    tx: broadcast::Sender<AssetEvent>,
}

impl Default for AssetBus {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(ASSET_BUS_CAPACITY).0,
        }
    }
}

impl AssetBus {
    /// Never waits; without subscribers the event is dropped.
    pub fn publish(&self, event: AssetEvent) {
        tracing::debug!(?event, "asset event");
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<AssetEvent> {
        self.tx.subscribe()
    }
}
