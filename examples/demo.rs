//! palisade end to end: a flaky upstream on loopback (its faults injected by
//! palisade's chaos layers), and a client whose
//! full stack (fallback → retry → circuit breaker → rate limit → bulkhead →
//! timeout) keeps answering through latency spikes, a slow upstream, bursts
//! of 5xx, a full outage, the recovery and a traffic surge — each layer acts
//! in its phase. Prints a line per second (with a legend of the columns) and
//! a summary; runs for about 18 seconds on the real clock.
//!
//! Run with `cargo run --example demo --features full`.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Router, error_handling::HandleErrorLayer, http::StatusCode, response::IntoResponse,
    routing::get,
};
use http::{Request, Response};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::{
    client::legacy::Client,
    rt::{TokioExecutor, TokioTimer},
};
use palisade::{
    bulkhead::BulkheadLayer,
    chaos::{self, ChaosLayer, Latency},
    circuit_breaker::{CircuitBreakerHandle, CircuitBreakerLayer, OpenDuration},
    classify::ServerErrorsAsFailures,
    error::RejectionKind,
    fallback::{Failed, FallbackLayer},
    observe::{Event, EventKind},
    rate_limit::{Rate, RateLimitLayer},
    retry::{
        Backoff, Jitter, RetryBudget, RetryLayer,
        body::{BufferBodyLayer, ReplayBody, ReplayRequests},
        http::HttpRetry,
    },
    stack::ResilienceLayer,
    timeout::TimeoutLayer,
};
use tower::{BoxError, Service, ServiceBuilder, ServiceExt, service_fn, util::BoxCloneService};

/// The script: from `start` seconds on, the upstream behaves as `phase`
/// and the client sends `rate` requests a second.
const SCRIPT: [(u64, &str, u32); 7] = [
    (0, "healthy", 100),
    (2, "latency spikes", 100),
    (5, "slow upstream", 100),
    (8, "bursts of 5xx", 100),
    (10, "outage", 100),
    (12, "recovery", 100),
    (15, "traffic surge", 300),
];
const RUN_FOR: Duration = Duration::from_secs(18);
/// The sending loop ticks 1000 times a second.
const TICK: Duration = Duration::from_millis(1);

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let started = Instant::now();
    let upstream = start_upstream(started).await?;
    let counters = Arc::new(Counters::default());
    let (client, breaker) = client(&counters)?;

    println!(
        "upstream on {upstream}; running for {}s\n",
        RUN_FOR.as_secs()
    );
    println!("each line is one second; the columns count");
    println!("  requests:  sent (by the client), ok (answered by the upstream), fallback");
    println!("             (answered by the fallback)");
    println!("  attempts:  retries (scheduled by the retry), limited (refused by the rate");
    println!("             limit), open (refused by the open breaker), full (refused by the");
    println!("             full bulkhead), timeouts (cut by the timeout) — one request may");
    println!("             count in several, once per attempt");
    println!("  breaker:   the circuit breaker's state at the end of the second\n");
    println!(
        "{:>3}  {:<15}{:>5}{:>5}{:>9}{:>8}{:>8}{:>8}{:>8}{:>9}  breaker",
        "t", "phase", "sent", "ok", "fallback", "retries", "limited", "open", "full", "timeouts"
    );

    let mut send = tokio::time::interval(TICK);
    let mut credit = 0.0;
    let mut report = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let mut second = 0;
    let mut totals = Row::default();
    let mut calls = tokio::task::JoinSet::new();
    while second < RUN_FOR.as_secs() {
        tokio::select! {
            _ = send.tick() => {
                credit += f64::from(script(started.elapsed()).2) * TICK.as_secs_f64();
                if credit < 1.0 {
                    continue;
                }
                credit -= 1.0;
                counters.sent.fetch_add(1, Ordering::Relaxed);
                let client = client.clone();
                let counters = Arc::clone(&counters);
                calls.spawn(async move {
                    let response = call(client, upstream).await;
                    let served = response.headers().contains_key("x-fallback");
                    let counter = if served { &counters.fallbacks } else { &counters.ok };
                    counter.fetch_add(1, Ordering::Relaxed);
                });
            }
            _ = report.tick() => {
                let row = counters.take();
                println!(
                    "{:>3}  {:<15}{:>5}{:>5}{:>9}{:>8}{:>8}{:>8}{:>8}{:>9}  {}",
                    second, script(Duration::from_secs(second)).1, row.sent, row.ok, row.fallbacks,
                    row.retries, row.limited, row.open, row.full, row.timeouts, breaker.state()
                );
                totals.add(&row);
                second += 1;
            }
            Some(_) = calls.join_next() => {}
        }
    }
    // Every call is bounded (3 attempts of at most 200 ms, plus backoff).
    while calls.join_next().await.is_some() {}
    totals.add(&counters.take());

    println!("\nsummary after {:.1}s:", started.elapsed().as_secs_f64());
    println!("  requests sent           {}", totals.sent);
    println!("  answered by upstream    {}", totals.ok);
    println!("  answered by fallback    {}", totals.fallbacks);
    println!("  retries                 {}", totals.retries);
    println!(
        "  refused: rate limit {}, circuit open {}, bulkhead full {}; attempts timed out {}",
        totals.limited, totals.open, totals.full, totals.timeouts
    );
    println!(
        "  every request got an answer: {}",
        totals.sent == totals.ok + totals.fallbacks
    );
    Ok(())
}

/// The upstream: a local HTTP server whose faults are injected by chaos
/// layers, following [`SCRIPT`]: every answer takes 5 ms; a fifth of them
/// 400 ms more in the latency spikes; 115 ms more when it is slow; every
/// other half second answers 503 in the bursts; everything fails in the
/// outage. A task moves the chaos from phase to phase.
async fn start_upstream(started: Instant) -> Result<SocketAddr, BoxError> {
    let base = ChaosLayer::builder()
        .name("upstream.base")
        .latency(1.0, Latency::Fixed(Duration::from_millis(5)))
        .build()?;
    let phase = ChaosLayer::builder()
        .name("upstream.phase")
        .response(0.0, |_: &Request<axum::body::Body>| {
            (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response()
        })
        .disabled()
        .build()?;
    let app = Router::new().route("/", get(|| async { "fresh" })).layer(
        ServiceBuilder::new()
            // An injected error is the outage's 500.
            .layer(HandleErrorLayer::new(|_: BoxError| async {
                (StatusCode::INTERNAL_SERVER_ERROR, "down")
            }))
            .layer(base)
            .layer(phase.clone()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tick.tick().await;
            let settings = chaos_for(started.elapsed());
            if settings != phase.settings() {
                phase
                    .reconfigure(settings)
                    .expect("the script's settings are valid");
            }
        }
    });
    Ok(addr)
}

/// What the upstream's phase layer injects at `elapsed`.
fn chaos_for(elapsed: Duration) -> chaos::Settings {
    let mut settings = chaos::Settings::default();
    let delay = |settings: &mut chaos::Settings, probability, millis| {
        settings.latency = probability;
        settings.delay = Latency::Fixed(Duration::from_millis(millis));
    };
    match script(elapsed).1 {
        "latency spikes" => delay(&mut settings, 0.2, 400),
        // 100 requests a second of 120 ms each: about 12 in flight, past
        // the bulkhead's 8 (and within the timeout).
        "slow upstream" => delay(&mut settings, 1.0, 115),
        "bursts of 5xx" => {
            settings.response = f64::from(u8::from(elapsed.as_millis() / 500 % 2 == 0))
        }
        "outage" => settings.error = 1.0,
        _ => settings.enabled = false,
    }
    settings
}

/// The line of [`SCRIPT`] in force at `elapsed`.
fn script(elapsed: Duration) -> (u64, &'static str, u32) {
    let second = elapsed.as_secs();
    *SCRIPT
        .iter()
        .rev()
        .find(|(start, ..)| second >= *start)
        .unwrap_or(&SCRIPT[0])
}

/// The whole client: requests in, whole responses out.
type Stack = BoxCloneService<Request<Empty<Bytes>>, Response<Bytes>, BoxError>;

/// What the stack hands the HTTP client: the request body, kept for replay.
type Body = ReplayBody<Empty<Bytes>>;

/// The client stack, and the breaker's handle to show its state.
fn client(counters: &Arc<Counters>) -> Result<(Stack, CircuitBreakerHandle), BoxError> {
    let http = Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .build_http::<Body>();
    // The innermost service reads the whole body, so the timeout covers it.
    let send = service_fn(move |request: Request<Body>| {
        let http = http.clone();
        async move {
            let (parts, body) = http.request(request).await?.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok::<_, BoxError>(Response::from_parts(parts, body))
        }
    });

    let listen = |counters: &Arc<Counters>| {
        let counters = Arc::clone(counters);
        move |event: &Event<'_>| counters.record(event)
    };
    let breaker = CircuitBreakerLayer::builder()
        .name("upstream")
        .classifier(ServerErrorsAsFailures::new())
        .count_window(50)
        .minimum_calls(20)
        .failure_rate(0.5)
        .open_duration(OpenDuration::fixed(Duration::from_secs(1)))
        .on_event(listen(counters))
        .build()?;
    let handle = breaker.handle();
    let stack = ResilienceLayer::new()
        .fallback(
            FallbackLayer::builder(|failed: Failed<'_, Response<Bytes>>| {
                let mut cached = Response::new(Bytes::from_static(b"cached"));
                cached
                    .headers_mut()
                    .insert("x-fallback", failed.reason().parse().ok()?);
                Some(cached)
            })
            .name("upstream")
            .classifier(ServerErrorsAsFailures::new())
            .on_event(listen(counters))
            .build(),
        )
        .retry(
            RetryLayer::builder()
                .name("upstream")
                .policy(HttpRetry::new())
                .clone_request(ReplayRequests)
                .max_attempts(3)
                .backoff(
                    Backoff::exponential(Duration::from_millis(25), 2.0)
                        .max_delay(Duration::from_millis(200))
                        .jitter(Jitter::Full),
                )
                .budget(RetryBudget::ttl(Duration::from_secs(10), 10, 0.5)?)
                .on_event(listen(counters))
                .build()?,
        )
        .circuit_breaker(breaker)
        .rate_limit(
            RateLimitLayer::builder()
                .name("upstream")
                .token_bucket(Rate::per_second(150), 30)
                .on_event(listen(counters))
                .build()?,
        )
        .bulkhead(
            BulkheadLayer::builder(8)
                .name("upstream")
                .on_event(listen(counters))
                .build()?,
        )
        .timeout(
            TimeoutLayer::builder(Duration::from_millis(200))
                .name("upstream")
                .on_event(listen(counters))
                .build()?,
        );
    let client = ServiceBuilder::new()
        .layer(BoxCloneService::layer())
        .layer(BufferBodyLayer::new(64 * 1024))
        .layer(stack)
        .service(send);
    Ok((client, handle))
}

/// One GET through the stack; the fallback answers every failure, so this
/// always gets a response.
async fn call(mut client: Stack, upstream: SocketAddr) -> Response<Bytes> {
    let request = Request::get(format!("http://{upstream}/"))
        .body(Empty::new())
        .expect("a valid request");
    let answer = match client.ready().await {
        Ok(ready) => ready.call(request).await,
        Err(error) => Err(error),
    };
    answer.unwrap_or_else(|error| panic!("the fallback answers every failure, yet: {error}"))
}

/// What happened in the current second, counted from the layers' events
/// and the answers the client got.
#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    ok: AtomicU64,
    fallbacks: AtomicU64,
    retries: AtomicU64,
    limited: AtomicU64,
    open: AtomicU64,
    full: AtomicU64,
    timeouts: AtomicU64,
}

impl Counters {
    fn record(&self, event: &Event<'_>) {
        let counter = match event.kind {
            EventKind::RetryScheduled { .. } => &self.retries,
            EventKind::TimedOut { .. } => &self.timeouts,
            EventKind::Rejected { kind, .. } => match kind {
                RejectionKind::RateLimited => &self.limited,
                RejectionKind::CircuitOpen => &self.open,
                RejectionKind::BulkheadFull => &self.full,
                _ => return,
            },
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn take(&self) -> Row {
        let take = |counter: &AtomicU64| counter.swap(0, Ordering::Relaxed);
        Row {
            sent: take(&self.sent),
            ok: take(&self.ok),
            fallbacks: take(&self.fallbacks),
            retries: take(&self.retries),
            limited: take(&self.limited),
            open: take(&self.open),
            full: take(&self.full),
            timeouts: take(&self.timeouts),
        }
    }
}

#[derive(Default)]
struct Row {
    sent: u64,
    ok: u64,
    fallbacks: u64,
    retries: u64,
    limited: u64,
    open: u64,
    full: u64,
    timeouts: u64,
}

impl Row {
    fn add(&mut self, other: &Row) {
        self.sent += other.sent;
        self.ok += other.ok;
        self.fallbacks += other.fallbacks;
        self.retries += other.retries;
        self.limited += other.limited;
        self.open += other.open;
        self.full += other.full;
        self.timeouts += other.timeouts;
    }
}
