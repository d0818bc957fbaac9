//! What the HTTP examples share: their listener, firing requests at once,
//! and a summary of the statuses they got.

use std::{future::Future, net::Ipv4Addr};

use tokio::net::TcpListener;
use tower::BoxError;

/// A listener on loopback: on the port `--port N` among `args` names, or a
/// free one.
pub async fn listener(args: &[String]) -> Result<TcpListener, BoxError> {
    let port = match args.iter().position(|arg| arg == "--port") {
        Some(at) => args
            .get(at + 1)
            .and_then(|port| port.parse::<u16>().ok())
            .ok_or("--port takes a port number, such as --port 3000")?,
        None => 0,
    };
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?)
}

/// `count` requests made at once by `request`, each its own task; their
/// statuses, in order.
pub async fn at_once<F, Fut>(count: usize, request: F) -> Result<Vec<u16>, BoxError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<u16, BoxError>> + Send + 'static,
{
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..count {
        calls.spawn(request());
    }
    let mut statuses = Vec::with_capacity(count);
    while let Some(status) = calls.join_next().await {
        statuses.push(status??);
    }
    statuses.sort_unstable();
    Ok(statuses)
}

/// "10 × 200, 5 × 429".
pub fn summary(statuses: &[u16]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for status in statuses.iter().copied() {
        let count = statuses.iter().filter(|s| **s == status).count();
        let part = format!("{count} × {status}");
        if !parts.contains(&part) {
            parts.push(part);
        }
    }
    parts.join(", ")
}
