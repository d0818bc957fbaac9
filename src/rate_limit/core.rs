//! The one interface of the four algorithms: a configuration, the state it
//! keeps (once for a shared limit, once per key for a keyed one), and a pure
//! decision taking `now`.

use super::{
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
}

/// What an algorithm remembers between requests.
#[derive(Clone, Debug)]
pub(crate) enum State {
    TokenBucket { tat: u64 },
    Segments(SegmentsState),
    SlidingLog(Log),
}

impl Algorithm {
    /// The state of a limit nothing has used yet.
    pub(crate) fn fresh(&self) -> State {
        match self {
            Algorithm::TokenBucket(_) => State::TokenBucket { tat: 0 },
            Algorithm::Segments(segments) => State::Segments(segments.fresh()),
            Algorithm::SlidingLog(_) => State::SlidingLog(Log::default()),
        }
    }

    /// Decides a request of `cost` at `now` (nanoseconds on the layer's
    /// clock) that may wait up to `max_wait`: admitted — at `now` or, having
    /// reserved capacity still to come, at a later instant — or refused.
    /// Only an admission changes `state`.
    pub(crate) fn acquire(
        &self,
        state: &mut State,
        now: u64,
        cost: u64,
        max_wait: u64,
    ) -> Result<u64, Denied> {
        match (self, state) {
            (Algorithm::TokenBucket(bucket), State::TokenBucket { tat }) => {
                let (new_tat, due) = bucket.decide(*tat, now, cost, max_wait)?;
                *tat = new_tat;
                Ok(due)
            }
            (Algorithm::Segments(segments), State::Segments(state)) => {
                segments.acquire(state, now, cost, max_wait)
            }
            (Algorithm::SlidingLog(log), State::SlidingLog(state)) => {
                log.acquire(state, now, cost, max_wait)
            }
            _ => unreachable!("every state is made by `fresh` of its own algorithm"),
        }
    }

    /// From when `state` is as good as [`fresh`](Self::fresh): nothing it
    /// remembers limits a request any more. Forgetting it then loses nothing.
    pub(crate) fn idle_at(&self, state: &State) -> u64 {
        match (self, state) {
            (Algorithm::TokenBucket(_), State::TokenBucket { tat }) => TokenBucket::idle_at(*tat),
            (Algorithm::Segments(segments), State::Segments(state)) => segments.idle_at(state),
            (Algorithm::SlidingLog(log), State::SlidingLog(state)) => log.idle_at(state),
            _ => unreachable!("every state is made by `fresh` of its own algorithm"),
        }
    }

    /// The most one request may cost: the bucket's capacity, the window's
    /// limit.
    pub(crate) fn capacity(&self) -> u64 {
        self.quota().0
    }

    /// The limit as a quota per window, in nanoseconds: a bucket's capacity
    /// per the time it takes to refill it.
    pub(crate) fn quota(&self) -> (u64, u64) {
        match self {
            Algorithm::TokenBucket(bucket) => {
                (bucket.capacity(), bucket.capacity() * bucket.interval())
            }
            Algorithm::Segments(segments) => segments.quota(),
            Algorithm::SlidingLog(log) => log.quota(),
        }
    }
}
