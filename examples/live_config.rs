//! Settings kept in a TOML file and reloaded into a running axum server:
//! the new limits take effect at once, and what the layers have learned —
//! who is over the rate limit, the breaker's window, the calls in flight —
//! is kept.
//!
//! The example writes a configuration file, starts the server on loopback
//! with it, and plays a client against it while it rewrites the file: a
//! lower rate limit (the 8 requests just taken stay owed: no fresh burst),
//! a file with a mistake (refused, naming the field; the server keeps its
//! settings), then a higher limit. With `--serve --config FILE` it serves
//! instead (on a free port, or `--port N`) and reloads `FILE` whenever it
//! changes, for curl and an editor.
//!
//! Run with `cargo run --example live_config --features axum,serde`, or
//! `cargo run --example live_config --features axum,serde -- --serve --config palisade.toml`.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use axum::{Router, routing::get};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use palisade::{
    bulkhead::{self, BulkheadLayer},
    circuit_breaker::{self, CircuitBreakerHandle, CircuitBreakerLayer},
    rate_limit::{Limit, RateLimitLayer, http::TooManyRequests},
    stack::{
        ResilienceLayer,
        http::{Answers, HttpAnswerLayer},
    },
    timeout::{self, TimeoutLayer},
};
use serde::Deserialize;
use tokio::net::TcpStream;
use tower::{BoxError, ServiceBuilder};

#[path = "support/mod.rs"]
mod support;
use support::summary;

/// The configuration file: one table per layer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    rate_limit: Limit,
    circuit_breaker: circuit_breaker::Settings,
    bulkhead: bulkhead::Settings,
    timeout: timeout::Settings,
}

const FIRST: &str = r#"
[rate_limit]
token_bucket = { rate = "10/s", burst = 10 }

[circuit_breaker]
failure_rate = 0.5
minimum_calls = 10
open_duration = { initial = "30s" }

[bulkhead]
max_concurrent = 16
queue = { max_waiting = 32, max_wait = "200ms" }

[timeout]
timeout = "2s"
"#;

/// The running layers, changed in place when the file changes.
struct Layers {
    rate_limit: RateLimitLayer,
    breaker: CircuitBreakerHandle,
    bulkhead: BulkheadLayer,
    timeout: TimeoutLayer,
}

impl Layers {
    /// Applies `config`: each layer checks its settings before it changes
    /// anything; a layer refusing leaves the ones after it as they were.
    fn apply(&self, config: &Config) -> Result<(), BoxError> {
        self.rate_limit.set_limit(config.rate_limit)?;
        self.breaker.reconfigure(config.circuit_breaker)?;
        self.bulkhead.reconfigure(config.bulkhead)?;
        self.timeout.reconfigure(config.timeout)?;
        Ok(())
    }

    /// Reads `path` and applies it; says what happened.
    fn reload(&self, path: &Path) -> String {
        let read = std::fs::read_to_string(path)
            .map_err(BoxError::from)
            .and_then(|text| Ok(toml::from_str::<Config>(&text)?));
        match read.and_then(|config| self.apply(&config)) {
            Ok(()) => match self.rate_limit.limit() {
                Limit::TokenBucket { rate, burst } => {
                    format!("reloaded: {rate} (tokens/period), bursts of {burst}")
                }
                other => format!("reloaded: {other:?}"),
            },
            Err(err) => format!("kept the running settings: {err}"),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let serving = args.iter().any(|arg| arg == "--serve");
    let path = match args.iter().position(|arg| arg == "--config") {
        Some(at) => PathBuf::from(args.get(at + 1).ok_or("--config takes a file")?),
        None if serving => return Err("--serve needs --config FILE".into()),
        None => {
            let path =
                std::env::temp_dir().join(format!("palisade-live-{}.toml", std::process::id()));
            std::fs::write(&path, FIRST)?;
            path
        }
    };
    let config: Config = toml::from_str(&std::fs::read_to_string(&path)?)?;

    let rate_limit = RateLimitLayer::builder()
        .name("api")
        .limit(config.rate_limit)
        .build()?;
    let breaker = CircuitBreakerLayer::builder()
        .name("api")
        .settings(config.circuit_breaker)
        .build()?;
    let bulkhead = BulkheadLayer::builder(1)
        .name("api")
        .settings(config.bulkhead)
        .build()?;
    let timeout = TimeoutLayer::builder(config.timeout.timeout)
        .name("api")
        .build()?;
    let layers = std::sync::Arc::new(Layers {
        rate_limit: rate_limit.clone(),
        breaker: breaker.handle(),
        bulkhead: bulkhead.clone(),
        timeout: timeout.clone(),
    });
    let answers =
        Answers::new().rate_limit_policy(TooManyRequests::new().policy_of(&layers.rate_limit));
    let app = Router::new().route("/", get(|| async { "hello" })).layer(
        ServiceBuilder::new()
            .layer(HttpAnswerLayer::with(answers))
            .layer(
                ResilienceLayer::new()
                    .circuit_breaker(breaker)
                    .rate_limit(rate_limit)
                    .bulkhead(bulkhead)
                    .timeout(timeout),
            ),
    );

    let listener = support::listener(&args).await?;
    let server = listener.local_addr()?;
    let serve = axum::serve(listener, app);

    if serving {
        println!(
            "serving on http://{server}/ with {}; edit it to change the limits",
            path.display()
        );
        let watcher = layers.clone();
        tokio::spawn(async move { watch(&path, &watcher).await });
        return Ok(serve.await?);
    }
    tokio::spawn(async move { serve.await });

    println!("{}: 10 a second, bursts of 10", path.display());
    println!("8 requests:  {}", summary(&fetch_all(server, 8).await?));
    println!("  available now: {}", layers.rate_limit.available());

    std::fs::write(
        &path,
        FIRST.replace("rate = \"10/s\", burst = 10", "rate = \"2/s\", burst = 4"),
    )?;
    println!("\nfile now: 2 a second, bursts of 4");
    println!("  {}", layers.reload(&path));
    println!(
        "  available now: {} (the 8 taken are still owed; a restart would hand out 4 fresh)",
        layers.rate_limit.available()
    );
    let (status, retry_after) = fetch(server).await?;
    println!("1 request:   {status}, Retry-After: {retry_after}");

    std::fs::write(
        &path,
        FIRST.replace("max_concurrent = 16", "max_concurrent = 0"),
    )?;
    println!("\nfile now: a bulkhead of 0");
    println!("  {}", layers.reload(&path));
    println!("  bulkhead still {}", layers.bulkhead.max_concurrent());

    std::fs::write(
        &path,
        FIRST.replace(
            "rate = \"10/s\", burst = 10",
            "rate = \"1000/s\", burst = 100",
        ),
    )?;
    println!("\nfile now: 1000 a second, bursts of 100");
    println!("  {}", layers.reload(&path));
    println!("10 requests: {}", summary(&fetch_all(server, 10).await?));
    std::fs::remove_file(&path)?;
    Ok(())
}

/// Reloads `path` into `layers` whenever its modification time changes.
async fn watch(path: &Path, layers: &Layers) {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let mut seen: Option<SystemTime> = modified(path);
    let mut every = tokio::time::interval(Duration::from_millis(500));
    loop {
        every.tick().await;
        let now = modified(path);
        if now != seen {
            seen = now;
            println!("{}", layers.reload(path));
        }
    }
}

/// `count` concurrent GETs of `/`, each on its own connection; their
/// statuses, in order.
async fn fetch_all(server: SocketAddr, count: usize) -> Result<Vec<u16>, BoxError> {
    support::at_once(count, || async move {
        fetch(server).await.map(|(status, _)| status)
    })
    .await
}

/// One GET of `/`: the status and the `Retry-After` header (or `-`).
async fn fetch(server: SocketAddr) -> Result<(u16, String), BoxError> {
    let stream = TcpStream::connect(server).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = http::Request::get("/")
        .header("host", server.to_string())
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    response.into_body().collect().await?;
    Ok((status, retry_after))
}
