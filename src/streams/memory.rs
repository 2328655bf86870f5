//! What one stream holds in memory, against its budget (`[limits] stream_memory_bytes`).
//!
//! Two parts are counted, each by whoever owns it, in atomics that `/metrics` and the
//! media thread read without a lock:
//! - `queued`: media handed to the stream's media queue and not yet taken by its
//!   media thread (the publisher adds, the media thread subtracts);
//! - `held`: what the sink keeps: every rendition's live window (init segments,
//!   complete segments, the segment in progress) and media a ladder holds back,
//!   reported by the media thread after each event.
//!
//! A publisher whose stream goes past the budget is dropped by the stream's owner
//! (see [`super::owner`]) and the live session ends, so the next publisher starts
//! with empty windows: one publisher sending far more than the stream is sized for
//! cannot take the server's memory, and the stream recovers on its own.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::media::MediaEvent;

/// The default budget: a 10-segment window of a 100 Mbit/s source with 2 s segments
/// is 250 MB; twice that leaves room for a ladder's renditions.
pub const DEFAULT_BUDGET: u64 = 512 << 20;

/// One stream's memory accounts.
#[derive(Debug)]
pub struct StreamMemory {
    budget: u64,
    queued: AtomicU64,
    held: AtomicU64,
    /// The most the stream held at once since the server started.
    peak: AtomicU64,
    /// Publishers dropped for going past the budget.
    drops: AtomicU64,
}

impl StreamMemory {
    pub fn new(budget: u64) -> Self {
        Self {
            budget,
            queued: AtomicU64::new(0),
            held: AtomicU64::new(0),
            peak: AtomicU64::new(0),
            drops: AtomicU64::new(0),
        }
    }

    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// `bytes` more wait in the media queue.
    pub fn queue(&self, bytes: u64) {
        self.queued.fetch_add(bytes, Ordering::Relaxed);
    }

    /// `bytes` left the media queue (taken by the media thread, or never sent).
    pub fn dequeue(&self, bytes: u64) {
        // Saturating: a lost race must not wrap the gauge around.
        let _ = self
            .queued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| {
                Some(q.saturating_sub(bytes))
            });
    }

    /// The sink holds `bytes` now.
    pub fn set_held(&self, bytes: u64) {
        self.held.store(bytes, Ordering::Relaxed);
        self.peak.fetch_max(self.total(), Ordering::Relaxed);
    }

    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }

    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    pub fn total(&self) -> u64 {
        self.queued().saturating_add(self.held())
    }

    pub fn over_budget(&self) -> bool {
        self.total() > self.budget
    }

    pub fn record_drop(&self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }

    pub fn drops(&self) -> u64 {
        self.drops.load(Ordering::Relaxed)
    }
}

/// The bytes an event keeps alive while it is queued: its payload (parameter sets
/// and audio configs are a few bytes and counted as such).
pub fn event_bytes(event: &MediaEvent) -> u64 {
    match event {
        MediaEvent::Unit(unit) => unit.data.len() as u64,
        MediaEvent::VideoConfig(_) | MediaEvent::AudioConfig(_) => 256,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_and_held_add_up_against_the_budget() {
        let m = StreamMemory::new(1000);
        m.queue(600);
        m.set_held(300);
        assert_eq!((m.total(), m.over_budget()), (900, false));
        m.queue(200);
        assert!(m.over_budget());
        m.dequeue(200);
        m.set_held(50);
        assert_eq!((m.total(), m.over_budget(), m.peak()), (650, false, 900));
        // A dequeue past what was counted stops at zero.
        m.dequeue(10_000);
        assert_eq!(m.queued(), 0);
    }
}
