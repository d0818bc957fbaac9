//! The response futures of [`Retry`](super::Retry) and
//! [`BufferBody`](super::body::BufferBody).

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
    time::Duration,
};

use pin_project_lite::pin_project;
use tower::{BoxError, Service};

use super::{
    policy::{Decision, RequestCloner, RetryPolicy},
    service::Spare,
};
use crate::{
    clock::{Clock, Instant},
    observe::EventKind,
    random::Random,
    sync::Arc,
};

pin_project! {
    /// The response future of [`Retry`](super::Retry): calls, checks the
    /// result, sleeps on the layer's clock, makes the service ready again and
    /// calls again, until a result is accepted or attempts, deadline or
    /// budget run out.
    ///
    /// Small while the first attempt runs: the sleep between attempts and
    /// the clone of the service further attempts are made on are boxed, made
    /// only when a retry is due. A call that is not retried allocates
    /// nothing.
    ///
    /// # Cancellation
    ///
    /// Dropped during an attempt, that attempt's future is dropped (cancelling it below);
    /// dropped while sleeping between attempts, the next attempt is never made. Either way
    /// no further attempt follows, no `Completed` event is emitted, and the retry budget
    /// keeps what it was given: the request's deposit stays, and a retry already withdrawn
    /// is not refunded.
    ///
    /// # Examples
    ///
    /// ```
    /// use palisade::retry::RetryLayer;
    /// use tower::{Layer, Service, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let layer = RetryLayer::builder().build().unwrap();
    /// let mut service = layer.layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
    /// let future /* : ResponseFuture<_, u32, _, _, _, _> */ = service.call(7);
    /// assert_eq!(future.await.unwrap(), 7);
    /// # }
    /// ```
    pub struct ResponseFuture<S: Service<Req>, Req, P, Q, C: Clock, R: Random> {
        #[pin]
        state: State<S::Future, C::Sleep>,
        attempts: Attempts<S, Req, P, Q, C, R>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, Sl> {
        Calling {
            #[pin]
            future: F,
        },
        Sleeping {
            sleep: Pin<Box<Sl>>,
        },
        Readying,
    }
}

/// What carries over from one attempt to the next.
struct Attempts<S, Req, P, Q, C, R> {
    /// The clone further attempts are made on, taken when the first retry
    /// is due (boxed, so that it does not make every call's future larger).
    service: Option<Box<S>>,
    /// A copy of the request, for the policy and the next attempt (`None`
    /// when the request cannot be copied: no retry).
    request: Option<Req>,
    deadline: Option<Instant>,
    /// Attempts made so far, the current one included.
    made: u32,
    /// The delay before the current attempt (the backoff's base before the
    /// first retry).
    previous_delay: Option<Duration>,
    spare: Arc<Spare<S, P, Q, C, R>>,
    /// The current attempt's span: the wrapped call is made and polled in
    /// it.
    span: AttemptSpan,
}

/// The span an attempt runs in, with feature `tracing`: boxed, and made
/// only while a subscriber records it, so that the future grows by one
/// word. Nothing without the feature.
#[cfg(feature = "tracing")]
type AttemptSpan = Option<Box<tracing::Span>>;
#[cfg(not(feature = "tracing"))]
type AttemptSpan = NoSpan;

/// No span: what an attempt runs in without `tracing` (zero-sized).
#[cfg(not(feature = "tracing"))]
struct NoSpan;

/// The span of attempt `attempt` (1 for the first call) of the retry layer
/// named `name`, if a subscriber records it.
#[cfg(feature = "tracing")]
fn attempt_span(name: &crate::LayerName, attempt: u32) -> AttemptSpan {
    let name = name.as_str();
    let span = tracing::debug_span!(target: "palisade::retry", "retry_attempt", name, attempt);
    (!span.is_disabled()).then(|| Box::new(span))
}

#[cfg(not(feature = "tracing"))]
#[inline(always)]
fn attempt_span(_: &crate::LayerName, _: u32) -> AttemptSpan {
    NoSpan
}

/// Runs `f` inside `span`.
#[cfg(feature = "tracing")]
#[inline(always)]
fn within<T>(span: &AttemptSpan, f: impl FnOnce() -> T) -> T {
    let _entered = span.as_ref().map(|span| span.enter());
    f()
}

#[cfg(not(feature = "tracing"))]
#[inline(always)]
fn within<T>(_: &AttemptSpan, f: impl FnOnce() -> T) -> T {
    f()
}

impl<S, Req, P, Q, C, R> ResponseFuture<S, Req, P, Q, C, R>
where
    S: Service<Req>,
    Q: RequestCloner<Req>,
    C: Clock,
    R: Random,
{
    // Inlined into the caller, the wrapped call's future is written where it
    // ends up; otherwise the whole stack below is built here and then copied.
    // Every layer's response-future constructor is always inlined for the
    // same reason.
    #[inline(always)]
    pub(crate) fn new(service: &mut S, request: Req, spare: Arc<Spare<S, P, Q, C, R>>) -> Self {
        let shared = &*spare.shared;
        let deadline = match (&shared.budget, shared.deadline()) {
            (None, None) => None,
            (budget, deadline) => {
                let now = shared.clock.now();
                if let Some(budget) = budget {
                    budget.deposit(now);
                }
                deadline.map(|deadline| now.saturating_add(deadline))
            }
        };
        let copy = if shared.max_attempts() > 1 {
            shared.requests.clone_request(&request)
        } else {
            None
        };
        let span = attempt_span(shared.observer.name(), 1);
        let future = within(&span, || service.call(request));
        ResponseFuture {
            state: State::Calling { future },
            attempts: Attempts {
                service: None,
                request: copy,
                deadline,
                made: 1,
                previous_delay: None,
                spare,
                span,
            },
        }
    }
}

impl<S, Req, P, Q, C, R> Attempts<S, Req, P, Q, C, R>
where
    S: Service<Req>,
    P: RetryPolicy<Req, S::Response>,
    C: Clock,
    R: Random,
{
    /// After an attempt: the result to return, or the instant to retry at.
    fn after(
        &mut self,
        mut result: Result<S::Response, BoxError>,
    ) -> Result<Instant, Result<S::Response, BoxError>> {
        let shared = &*self.spare.shared;
        let made = self.made;
        let previous_delay = self.previous_delay;
        let Some(request) = &mut self.request else {
            let success = result.is_ok();
            return Err(self.complete(result, made, success));
        };
        let decision = shared.policy.decide(request, &mut result);
        if let Some(budget) = &shared.budget {
            budget.record(!decision.retries());
        }
        if !decision.retries() {
            let success = result.is_ok();
            return Err(self.complete(result, made, success));
        }
        let now = shared.clock.now();
        let backoff = || {
            let backoff = shared.backoff();
            let previous = previous_delay.unwrap_or(backoff.base());
            backoff.delay(made - 1, previous, &shared.random)
        };
        let delay = match decision {
            Decision::RetryAfter(pushback) if shared.pushback_may_shorten => {
                pushback.min(shared.max_pushback())
            }
            // The server may ask for a longer wait, not a shorter one.
            Decision::RetryAfter(pushback) => pushback.min(shared.max_pushback()).max(backoff()),
            Decision::Retry | Decision::Accept => backoff(),
        };
        let wake = now.saturating_add(delay);
        // A wait that would end past the end of the clock never ends.
        let out_of_time =
            wake == Instant::MAX || self.deadline.is_some_and(|deadline| wake > deadline);
        if made >= shared.max_attempts() || out_of_time {
            self.emit(now, EventKind::RetriesExhausted { attempts: made });
            return Err(self.complete(result, made, false));
        }
        if let Some(budget) = &shared.budget {
            if !budget.withdraw(now) {
                self.emit(now, EventKind::BudgetExhausted);
                return Err(self.complete(result, made, false));
            }
        }
        self.emit(
            now,
            EventKind::RetryScheduled {
                attempt: made + 1,
                delay,
                reason: match (decision, &result) {
                    (Decision::RetryAfter(_), _) => "pushback",
                    (_, Err(_)) => "error",
                    (_, Ok(_)) => "response",
                },
            },
        );
        self.previous_delay = Some(delay);
        Ok(wake)
    }

    /// The call ends with `result` after `made` attempts.
    fn complete<T>(&self, result: T, made: u32, success: bool) -> T {
        let shared = &self.spare.shared;
        let observer = &shared.observer;
        if observer.is_active() {
            let now = shared.clock.now();
            observer.emit(
                now,
                EventKind::Completed {
                    attempts: made,
                    success,
                },
            );
        }
        result
    }

    fn emit(&self, now: Instant, kind: EventKind) {
        let observer = &self.spare.shared.observer;
        if observer.is_active() {
            observer.emit(now, kind);
        }
    }
}

impl<S, Req, P, Q, C, R> Future for ResponseFuture<S, Req, P, Q, C, R>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    P: RetryPolicy<Req, S::Response>,
    Q: RequestCloner<Req>,
    C: Clock,
    R: Random,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future } => {
                    let polled = within(&this.attempts.span, || future.poll(cx));
                    let result = ready!(polled).map_err(Into::into);
                    let wake = match this.attempts.after(result) {
                        Ok(wake) => wake,
                        Err(result) => return Poll::Ready(result),
                    };
                    let sleep = Box::pin(this.attempts.spare.shared.clock.sleep_until(wake));
                    this.state.set(State::Sleeping { sleep });
                }
                StateProj::Sleeping { sleep } => {
                    ready!(sleep.as_mut().poll(cx));
                    this.state.set(State::Readying);
                }
                StateProj::Readying => {
                    let attempts = &mut *this.attempts;
                    let spare = &attempts.spare;
                    let service = attempts
                        .service
                        .get_or_insert_with(|| Box::new(spare.service()));
                    ready!(service.poll_ready(cx)).map_err(Into::into)?;
                    let kept = attempts.request.as_ref().expect("a retry has its request");
                    // Keep a copy for the policy and any further attempt; the
                    // last copy goes out when no other can be made.
                    let request = match spare.shared.requests.clone_request(kept) {
                        Some(request) => request,
                        None => attempts.request.take().expect("checked above"),
                    };
                    attempts.made += 1;
                    attempts.span = attempt_span(spare.shared.observer.name(), attempts.made);
                    let future = within(&attempts.span, || service.call(request));
                    this.state.set(State::Calling { future });
                }
            }
        }
    }
}

impl<S: Service<Req>, Req, P, Q, C: Clock, R: Random> fmt::Debug
    for ResponseFuture<S, Req, P, Q, C, R>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Calling { .. } => "calling",
            State::Sleeping { .. } => "sleeping",
            State::Readying => "readying",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .field("attempts", &self.attempts.made)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "http")]
pub use buffer::BufferFuture;

/// The response future of [`BufferBody`](super::body::BufferBody).
#[cfg(feature = "http")]
mod buffer {
    use std::{
        fmt,
        future::Future,
        pin::Pin,
        task::{Context, Poll, ready},
    };

    use bytes::Bytes;
    use http::{HeaderMap, Request};
    use http_body::Body;
    use pin_project_lite::pin_project;
    use tower::{BoxError, Service};

    use crate::{
        clock::{Clock, TokioClock},
        observe::{EventKind, Observer},
        retry::body::{Replay, ReplayBody},
    };

    /// What has been read of a body.
    #[derive(Default)]
    struct Read {
        /// The bytes read, copied: never more than the limit, nor a capacity
        /// past it.
        data: Vec<u8>,
        /// The frame that went past the limit, as the transport handed it over
        /// (not copied).
        over: Option<Bytes>,
        trailers: Option<HeaderMap>,
    }

    impl Read {
        /// Keeps the `frame`'s bytes when they fit within `limit`, with the
        /// buffer grown by doubling but never past `limit`; else keeps the frame
        /// itself and says the limit is passed.
        fn keep(&mut self, frame: Bytes, limit: usize) -> bool {
            let needed = self.data.len() + frame.len();
            if needed > limit {
                self.over = Some(frame);
                return false;
            }
            if needed > self.data.capacity() {
                let grown = (self.data.capacity() * 2).clamp(needed, limit);
                self.data.reserve_exact(grown - self.data.len());
            }
            self.data.extend_from_slice(&frame);
            true
        }
    }

    pin_project! {
        /// The response future of [`BufferBody`](crate::retry::body::BufferBody): reads the body, then calls.
        ///
        /// # Cancellation
        ///
        /// Dropped while reading, the body and what was read of it are dropped and the
        /// wrapped service is never called. Dropped while its call runs, the wrapped future
        /// is dropped.
        pub struct BufferFuture<S: Service<Request<ReplayBody<B>>>, B, C = TokioClock> {
            #[pin]
            state: Buffering<S, B, C>,
        }
    }

    pin_project! {
        #[project = BufferingProj]
        #[project_replace = BufferingReplace]
        enum Buffering<S: Service<Request<ReplayBody<B>>>, B, C> {
            Reading {
                body: Pin<Box<B>>,
                read: Read,
                parts: Option<http::request::Parts>,
                service: Option<S>,
                limit: usize,
                observer: Observer,
                clock: C,
            },
            Calling {
                #[pin]
                future: S::Future,
            },
            Done,
        }
    }

    impl<S: Service<Request<ReplayBody<B>>>, B, C> BufferFuture<S, B, C> {
        pub(in crate::retry) fn new(
            body: B,
            parts: http::request::Parts,
            service: S,
            limit: usize,
            observer: Observer,
            clock: C,
        ) -> Self {
            BufferFuture {
                state: Buffering::Reading {
                    body: Box::pin(body),
                    read: Read::default(),
                    parts: Some(parts),
                    service: Some(service),
                    limit,
                    observer,
                    clock,
                },
            }
        }
    }

    impl<S, B, C> Future for BufferFuture<S, B, C>
    where
        C: Clock,
        S: Service<Request<ReplayBody<B>>>,
        S::Error: Into<BoxError>,
        B: Body<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        type Output = Result<S::Response, BoxError>;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            let mut state = self.project().state;
            loop {
                match state.as_mut().project() {
                    BufferingProj::Calling { future } => {
                        return future.poll(cx).map_err(Into::into);
                    }
                    BufferingProj::Done => panic!("BufferFuture polled after completion"),
                    BufferingProj::Reading {
                        body, read, limit, ..
                    } => {
                        // Read until the end, or past the limit.
                        let whole = loop {
                            match ready!(body.as_mut().poll_frame(cx)) {
                                None => break true,
                                Some(Err(err)) => return Poll::Ready(Err(err.into())),
                                Some(Ok(frame)) => match frame.into_data() {
                                    Ok(data) => {
                                        if !read.keep(data, *limit) {
                                            break false;
                                        }
                                    }
                                    Err(frame) => {
                                        if let Ok(trailers) = frame.into_trailers() {
                                            read.trailers = Some(trailers);
                                        }
                                    }
                                },
                            }
                        };
                        let BufferingReplace::Reading {
                            body,
                            read,
                            parts,
                            service,
                            limit,
                            observer,
                            clock,
                        } = state.as_mut().project_replace(Buffering::Done)
                        else {
                            unreachable!("the state was Reading")
                        };
                        let data = Bytes::from(read.data);
                        let replay = if whole {
                            Replay::Whole {
                                data,
                                trailers: read.trailers,
                                sent: false,
                            }
                        } else {
                            if observer.is_active() {
                                let limit = limit as u64;
                                observer.emit(clock.now(), EventKind::BodyNotBuffered { limit });
                            }
                            Replay::Streaming {
                                prefix: [Some(data), read.over],
                                rest: body,
                            }
                        };
                        let request = Request::from_parts(
                            parts.expect("parts are taken once"),
                            ReplayBody { replay },
                        );
                        let future = service.expect("the service is taken once").call(request);
                        state.set(Buffering::Calling { future });
                    }
                }
            }
        }
    }

    impl<S: Service<Request<ReplayBody<B>>>, B, C> fmt::Debug for BufferFuture<S, B, C> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("BufferFuture").finish_non_exhaustive()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_buffer_doubles_up_to_the_limit_and_keeps_the_frame_that_passes_it() {
            let mut read = Read::default();
            let capacities: Vec<usize> = ["ab", "c", "d", "efg", "hij"]
                .into_iter()
                .map(|part| {
                    assert!(read.keep(Bytes::from(part), 10));
                    read.data.capacity()
                })
                .collect();
            // Full is not past it: 4 bytes stay in 4.
            assert_eq!(capacities, [2, 4, 4, 8, 10]);
            assert_eq!(read.data, b"abcdefghij");
            // The limit is full: one more byte is kept as handed over.
            assert!(!read.keep(Bytes::from("k"), 10));
            assert_eq!(read.over.as_deref(), Some(&b"k"[..]));
            assert_eq!(read.data.capacity(), 10);
        }

        #[test]
        fn a_first_frame_over_the_limit_is_not_copied() {
            let mut read = Read::default();
            assert!(!read.keep(Bytes::from(vec![0; 11]), 10));
            assert_eq!(read.data.capacity(), 0);
        }
    }
}
