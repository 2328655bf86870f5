//! Audience analytics from the server's own HLS traffic (issue 13 items 1-4): viewer
//! sessions counted on the request path, concurrent viewers sampled every 5 s, watch
//! time, views, unique viewers, and the 360 viewing heatmap.
//!
//! The figures and their definitions: [`figures`]. Data path: the HLS handlers put a
//! [`tracker::Delivered`] in each response; the tracking layer
//! (`crate::api::analytics::track`) hands it to the [`tracker::Tracker`] (a sharded map
//! update, no I/O); the [`task`] sweeps it every 5 s and writes ended sessions and
//! points to SQLite in one batch per tick.

pub mod figures;
pub mod heatmap;
pub mod session_id;
pub mod store;
pub mod task;
pub mod tracker;
pub mod user_agent;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::config::AnalyticsConfig;
use crate::db::Pool;
use figures::Peak;
use heatmap::Histogram;
use tracker::{Audience, Tracker};

/// The least time between two heatmap beacons of one session.
pub const BEACON_GAP: Duration = Duration::from_secs(5);

/// What the last sample found for one stream.
#[derive(Clone, Debug, Default)]
pub struct LiveFigures {
    /// The stream's slug (the asset id for assets).
    pub label: String,
    /// Whether this is a stream (only streams are in `/metrics`).
    pub is_stream: bool,
    pub concurrent: u64,
    /// Unix milliseconds of the sample.
    pub sampled_ms: i64,
}

/// Figures kept in memory between samples.
#[derive(Default)]
struct Live {
    /// Per stream (or asset) id.
    now: HashMap<String, LiveFigures>,
    /// Per live session id (or content id for sessions outside one).
    peaks: HashMap<String, Peak>,
    /// Watch seconds of streams since start, per `/metrics` label (the stream slug).
    watch_totals: HashMap<String, f64>,
}

/// The analytics of one server.
pub struct Analytics {
    pub config: AnalyticsConfig,
    pub ids: session_id::SessionIds,
    pub tracker: Tracker,
    pub pool: Pool,
    live: Mutex<Live>,
    /// Beacons not yet written, per audience and minute.
    heat: Mutex<HashMap<(Audience, i64), Histogram>>,
    /// Start of the first hour not rolled up yet (Unix ms).
    rolled_up_to_ms: std::sync::atomic::AtomicI64,
}

impl Analytics {
    pub fn new(config: AnalyticsConfig, pool: Pool) -> Self {
        Self {
            tracker: Tracker::new(config.session_timeout_floor_s),
            ids: session_id::SessionIds::new(),
            config,
            pool,
            live: Mutex::default(),
            heat: Mutex::default(),
            rolled_up_to_ms: std::sync::atomic::AtomicI64::new(0),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Concurrent viewers of content `id` at the last sample.
    pub fn concurrent(&self, id: &str) -> LiveFigures {
        self.live().now.get(id).cloned().unwrap_or_default()
    }

    /// The peak of live session (or content) `key` since this server started.
    pub fn peak(&self, key: &str) -> Peak {
        self.live().peaks.get(key).copied().unwrap_or_default()
    }

    /// `(label, concurrent, watch seconds total)` per stream for `/metrics`, by label.
    pub fn metrics(&self) -> Vec<(String, u64, f64)> {
        let live = self.live();
        let mut rows: std::collections::BTreeMap<String, (u64, f64)> = live
            .watch_totals
            .iter()
            .map(|(label, w)| (label.clone(), (0, *w)))
            .collect();
        for f in live.now.values().filter(|f| f.is_stream) {
            rows.entry(f.label.clone()).or_default().0 += f.concurrent;
        }
        rows.into_iter().map(|(l, (c, w))| (l, c, w)).collect()
    }

    /// Adds a beacon's histogram to its audience's current minute.
    pub fn add_heat(&self, audience: Audience, now_ms: i64, h: &Histogram) {
        let minute = figures::Interval::Minute.bucket(now_ms);
        let mut heat = self.heat.lock().unwrap_or_else(|p| p.into_inner());
        heat.entry((audience, minute)).or_default().add(h);
    }

    fn take_heat(&self) -> HashMap<(Audience, i64), Histogram> {
        std::mem::take(&mut *self.heat.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn rolled_up_to_ms(&self) -> i64 {
        self.rolled_up_to_ms
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}
