//! The durable job queue: background work (audio extraction now, transcodes and
//! recordings later) kept in the catalog database so that it survives a crash.
//!
//! Contract:
//! - A job is `queued` until a worker claims it (`running`, `attempts + 1`), then ends
//!   `succeeded`, `failed` (after `max_attempts`, or at once for a permanent error),
//!   `cancelled`, or goes back to `queued` with `next_run_at` pushed out by
//!   [`backoff`].
//! - Recovery: at start, jobs left `running` by a process that died go back to
//!   `queued` ([`JobStore::recover`]) and run again; job bodies therefore make every
//!   step safe to repeat (write a temp file, then rename).
//! - Bodies run on blocking threads (see [`worker`]), never on the async runtime's
//!   workers, so a long extraction cannot delay the live path.
//!
//! [`JobStore`] keeps the queue behind a small trait; [`sqlite::SqliteJobStore`] is
//! the implementation on the catalog's pool.

pub mod sqlite;
pub mod worker;

use async_trait::async_trait;
use serde::Serialize;
use utoipa::ToSchema;

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            _ => return None,
        })
    }

    /// No worker will take it up again unless it is retried.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

/// One job as stored.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Job {
    pub id: String,
    /// What the job does, e.g. `extract_audio`.
    pub kind: String,
    /// What it works on (an asset id).
    pub subject: String,
    pub state: JobState,
    /// Attempts started so far (an attempt cut by a crash counts).
    pub attempts: u32,
    pub max_attempts: u32,
    /// Unix seconds; a queued job is not taken before.
    pub next_run_at: i64,
    /// 0–100.
    pub progress: u8,
    pub last_error: Option<String>,
    /// A cancel was asked while it ran.
    pub cancel_requested: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// How a finished attempt ended, as a job body says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    /// Worth another attempt (after backoff), while attempts remain.
    Retryable(String),
    /// Another attempt would fail the same way (bad input): fail now.
    Permanent(String),
    /// The body saw the cancel flag and stopped.
    Cancelled,
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobError::Retryable(m) | JobError::Permanent(m) => f.write_str(m),
            JobError::Cancelled => f.write_str("cancelled"),
        }
    }
}

/// What a change asked over the API could not do.
#[derive(Debug, thiserror::Error)]
pub enum JobStoreError {
    #[error("no such job")]
    NotFound,
    #[error("the job is {0}; {1}")]
    WrongState(&'static str, &'static str),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// Seconds to wait before attempt `attempts + 1` after `attempts` failed ones:
/// 2, 4, 8, … capped at 5 minutes.
pub fn backoff(attempts: u32) -> i64 {
    let exp = attempts.clamp(1, 16);
    (1i64 << exp).min(300)
}

/// The queue's storage. Every method is one transaction.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Adds queued jobs of `subject` that may run at once, one `(kind, max_attempts)`
    /// each, all or none: a worker never sees some of them without the others (an
    /// asset's state is judged from all its jobs), and a crash between two inserts
    /// cannot leave one out.
    async fn enqueue_all(
        &self,
        subject: &str,
        jobs: &[(&str, u32)],
    ) -> Result<Vec<Job>, JobStoreError>;
    /// Adds one queued job that may run at once.
    async fn enqueue(
        &self,
        kind: &str,
        subject: &str,
        max_attempts: u32,
    ) -> Result<Job, JobStoreError> {
        self.enqueue_all(subject, &[(kind, max_attempts)])
            .await?
            .pop()
            .ok_or(JobStoreError::NotFound)
    }
    /// Claims the oldest queued job whose `next_run_at` is not after `now`:
    /// `running`, attempts + 1. At most one caller gets each job.
    async fn claim(&self, now: i64) -> Result<Option<Job>, JobStoreError>;
    async fn get(&self, id: &str) -> Result<Option<Job>, JobStoreError>;
    /// Jobs, newest first; only those of `subject` when given.
    async fn list(&self, subject: Option<&str>, limit: u32) -> Result<Vec<Job>, JobStoreError>;
    async fn set_progress(&self, id: &str, progress: u8) -> Result<(), JobStoreError>;
    /// Ends a running attempt: succeeded, or per `error` failed / cancelled / queued
    /// again at `now + backoff`. Returns the job as stored.
    async fn finish(
        &self,
        id: &str,
        outcome: Result<(), JobError>,
        now: i64,
    ) -> Result<Job, JobStoreError>;
    /// A queued job is cancelled at once; a running one gets its cancel flag (the
    /// body stops at its next check). Final jobs: `WrongState`.
    async fn cancel(&self, id: &str) -> Result<Job, JobStoreError>;
    /// A failed or cancelled job is queued again with fresh attempts.
    async fn retry(&self, id: &str) -> Result<Job, JobStoreError>;
    /// Jobs left `running` (their process died) go back to `queued`; returns how many.
    async fn recover(&self) -> Result<u64, JobStoreError>;
    /// Removes every job of `subject` (its asset was deleted).
    async fn delete_subject(&self, subject: &str) -> Result<(), JobStoreError>;
}
