//! A TTL retry budget with extreme parameters: no overflow, no wrap-around;
//! it matches a model computed in wide integers.

use std::time::Duration;

use palisade::{clock::Instant, retry::RetryBudget};
use proptest::{prelude::*, test_runner::FileFailurePersistence};

const UNIT: u128 = 1_000_000;
const DAY: Duration = Duration::from_secs(86_400);

#[test]
fn a_billion_a_second_over_a_day_stays_plenty() {
    let budget = RetryBudget::ttl(DAY, 1_000_000_000, 1.0).unwrap();
    let now = Instant::ZERO + Duration::from_secs(1);
    let before = budget.available(now);
    budget.deposit(now);
    assert!(budget.withdraw(now));
    // Beyond what 64 bits count in units: saturated, not wrapped to a few.
    assert!(
        budget.available(now) >= before - 1,
        "{}",
        budget.available(now)
    );
    assert!(budget.available(now) > 1_000_000_000_000);
}

/// The budget as documented, in `u128`: the reserve plus `ratio` a deposit
/// of the last ten slots, less a unit a withdrawal, each side capped at
/// what a `u64` holds.
struct Model {
    slot: u128,
    reserve: u128,
    ratio: u128,
    events: Vec<(u128, bool)>,
}

impl Model {
    fn new(ttl: u64, min_per_second: u32, ratio: f64) -> Model {
        Model {
            slot: u128::from(ttl).div_ceil(10),
            reserve: u128::from(min_per_second) * u128::from(ttl) * UNIT / 1_000_000_000,
            ratio: (ratio * UNIT as f64).round() as u128,
            events: Vec::new(),
        }
    }

    fn balance(&self, now: u64) -> u128 {
        let current = u128::from(now) / self.slot;
        let live = |deposit| {
            self.events
                .iter()
                .filter(|&&(n, d)| d == deposit && n <= current && current - n < 10)
                .count() as u128
        };
        let cap = u128::from(u64::MAX);
        let credit = (self.reserve.min(cap) + live(true) * self.ratio).min(cap);
        credit.saturating_sub((live(false) * UNIT).min(cap))
    }
}

#[derive(Clone, Debug)]
enum Op {
    Deposit,
    Withdraw,
    Available,
}

fn ops() -> impl Strategy<Value = Vec<(u64, Op)>> {
    let op = prop_oneof![Just(Op::Deposit), Just(Op::Withdraw), Just(Op::Available)];
    proptest::collection::vec((0u64..4, op), 1..200)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: crate::cases(2_000),
        // The module's file is not found from its path: name the file.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/it/hardening/budget.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn extreme_parameters_match_the_wide_model(
        ttl in prop_oneof![Just(1u64), Just(86_400_000_000_000), 1u64..=86_400_000_000_000],
        min_per_second in prop_oneof![Just(0u32), Just(u32::MAX), any::<u32>()],
        ratio in prop_oneof![Just(0.0f64), Just(1000.0), 0.0f64..=1000.0],
        ops in ops(),
    ) {
        let budget = RetryBudget::ttl(Duration::from_nanos(ttl), min_per_second, ratio).unwrap();
        let mut model = Model::new(ttl, min_per_second, ratio);
        // Steps of a quarter slot, so that slots are filled and age out.
        let step = (ttl / 40).max(1);
        let mut now = 0u64;
        for (steps, op) in ops {
            now = now.saturating_add(steps * step);
            let at = Instant::from_nanos(now);
            let slot = u128::from(now) / model.slot;
            match op {
                Op::Deposit => {
                    budget.deposit(at);
                    model.events.push((slot, true));
                }
                Op::Withdraw => {
                    let expected = model.balance(now) >= UNIT;
                    prop_assert_eq!(budget.withdraw(at), expected);
                    if expected {
                        model.events.push((slot, false));
                    }
                }
                Op::Available => {
                    prop_assert_eq!(u128::from(budget.available(at)), model.balance(now) / UNIT);
                }
            }
        }
    }
}
