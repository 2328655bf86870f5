//! A cap on the connections one port holds, per address and in total. Admission is
//! decided right after `accept`, before a byte is read, and lasts as long as the
//! returned [`Admission`] lives.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::address::AddressKey;

/// Why a connection was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Its address already holds as many connections as one address may.
    PerAddress,
    /// The port holds as many connections as it may.
    Total,
}

impl Refusal {
    pub fn label(self) -> &'static str {
        match self {
            Refusal::PerAddress => "per_address",
            Refusal::Total => "total",
        }
    }
}

#[derive(Default)]
struct Held {
    total: usize,
    by_address: HashMap<AddressKey, usize>,
}

pub struct ConnectionGate {
    /// The port's name in logs and metrics (`http`, `rtmp`).
    pub name: &'static str,
    pub total_limit: usize,
    pub per_address_limit: usize,
    held: Mutex<Held>,
    refused_per_address: AtomicU64,
    refused_total: AtomicU64,
    /// When refusals were last logged: a flood gets a line per [`LOG_EVERY`], not one
    /// per connection.
    last_logged: Mutex<Option<Instant>>,
}

const LOG_EVERY: Duration = Duration::from_secs(10);

impl ConnectionGate {
    pub fn new(name: &'static str, total_limit: usize, per_address_limit: usize) -> Self {
        Self {
            name,
            total_limit,
            per_address_limit,
            held: Mutex::new(Held::default()),
            refused_per_address: AtomicU64::new(0),
            refused_total: AtomicU64::new(0),
            last_logged: Mutex::new(None),
        }
    }

    /// Admits a connection from `ip`, or says why not (and counts the refusal). The
    /// per-address cap is checked first: an address at its cap is refused as such even
    /// when the port is full too.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admission, Refusal> {
        let key = AddressKey::of(ip);
        let mut held = self.lock();
        let from_address = held.by_address.get(&key).copied().unwrap_or(0);
        let refusal = if from_address >= self.per_address_limit {
            Some(Refusal::PerAddress)
        } else if held.total >= self.total_limit {
            Some(Refusal::Total)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            drop(held);
            match refusal {
                Refusal::PerAddress => &self.refused_per_address,
                Refusal::Total => &self.refused_total,
            }
            .fetch_add(1, Ordering::Relaxed);
            self.log_refusals(key);
            return Err(refusal);
        }
        held.total += 1;
        *held.by_address.entry(key).or_insert(0) += 1;
        Ok(Admission {
            gate: Arc::clone(self),
            key,
        })
    }

    /// Connections held now.
    pub fn open(&self) -> usize {
        self.lock().total
    }

    /// Connections refused so far for `reason`.
    pub fn refused(&self, reason: Refusal) -> u64 {
        match reason {
            Refusal::PerAddress => &self.refused_per_address,
            Refusal::Total => &self.refused_total,
        }
        .load(Ordering::Relaxed)
    }

    fn log_refusals(&self, latest: AddressKey) {
        let now = Instant::now();
        let mut last = self
            .last_logged
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|at| now.duration_since(at) < LOG_EVERY) {
            return;
        }
        *last = Some(now);
        tracing::warn!(
            port = self.name,
            latest = %latest,
            refused_per_address = self.refused(Refusal::PerAddress),
            refused_total = self.refused(Refusal::Total),
            per_address_limit = self.per_address_limit,
            total_limit = self.total_limit,
            "connections refused (counts since start; logged at most every 10 s)"
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        // The counters stay consistent under every panic point (none between the two
        // updates), so a poisoned lock is still good to use.
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn release(&self, key: AddressKey) {
        let mut held = self.lock();
        held.total = held.total.saturating_sub(1);
        if let Some(n) = held.by_address.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                held.by_address.remove(&key);
            }
        }
    }
}

/// One admitted connection; dropping it frees its place.
pub struct Admission {
    gate: Arc<ConnectionGate>,
    key: AddressKey,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.gate.release(self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_address_at_its_cap_leaves_room_for_others_and_places_come_back() {
        let gate = Arc::new(ConnectionGate::new("rtmp", 4, 2));
        let a1 = gate.admit(ip("10.0.0.1")).unwrap();
        let _a2 = gate.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(gate.admit(ip("10.0.0.1")).err(), Some(Refusal::PerAddress));
        let _b1 = gate.admit(ip("10.0.0.2")).unwrap();
        let _c1 = gate.admit(ip("10.0.0.3")).unwrap();
        assert_eq!(gate.admit(ip("10.0.0.4")).err(), Some(Refusal::Total));
        assert_eq!(gate.open(), 4);
        drop(a1);
        assert_eq!(gate.open(), 3);
        let _a3 = gate.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(gate.refused(Refusal::PerAddress), 1);
        assert_eq!(gate.refused(Refusal::Total), 1);
    }

    #[test]
    fn an_address_whose_connections_all_closed_is_forgotten() {
        let gate = Arc::new(ConnectionGate::new("http", 10, 10));
        for i in 0..100 {
            drop(gate.admit(ip(&format!("10.0.1.{i}"))).unwrap());
        }
        assert_eq!(gate.open(), 0);
        assert!(gate.lock().by_address.is_empty());
    }
}
