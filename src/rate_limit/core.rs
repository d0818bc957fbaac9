//! The one interface of the four algorithms: a configuration, the state it
//! keeps (once for a shared limit, once per key for a keyed one), and a pure
//! decision taking `now`.

use super::{
    leaky_bucket::{Admitted, LeakyBucket, Queue},
    sliding_log::{Log, SlidingLog},
    sliding_window::{Segments, SegmentsState},
    token_bucket::TokenBucket,
};

/// Why a request was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Denied {
    /// It would be admitted after this many nanoseconds, were nothing else
    /// admitted meanwhile.
    Wait(u64),
    /// Its cost exceeds what the limit can ever admit at once.
    Never,
}

/// An algorithm and its parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Algorithm {
    TokenBucket(TokenBucket),
    /// The sliding window counter, and the fixed window (one segment).
    Segments(Segments),
    SlidingLog(SlidingLog),
    LeakyBucket(LeakyBucket),
}

/// What a window, a log or a leaky bucket remembers between requests. (A
/// token bucket's state is its TAT alone: a
/// [`BucketCell`](super::bucket_cell::BucketCell)'s word when shared, a bare
/// `u64` in a keyed table.)
///
/// Two words, so that a keyed table of windows stays small: their states are
/// behind a pointer already (their counts or log), so the box costs little.
#[derive(Clone, Debug)]
pub(crate) enum State {
    Segments(Box<SegmentsState>),
    SlidingLog(Box<Log>),
    LeakyBucket(Box<Queue>),
}

/// A limit as a keyed table sees it: a state per key, a decision, and when
/// a state can be forgotten. The token bucket's state is a bare TAT, eight
/// bytes a key; a window's or a log's is a [`State`].
pub(crate) trait Rule {
    type State;

    /// The state of a key nothing has used yet.
    fn fresh(&self) -> Self::State;

    /// Decides a request; see [`Algorithm`]'s.
    fn acquire(
        &self,
        state: &mut Self::State,
        now: u64,
        cost: u64,
        max_wait: u64,
    ) -> Result<u64, Denied>;

    /// When a state can be forgotten; see [`Algorithm`]'s.
    fn idle_at(&self, state: &Self::State) -> u64;

    /// The most one request may cost.
    fn capacity(&self) -> u64;

    /// Makes `state`, a state of this limit, a state of `into` (the same
    /// algorithm with other numbers) that keeps what it remembers at `now`:
    /// a bucket's debt in tokens, a window's counts, a log's entries.
    fn carry(&self, into: &Self, state: &mut Self::State, now: u64);

    /// Whether [`acquire`](Rule::acquire) would admit a request of `cost`
    /// at `now` at once (it waits up to 0), leaving `state` as it is: the
    /// decision on a copy.
    fn peek(&self, state: &Self::State, now: u64, cost: u64) -> Result<(), Denied>
    where
        Self::State: Clone,
    {
        self.acquire(&mut state.clone(), now, cost, 0).map(drop)
    }
}

/// A question put to a limit's state without changing it; answered the same
/// way whatever the algorithm and wherever the state lives.
pub(crate) trait Question {
    type Answer;

    /// The answer for `state` of `limit` at `now`.
    fn ask<L: Rule>(&self, limit: &L, state: &L::State, now: u64) -> Self::Answer
    where
        L::State: Clone;
}

/// What would a request of this cost get at once? (Its decision on a copy.)
pub(crate) struct WouldAdmit(pub(crate) u64);

impl Question for WouldAdmit {
    type Answer = Result<(), Denied>;

    fn ask<L: Rule>(&self, limit: &L, state: &L::State, now: u64) -> Result<(), Denied>
    where
        L::State: Clone,
    {
        limit.peek(state, now, self.0)
    }
}

/// The largest cost a request could take at once: the capacity available,
/// by the decision itself (admission is monotone in the cost, so a binary
/// search over `0..=capacity` finds it).
pub(crate) struct Available;

impl Question for Available {
    type Answer = u64;

    fn ask<L: Rule>(&self, limit: &L, state: &L::State, now: u64) -> u64
    where
        L::State: Clone,
    {
        let (mut admitted, mut refused) = (0, limit.capacity() + 1);
        while refused - admitted > 1 {
            let cost = admitted + (refused - admitted) / 2;
            if limit.peek(state, now, cost).is_ok() {
                admitted = cost;
            } else {
                refused = cost;
            }
        }
        admitted
    }
}

impl Rule for TokenBucket {
    type State = u64;

    fn fresh(&self) -> u64 {
        0
    }

    #[inline]
    fn acquire(&self, tat: &mut u64, now: u64, cost: u64, max_wait: u64) -> Result<u64, Denied> {
        let (new_tat, due) = self.decide(*tat, now, cost, max_wait)?;
        *tat = new_tat;
        Ok(due)
    }

    fn idle_at(&self, tat: &u64) -> u64 {
        TokenBucket::idle_at(*tat)
    }

    fn capacity(&self) -> u64 {
        TokenBucket::capacity(self)
    }

    fn carry(&self, into: &TokenBucket, tat: &mut u64, now: u64) {
        *tat = TokenBucket::carry(self, into, *tat, now);
    }
}

/// A leaky bucket as a rule: its decisions as questions (they wait up to
/// 0) — a waiter is queued by the store only, which hands its ticket to its
/// future.
impl Rule for LeakyBucket {
    type State = Queue;

    fn fresh(&self) -> Queue {
        LeakyBucket::fresh(self)
    }

    fn acquire(
        &self,
        queue: &mut Queue,
        now: u64,
        cost: u64,
        max_wait: u64,
    ) -> Result<u64, Denied> {
        match LeakyBucket::acquire(self, queue, now, cost, max_wait)? {
            Admitted::Now => Ok(now),
            Admitted::Queued { due, .. } => Ok(due),
        }
    }

    fn idle_at(&self, queue: &Queue) -> u64 {
        LeakyBucket::idle_at(self, queue)
    }

    fn capacity(&self) -> u64 {
        LeakyBucket::capacity(self)
    }

    fn carry(&self, _: &LeakyBucket, queue: &mut Queue, now: u64) {
        LeakyBucket::carry(self, queue, now);
    }
}

impl Rule for Algorithm {
    type State = State;

    /// The state of a limit nothing has used yet.
    fn fresh(&self) -> State {
        match self {
            Algorithm::Segments(segments) => State::Segments(Box::new(segments.fresh())),
            Algorithm::SlidingLog(_) => State::SlidingLog(Box::default()),
            Algorithm::LeakyBucket(bucket) => State::LeakyBucket(Box::new(Rule::fresh(bucket))),
            Algorithm::TokenBucket(_) => unreachable!("a token bucket's state is its TAT alone"),
        }
    }

    /// Decides a request of `cost` at `now` (nanoseconds on the layer's
    /// clock) that may wait up to `max_wait`: admitted — at `now` or, having
    /// reserved capacity still to come, at a later instant — or refused.
    /// Only an admission changes `state`.
    fn acquire(
        &self,
        state: &mut State,
        now: u64,
        cost: u64,
        max_wait: u64,
    ) -> Result<u64, Denied> {
        match (self, state) {
            (Algorithm::Segments(segments), State::Segments(state)) => {
                segments.acquire(state, now, cost, max_wait)
            }
            (Algorithm::SlidingLog(log), State::SlidingLog(state)) => {
                log.acquire(state, now, cost, max_wait)
            }
            (Algorithm::LeakyBucket(bucket), State::LeakyBucket(queue)) => {
                Rule::acquire(bucket, queue, now, cost, max_wait)
            }
            _ => unreachable!("every state is made by `fresh` of its own algorithm"),
        }
    }

    /// From when `state` is as good as [`fresh`](Self::fresh): nothing it
    /// remembers limits a request any more. Forgetting it then loses nothing.
    fn idle_at(&self, state: &State) -> u64 {
        match (self, state) {
            (Algorithm::Segments(segments), State::Segments(state)) => segments.idle_at(state),
            (Algorithm::SlidingLog(log), State::SlidingLog(state)) => log.idle_at(state),
            (Algorithm::LeakyBucket(bucket), State::LeakyBucket(queue)) => {
                Rule::idle_at(bucket, queue)
            }
            _ => unreachable!("every state is made by `fresh` of its own algorithm"),
        }
    }

    fn capacity(&self) -> u64 {
        Algorithm::capacity(self)
    }

    fn carry(&self, into: &Algorithm, state: &mut State, now: u64) {
        match (self, into, state) {
            (Algorithm::Segments(from), Algorithm::Segments(into), State::Segments(counts)) => {
                **counts = from.carry(into, counts, now);
            }
            // A log's entries are instants and costs: any window reads them.
            (Algorithm::SlidingLog(from), Algorithm::SlidingLog(_), State::SlidingLog(log)) => {
                from.carry(log, now);
            }
            (
                Algorithm::LeakyBucket(from),
                Algorithm::LeakyBucket(into),
                State::LeakyBucket(queue),
            ) => Rule::carry(from, into, queue, now),
            _ => unreachable!("a limit changes its numbers, never its algorithm"),
        }
    }
}

impl Algorithm {
    /// The most memory one state may hold on the heap, in bytes: a window's
    /// counters, a full log (its queue may have doubled past the limit).
    pub(crate) fn heap_bytes(&self) -> u128 {
        match self {
            Algorithm::TokenBucket(_) => 0,
            Algorithm::Segments(segments) => {
                size_of::<SegmentsState>() as u128 + segments.slots() * size_of::<u64>() as u128
            }
            Algorithm::SlidingLog(log) => {
                size_of::<Log>() as u128 + 2 * log.quota().0 as u128 * Log::ENTRY_BYTES
            }
            Algorithm::LeakyBucket(bucket) => Queue::heap_bytes(bucket.capacity()),
        }
    }

    /// The most one request may cost: the bucket's capacity, the window's
    /// limit.
    pub(crate) fn capacity(&self) -> u64 {
        self.quota().0
    }

    /// The limit as a quota per window, in nanoseconds: a bucket's capacity
    /// per the time it takes to refill it (to drain, for a leaky one).
    pub(crate) fn quota(&self) -> (u64, u64) {
        match self {
            Algorithm::TokenBucket(bucket) => (bucket.capacity(), bucket.tolerance()),
            Algorithm::Segments(segments) => segments.quota(),
            Algorithm::SlidingLog(log) => log.quota(),
            Algorithm::LeakyBucket(bucket) => (bucket.capacity(), bucket.tolerance()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::State;

    #[test]
    fn a_key_s_state_is_two_words() {
        assert_eq!(size_of::<State>(), 2 * size_of::<u64>());
    }
}
