//! Where a leaky bucket's requests wait — one bucket shared by every
//! request, or one per key — and each waiter's ticket, by which its response
//! future asks for its turn and gives its slot back.

use std::{hash::Hash, task::Waker};

use super::{
    core::{Algorithm, Denied, Question, State},
    keyed::Keyed,
    leaky_bucket::{Admitted, LeakyBucket, Queue, Turn},
    leaky_cell::LeakyCell,
};
use crate::{
    clock::{Clock, Instant},
    sync::Arc,
};

/// A leaky bucket's queues; its waiters hold it too.
#[derive(Debug)]
pub(crate) enum Queues {
    Shared(LeakyCell),
    Keyed(Keyed),
}

/// Whose queue a request waits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    /// The one bucket shared by every request.
    Shared,
    /// That of the key whose hash this is.
    Keyed(u64),
}

impl Queues {
    /// The bucket `bucket` shared, or, with a `table`, one per key.
    pub(crate) fn new(bucket: LeakyBucket, table: Option<Keyed>) -> Queues {
        table.map_or_else(|| Queues::Shared(LeakyCell::new(bucket)), Queues::Keyed)
    }

    /// Decides a request of `cost` for `key` at `now` that may wait up to
    /// `max_wait`; see [`LeakyBucket::acquire`]. A new key is given a
    /// bucket of its own.
    #[inline]
    pub(crate) fn enqueue(
        &self,
        key: Key,
        now: u64,
        cost: u64,
        max_wait: u64,
    ) -> Result<Admitted, Denied> {
        match (self, key) {
            (Queues::Shared(cell), _) => cell.acquire(now, cost, max_wait),
            (Queues::Keyed(keyed), Key::Keyed(key)) => {
                keyed.visit(key, now, true, |algorithm, state| {
                    let (bucket, queue) = leaky(algorithm, state);
                    let queue = queue.expect("a state made for a new key");
                    bucket.acquire(queue, now, cost, max_wait)
                })
            }
            (Queues::Keyed(_), Key::Shared) => unreachable!("a keyed request has a key"),
        }
    }

    /// Runs `f` on the bucket of `key` and its queue — `None` for a key the
    /// table no longer holds.
    fn visit<R>(
        &self,
        key: Key,
        now: u64,
        f: impl FnOnce(&LeakyBucket, Option<&mut Queue>) -> R,
    ) -> R {
        match (self, key) {
            (Queues::Shared(cell), _) => cell.with(|bucket, queue| f(bucket, Some(queue))),
            (Queues::Keyed(keyed), Key::Keyed(key)) => {
                keyed.visit(key, now, false, |algorithm, state| {
                    let (bucket, queue) = leaky(algorithm, state);
                    f(bucket, queue)
                })
            }
            (Queues::Keyed(_), Key::Shared) => unreachable!("a keyed request has a key"),
        }
    }

    /// The answer to `question` for `key` (the keyless requests' bucket
    /// when `None`) at `now`, changing nothing.
    pub(crate) fn ask<K: Hash + ?Sized, Q: Question>(
        &self,
        key: Option<&K>,
        now: u64,
        question: &Q,
    ) -> Q::Answer {
        match self {
            Queues::Shared(cell) => cell.read(|bucket, queue| question.ask(bucket, queue, now)),
            Queues::Keyed(keyed) => keyed.ask(key, now, question),
        }
    }

    /// How many keys a keyed bucket tracks (0 for a shared one).
    pub(crate) fn tracked_keys(&self) -> usize {
        match self {
            Queues::Shared(_) => 0,
            Queues::Keyed(keyed) => keyed.len(),
        }
    }

    /// Makes `algorithm` the limit at `now`, keeping every queue.
    pub(crate) fn change(&self, algorithm: Algorithm, now: u64) {
        match (self, algorithm) {
            (Queues::Shared(cell), Algorithm::LeakyBucket(into)) => cell.set(into, now),
            (Queues::Keyed(keyed), _) => keyed.reconfigure(algorithm, now),
            (Queues::Shared(_), _) => unreachable!("a leaky bucket stays one"),
        }
    }
}

/// A leaky bucket's numbers and queue, from a keyed table's.
fn leaky<'a>(
    algorithm: &'a Algorithm,
    state: Option<&'a mut State>,
) -> (&'a LeakyBucket, Option<&'a mut Queue>) {
    let Algorithm::LeakyBucket(bucket) = algorithm else {
        unreachable!("only a leaky bucket queues")
    };
    match state {
        Some(State::LeakyBucket(queue)) => (bucket, Some(queue)),
        None => (bucket, None),
        Some(_) => unreachable!("every state is made by `fresh` of its own algorithm"),
    }
}

/// A request waiting in a leaky bucket for its slot. Dropped before its
/// slot, it gives the slot back.
pub(crate) struct Ticket<C: Clock> {
    queues: Arc<Queues>,
    clock: C,
    key: Key,
    ticket: u64,
    /// When its slot begins, as it was last told.
    due: u64,
    /// Released, or given back.
    done: bool,
}

impl<C: Clock> Ticket<C> {
    /// The ticket of a request `admitted` to wait in `queues` for `key`.
    pub(crate) fn new(queues: &Arc<Queues>, clock: C, key: Key, admitted: Admitted) -> Ticket<C> {
        let Admitted::Queued { ticket, due } = admitted else {
            unreachable!("a request released at once holds no ticket")
        };
        Ticket {
            queues: Arc::clone(queues),
            clock,
            key,
            ticket,
            due,
            done: false,
        }
    }

    /// When its slot begins, as it was last told.
    pub(crate) fn due(&self) -> Instant {
        Instant::from_nanos(self.due)
    }

    /// Whether its slot has begun; if not, `waker` is woken when the slot
    /// moves (a waiter ahead left) or begins, and [`due`](Self::due) says
    /// when it begins. A request whose queue is no more (its key forgotten
    /// under a flood of keys) goes at the slot it was last told.
    pub(crate) fn poll_turn(&mut self, waker: &Waker) -> bool {
        if self.done {
            return true;
        }
        let now = self.clock.now().as_nanos();
        let turn = self
            .queues
            .visit(self.key, now, |bucket, queue| match queue {
                Some(queue) => bucket.turn(queue, now, self.ticket, waker),
                None => Turn::Gone,
            });
        match turn {
            Turn::Go => self.done = true,
            Turn::Wait(due) => self.due = due,
            Turn::Gone => self.done = self.due <= now,
        }
        self.done
    }
}

impl<C: Clock> Drop for Ticket<C> {
    fn drop(&mut self) {
        if !self.done {
            let now = self.clock.now().as_nanos();
            self.queues.visit(self.key, now, |bucket, queue| {
                if let Some(queue) = queue {
                    bucket.cancel(queue, now, self.ticket);
                }
            });
        }
    }
}
