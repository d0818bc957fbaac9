//! The lock-free count of calls in flight: one atomic word.

use crate::sync::{AtomicU64, Ordering};

/// How many calls are in flight, out of at most `max`.
#[derive(Debug)]
pub(crate) struct Permits {
    in_flight: AtomicU64,
    max: u64,
}

impl Permits {
    pub(crate) fn new(max: u64) -> Permits {
        Permits {
            in_flight: AtomicU64::new(0),
            max,
        }
    }

    /// Takes a permit if one is free: a compare-and-swap loop that never
    /// lets the count pass `max`.
    #[inline]
    pub(crate) fn try_acquire(&self) -> bool {
        let mut current = self.in_flight.load(Ordering::Relaxed);
        loop {
            if current >= self.max {
                return false;
            }
            match self.in_flight.compare_exchange_weak(
                current,
                current + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }

    /// Gives a permit back.
    #[inline]
    pub(crate) fn release(&self) {
        self.in_flight.fetch_sub(1, Ordering::Release);
    }

    /// Calls in flight now.
    pub(crate) fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub(crate) fn max(&self) -> u64 {
        self.max
    }
}
