//! The cached fallback: the last good answer to a request, served when a
//! call fails, within its staleness, by key, in bounded memory; for HTTP,
//! bodies kept as they stream, `no-store` and oversize bodies left alone,
//! answers marked with `Age`; and through axum with a breaker.

#![cfg(feature = "cache")]

use std::{
    future::Future,
    pin::pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    task::{Context, Poll, Waker},
    time::Duration,
};

use palisade::{
    classify::Outcome,
    clock::ManualClock,
    error::{CircuitOpen, RejectionKind},
    fallback::{CachedLayer, Clones, Failed},
    observe::EventKind,
};
use tower::{BoxError, Layer, Service, service_fn};

/// Calls `service` with `request`, whose future must be ready at once.
fn call_now<S: Service<Req>, Req>(service: &mut S, request: Req) -> Result<S::Response, S::Error> {
    let mut cx = Context::from_waker(Waker::noop());
    assert!(service.poll_ready(&mut cx).is_ready());
    match pin!(service.call(request)).poll(&mut cx) {
        Poll::Ready(result) => result,
        Poll::Pending => panic!("the call did not finish at once"),
    }
}

/// An upstream answering `"<request> v<n>"` (`n` counting its calls), and
/// the switch that makes it fail while set.
fn upstream() -> (
    impl Service<
        u32,
        Response = String,
        Error = BoxError,
        Future = std::future::Ready<Result<String, BoxError>>,
    > + Clone,
    Arc<AtomicBool>,
) {
    let down = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let switch = Arc::clone(&down);
    let service = service_fn(move |id: u32| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(if down.load(Ordering::SeqCst) {
            Err::<String, BoxError>("upstream down".into())
        } else {
            Ok(format!("{id} v{n}"))
        })
    });
    (service, switch)
}

/// The events a layer emitted, in order.
type Seen = Arc<Mutex<Vec<EventKind>>>;

/// A listener recording every event, and what it recorded.
fn recorder() -> (
    Seen,
    impl Fn(&palisade::observe::Event<'_>) + Send + Sync + 'static,
) {
    let seen: Seen = Arc::default();
    let sink = Arc::clone(&seen);
    (seen, move |event: &palisade::observe::Event<'_>| {
        sink.lock().unwrap().push(event.kind)
    })
}

#[test]
fn cached_answer_is_served_after_a_failure_with_its_age() {
    let clock = ManualClock::new();
    let (seen, listener) = recorder();
    let layer = CachedLayer::builder(|id: &u32| Some(*id))
        .responses(Clones::marking(|answer: &mut String, age: Duration| {
            answer.push_str(&format!(" ({} ms old)", age.as_millis()))
        }))
        .max_stale(Duration::from_secs(30))
        .clock(clock.clone())
        .on_event(listener)
        .build()
        .unwrap();
    let (inner, down) = upstream();
    let mut service = layer.layer(inner);

    assert_eq!(call_now(&mut service, 7).unwrap(), "7 v0");
    assert_eq!(layer.len(), 1);
    down.store(true, Ordering::SeqCst);
    clock.advance(Duration::from_millis(1_500));
    assert_eq!(call_now(&mut service, 7).unwrap(), "7 v0 (1500 ms old)");
    assert_eq!(
        *seen.lock().unwrap(),
        [EventKind::CacheAnswered {
            reason: "error",
            age: Duration::from_millis(1_500)
        }]
    );
    // A fresh success replaces the answer, and its age starts again.
    down.store(false, Ordering::SeqCst);
    assert_eq!(call_now(&mut service, 7).unwrap(), "7 v2");
    down.store(true, Ordering::SeqCst);
    clock.advance(Duration::from_millis(10));
    assert_eq!(call_now(&mut service, 7).unwrap(), "7 v2 (10 ms old)");
}

#[test]
fn cached_answer_past_max_stale_is_not_served_and_is_forgotten() {
    let clock = ManualClock::new();
    let (seen, listener) = recorder();
    let layer = CachedLayer::builder(|id: &u32| Some(*id))
        .max_stale(Duration::from_secs(30))
        .clock(clock.clone())
        .on_event(listener)
        .build()
        .unwrap();
    let (inner, down) = upstream();
    let mut service = layer.layer(inner);
    assert_eq!(call_now(&mut service, 1).unwrap(), "1 v0");
    down.store(true, Ordering::SeqCst);

    // Exactly max_stale old: served.
    clock.advance(Duration::from_secs(30));
    assert_eq!(call_now(&mut service, 1).unwrap(), "1 v0");
    // A nanosecond more: the failure goes through, the answer is dropped.
    clock.advance(Duration::from_nanos(1));
    let err = call_now(&mut service, 1).unwrap_err();
    assert_eq!(err.to_string(), "upstream down");
    assert!(layer.is_empty());
    assert!(call_now(&mut service, 1).is_err());
    assert_eq!(
        seen.lock().unwrap()[1..],
        [
            EventKind::CacheMissed {
                reason: "error",
                stale: true
            },
            EventKind::CacheMissed {
                reason: "error",
                stale: false
            },
        ]
    );
}

#[test]
fn cached_answers_do_not_mix_keys() {
    let layer = CachedLayer::builder(|id: &u32| Some(id % 10))
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let (inner, down) = upstream();
    let mut service = layer.layer(inner);
    assert_eq!(call_now(&mut service, 1).unwrap(), "1 v0");
    assert_eq!(call_now(&mut service, 2).unwrap(), "2 v1");
    down.store(true, Ordering::SeqCst);
    assert_eq!(call_now(&mut service, 1).unwrap(), "1 v0");
    assert_eq!(call_now(&mut service, 2).unwrap(), "2 v1");
    // 11 has 1's key (the closure's choice): 1's answer.
    assert_eq!(call_now(&mut service, 11).unwrap(), "1 v0");
    assert!(call_now(&mut service, 3).is_err());
}

#[test]
fn cached_layer_keeps_nothing_for_a_request_without_a_key() {
    let (seen, listener) = recorder();
    let layer = CachedLayer::builder(|id: &u32| (*id != 0).then_some(*id))
        .clock(ManualClock::new())
        .on_event(listener)
        .build()
        .unwrap();
    let (inner, down) = upstream();
    let mut service = layer.layer(inner);
    assert_eq!(call_now(&mut service, 0).unwrap(), "0 v0");
    assert!(layer.is_empty());
    down.store(true, Ordering::SeqCst);
    assert!(call_now(&mut service, 0).is_err());
    assert_eq!(
        *seen.lock().unwrap(),
        [EventKind::CacheMissed {
            reason: "error",
            stale: false
        }]
    );
}

#[test]
fn cached_layer_keeps_only_successes() {
    // "v1" answers are failures to the classifier: not kept, and answered.
    let layer = CachedLayer::builder(|id: &u32| Some(*id))
        .classifier(|result: &Result<String, BoxError>| match result {
            Ok(answer) if answer.ends_with("v1") => Outcome::Failure,
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        })
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let (inner, down) = upstream();
    let mut service = layer.layer(inner);
    assert_eq!(call_now(&mut service, 5).unwrap(), "5 v0");
    // The failed response is answered from the cache, and not kept.
    assert_eq!(call_now(&mut service, 5).unwrap(), "5 v0");
    down.store(true, Ordering::SeqCst);
    assert_eq!(call_now(&mut service, 5).unwrap(), "5 v0");
    // An error is never kept: a key only ever failed has nothing.
    assert!(call_now(&mut service, 6).is_err());
    assert!(call_now(&mut service, 6).is_err());
    assert_eq!(layer.len(), 1);
}

#[test]
fn cached_layer_answers_only_the_failures_it_is_told_and_falls_through_to_otherwise() {
    let (seen, listener) = recorder();
    let layer = CachedLayer::builder(|id: &u32| Some(*id))
        .when(|failed: &Failed<'_, String>| {
            failed
                .rejection()
                .is_some_and(|rejection| rejection.kind() == RejectionKind::CircuitOpen)
        })
        .otherwise(|failed: Failed<'_, String>| Some(format!("default ({})", failed.reason())))
        .clock(ManualClock::new())
        .on_event(listener)
        .build()
        .unwrap();
    let open = Arc::new(AtomicBool::new(false));
    let down = Arc::new(AtomicBool::new(false));
    let mut service = layer.layer(service_fn({
        let (open, down) = (Arc::clone(&open), Arc::clone(&down));
        move |id: u32| {
            std::future::ready(if open.load(Ordering::SeqCst) {
                Err::<String, BoxError>(CircuitOpen::new("db", None).into())
            } else if down.load(Ordering::SeqCst) {
                Err("down".into())
            } else {
                Ok(format!("{id}"))
            })
        }
    }));
    assert_eq!(call_now(&mut service, 1).unwrap(), "1");
    down.store(true, Ordering::SeqCst);
    // Not a failure it answers: through, the cache untouched.
    assert_eq!(call_now(&mut service, 1).unwrap_err().to_string(), "down");
    open.store(true, Ordering::SeqCst);
    assert_eq!(call_now(&mut service, 1).unwrap(), "1");
    // Nothing for 2: `otherwise` answers.
    assert_eq!(call_now(&mut service, 2).unwrap(), "default (circuit_open)");
    assert_eq!(
        *seen.lock().unwrap(),
        [
            EventKind::CacheAnswered {
                reason: "circuit_open",
                age: Duration::ZERO
            },
            EventKind::CacheMissed {
                reason: "circuit_open",
                stale: false
            },
            EventKind::FallbackUsed {
                reason: "circuit_open"
            },
        ]
    );
}

/// A response that counts its copies.
#[derive(Debug)]
struct Counted(Arc<AtomicUsize>);

impl Clone for Counted {
    fn clone(&self) -> Self {
        self.0.fetch_add(1, Ordering::SeqCst);
        Counted(Arc::clone(&self.0))
    }
}

#[test]
fn cached_layer_copies_only_the_responses_it_keeps_and_serves() {
    let copies = Arc::new(AtomicUsize::new(0));
    let down = Arc::new(AtomicBool::new(false));
    let layer = CachedLayer::builder(|id: &u32| (id % 2 == 0).then_some(*id))
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let mut service = layer.layer(service_fn({
        let (copies, down) = (Arc::clone(&copies), Arc::clone(&down));
        move |_: u32| {
            std::future::ready(if down.load(Ordering::SeqCst) {
                Err::<Counted, BoxError>("down".into())
            } else {
                Ok(Counted(Arc::clone(&copies)))
            })
        }
    }));
    // No key: passed on as it came, never copied.
    for id in [1, 3, 5] {
        call_now(&mut service, id).unwrap();
    }
    assert_eq!(copies.load(Ordering::SeqCst), 0);
    // Kept: one copy each.
    call_now(&mut service, 2).unwrap();
    call_now(&mut service, 4).unwrap();
    assert_eq!(copies.load(Ordering::SeqCst), 2);
    // Served: one copy each.
    down.store(true, Ordering::SeqCst);
    call_now(&mut service, 2).unwrap();
    assert_eq!(copies.load(Ordering::SeqCst), 3);
    // A failure without a key: nothing.
    assert!(call_now(&mut service, 1).is_err());
    assert_eq!(copies.load(Ordering::SeqCst), 3);
}

#[test]
fn cached_layer_stays_within_its_bounds_under_a_million_keys() {
    const MAX: usize = 10_000;
    let layer = CachedLayer::builder(|id: &u32| Some(*id))
        .max_entries(MAX)
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let mut service = layer.layer(service_fn(|id: u32| {
        std::future::ready(Ok::<_, BoxError>(id))
    }));
    let mut most = 0;
    for id in 0..1_000_000 {
        assert_eq!(call_now(&mut service, id).unwrap(), id);
        if id % 1_000 == 0 {
            most = most.max(layer.len());
            assert!(
                layer.len() <= MAX,
                "{} answers after {id} keys",
                layer.len()
            );
        }
    }
    assert!(layer.len() <= MAX && layer.weight() <= MAX as u64);
    // The bound is used, not a token one.
    assert!(most > MAX / 2, "at most {most} answers held");

    // By bytes: 1 000 answers of 1 KiB at most in 64 KiB... each weighs at
    // least max_bytes / max_entries.
    let layer = CachedLayer::builder(|id: &u32| Some(*id))
        .responses(Clones::new())
        .max_entries(1_000)
        .max_bytes(64 * 1024)
        .shards(1)
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let mut service = layer.layer(service_fn(|id: u32| {
        std::future::ready(Ok::<_, BoxError>([id as u8; 1024]))
    }));
    for id in 0..100_000 {
        call_now(&mut service, id).unwrap();
        assert!(layer.weight() <= 64 * 1024, "{} bytes", layer.weight());
    }
    // A 1 KiB answer weighs its 1 KiB: 64 of them at most.
    assert!(
        layer.len() <= 64 && layer.len() > 48,
        "{} answers",
        layer.len()
    );
}

#[test]
fn cached_layer_keeps_no_answer_heavier_than_a_shard_s_share() {
    let kept = |shards: usize| {
        let layer = CachedLayer::builder(|id: &u32| Some(*id))
            .max_entries(1_000)
            .max_bytes(64 * 1024)
            .shards(shards)
            .clock(ManualClock::new())
            .build()
            .unwrap();
        let mut service = layer.layer(service_fn(|_: u32| {
            std::future::ready(Ok::<_, BoxError>([0u8; 5 * 1024]))
        }));
        call_now(&mut service, 1).unwrap();
        layer.len()
    };
    // 16 shards of 4 KiB: a 5 KiB answer fits none. One of 64 KiB: kept.
    assert_eq!(kept(16), 0);
    assert_eq!(kept(1), 1);
}

#[test]
fn cached_layer_reads_back_what_it_holds_and_forgets_it_on_clear() {
    // 10 answers in 1 000 bytes: each weighs at least 100.
    let layer = CachedLayer::builder(|id: &u32| Some(*id))
        .max_entries(10)
        .max_bytes(1_000)
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let mut service = layer.layer(service_fn(|id: u32| {
        std::future::ready(Ok::<_, BoxError>(u64::from(id)))
    }));
    assert!(layer.is_empty());
    for id in 0..3 {
        call_now(&mut service, id).unwrap();
    }
    assert!(!layer.is_empty());
    assert_eq!((layer.len(), layer.weight()), (3, 300));
    let debug = format!("{layer:?}");
    assert!(
        debug.contains("entries: 3") && debug.contains("max_stale: 60s"),
        "{debug}"
    );
    assert!(format!("{service:?}").contains("CachedLayer"));
    layer.clear();
    assert!(layer.is_empty());
    assert_eq!((layer.len(), layer.weight()), (0, 0));

    // Without max_bytes, an answer weighs 1 whatever its size.
    let layer = CachedLayer::builder(|id: &u32| Some(*id))
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let mut service = layer.layer(service_fn(|_: u32| {
        std::future::ready(Ok::<_, BoxError>([0u8; 4096]))
    }));
    call_now(&mut service, 1).unwrap();
    call_now(&mut service, 2).unwrap();
    assert_eq!(layer.weight(), 2);
}

/// A `Remember` of its own: keeps the length of a `String`, answers with
/// as many stars, and notes how the keeper looks.
#[derive(Clone, Default)]
struct Lengths(Arc<Mutex<Vec<String>>>);

impl palisade::fallback::Remember<String> for Lengths {
    type Response = String;
    type Kept = usize;

    fn keep<K>(&self, response: String, keeper: palisade::fallback::Keeper<K, usize>) -> String
    where
        K: std::hash::Hash + Eq + Send + Sync + 'static,
    {
        self.0.lock().unwrap().push(format!("{keeper:?}"));
        keeper.keep(response.len(), 8);
        response
    }

    fn pass(&self, response: String) -> String {
        response
    }

    fn serve(&self, kept: &usize, _: Duration) -> String {
        "*".repeat(*kept)
    }
}

#[test]
fn cached_layer_takes_a_remember_of_the_user_s_own() {
    let clock = ManualClock::new();
    clock.advance(Duration::from_secs(5));
    let lengths = Lengths::default();
    let layer = CachedLayer::builder(|id: &u32| Some(*id))
        .responses(lengths.clone())
        .clock(clock)
        .build()
        .unwrap();
    let (inner, down) = upstream();
    let mut service = layer.layer(inner);
    assert_eq!(call_now(&mut service, 12).unwrap(), "12 v0");
    down.store(true, Ordering::SeqCst);
    assert_eq!(call_now(&mut service, 12).unwrap(), "*****");
    assert_eq!(
        *lengths.0.lock().unwrap(),
        ["Keeper { at: Instant(5s), .. }"]
    );
    let key = palisade::fallback::KeyFn::new(|id: &u32| Some(*id));
    assert_eq!(format!("{key:?}"), "KeyFn { .. }");
}

#[test]
fn cached_layer_passes_on_its_service_s_readiness_and_shows_its_parts() {
    let layer = CachedLayer::builder(|id: &u32| Some(*id))
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let (service, mut handle) = tower_test::mock::pair::<u32, u32>();
    let mut service = layer.layer(service);
    let mut cx = Context::from_waker(Waker::noop());
    handle.allow(0);
    assert!(service.poll_ready(&mut cx).is_pending());
    handle.send_error("not ready");
    match service.poll_ready(&mut cx) {
        Poll::Ready(Err(err)) => assert_eq!(err.to_string(), "not ready"),
        other => panic!("readiness error not passed on: {other:?}"),
    }
    let builder = CachedLayer::builder(|id: &u32| Some(*id)).max_entries(7);
    let debug = format!("{builder:?}");
    assert!(
        debug.starts_with("CachedBuilder") && debug.contains("max_entries: 7"),
        "{debug}"
    );
    let mut ready = layer.layer(service_fn(|id: u32| {
        std::future::ready(Ok::<_, BoxError>(id))
    }));
    assert!(ready.poll_ready(&mut cx).is_ready());
    assert_eq!(format!("{:?}", ready.call(1)), "CachedFuture { .. }");
}

#[test]
fn cached_layer_refuses_bad_bounds_naming_the_field() {
    let builder = || CachedLayer::builder(|id: &u32| Some(*id));
    let field = |result: Result<_, palisade::error::ConfigError>| result.unwrap_err().field();
    assert_eq!(field(builder().max_entries(0).build()), "max_entries");
    assert_eq!(
        field(builder().max_entries(100_000_000).build()),
        "max_entries"
    );
    assert_eq!(
        field(builder().max_entries(10).max_bytes(9).build()),
        "max_bytes"
    );
    assert_eq!(
        field(builder().max_bytes((1 << 30) + 1).build()),
        "max_bytes"
    );
    assert!(builder().max_bytes(1 << 30).build().is_ok());
    assert_eq!(field(builder().shards(3).build()), "shards");
    assert_eq!(field(builder().max_entries(8).shards(16).build()), "shards");
    assert_eq!(field(builder().shards(0).build()), "shards");
    assert!(builder().max_entries(16).shards(16).build().is_ok());
    assert!(
        builder()
            .max_entries(1 << 16)
            .shards(1 << 16)
            .build()
            .is_ok()
    );
    let many = builder().max_entries(1 << 17).shards(1 << 17).build();
    assert_eq!(field(many), "shards");
    assert_eq!(
        field(builder().max_stale(Duration::ZERO).build()),
        "max_stale"
    );
    assert_eq!(
        field(
            builder()
                .max_stale(Duration::from_secs(200 * 365 * 86_400))
                .build()
        ),
        "max_stale"
    );
    // An answer's bookkeeping: its key (4 bytes), its entry (32) and the
    // cache's own (64).
    let err = builder().max_entries(20_000_000).build().unwrap_err();
    assert!(
        err.to_string()
            .contains("20000000 answers would take 1.9 GiB of memory before their contents"),
        "{err}"
    );
    let err = builder().max_entries(10).max_bytes(9).build().unwrap_err();
    assert!(
        err.to_string().contains("at least max_entries (10)"),
        "{err}"
    );
    assert!(builder().max_entries(10).max_bytes(10).build().is_ok());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(crate::cases(256)))]

    /// Random calls — keys, the upstream up or down, time passing — against
    /// a map of each key's last success and when it came: a success is
    /// returned and kept; a failure is answered with the key's last success
    /// while it is at most `max_stale` old, else goes through (and the old
    /// answer is forgotten). No eviction: the bound is above the keys.
    #[test]
    fn cached_layer_answers_as_a_map_of_last_successes(
        steps in proptest::collection::vec((0u32..6, proptest::bool::ANY, 0u64..40), 1..120),
    ) {
        let max_stale = Duration::from_secs(30);
        let clock = ManualClock::new();
        let layer = CachedLayer::builder(|id: &u32| Some(*id))
            .max_stale(max_stale)
            .clock(clock.clone())
            .build()
            .unwrap();
        let (inner, down) = upstream();
        let mut service = layer.layer(inner);
        let mut model: std::collections::HashMap<u32, (String, Duration)> = Default::default();
        let mut now = Duration::ZERO;
        for (n, (key, up, wait)) in steps.into_iter().enumerate() {
            clock.advance(Duration::from_secs(wait));
            now += Duration::from_secs(wait);
            down.store(!up, Ordering::SeqCst);
            let got = call_now(&mut service, key).map_err(|err| err.to_string());
            let expected = if up {
                let answer = format!("{key} v{n}");
                model.insert(key, (answer.clone(), now));
                Ok(answer)
            } else {
                match model.get(&key) {
                    Some((answer, at)) if now - *at <= max_stale => Ok(answer.clone()),
                    _ => {
                        model.remove(&key);
                        Err("upstream down".to_owned())
                    }
                }
            };
            proptest::prop_assert_eq!(got, expected);
            proptest::prop_assert_eq!(layer.len(), model.len());
        }
    }
}

#[cfg(feature = "http")]
mod over_http {
    use super::*;

    use ::http::{HeaderMap, Request, Response, StatusCode};
    use bytes::Bytes;
    use http_body::Frame;
    use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
    use palisade::fallback::{CachedAnswer, http::HttpResponses};

    type Body = UnsyncBoxBody<Bytes, BoxError>;

    fn full(text: impl Into<Bytes>) -> Body {
        Full::new(text.into())
            .map_err(|never| match never {})
            .boxed_unsync()
    }

    /// Frames handed out one by one, their length unknown ahead.
    struct Frames(std::collections::VecDeque<Frame<Bytes>>);

    impl http_body::Body for Frames {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            Poll::Ready(self.0.pop_front().map(Ok))
        }
    }

    /// A body of `chunks` with no length known ahead, then trailers.
    fn streamed(chunks: Vec<Bytes>, trailers: Option<HeaderMap>) -> Body {
        let mut frames: std::collections::VecDeque<_> =
            chunks.into_iter().map(Frame::data).collect();
        frames.extend(trailers.map(Frame::trailers));
        Frames(frames).boxed_unsync()
    }

    fn get(path: &str) -> Request<()> {
        Request::get(path).body(()).unwrap()
    }

    /// What makes the upstream's next response.
    type Next = Arc<Mutex<Box<dyn FnMut() -> Response<Body> + Send>>>;

    /// An upstream whose every response `next` makes.
    fn answering(
        next: &Next,
    ) -> impl Service<
        Request<()>,
        Response = Response<Body>,
        Error = BoxError,
        Future = std::future::Ready<Result<Response<Body>, BoxError>>,
    > + use<> {
        let next = Arc::clone(next);
        service_fn(move |_: Request<()>| std::future::ready(Ok((next.lock().unwrap())())))
    }

    fn status(code: u16, body: Body) -> Response<Body> {
        Response::builder().status(code).body(body).unwrap()
    }

    async fn text<B: http_body::Body>(response: Response<B>) -> Bytes
    where
        B::Error: std::fmt::Debug,
    {
        response.into_body().collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn cached_http_answer_has_the_kept_head_body_trailers_and_its_age() {
        let clock = ManualClock::new();
        let layer = CachedLayer::http().clock(clock.clone()).build().unwrap();
        let mut trailers = HeaderMap::new();
        trailers.insert("x-checksum", "abc".parse().unwrap());
        let next: Next = Arc::new(Mutex::new(Box::new(move || {
            let mut response = status(
                200,
                streamed(
                    vec![Bytes::from("price: "), Bytes::from("42")],
                    Some(trailers.clone()),
                ),
            );
            response
                .headers_mut()
                .insert("content-type", "text/plain".parse().unwrap());
            response
        })));
        let mut service = layer.layer(answering(&next));
        let fresh = call_now(&mut service, get("/price")).unwrap();
        assert!(fresh.extensions().get::<CachedAnswer>().is_none());
        assert!(layer.is_empty(), "kept only once its body ends");
        let collected = fresh.into_body().collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["x-checksum"], "abc");
        assert_eq!(collected.to_bytes(), "price: 42");
        assert_eq!(layer.len(), 1);

        *next.lock().unwrap() = Box::new(|| status(503, full("busy")));
        clock.advance(Duration::from_millis(59_999)); // within the default 60 s
        let answer = call_now(&mut service, get("/price")).unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(answer.headers()["content-type"], "text/plain");
        assert_eq!(answer.headers()["age"], "59");
        assert_eq!(
            answer.extensions().get::<CachedAnswer>(),
            Some(&CachedAnswer::new(Duration::from_millis(59_999)))
        );
        let collected = answer.into_body().collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["x-checksum"], "abc");
        assert_eq!(collected.to_bytes(), "price: 42");
        // Another path, a POST to the same one: nothing kept for them.
        let other = call_now(&mut service, get("/other")).unwrap();
        assert_eq!(other.status(), StatusCode::SERVICE_UNAVAILABLE);
        let post = Request::post("/price").body(()).unwrap();
        assert_eq!(call_now(&mut service, post).unwrap().status(), 503);
    }

    #[tokio::test]
    async fn cached_http_layer_names_the_age_header_or_none() {
        for (header, seen) in [
            (Some(::http::HeaderName::from_static("x-cache-age")), true),
            (None, false),
        ] {
            let clock = ManualClock::new();
            let layer = CachedLayer::http()
                .responses(HttpResponses::new().age_header(header.clone()))
                .clock(clock.clone())
                .build()
                .unwrap();
            let next: Next = Arc::new(Mutex::new(Box::new(|| status(200, full("ok")))));
            let mut service = layer.layer(answering(&next));
            text(call_now(&mut service, get("/")).unwrap()).await;
            *next.lock().unwrap() = Box::new(|| status(500, full("no")));
            clock.advance(Duration::from_secs(3));
            let answer = call_now(&mut service, get("/")).unwrap();
            assert!(!answer.headers().contains_key("age"));
            assert_eq!(answer.headers().get("x-cache-age").is_some(), seen);
            assert_eq!(
                answer.extensions().get::<CachedAnswer>().unwrap().age,
                Duration::from_secs(3)
            );
        }
    }

    #[tokio::test]
    async fn cached_http_layer_keeps_neither_no_store_nor_failures_nor_oversize_bodies() {
        let layer = CachedLayer::http()
            .responses(HttpResponses::new().max_body(8))
            .clock(ManualClock::new())
            .build()
            .unwrap();
        let next: Next = Arc::new(Mutex::new(Box::new(|| status(200, full("x")))));
        let mut service = layer.layer(answering(&next));
        let mut respond = |path: &str, make: Box<dyn FnMut() -> Response<Body> + Send>| {
            *next.lock().unwrap() = make;
            call_now(&mut service, get(path)).unwrap()
        };
        let no_store = |value: &'static str| -> Box<dyn FnMut() -> Response<Body> + Send> {
            Box::new(move || {
                let mut response = status(200, full("secret"));
                response
                    .headers_mut()
                    .append("cache-control", value.parse().unwrap());
                response
            })
        };
        // no-store, alone or among directives, in any case.
        for (i, value) in ["no-store", "private, No-Store", "max-age=0 ,no-store"]
            .into_iter()
            .enumerate()
        {
            let response = respond(&format!("/secret/{i}"), no_store(value));
            assert_eq!(text(response).await, "secret");
        }
        // Not a 2xx: a 404 is no failure (passed on), but not kept either.
        assert_eq!(
            text(respond("/missing", Box::new(|| status(404, full("none"))))).await,
            "none"
        );
        // A body past 8 bytes, in chunks of no length known ahead: streamed
        // whole to the caller, not kept.
        let big = || streamed(vec![Bytes::from("12345"), Bytes::from("6789")], None);
        assert_eq!(
            text(respond("/big", Box::new(move || status(200, big())))).await,
            "123456789"
        );
        // A body of a length past 8 known ahead (a Content-Length, or an
        // exact size): not even looked at.
        let long = respond("/long", Box::new(|| status(200, full("123456789"))));
        assert_eq!(
            format!("{:?}", long.body()),
            r#"CachedBody { kind: "live" }"#
        );
        assert_eq!(text(long).await, "123456789");
        let declared = respond(
            "/declared",
            Box::new(|| {
                let mut response = status(200, streamed(vec![Bytes::from("1")], None));
                response
                    .headers_mut()
                    .insert("content-length", "9".parse().unwrap());
                response
            }),
        );
        assert_eq!(
            format!("{:?}", declared.body()),
            r#"CachedBody { kind: "live" }"#
        );
        drop(declared);
        // Exactly 8 known ahead: looked at, and kept at its end.
        let fits = respond("/fits", Box::new(|| status(200, full("12345678"))));
        assert_eq!(
            format!("{:?}", fits.body()),
            r#"CachedBody { kind: "live, being kept" }"#
        );
        drop(fits);
        // A body the caller dropped before its end: not kept.
        drop(respond(
            "/dropped",
            Box::new(|| {
                status(
                    200,
                    streamed(vec![Bytes::from("a"), Bytes::from("b")], None),
                )
            }),
        ));
        assert!(layer.is_empty(), "{} kept", layer.len());
        // Exactly 8 bytes: kept.
        let eight = respond(
            "/eight",
            Box::new(|| {
                status(
                    200,
                    streamed(vec![Bytes::from("1234"), Bytes::from("5678")], None),
                )
            }),
        );
        assert_eq!(text(eight).await, "12345678");
        assert_eq!(layer.len(), 1);
        // And answered when it fails; the others have nothing.
        for (path, expected) in [
            ("/eight", 200),
            ("/secret/1", 502),
            ("/big", 502),
            ("/missing", 502),
        ] {
            let response = respond(path, Box::new(|| status(502, full("bad gateway"))));
            assert_eq!(response.status(), expected, "{path}");
        }
    }

    #[tokio::test]
    async fn cached_http_answer_weighs_its_body_and_headers() {
        // 100 answers in 10 000 bytes: each weighs at least 100.
        let layer = CachedLayer::http()
            .max_entries(100)
            .max_bytes(10_000)
            .clock(ManualClock::new())
            .build()
            .unwrap();
        let next: Next = Arc::new(Mutex::new(Box::new(|| {
            let mut response = status(200, full("x".repeat(200)));
            response
                .headers_mut()
                .insert("content-type", "text/plain".parse().unwrap());
            response
        })));
        let mut service = layer.layer(answering(&next));
        text(call_now(&mut service, get("/a")).unwrap()).await;
        // 200 of body, 12 + 10 of header.
        assert_eq!(layer.weight(), 222);
        *next.lock().unwrap() = Box::new(|| status(200, full("tiny")));
        text(call_now(&mut service, get("/b")).unwrap()).await;
        assert_eq!(layer.weight(), 322);
    }

    #[tokio::test]
    async fn cached_http_layer_shares_a_body_of_one_chunk_without_copying_it() {
        static BODY: &[u8] = b"the one chunk";
        let layer = CachedLayer::http()
            .clock(ManualClock::new())
            .build()
            .unwrap();
        let next: Next = Arc::new(Mutex::new(Box::new(|| status(200, full(BODY)))));
        let mut service = layer.layer(answering(&next));
        let fresh = call_now(&mut service, get("/")).unwrap();
        assert_eq!(http_body::Body::size_hint(fresh.body()).exact(), Some(13));
        let fresh = text(fresh).await;
        assert_eq!(fresh.as_ptr(), BODY.as_ptr());
        *next.lock().unwrap() = Box::new(|| status(500, full("")));
        let answer = call_now(&mut service, get("/")).unwrap();
        assert_eq!(http_body::Body::size_hint(answer.body()).exact(), Some(13));
        assert_eq!(
            format!("{:?}", answer.body()),
            r#"CachedBody { kind: "kept" }"#
        );
        let answer = text(answer).await;
        // The kept body is the chunk the upstream handed over, not a copy.
        assert_eq!(answer.as_ptr(), BODY.as_ptr());
    }

    #[tokio::test]
    async fn cached_http_layer_keeps_an_empty_body_no_reader_polls() {
        let layer = CachedLayer::http()
            .clock(ManualClock::new())
            .build()
            .unwrap();
        let next: Next = Arc::new(Mutex::new(Box::new(|| {
            let mut response = status(200, full(""));
            response
                .headers_mut()
                .insert("etag", "\"v1\"".parse().unwrap());
            response
        })));
        let mut service = layer.layer(answering(&next));
        let head = Request::head("/item").body(()).unwrap();
        // A reader that sees the body ended does not poll it: kept anyway.
        let response = call_now(&mut service, head).unwrap();
        assert!(http_body::Body::is_end_stream(response.body()));
        drop(response);
        assert_eq!(layer.len(), 1);
        *next.lock().unwrap() = Box::new(|| status(500, full("")));
        let head = Request::head("/item").body(()).unwrap();
        let answer = call_now(&mut service, head).unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.headers()["etag"], "\"v1\"");
        assert!(text(answer).await.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cached_http_layer_answers_through_axum_while_the_breaker_is_open() {
        use crate::common;
        use axum::{Router, error_handling::HandleErrorLayer, routing::get};
        use palisade::{
            circuit_breaker::{CircuitBreakerLayer, CircuitState, OpenDuration},
            classify::ServerErrorsAsFailures,
        };
        use tokio::net::TcpListener;
        use tower::ServiceBuilder;

        let clock = ManualClock::new();
        let reached = Arc::new(AtomicUsize::new(0));
        let breaker = CircuitBreakerLayer::builder()
            .consecutive_failures(2)
            .open_duration(OpenDuration::fixed(Duration::from_secs(3_600)))
            .classifier(ServerErrorsAsFailures::new())
            .clock(clock.clone())
            .build()
            .unwrap();
        let handle = breaker.handle();
        let (seen, listener) = recorder();
        let cached = CachedLayer::http()
            .max_stale(Duration::from_secs(600))
            .clock(clock.clone())
            .on_event(listener)
            .build()
            .unwrap();
        let app = Router::new()
            .route(
                "/price",
                get({
                    let reached = Arc::clone(&reached);
                    move || async move {
                        // Up for the first request only.
                        if reached.fetch_add(1, Ordering::SeqCst) == 0 {
                            (StatusCode::OK, "42 EUR")
                        } else {
                            (StatusCode::INTERNAL_SERVER_ERROR, "upstream down")
                        }
                    }
                }),
            )
            .layer(
                ServiceBuilder::new()
                    .layer(HandleErrorLayer::new(|err: BoxError| async move {
                        (StatusCode::SERVICE_UNAVAILABLE, err.to_string())
                    }))
                    .layer(cached.clone())
                    .layer(breaker),
            );
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(tcp, app).await.unwrap() });

        let mut sender = common::connect(addr).await;
        let first = common::get_path(&mut sender, "/price").await;
        assert_eq!(first.status(), 200);
        assert!(!first.headers().contains_key("age"));
        assert_eq!(text(first).await, "42 EUR");
        assert_eq!(cached.len(), 1);

        // Down from now on: two failures answered from the cache open the
        // breaker; then the breaker refuses, and the cache answers that
        // too, its answer older each time. The handler is not reached.
        let mut ages = Vec::new();
        for _ in 0..6 {
            clock.advance(Duration::from_secs(10));
            let mut sender = common::connect(addr).await;
            let answer = common::get_path(&mut sender, "/price").await;
            assert_eq!(answer.status(), 200);
            ages.push(answer.headers()["age"].to_str().unwrap().to_owned());
            assert_eq!(text(answer).await, "42 EUR");
        }
        assert_eq!(ages, ["10", "20", "30", "40", "50", "60"]);
        assert_eq!(handle.state(), CircuitState::Open);
        assert_eq!(reached.load(Ordering::SeqCst), 3);
        let reasons: Vec<_> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|event| match event {
                EventKind::CacheAnswered { reason, .. } => *reason,
                other => panic!("unexpected event {other:?}"),
            })
            .collect();
        assert_eq!(
            reasons,
            [
                "response",
                "response",
                "circuit_open",
                "circuit_open",
                "circuit_open",
                "circuit_open"
            ]
        );

        // Past max_stale, the breaker's refusal goes through, naming it.
        clock.advance(Duration::from_secs(600));
        let refused = common::get_path(&mut common::connect(addr).await, "/price").await;
        assert_eq!(refused.status(), 503);
        assert!(String::from_utf8_lossy(&text(refused).await).contains("open"));
        server.abort();
    }
}
