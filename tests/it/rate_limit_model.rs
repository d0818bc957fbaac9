//! Property tests: each algorithm, through the layer on a `ManualClock`,
//! against a simple reference model written independently of it — and the
//! guarantees each promises, checked on every run:
//!
//! - every decision, and every `retry_after`, equals the model's;
//! - a refusal's `retry_after` is exact: still refused 1 ns before it,
//!   admitted at it;
//! - token bucket: in any span `t` the admitted cost is at most
//!   `burst + t / interval`;
//! - sliding window and sliding log: at most `limit` in any interval of
//!   length `window`; fixed window: at most `limit` per aligned window;
//! - a request costing more than the limit admits at once is refused as
//!   unsatisfiable;
//! - numbers changed on the running layer (`set_limit`) keep what the limit
//!   remembers: a bucket's debt in tokens, a window's counts, a log's
//!   entries — the model carries them as the documentation says, and every
//!   decision after the change still equals the model's; the promises above
//!   hold between changes, each with its own numbers.

use std::{
    future::Future,
    pin::pin,
    task::{Context, Poll, Waker},
    time::Duration,
};

use palisade::{
    clock::{Clock, ManualClock},
    error::{RateLimited, Unsatisfiable},
    rate_limit::{Check, Limit, Rate, RateLimitLayer},
};
use proptest::prelude::*;
use tower::{BoxError, Layer, Service, service_fn};

#[derive(Clone, Copy, Debug)]
enum Algorithm {
    TokenBucket {
        interval: u64,
        burst: u32,
    },
    SlidingWindow {
        limit: u32,
        window: u64,
        segments: u32,
    },
    SlidingLog {
        limit: u32,
        window: u64,
    },
    FixedWindow {
        limit: u32,
        window: u64,
    },
}

impl Algorithm {
    /// The most a request may cost.
    fn capacity(self) -> u32 {
        match self {
            Algorithm::TokenBucket { burst, .. } => burst,
            Algorithm::SlidingWindow { limit, .. }
            | Algorithm::SlidingLog { limit, .. }
            | Algorithm::FixedWindow { limit, .. } => limit,
        }
    }

    /// The same algorithm with the numbers `a` and `b` (token bucket: an
    /// interval and a burst; log: a limit and a window; windows: a limit —
    /// their segments keep their length, so the model's counts stay exact).
    fn changed(self, a: u32, b: u64) -> Algorithm {
        match self {
            Algorithm::TokenBucket { .. } => Algorithm::TokenBucket {
                interval: b % 199 + 1,
                burst: a % 5 + 1,
            },
            Algorithm::SlidingLog { .. } => Algorithm::SlidingLog {
                limit: a % 5 + 1,
                window: b % 399 + 1,
            },
            Algorithm::SlidingWindow {
                window, segments, ..
            } => Algorithm::SlidingWindow {
                limit: a % 5 + 1,
                window,
                segments,
            },
            Algorithm::FixedWindow { window, .. } => Algorithm::FixedWindow {
                limit: a % 5 + 1,
                window,
            },
        }
    }

    fn limit(self) -> Limit {
        let ns = Duration::from_nanos;
        match self {
            Algorithm::TokenBucket { interval, burst } => Limit::TokenBucket {
                rate: Rate::new(1, ns(interval)),
                burst,
            },
            Algorithm::SlidingWindow {
                limit,
                window,
                segments,
            } => Limit::SlidingWindow {
                limit,
                window: ns(window),
                segments,
            },
            Algorithm::SlidingLog { limit, window } => Limit::SlidingLog {
                limit,
                window: ns(window),
            },
            Algorithm::FixedWindow { limit, window } => Limit::FixedWindow {
                limit,
                window: ns(window),
            },
        }
    }

    fn scale(self) -> u64 {
        match self {
            Algorithm::TokenBucket { interval, burst } => interval * u64::from(burst),
            Algorithm::SlidingWindow { window, .. }
            | Algorithm::SlidingLog { window, .. }
            | Algorithm::FixedWindow { window, .. } => window,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Advance(u64),
    /// A request of this cost; when refused and `probe`, check its wait is
    /// exact by moving the clock to 1 ns before it, then to it.
    Request {
        cost: u32,
        probe: bool,
    },
    /// `set_limit` with the numbers of [`Algorithm::changed`].
    Change(u32, u64),
}

/// The reference: what was admitted, and the rules as plain sums.
#[derive(Clone)]
struct Model {
    algorithm: Algorithm,
    /// Token bucket: the level, in nanoseconds of refill (`cost · interval`
    /// per request), and when it was last topped up. Below zero after a
    /// change that left more owed than the new bucket holds.
    level: i128,
    topped_up: u64,
    /// Windows and log: every admission, `(at, cost)`.
    admitted: Vec<(u64, u64)>,
}

enum Verdict {
    Admit,
    Wait(u64),
    Never,
}

impl Model {
    fn new(algorithm: Algorithm, start: u64) -> Model {
        Model {
            algorithm,
            level: i128::from(algorithm.scale()),
            topped_up: start,
            admitted: Vec::new(),
        }
    }

    /// The cost counted against a request at `now`.
    fn used(&self, now: u64) -> u64 {
        let counts = |at: u64| match self.algorithm {
            Algorithm::SlidingLog { window, .. } => at + window > now,
            Algorithm::SlidingWindow {
                window, segments, ..
            } => {
                let segment = window.div_ceil(u64::from(segments));
                at / segment + u64::from(segments) >= now / segment
            }
            Algorithm::FixedWindow { window, .. } => at / window == now / window,
            Algorithm::TokenBucket { .. } => unreachable!(),
        };
        self.admitted
            .iter()
            .filter(|(at, _)| counts(*at))
            .map(|(_, cost)| cost)
            .sum()
    }

    fn decide(&mut self, now: u64, cost: u32) -> Verdict {
        let cost = u64::from(cost);
        if cost > u64::from(self.algorithm.capacity()) {
            return Verdict::Never;
        }
        if let Algorithm::TokenBucket { interval, .. } = self.algorithm {
            self.top_up(now);
            let need = i128::from(cost * interval);
            if need <= self.level {
                self.level -= need;
                return Verdict::Admit;
            }
            return Verdict::Wait(u64::try_from(need - self.level).unwrap());
        }
        let limit = u64::from(self.algorithm.capacity());
        if cost == 0 || self.used(now) + cost <= limit {
            if cost > 0 {
                self.admitted.push((now, cost));
            }
            return Verdict::Admit;
        }
        // The first later instant with room, by trying each instant at which
        // something stops counting.
        let mut candidates: Vec<u64> = self
            .admitted
            .iter()
            .map(|&(at, _)| match self.algorithm {
                Algorithm::SlidingLog { window, .. } => at + window,
                Algorithm::SlidingWindow {
                    window, segments, ..
                } => {
                    let segment = window.div_ceil(u64::from(segments));
                    (at / segment + u64::from(segments) + 1) * segment
                }
                Algorithm::FixedWindow { window, .. } => (at / window + 1) * window,
                Algorithm::TokenBucket { .. } => unreachable!(),
            })
            .filter(|&t| t > now)
            .collect();
        candidates.sort_unstable();
        let at = candidates
            .into_iter()
            .find(|&t| self.used(t) + cost <= limit)
            .expect("room once everything has left");
        Verdict::Wait(at - now)
    }
}

impl Model {
    fn top_up(&mut self, now: u64) {
        let full = i128::from(self.algorithm.scale());
        self.level = (self.level + i128::from(now - self.topped_up)).min(full);
        self.topped_up = now;
    }

    /// The numbers change at `now`: a bucket keeps the tokens it owes (the
    /// nanoseconds owed, at the new interval, rounded up); windows and logs
    /// keep the admissions they count at `now`.
    fn change(&mut self, into: Algorithm, now: u64) {
        if let Algorithm::SlidingLog { window, .. } = self.algorithm {
            self.admitted.retain(|&(at, _)| at + window > now);
        }
        if let (
            Algorithm::TokenBucket { interval: from, .. },
            Algorithm::TokenBucket { interval, .. },
        ) = (self.algorithm, into)
        {
            self.top_up(now);
            let owed = i128::from(self.algorithm.scale()) - self.level;
            let owed = (owed * i128::from(interval) + i128::from(from) - 1) / i128::from(from);
            self.level = i128::from(into.scale()) - owed;
        }
        self.algorithm = into;
    }
}

fn poll_now<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("reject mode answers at once"),
    }
}

fn run(algorithm: Algorithm, start: u64, ops: &[Op]) -> Result<(), TestCaseError> {
    let clock = ManualClock::new();
    clock.advance(Duration::from_nanos(start));
    let ns = Duration::from_nanos;
    let builder = RateLimitLayer::builder().clock(clock.clone());
    let builder = match algorithm {
        Algorithm::TokenBucket { interval, burst } => {
            builder.token_bucket(Rate::new(1, ns(interval)), burst)
        }
        Algorithm::SlidingWindow {
            limit,
            window,
            segments,
        } => builder.sliding_window(limit, ns(window), segments),
        Algorithm::SlidingLog { limit, window } => builder.sliding_log(limit, ns(window)),
        Algorithm::FixedWindow { limit, window } => builder.fixed_window(limit, ns(window)),
    };
    let layer = builder.cost(|cost: &u32| *cost).build().unwrap();
    let mut service = layer.layer(service_fn(
        |cost: u32| async move { Ok::<_, BoxError>(cost) },
    ));
    let mut model = Model::new(algorithm, start);
    // The admissions under each set of numbers.
    let mut epochs: Vec<(Algorithm, Vec<(u64, u64)>)> = vec![(algorithm, Vec::new())];
    let refusals = std::cell::Cell::new(0u64);

    let mut request = |cost: u32,
                       model: &mut Model,
                       epochs: &mut Vec<(Algorithm, Vec<(u64, u64)>)>|
     -> Result<Option<u64>, TestCaseError> {
        let now = clock.now().as_nanos();
        // Asked first without consuming: the model's answer, on a copy.
        let checked = layer.check(cost);
        match (model.clone().decide(now, cost), checked) {
            (Verdict::Admit, Check::Admitted) | (Verdict::Never, Check::Never) => {}
            (Verdict::Wait(wait), Check::After(after)) => prop_assert_eq!(after, ns(wait)),
            (_, checked) => {
                return Err(TestCaseError::fail(format!(
                    "at {now} cost {cost}: check says {checked:?}, the model otherwise"
                )));
            }
        }
        let available = (1..=model.algorithm.capacity())
            .take_while(|&more| matches!(model.clone().decide(now, more), Verdict::Admit))
            .last()
            .map_or(0, u64::from);
        prop_assert_eq!(layer.available(), available, "available at {}", now);
        let result = poll_now(service.call(cost));
        match (model.decide(now, cost), result) {
            (Verdict::Admit, Ok(_)) => {
                let admissions = &mut epochs.last_mut().unwrap().1;
                admissions.push((now, u64::from(cost)));
                Ok(None)
            }
            (Verdict::Wait(wait), Err(err)) => {
                refusals.set(refusals.get() + 1);
                let refused = err.downcast_ref::<RateLimited>();
                prop_assert_eq!(
                    refused.and_then(RateLimited::retry_after),
                    Some(ns(wait)),
                    "at {} cost {}",
                    now,
                    cost
                );
                Ok(Some(wait))
            }
            (Verdict::Never, Err(err)) => {
                refusals.set(refusals.get() + 1);
                prop_assert!(err.is::<Unsatisfiable>(), "{}", err);
                Ok(None)
            }
            (Verdict::Admit, Err(err)) => Err(TestCaseError::fail(format!(
                "at {now} cost {cost}: model admits, layer: {err}"
            ))),
            (_, Ok(_)) => Err(TestCaseError::fail(format!(
                "at {now} cost {cost}: model refuses, layer admits"
            ))),
        }
    };

    for &op in ops {
        match op {
            Op::Advance(by) => clock.advance(ns(by)),
            Op::Change(a, b) => {
                let into = model.algorithm.changed(a, b);
                layer.set_limit(into.limit()).unwrap();
                prop_assert_eq!(layer.limit(), into.limit());
                model.change(into, clock.now().as_nanos());
                epochs.push((into, Vec::new()));
            }
            Op::Request { cost, probe } => {
                let Some(wait) = request(cost, &mut model, &mut epochs)? else {
                    continue;
                };
                if probe {
                    clock.advance(ns(wait - 1));
                    prop_assert_eq!(
                        request(cost, &mut model, &mut epochs)?,
                        Some(1),
                        "1 ns before the wait"
                    );
                    clock.advance(ns(1));
                    prop_assert_eq!(request(cost, &mut model, &mut epochs)?, None, "at the wait");
                }
            }
        }
    }

    prop_assert_eq!(layer.refused(), refusals.get(), "refusals counted");
    // The guarantee each algorithm promises, over everything admitted under
    // the same numbers.
    for (algorithm, admissions) in &epochs {
        promise(*algorithm, admissions)?;
    }
    Ok(())
}

fn promise(algorithm: Algorithm, admissions: &[(u64, u64)]) -> Result<(), TestCaseError> {
    for (i, &(from, _)) in admissions.iter().enumerate() {
        let upto = |to: u64| -> u64 {
            admissions[i..]
                .iter()
                .take_while(|(at, _)| *at <= to)
                .map(|(_, cost)| cost)
                .sum()
        };
        match algorithm {
            Algorithm::TokenBucket { interval, burst } => {
                for &(to, _) in &admissions[i..] {
                    prop_assert!(upto(to) <= u64::from(burst) + (to - from) / interval);
                }
            }
            Algorithm::SlidingWindow { limit, window, .. }
            | Algorithm::SlidingLog { limit, window } => {
                prop_assert!(upto(from + window - 1) <= u64::from(limit));
            }
            Algorithm::FixedWindow { limit, window } => {
                let same_window: u64 = admissions
                    .iter()
                    .filter(|(at, _)| at / window == from / window)
                    .map(|(_, cost)| cost)
                    .sum();
                prop_assert!(same_window <= u64::from(limit));
            }
        }
    }
    Ok(())
}

fn algorithm() -> impl Strategy<Value = Algorithm> {
    prop_oneof![
        (1..200u64, 1..6u32)
            .prop_map(|(interval, burst)| Algorithm::TokenBucket { interval, burst }),
        (1..6u32, 1..6u32, 0..400u64).prop_map(|(limit, segments, extra)| {
            Algorithm::SlidingWindow {
                limit,
                window: u64::from(segments) + extra,
                segments,
            }
        }),
        (1..6u32, 1..400u64).prop_map(|(limit, window)| Algorithm::SlidingLog { limit, window }),
        (1..6u32, 1..400u64).prop_map(|(limit, window)| Algorithm::FixedWindow { limit, window }),
    ]
}

fn case() -> impl Strategy<Value = (Algorithm, u64, Vec<Op>)> {
    algorithm().prop_flat_map(|algorithm| {
        let scale = algorithm.scale();
        let op = prop_oneof![
            2 => (0..=2 * scale).prop_map(Op::Advance),
            1 => (0..=scale / 8).prop_map(Op::Advance),
            4 => (0..=algorithm.capacity() + 1, any::<bool>())
                .prop_map(|(cost, probe)| Op::Request { cost, probe }),
            1 => (any::<u32>(), any::<u64>()).prop_map(|(a, b)| Op::Change(a, b)),
        ];
        (
            Just(algorithm),
            0..=3 * scale,
            proptest::collection::vec(op, 1..80),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::cases(512)))]

    #[test]
    fn every_algorithm_matches_its_model_and_keeps_its_promise((algorithm, start, ops) in case()) {
        run(algorithm, start, &ops)?;
    }
}
