//! The leaky bucket, as a queue: requests leave it one after another at a
//! fixed rate, in arrival order, each in a *slot* of `cost · interval`; at
//! most `capacity` units of cost are in the bucket at once — the request in
//! the slot draining now and those waiting for theirs.
//!
//! The state is when the slot draining now ends (`free_at`: the earliest the
//! next request may leave) and the queue of waiting requests, each with its
//! ticket, its cost and the waker of its response future. A waiting request
//! leaves at the start of its slot: `free_at` plus the costs of those ahead
//! of it. Nothing is decided by a timer: whoever looks at the queue first
//! *settles* it at `now`, releasing each waiter whose slot has begun — at
//! its slot, not at the look — and waking it. A waiter that leaves the queue
//! before its slot gives the slot back: everyone behind it moves up by its
//! cost, so the stream stays even.
//!
//! Times are whole nanoseconds on the layer's clock; the interval is rounded
//! up, as the token bucket's, so the bucket never drains faster than
//! configured.

use std::{
    collections::VecDeque,
    sync::atomic::{AtomicU64, Ordering},
    task::Waker,
};

use super::{core::Denied, token_bucket::TokenBucket};

/// The tickets of every queue: unique, and increasing within a queue (they
/// are drawn under its lock), so a queue can tell its own waiters from those
/// of a queue it replaced.
static TICKETS: AtomicU64 = AtomicU64::new(1);

/// A leaky bucket's configuration: everything but its queue. Its numbers
/// are a token bucket's: a unit of cost drains in `interval`, and the
/// bucket holds `capacity` units, so the last slot may end at most
/// `capacity · interval` (the tolerance) ahead of the clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LeakyBucket(TokenBucket);

/// A leaky bucket's state.
#[derive(Clone, Debug)]
pub(crate) struct Queue {
    /// When the slot of the last request released ends.
    free_at: u64,
    /// The requests waiting for their slot, in arrival order (and so in
    /// ticket order).
    waiting: VecDeque<Waiter>,
    /// A ticket drawn when the queue was made: those it hands out are
    /// above it, those of a queue it replaced below.
    since: u64,
}

/// A request waiting for its slot. (A copy of a waiter — in a copy of a
/// queue, for a question — keeps no waker: settling the copy wakes no one.)
#[derive(Debug)]
struct Waiter {
    ticket: u64,
    /// The units of cost queued before it, counted from an origin shared by
    /// the queue: its slot starts `(start - head's start) · interval` after
    /// `free_at`.
    start: u64,
    cost: u64,
    waker: Option<Waker>,
}

impl Clone for Waiter {
    fn clone(&self) -> Waiter {
        Waiter {
            waker: None,
            ..*self
        }
    }
}

/// Where a waiting request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Turn {
    /// Its slot has begun: go.
    Go,
    /// Its slot begins at this instant.
    Wait(u64),
    /// Its queue is no more (its key was forgotten under a flood of keys):
    /// the queue cannot say.
    Gone,
}

/// An admission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admitted {
    /// Go now.
    Now,
    /// Wait in the queue for the slot that begins at `due`.
    Queued { ticket: u64, due: u64 },
}

impl LeakyBucket {
    /// A bucket of `capacity` units draining one every `interval`
    /// nanoseconds. The caller has checked that `capacity · interval` fits
    /// in a `u64`.
    pub(crate) const fn new(interval: u64, capacity: u64) -> LeakyBucket {
        LeakyBucket(TokenBucket::new(interval, capacity))
    }

    /// How many units of cost the bucket holds.
    pub(crate) const fn capacity(&self) -> u64 {
        self.0.capacity()
    }

    /// Nanoseconds a unit of cost takes to drain.
    pub(crate) const fn interval(&self) -> u64 {
        self.0.interval()
    }

    /// `capacity · interval`: the time a full bucket takes to drain.
    pub(crate) const fn tolerance(&self) -> u64 {
        self.0.tolerance()
    }

    /// An empty bucket.
    pub(crate) fn fresh(&self) -> Queue {
        Queue {
            free_at: 0,
            waiting: VecDeque::new(),
            since: TICKETS.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Decides a request of `cost` at `now` that may wait up to `max_wait`
    /// for its slot: released now, queued for its slot, or refused with how
    /// long until it would be queued (or go) — when enough of the bucket
    /// has drained and its slot is near enough — or never, for a cost
    /// above the capacity. A request of cost 0 takes no slot: it goes at
    /// once.
    pub(crate) fn acquire(
        &self,
        queue: &mut Queue,
        now: u64,
        cost: u64,
        max_wait: u64,
    ) -> Result<Admitted, Denied> {
        if cost > self.capacity() {
            return Err(Denied::Never);
        }
        if cost == 0 {
            return Ok(Admitted::Now);
        }
        self.settle(queue, now);
        let slot = queue
            .free_at
            .max(now)
            .checked_add(queue.queued().saturating_mul(self.interval()))
            .and_then(|start| Some((start, start.checked_add(cost * self.interval())?)));
        let Some((start, end)) = slot else {
            // The slot would end after the end of the clock.
            return Err(Denied::Wait((u64::MAX - now).max(1)));
        };
        // Until enough has drained for it to fit, and until its slot is near
        // enough: both are instants that only an admission or a waiter's
        // leaving moves.
        let wait = (end - now)
            .saturating_sub(self.tolerance())
            .max((start - now).saturating_sub(max_wait));
        if wait > 0 {
            return Err(Denied::Wait(wait));
        }
        if start == now {
            queue.free_at = end;
            return Ok(Admitted::Now);
        }
        let ticket = TICKETS.fetch_add(1, Ordering::Relaxed);
        let start_units = queue
            .waiting
            .back()
            .map_or(0, |last| last.start + last.cost);
        queue.waiting.push_back(Waiter {
            ticket,
            start: start_units,
            cost,
            waker: None,
        });
        Ok(Admitted::Queued { ticket, due: start })
    }

    /// Where the request holding `ticket` stands at `now`; a waiter keeps
    /// `waker` to be woken when its slot moves or begins.
    pub(crate) fn turn(&self, queue: &mut Queue, now: u64, ticket: u64, waker: &Waker) -> Turn {
        self.settle(queue, now);
        if ticket < queue.since {
            return Turn::Gone;
        }
        let Some(at) = queue.position(ticket) else {
            // Released (a waiter that left never asks again).
            return Turn::Go;
        };
        let due = self.slot(queue, at);
        let waiter = &mut queue.waiting[at];
        match &mut waiter.waker {
            Some(kept) => kept.clone_from(waker),
            None => waiter.waker = Some(waker.clone()),
        }
        Turn::Wait(due)
    }

    /// The request holding `ticket` leaves the queue at `now`: a waiter
    /// gives its slot back (everyone behind it moves up); one whose slot has
    /// begun was released and keeps it.
    pub(crate) fn cancel(&self, queue: &mut Queue, now: u64, ticket: u64) {
        self.settle(queue, now);
        // (A ticket of a queue this one replaced is not in it either.)
        let Some(at) = queue.position(ticket) else {
            return;
        };
        let gone = queue.waiting.remove(at).expect("a position in the queue");
        for behind in queue.waiting.range_mut(at..) {
            behind.start -= gone.cost;
        }
        if at == 0 {
            queue.wake_head();
        }
    }

    /// From when `queue` is as good as [`fresh`](Self::fresh): empty, its
    /// last slot over.
    pub(crate) fn idle_at(&self, queue: &Queue) -> u64 {
        queue
            .free_at
            .saturating_add(queue.queued().saturating_mul(self.interval()))
    }

    /// Readies `queue` for other numbers at `now`: the waiters whose slots
    /// began under these are released by them, so the slot draining now
    /// ends when it was to. The others keep their order, and their slots
    /// follow the new numbers: each learns its own when it is next (the
    /// head's, `free_at`, does not move).
    pub(crate) fn carry(&self, queue: &mut Queue, now: u64) {
        self.settle(queue, now);
    }

    /// Releases, at `now`, every waiter whose slot has begun — each at its
    /// slot — and wakes them, and then the new head of the queue, whose
    /// slot is next.
    fn settle(&self, queue: &mut Queue, now: u64) {
        let mut released = false;
        while let Some(head) = queue.waiting.front() {
            if queue.free_at > now {
                break;
            }
            queue.free_at = queue.free_at.saturating_add(head.cost * self.interval());
            if let Some(waker) = queue.waiting.pop_front().and_then(|head| head.waker) {
                waker.wake();
            }
            released = true;
        }
        if released {
            queue.wake_head();
        }
    }

    /// When the slot of the waiter at `at` begins.
    fn slot(&self, queue: &Queue, at: usize) -> u64 {
        let ahead = queue.waiting[at].start - queue.waiting[0].start;
        queue
            .free_at
            .saturating_add(ahead.saturating_mul(self.interval()))
    }
}

impl Queue {
    /// When the slot of the last request released ends.
    pub(crate) fn free_at(&self) -> u64 {
        self.free_at
    }

    /// Sets when the slot of the last request released ends, as kept
    /// elsewhere while no request waited (it only moves forward).
    pub(crate) fn set_free_at(&mut self, free_at: u64) {
        debug_assert!(self.waiting.is_empty() && free_at >= self.free_at);
        self.free_at = free_at;
    }

    /// Whether no request waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// The units of cost waiting.
    fn queued(&self) -> u64 {
        match (self.waiting.front(), self.waiting.back()) {
            (Some(first), Some(last)) => last.start + last.cost - first.start,
            _ => 0,
        }
    }

    /// Where the waiter holding `ticket` is in the queue.
    fn position(&self, ticket: u64) -> Option<usize> {
        self.waiting
            .binary_search_by_key(&ticket, |waiter| waiter.ticket)
            .ok()
    }

    /// Wakes the first waiter, whose slot is next: it moved.
    fn wake_head(&mut self) {
        if let Some(waker) = self.waiting.front_mut().and_then(|head| head.waker.take()) {
            waker.wake();
        }
    }

    /// The most memory one queue may hold on the heap for a bucket of
    /// `capacity` units: a waiter a unit, twice over (the queue may have
    /// doubled past it).
    pub(crate) fn heap_bytes(capacity: u64) -> u128 {
        size_of::<Queue>() as u128 + 2 * u128::from(capacity) * size_of::<Waiter>() as u128
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            Arc,
            atomic::{AtomicUsize, Ordering},
        },
        task::{Wake, Waker},
    };

    use super::*;

    /// A waker that counts its wakes.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count::default());
        (Arc::clone(&count), Waker::from(count))
    }

    const BUCKET: LeakyBucket = LeakyBucket::new(100, 4);

    fn queued(admitted: Result<Admitted, Denied>) -> (u64, u64) {
        match admitted {
            Ok(Admitted::Queued { ticket, due }) => (ticket, due),
            other => panic!("not queued: {other:?}"),
        }
    }

    #[test]
    fn the_memory_a_leaky_bucket_is_documented_to_take() {
        assert_eq!(size_of::<Queue>(), 48);
        assert_eq!(size_of::<Waiter>(), 40);
    }

    #[test]
    fn a_waiter_is_woken_when_its_slot_moves_up_and_when_it_begins() {
        let mut queue = BUCKET.fresh();
        assert_eq!(
            BUCKET.acquire(&mut queue, 0, 1, u64::MAX),
            Ok(Admitted::Now)
        );
        let (first, _) = queued(BUCKET.acquire(&mut queue, 0, 1, u64::MAX));
        let (second, _) = queued(BUCKET.acquire(&mut queue, 0, 1, u64::MAX));
        let (third, due) = queued(BUCKET.acquire(&mut queue, 0, 1, u64::MAX));
        assert_eq!(due, 300);
        let wakers = [waker(), waker(), waker()];
        for ((_, waker), ticket) in wakers.iter().zip([first, second, third]) {
            assert!(matches!(
                BUCKET.turn(&mut queue, 0, ticket, waker),
                Turn::Wait(_)
            ));
        }
        // A copy, settled past every slot, wakes no one.
        let mut copy = queue.clone();
        assert_eq!(
            BUCKET.acquire(&mut copy, 1_000, 1, u64::MAX),
            Ok(Admitted::Now)
        );
        assert_eq!(wakes(&wakers), [0, 0, 0]);
        // The second leaves: only the head's slot is next; no one is woken.
        BUCKET.cancel(&mut queue, 50, second);
        assert_eq!(wakes(&wakers), [0, 0, 0]);
        assert_eq!(
            BUCKET.turn(&mut queue, 50, third, &wakers[2].1),
            Turn::Wait(200)
        );
        // The first leaves: the third is the head now, woken to see it.
        BUCKET.cancel(&mut queue, 60, first);
        assert_eq!(wakes(&wakers), [0, 0, 1]);
        assert_eq!(
            BUCKET.turn(&mut queue, 60, third, &wakers[2].1),
            Turn::Wait(100)
        );
        // Its slot begins: whoever settles the queue wakes it.
        assert_eq!(queued(BUCKET.acquire(&mut queue, 100, 1, u64::MAX)).1, 200);
        assert_eq!(wakes(&wakers), [0, 0, 2]);
        assert_eq!(BUCKET.turn(&mut queue, 100, third, &wakers[2].1), Turn::Go);
        // A waiter that leaves after its slot began keeps it.
        BUCKET.cancel(&mut queue, 100, third);
        assert_eq!(BUCKET.idle_at(&queue), 300, "the next one's slot follows");
    }

    #[test]
    fn a_ticket_of_a_queue_that_was_replaced_is_gone() {
        let mut old = BUCKET.fresh();
        BUCKET.acquire(&mut old, 0, 1, u64::MAX).unwrap();
        let (ticket, _) = queued(BUCKET.acquire(&mut old, 0, 1, u64::MAX));
        let mut new = BUCKET.fresh();
        let (_, waker) = waker();
        assert_eq!(BUCKET.turn(&mut new, 0, ticket, &waker), Turn::Gone);
        BUCKET.cancel(&mut new, 0, ticket);
        assert_eq!(BUCKET.acquire(&mut new, 0, 1, u64::MAX), Ok(Admitted::Now));
    }

    #[test]
    fn a_slot_past_the_end_of_the_clock_is_refused_until_then() {
        let mut queue = BUCKET.fresh();
        let late = u64::MAX - 150;
        BUCKET.acquire(&mut queue, late, 1, u64::MAX).unwrap();
        assert_eq!(
            BUCKET.acquire(&mut queue, late, 1, u64::MAX),
            Err(Denied::Wait(150)),
            "the second slot would end after the clock's"
        );
        assert_eq!(
            BUCKET.acquire(&mut queue, late, 0, u64::MAX),
            Ok(Admitted::Now)
        );
        assert_eq!(
            BUCKET.acquire(&mut queue, late, 5, u64::MAX),
            Err(Denied::Never)
        );
    }

    /// How many times each waker was woken.
    fn wakes(wakers: &[(Arc<Count>, Waker)]) -> Vec<usize> {
        wakers
            .iter()
            .map(|(count, _)| count.0.load(Ordering::SeqCst))
            .collect()
    }
}
