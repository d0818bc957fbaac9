//! Helpers shared by palisade's benchmarks: a service that is always ready
//! and answers at once, a way to drive such a service without a runtime, so
//! that a benchmark measures the layer and nothing else, and the stacks the
//! stack benchmarks compare.

use std::{
    convert::Infallible,
    future::{Future, Ready, ready},
    hint::black_box,
    pin::pin,
    sync::Barrier,
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

use palisade::{
    bulkhead::BulkheadLayer,
    circuit_breaker::CircuitBreakerLayer,
    clock::Clock,
    fallback::{Failed, FallbackLayer},
    rate_limit::{NoKey, Rate, RateLimitLayer, UnitCost},
    retry::RetryLayer,
    stack::ResilienceLayer,
    timeout::TimeoutLayer,
};
use tower::{Layer, Service, ServiceBuilder};

/// A service that is always ready and answers its request at once.
#[derive(Clone, Copy, Debug, Default)]
pub struct Echo;

impl Service<u64> for Echo {
    type Response = u64;
    type Error = Infallible;
    type Future = Ready<Result<u64, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: u64) -> Self::Future {
        ready(Ok(request))
    }
}

/// A service that is always ready and answers on the second poll: the first
/// returns `Pending` (the caller is polled again at once), so a timeout
/// around it arms its timer.
#[derive(Clone, Copy, Debug, Default)]
pub struct PendingOnce;

/// The future of [`PendingOnce`].
#[derive(Debug)]
pub struct SecondPoll {
    polled: bool,
    request: u64,
}

impl Future for SecondPoll {
    type Output = Result<u64, Infallible>;

    fn poll(mut self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        if self.polled {
            Poll::Ready(Ok(self.request))
        } else {
            self.polled = true;
            Poll::Pending
        }
    }
}

impl Service<u64> for PendingOnce {
    type Response = u64;
    type Error = Infallible;
    type Future = SecondPoll;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: u64) -> SecondPoll {
        SecondPoll {
            polled: false,
            request,
        }
    }
}

/// A current-thread tokio runtime with its timer, for benchmarks of layers
/// (tower's, tower-resilience's, `TokioClock`) that make tokio sleeps and so
/// need a timer to exist, though no sleep is ever awaited. Enter it for as
/// long as the benchmark runs: `let _entered = runtime.enter();`.
pub fn timer_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime")
}

/// `poll_ready` until ready, then `call` and poll the response future until
/// it completes, as a caller of the service does, without a runtime; whether
/// the call succeeded.
///
/// A layer that is not ready (one waiting on a lock another thread holds) is
/// simply polled again. The response goes through `black_box` where it is
/// made and only a `bool` comes back, so that every row pays the same for
/// the result whatever the size of the layer's error type: copying a
/// 16-byte `Result` out of the call costs a store-forwarding stall that
/// an 8-byte one does not.
pub fn ready_call<S>(service: &mut S, request: u64) -> bool
where
    S: Service<u64>,
{
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        match service.poll_ready(&mut cx) {
            Poll::Ready(Ok(())) => break,
            Poll::Ready(Err(_)) => return false,
            Poll::Pending => std::hint::spin_loop(),
        }
    }
    let mut future = pin!(service.call(request));
    loop {
        if let Poll::Ready(result) = future.as_mut().poll(&mut cx) {
            return match result {
                Ok(response) => {
                    black_box(response);
                    true
                }
                Err(_) => false,
            };
        }
        std::hint::spin_loop();
    }
}

/// Two threads, each with its own clone of `state`, run `op` `iters` times
/// at once; the time of the slower one. For `iter_custom`: each iteration is
/// one operation on *each* thread, so aggregate throughput holds up when
/// this stays under twice the one-thread time.
pub fn on_two_threads<T, F>(state: T, iters: u64, op: F) -> Duration
where
    T: Clone + Send,
    F: Fn(&mut T, u64) + Sync,
{
    let barrier = Barrier::new(2);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let mut state = state.clone();
                let (barrier, op) = (&barrier, &op);
                scope.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    for i in 0..iters {
                        op(&mut state, black_box(i));
                    }
                    start.elapsed()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().unwrap())
            .max()
            .unwrap()
    })
}

/// [`on_two_threads`] with `ready_call` on clones of `service`.
pub fn two_threads<S>(service: S, iters: u64) -> Duration
where
    S: Service<u64> + Clone + Send,
    S::Error: std::fmt::Debug,
{
    on_two_threads(service, iters, |service, i| {
        assert!(ready_call(service, i));
    })
}

/// Whether the `harness = false` bench called `name` sits this run out:
/// `cargo bench` hands every bench the filter meant for criterion's, and a
/// filter that does not name this bench is for the others.
pub fn filtered_out(name: &str) -> bool {
    let filter = std::env::args().skip(1).find(|arg| !arg.starts_with('-'));
    filter.is_some_and(|filter| !name.contains(&filter))
}

/// A token bucket no benchmark reaches, on `clock`.
pub fn rate_limit_on<C: Clock>(clock: C) -> RateLimitLayer<NoKey, UnitCost, C> {
    RateLimitLayer::builder()
        .token_bucket(Rate::per_second(1_000_000_000), u32::MAX)
        .clock(clock)
        .build()
        .unwrap()
}

/// A leaky bucket releasing one request a nanosecond (holding 1 000) on
/// `clock`: a request finds it idle whenever the clock has moved since the
/// last one's.
pub fn leaky_on<C: Clock>(clock: C) -> RateLimitLayer<NoKey, UnitCost, C> {
    RateLimitLayer::builder()
        .leaky_bucket(Rate::per_second(1_000_000_000), 1_000)
        .clock(clock)
        .build()
        .unwrap()
}

/// All six palisade layers around `Echo`, with `rate_limit` as the rate
/// limiter; every other layer with its defaults.
pub fn six_layers<C: Clock>(rate_limit: RateLimitLayer<NoKey, UnitCost, C>) -> impl Service<u64> {
    ResilienceLayer::new()
        .fallback(FallbackLayer::builder(|_: Failed<'_, u64>| Some(0)).build())
        .retry(RetryLayer::builder().build().unwrap())
        .circuit_breaker(CircuitBreakerLayer::builder().build().unwrap())
        .rate_limit(rate_limit)
        .bulkhead(BulkheadLayer::builder(1_000).build().unwrap())
        .timeout(
            TimeoutLayer::builder(Duration::from_secs(1))
                .build()
                .unwrap(),
        )
        .layer(Echo)
}

/// The three layers tower has (rate limit, concurrency limit, timeout)
/// around `Echo`, with limits no benchmark reaches.
pub fn towers_three_layers() -> impl Service<u64> {
    let second = Duration::from_secs(1);
    ServiceBuilder::new()
        .layer(tower::limit::RateLimitLayer::new(u64::MAX, second))
        .layer(tower::limit::ConcurrencyLimitLayer::new(1_000))
        .layer(tower::timeout::TimeoutLayer::new(second))
        .service(Echo)
}
