//! The closed breaker's memory of recent calls, lock-free.
//!
//! Every call of a closed breaker records into its window, so recording takes
//! atomics only. Running totals make evaluation O(1): a count window adjusts
//! them by the difference between the slot it overwrites and the new call; a
//! time window subtracts a bucket when it ages out. A slot or bucket is always
//! written before the totals, so concurrent writers leave the totals equal to
//! the sum of the slots once they are done; a reader in between may see them
//! off by the calls in flight, which is clamped to stay a valid rate.

use super::config::FailureModel;
use crate::{
    clock::Instant,
    sync::{AtomicI64, AtomicU8, AtomicU64, Mutex, Ordering, lock},
};

/// What one finished call adds to the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sample {
    pub(crate) failure: bool,
    pub(crate) slow: bool,
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

    /// Forgets every call (the breaker has just closed).
    pub(crate) fn reset(&self) {
        match self {
            Window::Consecutive(failures) => failures.store(0, Ordering::Release),
            Window::Count(window) => window.reset(),
            Window::Time(window) => window.reset(),
        }
    }
}

/// Calls, failures, slow calls and slow failures, signed so that a
/// subtraction racing ahead of its addition cannot wrap around.
struct Totals {
    calls: AtomicI64,
    failures: AtomicI64,
    slow: AtomicI64,
    slow_failures: AtomicI64,
}

impl Totals {
    fn new() -> Totals {
        Totals {
            calls: AtomicI64::new(0),
            failures: AtomicI64::new(0),
            slow: AtomicI64::new(0),
            slow_failures: AtomicI64::new(0),
        }
    }

    fn add(&self, calls: i64, failures: i64, slow: i64, slow_failures: i64) {
        for (total, delta) in [
            (&self.calls, calls),
            (&self.failures, failures),
            (&self.slow, slow),
            (&self.slow_failures, slow_failures),
        ] {
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
            slow_failures: 0,
            consecutive_failures: 0,
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

    fn clear(&self) {
        self.calls.store(0, Ordering::Release);
        self.failures.store(0, Ordering::Release);
        self.slow.store(0, Ordering::Release);
        self.slow_failures.store(0, Ordering::Release);
    }
}

/// The last `n` calls, one byte each.
pub(crate) struct CountWindow {
    slots: Box<[AtomicU8]>,
    cursor: AtomicU64,
    totals: Totals,
}

const HEALTHY: Sample = Sample {
    failure: false,
    slow: false,
};

const PRESENT: u8 = 1;
const FAILURE: u8 = 2;
const SLOW: u8 = 4;

fn encode(sample: Sample) -> u8 {
    PRESENT | if sample.failure { FAILURE } else { 0 } | if sample.slow { SLOW } else { 0 }
}

/// Both flags: a slow failure.
const SLOW_FAILURE: u8 = FAILURE | SLOW;

/// 1 when `slot` has every bit of `flag`.
fn bit(slot: u8, flag: u8) -> i64 {
    i64::from(slot & flag == flag)
}

impl CountWindow {
    fn new(size: u32) -> CountWindow {
        CountWindow {
            slots: (0..size).map(|_| AtomicU8::new(0)).collect(),
            cursor: AtomicU64::new(0),
            totals: Totals::new(),
        }
    }

    #[inline]
    fn record(&self, sample: Sample) -> Stats {
        let stats = self.totals.stats();
        // A window full of fast successes is left as it is by one more: the
        // slots all hold the same, so neither the slot overwritten nor the
        // place of later calls in the ring changes anything. The healthy
        // steady state thus writes nothing, and threads sharing the breaker
        // do not contend on the cursor.
        if sample == HEALTHY
            && stats.calls == self.slots.len() as u64
            && stats.failures == 0
            && stats.slow == 0
        {
            return stats;
        }
        let index = self.cursor.fetch_add(1, Ordering::Relaxed) % self.slots.len() as u64;
        let slot = &self.slots[index as usize];
        let new = encode(sample);
        // A load first: overwriting a call with one that ended the same way
        // (the steady state of a healthy service) changes nothing.
        if slot.load(Ordering::Relaxed) != new {
            let old = slot.swap(new, Ordering::AcqRel);
            self.totals.add(
                bit(new, PRESENT) - bit(old, PRESENT),
                bit(new, FAILURE) - bit(old, FAILURE),
                bit(new, SLOW) - bit(old, SLOW),
                bit(new, SLOW_FAILURE) - bit(old, SLOW_FAILURE),
            );
        }
        self.totals.stats()
    }

    fn reset(&self) {
        for slot in self.slots.iter() {
            slot.store(0, Ordering::Release);
        }
        self.cursor.store(0, Ordering::Release);
        self.totals.clear();
    }
}

/// The calls of the last `buckets` periods of `width` nanoseconds.
pub(crate) struct TimeWindow {
    width: u64,
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
}

/// The bytes of one bucket of a time window.
pub(crate) const BUCKET_BYTES: u128 = size_of::<Bucket>() as u128;

impl TimeWindow {
    fn new(window_nanos: u128, buckets: u32) -> TimeWindow {
        let width = u64::try_from(window_nanos / u128::from(buckets)).unwrap_or(u64::MAX);
        TimeWindow {
            width,
            buckets: (0..u64::from(buckets))
                .map(|period| Bucket {
                    period: AtomicU64::new(period),
                    counts: Totals::new(),
                })
                .collect(),
            head: AtomicU64::new(u64::from(buckets) - 1),
            totals: Totals::new(),
            rotation: Mutex::new(()),
        }
    }

    fn period(&self, now: Instant) -> u64 {
        now.as_nanos() / self.width
    }

    fn record(&self, now: Instant, sample: Sample) -> Stats {
        let period = self.period(now);
        self.advance(period);
        let bucket = &self.buckets[(period % self.buckets.len() as u64) as usize];
        // A call that finished in a period already aged out (its thread was
        // descheduled across a whole window) is not counted.
        if bucket.period.load(Ordering::Acquire) == period {
            let (failure, slow) = (i64::from(sample.failure), i64::from(sample.slow));
            bucket.counts.add(1, failure, slow, failure * slow);
            self.totals.add(1, failure, slow, failure * slow);
        }
        self.totals.stats()
    }

    /// Ages out the buckets older than the window ending in `period`.
    fn advance(&self, period: u64) {
        if period <= self.head.load(Ordering::Acquire) {
            return;
        }
        let _rotation = lock(&self.rotation);
        let head = self.head.load(Ordering::Acquire);
        if period <= head {
            return;
        }
        let len = self.buckets.len() as u64;
        // Periods head+1..=period take over the buckets of periods len
        // earlier; if more than len periods passed, every bucket is renewed.
        let first = (head + 1).max(period.saturating_sub(len - 1));
        for renewed in first..=period {
            let bucket = &self.buckets[(renewed % len) as usize];
            let calls = bucket.counts.calls.swap(0, Ordering::AcqRel);
            let failures = bucket.counts.failures.swap(0, Ordering::AcqRel);
            let slow = bucket.counts.slow.swap(0, Ordering::AcqRel);
            let slow_failures = bucket.counts.slow_failures.swap(0, Ordering::AcqRel);
            self.totals.add(-calls, -failures, -slow, -slow_failures);
            bucket.period.store(renewed, Ordering::Release);
        }
        self.head.store(period, Ordering::Release);
    }

    fn reset(&self) {
        let _rotation = lock(&self.rotation);
        for bucket in self.buckets.iter() {
            bucket.counts.clear();
        }
        self.totals.clear();
    }
}
