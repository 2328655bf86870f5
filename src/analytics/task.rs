//! The analytics task: every [`SAMPLE_INTERVAL`] it sweeps the tracker (ends idle
//! sessions, samples concurrent viewers), then writes what the tick produced in one
//! transaction; every hour it rolls minutes up into hours and prunes by retention.
//! It is the only writer of the analytics tables and never runs on the request path.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::figures::{Interval, SAMPLE_INTERVAL};
use super::store::{self, Batch, PointAcc};
use super::tracker::Sweep;
use super::{Analytics, LiveFigures};

const DAY_MS: i64 = 86_400_000;

/// Runs until `shutdown`, then ends every session and writes them.
pub async fn run(analytics: Arc<Analytics>, shutdown: CancellationToken) {
    {
        let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // The hours before this start may not have been rolled up (a crash, a restart):
        // redo the last day's.
        let started_ms = now_ms();
        analytics
            .maintain(Interval::Hour.bucket(started_ms) - DAY_MS, started_ms)
            .await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.cancelled() => break,
            }
            let tick_ms = now_ms();
            let sweep = analytics.tracker.sweep(std::time::Instant::now());
            let batch = analytics.sample(sweep, tick_ms);
            analytics.flush(batch).await;
            let hour = Interval::Hour.bucket(tick_ms);
            if hour > analytics.rolled_up_to_ms() {
                analytics
                    .maintain(analytics.rolled_up_to_ms().max(hour - DAY_MS), tick_ms)
                    .await;
            }
        }
        let batch = Batch {
            ended: analytics.tracker.drain(),
            heatmaps: analytics.take_heat(),
            ..Batch::default()
        };
        analytics.flush(batch).await;
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Analytics {
    /// Updates the live figures from a sweep and returns what it adds to the tables.
    fn sample(&self, sweep: Sweep, now_ms: i64) -> Batch {
        let minute = Interval::Minute.bucket(now_ms);
        let mut points: HashMap<_, PointAcc> = HashMap::new();
        let mut now: HashMap<String, LiveFigures> = HashMap::new();
        {
            let mut live = self.live();
            for (audience, count) in &sweep.active {
                points
                    .entry((audience.clone(), minute))
                    .or_default()
                    .sample(*count);
                let f = now.entry(audience.content_id.clone()).or_default();
                f.label.clone_from(&audience.label);
                f.is_stream = audience.content_kind == "stream";
                f.concurrent += count;
                f.sampled_ms = now_ms;
                let key = if audience.live_session.is_empty() {
                    &audience.content_id
                } else {
                    &audience.live_session
                };
                live.peaks
                    .entry(key.clone())
                    .or_default()
                    .observe(*count, now_ms);
            }
            for (audience, seconds) in &sweep.watched {
                points
                    .entry((audience.clone(), minute))
                    .or_default()
                    .watch_seconds += seconds;
                if audience.content_kind == "stream" {
                    *live.watch_totals.entry(audience.label.clone()).or_default() += seconds;
                }
            }
            live.now = now;
        }
        Batch {
            ended: sweep.ended,
            points,
            heatmaps: self.take_heat(),
        }
    }

    async fn flush(&self, batch: Batch) {
        if batch.is_empty() {
            return;
        }
        if let Err(e) = store::write(&self.pool, &batch).await {
            // Bounded by design: a failed tick's figures are dropped, not queued.
            tracing::error!(error = %e, sessions = batch.ended.len(), "analytics batch not written; its figures are lost");
        }
    }

    /// Rolls up the complete hours from `from_ms` and prunes by retention.
    async fn maintain(&self, from_ms: i64, now_ms: i64) {
        let hour = Interval::Hour.bucket(now_ms);
        if let Err(e) = store::rollup(&self.pool, from_ms, hour).await {
            tracing::error!(error = %e, "analytics hourly rollup failed");
            return;
        }
        self.rolled_up_to_ms
            .store(hour, std::sync::atomic::Ordering::Relaxed);
        let c = &self.config;
        let minute_before = now_ms - c.minute_retention_days as i64 * DAY_MS;
        let hourly_before = now_ms - c.hourly_retention_days as i64 * DAY_MS;
        if let Err(e) = store::prune(&self.pool, minute_before, hourly_before).await {
            tracing::error!(error = %e, "analytics retention pruning failed");
        }
    }
}
