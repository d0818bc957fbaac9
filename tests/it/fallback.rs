//! The fallback layer: it answers by what failed, declines when told to,
//! leaves successes alone, can treat a response as a failure, and emits the
//! reason.

use std::sync::{Arc, Mutex};

use palisade::{
    classify::Outcome,
    clock::ManualClock,
    error::{BulkheadFull, CircuitOpen, Elapsed, RejectionKind},
    fallback::{Failed, FallbackLayer},
    observe::EventKind,
};
use tokio_test::{assert_ready, task};
use tower::{BoxError, Layer, Service, service_fn};

/// A service failing with the error its request names, or answering it.
fn failing() -> impl Service<
    &'static str,
    Response = String,
    Error = BoxError,
    Future = std::future::Ready<Result<String, BoxError>>,
> + Clone {
    service_fn(|what: &'static str| {
        std::future::ready(match what {
            "open" => Err(CircuitOpen::new("db", None).into()),
            "full" => Err(BulkheadFull::new("db", None).into()),
            "slow" => Err(Elapsed::new("db", None).into()),
            "boom" => Err("boom".into()),
            other => Ok(other.to_string()),
        })
    })
}

fn call<S>(service: &mut S, what: &'static str) -> Result<String, BoxError>
where
    S: Service<&'static str, Response = String, Error = BoxError>,
{
    assert_ready!(task::spawn(service.call(what)).poll())
}

#[test]
fn the_fallback_answers_by_what_failed() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let layer = FallbackLayer::builder(|failed: Failed<'_, String>| match failed.rejection() {
        Some(rejection) if rejection.kind() == RejectionKind::CircuitOpen => Some("cached".into()),
        Some(rejection) if rejection.kind() == RejectionKind::Elapsed => Some("late".into()),
        Some(_) => None,
        None => Some("degraded".into()),
    })
    .clock(ManualClock::new())
    .on_event({
        let events = Arc::clone(&events);
        move |event| events.lock().unwrap().push(event.kind)
    })
    .build();
    let mut service = layer.layer(failing());
    assert_eq!(call(&mut service, "open").unwrap(), "cached");
    assert_eq!(call(&mut service, "slow").unwrap(), "late");
    assert_eq!(call(&mut service, "boom").unwrap(), "degraded");
    let declined = call(&mut service, "full").unwrap_err();
    assert!(
        declined.is::<BulkheadFull>(),
        "a declined failure goes through"
    );
    assert_eq!(call(&mut service, "fine").unwrap(), "fine");
    let reasons: Vec<_> = events
        .lock()
        .unwrap()
        .iter()
        .map(|kind| match kind {
            EventKind::FallbackUsed { reason } => *reason,
            other => panic!("unexpected event {other:?}"),
        })
        .collect();
    assert_eq!(reasons, ["circuit_open", "elapsed", "error"]);
}

#[test]
fn a_classifier_can_make_a_response_a_failure() {
    let layer = FallbackLayer::builder(|failed: Failed<'_, String>| match failed {
        Failed::Response(body) => Some(format!("instead of {body}")),
        _ => None,
    })
    .classifier(|result: &Result<String, BoxError>| match result {
        Ok(body) if body == "503" => Outcome::Failure,
        Ok(_) => Outcome::Success,
        Err(_) => Outcome::Failure,
    })
    .build();
    let mut service = layer.layer(failing());
    assert_eq!(call(&mut service, "503").unwrap(), "instead of 503");
    assert_eq!(call(&mut service, "200").unwrap(), "200");
}
