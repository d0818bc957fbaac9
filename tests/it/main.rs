//! Every integration test, in one binary: axum, tonic, hyper and redis are
//! linked once rather than once per file. One module per area; `cargo test
//! --test it <module>` runs one (the loom models are their own binary,
//! `tests/loom.rs`, built under `--cfg loom`).

mod adaptive;
mod adaptive_throttle;
mod bulkhead;
mod bulkhead_model;
mod chaos;
mod circuit_breaker;
mod circuit_breaker_axum;
mod circuit_breaker_model;
mod classify;
mod clock;
#[cfg(feature = "http")]
mod common;
mod error;
mod fallback;
mod fallback_alternate;
mod fallback_cached;
mod grpc_trailers;
mod hardening;
mod hedge;
mod loopback_clients;
mod observe;
mod observe_sinks;
mod random;
mod rate_limit;
mod rate_limit_axum;
mod rate_limit_http;
mod rate_limit_leaky;
mod rate_limit_model;
#[cfg(feature = "redis")]
mod rate_limit_redis;
mod reconfigure;
mod retry;
mod retry_body;
mod retry_http;
mod retry_model;
mod retry_tower;
mod sim;
mod stack;
mod timeout;
mod timeout_http;

/// Cases a property test runs: `default`, or `PROPTEST_CASES` when set — so
/// CI keeps its time, and a deep run is one variable away:
/// `PROPTEST_CASES=10000 cargo test --all-features --test it`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default)
}
