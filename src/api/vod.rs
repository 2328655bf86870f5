//! What the asset, job and upload handlers share: the services, who may see and
//! change an asset, and how their errors become problems.

use std::collections::HashSet;
use std::sync::Mutex;

use super::problem::{ApiError, Problem};
use crate::assets::service::{AssetError, AssetService};
use crate::assets::Asset;
use crate::auth::request::Caller;
use crate::auth::Role;
use crate::config::UploadsConfig;
use crate::jobs::JobStoreError;
use crate::streams::Visibility;
use crate::uploads::store::UploadStore;

/// Assets, jobs and uploads.
pub struct Vod {
    pub assets: AssetService,
    pub uploads: UploadStore,
    pub limits: UploadsConfig,
    /// Uploads a PATCH is writing right now (one writer per upload).
    pub busy: Mutex<HashSet<String>>,
    /// Segment durations of the `/vod` renditions served so far.
    pub timelines: super::vod_timeline::Timelines,
    /// Assets found ready at `/vod`, so segment requests skip the catalog.
    pub ready: super::vod_ready::ReadyAssets,
}

impl Vod {
    /// Marks `id` busy; `false` if it already is.
    pub fn lock_upload(&self, id: &str) -> bool {
        self.busy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string())
    }

    pub fn unlock_upload(&self, id: &str) {
        self.busy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

/// Admins all, broadcasters their own.
pub fn may_manage(caller: &Caller, asset: &Asset) -> bool {
    caller.manages_owned_by(asset.owner_id.as_deref())
}

/// Lists show public assets to everyone and the rest to who manages them (the rule
/// of stream lists and search too).
pub fn listed_for(caller: Option<&Caller>, asset: &Asset) -> bool {
    crate::auth::request::listed_for(caller, asset.visibility, asset.owner_id.as_deref())
}

/// A single asset is found by everyone when public or unlisted (the id is the
/// secret), by its managers when private.
pub fn found_by(caller: Option<&Caller>, asset: &Asset) -> bool {
    asset.visibility != Visibility::Private || caller.is_some_and(|c| may_manage(c, asset))
}

/// 401 without a token, 403 for viewers: uploads are for broadcasters and admins.
pub fn uploader(caller: &Caller) -> Result<(), ApiError> {
    if caller.role == Role::Viewer {
        return Err(Problem::forbidden("only broadcasters and admins may upload").into());
    }
    Ok(())
}

pub fn asset_error(e: AssetError) -> ApiError {
    Problem::internal(&e).into()
}

pub fn db_error(e: sqlx::Error) -> ApiError {
    Problem::internal(&e).into()
}

pub fn job_error(e: JobStoreError) -> ApiError {
    match e {
        JobStoreError::NotFound => Problem::not_found("there is no such job").into(),
        JobStoreError::WrongState(..) => Problem::conflict(e.to_string()).into(),
        JobStoreError::Db(e) => Problem::internal(&e).into(),
    }
}
