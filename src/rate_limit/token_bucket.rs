//! The token bucket, as GCRA: the whole state is one instant, the
//! *theoretical arrival time* (TAT) — when the bucket will be full again.
//!
//! A bucket of `capacity` tokens refilled one token per `interval` is full at
//! the TAT and has `(now - (TAT - capacity·interval)) / interval` tokens at
//! `now`. Taking `cost` tokens moves the TAT `cost · interval` later; the
//! request is admissible once the new TAT lies no more than
//! `capacity · interval` (the *tolerance*) ahead of the clock. So the state
//! fits in one atomic word, an admission is one compare-and-swap, and a
//! refusal computes its exact wait without writing anything.
//!
//! Times are whole nanoseconds on the layer's clock. The interval is the
//! configured period divided by the number of tokens, rounded **up** to a
//! whole nanosecond, so the bucket never refills faster than configured.

use super::core::Denied;

/// A token bucket's configuration: everything but its state, the TAT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TokenBucket {
    /// Nanoseconds per token.
    interval: u64,
    /// How many tokens the bucket holds.
    capacity: u64,
    /// `capacity · interval`: how far ahead of the clock the TAT may run.
    tolerance: u64,
}

impl TokenBucket {
    /// A bucket of `capacity` tokens, one more every `interval` nanoseconds.
    /// The caller has checked that `capacity · interval` fits in a `u64`.
    pub(crate) const fn new(interval: u64, capacity: u64) -> TokenBucket {
        TokenBucket {
            interval,
            capacity,
            tolerance: interval * capacity,
        }
    }

    /// How many tokens the bucket holds.
    pub(crate) const fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Nanoseconds per token.
    pub(crate) const fn interval(&self) -> u64 {
        self.interval
    }

    /// `capacity · interval`: how far ahead of the clock the TAT may run.
    pub(crate) const fn tolerance(&self) -> u64 {
        self.tolerance
    }

    /// Decides a request of `cost` tokens at `now`, for a bucket whose TAT
    /// is `tat`, when the caller accepts to wait up to `max_wait`.
    ///
    /// Admitted: the new TAT to store and when the request may go (`now`, or
    /// later when it reserved tokens that are still to come). Refused: how
    /// long until it would be admitted without waiting, or never.
    #[inline]
    pub(crate) fn decide(
        &self,
        tat: u64,
        now: u64,
        cost: u64,
        max_wait: u64,
    ) -> Result<(u64, u64), Denied> {
        if cost > self.capacity {
            return Err(Denied::Never);
        }
        let Some(new_tat) = tat.max(now).checked_add(cost * self.interval) else {
            // The bucket would be full again only after the end of the
            // clock: a TAT cut to it would forget the debt past it and admit
            // everything from then on.
            return Err(Denied::Wait((u64::MAX - now).max(1)));
        };
        let due = new_tat.saturating_sub(self.tolerance);
        if due <= now {
            Ok((new_tat, now))
        } else if due - now <= max_wait {
            Ok((new_tat, due))
        } else {
            Err(Denied::Wait(due - now))
        }
    }

    /// From when a bucket whose TAT is `tat` is full, as good as new.
    pub(crate) const fn idle_at(tat: u64) -> u64 {
        tat
    }

    /// The TAT that keeps, in bucket `into`, the debt that `tat` holds in
    /// this one at `now`: the same number of tokens owed (rounded up), now
    /// refilled at the new rate. A full bucket stays full; whatever it owes,
    /// a bucket never starts over with a fresh burst.
    pub(crate) fn carry(&self, into: &TokenBucket, tat: u64, now: u64) -> u64 {
        if tat <= now {
            return tat;
        }
        let owed = u128::from(tat - now) * u128::from(into.interval);
        let owed = owed.div_ceil(u128::from(self.interval));
        now.saturating_add(u64::try_from(owed).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    /// 10 tokens a second (one per 100 ms), 3 of burst.
    const BUCKET: TokenBucket = TokenBucket::new(100 * MS, 3);

    #[test]
    fn a_full_bucket_admits_its_capacity_at_once_then_refuses() {
        let mut tat = 0;
        for _ in 0..3 {
            let (new_tat, due) = BUCKET.decide(tat, 1_000 * MS, 1, 0).unwrap();
            assert_eq!(due, 1_000 * MS);
            tat = new_tat;
        }
        assert_eq!(
            BUCKET.decide(tat, 1_000 * MS, 1, 0),
            Err(Denied::Wait(100 * MS))
        );
    }

    #[test]
    fn the_wait_is_exact() {
        let (tat, _) = BUCKET.decide(0, 0, 3, 0).unwrap();
        assert_eq!(BUCKET.decide(tat, 0, 2, 0), Err(Denied::Wait(200 * MS)));
        assert_eq!(BUCKET.decide(tat, 200 * MS - 1, 2, 0), Err(Denied::Wait(1)));
        assert!(BUCKET.decide(tat, 200 * MS, 2, 0).is_ok());
    }

    #[test]
    fn a_wait_within_the_bound_reserves_tokens_to_come() {
        let (tat, _) = BUCKET.decide(0, 0, 3, 0).unwrap();
        let (tat, due) = BUCKET.decide(tat, 0, 1, 150 * MS).unwrap();
        assert_eq!(due, 100 * MS);
        let (_, due) = BUCKET.decide(tat, 0, 1, 250 * MS).unwrap();
        assert_eq!(due, 200 * MS, "reservations queue one interval apart");
        assert_eq!(
            BUCKET.decide(tat, 0, 1, 150 * MS),
            Err(Denied::Wait(200 * MS))
        );
    }

    #[test]
    fn a_cost_above_capacity_can_never_be_admitted() {
        assert_eq!(BUCKET.decide(0, 0, 4, u64::MAX), Err(Denied::Never));
    }

    #[test]
    fn a_carried_bucket_owes_the_same_tokens_at_the_new_rate() {
        let (tat, _) = BUCKET.decide(0, 0, 3, 0).unwrap();
        // Half the rate: the 3 tokens owed take twice as long to come back.
        let slower = TokenBucket::new(200 * MS, 3);
        let carried = BUCKET.carry(&slower, tat, 0);
        assert_eq!(carried, 600 * MS);
        assert_eq!(slower.decide(carried, 0, 1, 0), Err(Denied::Wait(200 * MS)));
        // A smaller burst: no fresh burst, 2 tokens still owed past it.
        let smaller = TokenBucket::new(100 * MS, 1);
        let carried = BUCKET.carry(&smaller, tat, 0);
        assert_eq!(
            smaller.decide(carried, 0, 1, 0),
            Err(Denied::Wait(300 * MS))
        );
        // A larger burst: the debt stays, the room above it is new.
        let larger = TokenBucket::new(100 * MS, 5);
        let carried = BUCKET.carry(&larger, tat, 0);
        assert!(larger.decide(carried, 0, 2, 0).is_ok());
        assert!(larger.decide(carried, 0, 3, 0).is_err());
        // A full bucket stays full; part of a token owed is owed whole.
        assert_eq!(BUCKET.carry(&slower, 5, 10), 5);
        assert_eq!(BUCKET.carry(&TokenBucket::new(3, 3), 1, 0), 1);
    }

    #[test]
    fn a_tat_past_the_end_of_the_clock_is_refused_not_cut() {
        let (tat, due) = BUCKET.decide(0, u64::MAX - 300 * MS, 3, 0).unwrap();
        assert_eq!((tat, due), (u64::MAX, u64::MAX - 300 * MS));
        assert_eq!(
            BUCKET.decide(tat, u64::MAX - 300 * MS, 1, 0),
            Err(Denied::Wait(300 * MS))
        );
        assert_eq!(BUCKET.decide(tat, u64::MAX, 1, 0), Err(Denied::Wait(1)));
    }
}
