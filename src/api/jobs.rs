//! `/api/v1/jobs`: the background jobs of assets, for their owners and admins; cancel
//! and retry.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::access::Authed;
use super::body::{ApiQuery, MAX_PAGE_ITEMS};
use super::problem::{ApiError, Problem};
use super::vod::{db_error, job_error, may_manage};
use super::AppState;
use crate::auth::request::Caller;
use crate::auth::Role;
use crate::jobs::{Job, JobState};

/// Query of `GET /api/v1/jobs`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    /// Only the jobs of this asset.
    #[param(nullable = false)]
    pub asset: Option<String>,
    /// At most this many, newest first (default 20).
    #[param(minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<u32>,
}

/// Jobs, newest first.
#[derive(Serialize, ToSchema)]
pub struct JobList {
    pub items: Vec<Job>,
}

/// 403 for viewers; the job if the caller manages its asset (404 otherwise).
async fn managed_job(state: &AppState, caller: &Caller, id: &str) -> Result<Job, ApiError> {
    if caller.role == Role::Viewer {
        return Err(Problem::forbidden("viewers have no jobs").into());
    }
    let job = state
        .vod
        .assets
        .queue
        .store
        .get(id)
        .await
        .map_err(job_error)?
        .ok_or_else(|| Problem::not_found(format!("there is no job {id}")))?;
    let asset = state
        .vod
        .assets
        .store
        .get(&job.subject)
        .await
        .map_err(db_error)?;
    if caller.is_admin() || asset.is_some_and(|a| may_manage(caller, &a)) {
        return Ok(job);
    }
    Err(Problem::not_found(format!("there is no job {id}")).into())
}

/// The jobs of the caller's assets (an admin: all), newest first.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", operation_id = "list_jobs",
    params(JobQuery), security(("bearer" = [])),
    responses((status = 200, body = JobList),
              (status = 400, description = "`limit` outside 1..=100, or an unknown query parameter"),
              (status = 403, description = "viewers have no jobs"), (status = 500)))]
pub async fn list(
    State(state): State<AppState>,
    Authed(caller): Authed,
    ApiQuery(query): ApiQuery<JobQuery>,
) -> Result<Json<JobList>, ApiError> {
    if caller.role == Role::Viewer {
        return Err(Problem::forbidden("viewers have no jobs").into());
    }
    let limit = query.limit.unwrap_or(20);
    if !(1..=MAX_PAGE_ITEMS).contains(&limit) {
        return Err(Problem::bad_request(format!("limit must be 1..={MAX_PAGE_ITEMS}")).into());
    }
    let vod = &state.vod.assets;
    let jobs = vod
        .queue
        .store
        .list(
            query.asset.as_deref(),
            if caller.is_admin() { limit } else { 500 },
        )
        .await
        .map_err(job_error)?;
    let mut items = Vec::new();
    for job in jobs {
        if items.len() as u32 >= limit {
            break;
        }
        let mine = caller.is_admin()
            || vod
                .store
                .get(&job.subject)
                .await
                .map_err(db_error)?
                .is_some_and(|a| may_manage(&caller, &a));
        if mine {
            items.push(job);
        }
    }
    Ok(Json(JobList { items }))
}

/// Cancel a job: a queued one at once, a running one at its next check (it then
/// ends `cancelled` and its asset `errored`).
#[utoipa::path(post, path = "/api/v1/jobs/{job}/cancel", tag = "jobs", operation_id = "cancel_job",
    security(("bearer" = [])), params(("job" = String, Path, description = "job id")),
    responses((status = 200, body = Job), (status = 403, description = "viewers have no jobs"),
              (status = 404), (status = 409, description = "the job has already ended"),
              (status = 500)))]
pub async fn cancel(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    let job = managed_job(&state, &caller, &id).await?;
    let job = state
        .vod
        .assets
        .queue
        .store
        .cancel(&job.id)
        .await
        .map_err(job_error)?;
    if job.state == JobState::Cancelled {
        // A queued job never ran: its asset learns it here, by the one rule.
        let vod = &state.vod.assets;
        crate::assets::settle::settle(&vod.store, &*vod.queue.store, &vod.bus, &job.subject).await;
    }
    Ok(Json(job))
}

/// Queue a failed or cancelled job again, with fresh attempts; its asset goes back
/// to `preparing`.
#[utoipa::path(post, path = "/api/v1/jobs/{job}/retry", tag = "jobs", operation_id = "retry_job",
    security(("bearer" = [])), params(("job" = String, Path, description = "job id")),
    responses((status = 200, body = Job), (status = 403, description = "viewers have no jobs"),
              (status = 404), (status = 409, description = "the job is queued, running or succeeded"),
              (status = 500)))]
pub async fn retry(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    let job = managed_job(&state, &caller, &id).await?;
    let vod = &state.vod.assets;
    let job = vod.queue.store.retry(&job.id).await.map_err(job_error)?;
    vod.store
        .set_preparing(&job.subject)
        .await
        .map_err(db_error)?;
    state.vod.ready.forget(&job.subject);
    vod.queue.wake();
    Ok(Json(job))
}
