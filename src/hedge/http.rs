//! Hedging for HTTP: only requests that may safely be sent twice.

use http::Request;

use crate::retry::{RequestCloner, http::HttpRetry};

/// The HTTP preset for [`clone_request`](super::HedgeBuilder::clone_request):
/// copies only the requests that may safely be sent twice — idempotent
/// methods (GET, HEAD, OPTIONS, PUT, DELETE, TRACE) or any request with an
/// `Idempotency-Key` header, the retry preset's rule — with `copy` (for a
/// streaming body, [`ReplayRequests`](crate::retry::body::ReplayRequests)
/// behind a [`BufferBodyLayer`](crate::retry::body::BufferBodyLayer)).
/// Another request gets no extra attempt.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::{
///     hedge::{Delay, HedgeLayer, http::Idempotent},
///     retry::{RequestCloner, body::{ReplayBody, ReplayRequests}},
/// };
///
/// let only_safe = Idempotent::new(ReplayRequests);
/// let get = http::Request::get("/items").body(ReplayBody::<String>::whole("".into())).unwrap();
/// let post = http::Request::post("/orders").body(ReplayBody::<String>::whole("{}".into())).unwrap();
/// assert!(only_safe.clone_request(&get).is_some());
/// assert!(only_safe.clone_request(&post).is_none());
///
/// let layer = HedgeLayer::builder(Delay::Fixed(Duration::from_millis(20)))
///     .clone_request(only_safe)
///     .build()?;
/// # let _ = layer;
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Idempotent<Q> {
    copy: Q,
}

impl<Q> Idempotent<Q> {
    /// Copies the requests that may be sent twice with `copy`.
    ///
    /// ```
    /// use palisade::{hedge::http::Idempotent, retry::body::ReplayRequests};
    /// let _ = Idempotent::new(ReplayRequests);
    /// ```
    pub const fn new(copy: Q) -> Idempotent<Q> {
        Idempotent { copy }
    }
}

impl<B, Q: RequestCloner<Request<B>>> RequestCloner<Request<B>> for Idempotent<Q> {
    fn clone_request(&self, request: &Request<B>) -> Option<Request<B>> {
        if !HttpRetry::repeatable(request) {
            return None;
        }
        self.copy.clone_request(request)
    }
}
