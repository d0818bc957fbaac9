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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_free_permit_is_taken_and_a_full_house_counts_a_waiter() {
        let permits = Permits::new(2);
        assert!(permits.try_acquire());
        // The permit a caller finds free after all is taken, not waited for.
        assert!(permits.acquire_or_wait());
        assert_eq!((permits.in_flight(), permits.waiting()), (2, 0));
        assert!(!permits.try_acquire());
        assert!(!permits.acquire_or_wait());
        assert!(!permits.acquire_or_wait());
        assert_eq!((permits.in_flight(), permits.waiting()), (2, 2));
    }

    #[test]
    fn a_permit_given_back_goes_to_a_waiter_only_while_one_waits() {
        let permits = Permits::new(1);
        assert!(permits.try_acquire());
        assert!(matches!(permits.release(), Released::Freed));
        assert!(!permits.grant_one(), "nobody waits");
        assert!(permits.try_acquire());
        assert!(!permits.acquire_or_wait());
        assert!(!permits.grant_one(), "no permit is free");
        assert!(matches!(permits.release(), Released::Waiters));
        assert!(permits.grant_one());
        assert_eq!((permits.in_flight(), permits.waiting()), (1, 0));
        assert!(!permits.acquire_or_wait());
        permits.stop_waiting();
        assert_eq!((permits.in_flight(), permits.waiting()), (1, 0));
    }

    #[test]
    fn a_changed_bound_is_read_by_the_next_call() {
        let permits = Permits::new(1);
        assert!(permits.try_acquire());
        assert_eq!(permits.set_max(2), 1);
        assert_eq!(permits.max(), 2);
        assert!(permits.acquire_or_wait());
        assert_eq!(permits.set_max(1), 2);
        assert!(!permits.try_acquire());
        assert_eq!(permits.in_flight(), 2, "calls above a lowered bound finish");
    }
}
