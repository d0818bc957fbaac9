//! Chaos for HTTP: an opt-in by extension or header, and the `503` a
//! struggling server answers.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Request, Response, StatusCode, header::RETRY_AFTER};

use super::OptIn;

/// An opt-in for [`ChaosBuilder::opt_in`](super::ChaosBuilder::opt_in): a
/// request takes part when it carries the [`OptIn`] extension (set by your
/// own test middleware) or the header `header` (sent by a test client).
/// The header is honoured only while the layer is enabled, so a layer left
/// disabled in production ignores it.
///
/// ```
/// use palisade::chaos::{ChaosLayer, http};
///
/// let layer = ChaosLayer::<::http::Request<String>, ::http::Response<String>>::builder()
///     .error(0.5)
///     .opt_in(http::opt_in("x-chaos"))
///     .build()
///     .unwrap();
/// # let _ = layer;
/// let chosen = http::opt_in("x-chaos");
/// let request = ::http::Request::builder().header("x-chaos", "1").body(()).unwrap();
/// assert!(chosen(&request));
/// assert!(!chosen(&::http::Request::new(())));
/// ```
///
/// # Panics
///
/// If `header` is not a valid header name.
pub fn opt_in<B>(
    header: &'static str,
) -> impl Fn(&Request<B>) -> bool + Clone + Send + Sync + 'static {
    let header = HeaderName::from_static(header);
    move |request: &Request<B>| {
        request.extensions().get::<OptIn>().is_some() || request.headers().contains_key(&header)
    }
}

/// A `503 Service Unavailable` with `Retry-After` in whole seconds
/// (rounded up), and an empty body: what an overloaded server answers.
///
/// ```
/// use std::time::Duration;
/// use palisade::chaos::{ChaosLayer, http};
///
/// let response: ::http::Response<String> = http::unavailable(Duration::from_millis(1500));
/// assert_eq!(response.status(), 503);
/// assert_eq!(response.headers()["retry-after"], "2");
///
/// let _ = ChaosLayer::<::http::Request<String>, ::http::Response<String>>::builder()
///     .response(0.1, |_| http::unavailable(Duration::from_secs(1)));
/// ```
pub fn unavailable<B: Default>(retry_after: Duration) -> Response<B> {
    let seconds = retry_after.as_nanos().div_ceil(1_000_000_000);
    let mut response = Response::new(B::default());
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response.headers_mut().insert(
        RETRY_AFTER,
        HeaderValue::from(u64::try_from(seconds).unwrap_or(u64::MAX)),
    );
    response
}
