//! Server-added latency: from a frame's last byte off the network to the publication
//! of the part that holds it. Fixed memory whatever the run length.

use std::sync::Mutex;
use std::time::Duration;

use crate::media::TrackKind;

/// Millisecond buckets up to this many; slower frames count in the last one.
const BUCKETS_MS: usize = 10_000;

/// A millisecond histogram.
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS_MS + 1],
            total: 0,
        }
    }
}

impl Histogram {
    pub fn record(&mut self, latency: Duration) {
        let ms = usize::try_from(latency.as_millis()).unwrap_or(BUCKETS_MS);
        self.counts[ms.min(BUCKETS_MS)] += 1;
        self.total += 1;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The smallest latency in whole milliseconds that `q` of the frames did not exceed.
    pub fn quantile_ms(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (ms, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(ms as u64);
            }
        }
        Some(BUCKETS_MS as u64)
    }
}

/// Latency histograms of one stream, per track kind; kept in the stream's output
/// state, under its lock.
#[derive(Default)]
pub struct StreamLatency {
    video: Histogram,
    audio: Histogram,
}

impl StreamLatency {
    fn of(&mut self, kind: TrackKind) -> &mut Histogram {
        match kind {
            TrackKind::Video => &mut self.video,
            TrackKind::Audio => &mut self.audio,
        }
    }

    pub fn record_all(&mut self, kind: TrackKind, latencies: impl Iterator<Item = Duration>) {
        let h = self.of(kind);
        for l in latencies {
            h.record(l);
        }
    }

    /// (p50 ms, p99 ms, count) of a track kind.
    pub fn summary(&mut self, kind: TrackKind) -> (Option<u64>, Option<u64>, u64) {
        let h = self.of(kind);
        (h.quantile_ms(0.5), h.quantile_ms(0.99), h.count())
    }
}

/// Latency histograms of every stream, per track kind.
#[derive(Default)]
pub struct LatencyStats {
    video: Mutex<Histogram>,
    audio: Mutex<Histogram>,
}

impl LatencyStats {
    fn of(&self, kind: TrackKind) -> &Mutex<Histogram> {
        match kind {
            TrackKind::Video => &self.video,
            TrackKind::Audio => &self.audio,
        }
    }

    pub fn record_all(&self, kind: TrackKind, latencies: impl Iterator<Item = Duration>) {
        let mut h = self.of(kind).lock().unwrap_or_else(|p| p.into_inner());
        for l in latencies {
            h.record(l);
        }
    }

    /// (p50 ms, p99 ms, count) of a track kind.
    pub fn summary(&self, kind: TrackKind) -> (Option<u64>, Option<u64>, u64) {
        let h = self.of(kind).lock().unwrap_or_else(|p| p.into_inner());
        (h.quantile_ms(0.5), h.quantile_ms(0.99), h.count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_recorded_values() {
        let mut h = Histogram::default();
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        assert_eq!(h.quantile_ms(0.5), Some(50));
        assert_eq!(h.quantile_ms(0.99), Some(99));
        assert_eq!(h.count(), 100);
    }
}
