//! Capped exponential backoff between attempts to pull a camera.
//!
//! Pure: the caller says how long the failed session was live, and gets the delay
//! before the next attempt. Delays double from `min` up to `max`; a session that stayed
//! live for at least `healthy_after` proves the camera works again, so the next
//! failure starts from `min` once more.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    healthy_after: Duration,
    /// Failures since the last healthy session.
    failures: u32,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration, healthy_after: Duration) -> Self {
        Self {
            min,
            max: max.max(min),
            healthy_after,
            failures: 0,
        }
    }

    /// The delay after an attempt that failed; `live_for` is how long it delivered
    /// media (`None`: it never did).
    pub fn after_failure(&mut self, live_for: Option<Duration>) -> Duration {
        if live_for.is_some_and(|d| d >= self.healthy_after) {
            self.failures = 0;
        }
        // 2^20 × any sane minimum is far past any maximum; stop counting there.
        let exponent = self.failures.min(20);
        self.failures = self.failures.saturating_add(1);
        self.min
            .checked_mul(1u32 << exponent)
            .map_or(self.max, |d| d.min(self.max))
    }

    /// Consecutive failures since the last healthy session.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn doubles_up_to_the_cap() {
        let mut b = Backoff::new(S, 30 * S, 30 * S);
        let delays: Vec<u64> = (0..8).map(|_| b.after_failure(None).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
        for _ in 0..100 {
            assert_eq!(b.after_failure(None), 30 * S);
        }
    }

    #[test]
    fn a_healthy_session_resets_a_short_one_does_not() {
        let mut b = Backoff::new(S, 30 * S, 30 * S);
        b.after_failure(None);
        b.after_failure(None);
        assert_eq!(b.after_failure(Some(5 * S)), 4 * S);
        assert_eq!(b.after_failure(Some(31 * S)), S);
        assert_eq!(b.after_failure(None), 2 * S);
        assert_eq!(b.failures(), 2);
    }

    #[test]
    fn max_below_min_is_min() {
        let mut b = Backoff::new(2 * S, S, S);
        assert_eq!(b.after_failure(None), 2 * S);
        assert_eq!(b.after_failure(None), 2 * S);
    }
}
