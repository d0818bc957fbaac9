//! Replaying a streaming HTTP request body (feature `http`).
//!
//! Each attempt of a retried request needs its own body, but a streaming
//! body can be read only once. [`BufferBodyLayer`], placed just outside the
//! retry layer, reads the body first, up to a limit:
//!
//! - a body that ends within the limit is kept whole ([`ReplayBody`] holds
//!   the bytes and any trailers); [`ReplayRequests`], the retry layer's
//!   [`RequestCloner`], copies such a request for every attempt;
//! - a body larger than the limit is **sent once and not retried**: the
//!   bytes read so far are sent first and the rest of the stream follows,
//!   [`ReplayRequests`] declines to copy it, and a
//!   [`BodyNotBuffered`](crate::observe::EventKind::BodyNotBuffered) event
//!   is emitted.
//!
//! Memory is bounded by the limit: the layer copies at most `limit` bytes
//! (its buffer never grows past it), and the frame that passes the limit is
//! kept as the transport handed it over, not copied, until it is sent. Past
//! that, the body streams through and nothing more is kept: a single 256 MiB
//! frame under a 64 KiB limit costs the 64 KiB buffer, not another 256 MiB.
//!
//! Reading the body before the first attempt costs latency for large
//! uploads: pick a limit that covers the requests worth retrying.
//!
//! # Examples
//!
//! ```
//! use palisade::retry::{RetryLayer, http::HttpRetry, body::{BufferBodyLayer, ReplayRequests}};
//! use tower::ServiceBuilder;
//!
//! let retry = RetryLayer::builder()
//!     .policy(HttpRetry::new())
//!     .clone_request(ReplayRequests)
//!     .build()?;
//! let client = ServiceBuilder::new()
//!     .layer(BufferBodyLayer::new(64 * 1024))
//!     .layer(retry)
//!     .service_fn(|request: http::Request<palisade::retry::body::ReplayBody<String>>| async move {
//!         Ok::<_, std::io::Error>(http::Response::new(()))
//!     });
//! # let _ = client;
//! # Ok::<(), palisade::error::ConfigError>(())
//! ```

use std::{
    fmt,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower::{BoxError, Layer, Service};

use super::{RequestCloner, future::BufferFuture};
use crate::{
    clock::{Clock, TokioClock},
    deferred::take_ready,
    observe::{Observer, ObserverBuilder},
};

/// A [`Layer`] that reads request bodies up to a limit so that they can be
/// replayed; see [the module docs](self).
///
/// ```
/// let _ = palisade::retry::body::BufferBodyLayer::new(16 * 1024);
/// ```
#[derive(Clone, Debug)]
pub struct BufferBodyLayer<C = TokioClock> {
    limit: usize,
    observer: Observer,
    clock: C,
}

impl BufferBodyLayer {
    /// Bodies of up to `limit` bytes are kept for replay.
    ///
    /// ```
    /// let _ = palisade::retry::body::BufferBodyLayer::new(1024);
    /// ```
    pub fn new(limit: usize) -> BufferBodyLayer {
        BufferBodyLayer::observed(limit, ObserverBuilder::new())
    }

    /// Like [`new`](Self::new), with a name and listeners for its
    /// [`BodyNotBuffered`](crate::observe::EventKind::BodyNotBuffered)
    /// events.
    ///
    /// ```
    /// use palisade::{observe::ObserverBuilder, retry::body::BufferBodyLayer};
    /// let _ = BufferBodyLayer::observed(1024, ObserverBuilder::new().name("uploads").on_event(|e| println!("{:?}", e.kind)));
    /// ```
    pub fn observed(limit: usize, observe: ObserverBuilder) -> BufferBodyLayer {
        BufferBodyLayer {
            limit,
            observer: observe.build("retry"),
            clock: TokioClock::new(),
        }
    }
}

impl<C: Clock> BufferBodyLayer<C> {
    /// The clock that dates its events. Default [`TokioClock`].
    ///
    /// ```
    /// use palisade::{clock::ManualClock, retry::body::BufferBodyLayer};
    /// let _ = BufferBodyLayer::new(1024).clock(ManualClock::new());
    /// ```
    pub fn clock<C2: Clock>(self, clock: C2) -> BufferBodyLayer<C2> {
        BufferBodyLayer {
            limit: self.limit,
            observer: self.observer,
            clock,
        }
    }
}

impl<S, C: Clock> Layer<S> for BufferBodyLayer<C> {
    type Service = BufferBody<S, C>;

    fn layer(&self, inner: S) -> BufferBody<S, C> {
        BufferBody {
            inner,
            limit: self.limit,
            observer: self.observer.clone(),
            clock: self.clock.clone(),
        }
    }
}

/// Reads request bodies up to a limit before calling the wrapped service;
/// made by [`BufferBodyLayer`].
///
/// ```
/// use tower::Layer;
/// let service = palisade::retry::body::BufferBodyLayer::new(1024).layer(5u8);
/// # let _ = service;
/// ```
#[derive(Clone, Debug)]
pub struct BufferBody<S, C = TokioClock> {
    inner: S,
    limit: usize,
    observer: Observer,
    clock: C,
}

impl<S, C, B> Service<Request<B>> for BufferBody<S, C>
where
    C: Clock,
    S: Service<Request<ReplayBody<B>>> + Clone,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BufferFuture<S, B, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let service = take_ready(&mut self.inner);
        let (parts, body) = request.into_parts();
        BufferFuture::new(
            body,
            parts,
            service,
            self.limit,
            self.observer.clone(),
            self.clock.clone(),
        )
    }
}

pin_project! {
    /// A request body read by [`BufferBody`]: whole (it can be replayed, and
    /// [`ReplayRequests`] copies its request), or too large (the bytes read
    /// first, then the rest of the stream; sent once).
    ///
    /// ```
    /// use palisade::retry::body::ReplayBody;
    /// let body = ReplayBody::<String>::whole("hello".into());
    /// assert!(body.is_replayable());
    /// ```
    pub struct ReplayBody<B> {
        #[pin]
        pub(super) replay: Replay<B>,
    }
}

pin_project! {
    #[project = ReplayProj]
    pub(super) enum Replay<B> {
        Whole {
            data: Bytes,
            trailers: Option<HeaderMap>,
            sent: bool,
        },
        Streaming {
            // What was read before the limit was passed, then the frame that
            // passed it; sent in that order.
            prefix: [Option<Bytes>; 2],
            rest: Pin<Box<B>>,
        },
    }
}

impl<B> ReplayBody<B> {
    /// A whole body of `data`.
    ///
    /// ```
    /// let _ = palisade::retry::body::ReplayBody::<String>::whole("{}".into());
    /// ```
    pub fn whole(data: Bytes) -> ReplayBody<B> {
        ReplayBody {
            replay: Replay::Whole {
                data,
                trailers: None,
                sent: false,
            },
        }
    }

    /// Whether the whole body is held, so its request can be sent again.
    ///
    /// ```
    /// assert!(palisade::retry::body::ReplayBody::<String>::whole("x".into()).is_replayable());
    /// ```
    pub fn is_replayable(&self) -> bool {
        matches!(self.replay, Replay::Whole { .. })
    }

    /// A fresh copy of a whole body, from its start.
    fn replay(&self) -> Option<ReplayBody<B>> {
        match &self.replay {
            Replay::Whole { data, trailers, .. } => Some(ReplayBody {
                replay: Replay::Whole {
                    data: data.clone(),
                    trailers: trailers.clone(),
                    sent: false,
                },
            }),
            Replay::Streaming { .. } => None,
        }
    }
}

impl<B> Body for ReplayBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project().replay.project() {
            ReplayProj::Whole {
                data,
                trailers,
                sent,
            } => {
                if !*sent {
                    *sent = true;
                    if !data.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(data.clone()))));
                    }
                }
                Poll::Ready(
                    trailers
                        .take()
                        .map(|trailers| Ok(Frame::trailers(trailers))),
                )
            }
            ReplayProj::Streaming { prefix, rest } => {
                let next = prefix
                    .iter_mut()
                    .find_map(|part| part.take().filter(|part| !part.is_empty()));
                if let Some(part) = next {
                    return Poll::Ready(Some(Ok(Frame::data(part))));
                }
                rest.as_mut().poll_frame(cx).map_err(Into::into)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.replay {
            Replay::Whole {
                data,
                trailers,
                sent,
            } => (*sent || data.is_empty()) && trailers.is_none(),
            Replay::Streaming { prefix, rest } => {
                prefix.iter().flatten().all(Bytes::is_empty) && rest.is_end_stream()
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.replay {
            Replay::Whole { data, sent, .. } => {
                SizeHint::with_exact(if *sent { 0 } else { data.len() as u64 })
            }
            Replay::Streaming { prefix, rest } => {
                let first: u64 = prefix.iter().flatten().map(|part| part.len() as u64).sum();
                let rest = rest.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower().saturating_add(first));
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper.saturating_add(first));
                }
                hint
            }
        }
    }
}

impl<B> fmt::Debug for ReplayBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.replay {
            Replay::Whole { data, .. } => f
                .debug_struct("ReplayBody")
                .field("whole", &data.len())
                .finish(),
            Replay::Streaming { .. } => f
                .debug_struct("ReplayBody")
                .field("streaming", &true)
                .finish(),
        }
    }
}

/// The retry layer's [`RequestCloner`] for requests read by [`BufferBody`]:
/// copies method, URI, version, headers, extensions and a whole body;
/// declines a body that was too large, so its request is sent once.
///
/// ```
/// use palisade::retry::{RequestCloner, body::{ReplayBody, ReplayRequests}};
///
/// let request = http::Request::post("/orders").body(ReplayBody::<String>::whole("{}".into())).unwrap();
/// let copy = ReplayRequests.clone_request(&request).unwrap();
/// assert_eq!(copy.uri(), "/orders");
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ReplayRequests;

impl<B> RequestCloner<Request<ReplayBody<B>>> for ReplayRequests {
    fn clone_request(&self, request: &Request<ReplayBody<B>>) -> Option<Request<ReplayBody<B>>> {
        let body = request.body().replay()?;
        let mut copy = Request::new(body);
        *copy.method_mut() = request.method().clone();
        *copy.uri_mut() = request.uri().clone();
        *copy.version_mut() = request.version();
        *copy.headers_mut() = request.headers().clone();
        *copy.extensions_mut() = request.extensions().clone();
        Some(copy)
    }
}
