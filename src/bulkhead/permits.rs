//! The lock-free count of the bulkhead: calls in flight and calls waiting,
//! in one atomic word, so that every decision that involves both is one
//! compare-and-swap.

use crate::sync::{AtomicU64, Ordering};

/// The low half of the word counts calls in flight, the high half calls
/// waiting in the queue.
const WAITER: u64 = 1 << 32;
const IN_FLIGHT: u64 = WAITER - 1;

/// How many calls are in flight, out of at most `max`, and how many wait.
#[derive(Debug)]
pub(crate) struct Permits {
    state: AtomicU64,
    /// The bound, changed live by [`set_max`](Permits::set_max): a call
    /// decides by the bound it reads.
    max: AtomicU64,
}

/// Who may want a permit just given back.
pub(crate) enum Released {
    /// Nobody waits.
    Freed,
    /// Someone waits: the caller hands a free permit over under the queue's
    /// lock.
    Waiters,
}

impl Permits {
    pub(crate) fn new(max: u64) -> Permits {
        Permits {
            state: AtomicU64::new(0),
            max: AtomicU64::new(max),
        }
    }

    /// Applies `change` to the word until it sticks; `None` leaves it as is.
    #[inline]
    fn update<T>(&self, mut change: impl FnMut(u64) -> (Option<u64>, T)) -> T {
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            let (next, result) = change(current);
            let Some(next) = next else { return result };
            match self.state.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return result,
                Err(actual) => current = actual,
            }
        }
    }

    /// Takes a permit if one is free.
    #[inline]
    pub(crate) fn try_acquire(&self) -> bool {
        let max = self.max();
        self.update(|state| {
            if state & IN_FLIGHT < max {
                (Some(state + 1), true)
            } else {
                (None, false)
            }
        })
    }

    /// Takes a permit if one is free, else counts the caller as waiting.
    pub(crate) fn acquire_or_wait(&self) -> bool {
        let max = self.max();
        self.update(|state| {
            if state & IN_FLIGHT < max {
                (Some(state + 1), true)
            } else {
                (Some(state + WAITER), false)
            }
        })
    }

    /// Gives a permit back (one atomic subtraction), saying whether anyone
    /// waited at that moment.
    #[inline]
    pub(crate) fn release(&self) -> Released {
        if self.state.fetch_sub(1, Ordering::AcqRel) >= WAITER {
            Released::Waiters
        } else {
            Released::Freed
        }
    }

    /// Under the queue's lock: takes a free permit for one waiter (`true`),
    /// if anyone still waits and a permit is still free.
    pub(crate) fn grant_one(&self) -> bool {
        let max = self.max();
        self.update(|state| {
            if state >= WAITER && state & IN_FLIGHT < max {
                (Some(state - WAITER + 1), true)
            } else {
                (None, false)
            }
        })
    }

    /// Under the queue's lock: a waiter leaves without a permit.
    pub(crate) fn stop_waiting(&self) {
        self.state.fetch_sub(WAITER, Ordering::AcqRel);
    }

    /// Calls in flight now.
    pub(crate) fn in_flight(&self) -> u64 {
        self.state.load(Ordering::Acquire) & IN_FLIGHT
    }

    /// Calls waiting now.
    pub(crate) fn waiting(&self) -> u64 {
        self.state.load(Ordering::Acquire) >> 32
    }

    /// The bound now.
    #[inline]
    pub(crate) fn max(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }

    /// Changes the bound; returns the one before. Calls in flight above a
    /// lowered bound finish; none is admitted until below it. Called under
    /// the queue's lock, so that a raised bound's permits go to the waiters
    /// first ([`Queue::set_max`](super::queue::Queue::set_max)).
    pub(crate) fn set_max(&self, max: u64) -> u64 {
        self.max.swap(max, Ordering::AcqRel)
    }
}
