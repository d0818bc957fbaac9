//! The cached fallback for HTTP (features `cache` and `http`): responses
//! kept by method and URI, bodies kept as they stream, answers marked with
//! `Age`.
//!
//! [`CachedLayer::http`] builds a [`CachedLayer`] with:
//!
//! - [`MethodAndUri`]: `GET` and `HEAD` requests keyed by method and URI
//!   (any other method is neither kept nor answered: its response depends on
//!   its body). A response that varies by a request header (`Vary`) needs a
//!   key that includes that header: give [`CachedLayer::builder`] a closure.
//! - [`HttpResponses`]: a response is kept only if its status is `2xx`, it
//!   does not say `Cache-Control: no-store`, and its body ends within
//!   `max_body` bytes (64 KiB by default; a `Content-Length` above it is not
//!   even looked at). The body streams to the caller as it comes
//!   ([`CachedBody`]), its chunks shared with the copy being kept, not
//!   copied; the response is kept when the body ends — a caller that drops
//!   the body early keeps nothing — or at once for a body already ended (a
//!   `HEAD`'s, a `204`'s), which a reader may never poll. An answer made from the cache has the
//!   kept status, headers, body and trailers, an `Age` header (whole
//!   seconds; another name, or none, with [`HttpResponses::age_header`])
//!   and a [`CachedAnswer`] extension with its exact age.
//! - [`ServerErrorsAsFailures`]: `5xx` and errors fail (and are answered
//!   from the cache); every other response is a success, kept if `2xx`.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::{BodyExt, Full};
//! use palisade::{clock::ManualClock, fallback::{CachedAnswer, CachedLayer}};
//! use tower::{Layer, Service, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let clock = ManualClock::new();
//! let layer = CachedLayer::http().max_stale(Duration::from_secs(300)).clock(clock.clone()).build().unwrap();
//! let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
//! let upstream = service_fn({
//!     let up = up.clone();
//!     move |_: Request<()>| {
//!         let up = up.load(std::sync::atomic::Ordering::Relaxed);
//!         async move {
//!             let status = if up { StatusCode::OK } else { StatusCode::BAD_GATEWAY };
//!             Ok::<_, std::convert::Infallible>(Response::builder().status(status).body(Full::new(Bytes::from("42 EUR"))).unwrap())
//!         }
//!     }
//! });
//! let mut service = layer.layer(upstream);
//! let price = || Request::get("/price/7").body(()).unwrap();
//! let fresh = service.ready().await.unwrap().call(price()).await.unwrap();
//! assert_eq!(fresh.into_body().collect().await.unwrap().to_bytes(), "42 EUR"); // kept at its end
//!
//! up.store(false, std::sync::atomic::Ordering::Relaxed);
//! clock.advance(Duration::from_secs(42));
//! let answer = service.ready().await.unwrap().call(price()).await.unwrap();
//! assert_eq!(answer.status(), StatusCode::OK);
//! assert_eq!(answer.headers()["age"], "42");
//! assert_eq!(answer.extensions().get::<CachedAnswer>().unwrap().age, Duration::from_secs(42));
//! assert_eq!(answer.into_body().collect().await.unwrap().to_bytes(), "42 EUR");
//! # }
//! ```

use std::{
    fmt,
    hash::Hash,
    pin::Pin,
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::{Buf, Bytes};
use http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, Version,
    header::{AGE, CACHE_CONTROL, CONTENT_LENGTH},
};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::{
    AnyFailure, CacheKey, CachedAnswer, CachedBuilder, CachedLayer, Decline, Keeper, KeyFn, Keys,
    Remember,
};
use crate::classify::{ErrorsAsFailures, ServerErrorsAsFailures};
use crate::clock::TokioClock;

/// `GET` and `HEAD` requests keyed by method and URI; other methods have no
/// key.
///
/// ```
/// use http::Request;
/// use palisade::fallback::{CacheKey, http::MethodAndUri};
/// assert!(MethodAndUri.key(&Request::get("/a?b=1").body(()).unwrap()).is_some());
/// assert!(MethodAndUri.key(&Request::post("/a").body(()).unwrap()).is_none());
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct MethodAndUri;

impl Keys for MethodAndUri {
    type Of = (Method, Uri);
}

impl<B> CacheKey<Request<B>> for MethodAndUri {
    fn key(&self, request: &Request<B>) -> Option<(Method, Uri)> {
        let method = request.method();
        (method == Method::GET || method == Method::HEAD)
            .then(|| (method.clone(), request.uri().clone()))
    }
}

/// Keeps HTTP responses — `2xx`, not `no-store`, their body within
/// `max_body` — and answers with them, marked with their age; see [the
/// module docs](self).
///
/// ```
/// use palisade::fallback::{CachedLayer, http::HttpResponses};
/// let _ = CachedLayer::http().responses(HttpResponses::new().max_body(1 << 20).age_header(None));
/// ```
#[derive(Clone, Debug)]
pub struct HttpResponses {
    max_body: u64,
    age_header: Option<HeaderName>,
}

impl Default for HttpResponses {
    fn default() -> Self {
        HttpResponses::new()
    }
}

impl HttpResponses {
    /// Bodies up to 64 KiB; answers marked with `Age`.
    ///
    /// ```
    /// let _ = palisade::fallback::http::HttpResponses::new();
    /// ```
    pub fn new() -> Self {
        HttpResponses {
            max_body: 64 * 1024,
            age_header: Some(AGE),
        }
    }

    /// The largest body kept, in bytes: a larger one streams to the caller
    /// and is not kept.
    ///
    /// ```
    /// let _ = palisade::fallback::http::HttpResponses::new().max_body(4096);
    /// ```
    pub fn max_body(mut self, max_body: u64) -> Self {
        self.max_body = max_body;
        self
    }

    /// The header that carries an answer's age in whole seconds (`Age` by
    /// default, as HTTP caches send it), or `None` for no header (the
    /// [`CachedAnswer`] extension is there either way).
    ///
    /// ```
    /// let _ = palisade::fallback::http::HttpResponses::new()
    ///     .age_header(Some(http::HeaderName::from_static("x-cache-age")));
    /// ```
    pub fn age_header(mut self, age_header: Option<HeaderName>) -> Self {
        self.age_header = age_header;
        self
    }

    /// Whether a response with this head may be kept.
    fn worth_keeping<B: Body>(&self, response: &Response<B>) -> bool {
        response.status().is_success()
            && !no_store(response.headers())
            && body_length(response).is_none_or(|length| length <= self.max_body)
    }
}

/// Whether `headers` say `Cache-Control: no-store` (in any of its values,
/// in any case).
fn no_store(headers: &HeaderMap) -> bool {
    headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|directive| directive.trim().eq_ignore_ascii_case("no-store"))
}

/// The body's length, if known before it is read: its `Content-Length`, or
/// its exact size hint.
fn body_length<B: Body>(response: &Response<B>) -> Option<u64> {
    response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse().ok())
        .or_else(|| response.body().size_hint().exact())
}

/// What is kept of a response: its head, body and trailers (the
/// [`Remember::Kept`] of [`HttpResponses`]).
///
/// ```
/// use palisade::fallback::{Remember, http::{HttpResponses, KeptResponse}};
/// fn kept<R: Remember<http::Response<String>, Kept = KeptResponse>>(_: &R) {}
/// # let _ = kept::<HttpResponses>;
/// ```
#[derive(Clone, Debug)]
pub struct KeptResponse {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
    trailers: Option<HeaderMap>,
}

impl<B> Remember<Response<B>> for HttpResponses
where
    B: Body,
    B::Error: Into<tower::BoxError>,
{
    type Response = Response<CachedBody<B>>;
    type Kept = KeptResponse;

    fn keep<K>(&self, response: Response<B>, keeper: Keeper<K, KeptResponse>) -> Self::Response
    where
        K: Hash + Eq + Send + Sync + 'static,
    {
        if !self.worth_keeping(&response) {
            return self.pass(response);
        }
        let (parts, body) = response.into_parts();
        let tee = Tee {
            status: parts.status,
            version: parts.version,
            headers: parts.headers.clone(),
            chunks: Vec::new(),
            length: 0,
            max_body: self.max_body,
            trailers: None,
            keep: Box::new(move |kept: KeptResponse| {
                let bytes = kept.body.len() as u64 + header_bytes(&kept.headers);
                keeper.keep(kept, bytes);
            }),
        };
        // A body already at its end (a `HEAD`'s, a `204`'s) may never be
        // polled: kept now.
        let kind = if body.is_end_stream() {
            tee.finish();
            Kind::Live { body }
        } else {
            Kind::Teeing {
                body,
                tee: Some(Box::new(tee)),
            }
        };
        Response::from_parts(parts, CachedBody { kind })
    }

    fn pass(&self, response: Response<B>) -> Self::Response {
        response.map(|body| CachedBody {
            kind: Kind::Live { body },
        })
    }

    fn serve(&self, kept: &KeptResponse, age: Duration) -> Self::Response {
        let mut response = Response::new(CachedBody {
            kind: Kind::Kept {
                body: Some(kept.body.clone()).filter(|body| !body.is_empty()),
                trailers: kept.trailers.clone(),
            },
        });
        *response.status_mut() = kept.status;
        *response.version_mut() = kept.version;
        *response.headers_mut() = kept.headers.clone();
        if let Some(name) = &self.age_header {
            response
                .headers_mut()
                .insert(name.clone(), HeaderValue::from(age.as_secs()));
        }
        response.extensions_mut().insert(CachedAnswer::new(age));
        response
    }
}

/// What `headers` hold, about: their names and values.
fn header_bytes(headers: &HeaderMap) -> u64 {
    headers
        .iter()
        .map(|(name, value)| (name.as_str().len() + value.len()) as u64)
        .sum()
}

/// A body being kept as it streams: the head, the chunks so far (shared
/// with the frames handed on), and what keeps it once it ends.
struct Tee {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    chunks: Vec<Bytes>,
    length: u64,
    max_body: u64,
    trailers: Option<HeaderMap>,
    keep: Box<dyn FnOnce(KeptResponse) + Send + Sync>,
}

impl Tee {
    /// Keeps the response, its body whole: one chunk as it is, several
    /// joined (the one copy, of a body kept).
    fn finish(self) {
        let body = match self.chunks.as_slice() {
            [one] => one.clone(),
            _ => {
                let mut joined = Vec::with_capacity(self.length as usize);
                for chunk in &self.chunks {
                    joined.extend_from_slice(chunk);
                }
                Bytes::from(joined)
            }
        };
        (self.keep)(KeptResponse {
            status: self.status,
            version: self.version,
            headers: self.headers,
            body,
            trailers: self.trailers,
        });
    }
}

pin_project! {
    /// The body of a [`CachedLayer::http`] response: the wrapped service's
    /// body, passed on (and kept as it goes, for a response being kept); or
    /// a kept body, for an answer from the cache. Its chunks are
    /// [`Bytes`]: a chunk of another type is turned into one (without a
    /// copy when it is one already).
    ///
    /// ```
    /// use http_body::Body;
    /// use palisade::fallback::{CachedLayer, http::CachedBody};
    /// fn is_body<B: Body>() {}
    /// is_body::<CachedBody<http_body_util::Full<bytes::Bytes>>>();
    /// ```
    pub struct CachedBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Live {
            #[pin]
            body: B,
        },
        Teeing {
            #[pin]
            body: B,
            // `None` once the body outgrew `max_body` or failed.
            tee: Option<Box<Tee>>,
        },
        Kept {
            body: Option<Bytes>,
            trailers: Option<HeaderMap>,
        },
    }
}

impl<B> Body for CachedBody<B>
where
    B: Body,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Live { body } => Poll::Ready(
                ready!(body.poll_frame(cx)).map(|frame| frame.map(|frame| frame.map_data(bytes))),
            ),
            KindProj::Teeing { mut body, tee } => {
                let frame = match ready!(body.as_mut().poll_frame(cx)) {
                    None => {
                        if let Some(tee) = tee.take() {
                            tee.finish();
                        }
                        return Poll::Ready(None);
                    }
                    Some(Err(err)) => {
                        *tee = None;
                        return Poll::Ready(Some(Err(err)));
                    }
                    Some(Ok(frame)) => frame.map_data(bytes),
                };
                if let Some(kept) = tee {
                    if let Some(data) = frame.data_ref() {
                        kept.length += data.len() as u64;
                        if kept.length > kept.max_body {
                            *tee = None;
                        } else {
                            kept.chunks.push(data.clone());
                        }
                    } else if let Some(trailers) = frame.trailers_ref() {
                        kept.trailers = Some(trailers.clone());
                    }
                }
                // A body that says it has ended is not polled again by
                // every reader (hyper stops there): it is kept now.
                if body.is_end_stream() {
                    if let Some(tee) = tee.take() {
                        tee.finish();
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            KindProj::Kept { body, trailers } => {
                Poll::Ready(body.take().map(|body| Ok(Frame::data(body))).or_else(|| {
                    trailers
                        .take()
                        .map(|trailers| Ok(Frame::trailers(trailers)))
                }))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Live { body } | Kind::Teeing { body, .. } => body.is_end_stream(),
            Kind::Kept { body, trailers } => body.is_none() && trailers.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Live { body } | Kind::Teeing { body, .. } => body.size_hint(),
            Kind::Kept { body, .. } => {
                SizeHint::with_exact(body.as_ref().map_or(0, |body| body.len() as u64))
            }
        }
    }
}

/// A chunk as [`Bytes`]: no copy if it is one.
fn bytes<D: Buf>(mut data: D) -> Bytes {
    data.copy_to_bytes(data.remaining())
}

impl<B> fmt::Debug for CachedBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Live { .. } => "live",
            Kind::Teeing { tee, .. } => {
                if tee.is_some() {
                    "live, being kept"
                } else {
                    "live"
                }
            }
            Kind::Kept { .. } => "kept",
        };
        f.debug_struct("CachedBody").field("kind", &kind).finish()
    }
}

impl CachedLayer<KeyFn<(), ()>, super::Clones, AnyFailure, Decline, ErrorsAsFailures, TokioClock> {
    /// A cached fallback for HTTP: [`MethodAndUri`] keys,
    /// [`HttpResponses`], [`ServerErrorsAsFailures`]; see [the module
    /// docs](self).
    ///
    /// ```
    /// use palisade::fallback::CachedLayer;
    /// let layer = CachedLayer::http().max_entries(1_000).max_bytes(32 << 20).build().unwrap();
    /// # let _ = layer;
    /// ```
    pub fn http() -> CachedBuilder<
        MethodAndUri,
        HttpResponses,
        AnyFailure,
        Decline,
        ServerErrorsAsFailures,
        TokioClock,
    > {
        CachedBuilder::new(
            MethodAndUri,
            HttpResponses::new(),
            ServerErrorsAsFailures::new(),
        )
    }
}
