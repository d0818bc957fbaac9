//! The cached fallback next to the plain fallback layer, in one run: on the
//! success path (the cached one keeps the response: a copy into its cache;
//! or, for a request without a key, keeps nothing), and on the failure path
//! (the plain one makes its default answer, the cached one serves the kept
//! one). Once with `u64` responses, once with HTTP responses of a 64-byte
//! body, each read to its end (where the cached layer keeps it).

use std::{
    convert::Infallible,
    future::{Future, Ready, ready},
    hint::black_box,
    pin::pin,
    task::{Context, Poll, Waker},
};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::Full;
use palisade::{
    clock::TokioClock,
    fallback::{CachedLayer, Failed, FallbackLayer},
};
use palisade_benches::{Echo, ready_call, timer_runtime};
use tower::{BoxError, Layer, Service, service_fn};

/// Keys cycled through: the cache holds each.
const KEYS: u64 = 1_024;

/// A `u64` service that fails every call.
fn failing()
-> impl Service<u64, Response = u64, Error = BoxError, Future = Ready<Result<u64, BoxError>>> {
    service_fn(|_: u64| ready(Err::<u64, BoxError>("down".into())))
}

fn body() -> Full<Bytes> {
    Full::new(Bytes::from_static(&[b'x'; 64]))
}

/// An HTTP response of a 64-byte body.
type Answer = Response<Full<Bytes>>;

/// An HTTP service answering `status` with a 64-byte body.
fn http(
    status: StatusCode,
) -> impl Service<
    Request<()>,
    Response = Answer,
    Error = Infallible,
    Future = Ready<Result<Answer, Infallible>>,
> + Clone {
    service_fn(move |_: Request<()>| {
        let mut response = Response::new(body());
        *response.status_mut() = status;
        ready(Ok::<_, Infallible>(response))
    })
}

/// One HTTP call whose future and body are ready at once, the body read to
/// its end; whether it answered.
fn http_call<S, B>(service: &mut S, path: &'static str) -> bool
where
    S: Service<Request<()>, Response = Response<B>>,
    B: Body,
{
    let mut cx = Context::from_waker(Waker::noop());
    if !matches!(service.poll_ready(&mut cx), Poll::Ready(Ok(()))) {
        return false;
    }
    let request = Request::get(path).body(()).unwrap();
    let Poll::Ready(Ok(response)) = pin!(service.call(request)).poll(&mut cx) else {
        return false;
    };
    let mut body = pin!(response.into_body());
    loop {
        match body.as_mut().poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                black_box(frame);
            }
            Poll::Ready(None) => return true,
            _ => return false,
        }
    }
}

const PATHS: [&str; 4] = ["/a", "/b", "/c", "/d"];

fn success(c: &mut Criterion) {
    let runtime = timer_runtime();
    let _entered = runtime.enter();
    let mut group = c.benchmark_group("fallback, call succeeds, 1 thread");
    let mut bare = Echo;
    group.bench_function("bare service (baseline)", |b| {
        b.iter(|| ready_call(&mut bare, black_box(1)))
    });
    let mut plain = FallbackLayer::builder(|_: Failed<'_, u64>| Some(0))
        .build()
        .layer(Echo);
    group.bench_function("palisade fallback", |b| {
        b.iter(|| ready_call(&mut plain, black_box(1)))
    });
    let mut unkeyed = CachedLayer::builder(|_: &u64| None::<u64>)
        .clock(TokioClock::new())
        .build()
        .unwrap()
        .layer(Echo);
    group.bench_function("palisade cached, no key (nothing kept)", |b| {
        b.iter(|| ready_call(&mut unkeyed, black_box(1)))
    });
    let mut keyed = CachedLayer::builder(|id: &u64| Some(*id))
        .build()
        .unwrap()
        .layer(Echo);
    let mut i = 0;
    group.bench_function("palisade cached, kept (1024 keys)", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            ready_call(&mut keyed, black_box(i))
        })
    });
    let mut plain_http = FallbackLayer::builder(|_: Failed<'_, Response<Full<Bytes>>>| None)
        .build()
        .layer(http(StatusCode::OK));
    group.bench_function("HTTP, palisade fallback", |b| {
        b.iter(|| http_call(&mut plain_http, black_box("/a")))
    });
    let mut cached_http = CachedLayer::http()
        .build()
        .unwrap()
        .layer(http(StatusCode::OK));
    let mut j = 0;
    group.bench_function("HTTP, palisade cached, kept (4 paths)", |b| {
        b.iter(|| {
            j = (j + 1) % PATHS.len();
            http_call(&mut cached_http, black_box(PATHS[j]))
        })
    });
    let mut post_http = CachedLayer::http()
        .build()
        .unwrap()
        .layer(service_fn(|_: Request<()>| {
            ready(Ok::<_, Infallible>(Response::new(body())))
        }));
    group.bench_function("HTTP, palisade cached, not kept (no key)", |b| {
        b.iter(|| {
            let mut cx = Context::from_waker(Waker::noop());
            let _ = post_http.poll_ready(&mut cx);
            let request = Request::post("/a").body(()).unwrap();
            let Poll::Ready(Ok(response)) = pin!(post_http.call(request)).poll(&mut cx) else {
                panic!("ready at once");
            };
            let mut body = pin!(response.into_body());
            while let Poll::Ready(Some(Ok(frame))) = body.as_mut().poll_frame(&mut cx) {
                black_box(frame);
            }
        })
    });
    group.finish();
}

fn failure(c: &mut Criterion) {
    let runtime = timer_runtime();
    let _entered = runtime.enter();
    let mut group = c.benchmark_group("fallback, call fails, 1 thread");
    let mut plain = FallbackLayer::builder(|_: Failed<'_, u64>| Some(0))
        .build()
        .layer(failing());
    group.bench_function("palisade fallback (a default)", |b| {
        b.iter(|| ready_call(&mut plain, black_box(1)))
    });
    let layer = CachedLayer::builder(|id: &u64| Some(*id))
        .max_stale(std::time::Duration::from_secs(3_600))
        .build()
        .unwrap();
    let mut fill = layer.layer(Echo);
    for id in 0..KEYS {
        assert!(ready_call(&mut fill, id));
    }
    let mut cached = layer.layer(failing());
    let mut i = 0;
    group.bench_function("palisade cached, served (1024 keys)", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            ready_call(&mut cached, black_box(i))
        })
    });
    let mut plain_http =
        FallbackLayer::builder(|_: Failed<'_, Response<Full<Bytes>>>| Some(Response::new(body())))
            .classifier(palisade::classify::ServerErrorsAsFailures::new())
            .build()
            .layer(http(StatusCode::BAD_GATEWAY));
    group.bench_function("HTTP, palisade fallback (a default)", |b| {
        b.iter(|| http_call(&mut plain_http, black_box("/a")))
    });
    let layer = CachedLayer::http()
        .max_stale(std::time::Duration::from_secs(3_600))
        .build()
        .unwrap();
    let mut fill = layer.layer(http(StatusCode::OK));
    for path in PATHS {
        assert!(http_call(&mut fill, path));
    }
    assert_eq!(layer.len(), PATHS.len());
    let mut cached_http = layer.layer(http(StatusCode::BAD_GATEWAY));
    let mut j = 0;
    group.bench_function("HTTP, palisade cached, served (4 paths)", |b| {
        b.iter(|| {
            j = (j + 1) % PATHS.len();
            http_call(&mut cached_http, black_box(PATHS[j]))
        })
    });
    group.finish();
}

criterion_group!(benches, success, failure);
criterion_main!(benches);
