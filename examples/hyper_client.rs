//! A hyper-util HTTP client with retry (the HTTP preset, with the request
//! body buffered for replay), a circuit breaker and a timeout per attempt,
//! against a flaky server on loopback. Runs for about 6 seconds and exits.
//!
//! Run with `cargo run --example hyper_client --features http`.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU8, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use palisade::{
    circuit_breaker::{CircuitBreakerLayer, OpenDuration},
    classify::ServerErrorsAsFailures,
    error::CircuitOpen,
    retry::{
        Backoff, RetryLayer,
        body::{BufferBodyLayer, ReplayRequests},
        http::HttpRetry,
    },
    stack::ResilienceLayer,
    timeout::TimeoutLayer,
};
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

/// How the server behaves.
const FLAKY: u8 = 0;
const DOWN: u8 = 1;
const UP: u8 = 2;

#[derive(Clone, Default)]
struct Server {
    mode: Arc<AtomicU8>,
    hits: Arc<AtomicU64>,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let server = Server::default();
    let addr = serve(server.clone()).await?;

    let breaker = CircuitBreakerLayer::builder()
        .name("orders")
        .classifier(ServerErrorsAsFailures::new())
        .consecutive_failures(3)
        .open_duration(OpenDuration::fixed(Duration::from_secs(2)))
        .build()?;
    let state = breaker.handle();
    let http = Client::builder(TokioExecutor::new()).build_http();
    let mut client = ServiceBuilder::new()
        // Keeps bodies of up to 64 KiB so that each attempt can send it again.
        .layer(BufferBodyLayer::new(64 * 1024))
        .layer(
            ResilienceLayer::new()
                .retry(
                    RetryLayer::builder()
                        .name("orders")
                        .policy(HttpRetry::new())
                        .clone_request(ReplayRequests)
                        .max_attempts(3)
                        .backoff(Backoff::exponential(Duration::from_millis(50), 2.0))
                        .build()?,
                )
                .circuit_breaker(breaker)
                .timeout(
                    TimeoutLayer::builder(Duration::from_millis(300))
                        .name("orders")
                        .build()?,
                ),
        )
        .service(http);

    println!(
        "flaky server: of every 5 requests, one answers 503 + Retry-After: 1 and one is slow (1 s)"
    );
    for order in 1..=5 {
        send(&mut client, addr, order, &server).await;
    }

    println!("\nserver down (500 to everything); the breaker opens after 3 failures in a row");
    server.mode.store(DOWN, Ordering::SeqCst);
    for order in 6..=10 {
        send(&mut client, addr, order, &server).await;
    }
    println!("  breaker: {}", state.state());

    println!("\nserver back up; after the 2 s open time, probes close the breaker");
    server.mode.store(UP, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(2)).await;
    for order in 11..=13 {
        send(&mut client, addr, order, &server).await;
        println!("  breaker: {}", state.state());
    }
    Ok(())
}

/// PUTs order `order` and prints what came back, how many requests the
/// server saw for it, and how long it took.
async fn send<S>(client: &mut S, addr: SocketAddr, order: u32, server: &Server)
where
    S: Service<
            http::Request<Full<Bytes>>,
            Response = http::Response<hyper::body::Incoming>,
            Error = BoxError,
        >,
{
    let request = http::Request::post(format!("http://{addr}/orders"))
        // A POST is retried only with an idempotency key.
        .header("idempotency-key", format!("order-{order}"))
        .body(Full::new(Bytes::from(format!("{{\"order\":{order}}}"))))
        .expect("a valid request");
    let hits = server.hits.load(Ordering::SeqCst);
    let started = Instant::now();
    let result = match client.ready().await {
        Ok(client) => client.call(request).await,
        Err(error) => Err(error),
    };
    let attempts = server.hits.load(Ordering::SeqCst) - hits;
    let outcome = match result {
        Ok(response) => response.status().to_string(),
        Err(error) => match error
            .downcast_ref::<CircuitOpen>()
            .and_then(CircuitOpen::retry_after)
        {
            Some(wait) => format!("refused: circuit open for {:.1} s more", wait.as_secs_f64()),
            None => format!("error: {error}"),
        },
    };
    println!(
        "  order {order:>2}: {outcome:<42} {attempts} request(s) reached the server, {:>4} ms",
        started.elapsed().as_millis()
    );
}

async fn serve(server: Server) -> Result<SocketAddr, BoxError> {
    let app = Router::new()
        .route("/orders", post(orders))
        .with_state(server);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

async fn orders(State(server): State<Server>, body: Bytes) -> (StatusCode, HeaderMap, String) {
    let hit = server.hits.fetch_add(1, Ordering::SeqCst);
    let mut headers = HeaderMap::new();
    match server.mode.load(Ordering::SeqCst) {
        FLAKY if hit % 5 == 0 => {
            headers.insert("retry-after", "1".parse().expect("a valid header"));
            return (StatusCode::SERVICE_UNAVAILABLE, headers, String::new());
        }
        FLAKY if hit % 5 == 2 => tokio::time::sleep(Duration::from_secs(1)).await,
        DOWN => return (StatusCode::INTERNAL_SERVER_ERROR, headers, String::new()),
        _ => {}
    }
    (
        StatusCode::OK,
        headers,
        format!("stored {} bytes", body.len()),
    )
}
