//! The per-stream recording limits: recordings older than `retention_days` are
//! deleted, then the oldest until the stream's recordings fit in `max_bytes`. The
//! newest recording is always kept, so a cap smaller than one session never deletes
//! what was just recorded. Applied after each recording and every hour.

use crate::assets::service::AssetService;
use crate::assets::RenditionKind;
use crate::catalog::Catalog;

/// Applies stream `stream_id`'s limits; returns how many recordings were deleted.
pub async fn apply(assets: &AssetService, catalog: &Catalog, stream_id: &str) -> usize {
    let Some(def) = catalog.get(stream_id) else {
        return 0;
    };
    let limits = def.record;
    if limits.retention_days.is_none() && limits.max_bytes.is_none() {
        return 0;
    }
    let recordings = match assets.store.recordings_of(stream_id).await {
        Ok(list) => list,
        Err(e) => {
            tracing::warn!(stream = %def.slug, error = %e, "cannot read recordings for retention");
            return 0;
        }
    };
    let now = crate::db::now();
    let newest = recordings.last().map(|a| a.id.clone());
    let mut doomed = Vec::new();
    let mut kept = Vec::new();
    for asset in recordings {
        let expired = limits
            .retention_days
            .is_some_and(|days| now - asset.created_at > i64::from(days) * 86_400);
        if expired && Some(&asset.id) != newest.as_ref() {
            doomed.push(asset.id);
        } else {
            kept.push(asset);
        }
    }
    if let Some(max) = limits.max_bytes {
        let size = |a: &crate::assets::Asset| {
            a.renditions
                .iter()
                .filter(|r| r.kind == RenditionKind::Hls)
                .filter_map(|r| r.size_bytes)
                .sum::<u64>()
        };
        let mut total: u64 = kept.iter().map(size).sum();
        for asset in &kept {
            if total <= max || Some(&asset.id) == newest.as_ref() {
                break;
            }
            total = total.saturating_sub(size(asset));
            doomed.push(asset.id.clone());
        }
    }
    let mut deleted = 0;
    for id in doomed {
        match assets.delete(&id).await {
            Ok(_) => {
                deleted += 1;
                tracing::info!(stream = %def.slug, asset = %id, "recording deleted by the stream's retention");
            }
            Err(e) => tracing::warn!(asset = %id, error = %e, "cannot delete an old recording"),
        }
    }
    deleted
}
