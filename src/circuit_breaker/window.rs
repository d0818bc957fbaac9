//! The closed breaker's memory of recent calls, lock-free.
//!
//! Every call of a closed breaker records into its window, so recording takes
//! atomics only. Running totals make evaluation O(1): a count window adjusts
//! them by the difference between the slot it overwrites and the new call; a
//! time window subtracts a bucket when it ages out. A slot or bucket is always
//! written before the totals, so concurrent writers leave the totals equal to
//! the sum of the slots once they are done; a reader in between may see them
//! off by the calls in flight, which is clamped to stay a valid rate.
//!
//! A breaker that is observed also keeps each call's duration: a count
//! window in the call's slot, a time window as a sum and a maximum per
//! bucket. The sum is a total like the others; the maximum is found when the
//! handle reads it, by scanning the slots or buckets.

use super::config::FailureModel;
use crate::{
    clock::Instant,
    sync::{AtomicI64, AtomicU64, Mutex, Ordering, lock},
};

/// What one finished call adds to the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sample {
    pub(crate) failure: bool,
    pub(crate) slow: bool,
    /// How long it took in nanoseconds, when durations are kept.
    pub(crate) nanos: Option<u64>,
}

/// One call as a count window's slot holds it: flags, and above them how
/// long it took when durations are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot(u64);

/// A slot that holds a call (an empty slot is 0).
const PRESENT: u64 = 1;
const FAILURE: u64 = 2;
const SLOW: u64 = 4;
/// Its duration is kept: no two calls are then alike, even of 0 ns.
const TIMED: u64 = 8;
/// The bits of a slot below its duration.
const FLAG_BITS: u32 = 4;
/// The longest duration a slot holds (36 years): longer is counted as this.
const MAX_NANOS: u64 = u64::MAX >> FLAG_BITS;

/// A fast success whose duration is not kept: the healthy steady state.
const HEALTHY: Sample = Sample {
    failure: false,
    slow: false,
    nanos: None,
};

impl Slot {
    fn of(sample: Sample) -> Slot {
        let flag = |set: bool, flag: u64| if set { flag } else { 0 };
        let duration = sample
            .nanos
            .map_or(0, |nanos| nanos.min(MAX_NANOS) << FLAG_BITS | TIMED);
        Slot(duration | PRESENT | flag(sample.failure, FAILURE) | flag(sample.slow, SLOW))
    }

    /// How long its call took, in nanoseconds (0 if not kept).
    fn nanos(self) -> u64 {
        self.0 >> FLAG_BITS
    }

    /// What it adds to a window's totals (nothing for an empty slot).
    fn counts(self) -> Counts {
        let bit = |flag: u64| i64::from(self.0 & flag == flag);
        Counts {
            calls: bit(PRESENT),
            failures: bit(FAILURE),
            slow: bit(SLOW),
            slow_failures: bit(FAILURE | SLOW),
            nanos: self.nanos() as i64,
        }
    }
}

/// The window's counts at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    /// Calls in the window (0 for the consecutive-failures model).
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) slow: u64,
    /// Slow calls that also failed (read for the handle only: 0 in the
    /// counts a call's record returns).
    pub(crate) slow_failures: u64,
    /// Failures since the last success (consecutive-failures model only).
    pub(crate) consecutive_failures: u64,
}

/// The durations of a window's calls, in nanoseconds: summed, and the
/// longest (read for the handle only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Durations {
    pub(crate) nanos: u64,
    pub(crate) max_nanos: u64,
}

impl Stats {
    /// Failures over calls, if any calls.
    pub(crate) fn failure_rate(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.failures as f64 / self.calls as f64)
    }

    /// Slow calls over calls, if any calls.
    pub(crate) fn slow_call_rate(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.slow as f64 / self.calls as f64)
    }
}

pub(crate) enum Window {
    Consecutive(AtomicU64),
    Count(CountWindow),
    Time(TimeWindow),
}

impl Window {
    pub(crate) fn new(model: FailureModel) -> Window {
        match model {
            FailureModel::ConsecutiveFailures(_) => Window::Consecutive(AtomicU64::new(0)),
            FailureModel::CountWindow(size) => Window::Count(CountWindow::new(size)),
            FailureModel::TimeWindow { window, buckets } => {
                Window::Time(TimeWindow::new(window.as_nanos(), buckets))
            }
        }
    }

    /// Whether this is the consecutive-failures model's count.
    pub(crate) fn is_consecutive(&self) -> bool {
        matches!(self, Window::Consecutive(_))
    }

    /// Whether recording needs the time (only the time window does).
    pub(crate) fn needs_time(&self) -> bool {
        matches!(self, Window::Time(_))
    }

    /// Records one call that finished at `now`; returns the counts after it.
    #[inline]
    pub(crate) fn record(&self, now: Instant, sample: Sample) -> Stats {
        match self {
            Window::Consecutive(failures) => {
                let consecutive_failures = if sample.failure {
                    failures.fetch_add(1, Ordering::AcqRel) + 1
                } else {
                    // A load first: a healthy service writes nothing.
                    if failures.load(Ordering::Relaxed) != 0 {
                        failures.store(0, Ordering::Release);
                    }
                    0
                };
                Stats {
                    consecutive_failures,
                    ..Stats::default()
                }
            }
            Window::Count(window) => window.record(sample),
            Window::Time(window) => window.record(now, sample),
        }
    }

    /// The counts at `now`.
    pub(crate) fn stats(&self, now: Instant) -> Stats {
        match self {
            Window::Consecutive(failures) => Stats {
                consecutive_failures: failures.load(Ordering::Acquire),
                ..Stats::default()
            },
            Window::Count(window) => window.totals.all(),
            Window::Time(window) => {
                window.advance(window.period(now));
                window.totals.all()
            }
        }
    }

    /// The durations of the calls its last [`stats`](Self::stats) counted.
    pub(crate) fn durations(&self) -> Durations {
        let (totals, max_nanos) = match self {
            Window::Consecutive(_) => return Durations::default(),
            Window::Count(window) => (&window.totals, window.max_nanos()),
            Window::Time(window) => (&window.totals, window.max_nanos()),
        };
        Durations {
            nanos: totals.nanos.load(Ordering::Acquire).max(0) as u64,
            max_nanos,
        }
    }

    /// Whether the window can become `model` while it runs: the same kind,
    /// within the memory allocated for it when built (a count window's
    /// slots, a time window's buckets).
    pub(crate) fn fits(&self, model: FailureModel) -> bool {
        match (self, model) {
            (Window::Consecutive(_), FailureModel::ConsecutiveFailures(_)) => true,
            (Window::Count(window), FailureModel::CountWindow(size)) => {
                size as usize <= window.slots.len()
            }
            (Window::Time(window), FailureModel::TimeWindow { buckets, .. }) => {
                buckets as usize <= window.buckets.len()
            }
            _ => false,
        }
    }

    /// How much memory it holds, as the failure model that would fill it.
    pub(crate) fn allocated(&self) -> String {
        match self {
            Window::Consecutive(_) => "no window".to_owned(),
            Window::Count(window) => format!("a count window of {} calls", window.slots.len()),
            Window::Time(window) => format!("a time window of {} buckets", window.buckets.len()),
        }
    }

    /// Becomes `model` (which it [`fits`](Self::fits)) at `now`, keeping
    /// its calls: a count window its latest ones, a time window those of
    /// the new window, each counted from its bucket's last instant.
    pub(crate) fn resize(&self, model: FailureModel, now: Instant) {
        match (self, model) {
            (Window::Count(window), FailureModel::CountWindow(size)) => window.resize(size),
            (
                Window::Time(window),
                FailureModel::TimeWindow {
                    window: length,
                    buckets,
                },
            ) => {
                window.resize(length.as_nanos(), buckets, now);
            }
            _ => {}
        }
    }

    /// Forgets every call (the breaker has just closed).
    pub(crate) fn reset(&self) {
        match self {
            Window::Consecutive(failures) => failures.store(0, Ordering::Release),
            Window::Count(window) => window.reset(),
            Window::Time(window) => window.reset(),
        }
    }
}

/// What some calls add to a window's totals: signed, to take away as well.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    calls: i64,
    failures: i64,
    slow: i64,
    slow_failures: i64,
    /// Their durations summed, in nanoseconds (wrapping: exact as long as
    /// the true sum of a window fits).
    nanos: i64,
}

impl Counts {
    fn fields(self) -> [i64; 5] {
        [
            self.calls,
            self.failures,
            self.slow,
            self.slow_failures,
            self.nanos,
        ]
    }

    /// `self − other`.
    fn minus(self, other: Counts) -> Counts {
        Counts {
            calls: self.calls - other.calls,
            failures: self.failures - other.failures,
            slow: self.slow - other.slow,
            slow_failures: self.slow_failures - other.slow_failures,
            nanos: self.nanos.wrapping_sub(other.nanos),
        }
    }
}

/// Calls, failures, slow calls, slow failures and durations, signed so that
/// a subtraction racing ahead of its addition cannot wrap around.
struct Totals {
    calls: AtomicI64,
    failures: AtomicI64,
    slow: AtomicI64,
    slow_failures: AtomicI64,
    nanos: AtomicI64,
}

impl Totals {
    fn new() -> Totals {
        Totals {
            calls: AtomicI64::new(0),
            failures: AtomicI64::new(0),
            slow: AtomicI64::new(0),
            slow_failures: AtomicI64::new(0),
            nanos: AtomicI64::new(0),
        }
    }

    fn each(&self) -> [&AtomicI64; 5] {
        [
            &self.calls,
            &self.failures,
            &self.slow,
            &self.slow_failures,
            &self.nanos,
        ]
    }

    #[inline]
    fn add(&self, counts: Counts) {
        for (total, delta) in self.each().into_iter().zip(counts.fields()) {
            if delta != 0 {
                total.fetch_add(delta, Ordering::AcqRel);
            }
        }
    }

    /// The counts a decision needs (not the slow failures).
    fn stats(&self) -> Stats {
        let calls = self.calls.load(Ordering::Acquire).max(0) as u64;
        let clamp = |n: i64| (n.max(0) as u64).min(calls);
        Stats {
            calls,
            failures: clamp(self.failures.load(Ordering::Acquire)),
            slow: clamp(self.slow.load(Ordering::Acquire)),
            ..Stats::default()
        }
    }

    /// Every count, for the handle.
    fn all(&self) -> Stats {
        let stats = self.stats();
        let slow_failures = self.slow_failures.load(Ordering::Acquire).max(0) as u64;
        Stats {
            slow_failures: slow_failures.min(stats.slow).min(stats.failures),
            ..stats
        }
    }

    /// Takes every count, leaving zeros: what it held, to subtract from
    /// totals that summed it.
    fn take(&self) -> Counts {
        let [calls, failures, slow, slow_failures, nanos] =
            self.each().map(|total| total.swap(0, Ordering::AcqRel));
        Counts {
            calls,
            failures,
            slow,
            slow_failures,
            nanos,
        }
    }

    /// Subtracts `counts` taken from a part of what these totals sum.
    fn subtract(&self, counts: Counts) {
        self.add(Counts::default().minus(counts));
    }
}

/// The last `n` calls, a word each (how it ended, and how long it took when
/// durations are kept), in slots allocated for the size the window was
/// built with (it may be made smaller, and grow back, live).
pub(crate) struct CountWindow {
    slots: Box<[AtomicU64]>,
    /// The slots in use: `n`.
    size: AtomicU64,
    cursor: AtomicU64,
    totals: Totals,
}

impl CountWindow {
    fn new(size: u32) -> CountWindow {
        CountWindow {
            slots: (0..size).map(|_| AtomicU64::new(0)).collect(),
            size: AtomicU64::new(u64::from(size)),
            cursor: AtomicU64::new(0),
            totals: Totals::new(),
        }
    }

    #[inline]
    fn record(&self, sample: Sample) -> Stats {
        let stats = self.totals.stats();
        let size = self.size.load(Ordering::Relaxed);
        // A window full of fast successes is left as it is by one more: the
        // slots all hold the same, so neither the slot overwritten nor the
        // place of later calls in the ring changes anything. The healthy
        // steady state thus writes nothing, and threads sharing the breaker
        // do not contend on the cursor. (Not so when durations are kept:
        // each slot holds its own.)
        if sample == HEALTHY && stats.calls == size && stats.failures == 0 && stats.slow == 0 {
            return stats;
        }
        let index = self.cursor.fetch_add(1, Ordering::Relaxed) % size;
        let slot = &self.slots[index as usize];
        let new = Slot::of(sample).0;
        // A load first: overwriting a call with one that ended the same way
        // (the steady state of a healthy service) changes nothing.
        if slot.load(Ordering::Relaxed) != new {
            self.put(slot, new);
        }
        self.totals.stats()
    }

    /// Empties every slot. Each slot is swapped out and its call
    /// subtracted from the totals, as a recorder adds what it swaps in:
    /// however they interleave, the totals end equal to the slots.
    fn reset(&self) {
        for slot in self.slots.iter() {
            self.put(slot, 0);
        }
        self.cursor.store(0, Ordering::Release);
    }

    /// Stores `new` in `slot` and moves the totals by the difference.
    fn put(&self, slot: &AtomicU64, new: u64) {
        let old = slot.swap(new, Ordering::AcqRel);
        if old != new {
            self.totals
                .add(Slot(new).counts().minus(Slot(old).counts()));
        }
    }

    /// The longest duration in the window, in nanoseconds.
    fn max_nanos(&self) -> u64 {
        let size = self.size.load(Ordering::Relaxed) as usize;
        self.slots[..size]
            .iter()
            .map(|slot| Slot(slot.load(Ordering::Relaxed)).nanos())
            .max()
            .unwrap_or(0)
    }

    /// Uses `size` slots from now on, keeping the latest calls that fit,
    /// in their order.
    fn resize(&self, size: u32) {
        let old = self.size.load(Ordering::Relaxed);
        let cursor = self.cursor.load(Ordering::Acquire);
        // The calls held, newest first: the slots before the cursor.
        let kept: Vec<u64> = (1..=old)
            .map(|back| self.slots[((cursor + old - back) % old) as usize].load(Ordering::Acquire))
            .filter(|slot| slot & PRESENT != 0)
            .take(size as usize)
            .collect();
        self.reset();
        self.size.store(u64::from(size), Ordering::Relaxed);
        for (index, &slot) in kept.iter().rev().enumerate() {
            self.put(&self.slots[index], slot);
        }
        self.cursor.store(kept.len() as u64, Ordering::Release);
    }
}

/// The calls of the last `len` periods of `width` nanoseconds, in buckets
/// allocated for the number the window was built with (both may change
/// live, the number up to that).
pub(crate) struct TimeWindow {
    width: AtomicU64,
    /// The buckets in use.
    len: AtomicU64,
    buckets: Box<[Bucket]>,
    /// The newest period any bucket holds.
    head: AtomicU64,
    totals: Totals,
    /// Taken to move the window forward (once a period at most) and to reset.
    rotation: Mutex<()>,
}

struct Bucket {
    /// The period this bucket holds: `now / width`.
    period: AtomicU64,
    counts: Totals,
    /// The longest duration of its calls, in nanoseconds.
    max_nanos: AtomicU64,
}

impl Bucket {
    /// Takes its calls, leaving it empty: their counts and longest
    /// duration.
    fn take(&self) -> (Counts, u64) {
        let max_nanos = self.max_nanos.swap(0, Ordering::AcqRel);
        (self.counts.take(), max_nanos)
    }
}

/// The bytes of one bucket of a time window.
pub(crate) const BUCKET_BYTES: u128 = size_of::<Bucket>() as u128;

impl TimeWindow {
    fn new(window_nanos: u128, buckets: u32) -> TimeWindow {
        let width = u64::try_from(window_nanos / u128::from(buckets)).unwrap_or(u64::MAX);
        TimeWindow {
            width: AtomicU64::new(width),
            len: AtomicU64::new(u64::from(buckets)),
            buckets: (0..u64::from(buckets))
                .map(|period| Bucket {
                    period: AtomicU64::new(period),
                    counts: Totals::new(),
                    max_nanos: AtomicU64::new(0),
                })
                .collect(),
            head: AtomicU64::new(u64::from(buckets) - 1),
            totals: Totals::new(),
            rotation: Mutex::new(()),
        }
    }

    fn period(&self, now: Instant) -> u64 {
        now.as_nanos() / self.width.load(Ordering::Relaxed)
    }

    fn record(&self, now: Instant, sample: Sample) -> Stats {
        let period = self.period(now);
        self.advance(period);
        let len = self.len.load(Ordering::Relaxed);
        let bucket = &self.buckets[(period % len) as usize];
        // A call that finished in a period already aged out (its thread was
        // descheduled across a whole window) is not counted.
        if bucket.period.load(Ordering::Acquire) == period {
            let counts = Slot::of(sample).counts();
            bucket.counts.add(counts);
            if let Some(nanos) = sample.nanos {
                bucket.max_nanos.fetch_max(nanos, Ordering::AcqRel);
            }
            self.totals.add(counts);
        }
        self.totals.stats()
    }

    /// The longest duration in the window, in nanoseconds (moved forward
    /// to the time read).
    fn max_nanos(&self) -> u64 {
        let len = self.len.load(Ordering::Relaxed) as usize;
        self.buckets[..len]
            .iter()
            .map(|bucket| bucket.max_nanos.load(Ordering::Acquire))
            .max()
            .unwrap_or(0)
    }

    /// Ages out the buckets older than the window ending in `period`.
    fn advance(&self, period: u64) {
        if period <= self.head.load(Ordering::Acquire) {
            return;
        }
        let _rotation = lock(&self.rotation);
        self.renew(period);
    }

    /// Moves the window forward to end in `period`, if later (the rotation
    /// lock held): periods head+1..=period take over the buckets of the
    /// periods `len` earlier, their calls aged out. Of more than `len`
    /// periods, the latest `len` renew every bucket. The head moves last: a
    /// recorder that finds its period at most the head finds its bucket
    /// renewed.
    fn renew(&self, period: u64) {
        let head = self.head.load(Ordering::Acquire);
        let len = self.len.load(Ordering::Relaxed);
        for renewed in (head + 1..=period).rev().take(len as usize) {
            let bucket = &self.buckets[(renewed % len) as usize];
            self.totals.subtract(bucket.take().0);
            bucket.period.store(renewed, Ordering::Release);
        }
        self.head.fetch_max(period, Ordering::AcqRel);
    }

    /// Empties every bucket, subtracting what each held from the totals
    /// (as ageing out does): a recorder adding meanwhile to a bucket and
    /// the totals leaves them equal.
    fn reset(&self) {
        let _rotation = lock(&self.rotation);
        for bucket in self.buckets.iter() {
            self.totals.subtract(bucket.take().0);
        }
    }

    /// Becomes a window of `window_nanos` in `buckets` buckets at `now`:
    /// the calls it holds at `now` move each to the new bucket holding its
    /// old bucket's last instant (`now` at the latest), and those the new
    /// window does not reach are let go.
    fn resize(&self, window_nanos: u128, buckets: u32, now: Instant) {
        let _rotation = lock(&self.rotation);
        let (old_width, old_len) = (
            self.width.load(Ordering::Relaxed),
            self.len.load(Ordering::Relaxed),
        );
        // What it holds at `now`, first: no call the window has aged out
        // comes back in a longer one.
        self.renew(now.as_nanos() / old_width);
        // Every bucket emptied, its counts subtracted from the totals (a
        // recorder adding meanwhile leaves them equal), each kept with its
        // last instant to be counted again.
        let mut held: Vec<(u64, Counts, u64)> = self
            .buckets
            .iter()
            .map(|bucket| {
                let (counts, max_nanos) = bucket.take();
                self.totals.subtract(counts);
                let period = bucket.period.load(Ordering::Acquire);
                let last = period.saturating_add(1).saturating_mul(old_width) - 1;
                (last.min(now.as_nanos()), counts, max_nanos)
            })
            .collect();
        // The buckets past the length hold none of the window's calls (only
        // what a recorder that read a longer length may have added).
        held.truncate(old_len as usize);
        let len = u64::from(buckets);
        let width = u64::try_from(window_nanos / u128::from(buckets)).unwrap_or(u64::MAX);
        let newest = now.as_nanos() / width;
        let oldest = newest.saturating_sub(len - 1);
        self.width.store(width, Ordering::Relaxed);
        self.len.store(len, Ordering::Relaxed);
        for (index, bucket) in self.buckets[..len as usize].iter().enumerate() {
            // The period of `oldest..=newest` this bucket holds.
            let offset = (index as u64 + len - oldest % len) % len;
            bucket.period.store(oldest + offset, Ordering::Release);
        }
        self.head.store(newest, Ordering::Release);
        for (last, counts, max_nanos) in held {
            let period = last / width;
            if period < oldest {
                continue;
            }
            let bucket = &self.buckets[(period % len) as usize];
            bucket.counts.add(counts);
            bucket.max_nanos.fetch_max(max_nanos, Ordering::AcqRel);
            self.totals.add(counts);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;

    const FAILED: Sample = Sample {
        failure: true,
        ..HEALTHY
    };

    fn at(secs: u64) -> Instant {
        Instant::ZERO + Duration::from_secs(secs)
    }

    fn counts(window: &Window, now: Instant) -> (u64, u64) {
        let stats = window.stats(now);
        (stats.calls, stats.failures)
    }

    #[test]
    fn a_count_window_made_smaller_keeps_its_latest_calls_and_grows_back_empty() {
        let window = Window::new(FailureModel::CountWindow(6));
        for i in 0..8 {
            // F F S S F S S F: the last six are S S F S S F.
            let sample = if [0, 1, 4, 7].contains(&i) {
                FAILED
            } else {
                HEALTHY
            };
            window.record(at(0), sample);
        }
        assert_eq!(counts(&window, at(0)), (6, 2));
        window.resize(FailureModel::CountWindow(3), at(0));
        assert_eq!(counts(&window, at(0)), (3, 1), "S S F");
        window.record(at(0), FAILED);
        assert_eq!(counts(&window, at(0)), (3, 2), "S F F: the oldest went");
        window.resize(FailureModel::CountWindow(6), at(0));
        assert_eq!(
            counts(&window, at(0)),
            (3, 2),
            "room again, nothing found again"
        );
        for _ in 0..3 {
            window.record(at(0), HEALTHY);
        }
        assert_eq!(counts(&window, at(0)), (6, 2));
        window.record(at(0), HEALTHY);
        assert_eq!(counts(&window, at(0)), (6, 2), "the oldest (S) went");
        assert!(window.fits(FailureModel::CountWindow(6)));
        assert!(!window.fits(FailureModel::CountWindow(7)));
        assert!(!window.fits(FailureModel::ConsecutiveFailures(3)));
    }

    /// A call that took `millis`.
    fn took(millis: u64) -> Sample {
        Sample {
            nanos: Some(millis * 1_000_000),
            ..HEALTHY
        }
    }

    /// The durations' sum and maximum, in milliseconds.
    fn durations(window: &Window, now: Instant) -> (u64, u64) {
        window.stats(now);
        let durations = window.durations();
        (durations.nanos / 1_000_000, durations.max_nanos / 1_000_000)
    }

    #[test]
    fn a_count_window_keeps_the_durations_of_its_calls_through_a_resize() {
        let window = Window::new(FailureModel::CountWindow(3));
        for millis in [50, 10, 20, 30] {
            window.record(at(0), took(millis));
        }
        assert_eq!(durations(&window, at(0)), (60, 30), "the 50 ms call left");
        // Healthy calls of no duration still push the others out.
        window.record(at(0), took(0));
        window.record(at(0), took(0));
        assert_eq!(durations(&window, at(0)), (30, 30));
        window.record(at(0), took(5));
        window.resize(FailureModel::CountWindow(2), at(0));
        assert_eq!(durations(&window, at(0)), (5, 5), "the latest two: 0 and 5");
        window.reset();
        assert_eq!(durations(&window, at(0)), (0, 0));
    }

    #[test]
    fn a_time_window_keeps_the_durations_of_its_calls_through_a_resize() {
        // 10 s in 5 buckets of 2 s.
        let window = Window::new(FailureModel::TimeWindow {
            window: Duration::from_secs(10),
            buckets: 5,
        });
        window.record(at(1), took(70));
        window.record(at(9), took(20));
        window.record(at(9), took(40));
        assert_eq!(durations(&window, at(9)), (130, 70));
        // 4 s in 2 buckets at 9 s: only the calls of 9 s stay.
        window.resize(
            FailureModel::TimeWindow {
                window: Duration::from_secs(4),
                buckets: 2,
            },
            at(9),
        );
        assert_eq!(durations(&window, at(9)), (60, 40));
        assert_eq!(durations(&window, at(12)), (0, 0), "aged out");
        window.record(at(12), took(3));
        window.reset();
        assert_eq!(durations(&window, at(12)), (0, 0));
    }

    #[test]
    fn a_time_window_resized_keeps_the_calls_its_new_length_reaches() {
        // 10 s in 5 buckets of 2 s.
        let window = Window::new(FailureModel::TimeWindow {
            window: Duration::from_secs(10),
            buckets: 5,
        });
        window.record(at(1), FAILED); // bucket 0-2 s
        window.record(at(5), HEALTHY); // bucket 4-6 s
        window.record(at(9), FAILED); // bucket 8-10 s
        assert_eq!(counts(&window, at(9)), (3, 2));
        // 4 s in 4 buckets of 1 s, at 9 s: the buckets end at 2, 6 and 10 s
        // (9 s at the latest), so their calls count as made at 1.999, 5.999
        // and 9 s; the new window at 9 s, 6-10 s, keeps the last one.
        window.resize(
            FailureModel::TimeWindow {
                window: Duration::from_secs(4),
                buckets: 4,
            },
            at(9),
        );
        assert_eq!(counts(&window, at(9)), (1, 1));
        // It leaves the window at 13 s.
        assert_eq!(counts(&window, at(12)), (1, 1));
        assert_eq!(counts(&window, at(13)), (0, 0));
        window.record(at(13), HEALTHY);
        assert_eq!(counts(&window, at(13)), (1, 0));
        // Longer again, in 2 buckets: the call of 13 s stays.
        window.resize(
            FailureModel::TimeWindow {
                window: Duration::from_secs(20),
                buckets: 2,
            },
            at(14),
        );
        assert_eq!(counts(&window, at(14)), (1, 0));
        assert_eq!(counts(&window, at(29)), (1, 0));
        assert_eq!(counts(&window, at(30)), (0, 0));
        assert!(!window.fits(FailureModel::TimeWindow {
            window: Duration::from_secs(20),
            buckets: 6,
        }));
    }

    /// A time window's calls as a plain list: each call in the period it
    /// was made in, a period aged out once the window ends `len` periods
    /// later; a resize places each call at the last instant of its period
    /// (`now` at the latest) and keeps those the new window reaches.
    struct TimedCalls {
        width: u64,
        len: u64,
        /// The newest period.
        head: u64,
        calls: Vec<(u64, Sample)>,
    }

    impl TimedCalls {
        fn new(window_nanos: u64, buckets: u64) -> TimedCalls {
            TimedCalls {
                width: window_nanos / buckets,
                len: buckets,
                head: buckets - 1,
                calls: Vec::new(),
            }
        }

        fn advance(&mut self, now: u64) {
            self.head = self.head.max(now / self.width);
            let (head, len) = (self.head, self.len);
            self.calls.retain(|&(period, _)| period + len > head);
        }

        fn record(&mut self, now: u64, sample: Sample) {
            self.advance(now);
            self.calls.push((now / self.width, sample));
        }

        fn resize(&mut self, window_nanos: u64, buckets: u64, now: u64) {
            self.advance(now);
            let old_width = self.width;
            *self = TimedCalls {
                head: now / (window_nanos / buckets),
                calls: std::mem::take(&mut self.calls),
                ..TimedCalls::new(window_nanos, buckets)
            };
            let oldest = (self.head + 1).saturating_sub(buckets);
            let width = self.width;
            self.calls = std::mem::take(&mut self.calls)
                .into_iter()
                .map(|(period, sample)| (((period + 1) * old_width - 1).min(now) / width, sample))
                .filter(|&(period, _)| period >= oldest)
                .collect();
        }

        /// Calls, failures, slow calls, slow failures, summed and longest
        /// duration.
        fn stats(&mut self, now: u64) -> [u64; 6] {
            self.advance(now);
            let count = |test: fn(&Sample) -> bool| {
                self.calls.iter().filter(|(_, sample)| test(sample)).count() as u64
            };
            let nanos = self
                .calls
                .iter()
                .map(|(_, sample)| sample.nanos.unwrap_or(0));
            [
                self.calls.len() as u64,
                count(|sample| sample.failure),
                count(|sample| sample.slow),
                count(|sample| sample.failure && sample.slow),
                nanos.clone().sum(),
                nanos.max().unwrap_or(0),
            ]
        }
    }

    #[derive(Clone, Debug)]
    enum Step {
        Record(Sample),
        Resize { window_millis: u64, buckets: u64 },
        Stats,
    }

    fn step(buckets: u64) -> impl Strategy<Value = (u64, Step)> {
        let sample = (
            any::<bool>(),
            any::<bool>(),
            proptest::option::of(0..100u64),
        )
            .prop_map(|(failure, slow, millis)| Sample {
                failure,
                slow,
                nanos: millis.map(|millis| millis * 1_000_000),
            });
        let step = prop_oneof![
            4 => sample.prop_map(Step::Record),
            1 => (1..=10_000u64, 1..=buckets)
                .prop_map(|(window_millis, buckets)| Step::Resize { window_millis, buckets }),
            2 => Just(Step::Stats),
        ];
        // Milliseconds since the step before.
        (0..3_000u64, step)
    }

    fn steps() -> impl Strategy<Value = (u64, u64, Vec<(u64, Step)>)> {
        (1..=10_000u64, 1..=8u64).prop_flat_map(|(window_millis, buckets)| {
            (
                Just(window_millis),
                Just(buckets),
                proptest::collection::vec(step(buckets), 1..60),
            )
        })
    }

    proptest! {
        /// Resized live at random, a time window counts what a list of
        /// its calls does.
        #[test]
        fn a_time_window_resized_live_counts_what_a_list_of_its_calls_does(
            (window_millis, buckets, steps) in steps()
        ) {
            let millis = |millis: u64| millis * 1_000_000;
            let model_of = |window_millis: u64, buckets: u64| FailureModel::TimeWindow {
                window: Duration::from_millis(window_millis),
                buckets: buckets as u32,
            };
            let window = Window::new(model_of(window_millis, buckets));
            let mut calls = TimedCalls::new(millis(window_millis), buckets);
            let mut now = 0;
            for (after, step) in steps {
                now += millis(after);
                let instant = Instant::ZERO + Duration::from_nanos(now);
                match step {
                    Step::Record(sample) => {
                        window.record(instant, sample);
                        calls.record(now, sample);
                    }
                    Step::Resize { window_millis, buckets } => {
                        window.resize(model_of(window_millis, buckets), instant);
                        calls.resize(millis(window_millis), buckets, now);
                    }
                    Step::Stats => {}
                }
                let stats = window.stats(instant);
                let durations = window.durations();
                let counted = [
                    stats.calls,
                    stats.failures,
                    stats.slow,
                    stats.slow_failures,
                    durations.nanos,
                    durations.max_nanos,
                ];
                prop_assert_eq!(counted, calls.stats(now), "at {} ns", now);
            }
        }
    }
}
