//! A cap on LL-HLS requests held open at once (blocking playlist reloads and
//! preload-hinted parts): each costs a task and a socket for up to three target
//! durations, so past the cap a request is answered 503 with `Retry-After` at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct HeldRequests {
    pub limit: usize,
    permits: Arc<Semaphore>,
    refused: AtomicU64,
}

/// One held request's place; dropping it frees the place.
pub struct Held(#[allow(dead_code)] OwnedSemaphorePermit);

impl HeldRequests {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            permits: Arc::new(Semaphore::new(limit)),
            refused: AtomicU64::new(0),
        }
    }

    /// A place to wait in, or `None` (counted) when all are taken.
    pub fn try_hold(&self) -> Option<Held> {
        match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => Some(Held(permit)),
            Err(_) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    pub fn held(&self) -> usize {
        self.limit - self.permits.available_permits()
    }

    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_limited_counted_and_come_back() {
        let held = HeldRequests::new(2);
        let a = held.try_hold().unwrap();
        let _b = held.try_hold().unwrap();
        assert!(held.try_hold().is_none());
        assert_eq!((held.held(), held.refused()), (2, 1));
        drop(a);
        assert!(held.try_hold().is_some());
    }
}
