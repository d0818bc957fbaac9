//! A soak of one stack of all six layers: many tasks call it at once, the
//! upstream fails, stalls and panics at random, and callers give up in the
//! middle of calls. At the end it checks what must hold however the calls
//! went: every call was answered (or given up by its caller), no permit is
//! held, no upstream call is left alive, and the breaker closes again once
//! the upstream is healthy. Exits with an error when any of them does not.
//!
//! Run with `cargo run --release --example soak -- 60` (seconds; default 20).

use std::{
    panic,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use palisade::{
    bulkhead::BulkheadLayer,
    circuit_breaker::{CircuitBreakerLayer, CircuitState, OpenDuration},
    error::{Rejection, RejectionKind},
    fallback::{Failed, FallbackLayer},
    observe::EventKind,
    rate_limit::{Rate, RateLimitLayer},
    retry::{Backoff, Jitter, RetryBudget, RetryLayer},
    stack::ResilienceLayer,
    timeout::TimeoutLayer,
};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

const TASKS: u64 = 64;
/// The payload of the upstream's deliberate panics.
const ON_PURPOSE: &str = "upstream panicked on purpose";
/// Longer than any call through the stack can take; a call still running
/// after it is hung.
const HUNG: Duration = Duration::from_secs(5);

/// What happened to the calls, counted.
#[derive(Default)]
struct Tally {
    started: AtomicU64,
    answered: AtomicU64,
    fallback: AtomicU64,
    errors: AtomicU64,
    refused: [AtomicU64; RejectionKind::ALL.len()],
    panicked: AtomicU64,
    cancelled: AtomicU64,
    hung: AtomicU64,
}

/// The upstream's state: whether it misbehaves, and how many of its calls
/// are alive (made and not yet dropped).
struct Upstream {
    started: Instant,
    healthy: AtomicBool,
    alive: AtomicU64,
    calls: AtomicU64,
}

impl Upstream {
    /// One second in three is an outage: nine calls in ten fail.
    fn in_outage(&self) -> bool {
        self.started.elapsed().as_millis() / 1000 % 3 == 2
    }
}

/// Counts an upstream call alive until it is dropped — finished, cancelled
/// or unwound by a panic.
struct Alive(Arc<Upstream>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.alive.fetch_sub(1, Ordering::SeqCst);
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let seconds: u64 = std::env::args().nth(1).map_or(Ok(20), |s| s.parse())?;
    // The deliberate panics are expected; any other is reported.
    let unexpected = Arc::new(AtomicU64::new(0));
    panic::set_hook(Box::new({
        let unexpected = Arc::clone(&unexpected);
        move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
            if message != Some(ON_PURPOSE) {
                unexpected.fetch_add(1, Ordering::SeqCst);
                eprintln!("unexpected panic: {info}");
            }
        }
    }));

    let upstream = Arc::new(Upstream {
        started: Instant::now(),
        healthy: AtomicBool::new(false),
        alive: AtomicU64::new(0),
        calls: AtomicU64::new(0),
    });
    let transitions = Arc::new(AtomicU64::new(0));
    let breaker = CircuitBreakerLayer::builder()
        .name("soak")
        .on_event({
            let transitions = Arc::clone(&transitions);
            move |event| {
                if let EventKind::Transition { .. } = event.kind {
                    transitions.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .count_window(50)
        .minimum_calls(20)
        .open_duration(OpenDuration::fixed(Duration::from_millis(100)))
        .build()?;
    let handle = breaker.handle();
    let bulkhead = BulkheadLayer::builder(32)
        .name("soak")
        .queue(64, Duration::from_millis(5))
        .build()?;
    let stack = ResilienceLayer::new()
        .fallback(
            FallbackLayer::builder(|failed: Failed<'_, u64>| {
                let open = failed
                    .rejection()
                    .is_some_and(|r| r.kind() == RejectionKind::CircuitOpen);
                open.then_some(u64::MAX)
            })
            .build(),
        )
        .retry(
            RetryLayer::builder()
                .name("soak")
                .max_attempts(3)
                .backoff(Backoff::exponential(Duration::from_millis(1), 2.0).jitter(Jitter::Full))
                .budget(RetryBudget::tokens(100, 0.2)?)
                .deadline(Duration::from_millis(200))
                .build()?,
        )
        .circuit_breaker(breaker)
        .rate_limit(
            RateLimitLayer::builder()
                .name("soak")
                .token_bucket(Rate::per_second(50_000), 5_000)
                .build()?,
        )
        .bulkhead(bulkhead.clone())
        .timeout(
            TimeoutLayer::builder(Duration::from_millis(20))
                .name("soak")
                .build()?,
        );
    let service = ServiceBuilder::new().layer(stack).service_fn({
        let upstream = Arc::clone(&upstream);
        move |seed: u64| {
            let upstream = Arc::clone(&upstream);
            upstream.calls.fetch_add(1, Ordering::Relaxed);
            upstream.alive.fetch_add(1, Ordering::SeqCst);
            let alive = Alive(Arc::clone(&upstream));
            async move {
                let _alive = alive;
                let mut rng = StdRng::seed_from_u64(seed);
                let roll: u32 = rng.random_range(0..1000);
                let healthy = if upstream.in_outage() { 100 } else { 800 };
                if upstream.healthy.load(Ordering::Relaxed) || roll < healthy {
                    tokio::time::sleep(Duration::from_micros(rng.random_range(0..2000))).await;
                    return Ok(seed);
                }
                match roll {
                    ..900 => Err::<u64, BoxError>("upstream failed".into()),
                    900..980 => {
                        // Slower than the timeout.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(seed)
                    }
                    _ => {
                        tokio::time::sleep(Duration::from_micros(rng.random_range(0..500))).await;
                        panic!("upstream panicked on purpose")
                    }
                }
            }
        }
    });

    println!(
        "soak: {TASKS} tasks for {seconds} s on {} threads",
        std::thread::available_parallelism()?
    );
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let (service, tally) = (service.clone(), Arc::clone(&tally));
        tasks.spawn(async move {
            let mut rng = StdRng::seed_from_u64(task);
            while Instant::now() < until {
                let seed: u64 = rng.random();
                tally.started.fetch_add(1, Ordering::Relaxed);
                let mut call = tokio::spawn(service.clone().oneshot(seed));
                // One call in twenty is given up by its caller, at a random
                // moment.
                let give_up = rng.random_ratio(1, 20);
                let patience = Duration::from_micros(rng.random_range(0..3000));
                let outcome = if give_up {
                    tokio::select! {
                        outcome = &mut call => Some(outcome),
                        () = tokio::time::sleep(patience) => {
                            call.abort();
                            Some((&mut call).await)
                        }
                    }
                } else {
                    tokio::time::timeout(HUNG, &mut call).await.ok()
                };
                let fell_back = matches!(outcome, Some(Ok(Ok(u64::MAX))));
                let counter = match outcome {
                    None => {
                        call.abort();
                        &tally.hung
                    }
                    Some(Ok(Ok(u64::MAX))) => &tally.fallback,
                    Some(Ok(Ok(_))) => &tally.answered,
                    Some(Ok(Err(err))) => match Rejection::find(&*err) {
                        Some(rejection) => &tally.refused[rejection.kind() as usize],
                        None => &tally.errors,
                    },
                    Some(Err(join)) if join.is_panic() => &tally.panicked,
                    Some(Err(_)) => &tally.cancelled,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                // Like a client that was told the dependency is down, wait
                // a little before the next call.
                if fell_back {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        });
    }
    while let Some(task) = tasks.join_next().await {
        task?;
    }
    let elapsed = started.elapsed();

    // Every permit is back and every upstream call dropped, once the last
    // aborted call has been dropped by the runtime.
    let settle = Instant::now();
    while (bulkhead.in_flight() != 0 || upstream.alive.load(Ordering::SeqCst) != 0)
        && settle.elapsed() < Duration::from_secs(1)
    {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    // The breaker closes once the upstream is healthy again.
    upstream.healthy.store(true, Ordering::SeqCst);
    let recovery = Instant::now();
    let mut service = service.clone();
    while handle.state() != CircuitState::Closed && recovery.elapsed() < Duration::from_secs(5) {
        let _ = service.ready().await?.call(1).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let recovered = service.ready().await?.call(7).await.ok() == Some(7);

    let get = |counter: &AtomicU64| counter.load(Ordering::SeqCst);
    let refused: u64 = tally.refused.iter().map(get).sum();
    let ended = get(&tally.answered)
        + get(&tally.fallback)
        + get(&tally.errors)
        + refused
        + get(&tally.panicked)
        + get(&tally.cancelled)
        + get(&tally.hung);
    println!(
        "ran {:.1} s: {} calls ({:.0}/s), {} reached the upstream",
        elapsed.as_secs_f64(),
        get(&tally.started),
        get(&tally.started) as f64 / elapsed.as_secs_f64(),
        get(&upstream.calls)
    );
    println!("  answered by the upstream  {:>10}", get(&tally.answered));
    println!("  answered by the fallback  {:>10}", get(&tally.fallback));
    println!("  upstream errors           {:>10}", get(&tally.errors));
    for kind in RejectionKind::ALL {
        let n = get(&tally.refused[kind as usize]);
        if n > 0 {
            println!("  {:<26}{n:>10}", kind.as_str());
        }
    }
    println!("  panicked (upstream)       {:>10}", get(&tally.panicked));
    println!("  breaker transitions       {:>10}", get(&transitions));
    println!("  given up by the caller    {:>10}", get(&tally.cancelled));
    println!("  hung (over {HUNG:?})          {:>10}", get(&tally.hung));

    let checks = [
        (
            "every call answered or given up",
            ended == get(&tally.started) && get(&tally.hung) == 0,
        ),
        (
            "no bulkhead permit held",
            bulkhead.in_flight() == 0 && bulkhead.waiting() == 0,
        ),
        (
            "no upstream call left alive",
            upstream.alive.load(Ordering::SeqCst) == 0,
        ),
        (
            "the breaker closed again",
            handle.state() == CircuitState::Closed && recovered,
        ),
        ("no unexpected panic", get(&unexpected) == 0),
    ];
    let mut failed = false;
    for (check, held) in checks {
        println!("{} {check}", if held { "ok  " } else { "FAIL" });
        failed |= !held;
    }
    if failed {
        return Err("the soak found a fault".into());
    }
    Ok(())
}
