//! Falling back to an alternate service: called with the same request only
//! when the primary fails and the predicate agrees, after its `poll_ready`.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
};

use palisade::{
    clock::ManualClock,
    error::CircuitOpen,
    fallback::{AlternateLayer, Failed},
    observe::EventKind,
};
use tokio_test::task;
use tower::{BoxError, Layer, Service};

/// An alternate that is ready only on every second `poll_ready`, and checks
/// it is never called without being ready.
#[derive(Clone, Default)]
struct Replica {
    polls: Arc<AtomicUsize>,
    calls: Arc<Mutex<Vec<u32>>>,
    ready: bool,
}

impl Service<u32> for Replica {
    type Response = String;
    type Error = BoxError;
    type Future = std::future::Ready<Result<String, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if self.polls.fetch_add(1, Ordering::SeqCst) % 2 == 0 {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.ready = true;
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: u32) -> Self::Future {
        assert!(std::mem::take(&mut self.ready), "called without poll_ready");
        self.calls.lock().unwrap().push(request);
        std::future::ready(Ok(format!("replica:{request}")))
    }
}

/// The primary: fails with a circuit-open refusal for 0, an error for odd
/// requests, answers even ones.
fn primary() -> impl Service<
    u32,
    Response = String,
    Error = BoxError,
    Future = std::future::Ready<Result<String, BoxError>>,
> + Clone {
    tower::service_fn(|n: u32| {
        std::future::ready(match n {
            0 => Err(CircuitOpen::new("db", None).into()),
            n if n % 2 == 1 => Err("primary down".into()),
            n => Ok(format!("primary:{n}")),
        })
    })
}

fn call<S: Service<u32, Response = String, Error = BoxError>>(
    service: &mut S,
    n: u32,
) -> Result<String, BoxError> {
    let mut future = task::spawn(service.call(n));
    for _ in 0..10 {
        if let Poll::Ready(result) = future.poll() {
            return result;
        }
    }
    panic!("the call never completed")
}

#[test]
fn a_failed_call_goes_to_the_alternate_with_the_same_request() {
    let replica = Replica::default();
    let events = Arc::new(Mutex::new(Vec::new()));
    let layer = AlternateLayer::builder(replica.clone())
        .when(|failed: &Failed<'_, String>| failed.rejection().is_none())
        .clock(ManualClock::new())
        .on_event({
            let events = Arc::clone(&events);
            move |event| events.lock().unwrap().push(event.kind)
        })
        .build();
    let mut service = layer.layer(primary());
    assert_eq!(call(&mut service, 2).unwrap(), "primary:2");
    assert_eq!(call(&mut service, 3).unwrap(), "replica:3");
    let refused = call(&mut service, 0).unwrap_err();
    assert!(
        refused.is::<CircuitOpen>(),
        "the predicate kept refusals from the alternate"
    );
    assert_eq!(*replica.calls.lock().unwrap(), [3]);
    assert!(
        replica.polls.load(Ordering::SeqCst) >= 2,
        "readiness was polled until ready"
    );
    assert_eq!(
        *events.lock().unwrap(),
        [EventKind::FallbackUsed { reason: "error" }]
    );
}
