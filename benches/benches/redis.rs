//! The rate limiter on Redis next to what one round trip can do: decisions
//! a second and their latency at 1, 16 and 64 concurrent callers, in one
//! run against one local `redis-server` (started here), beside
//! `redis-benchmark` on the same server — `PING`, and an `EVALSHA` of the
//! same token bucket script (the physical limit of one decision) — and a
//! naive fixed window of `INCR` + `EXPIRE` (pipelined, one round trip). And
//! the cost of a refusal from the denial cache, which makes no round trip.
//!
//! palisade's callers share one multiplexed connection, as the instances of
//! a service do; `redis-benchmark` opens a connection per caller.
//!
//! Run with `cargo bench -p palisade-benches --bench redis` (needs
//! `redis-server` and `redis-benchmark`: Debian's `redis-server` and
//! `redis-tools`). Prints Markdown tables.

use std::{
    future::Future,
    pin::pin,
    process::Command,
    sync::Arc,
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

use palisade::{
    clock::ManualClock,
    rate_limit::{Rate, RateLimitLayer},
};
use palisade_benches::filtered_out;
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};

#[allow(dead_code)]
#[path = "../../tests/it/rate_limit_redis/server.rs"]
mod server;

const CALLERS: [usize; 3] = [1, 16, 64];
const RUN_FOR: Duration = Duration::from_secs(3);
const KEYS: u64 = 100_000;

/// Decisions a second, and the 50th and 99th percentile latencies.
struct Measured {
    rate: f64,
    p50: Duration,
    p99: Duration,
}

fn percentiles(mut latencies: Vec<Duration>, elapsed: Duration) -> Measured {
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    Measured {
        rate: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    }
}

/// `callers` tasks calling `decide` with random keys for `RUN_FOR`.
async fn hammer<F, Fut>(callers: usize, decide: F) -> Measured
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for caller in 0..callers as u64 {
        let decide = decide.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut key = caller.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            while started.elapsed() < RUN_FOR {
                key = key.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let asked = Instant::now();
                decide(key % KEYS).await;
                latencies.push(asked.elapsed());
            }
            latencies
        });
    }
    let mut latencies = Vec::new();
    while let Some(task) = tasks.join_next().await {
        latencies.extend(task.unwrap());
    }
    percentiles(latencies, started.elapsed())
}

/// `redis-benchmark`'s row for `command` at `callers` connections.
fn redis_benchmark(port: u16, callers: usize, command: &[&str]) -> Measured {
    let requests = (callers * 20_000).to_string();
    let output = Command::new("redis-benchmark")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-c",
            &callers.to_string(),
        ])
        .args(["-n", &requests, "-r", &KEYS.to_string(), "--csv"])
        .args(command)
        .output()
        .expect("redis-benchmark runs (Debian: redis-tools)");
    let csv = String::from_utf8_lossy(&output.stdout);
    // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms",…
    let row = csv.lines().last().expect("a CSV row");
    let fields: Vec<f64> = row
        .split(',')
        .skip(1)
        .map(|field| field.trim_matches('"').parse().unwrap_or(f64::NAN))
        .collect();
    let ms = |value: f64| Duration::from_secs_f64(value / 1_000.0);
    Measured {
        rate: fields[0],
        p50: ms(fields[3]),
        p99: ms(fields[5]),
    }
}

/// The time one refusal of key 7 takes through `service`, which refuses
/// at once.
fn refusals<S: Service<u64>>(service: &mut S) -> Duration {
    let calls = 1_000_000u32;
    let mut cx = Context::from_waker(Waker::noop());
    let started = Instant::now();
    for _ in 0..calls {
        let call = pin!(std::hint::black_box(&mut *service).call(7));
        assert!(matches!(call.poll(&mut cx), Poll::Ready(Err(_))));
    }
    started.elapsed() / calls
}

fn main() -> Result<(), BoxError> {
    if filtered_out("redis") {
        return Ok(());
    }
    let Some(redis) = server::RedisServer::start() else {
        return Ok(());
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let script = include_str!("../../src/rate_limit/redis/token_bucket.lua");
    let sha = redis::Script::new(script).get_hash().to_owned();
    let url = redis.url();
    runtime.block_on(async {
        let mut connection = redis.connection().await;
        let _: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(script)
            .query_async(&mut connection)
            .await?;
        Ok::<_, BoxError>(())
    })?;

    println!(
        "| callers | palisade, decisions/s | p50 | p99 | the script by the `redis` crate alone, /s | p50 | p99 | redis-benchmark EVALSHA, /s | p50 | p99 | palisade / EVALSHA | redis-benchmark PING, /s | INCR + EXPIRE, /s | p50 | p99 |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for callers in CALLERS {
        let (ours, bare, naive) = runtime.block_on(async {
            let client = redis::Client::open(url.as_str())?;
            let layer = RateLimitLayer::builder()
                .name("bench")
                .token_bucket(Rate::per_second(1_000_000), u32::MAX)
                .key(|key: &u64| Some(*key))
                .redis(redis::aio::ConnectionManager::new(client.clone()).await?)
                .timeout(Duration::from_secs(1))
                .build()?;
            let service = layer.layer(service_fn(|x: u64| async move {
                Ok::<_, std::convert::Infallible>(x)
            }));
            let ours = hammer(callers, move |key| {
                let service = service.clone();
                async move {
                    service.oneshot(key).await.expect("admitted");
                }
            })
            .await;
            let connection = redis::aio::ConnectionManager::new(client.clone()).await?;
            let bucket = Arc::new(redis::Script::new(script));
            let bare = hammer(callers, move |key| {
                let (mut connection, bucket) = (connection.clone(), Arc::clone(&bucket));
                async move {
                    let _: (i64, i64, i64, i64) = bucket
                        .key(format!("bare:{{{key}}}"))
                        .arg(1)
                        .arg(u32::MAX)
                        .arg(1)
                        .arg(0)
                        .arg("")
                        .invoke_async(&mut connection)
                        .await
                        .expect("EVALSHA");
                }
            })
            .await;
            let connection = redis::aio::ConnectionManager::new(client).await?;
            let naive = hammer(callers, move |key| {
                let mut connection = connection.clone();
                async move {
                    let key = format!("naive:{key}");
                    let (_, _): (u64, bool) = redis::pipe()
                        .incr(&key, 1)
                        .expire(&key, 1)
                        .query_async(&mut connection)
                        .await
                        .expect("INCR + EXPIRE");
                }
            })
            .await;
            Ok::<_, BoxError>((ours, bare, naive))
        })?;
        let evalsha = redis_benchmark(
            redis.port(),
            callers,
            &[
                "evalsha",
                &sha,
                "1",
                "bench:{__rand_int__}",
                "1",
                "4294967295",
                "1",
                "0",
                "",
            ],
        );
        let ping = redis_benchmark(redis.port(), callers, &["ping"]);
        println!(
            "| {callers} | {:.0} | {:.0?} | {:.0?} | {:.0} | {:.0?} | {:.0?} | {:.0} | {:.0?} | {:.0?} | {:.2} | {:.0} | {:.0} | {:.0?} | {:.0?} |",
            ours.rate,
            ours.p50,
            ours.p99,
            bare.rate,
            bare.p50,
            bare.p99,
            evalsha.rate,
            evalsha.p50,
            evalsha.p99,
            ours.rate / evalsha.rate,
            ping.rate,
            naive.rate,
            naive.p50,
            naive.p99,
        );
    }

    // A refusal from the denial cache: no round trip.
    let per_call = runtime.block_on(async {
        let clock = ManualClock::new();
        let layer = RateLimitLayer::builder()
            .name("bench-denials")
            .token_bucket(Rate::new(1, Duration::from_secs(3_600)), 1)
            .key(|key: &u64| Some(*key))
            .clock(clock)
            .redis(redis.connection().await)
            .layer_clock()
            .build()?;
        let mut service = layer.layer(service_fn(|x: u64| async move { Ok::<_, BoxError>(x) }));
        service.ready().await?.call(7).await?;
        assert!(
            service.ready().await?.call(7).await.is_err(),
            "refused by Redis"
        );
        Ok::<_, BoxError>(refusals(&mut service))
    })?;
    // The same refusal by the in-process keyed limiter, for scale.
    let layer = RateLimitLayer::builder()
        .token_bucket(Rate::new(1, Duration::from_secs(3_600)), 1)
        .key(|key: &u64| Some(*key))
        .clock(ManualClock::new())
        .build()?;
    let mut service = layer.layer(service_fn(|x: u64| async move { Ok::<_, BoxError>(x) }));
    assert!(matches!(
        pin!(service.call(7)).poll(&mut Context::from_waker(Waker::noop())),
        Poll::Ready(Ok(7))
    ));
    let in_process = refusals(&mut service);
    println!("\n| a refused request | per refusal |\n|---|---:|");
    println!("| on Redis, from the denial cache (no round trip) | {per_call:.0?} |");
    println!("| in-process keyed token bucket | {in_process:.0?} |");
    Ok(())
}
