//! Server-side protection for an axum app: a rate limit per client address,
//! a bulkhead and a timeout, with refusals answered as 429 / 503 / 504 and
//! Prometheus metrics on `/metrics`.
//!
//! The example starts the server on loopback, plays three clients against
//! it (each from its own loopback address, so each has its own limit),
//! prints what they got and the palisade lines of `/metrics`, and exits.
//! With `--serve` it stays up instead and prints its address (a free port,
//! or the one `--port N` names), for curl or a load tool.
//!
//! Run with `cargo run --example axum_server --features axum,metrics`, or
//! `cargo run --example axum_server --features axum,metrics -- --serve --port 3000`.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use axum::{Router, routing::get};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::PrometheusBuilder;
use palisade::{
    bulkhead::BulkheadLayer,
    rate_limit::{
        Rate, RateLimitLayer,
        http::{ClientIp, TooManyRequests},
    },
    stack::{
        ResilienceLayer,
        http::{Answers, HttpAnswerLayer},
    },
    timeout::TimeoutLayer,
};
use tokio::net::TcpSocket;
use tower::{BoxError, ServiceBuilder};

#[path = "support/mod.rs"]
mod support;
use support::summary;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let prometheus = PrometheusBuilder::new().install_recorder()?;

    // 5 requests a second per client address, bursts of 10.
    let limit = RateLimitLayer::builder()
        .name("api")
        .token_bucket(Rate::per_second(5), 10)
        .key(ClientIp::peer())
        .build()?;
    let answers = Answers::new().rate_limit_policy(TooManyRequests::new().policy_of(&limit));
    let protection = ServiceBuilder::new()
        .layer(HttpAnswerLayer::with(answers))
        .layer(
            ResilienceLayer::new()
                .rate_limit(limit)
                .bulkhead(BulkheadLayer::builder(4).name("api").build()?)
                .timeout(
                    TimeoutLayer::builder(Duration::from_millis(300))
                        .name("api")
                        .build()?,
                ),
        );

    let app = Router::new()
        .route("/", get(|| async { "hello" }))
        .route(
            "/report",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(500)).await;
                "a report that takes too long"
            }),
        )
        .layer(protection)
        // Added after `layer`: the metrics route is not limited.
        .route(
            "/metrics",
            get(move || std::future::ready(prometheus.render())),
        );

    let args: Vec<String> = std::env::args().skip(1).collect();
    let listener = support::listener(&args).await?;
    let server = listener.local_addr()?;
    let serve = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    );
    if args.iter().any(|arg| arg == "--serve") {
        println!("serving on http://{server} (/, /report, /metrics); Ctrl-C to stop");
        return Ok(serve.await?);
    }
    tokio::spawn(async move { serve.await });

    println!("client 127.0.0.2: 15 requests at once to / (burst 10)");
    let statuses = fetch_all(server, 2, "/", 15).await?;
    println!("  {}", summary(&statuses));

    println!("client 127.0.0.3: 5 requests to / (a limit of its own)");
    let statuses = fetch_all(server, 3, "/", 5).await?;
    println!("  {}", summary(&statuses));

    println!(
        "client 127.0.0.4: 8 requests at once to /report (500 ms; bulkhead 4, timeout 300 ms)"
    );
    let statuses = fetch_all(server, 4, "/report", 8).await?;
    println!("  {}", summary(&statuses));

    println!("\npalisade lines of /metrics:");
    let (_, metrics) = fetch(server, 5, "/metrics").await?;
    let palisade = metrics
        .lines()
        .filter(|line| line.starts_with("palisade_") && !line.contains("quantile"));
    for line in palisade {
        println!("  {line}");
    }
    Ok(())
}

/// `count` concurrent GETs of `path`, each on its own connection from
/// `127.0.0.<host>`; their statuses, in order.
async fn fetch_all(
    server: SocketAddr,
    host: u8,
    path: &str,
    count: usize,
) -> Result<Vec<u16>, BoxError> {
    let path = path.to_owned();
    support::at_once(count, || {
        let path = path.clone();
        async move { fetch(server, host, &path).await.map(|(status, _)| status) }
    })
    .await
}

/// One GET of `path` from `127.0.0.<host>`: the status and the body.
async fn fetch(server: SocketAddr, host: u8, path: &str) -> Result<(u16, String), BoxError> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, host)),
        0,
    ))?;
    let stream = socket.connect(server).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = http::Request::get(path)
        .header("host", server.to_string())
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
