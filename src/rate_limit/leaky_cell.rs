//! A shared leaky bucket, lock-free for a request that finds it idle.
//!
//! While no request waits, the bucket's whole state is when the last slot
//! ends (`free_at`), kept in one atomic word: a request that finds the slot
//! over goes at once, moving the word with one compare-and-swap. Everything
//! else — a request that must wait for its slot, a waiter asking for its
//! turn or leaving, a change of the numbers — takes the lock, and closes the
//! word while it holds it (swaps in [`CLOSED`]), so that no request decides
//! on a word the lock's holder is changing; the holder reopens it, with the
//! queue's `free_at`, once no request waits. A request that finds the word
//! closed decides under the lock.
//!
//! A request that read the word just before it closed cannot commit on it
//! unless it was reopened with the same value, which the lock's holder does
//! only when it changed nothing a decision reads: `free_at` only moves
//! forward, and a change of the numbers keeps it. The numbers themselves are
//! read as a whole — a change counts itself in `version`, odd while it
//! writes, and a request that sees the count move or odd decides under the
//! lock — so a decision on the numbers from before a change, committed
//! after it, is as if made just before it. A request of one unit, which
//! fits every bucket, reads the interval alone, and needs no count.

use super::{
    core::Denied,
    leaky_bucket::{Admitted, LeakyBucket, Queue},
};
use crate::sync::{AtomicU64, Mutex, Ordering, fence, lock};

/// The closed word. The queue's `free_at` may hold it as a value (a slot
/// ending at the end of the clock); the word is then left closed, and every
/// request decides under the lock.
const CLOSED: u64 = u64::MAX;

/// The word, the numbers, and the queue of one shared leaky bucket.
#[derive(Debug)]
pub(crate) struct LeakyCell {
    /// `free_at` while no request waits; [`CLOSED`] while a request waits
    /// or the lock's holder decides.
    word: AtomicU64,
    /// The bucket's numbers, for the requests that decide without the lock:
    /// written under it, while the word is closed.
    interval: AtomicU64,
    capacity: AtomicU64,
    /// Twice the changes of the numbers, plus one while one writes them.
    version: AtomicU64,
    /// The bucket and its queue, whose `free_at` is the word's while the
    /// word is open.
    queue: Mutex<(LeakyBucket, Queue)>,
}

impl LeakyCell {
    /// An idle bucket of these numbers.
    pub(crate) fn new(bucket: LeakyBucket) -> LeakyCell {
        let queue = bucket.fresh();
        LeakyCell {
            word: AtomicU64::new(queue.free_at()),
            interval: AtomicU64::new(bucket.interval()),
            capacity: AtomicU64::new(bucket.capacity()),
            version: AtomicU64::new(0),
            queue: Mutex::new((bucket, queue)),
        }
    }

    /// Decides a request of `cost` at `now` that may wait up to `max_wait`;
    /// see [`LeakyBucket::acquire`].
    #[inline]
    pub(crate) fn acquire(&self, now: u64, cost: u64, max_wait: u64) -> Result<Admitted, Denied> {
        if self.go_now(now, cost) {
            return Ok(Admitted::Now);
        }
        self.with(|bucket, queue| bucket.acquire(queue, now, cost, max_wait))
    }

    /// A request that finds the bucket idle — no one waiting, the last slot
    /// over — goes at once, taking its slot from `now`; any other decides
    /// under the lock.
    #[inline(always)]
    fn go_now(&self, now: u64, cost: u64) -> bool {
        // (A closed word is past every `now` but the clock's last, where no
        // slot fits.)
        let free_at = self.word.load(Ordering::Acquire);
        if free_at > now {
            return false;
        }
        // A request of one unit fits every bucket (each holds at least one):
        // it reads the interval alone, and a number read alone is whole.
        let interval = if cost == 1 {
            self.interval.load(Ordering::Relaxed)
        } else {
            match self.whole_interval(cost) {
                Some(interval) => interval,
                None => return false,
            }
        };
        match now.checked_add(cost * interval) {
            Some(end) if end < CLOSED => self
                .word
                .compare_exchange(free_at, end, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok(),
            // The slot would end at the end of the clock: that is for the
            // lock to keep.
            _ => false,
        }
    }

    /// The interval, if a request of `cost` fits the bucket, both numbers
    /// read whole; `None` if it does not fit or the numbers are changing.
    #[inline(always)]
    fn whole_interval(&self, cost: u64) -> Option<u64> {
        let version = self.version.load(Ordering::Acquire);
        if version % 2 == 1 {
            return None;
        }
        let (capacity, interval) = (
            self.capacity.load(Ordering::Relaxed),
            self.interval.load(Ordering::Relaxed),
        );
        // Acquire: had a change written either number, the count read next
        // has moved.
        fence(Ordering::Acquire);
        (self.version.load(Ordering::Relaxed) == version && cost <= capacity).then_some(interval)
    }

    /// Runs `f` on the bucket and its queue under the lock, the word closed
    /// meanwhile and reopened after if no request waits.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut LeakyBucket, &mut Queue) -> R) -> R {
        let mut guard = lock(&self.queue);
        let (bucket, queue) = &mut *guard;
        // Closed, the word was closed by the lock's last holder, and the
        // queue holds its `free_at`; open, the word holds it.
        let word = self.word.swap(CLOSED, Ordering::Acquire);
        if word != CLOSED {
            queue.set_free_at(word);
        }
        let result = f(bucket, queue);
        if queue.is_empty() {
            self.word.store(queue.free_at(), Ordering::Release);
        }
        result
    }

    /// Reads the bucket and its queue as they are, under the lock, changing
    /// nothing.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&LeakyBucket, &Queue) -> R) -> R {
        let guard = lock(&self.queue);
        let (bucket, queue) = &*guard;
        let word = self.word.load(Ordering::Acquire);
        if word == CLOSED {
            return f(bucket, queue);
        }
        let mut copy = queue.clone();
        copy.set_free_at(word);
        f(bucket, &copy)
    }

    /// Makes `into` the bucket's numbers at `now`, keeping its queue (see
    /// [`LeakyBucket::carry`]).
    pub(crate) fn set(&self, into: LeakyBucket, now: u64) {
        self.with(|bucket, queue| {
            bucket.carry(queue, now);
            *bucket = into;
            // Odd while the numbers change; release: a request that reads
            // either new number reads the count moved after it.
            self.version.fetch_add(1, Ordering::Relaxed);
            fence(Ordering::Release);
            self.interval.store(into.interval(), Ordering::Relaxed);
            self.capacity.store(into.capacity(), Ordering::Relaxed);
            self.version.fetch_add(1, Ordering::Release);
        });
    }
}
