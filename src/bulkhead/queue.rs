//! The bulkhead's optional waiting room: calls that find every permit taken
//! wait here in arrival order, up to `max_waiting` of them, each for at most
//! `max_wait`. A lock guards it; the happy path never takes that lock.
//!
//! The count of waiters lives in the same atomic word as the count of calls
//! in flight ([`Permits`]): a call that joins the queue and a call that gives
//! its permit back each change that word with one compare-and-swap, so one
//! of them always sees the other — a free permit and a waiter can never miss
//! each other. A permit given back while someone waits is taken again, under
//! the lock, for the first waiter that has none — unless a newcomer took it
//! first, in which case that newcomer's own release serves the waiter.

use std::{collections::VecDeque, task::Waker, time::Duration};

use super::permits::{Permits, Released};
use crate::sync::{AtomicU8, Mutex, Ordering, lock};

/// How long and how many may wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Waiting {
    pub(crate) max_waiting: usize,
    pub(crate) max_wait: Duration,
}

#[derive(Debug)]
pub(crate) struct Queue {
    entries: Mutex<Entries>,
    /// 1 while the queue has bounds (it may be given or taken away while
    /// the bulkhead runs): a call refused without a queue takes no lock.
    open: AtomicU8,
}

#[derive(Debug, Default)]
struct Entries {
    queue: VecDeque<Entry>,
    next_id: u64,
    /// How many may wait and for how long; `None`: nobody waits.
    bounds: Option<Waiting>,
}

#[derive(Debug)]
struct Entry {
    id: u64,
    waker: Waker,
    /// Handed a permit, not yet picked up.
    granted: bool,
}

impl Entries {
    /// Hands a permit (taken for it already) to the first waiter that has
    /// none, and wakes it.
    fn grant_first(&mut self) {
        let entry = self
            .queue
            .iter_mut()
            .find(|entry| !entry.granted)
            .expect("a waiter is counted for every entry not granted");
        entry.granted = true;
        entry.waker.wake_by_ref();
    }
}

/// What a caller that found no permit gets.
pub(crate) enum Enqueued {
    /// A permit came free after all.
    Admitted,
    /// Waiting, with this ticket number, for at most this long.
    Queued(u64, Duration),
    /// The waiting room is full.
    Full,
}

impl Queue {
    /// A queue with `bounds`, or none.
    pub(crate) fn new(bounds: Option<Waiting>) -> Queue {
        Queue {
            entries: Mutex::new(Entries {
                bounds,
                ..Entries::default()
            }),
            open: AtomicU8::new(u8::from(bounds.is_some())),
        }
    }

    /// Whether calls may wait (read without the lock).
    #[inline]
    pub(crate) fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire) != 0
    }

    /// The bounds now.
    pub(crate) fn bounds(&self) -> Option<Waiting> {
        lock(&self.entries).bounds
    }

    /// New bounds (`None`: nobody more waits); returns the ones before. The
    /// calls waiting keep their place and their deadline.
    pub(crate) fn set_bounds(&self, bounds: Option<Waiting>) -> Option<Waiting> {
        let mut entries = lock(&self.entries);
        self.open
            .store(u8::from(bounds.is_some()), Ordering::Release);
        std::mem::replace(&mut entries.bounds, bounds)
    }

    /// Gives a permit back, handing it to the first waiter if any.
    pub(crate) fn release(&self, permits: &Permits) {
        if let Released::Waiters = permits.release() {
            let mut entries = lock(&self.entries);
            if permits.grant_one() {
                entries.grant_first();
            }
        }
    }

    /// Changes the bound of `permits` to `max`, handing the permits a raised
    /// bound frees to the waiters, first come first served; returns the bound
    /// before. Under the lock, so that no release hands over meanwhile.
    pub(crate) fn set_max(&self, permits: &Permits, max: u64) -> u64 {
        let mut entries = lock(&self.entries);
        let old = permits.set_max(max);
        while permits.grant_one() {
            entries.grant_first();
        }
        old
    }

    /// Waits for a permit, unless one is free now, or there is no room (or
    /// no queue any more).
    pub(crate) fn enqueue(&self, permits: &Permits) -> Enqueued {
        let mut entries = lock(&self.entries);
        let Some(bounds) = entries.bounds else {
            return Enqueued::Full;
        };
        if permits.waiting() >= bounds.max_waiting as u64 {
            return Enqueued::Full;
        }
        if permits.acquire_or_wait() {
            return Enqueued::Admitted;
        }
        let id = entries.next_id;
        entries.next_id += 1;
        entries.queue.push_back(Entry {
            id,
            waker: Waker::noop().clone(),
            granted: false,
        });
        Enqueued::Queued(id, bounds.max_wait)
    }

    /// Whether ticket `id` has been handed a permit (then it leaves the
    /// queue, permit in hand); else `waker` will be woken when it is.
    pub(crate) fn poll_ticket(&self, id: u64, waker: &Waker) -> bool {
        let mut entries = lock(&self.entries);
        let Some(at) = entries.queue.iter().position(|entry| entry.id == id) else {
            return false;
        };
        if entries.queue[at].granted {
            entries.queue.remove(at);
            return true;
        }
        entries.queue[at].waker.clone_from(waker);
        false
    }

    /// Ticket `id` gives up (its time ran out, or its call was dropped): it
    /// leaves the queue, giving back a permit it was handed meanwhile.
    pub(crate) fn cancel(&self, id: u64, permits: &Permits) {
        let mut entries = lock(&self.entries);
        let Some(at) = entries.queue.iter().position(|entry| entry.id == id) else {
            return;
        };
        let entry = entries.queue.remove(at).expect("found above");
        if entry.granted {
            drop(entries);
            self.release(permits);
        } else {
            permits.stop_waiting();
        }
    }
}
