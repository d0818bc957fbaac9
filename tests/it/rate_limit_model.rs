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
//!   unsatisfiable.

use std::{
    future::Future,
    pin::pin,
    task::{Context, Poll, Waker},
    time::Duration,
};

use palisade::{
    clock::{Clock, ManualClock},
    error::{RateLimited, Unsatisfiable},
    rate_limit::{Check, Rate, RateLimitLayer},
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
}

/// The reference: what was admitted, and the rules as plain sums.
#[derive(Clone)]
struct Model {
    algorithm: Algorithm,
    /// Token bucket: the level, in nanoseconds of refill (`cost · interval`
    /// per request), and when it was last topped up.
    level: u64,
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
            level: algorithm.scale(),
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
            self.level = (self.level + (now - self.topped_up)).min(self.algorithm.scale());
            self.topped_up = now;
            let need = cost * interval;
            if need <= self.level {
                self.level -= need;
                return Verdict::Admit;
            }
            return Verdict::Wait(need - self.level);
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
    let mut admissions: Vec<(u64, u64)> = Vec::new();

    let mut request = |cost: u32, model: &mut Model| -> Result<Option<u64>, TestCaseError> {
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
        let available = (1..=algorithm.capacity())
            .take_while(|&more| matches!(model.clone().decide(now, more), Verdict::Admit))
            .last()
            .map_or(0, u64::from);
        prop_assert_eq!(layer.available(), available, "available at {}", now);
        let result = poll_now(service.call(cost));
        match (model.decide(now, cost), result) {
            (Verdict::Admit, Ok(_)) => {
                admissions.push((now, u64::from(cost)));
                Ok(None)
            }
            (Verdict::Wait(wait), Err(err)) => {
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
            Op::Request { cost, probe } => {
                let Some(wait) = request(cost, &mut model)? else {
                    continue;
                };
                if probe {
                    clock.advance(ns(wait - 1));
                    prop_assert_eq!(request(cost, &mut model)?, Some(1), "1 ns before the wait");
                    clock.advance(ns(1));
                    prop_assert_eq!(request(cost, &mut model)?, None, "at the wait");
                }
            }
        }
    }

    // The guarantee each algorithm promises, over everything admitted.
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
        ];
        (
            Just(algorithm),
            0..=3 * scale,
            proptest::collection::vec(op, 1..80),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_algorithm_matches_its_model_and_keeps_its_promise((algorithm, start, ops) in case()) {
        run(algorithm, start, &ops)?;
    }
}
