//! What the HTTP examples share: firing requests at once, and a summary of
//! the statuses they got.

use std::future::Future;

use tower::BoxError;

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
