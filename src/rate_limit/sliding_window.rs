//! The sliding window counter: `limit` per `window`, counted in segments.
//!
//! Time is cut into segments of `window / segments` (rounded up to a whole
//! nanosecond), aligned on the clock's zero. A request at `now` is admitted
//! when the requests counted in the current segment and the `segments`
//! before it, plus its own cost, stay within the limit.
//!
//! # Error bound
//!
//! Those `segments + 1` segments cover at least the last `window` — the
//! oldest of them only partly — so the counter **never admits more than
//! `limit` in any interval of length `window`**. The approximation errs the
//! other way: a request is counted until its whole segment has left the
//! window, up to one segment (`window / segments`) longer than an exact log
//! would count it. More segments: closer to exact, more memory (one counter
//! per segment).
//!
//! The [fixed window](super::fixed_window) is the same core with a single
//! segment the length of the window, counting only the current one.
//!
//! # Reservations
//!
//! A request that may wait books its cost into the first segment whose window
//! has room, up to `ahead` segments past the current one. Bookings only move
//! forward (each lands no earlier than the one before), so waiters are served
//! in arrival order, and a booking in segment `j` never overfills a window
//! that ends after `j`.

use super::core::Denied;

/// A segmented window's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Segments {
    limit: u64,
    /// Nanoseconds per segment.
    segment: u64,
    /// How many segments a window counts, the current one included.
    counted: u64,
    /// How many segments past the current one may hold reservations.
    ahead: u64,
}

/// A segmented window's counters: a ring holding the segments
/// `newest - len + 1 ..= newest`.
#[derive(Clone, Debug)]
pub(crate) struct SegmentsState {
    counts: Box<[u64]>,
    newest: u64,
    /// The sum of `counts`.
    total: u64,
    /// The segment of the latest admission.
    last: u64,
}

impl Segments {
    /// `limit` over the last `counted` segments of `segment` nanoseconds
    /// each, reservable up to `ahead` segments ahead. The caller has checked
    /// that `segment` and `counted` are at least 1.
    pub(crate) const fn new(limit: u64, segment: u64, counted: u64, ahead: u64) -> Segments {
        Segments {
            limit,
            segment,
            counted,
            ahead,
        }
    }

    /// The limit, and the window in nanoseconds.
    pub(crate) fn quota(&self) -> (u64, u64) {
        (self.limit, self.segment * (self.counted - 1).max(1))
    }

    /// The limit, the segment's length and how many segments a window
    /// counts: the numbers a store outside the process needs.
    #[cfg(feature = "redis")]
    pub(crate) const fn parts(&self) -> (u64, u64, u64) {
        (self.limit, self.segment, self.counted)
    }

    /// How many counters a state holds.
    pub(crate) fn slots(&self) -> u128 {
        u128::from(self.counted + self.ahead)
    }

    /// The counters of a window nothing has used yet.
    pub(crate) fn fresh(&self) -> SegmentsState {
        SegmentsState {
            counts: vec![0; (self.counted + self.ahead) as usize].into_boxed_slice(),
            newest: 0,
            total: 0,
            last: 0,
        }
    }

    /// See [`Rule::acquire`](super::core::Rule::acquire).
    pub(crate) fn acquire(
        &self,
        state: &mut SegmentsState,
        now: u64,
        cost: u64,
        max_wait: u64,
    ) -> Result<u64, Denied> {
        if cost > self.limit {
            return Err(Denied::Never);
        }
        if cost == 0 {
            // Takes nothing: admitted even over a limit lowered below the
            // counts.
            return Ok(now);
        }
        let current = now / self.segment;
        state.advance(current);
        let first = current.max(state.last);
        // Every counter in the ring is at least the window's: when even
        // their sum leaves room, so does the window.
        if first == current && state.total + cost <= self.limit {
            state.book(current, cost);
            return Ok(now);
        }
        let target = self.first_with_room(state, first, cost);
        let Some(start) = target.checked_mul(self.segment) else {
            // The first segment with room starts after the end of the clock.
            return Err(Denied::Wait((u64::MAX - now).max(1)));
        };
        let due = now.max(start);
        if due - now > max_wait {
            return Err(Denied::Wait(due - now));
        }
        state.advance(target);
        state.book(target, cost);
        Ok(due)
    }

    /// The first segment from `first` on whose window has room for `cost`.
    fn first_with_room(&self, state: &SegmentsState, first: u64, cost: u64) -> u64 {
        let oldest = |j: u64| j.saturating_sub(self.counted - 1);
        let mut used: u64 = (oldest(first)..=first).map(|i| state.get(i)).sum();
        let mut j = first;
        // Past `newest + counted` every window is empty: the loop ends there.
        while used + cost > self.limit {
            if j >= self.counted - 1 {
                used -= state.get(oldest(j));
            }
            j += 1;
            used += state.get(j);
        }
        j
    }

    /// See [`Rule::idle_at`](super::core::Rule::idle_at): once the
    /// latest admission's segment has left the window.
    pub(crate) fn idle_at(&self, state: &SegmentsState) -> u64 {
        if state.total == 0 {
            return 0;
        }
        (state.last + self.counted).saturating_mul(self.segment)
    }
}

impl Segments {
    /// The counters of window `into` that remember what `state` counts in
    /// this one at `now` (the window's segments and those booked ahead): each
    /// segment's count moves to the new segment holding its last instant, so
    /// a request is counted no shorter than before — in the new window,
    /// never less than was admitted. With the same segments, nothing moves.
    pub(crate) fn carry(&self, into: &Segments, state: &SegmentsState, now: u64) -> SegmentsState {
        let mut carried = into.fresh();
        let current = now / self.segment;
        let counted = current.saturating_sub(self.counted - 1);
        if state.total == 0 || state.newest < counted {
            return carried;
        }
        let moved = |segment: u64| {
            segment
                .saturating_add(1)
                .saturating_mul(self.segment)
                .saturating_sub(1)
                / into.segment
        };
        let newest = moved(state.newest);
        // The oldest counts that do not fit in the new ring move forward
        // into its oldest segment: remembered longer, never lost.
        let oldest = newest.saturating_sub(carried.len() - 1);
        carried.newest = newest;
        for segment in counted.max(state.oldest())..=state.newest {
            carried.book(moved(segment).max(oldest), state.get(segment));
        }
        carried.last = moved(state.last).max(oldest);
        carried
    }
}

impl SegmentsState {
    fn len(&self) -> u64 {
        self.counts.len() as u64
    }

    fn slot(&self, segment: u64) -> usize {
        (segment % self.len()) as usize
    }

    /// The oldest segment the ring holds.
    fn oldest(&self) -> u64 {
        self.newest.saturating_sub(self.len() - 1)
    }

    /// The count of `segment`: zero when it is not in the ring.
    fn get(&self, segment: u64) -> u64 {
        if segment > self.newest || segment < self.oldest() {
            return 0;
        }
        self.counts[self.slot(segment)]
    }

    /// Moves the ring forward so that it ends at `segment`, emptying the
    /// slots it reuses.
    fn advance(&mut self, segment: u64) {
        if segment <= self.newest {
            return;
        }
        if segment - self.newest >= self.len() {
            self.counts.fill(0);
            self.total = 0;
        } else {
            for i in self.newest + 1..=segment {
                let slot = self.slot(i);
                self.total -= self.counts[slot];
                self.counts[slot] = 0;
            }
        }
        self.newest = segment;
    }

    fn book(&mut self, segment: u64, cost: u64) {
        let slot = self.slot(segment);
        self.counts[slot] += cost;
        self.total += cost;
        self.last = segment;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const S: u64 = 1_000_000_000;

    proptest! {
        /// Whatever is asked of a window (waits, changes of its numbers),
        /// its ring's total is the sum of its counters — the fast path
        /// admits on the total alone — and nothing is booked past its
        /// latest admission, which every wait starts from.
        #[test]
        fn the_ring_s_total_is_its_counts_and_nothing_is_booked_past_the_last(
            steps in proptest::collection::vec(
                (0..3 * S, 0..4u64, 0..8 * S, 1..4u64, 1..8u64, prop::bool::weighted(0.1)),
                1..60,
            )
        ) {
            let mut window = Segments::new(4, S, 4, 9);
            let mut state = window.fresh();
            let mut now = 0;
            for (after, cost, max_wait, segments, segment, change) in steps {
                now += after;
                if change {
                    let into = Segments::new(4, segment * S / 2, segments + 1, 9);
                    state = window.carry(&into, &state, now);
                    window = into;
                } else {
                    // Within the segments the ring holds ahead.
                    let max_wait = max_wait.min(8 * window.segment);
                    let _ = window.acquire(&mut state, now, cost, max_wait);
                }
                prop_assert_eq!(state.total, state.counts.iter().sum::<u64>());
                for past in state.last + 1..=state.newest {
                    prop_assert_eq!(state.get(past), 0);
                }
            }
        }
    }

    /// 4 per 10 s in 5 segments of 2 s, counting 6.
    fn window(ahead: u64) -> Segments {
        Segments::new(4, 2 * S, 6, ahead)
    }

    #[test]
    fn admits_up_to_the_limit_then_waits_for_the_oldest_segment_to_leave() {
        let window = window(0);
        let mut state = window.fresh();
        assert_eq!(window.acquire(&mut state, S, 3, 0), Ok(S));
        assert_eq!(window.acquire(&mut state, 5 * S, 1, 0), Ok(5 * S));
        // Segment 0 (the first 3) leaves the window of segment 6, at 12 s.
        assert_eq!(
            window.acquire(&mut state, 7 * S, 1, 0),
            Err(Denied::Wait(5 * S))
        );
        assert_eq!(
            window.acquire(&mut state, 12 * S - 1, 1, 0),
            Err(Denied::Wait(1))
        );
        assert_eq!(window.acquire(&mut state, 12 * S, 3, 0), Ok(12 * S));
        // Next out: segment 2 (the one at 5 s), at 16 s.
        assert_eq!(
            window.acquire(&mut state, 12 * S, 1, 0),
            Err(Denied::Wait(4 * S))
        );
    }

    #[test]
    fn never_for_a_cost_above_the_limit() {
        let window = window(0);
        assert_eq!(
            window.acquire(&mut window.fresh(), 0, 5, u64::MAX),
            Err(Denied::Never)
        );
    }

    #[test]
    fn waiters_book_later_segments_in_order() {
        let window = window(3);
        let mut state = window.fresh();
        assert_eq!(window.acquire(&mut state, 0, 4, 0), Ok(0));
        // Segment 0 leaves the window at segment 6 (12 s): too far for 5 s.
        assert_eq!(window.acquire(&mut state, 9 * S, 1, 5 * S), Ok(12 * S));
        assert_eq!(window.acquire(&mut state, 9 * S, 3, 5 * S), Ok(12 * S));
        assert_eq!(
            window.acquire(&mut state, 9 * S, 1, 5 * S),
            Err(Denied::Wait(15 * S))
        );
    }

    #[test]
    fn carried_counts_are_kept_and_counted_no_shorter() {
        let window = window(0);
        let mut state = window.fresh();
        window.acquire(&mut state, S, 3, 0).unwrap();
        window.acquire(&mut state, 5 * S, 1, 0).unwrap();
        // Same segments, a higher limit: the 4 admitted still count.
        let higher = Segments::new(6, 2 * S, 6, 0);
        let mut carried = window.carry(&higher, &state, 7 * S);
        assert_eq!(
            higher.acquire(&mut carried, 7 * S, 3, 0),
            Err(Denied::Wait(5 * S))
        );
        assert_eq!(higher.acquire(&mut carried, 7 * S, 2, 0), Ok(7 * S));
        // Segments of 3 s: the 3 of segment 0 (0-2 s) land in 0-3 s, the 1
        // of segment 2 (4-6 s) in 3-6 s; a window of 4 segments keeps both.
        let longer = Segments::new(4, 3 * S, 4, 0);
        let mut carried = window.carry(&longer, &state, 6 * S);
        assert_eq!(
            longer.acquire(&mut carried, 6 * S, 1, 0),
            Err(Denied::Wait(6 * S))
        );
        assert_eq!(longer.idle_at(&carried), 15 * S);
        // A ring too short for them: the old counts move forward, not out.
        let short = Segments::new(4, S, 1, 0);
        let mut carried = window.carry(&short, &state, 5 * S);
        assert_eq!(
            short.acquire(&mut carried, 5 * S, 1, 0),
            Err(Denied::Wait(S))
        );
        // Counts the window no longer holds, or an empty window: nothing.
        assert_eq!(window.carry(&short, &state, 12 * S).total, 1);
        assert_eq!(window.carry(&short, &state, 16 * S).total, 0);
        assert_eq!(window.carry(&short, &window.fresh(), 0).total, 0);
    }

    #[test]
    fn idle_once_the_last_admission_leaves_the_window() {
        let window = window(0);
        let mut state = window.fresh();
        assert_eq!(window.idle_at(&state), 0);
        window.acquire(&mut state, 3 * S, 1, 0).unwrap();
        assert_eq!(window.idle_at(&state), 14 * S);
    }
}
