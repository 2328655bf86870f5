//! The worker pool: `concurrency` claim loops on the async runtime, each running one
//! job body at a time on a blocking thread (`spawn_blocking`), so job bodies never
//! occupy the runtime's workers that serve the live path.
//!
//! While a body runs, its loop writes the body's progress to the store and passes a
//! cancel request on to it (both every [`WATCH_EVERY`]); bodies check
//! [`JobContext::cancelled`] between steps. A body cut off by a crash is taken up again
//! after restart ([`super::JobStore::recover`], called by [`JobQueue::start`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Job, JobError, JobStore, JobStoreError};
use crate::db;

/// How often a running job's progress is stored and its cancel flag read.
pub const WATCH_EVERY: Duration = Duration::from_millis(250);
/// How often an idle loop looks for due jobs (backoff expiry) without being woken.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// What a running body sees: its cancel flag and where to put its progress.
pub struct JobContext {
    cancel: Arc<AtomicBool>,
    progress: Arc<AtomicU8>,
    /// The runtime, for the few async calls a body makes (`rt.block_on`).
    pub rt: tokio::runtime::Handle,
}

impl JobContext {
    /// Whether a cancel was asked; the body should stop and return
    /// [`JobError::Cancelled`].
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// 0–100; values above 100 are stored as 100.
    pub fn set_progress(&self, percent: u8) {
        self.progress.store(percent.min(100), Ordering::Relaxed);
    }
}

/// The body of one kind of job.
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    /// One attempt, on a blocking thread. Must be safe to repeat from the start.
    fn run(&self, job: &Job, ctx: &JobContext) -> Result<(), JobError>;
    /// After the attempt's outcome is stored (`job` as stored): final states let the
    /// subject know (an asset becomes errored, …). Runs on the async runtime.
    async fn settled(&self, job: &Job);
}

/// The queue as the rest of the server uses it: the store, and a way to wake the
/// workers when a job is added.
#[derive(Clone)]
pub struct JobQueue {
    pub store: Arc<dyn JobStore>,
    wake: Arc<Notify>,
}

impl JobQueue {
    /// Recovers jobs left running, then starts `concurrency` worker loops that run
    /// `handlers` (by job kind) until `shutdown`.
    pub async fn start(
        store: Arc<dyn JobStore>,
        handlers: HashMap<String, Arc<dyn JobHandler>>,
        concurrency: usize,
        shutdown: CancellationToken,
    ) -> Result<JobQueue, JobStoreError> {
        let recovered = store.recover().await?;
        if recovered > 0 {
            tracing::info!(
                jobs = recovered,
                "jobs cut off by a restart are queued again"
            );
        }
        let queue = JobQueue {
            store,
            wake: Arc::new(Notify::new()),
        };
        let handlers = Arc::new(handlers);
        for worker in 0..concurrency.max(1) {
            tokio::spawn(worker_loop(
                worker,
                queue.clone(),
                Arc::clone(&handlers),
                shutdown.clone(),
            ));
        }
        Ok(queue)
    }

    /// Adds a job and wakes a worker.
    pub async fn enqueue(
        &self,
        kind: &str,
        subject: &str,
        max_attempts: u32,
    ) -> Result<Job, JobStoreError> {
        let job = self.store.enqueue(kind, subject, max_attempts).await?;
        self.wake.notify_one();
        Ok(job)
    }

    /// Adds jobs of one subject together (see [`JobStore::enqueue_all`]) and wakes a
    /// worker.
    pub async fn enqueue_all(
        &self,
        subject: &str,
        jobs: &[(&str, u32)],
    ) -> Result<Vec<Job>, JobStoreError> {
        let added = self.store.enqueue_all(subject, jobs).await?;
        for _ in &added {
            self.wake.notify_one();
        }
        Ok(added)
    }

    /// Wakes a worker (after a retry).
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

async fn worker_loop(
    worker: usize,
    queue: JobQueue,
    handlers: Arc<HashMap<String, Arc<dyn JobHandler>>>,
    shutdown: CancellationToken,
) {
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let job = match queue.store.claim(db::now()).await {
            Ok(job) => job,
            Err(e) => {
                tracing::warn!(worker, error = %e, "cannot claim a job");
                None
            }
        };
        let Some(job) = job else {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = queue.wake.notified() => {}
                _ = tokio::time::sleep(POLL_EVERY) => {}
            }
            continue;
        };
        let Some(handler) = handlers.get(&job.kind).cloned() else {
            let outcome = Err(JobError::Permanent(format!(
                "no handler for jobs of kind {}",
                job.kind
            )));
            let _ = queue.store.finish(&job.id, outcome, db::now()).await;
            continue;
        };
        run_one(worker, &queue, handler, job, &shutdown).await;
    }
}

async fn run_one(
    worker: usize,
    queue: &JobQueue,
    handler: Arc<dyn JobHandler>,
    job: Job,
    shutdown: &CancellationToken,
) {
    tracing::info!(worker, job = %job.id, kind = %job.kind, subject = %job.subject,
        attempt = job.attempts, "job started");
    let cancel = Arc::new(AtomicBool::new(job.cancel_requested));
    let progress = Arc::new(AtomicU8::new(0));
    let ctx = JobContext {
        cancel: Arc::clone(&cancel),
        progress: Arc::clone(&progress),
        rt: tokio::runtime::Handle::current(),
    };
    let body = {
        let handler = Arc::clone(&handler);
        let job = job.clone();
        tokio::task::spawn_blocking(move || handler.run(&job, &ctx))
    };
    tokio::pin!(body);
    let mut stored_progress = 0u8;
    let mut tick = tokio::time::interval(WATCH_EVERY);
    let outcome = loop {
        tokio::select! {
            done = &mut body => {
                break done.unwrap_or_else(|e| Err(JobError::Retryable(format!("the job body panicked: {e}"))));
            }
            _ = shutdown.cancelled() => {
                // Left `running`: the next start queues it again.
                cancel.store(true, Ordering::Relaxed);
                return;
            }
            _ = tick.tick() => {
                let now = progress.load(Ordering::Relaxed);
                if now != stored_progress {
                    stored_progress = now;
                    let _ = queue.store.set_progress(&job.id, now).await;
                }
                if let Ok(Some(current)) = queue.store.get(&job.id).await {
                    if current.cancel_requested {
                        cancel.store(true, Ordering::Relaxed);
                    }
                }
            }
        }
    };
    match queue.store.finish(&job.id, outcome, db::now()).await {
        Ok(stored) => {
            tracing::info!(worker, job = %stored.id, state = stored.state.as_str(),
                error = stored.last_error.as_deref().unwrap_or(""), "job attempt ended");
            handler.settled(&stored).await;
            if !stored.state.is_final() {
                queue.wake.notify_one();
            }
        }
        Err(e) => {
            tracing::error!(worker, job = %job.id, error = %e, "cannot store a job's outcome")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::sqlite::SqliteJobStore;
    use crate::jobs::JobState;
    use std::sync::Mutex;

    /// Records the thread each body ran on; fails its first attempt when asked; loops
    /// until cancelled when asked.
    struct Probe {
        runtime_thread: Mutex<Vec<bool>>,
        fail_first: bool,
        wait_for_cancel: bool,
        settled: Notify,
    }

    #[async_trait]
    impl JobHandler for Probe {
        fn run(&self, job: &Job, ctx: &JobContext) -> Result<(), JobError> {
            // `Handle::block_on` panics on a runtime worker thread and works on a
            // blocking one.
            let on_runtime = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                ctx.rt.block_on(async {});
            }))
            .is_err();
            self.runtime_thread
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(on_runtime);
            ctx.set_progress(42);
            if self.wait_for_cancel {
                while !ctx.cancelled() {
                    std::thread::sleep(Duration::from_millis(20));
                }
                return Err(JobError::Cancelled);
            }
            if self.fail_first && job.attempts == 1 {
                return Err(JobError::Retryable("first attempt fails".into()));
            }
            Ok(())
        }

        async fn settled(&self, job: &Job) {
            if job.state.is_final() {
                self.settled.notify_one();
            }
        }
    }

    async fn setup(probe: Arc<Probe>) -> (JobQueue, tempfile::TempDir, CancellationToken) {
        let dir = tempfile::tempdir().expect("temp dir");
        let pool = db::open(dir.path()).await.expect("db");
        let store: Arc<dyn JobStore> = Arc::new(SqliteJobStore::new(pool));
        let mut handlers: HashMap<String, Arc<dyn JobHandler>> = HashMap::new();
        handlers.insert("probe".into(), probe);
        let shutdown = CancellationToken::new();
        let q = JobQueue::start(store, handlers, 1, shutdown.clone())
            .await
            .expect("start");
        (q, dir, shutdown)
    }

    fn probe(fail_first: bool, wait_for_cancel: bool) -> Arc<Probe> {
        Arc::new(Probe {
            runtime_thread: Mutex::new(Vec::new()),
            fail_first,
            wait_for_cancel,
            settled: Notify::new(),
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bodies_run_off_the_runtime_and_retry_with_backoff() {
        let p = probe(true, false);
        let (q, _dir, shutdown) = setup(Arc::clone(&p)).await;
        let job = q.enqueue("probe", "s", 3).await.expect("enqueue");
        // The first attempt fails; the second waits out a 2 s backoff.
        tokio::time::timeout(Duration::from_secs(10), p.settled.notified())
            .await
            .expect("job settles");
        let j = q.store.get(&job.id).await.expect("get").expect("job");
        assert_eq!(
            (j.state, j.attempts, j.progress),
            (JobState::Succeeded, 2, 100)
        );
        let threads = p.runtime_thread.lock().expect("lock").clone();
        assert_eq!(threads, [false, false]);
        shutdown.cancel();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_running_body_sees_its_cancel() {
        let p = probe(false, true);
        let (q, _dir, shutdown) = setup(Arc::clone(&p)).await;
        let job = q.enqueue("probe", "s", 3).await.expect("enqueue");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let j = q.store.get(&job.id).await.expect("get").expect("job");
            if j.state == JobState::Running && j.progress == 42 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "never running: {j:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        q.store.cancel(&job.id).await.expect("cancel");
        tokio::time::timeout(Duration::from_secs(10), p.settled.notified())
            .await
            .expect("job settles");
        let j = q.store.get(&job.id).await.expect("get").expect("job");
        assert_eq!(j.state, JobState::Cancelled);
        shutdown.cancel();
    }
}
