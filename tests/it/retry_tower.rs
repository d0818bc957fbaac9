//! tower's retry and palisade's, each with the other's parts: a
//! `tower::retry::Policy` deciding in palisade's retry layer, and palisade's
//! backoff timing `tower::retry::Retry` — both on a `ManualClock`.
#![cfg(feature = "tower-retry")]

use std::{
    future::{Ready, ready},
    sync::{Arc, Mutex},
    task::Poll,
    time::Duration,
};

use palisade::{
    clock::{Clock, Instant, ManualClock},
    random::FastRandom,
    retry::{Backoff, BackoffSession, RetryLayer, TowerBackoff, TowerPolicy},
};
use tokio_test::task;
use tower::{
    BoxError, Layer, Service, ServiceExt,
    retry::{
        Policy,
        backoff::{Backoff as _, MakeBackoff},
    },
    service_fn,
};

const MS: Duration = Duration::from_millis(1);

/// When each call came, and the request it carried.
type Calls = Arc<Mutex<Vec<(Instant, Request)>>>;

#[derive(Clone, Debug, PartialEq)]
struct Request {
    id: u32,
    /// Written by the tower policy before each retry.
    retry: u32,
}

/// A service that fails its first `failures` calls, logging each.
fn flaky(
    clock: ManualClock,
    failures: usize,
    calls: Calls,
) -> impl Service<Request, Response = u32, Error = BoxError, Future = Ready<Result<u32, BoxError>>> + Clone
{
    service_fn(move |request: Request| {
        let mut calls = calls.lock().unwrap();
        calls.push((clock.now(), request.clone()));
        ready(if calls.len() <= failures {
            Err(BoxError::from("unavailable"))
        } else {
            Ok(request.id)
        })
    })
}

/// A tower policy as users write them: retries errors (not "fatal" ones),
/// marks the request it will send again, copies requests.
#[derive(Clone)]
struct TowerRetryErrors;

impl Policy<Request, u32, BoxError> for TowerRetryErrors {
    type Future = Ready<()>;

    fn retry(
        &mut self,
        request: &mut Request,
        result: &mut Result<u32, BoxError>,
    ) -> Option<Ready<()>> {
        match result {
            Err(err) if err.to_string() != "fatal" => {
                request.retry += 1;
                Some(ready(()))
            }
            _ => None,
        }
    }

    fn clone_request(&mut self, request: &Request) -> Option<Request> {
        Some(request.clone())
    }
}

#[test]
fn a_tower_policy_decides_in_palisades_retry_on_palisades_backoff() {
    let clock = ManualClock::new();
    let calls = Calls::default();
    let layer = RetryLayer::builder()
        .policy(TowerPolicy::new(TowerRetryErrors))
        .clone_request(|request: &Request| {
            Policy::<Request, u32, BoxError>::clone_request(&mut TowerRetryErrors, request)
        })
        .backoff(Backoff::exponential(100 * MS, 2.0))
        .max_attempts(4)
        .clock(clock.clone())
        .random(FastRandom::seeded(1))
        .build()
        .unwrap();
    let mut service = layer.layer(flaky(clock.clone(), 2, Arc::clone(&calls)));

    let mut call = task::spawn(service.call(Request { id: 7, retry: 0 }));
    assert!(call.poll().is_pending());
    clock.advance(100 * MS);
    assert!(call.poll().is_pending());
    clock.advance(200 * MS);
    assert_eq!(call.poll().map(|answer| answer.unwrap()), Poll::Ready(7));

    let calls = calls.lock().unwrap();
    let at: Vec<_> = calls.iter().map(|(at, _)| at.since_epoch()).collect();
    assert_eq!(at, [Duration::ZERO, 100 * MS, 300 * MS]);
    // The policy's change to the kept request reached the next attempt.
    let marks: Vec<_> = calls.iter().map(|(_, request)| request.retry).collect();
    assert_eq!(marks, [0, 1, 2]);
}

#[test]
fn a_tower_policys_no_is_final_and_palisades_attempts_bound_its_yes() {
    let clock = ManualClock::new();
    let policy = TowerPolicy::new(TowerRetryErrors);
    let fatal = |clock: ManualClock, calls: Calls| {
        service_fn(move |request: Request| {
            calls.lock().unwrap().push((clock.now(), request));
            ready(Err::<u32, BoxError>("fatal".into()))
        })
    };
    let calls = Calls::default();
    let mut service = RetryLayer::builder()
        .policy(policy.clone())
        .clone_request(|request: &Request| Some(request.clone()))
        .clock(clock.clone())
        .build()
        .unwrap()
        .layer(fatal(clock.clone(), Arc::clone(&calls)));
    let mut call = task::spawn(service.call(Request { id: 1, retry: 0 }));
    assert!(matches!(call.poll(), Poll::Ready(Err(err)) if err.to_string() == "fatal"));
    assert_eq!(
        calls.lock().unwrap().len(),
        1,
        "the policy said no: one attempt"
    );

    // Always yes: palisade's `max_attempts` stops it.
    let calls = Calls::default();
    let mut service = RetryLayer::builder()
        .policy(policy)
        .clone_request(|request: &Request| Some(request.clone()))
        .backoff(Backoff::constant(10 * MS))
        .max_attempts(3)
        .clock(clock.clone())
        .build()
        .unwrap()
        .layer(flaky(clock.clone(), usize::MAX, Arc::clone(&calls)));
    let mut call = task::spawn(service.call(Request { id: 1, retry: 0 }));
    assert!(call.poll().is_pending());
    clock.advance(10 * MS);
    assert!(call.poll().is_pending());
    clock.advance(10 * MS);
    assert!(matches!(call.poll(), Poll::Ready(Err(_))));
    assert_eq!(calls.lock().unwrap().len(), 3);
}

/// A tower policy that waits as palisade's backoff says, on its clock.
#[derive(Clone)]
struct BackingOff {
    waits: BackoffSession<ManualClock, FastRandom>,
    left: u32,
}

impl Policy<Request, u32, BoxError> for BackingOff {
    type Future =
        <BackoffSession<ManualClock, FastRandom> as tower::retry::backoff::Backoff>::Future;

    fn retry(
        &mut self,
        _: &mut Request,
        result: &mut Result<u32, BoxError>,
    ) -> Option<Self::Future> {
        if result.is_ok() || self.left == 0 {
            return None;
        }
        self.left -= 1;
        Some(self.waits.next_backoff())
    }

    fn clone_request(&mut self, request: &Request) -> Option<Request> {
        Some(request.clone())
    }
}

#[test]
fn palisades_backoff_times_towers_retry_on_a_manual_clock() {
    let clock = ManualClock::new();
    let backoff = Backoff::exponential(100 * MS, 2.0).max_delay(250 * MS);
    let mut make = TowerBackoff::new(backoff)
        .clock(clock.clone())
        .random(FastRandom::seeded(3));
    let policy = BackingOff {
        waits: make.make_backoff(),
        left: 5,
    };
    let calls = Calls::default();
    let service = tower::retry::Retry::new(policy, flaky(clock.clone(), 3, Arc::clone(&calls)));

    let mut call = task::spawn(service.oneshot(Request { id: 9, retry: 0 }));
    assert!(call.poll().is_pending());
    // 100 ms, then 200 ms, then 250 ms (capped): exactly palisade's delays.
    let expected = backoff
        .delays(FastRandom::seeded(3))
        .take(3)
        .collect::<Vec<_>>();
    assert_eq!(expected, [100 * MS, 200 * MS, 250 * MS]);
    for (i, delay) in expected.iter().enumerate() {
        clock.advance(*delay - MS);
        assert!(
            call.poll().is_pending(),
            "woke 1 ms early before retry {}",
            i + 1
        );
        clock.advance(MS);
        let polled = call.poll();
        assert_eq!(polled.is_ready(), i == 2, "retry {}", i + 1);
        if let Poll::Ready(answer) = polled {
            assert_eq!(answer.unwrap(), 9);
        }
    }
    let at: Vec<_> = calls
        .lock()
        .unwrap()
        .iter()
        .map(|(at, _)| at.since_epoch())
        .collect();
    assert_eq!(at, [Duration::ZERO, 100 * MS, 300 * MS, 550 * MS]);
}

#[test]
fn each_backoff_session_starts_over_and_counts_its_waits() {
    let clock = ManualClock::new();
    let mut make = TowerBackoff::new(Backoff::linear(10 * MS, 10 * MS)).clock(clock.clone());
    let mut first = make.make_backoff();
    drop(first.next_backoff());
    drop(first.next_backoff());
    assert_eq!(first.delays_so_far(), 2);
    let mut second = make.make_backoff();
    assert_eq!(second.delays_so_far(), 0);
    // A fresh session's first wait is the base again: 10 ms, not 30 ms.
    let mut wait = task::spawn(second.next_backoff());
    clock.advance(10 * MS);
    assert!(wait.poll().is_ready());
}

#[test]
fn debug_shows_the_backoff_and_a_session_s_waits() {
    let backoff = Backoff::linear(10 * MS, 10 * MS);
    let mut make = TowerBackoff::new(backoff);
    assert_eq!(
        format!("{make:?}"),
        format!("TowerBackoff {{ backoff: {backoff:?}, .. }}")
    );
    let session = make.make_backoff();
    assert_eq!(
        format!("{session:?}"),
        "BackoffSession { delays: 0, previous: 10ms, .. }"
    );
}
