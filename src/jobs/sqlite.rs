//! [`JobStore`] on the catalog database. Each method is one statement (or one
//! transaction), so two workers never claim one job.

use async_trait::async_trait;
use sqlx::Row;

use super::{backoff, Job, JobError, JobState, JobStore, JobStoreError};
use crate::db::{self, Pool};

const COLUMNS: &str = "id, kind, subject, state, attempts, max_attempts, next_run_at, \
     progress, last_error, cancel_requested, created_at, updated_at";

/// The queue in the `jobs` table.
#[derive(Clone)]
pub struct SqliteJobStore {
    pool: Pool,
}

impl SqliteJobStore {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }
}

fn job_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Job, sqlx::Error> {
    let bad = |what: &str| sqlx::Error::Decode(format!("jobs.{what}").into());
    let state: String = row.try_get("state")?;
    let attempts: i64 = row.try_get("attempts")?;
    let max_attempts: i64 = row.try_get("max_attempts")?;
    let progress: i64 = row.try_get("progress")?;
    Ok(Job {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        subject: row.try_get("subject")?,
        state: JobState::parse(&state).ok_or_else(|| bad("state"))?,
        attempts: u32::try_from(attempts).map_err(|_| bad("attempts"))?,
        max_attempts: u32::try_from(max_attempts).map_err(|_| bad("max_attempts"))?,
        next_run_at: row.try_get("next_run_at")?,
        progress: u8::try_from(progress.clamp(0, 100)).unwrap_or(0),
        last_error: row.try_get("last_error")?,
        cancel_requested: row.try_get("cancel_requested")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl SqliteJobStore {
    async fn fetch(&self, id: &str) -> Result<Job, JobStoreError> {
        self.get(id).await?.ok_or(JobStoreError::NotFound)
    }
}

#[async_trait]
impl JobStore for SqliteJobStore {
    async fn enqueue_all(
        &self,
        subject: &str,
        jobs: &[(&str, u32)],
    ) -> Result<Vec<Job>, JobStoreError> {
        let now = db::now();
        let mut tx = self.pool.begin().await?;
        let mut added = Vec::with_capacity(jobs.len());
        for (kind, max_attempts) in jobs {
            let row = sqlx::query(&format!(
                "INSERT INTO jobs ({COLUMNS}) VALUES ($1, $2, $3, 'queued', 0, $4, $5, 0, NULL, FALSE, $5, $5) \
                 RETURNING {COLUMNS}"
            ))
            .bind(db::new_id("job"))
            .bind(*kind)
            .bind(subject)
            .bind(i64::from((*max_attempts).max(1)))
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            added.push(job_from_row(&row)?);
        }
        tx.commit().await?;
        Ok(added)
    }

    async fn claim(&self, now: i64) -> Result<Option<Job>, JobStoreError> {
        let row = sqlx::query(&format!(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, updated_at = $1, \
             last_error = NULL \
             WHERE id = (SELECT id FROM jobs WHERE state = 'queued' AND next_run_at <= $1 \
                         ORDER BY next_run_at, created_at, id LIMIT 1) \
             AND state = 'queued' RETURNING {COLUMNS}"
        ))
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(job_from_row).transpose()?)
    }

    async fn get(&self, id: &str) -> Result<Option<Job>, JobStoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM jobs WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(job_from_row).transpose()?)
    }

    async fn list(&self, subject: Option<&str>, limit: u32) -> Result<Vec<Job>, JobStoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE ($1 IS NULL OR subject = $1) \
             ORDER BY created_at DESC, id DESC LIMIT $2"
        ))
        .bind(subject)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(job_from_row).collect::<Result<_, _>>()?)
    }

    async fn set_progress(&self, id: &str, progress: u8) -> Result<(), JobStoreError> {
        sqlx::query(
            "UPDATE jobs SET progress = $1, updated_at = $2 WHERE id = $3 AND state = 'running'",
        )
        .bind(i64::from(progress.min(100)))
        .bind(db::now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn finish(
        &self,
        id: &str,
        outcome: Result<(), JobError>,
        now: i64,
    ) -> Result<Job, JobStoreError> {
        let job = self.fetch(id).await?;
        let (state, error, next) = match outcome {
            Ok(()) => (JobState::Succeeded, None, job.next_run_at),
            Err(JobError::Cancelled) => (
                JobState::Cancelled,
                Some("cancelled".into()),
                job.next_run_at,
            ),
            Err(JobError::Permanent(m)) => (JobState::Failed, Some(m), job.next_run_at),
            Err(JobError::Retryable(m)) if job.cancel_requested => {
                (JobState::Cancelled, Some(m), job.next_run_at)
            }
            Err(JobError::Retryable(m)) if job.attempts < job.max_attempts => {
                (JobState::Queued, Some(m), now + backoff(job.attempts))
            }
            Err(JobError::Retryable(m)) => (JobState::Failed, Some(m), job.next_run_at),
        };
        let progress = if state == JobState::Succeeded {
            100
        } else {
            i64::from(job.progress)
        };
        let row = sqlx::query(&format!(
            "UPDATE jobs SET state = $1, last_error = $2, next_run_at = $3, progress = $4, \
             cancel_requested = FALSE, updated_at = $5 WHERE id = $6 RETURNING {COLUMNS}"
        ))
        .bind(state.as_str())
        .bind(error)
        .bind(next)
        .bind(progress)
        .bind(now)
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        Ok(job_from_row(&row)?)
    }

    async fn cancel(&self, id: &str) -> Result<Job, JobStoreError> {
        let job = self.fetch(id).await?;
        let sql = match job.state {
            JobState::Queued => {
                "UPDATE jobs SET state = 'cancelled', last_error = 'cancelled', updated_at = $1 \
                 WHERE id = $2 AND state = 'queued'"
            }
            JobState::Running => {
                "UPDATE jobs SET cancel_requested = TRUE, updated_at = $1 \
                 WHERE id = $2 AND state = 'running'"
            }
            s => {
                return Err(JobStoreError::WrongState(
                    s.as_str(),
                    "only queued or running jobs can be cancelled",
                ))
            }
        };
        sqlx::query(sql)
            .bind(db::now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.fetch(id).await
    }

    async fn retry(&self, id: &str) -> Result<Job, JobStoreError> {
        let job = self.fetch(id).await?;
        if !matches!(job.state, JobState::Failed | JobState::Cancelled) {
            return Err(JobStoreError::WrongState(
                job.state.as_str(),
                "only failed or cancelled jobs can be retried",
            ));
        }
        let now = db::now();
        sqlx::query(
            "UPDATE jobs SET state = 'queued', attempts = 0, next_run_at = $1, progress = 0, \
             last_error = NULL, cancel_requested = FALSE, updated_at = $1 \
             WHERE id = $2 AND state IN ('failed', 'cancelled')",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.fetch(id).await
    }

    async fn recover(&self) -> Result<u64, JobStoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'queued', progress = 0, updated_at = $1 WHERE state = 'running'",
        )
        .bind(db::now())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn delete_subject(&self, subject: &str) -> Result<(), JobStoreError> {
        sqlx::query("DELETE FROM jobs WHERE subject = $1")
            .bind(subject)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (SqliteJobStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let pool = db::open(dir.path()).await.expect("db");
        (SqliteJobStore::new(pool), dir)
    }

    #[tokio::test]
    async fn claim_retry_backoff_and_recovery() {
        let (s, _dir) = store().await;
        let job = s
            .enqueue("extract_audio", "as_1", 2)
            .await
            .expect("enqueue");
        assert_eq!(job.state, JobState::Queued);
        let now = db::now();
        let claimed = s.claim(now).await.expect("claim").expect("a job");
        assert_eq!(
            (claimed.id.as_str(), claimed.attempts),
            (job.id.as_str(), 1)
        );
        assert!(
            s.claim(now).await.expect("claim").is_none(),
            "claimed twice"
        );

        // A retryable failure waits out its backoff.
        let j = s
            .finish(&job.id, Err(JobError::Retryable("disk".into())), now)
            .await
            .expect("finish");
        assert_eq!(j.state, JobState::Queued);
        assert_eq!(j.next_run_at, now + backoff(1));
        assert!(s.claim(now).await.expect("claim").is_none());
        let again = s
            .claim(now + backoff(1))
            .await
            .expect("claim")
            .expect("job");
        assert_eq!(again.attempts, 2);

        // A crash leaves it running; recovery queues it again.
        assert_eq!(s.recover().await.expect("recover"), 1);
        let j = s.get(&job.id).await.expect("get").expect("job");
        assert_eq!(j.state, JobState::Queued);
        s.claim(now + 10).await.expect("claim").expect("job");
        // Out of attempts: failed, then a retry starts afresh.
        let j = s
            .finish(&job.id, Err(JobError::Retryable("disk".into())), now)
            .await
            .expect("finish");
        assert_eq!(
            (j.state, j.last_error.as_deref()),
            (JobState::Failed, Some("disk"))
        );
        let j = s.retry(&job.id).await.expect("retry");
        assert_eq!((j.state, j.attempts), (JobState::Queued, 0));
        assert!(matches!(
            s.retry(&job.id).await,
            Err(JobStoreError::WrongState(..))
        ));
    }

    #[tokio::test]
    async fn cancel_queued_and_running() {
        let (s, _dir) = store().await;
        let a = s.enqueue("k", "a", 3).await.expect("enqueue");
        assert_eq!(
            s.cancel(&a.id).await.expect("cancel").state,
            JobState::Cancelled
        );
        let b = s.enqueue("k", "b", 3).await.expect("enqueue");
        s.claim(db::now()).await.expect("claim").expect("job");
        let j = s.cancel(&b.id).await.expect("cancel");
        assert!(j.cancel_requested && j.state == JobState::Running);
        let j = s
            .finish(&b.id, Err(JobError::Cancelled), db::now())
            .await
            .expect("finish");
        assert_eq!(j.state, JobState::Cancelled);
        assert!(matches!(
            s.cancel(&b.id).await,
            Err(JobStoreError::WrongState(..))
        ));
        assert_eq!(s.list(Some("b"), 10).await.expect("list").len(), 1);
        assert!(matches!(
            s.cancel("job_x").await,
            Err(JobStoreError::NotFound)
        ));
    }
}
