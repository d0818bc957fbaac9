//! Recent latencies in constant memory, for a hedging delay at a quantile:
//! a histogram of logarithmic buckets (as DDSketch: every value counted in
//! the bucket `⌈log_γ x⌉`, γ = (1 + α)/(1 − α), α = 1 %), kept for two
//! rotating windows of time on the layer's clock: the quantile is read over
//! the current window and the one before it. A quantile is read as the
//! upper edge of its bucket — never below the true one, at most 2 % (a
//! factor γ) above: a hedge at the p95 is sent for at most the slowest 5 %,
//! however the latencies fall in the buckets. (DDSketch's midpoint, within
//! 1 % either way, would hedge up to several percent more when the latencies
//! crowd near the quantile.)

use std::time::Duration;

use crate::sync::{AtomicU32, AtomicU64, Mutex, Ordering, lock};

/// The relative error of a quantile read.
const ALPHA: f64 = 0.01;
/// Buckets for 1 µs up to about 17 days (γ^1400 µs); a longer latency counts
/// in the last.
const BUCKETS: usize = 1400;

fn gamma() -> f64 {
    (1.0 + ALPHA) / (1.0 - ALPHA)
}

/// The bucket of a latency of `micros` microseconds (below 1 µs: the first).
fn bucket(micros: f64) -> usize {
    if micros <= 1.0 {
        return 0;
    }
    ((micros.ln() / gamma().ln()).ceil() as usize).min(BUCKETS - 1)
}

/// The value a bucket stands for: its upper edge, at least every value
/// counted in it and within a factor γ of each.
fn value(bucket: usize) -> Duration {
    let micros = gamma().powi(bucket as i32);
    Duration::from_nanos((micros * 1_000.0).ceil() as u64)
}

/// One window of time's counts.
struct Window {
    /// The window it counts: `now / width`.
    epoch: AtomicU64,
    counts: Box<[AtomicU32]>,
    total: AtomicU64,
}

impl Window {
    fn new(epoch: u64) -> Window {
        Window {
            epoch: AtomicU64::new(epoch),
            counts: (0..BUCKETS).map(|_| AtomicU32::new(0)).collect(),
            total: AtomicU64::new(0),
        }
    }
}

/// Latencies of the last two windows of `width` nanoseconds.
pub(crate) struct Latencies {
    width: u64,
    windows: [Window; 2],
    /// Taken to start a window afresh (once a window at most).
    rotation: Mutex<()>,
}

impl Latencies {
    /// Windows of `width` (at least a nanosecond).
    pub(crate) fn new(width: Duration) -> Latencies {
        let width = u64::try_from(width.as_nanos()).unwrap_or(u64::MAX).max(1);
        Latencies {
            width,
            windows: [Window::new(0), Window::new(1)],
            rotation: Mutex::new(()),
        }
    }

    /// The window counting `epoch`, started afresh if it counted an older
    /// one.
    fn window(&self, epoch: u64) -> &Window {
        let window = &self.windows[(epoch % 2) as usize];
        if window.epoch.load(Ordering::Acquire) != epoch {
            let _rotation = lock(&self.rotation);
            if window.epoch.load(Ordering::Acquire) != epoch {
                for count in window.counts.iter() {
                    count.store(0, Ordering::Relaxed);
                }
                window.total.store(0, Ordering::Relaxed);
                window.epoch.store(epoch, Ordering::Release);
            }
        }
        window
    }

    /// Counts a latency that ended at `now` (clock nanoseconds).
    pub(crate) fn record(&self, now: u64, latency: Duration) {
        let window = self.window(now / self.width);
        let micros = latency.as_nanos() as f64 / 1_000.0;
        window.counts[bucket(micros)].fetch_add(1, Ordering::Relaxed);
        window.total.fetch_add(1, Ordering::Relaxed);
    }

    /// The `quantile` (in (0, 1]) of the latencies of the current window
    /// and the one before at `now`, once they hold `min_samples`.
    pub(crate) fn quantile(&self, now: u64, quantile: f64, min_samples: u64) -> Option<Duration> {
        let epoch = now / self.width;
        let counted: Vec<&Window> = self
            .windows
            .iter()
            .filter(|window| {
                let at = window.epoch.load(Ordering::Acquire);
                at == epoch || at + 1 == epoch
            })
            .collect();
        let total: u64 = counted
            .iter()
            .map(|window| window.total.load(Ordering::Relaxed))
            .sum();
        if total < min_samples.max(1) {
            return None;
        }
        let rank = ((quantile * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for index in 0..BUCKETS {
            seen += counted
                .iter()
                .map(|window| u64::from(window.counts[index].load(Ordering::Relaxed)))
                .sum::<u64>();
            if seen >= rank {
                return Some(value(index));
            }
        }
        Some(value(BUCKETS - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_quantile_is_at_most_two_percent_above_and_follows_the_windows() {
        let latencies = Latencies::new(Duration::from_secs(10));
        // 1..=100 ms, once each, at 1 s.
        for ms in 1..=100u32 {
            latencies.record(1_000_000_000, MS * ms);
        }
        let p95 = latencies.quantile(1_000_000_000, 0.95, 50).unwrap();
        let above = p95.as_secs_f64() / 0.095;
        assert!((1.0..=gamma()).contains(&above), "{p95:?}");
        assert_eq!(
            latencies.quantile(1_000_000_000, 0.95, 101),
            None,
            "too few"
        );
        assert_eq!(
            latencies.quantile(1_000_000_000, 0.95, 100),
            Some(p95),
            "just enough"
        );
        // Another window: the old one still counts, then goes.
        for _ in 0..100 {
            latencies.record(12_000_000_000, MS * 500);
        }
        let p50 = latencies.quantile(12_000_000_000, 0.5, 1).unwrap();
        assert!(p50 > MS * 90, "the old window's and the new one's: {p50:?}");
        let later = latencies.quantile(25_000_000_000, 0.25, 1).unwrap();
        let above = later.as_secs_f64() / 0.5;
        assert!((1.0..=gamma()).contains(&above), "only the new: {later:?}");
        assert_eq!(
            latencies.quantile(40_000_000_000, 0.5, 1),
            None,
            "all aged out"
        );
    }

    #[test]
    fn every_bucket_stands_at_or_just_above_its_values() {
        for micros in [1.5, 10.0, 999.0, 10_900.0, 123_456.0, 8.64e10] {
            let stood = value(bucket(micros)).as_nanos() as f64 / 1_000.0;
            let above = stood / micros;
            assert!((1.0..=gamma() + 1e-9).contains(&above), "{micros}: {stood}");
        }
    }

    #[test]
    fn a_latency_past_the_last_bucket_counts_in_it() {
        let latencies = Latencies::new(Duration::from_secs(10));
        let month = Duration::from_secs(30 * 24 * 3600);
        let fortnight = Duration::from_secs(16 * 24 * 3600);
        assert!(
            bucket(fortnight.as_micros() as f64) < BUCKETS - 1,
            "a bucket of its own"
        );
        latencies.record(0, month);
        assert_eq!(bucket(month.as_micros() as f64), BUCKETS - 1);
        assert_eq!(latencies.quantile(0, 0.5, 1), Some(value(BUCKETS - 1)));
    }
}
