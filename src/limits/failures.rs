//! A budget of failed publish attempts per address: stream-key guessing from one
//! address gets that address refused for a while, with one log line when the block
//! starts and one when it ends (saying how many attempts it refused), instead of a line
//! per attempt.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::address::AddressKey;

/// Addresses tracked at most; past it, expired entries are swept, and if none expired
/// a new address goes untracked (the budget fails open rather than grow without end).
const MAX_TRACKED: usize = 65_536;

struct Entry {
    window_start: Instant,
    failures: u32,
    blocked_until: Option<Instant>,
    refused_while_blocked: u64,
}

pub struct FailureBudget {
    /// Failures an address may have within `window`; the next one blocks it.
    pub limit: u32,
    pub window: Duration,
    pub block: Duration,
    entries: Mutex<HashMap<AddressKey, Entry>>,
    refused: AtomicU64,
    blocks: AtomicU64,
}

impl FailureBudget {
    pub fn new(limit: u32, window: Duration, block: Duration) -> Self {
        Self {
            limit,
            window,
            block,
            entries: Mutex::new(HashMap::new()),
            refused: AtomicU64::new(0),
            blocks: AtomicU64::new(0),
        }
    }

    /// Whether `ip` may try now. A refusal is counted, not logged.
    pub fn allows(&self, ip: IpAddr, now: Instant) -> bool {
        let key = AddressKey::of(ip);
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(&key) else {
            return true;
        };
        match entry.blocked_until {
            Some(until) if now < until => {
                entry.refused_while_blocked += 1;
                self.refused.fetch_add(1, Ordering::Relaxed);
                false
            }
            Some(_) => {
                tracing::info!(
                    address = %key,
                    refused = entry.refused_while_blocked,
                    "publish block lifted"
                );
                entries.remove(&key);
                true
            }
            None => true,
        }
    }

    /// Records a failed attempt from `ip`; the one past the budget blocks the address.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let key = AddressKey::of(ip);
        let mut entries = self.lock();
        if !entries.contains_key(&key) && entries.len() >= MAX_TRACKED {
            let window = self.window;
            entries.retain(|_, e| match e.blocked_until {
                Some(until) => now < until,
                None => now.duration_since(e.window_start) < window,
            });
            if entries.len() >= MAX_TRACKED {
                return;
            }
        }
        let entry = entries.entry(key).or_insert(Entry {
            window_start: now,
            failures: 0,
            blocked_until: None,
            refused_while_blocked: 0,
        });
        if entry.blocked_until.is_some() {
            return;
        }
        if now.duration_since(entry.window_start) >= self.window {
            entry.window_start = now;
            entry.failures = 0;
        }
        entry.failures += 1;
        if entry.failures > self.limit {
            entry.blocked_until = Some(now + self.block);
            self.blocks.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                address = %key,
                failures = entry.failures,
                window_s = self.window.as_secs(),
                block_s = self.block.as_secs(),
                "publish attempts with unknown stream keys: refusing this address for a while"
            );
        }
    }

    /// Connections refused because their address was blocked.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Blocks started.
    pub fn blocks(&self) -> u64 {
        self.blocks.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AddressKey, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attempt_past_the_budget_blocks_only_that_address_until_the_block_ends() {
        let budget = FailureBudget::new(3, Duration::from_secs(60), Duration::from_secs(30));
        let guesser: IpAddr = "198.51.100.7".parse().unwrap();
        let other: IpAddr = "198.51.100.8".parse().unwrap();
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(budget.allows(guesser, t0));
            budget.failed(guesser, t0 + Duration::from_secs(i));
        }
        assert!(budget.allows(guesser, t0 + Duration::from_secs(3)));
        budget.failed(guesser, t0 + Duration::from_secs(3));
        assert!(!budget.allows(guesser, t0 + Duration::from_secs(4)));
        assert!(!budget.allows(guesser, t0 + Duration::from_secs(32)));
        assert!(budget.allows(other, t0 + Duration::from_secs(4)));
        assert_eq!((budget.refused(), budget.blocks()), (2, 1));
        assert!(budget.allows(guesser, t0 + Duration::from_secs(34)));
        // A fresh start after the block.
        budget.failed(guesser, t0 + Duration::from_secs(35));
        assert!(budget.allows(guesser, t0 + Duration::from_secs(36)));
    }

    #[test]
    fn failures_spread_wider_than_the_window_never_block() {
        let budget = FailureBudget::new(2, Duration::from_secs(10), Duration::from_secs(30));
        let ip: IpAddr = "203.0.113.1".parse().unwrap();
        let t0 = Instant::now();
        for i in 0..20 {
            budget.failed(ip, t0 + Duration::from_secs(6 * i));
            assert!(budget.allows(ip, t0 + Duration::from_secs(6 * i + 1)));
        }
        assert_eq!(budget.blocks(), 0);
    }
}
