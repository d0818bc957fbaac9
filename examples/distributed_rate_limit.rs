//! One rate limit for a fleet: two axum instances on two loopback ports,
//! each with its own connection to one Redis, enforce one limit per tenant
//! together — not one each. Three tenants send 20 requests a second for
//! 3 s, alternating between the instances; the limit is 5 a second with
//! bursts of 5. Prints what each instance admitted and what the fleet did.
//!
//! Uses `REDIS_URL` when set; otherwise starts a `redis-server` of its own
//! (Debian: `apt-get install redis-server`).
//!
//! Run with `cargo run --example distributed_rate_limit --features axum,redis`.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Router, extract::Request, routing::get};
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use palisade::{
    rate_limit::{Rate, RateLimitLayer},
    stack::http::HttpAnswerLayer,
};
use tokio::net::{TcpListener, TcpStream};
use tower::{BoxError, ServiceBuilder};

#[allow(dead_code)]
#[path = "../tests/it/rate_limit_redis/server.rs"]
mod server;

const TENANTS: [&str; 3] = ["acme", "globex", "initech"];
const RUN_FOR: Duration = Duration::from_secs(3);

/// Starts one instance; counts what its handler is reached with.
async fn instance(url: &str, admitted: Arc<AtomicU64>) -> Result<SocketAddr, BoxError> {
    let connection = redis::aio::ConnectionManager::new(redis::Client::open(url)?).await?;
    let limit = RateLimitLayer::builder()
        .name("demo")
        .token_bucket(Rate::per_second(5), 5)
        .key(|request: &Request| {
            let tenant = request.headers().get("x-tenant")?;
            Some(tenant.to_str().ok()?.to_owned())
        })
        .redis(connection)
        .build()?;
    let app = Router::new()
        .route(
            "/",
            get(move || async move {
                admitted.fetch_add(1, Ordering::Relaxed);
                "ok"
            }),
        )
        .layer(
            ServiceBuilder::new()
                .layer(HttpAnswerLayer::new())
                .layer(limit),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

/// One tenant's requests, alternating between the instances; how many got
/// `200`.
async fn tenant(name: &'static str, fleet: [SocketAddr; 2]) -> Result<u64, BoxError> {
    let mut senders = Vec::new();
    for addr in fleet {
        let stream = TcpStream::connect(addr).await?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        senders.push(sender);
    }
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let (mut sent, mut ok) = (0usize, 0);
    while started.elapsed() < RUN_FOR {
        tick.tick().await;
        let sender = &mut senders[sent % 2];
        sent += 1;
        let request = hyper::Request::get("/")
            .header("host", "localhost")
            .header("x-tenant", name)
            .body(Empty::<Bytes>::new())?;
        sender.ready().await?;
        if sender.send_request(request).await?.status() == 200 {
            ok += 1;
        }
    }
    Ok(ok)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let (url, _own) = match std::env::var("REDIS_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let Some(server) = server::RedisServer::start() else {
                eprintln!(
                    "this example needs Redis: install redis-server (Debian: \
                     `apt-get install redis-server`) or set REDIS_URL"
                );
                return Ok(());
            };
            (server.url(), Some(server))
        }
    };
    let counts = [Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0))];
    let fleet = [
        instance(&url, Arc::clone(&counts[0])).await?,
        instance(&url, Arc::clone(&counts[1])).await?,
    ];
    println!(
        "two instances on {} and {}, one limit in Redis at {url}",
        fleet[0], fleet[1]
    );
    println!("each tenant: 5 a second, bursts of 5; sending 20 a second for {RUN_FOR:?}\n");
    let started = Instant::now();
    let mut tenants = tokio::task::JoinSet::new();
    for name in TENANTS {
        tenants.spawn(async move { (name, tenant(name, fleet).await) });
    }
    let mut fleet_ok = 0;
    while let Some(done) = tenants.join_next().await {
        let (name, ok) = done?;
        let ok = ok?;
        fleet_ok += ok;
        println!("tenant {name:<8} admitted {ok:>3} by the fleet");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let bound = (5.0 + 5.0 * elapsed).floor() as u64;
    println!();
    for (i, count) in counts.iter().enumerate() {
        println!("instance {i} admitted {:>3}", count.load(Ordering::Relaxed));
    }
    println!(
        "the fleet admitted {fleet_ok}: at most {bound} a tenant in {elapsed:.1} s, {} for three \
         (two separate in-process limits would have allowed twice that)",
        3 * bound
    );
    Ok(())
}
