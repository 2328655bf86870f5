//! The analytics tables (migration 0009): batched writes from the analytics task, and
//! the reads behind the API. Rows are merged additively, so a batch written twice
//! only happens after a crash between commit and clear, never in normal operation.

use std::collections::HashMap;

use sqlx::Row;

use super::figures::Interval;
use super::heatmap::Histogram;
use super::tracker::{Audience, Session};
use crate::db::Pool;

/// A 1-minute point being filled: samples of concurrent viewers and watch time.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PointAcc {
    pub concurrent_max: u64,
    pub concurrent_sum: u64,
    pub samples: u64,
    pub watch_seconds: f64,
}

impl PointAcc {
    pub fn sample(&mut self, concurrent: u64) {
        self.concurrent_max = self.concurrent_max.max(concurrent);
        self.concurrent_sum += concurrent;
        self.samples += 1;
    }

    pub fn merge(&mut self, o: &PointAcc) {
        self.concurrent_max = self.concurrent_max.max(o.concurrent_max);
        self.concurrent_sum += o.concurrent_sum;
        self.samples += o.samples;
        self.watch_seconds += o.watch_seconds;
    }
}

/// What one tick writes.
#[derive(Default)]
pub struct Batch {
    pub ended: Vec<Session>,
    pub points: HashMap<(Audience, i64), PointAcc>,
    pub heatmaps: HashMap<(Audience, i64), Histogram>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.ended.is_empty() && self.points.is_empty() && self.heatmaps.is_empty()
    }
}

/// Writes `batch` in one transaction.
pub async fn write(pool: &Pool, batch: &Batch) -> Result<(), sqlx::Error> {
    let mut tx = crate::db::write_tx(pool).await?;
    for s in &batch.ended {
        let renditions: serde_json::Map<String, serde_json::Value> = s
            .renditions
            .iter()
            .map(|r| (r.name.clone(), serde_json::Value::from(r.seconds)))
            .collect();
        let a = &s.viewer.audience;
        sqlx::query(
            "INSERT INTO viewer_sessions (sid, content_kind, content_id, live_session_id, subject, \
             started_ms, ended_ms, media_seconds, bytes, renditions, ua_class) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&s.sid)
        .bind(a.content_kind)
        .bind(&a.content_id)
        .bind(&a.live_session)
        .bind(&s.viewer.subject)
        .bind(s.started_ms)
        .bind(s.ended_ms())
        .bind(s.media_seconds())
        .bind(s.bytes() as i64)
        .bind(serde_json::Value::Object(renditions).to_string())
        .bind(s.viewer.ua.as_str())
        .execute(&mut *tx)
        .await?;
    }
    for ((a, minute), p) in &batch.points {
        sqlx::query(
            "INSERT INTO audience_points (interval, content_kind, content_id, live_session_id, \
             bucket_ms, concurrent_max, concurrent_sum, samples, watch_seconds) \
             VALUES ('1m', $1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (interval, content_kind, content_id, live_session_id, bucket_ms) DO UPDATE SET \
             concurrent_max = max(concurrent_max, excluded.concurrent_max), \
             concurrent_sum = concurrent_sum + excluded.concurrent_sum, \
             samples = samples + excluded.samples, \
             watch_seconds = watch_seconds + excluded.watch_seconds",
        )
        .bind(a.content_kind)
        .bind(&a.content_id)
        .bind(&a.live_session)
        .bind(minute)
        .bind(p.concurrent_max as i64)
        .bind(p.concurrent_sum as i64)
        .bind(p.samples as i64)
        .bind(p.watch_seconds)
        .execute(&mut *tx)
        .await?;
    }
    for ((a, minute), h) in &batch.heatmaps {
        let old: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT bins FROM heatmaps WHERE content_kind = $1 AND content_id = $2 \
             AND live_session_id = $3 AND minute_ms = $4",
        )
        .bind(a.content_kind)
        .bind(&a.content_id)
        .bind(&a.live_session)
        .bind(minute)
        .fetch_optional(&mut *tx)
        .await?;
        let mut sum = old
            .as_deref()
            .and_then(Histogram::from_blob)
            .unwrap_or_default();
        sum.add(h);
        sqlx::query(
            "INSERT INTO heatmaps (content_kind, content_id, live_session_id, minute_ms, bins) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (content_kind, content_id, live_session_id, minute_ms) DO UPDATE SET bins = excluded.bins",
        )
        .bind(a.content_kind)
        .bind(&a.content_id)
        .bind(&a.live_session)
        .bind(minute)
        .bind(sum.to_blob())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// Rolls the 1-minute points of `[from_ms, to_ms)` up into hourly points (replacing
/// what an earlier rollup of the same hours wrote).
pub async fn rollup(pool: &Pool, from_ms: i64, to_ms: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audience_points (interval, content_kind, content_id, live_session_id, \
         bucket_ms, concurrent_max, concurrent_sum, samples, watch_seconds) \
         SELECT '1h', content_kind, content_id, live_session_id, (bucket_ms / 3600000) * 3600000, \
         MAX(concurrent_max), SUM(concurrent_sum), SUM(samples), SUM(watch_seconds) \
         FROM audience_points WHERE interval = '1m' AND bucket_ms >= $1 AND bucket_ms < $2 \
         GROUP BY content_kind, content_id, live_session_id, (bucket_ms / 3600000) \
         ON CONFLICT (interval, content_kind, content_id, live_session_id, bucket_ms) DO UPDATE SET \
         concurrent_max = excluded.concurrent_max, concurrent_sum = excluded.concurrent_sum, \
         samples = excluded.samples, watch_seconds = excluded.watch_seconds",
    )
    .bind(from_ms)
    .bind(to_ms)
    .execute(pool)
    .await?;
    Ok(())
}

/// Deletes 1-minute points older than `minute_before_ms`, and hourly points, sessions
/// and heatmaps older than `hourly_before_ms`.
pub async fn prune(
    pool: &Pool,
    minute_before_ms: i64,
    hourly_before_ms: i64,
) -> Result<(), sqlx::Error> {
    let mut tx = crate::db::write_tx(pool).await?;
    sqlx::query("DELETE FROM audience_points WHERE interval = '1m' AND bucket_ms < $1")
        .bind(minute_before_ms)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM audience_points WHERE interval = '1h' AND bucket_ms < $1")
        .bind(hourly_before_ms)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM viewer_sessions WHERE started_ms < $1")
        .bind(hourly_before_ms)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM heatmaps WHERE minute_ms < $1")
        .bind(hourly_before_ms)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// Which rows a read covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    /// Everything of a stream or an asset.
    Content { kind: &'static str, id: String },
    /// Everything that started during one live session.
    LiveSession(String),
    /// No rows (an event that was never live).
    Nothing,
}

impl Filter {
    /// The WHERE condition on `$1` and `$2`, and the values to bind.
    fn clause(&self) -> (&'static str, &str, &str) {
        match self {
            Filter::Content { kind, id } => ("content_kind = $1 AND content_id = $2", kind, id),
            Filter::LiveSession(id) => ("live_session_id = $1 AND $2 = ''", id, ""),
            Filter::Nothing => ("$1 = 'x' AND $2 = 'y' AND 0", "", ""),
        }
    }

    /// Whether an active session belongs to it.
    pub fn covers(&self, a: &Audience) -> bool {
        match self {
            Filter::Content { kind, id } => a.content_kind == *kind && a.content_id == *id,
            Filter::LiveSession(id) => a.live_session == *id,
            Filter::Nothing => false,
        }
    }
}

/// One stored point (summed over live sessions sharing the bucket).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PointRow {
    pub bucket_ms: i64,
    pub acc: PointAcc,
}

/// The points of `filter` in `[from_ms, to_ms)`, bucketed by `interval`: hourly rows
/// for the hours already rolled up (before `rolled_up_to_ms`), minute rows after.
pub async fn points(
    pool: &Pool,
    filter: &Filter,
    from_ms: i64,
    to_ms: i64,
    interval: Interval,
    rolled_up_to_ms: i64,
) -> Result<Vec<PointRow>, sqlx::Error> {
    let (clause, a, b) = filter.clause();
    let sql = format!(
        "SELECT interval, bucket_ms, concurrent_max, concurrent_sum, samples, watch_seconds \
         FROM audience_points WHERE {clause} AND bucket_ms >= $3 AND bucket_ms < $4 \
         AND ((interval = '1m' AND ($5 OR bucket_ms >= $6)) OR (interval = '1h' AND NOT $5 AND bucket_ms < $6)) \
         ORDER BY bucket_ms"
    );
    let rows = sqlx::query(&sql)
        .bind(a)
        .bind(b)
        .bind(interval.bucket(from_ms))
        .bind(to_ms)
        .bind(interval == Interval::Minute)
        .bind(rolled_up_to_ms)
        .fetch_all(pool)
        .await?;
    // First sum what shares a stored bucket (several live sessions), then fold the
    // stored buckets into the asked interval: peaks by max, the rest by sum.
    let mut stored: std::collections::BTreeMap<i64, PointAcc> = Default::default();
    for row in rows {
        let bucket: i64 = row.try_get("bucket_ms")?;
        let p = PointAcc {
            concurrent_max: row.try_get::<i64, _>("concurrent_max")?.max(0) as u64,
            concurrent_sum: row.try_get::<i64, _>("concurrent_sum")?.max(0) as u64,
            samples: row.try_get::<i64, _>("samples")?.max(0) as u64,
            watch_seconds: row.try_get("watch_seconds")?,
        };
        let e = stored.entry(bucket).or_default();
        e.concurrent_max += p.concurrent_max;
        e.concurrent_sum += p.concurrent_sum;
        e.samples = e.samples.max(p.samples);
        e.watch_seconds += p.watch_seconds;
    }
    let mut out: Vec<PointRow> = Vec::new();
    for (bucket, p) in stored {
        let b = interval.bucket(bucket);
        match out.last_mut() {
            Some(last) if last.bucket_ms == b => last.acc.merge(&p),
            _ => out.push(PointRow {
                bucket_ms: b,
                acc: p,
            }),
        }
    }
    Ok(out)
}

/// An ended session as the figures need it.
#[derive(Clone, Debug)]
pub struct SessionRow {
    pub subject: String,
    pub started_ms: i64,
    pub ended_ms: i64,
    pub media_seconds: f64,
    pub bytes: u64,
    pub renditions: Vec<(String, f64)>,
    pub ua_class: String,
    pub content_id: String,
    pub live_session_id: String,
}

/// Ended sessions of `filter` started in `[from_ms, to_ms)`.
pub async fn sessions(
    pool: &Pool,
    filter: &Filter,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<SessionRow>, sqlx::Error> {
    let (clause, a, b) = filter.clause();
    let sql = format!(
        "SELECT subject, started_ms, ended_ms, media_seconds, bytes, renditions, ua_class, \
         content_id, live_session_id FROM viewer_sessions \
         WHERE {clause} AND started_ms >= $3 AND started_ms < $4 ORDER BY started_ms"
    );
    let rows = sqlx::query(&sql)
        .bind(a)
        .bind(b)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            let renditions: String = row.try_get("renditions")?;
            let map: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&renditions).unwrap_or_default();
            Ok(SessionRow {
                subject: row.try_get("subject")?,
                started_ms: row.try_get("started_ms")?,
                ended_ms: row.try_get("ended_ms")?,
                media_seconds: row.try_get("media_seconds")?,
                bytes: row.try_get::<i64, _>("bytes")?.max(0) as u64,
                renditions: map
                    .into_iter()
                    .map(|(k, v)| (k, v.as_f64().unwrap_or(0.0)))
                    .collect(),
                ua_class: row.try_get("ua_class")?,
                content_id: row.try_get("content_id")?,
                live_session_id: row.try_get("live_session_id")?,
            })
        })
        .collect()
}

/// Heatmaps of `filter` in `[from_ms, to_ms)`, per minute (minutes of several live
/// sessions summed).
pub async fn heatmaps(
    pool: &Pool,
    filter: &Filter,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<(i64, Histogram)>, sqlx::Error> {
    let (clause, a, b) = filter.clause();
    let sql = format!(
        "SELECT minute_ms, bins FROM heatmaps WHERE {clause} AND minute_ms >= $3 AND minute_ms < $4 \
         ORDER BY minute_ms"
    );
    let rows = sqlx::query(&sql)
        .bind(a)
        .bind(b)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(pool)
        .await?;
    let mut out: Vec<(i64, Histogram)> = Vec::new();
    for row in rows {
        let minute: i64 = row.try_get("minute_ms")?;
        let blob: Vec<u8> = row.try_get("bins")?;
        let Some(h) = Histogram::from_blob(&blob) else {
            tracing::warn!(minute, "a stored heatmap has the wrong size; skipped");
            continue;
        };
        match out.last_mut() {
            Some((m, sum)) if *m == minute => sum.add(&h),
            _ => out.push((minute, h)),
        }
    }
    Ok(out)
}

/// The stream of a live session, from what was recorded of it.
pub async fn stream_of_live_session(
    pool: &Pool,
    live_session: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT content_id FROM audience_points WHERE live_session_id = $1 AND content_kind = 'stream' \
         UNION SELECT content_id FROM viewer_sessions WHERE live_session_id = $1 AND content_kind = 'stream' \
         LIMIT 1",
    )
    .bind(live_session)
    .fetch_optional(pool)
    .await
}
