//! The sliding window log: exact. It remembers when each admitted request
//! went and what it cost, and admits a request when the costs of those that
//! went within the last `window` — the interval `(now - window, now]` — plus
//! its own stay within the limit.
//!
//! Memory is bounded by the limit: every entry costs at least 1 (free
//! requests are not logged), so the log never holds more than `limit`
//! entries. It grows with use and keeps its allocation.
//!
//! A request that may wait is logged at the instant it becomes admissible,
//! never before the latest entry: waiters keep their order.

use std::collections::VecDeque;

use super::core::Denied;

/// A sliding log's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlidingLog {
    limit: u64,
    /// Nanoseconds.
    window: u64,
}

/// The admitted requests still inside the window (or reserved ahead of it),
/// oldest first.
#[derive(Clone, Debug, Default)]
pub(crate) struct Log {
    entries: VecDeque<Entry>,
    /// The sum of the entries' costs.
    total: u64,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    at: u64,
    cost: u64,
}

impl Log {
    /// The bytes of one entry in the queue.
    pub(crate) const ENTRY_BYTES: u128 = size_of::<Entry>() as u128;
}

impl SlidingLog {
    /// `limit` per `window` nanoseconds; the caller has checked both are at
    /// least 1.
    pub(crate) const fn new(limit: u64, window: u64) -> SlidingLog {
        SlidingLog { limit, window }
    }

    /// The limit, and the window in nanoseconds.
    pub(crate) fn quota(&self) -> (u64, u64) {
        (self.limit, self.window)
    }

    /// See [`Rule::acquire`](super::core::Rule::acquire).
    pub(crate) fn acquire(
        &self,
        log: &mut Log,
        now: u64,
        cost: u64,
        max_wait: u64,
    ) -> Result<u64, Denied> {
        if cost > self.limit {
            return Err(Denied::Never);
        }
        if cost == 0 {
            return Ok(now);
        }
        if let Some(left) = now.checked_sub(self.window) {
            log.forget_until(left);
        }
        let first = log.entries.back().map_or(now, |newest| newest.at.max(now));
        let Some(due) = self.first_with_room(log, first, cost) else {
            // Room comes only after the end of the clock.
            return Err(Denied::Wait((u64::MAX - now).max(1)));
        };
        if due - now > max_wait {
            return Err(Denied::Wait(due - now));
        }
        log.entries.push_back(Entry { at: due, cost });
        log.total += cost;
        Ok(due)
    }

    /// The first instant from `first` on at which the window has room for
    /// `cost`: `first` itself, or when enough of the oldest entries have left;
    /// `None` when that is past the end of the clock.
    fn first_with_room(&self, log: &Log, first: u64, cost: u64) -> Option<u64> {
        let mut used = log.total;
        let mut leaving = log.entries.iter();
        let mut at = first;
        while used + cost > self.limit {
            // `used` counts at least `cost` more than the limit allows, so
            // an entry remains: there is one to leave.
            let oldest = leaving.next().expect("the log holds what it counts");
            used -= oldest.cost;
            at = at.max(oldest.at.checked_add(self.window)?);
        }
        // Entries the window of `first` no longer holds were counted above
        // only until their own leaving time, which is no later than `first`.
        Some(at)
    }

    /// See [`Rule::idle_at`](super::core::Rule::idle_at): once the
    /// newest entry has left the window.
    pub(crate) fn idle_at(&self, log: &Log) -> u64 {
        log.entries
            .back()
            .map_or(0, |newest| newest.at.saturating_add(self.window))
    }
}

impl SlidingLog {
    /// Keeps, for a log of other numbers, the entries this one's window
    /// holds at `now`: a longer window does not count again what this one
    /// has let go.
    pub(crate) fn carry(&self, log: &mut Log, now: u64) {
        if let Some(left) = now.checked_sub(self.window) {
            log.forget_until(left);
        }
    }
}

impl Log {
    /// Drops the entries logged at or before `instant`.
    fn forget_until(&mut self, instant: u64) {
        while let Some(oldest) = self.entries.front() {
            if oldest.at > instant {
                break;
            }
            self.total -= oldest.cost;
            self.entries.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn exact_over_the_window() {
        let log = SlidingLog::new(3, 10 * S);
        let mut state = Log::default();
        assert_eq!(log.acquire(&mut state, S, 2, 0), Ok(S));
        assert_eq!(log.acquire(&mut state, 4 * S, 1, 0), Ok(4 * S));
        assert_eq!(
            log.acquire(&mut state, 5 * S, 2, 0),
            Err(Denied::Wait(6 * S))
        );
        assert_eq!(
            log.acquire(&mut state, 11 * S - 1, 2, 0),
            Err(Denied::Wait(1))
        );
        assert_eq!(log.acquire(&mut state, 11 * S, 2, 0), Ok(11 * S));
        assert_eq!(state.entries.len(), 2, "the entry that left was dropped");
    }

    #[test]
    fn waiters_are_logged_in_order_when_due() {
        let log = SlidingLog::new(2, 10 * S);
        let mut state = Log::default();
        log.acquire(&mut state, 0, 1, 0).unwrap();
        log.acquire(&mut state, S, 1, 0).unwrap();
        assert_eq!(log.acquire(&mut state, 2 * S, 1, 20 * S), Ok(10 * S));
        assert_eq!(log.acquire(&mut state, 2 * S, 1, 20 * S), Ok(11 * S));
        assert_eq!(
            log.acquire(&mut state, 2 * S, 1, 5 * S),
            Err(Denied::Wait(18 * S))
        );
        assert_eq!(log.idle_at(&state), 21 * S);
    }

    #[test]
    fn entries_at_the_clock_zero_count_until_a_window_has_passed() {
        let log = SlidingLog::new(1, 10 * S);
        let mut state = Log::default();
        assert_eq!(log.acquire(&mut state, 0, 1, 0), Ok(0));
        assert_eq!(log.acquire(&mut state, 0, 1, 0), Err(Denied::Wait(10 * S)));
        assert_eq!(log.acquire(&mut state, 10 * S, 1, 0), Ok(10 * S));
    }

    #[test]
    fn free_requests_are_not_logged_and_oversized_ones_never_pass() {
        let log = SlidingLog::new(2, S);
        let mut state = Log::default();
        assert_eq!(log.acquire(&mut state, 5, 0, 0), Ok(5));
        assert!(state.entries.is_empty());
        assert_eq!(log.acquire(&mut state, 5, 3, u64::MAX), Err(Denied::Never));
    }
}
