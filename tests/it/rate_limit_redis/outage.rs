//! Redis killed mid-run, for each policy: the configured answer within the
//! timeout, no round trips while the breaker around Redis is open, and the
//! limit enforced again once Redis is back.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use palisade::{
    circuit_breaker::CircuitState,
    error::{RateLimited, StoreUnavailable},
    observe::EventKind,
    rate_limit::{Rate, RateLimitLayer, redis::Unavailable},
};
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};

use super::server::RedisServer;

const TIMEOUT: Duration = Duration::from_millis(100);

/// What one call got.
#[derive(Debug, PartialEq, Eq)]
enum Got {
    Ok,
    Limited,
    Unavailable { retry_after: bool },
}

async fn call<S>(service: &mut S) -> Got
where
    S: Service<u64, Response = u64, Error = BoxError>,
{
    let started = Instant::now();
    let result = service.ready().await.unwrap().call(1).await;
    // The answer comes within the decision's timeout (and some slack for a
    // loaded machine), whatever Redis does.
    assert!(started.elapsed() < TIMEOUT * 5, "{:?}", started.elapsed());
    match result {
        Ok(_) => Got::Ok,
        Err(err) if err.is::<RateLimited>() => Got::Limited,
        Err(err) => Got::Unavailable {
            retry_after: err
                .downcast_ref::<StoreUnavailable>()
                .unwrap_or_else(|| panic!("{err}"))
                .retry_after()
                .is_some(),
        },
    }
}

#[tokio::test]
async fn every_policy_answers_through_an_outage_and_the_limit_returns() {
    for policy in [
        Unavailable::Open,
        Unavailable::Closed,
        Unavailable::Local { instances: 2 },
    ] {
        let Some(mut server) = RedisServer::start() else {
            return;
        };
        let events = Arc::new(Mutex::new(Vec::new()));
        let let_through = Arc::new(AtomicUsize::new(0));
        let layer =
            RateLimitLayer::builder()
                .name("outage")
                .on_event({
                    let events = Arc::clone(&events);
                    let let_through = Arc::clone(&let_through);
                    move |event| match event.kind {
                        EventKind::StoreUnavailable { cause, answer } => events
                            .lock()
                            .unwrap()
                            .push((event.name.to_string(), cause, answer)),
                        EventKind::LetThrough if event.name == "outage" => {
                            let_through.fetch_add(1, Ordering::SeqCst);
                        }
                        _ => {}
                    }
                })
                .token_bucket(Rate::new(1, Duration::from_secs(60)), 2)
                .redis(server.connection().await)
                .timeout(TIMEOUT)
                .on_unavailable(policy)
                // Every decision goes to Redis: what is tested is Redis failing.
                .denial_cache(0)
                .build()
                .unwrap();
        let breaker = layer.store_breaker().clone();
        let mut service = layer.layer(service_fn(|x: u64| async move { Ok::<_, BoxError>(x) }));
        assert_eq!(call(&mut service).await, Got::Ok);
        assert_eq!(call(&mut service).await, Got::Ok);
        assert_eq!(call(&mut service).await, Got::Limited);
        // Each request Redis admitted is told.
        assert_eq!(let_through.load(Ordering::SeqCst), 2);

        server.kill();
        let mut answers = Vec::new();
        for _ in 0..8 {
            answers.push(call(&mut service).await);
        }
        // After five failed round trips the breaker opens: no more are made.
        assert_eq!(breaker.state(), CircuitState::Open, "{policy:?}");
        // Each decision made without Redis is told, with its cause.
        let told = std::mem::take(&mut *events.lock().unwrap());
        assert_eq!(told.len(), 8, "{told:?}");
        let answer = match policy {
            Unavailable::Open => "admitted",
            Unavailable::Closed => "refused",
            _ => "local",
        };
        assert!(
            told.iter()
                .all(|(name, _, said)| name == "outage" && *said == answer)
        );
        assert_eq!(told[7].1, "circuit_open", "{told:?}");
        assert!(
            told[..5]
                .iter()
                .all(|(_, cause, _)| *cause != "circuit_open"),
            "{told:?}"
        );
        match policy {
            Unavailable::Open => assert!(answers.iter().all(|got| *got == Got::Ok), "{answers:?}"),
            Unavailable::Closed => {
                assert!(
                    answers
                        .iter()
                        .all(|got| matches!(got, Got::Unavailable { .. }))
                );
                // While the breaker is open, the refusal says when Redis is
                // tried again.
                assert_eq!(
                    answers.last(),
                    Some(&Got::Unavailable { retry_after: true })
                );
            }
            _ => {
                // Half the burst, in this process.
                assert_eq!(answers[0], Got::Ok, "{answers:?}");
                assert!(
                    answers[1..].iter().all(|got| *got == Got::Limited),
                    "{answers:?}"
                );
            }
        }

        // Redis is back (empty): once the breaker lets a probe through, the
        // shared limit is enforced again — a burst of 2, then refusals.
        server.restart();
        let back = Instant::now();
        while breaker.state() != CircuitState::Closed {
            assert!(
                back.elapsed() < Duration::from_secs(10),
                "{policy:?}: not back"
            );
            let _ = call(&mut service).await;
            // Real time: the breaker waits on the real clock before a probe.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut after = Vec::new();
        for _ in 0..4 {
            after.push(call(&mut service).await);
        }
        let limited = after.iter().filter(|got| **got == Got::Limited).count();
        assert!(limited >= 2, "{policy:?}: {after:?}");
        assert_eq!(after.last(), Some(&Got::Limited), "{policy:?}: {after:?}");
    }
}

#[tokio::test]
async fn a_refused_key_is_refused_again_without_a_round_trip() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let hits = Arc::new(Mutex::new(0));
    let layer = RateLimitLayer::builder()
        .name("denials")
        .on_event({
            let hits = Arc::clone(&hits);
            move |event| {
                if event.kind == EventKind::DenialCacheHit {
                    *hits.lock().unwrap() += 1;
                }
            }
        })
        .token_bucket(Rate::new(1, Duration::from_secs(60)), 1)
        .key(|client: &u64| Some(*client))
        .redis(server.connection().await)
        .timeout(TIMEOUT)
        .on_unavailable(Unavailable::Closed)
        .build()
        .unwrap();
    let breaker = layer.store_breaker().clone();
    let mut service = layer.layer(service_fn(|x: u64| async move { Ok::<_, BoxError>(x) }));
    let mut ask = async |client: u64| service.ready().await.unwrap().call(client).await;
    assert!(ask(1).await.is_ok());
    let first = ask(1).await.unwrap_err();
    let first = first
        .downcast_ref::<RateLimited>()
        .unwrap()
        .retry_after()
        .unwrap();
    // Redis is gone, but what it said of client 1 still holds here: the
    // refusal comes from the cache, with a wait no longer than Redis's.
    server.kill();
    for _ in 0..20 {
        let again = ask(1).await.unwrap_err();
        let wait = again
            .downcast_ref::<RateLimited>()
            .unwrap()
            .retry_after()
            .unwrap();
        assert!(wait <= first, "{wait:?} > {first:?}");
    }
    assert_eq!(
        breaker.state(),
        CircuitState::Closed,
        "no round trip was made"
    );
    // A client Redis never refused must ask Redis, which is down.
    assert!(ask(2).await.unwrap_err().is::<StoreUnavailable>());
}
