//! Keyed token buckets with bounded memory, for login and refresh.
//!
//! Pure: the caller passes the clock. At most [`MAX_KEYS`] keys are tracked; when the
//! table is full, buckets that have refilled completely (they carry no information)
//! are dropped first, then the least recently used ones. An attacker spraying
//! addresses can thus evict old entries, but never grow memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys tracked per limiter.
pub const MAX_KEYS: usize = 10_000;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// A token bucket per key: `burst` requests at once, then `per_minute`.
pub struct KeyedLimiter {
    burst: f64,
    per_second: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl KeyedLimiter {
    pub fn new(burst: u32, per_minute: u32) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            per_second: f64::from(per_minute.max(1)) / 60.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key` at `now`; `Err(wait)` tells how long until one is
    /// available.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !buckets.contains_key(key) && buckets.len() >= MAX_KEYS {
            self.evict(&mut buckets, now);
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_second,
            ))
        }
    }

    fn evict(&self, buckets: &mut HashMap<String, Bucket>, now: Instant) {
        let full_after = Duration::from_secs_f64(self.burst / self.per_second);
        buckets.retain(|_, b| now.saturating_duration_since(b.updated) < full_after);
        while buckets.len() >= MAX_KEYS {
            let Some(oldest) = buckets
                .iter()
                .min_by_key(|(_, b)| b.updated)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            buckets.remove(&oldest);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.lock().map(|b| b.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let limiter = KeyedLimiter::new(3, 60);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check("a", t0).is_ok());
        }
        let wait = limiter.check("a", t0).expect_err("limited");
        assert!(wait <= Duration::from_secs(1));
        assert!(limiter.check("b", t0).is_ok(), "keys are independent");
        assert!(limiter.check("a", t0 + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn memory_is_bounded() {
        let limiter = KeyedLimiter::new(1, 1);
        let t0 = Instant::now();
        for i in 0..MAX_KEYS + 50 {
            let _ = limiter.check(&format!("k{i}"), t0 + Duration::from_millis(i as u64));
        }
        assert!(limiter.len() <= MAX_KEYS);
    }
}
