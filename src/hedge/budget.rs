//! The hedging budget: extra attempts at most a fraction of requests,
//! shared by every clone, so that hedging cannot double the load when every
//! call is slow (an outage, not a straggler).

use crate::sync::{AtomicU64, Ordering};

/// Thousandths of an extra attempt.
const ONE: u64 = 1_000;

/// A balance of extra attempts: each request deposits `ratio` of one, up
/// to `burst` held; each extra attempt withdraws one. Over any run of `n`
/// requests at most `ratio × n + burst` extra attempts are made.
pub(crate) struct Budget {
    /// Thousandths deposited a request.
    deposit: u64,
    /// The most thousandths held.
    cap: u64,
    balance: AtomicU64,
}

impl Budget {
    /// `ratio` (in [0, 1]) of a hedge a request, up to `burst` held (and
    /// held at first; one at least, so that deposits can add up to one).
    pub(crate) fn new(ratio: f64, burst: u32) -> Budget {
        let cap = u64::from(burst.max(1)) * ONE;
        Budget {
            deposit: (ratio * ONE as f64).round() as u64,
            cap,
            balance: AtomicU64::new(cap),
        }
    }

    /// A request arrived.
    #[inline]
    pub(crate) fn deposit(&self) {
        if self.deposit == 0 || self.balance.load(Ordering::Relaxed) >= self.cap {
            return;
        }
        let _ = self
            .balance
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |balance| {
                Some((balance + self.deposit).min(self.cap))
            });
    }

    /// Takes one extra attempt, if the balance holds one.
    pub(crate) fn withdraw(&self) -> bool {
        self.balance
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |balance| {
                balance.checked_sub(ONE)
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::Budget;

    #[test]
    fn extra_attempts_stay_within_the_ratio_plus_the_burst() {
        let budget = Budget::new(0.05, 10);
        let mut extra = 0;
        for _ in 0..10_000 {
            budget.deposit();
            extra += u32::from(budget.withdraw());
        }
        // 10 in hand, and 5 % of the 9 999 requests that found it below
        // its cap.
        assert_eq!(extra, 10 + 499);
        let none = Budget::new(0.0, 0);
        assert!(none.withdraw(), "one in hand");
        none.deposit();
        assert!(!none.withdraw(), "and no deposits");
    }
}
