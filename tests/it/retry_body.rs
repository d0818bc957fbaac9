//! Replaying streaming request bodies: a small body is read once and sent
//! whole with every attempt; a body over the limit is sent once, whole, and
//! not retried.

#![cfg(feature = "http")]

use std::{
    collections::VecDeque,
    convert::Infallible,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use palisade::{
    clock::ManualClock,
    observe::{EventKind, ObserverBuilder},
    retry::{
        RetryLayer,
        body::{BufferBodyLayer, ReplayBody, ReplayRequests},
        http::HttpRetry,
    },
};
use tokio_test::task;
use tower::{BoxError, Layer, Service, ServiceBuilder, ServiceExt, service_fn};

/// A streaming body: one frame a poll, pending in between.
struct Chunked {
    frames: VecDeque<Frame<Bytes>>,
    pending: bool,
}

impl Chunked {
    fn new(chunks: &[&str], trailer: Option<(&str, &str)>) -> Chunked {
        let mut frames: VecDeque<_> = chunks
            .iter()
            .map(|chunk| Frame::data(Bytes::from(chunk.to_string())))
            .collect();
        if let Some((name, value)) = trailer {
            let mut trailers = http::HeaderMap::new();
            trailers.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
            frames.push_back(Frame::trailers(trailers));
        }
        Chunked {
            frames,
            pending: false,
        }
    }
}

impl Body for Chunked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        // Pending every other poll, as a network body is.
        self.pending = !self.pending;
        if self.pending {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(self.frames.pop_front().map(Ok))
    }
}

/// What the server received: each attempt's body and trailer.
type Received = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A client stack over a server that answers 503 to the first request and
/// 200 after, recording what it received.
fn client(
    clock: &ManualClock,
    limit: usize,
    received: &Received,
    events: &Arc<Mutex<Vec<EventKind>>>,
) -> impl Service<http::Request<Chunked>, Response = http::Response<()>, Error = BoxError> {
    let received = Arc::clone(received);
    let server = service_fn(move |request: http::Request<ReplayBody<Chunked>>| {
        let received = Arc::clone(&received);
        async move {
            let collected = request.into_body().collect().await?;
            let trailer = collected
                .trailers()
                .and_then(|trailers| trailers.get("x-checksum"))
                .map(|value| value.to_str().unwrap().to_owned());
            let body = String::from_utf8(collected.to_bytes().to_vec()).unwrap();
            let mut received = received.lock().unwrap();
            received.push((body, trailer));
            let status = if received.len() == 1 { 503 } else { 200 };
            Ok::<_, BoxError>(http::Response::builder().status(status).body(()).unwrap())
        }
    });
    let observe = ObserverBuilder::new().name("uploads").on_event({
        let events = Arc::clone(events);
        move |event| events.lock().unwrap().push(event.kind)
    });
    let retry = RetryLayer::builder()
        .policy(HttpRetry::new())
        .clone_request(ReplayRequests)
        .clock(clock.clone())
        .build()
        .unwrap();
    ServiceBuilder::new()
        .layer(BufferBodyLayer::observed(limit, observe).clock(clock.clone()))
        .layer(retry)
        .service(server)
}

fn put(body: Chunked) -> http::Request<Chunked> {
    http::Request::put("/files/1").body(body).unwrap()
}

/// Runs the call, moving the clock to the retry's wake-up when it sleeps.
fn run<S>(
    clock: &ManualClock,
    service: &mut S,
    request: http::Request<Chunked>,
) -> Result<u16, BoxError>
where
    S: Service<http::Request<Chunked>, Response = http::Response<()>, Error = BoxError>,
{
    let mut call = task::spawn(async {
        let response = service.ready().await?.call(request).await?;
        Ok::<_, BoxError>(response.status().as_u16())
    });
    for _ in 0..1_000 {
        if let Poll::Ready(result) = call.poll() {
            return result;
        }
        if let Some(wake) = clock.next_deadline() {
            clock.set(wake);
        }
    }
    panic!("the call never completed")
}

#[test]
fn a_small_streaming_body_is_replayed_whole_with_its_trailers() {
    let received = Received::default();
    let events = Arc::default();
    let clock = ManualClock::new();
    let mut service = client(&clock, 64, &received, &events);
    let body = Chunked::new(&["abc", "def", "ghij"], Some(("x-checksum", "42")));
    assert_eq!(run(&clock, &mut service, put(body)).unwrap(), 200);
    let expected = ("abcdefghij".to_string(), Some("42".to_string()));
    assert_eq!(*received.lock().unwrap(), [expected.clone(), expected]);
    assert!(events.lock().unwrap().is_empty());
}

#[test]
fn a_body_over_the_limit_is_sent_once_whole_and_not_retried() {
    let received = Received::default();
    let events = Arc::default();
    let clock = ManualClock::new();
    let mut service = client(&clock, 4, &received, &events);
    let body = Chunked::new(&["abc", "def", "ghij"], Some(("x-checksum", "42")));
    assert_eq!(
        run(&clock, &mut service, put(body)).unwrap(),
        503,
        "the only answer comes back"
    );
    assert_eq!(
        *received.lock().unwrap(),
        [("abcdefghij".to_string(), Some("42".to_string()))]
    );
    assert_eq!(
        *events.lock().unwrap(),
        [EventKind::BodyNotBuffered { limit: 4 }]
    );
}

#[test]
fn an_empty_body_is_replayable() {
    let received = Received::default();
    let events = Arc::default();
    let clock = ManualClock::new();
    let mut service = client(&clock, 0, &received, &events);
    assert_eq!(
        run(&clock, &mut service, put(Chunked::new(&[], None))).unwrap(),
        200
    );
    assert_eq!(received.lock().unwrap().len(), 2);
}

/// What a server sees of a body: how it shows, whether it can be replayed,
/// its size hint (lower, upper), and whether it says it has ended, before
/// its first frame and after each.
type Seen = Arc<Mutex<Vec<(String, bool, (u64, Option<u64>), Vec<bool>)>>>;

fn seeing(
    limit: usize,
    seen: &Seen,
) -> impl Service<http::Request<Chunked>, Response = http::Response<()>, Error = BoxError> {
    let seen = Arc::clone(seen);
    let server = service_fn(move |request: http::Request<ReplayBody<Chunked>>| {
        let seen = Arc::clone(&seen);
        async move {
            let mut body = request.into_body();
            let shown = format!("{body:?}");
            let replayable = body.is_replayable();
            let hint = body.size_hint();
            let mut ends = vec![body.is_end_stream()];
            while let Some(frame) = body.frame().await {
                frame?;
                ends.push(body.is_end_stream());
            }
            let hint = (hint.lower(), hint.upper());
            seen.lock().unwrap().push((shown, replayable, hint, ends));
            Ok::<_, BoxError>(http::Response::new(()))
        }
    });
    ServiceBuilder::new()
        .layer(BufferBodyLayer::new(limit))
        .service(server)
}

#[test]
fn a_replay_body_says_what_it_holds_and_when_it_ends() {
    let seen = Seen::default();
    let mut service = seeing(4, &seen);
    let mut send = |body| {
        tokio_test::block_on(async { service.ready().await?.call(put(body)).await }).unwrap();
        seen.lock().unwrap().pop().unwrap()
    };
    let whole = |len: usize| format!("ReplayBody {{ whole: {len} }}");
    // Data, then trailers: ended once both are read.
    assert_eq!(
        send(Chunked::new(&["ab", "c"], Some(("x-checksum", "42")))),
        (whole(3), true, (3, Some(3)), vec![false, false, true])
    );
    assert_eq!(
        send(Chunked::new(&["abc"], None)),
        (whole(3), true, (3, Some(3)), vec![false, true])
    );
    // Nothing at all: ended from the start.
    assert_eq!(
        send(Chunked::new(&[], None)),
        (whole(0), true, (0, Some(0)), vec![true])
    );
    // Over the limit: the bytes read first, then the rest of the stream,
    // whose end and size the stream tells (this one never says).
    let streaming = "ReplayBody { streaming: true }".to_owned();
    assert_eq!(
        send(Chunked::new(&["abc", "def", "gh"], None)),
        (
            streaming,
            false,
            (6, None),
            vec![false, false, false, false]
        )
    );
}

#[test]
fn readiness_is_the_wrapped_service_s() {
    let (mock, mut handle) =
        tower_test::mock::pair::<http::Request<ReplayBody<Chunked>>, http::Response<()>>();
    handle.allow(0);
    let mut service = tower_test::mock::Spawn::new(BufferBodyLayer::new(4).layer(mock));
    assert!(service.poll_ready().is_pending());
    handle.allow(1);
    assert!(service.is_woken());
    assert!(matches!(service.poll_ready(), Poll::Ready(Ok(()))));
    let reading = service.call(put(Chunked::new(&["abc"], None)));
    assert_eq!(format!("{reading:?}"), "BufferFuture { .. }");
}
