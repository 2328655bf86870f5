//! One task per pulled stream: connect, pull, and on failure wait and try again.
//!
//! The stream's status shows what the task is doing: `connecting` during an attempt, `live` while
//! media flows (set by the publish session itself), `retrying` with the last error and
//! the delay between attempts. Each attempt that delivers media is a new publish
//! session, so the packager joins it to the previous one with EXT-X-DISCONTINUITY.
//!
//! Logging is per change, not per attempt: a failure is logged at `warn` when its
//! message differs from the previous failure's or the stream had been live in
//! between; a repeat (a wrong password, a camera that stays unplugged) is logged at
//! `debug` only, so a broken camera costs one log line, not one per retry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::puller::{pull, PullEnd, PullSettings};
use super::source::RtspSource;
use crate::streams::owner::StreamHandle;
use crate::streams::status::IngestState;
use crate::streams::StreamDef;

/// Timing of the RTSP ingest, from `[rtsp_ingest]` in the config.
#[derive(Clone, Copy, Debug)]
pub struct RtspIngestSettings {
    pub pull: PullSettings,
    /// First delay after a failure; doubles per consecutive failure.
    pub retry_min: Duration,
    /// Longest delay between attempts.
    pub retry_max: Duration,
    /// A session live this long resets the backoff to `retry_min`.
    pub healthy_after: Duration,
}

/// Pulls `source` into `stream` until `shutdown` is cancelled.
pub async fn supervise(
    stream: Arc<StreamDef>,
    source: RtspSource,
    hub: StreamHandle,
    settings: RtspIngestSettings,
    shutdown: CancellationToken,
) {
    let slug = stream.slug.clone();
    let mut backoff = Backoff::new(
        settings.retry_min,
        settings.retry_max,
        settings.healthy_after,
    );
    // The failure last logged at warn; a repeat of it is not logged again.
    let mut last_logged: Option<String> = None;
    tracing::info!(
        stream = %slug,
        url = %source.url(),
        transport = %source.transport(),
        "pulling RTSP source"
    );
    loop {
        hub.set_pull_state(IngestState::Connecting).await;
        let mut live_since: Option<Instant> = None;
        let mut on_live = || {
            live_since = Some(Instant::now());
        };
        let result = pull(
            &stream,
            &source,
            &hub,
            settings.pull,
            &shutdown,
            &mut on_live,
        )
        .await;
        let error = match result {
            Ok(PullEnd::Shutdown) => break,
            Err(e) => e,
        };
        let live_for = live_since.map(|t| t.elapsed());
        let delay = backoff.after_failure(live_for);
        let summary = error.summary();
        if live_for.is_some() {
            // A new incident: whatever fails next is news again.
            last_logged = None;
        }
        if last_logged.as_deref() != Some(summary.as_str()) {
            tracing::warn!(
                stream = %slug,
                error = %summary,
                retry_in_ms = delay.as_millis() as u64,
                "RTSP source failed; retrying with backoff (repeats of this error are logged at debug)"
            );
            last_logged = Some(summary.clone());
        } else {
            tracing::debug!(
                stream = %slug,
                error = %error,
                failures = backoff.failures(),
                retry_in_ms = delay.as_millis() as u64,
                "RTSP source failed again"
            );
        }
        // The publish session (if any) was dropped inside `pull`, which set the state
        // to idle; say why and when the next attempt comes.
        hub.set_pull_state(IngestState::Retrying {
            last_error: summary,
            retry_in_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        })
        .await;
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
        }
    }
    hub.set_pull_state(IngestState::Idle).await;
    tracing::debug!(stream = %slug, "RTSP puller stopped");
}
