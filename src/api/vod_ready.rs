//! The assets `/vod` has found ready to play, so that a viewer's segment requests do
//! not each read the asset's row from the catalog (a 2-hour presentation at 2 s
//! segments is 3,600 requests per viewer per rendition). Only assets whose HLS is
//! ready are kept: an on-demand presentation does not change once finished, and the
//! two things that do change it, deleting the asset and retrying one of its jobs,
//! forget it here. Entries also expire after [`FRESH_FOR`], which bounds what another
//! process changing the catalog (a restore, a second server) could leave stale.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::assets::store::AssetStore;
use crate::assets::{Asset, RenditionKind, RenditionState};

/// How long an entry is trusted without reading the catalog again.
const FRESH_FOR: Duration = Duration::from_secs(30);
/// The most assets remembered at once; when full, the cache starts afresh.
const MAX_ASSETS: usize = 4096;

/// Ready assets by id, with when each was read.
#[derive(Default)]
pub struct ReadyAssets {
    found: Mutex<HashMap<String, (Instant, Arc<Asset>)>>,
}

/// True when the asset's on-demand HLS can be served.
pub fn hls_ready(asset: &Asset) -> bool {
    asset
        .renditions
        .iter()
        .any(|r| r.kind == RenditionKind::Hls && r.state == RenditionState::Ready)
}

impl ReadyAssets {
    /// The asset `id`, from memory when it was found ready less than [`FRESH_FOR`]
    /// ago, else from the catalog (`Ok(None)`: there is no such asset).
    pub async fn get(
        &self,
        store: &AssetStore,
        id: &str,
    ) -> Result<Option<Arc<Asset>>, sqlx::Error> {
        if let Some((read_at, asset)) = self.lock().get(id) {
            if read_at.elapsed() < FRESH_FOR {
                return Ok(Some(asset.clone()));
            }
        }
        let Some(asset) = store.get(id).await? else {
            self.forget(id);
            return Ok(None);
        };
        let asset = Arc::new(asset);
        if hls_ready(&asset) {
            let mut found = self.lock();
            if found.len() >= MAX_ASSETS {
                found.clear();
            }
            found.insert(id.to_string(), (Instant::now(), asset.clone()));
        }
        Ok(Some(asset))
    }

    /// Drops what is known of `id` (it was deleted or is being prepared again).
    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, (Instant, Arc<Asset>)>> {
        self.found.lock().unwrap_or_else(|p| p.into_inner())
    }
}
