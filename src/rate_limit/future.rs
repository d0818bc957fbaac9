//! The response future of [`RateLimit`](super::RateLimit).

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use pin_project_lite::pin_project;
use tower::{BoxError, Service};

use super::queued::Ticket;
use crate::{
    clock::{Clock, Sleep},
    deferred::Deferred,
};

pin_project! {
    /// The response future of [`RateLimit`](super::RateLimit): the wrapped
    /// service's future; or, for a request that reserved capacity still to
    /// come, a sleep on the layer's clock until it is due and then the call;
    /// or an immediate refusal.
    ///
    /// # Cancellation
    ///
    /// Dropped while waiting for its turn, nothing is given back: the capacity it reserved
    /// stays used, as if the request had gone (giving it back would let the next request
    /// through early). A leaky bucket's waiter is the exception: dropped before its slot,
    /// it gives the slot back, and everyone behind it moves up, so the stream stays even.
    /// Dropped while its call runs, the wrapped future is dropped; the admission stands.
    ///
    /// # Examples
    ///
    /// ```
    /// use palisade::rate_limit::RateLimitLayer;
    /// use tower::{Layer, Service, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let layer = RateLimitLayer::builder().build().unwrap();
    /// let mut service = layer.layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
    /// let future /* : ResponseFuture<_, u32, _> */ = service.call(7);
    /// assert_eq!(future.await.unwrap(), 7);
    /// # }
    /// ```
    pub struct ResponseFuture<S: Service<Req>, Req, C: Clock> {
        #[pin]
        kind: Kind<S, Req, C>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S: Service<Req>, Req, C: Clock> {
        Called {
            #[pin]
            future: S::Future,
        },
        // Boxed: a wait is rare and long, and keeping the sleep, the service
        // and the request out of line keeps every other response future small.
        Waiting {
            waiting: Pin<Box<Waiting<S, Req, C>>>,
        },
        // Boxed as a wait is.
        Queued {
            queued: Pin<Box<Queued<S, Req, C>>>,
        },
        Rejected {
            error: Option<BoxError>,
        },
    }
}

pin_project! {
    /// A request waiting for the capacity it reserved.
    #[project = WaitingProj]
    struct Waiting<S, Req, C: Clock> {
        #[pin]
        sleep: C::Sleep,
        call: Deferred<S, Req>,
    }
}

pin_project! {
    /// A request waiting in a leaky bucket's queue for its slot.
    #[project = QueuedProj]
    struct Queued<S, Req, C: Clock> {
        ticket: Ticket<C>,
        #[pin]
        sleep: C::Sleep,
        call: Deferred<S, Req>,
    }
}

impl<S: Service<Req>, Req, C: Clock> ResponseFuture<S, Req, C> {
    #[inline(always)]
    pub(crate) fn called(future: S::Future) -> Self {
        ResponseFuture {
            kind: Kind::Called { future },
        }
    }

    pub(crate) fn waiting(sleep: C::Sleep, service: S, request: Req) -> Self {
        ResponseFuture {
            kind: Kind::Waiting {
                waiting: Box::pin(Waiting {
                    sleep,
                    call: Deferred::new(service, request),
                }),
            },
        }
    }

    /// A request waiting in a leaky bucket with `ticket`, its sleep made on
    /// `clock` for the slot it was given.
    pub(crate) fn queued(ticket: Ticket<C>, clock: &C, service: S, request: Req) -> Self {
        ResponseFuture {
            kind: Kind::Queued {
                queued: Box::pin(Queued {
                    sleep: clock.sleep_until(ticket.due()),
                    ticket,
                    call: Deferred::new(service, request),
                }),
            },
        }
    }

    pub(crate) fn rejected(error: BoxError) -> Self {
        ResponseFuture {
            kind: Kind::Rejected { error: Some(error) },
        }
    }
}

impl<S, Req, C> Future for ResponseFuture<S, Req, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    C: Clock,
{
    type Output = Result<S::Response, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut kind = self.project().kind;
        loop {
            match kind.as_mut().project() {
                KindProj::Called { future } => return future.poll(cx).map_err(Into::into),
                KindProj::Waiting { waiting } => {
                    let WaitingProj { sleep, call } = waiting.as_mut().project();
                    ready!(sleep.poll(cx));
                    let future = call.call();
                    kind.set(Kind::Called { future });
                }
                KindProj::Queued { queued } => {
                    let QueuedProj {
                        ticket,
                        mut sleep,
                        call,
                    } = queued.as_mut().project();
                    // Until its slot begins: the timer wakes it at the slot
                    // it was told, the queue when the slot moves.
                    while !ticket.poll_turn(cx.waker()) {
                        if sleep.deadline() != ticket.due() {
                            sleep.as_mut().reset(ticket.due());
                        }
                        ready!(sleep.as_mut().poll(cx));
                    }
                    let future = call.call();
                    kind.set(Kind::Called { future });
                }
                KindProj::Rejected { error } => {
                    return Poll::Ready(Err(error
                        .take()
                        .expect("ResponseFuture polled after completion")));
                }
            }
        }
    }
}

impl<S: Service<Req>, Req, C: Clock> fmt::Debug for ResponseFuture<S, Req, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.kind {
            Kind::Called { .. } => "called",
            Kind::Waiting { .. } => "waiting",
            Kind::Queued { .. } => "queued",
            Kind::Rejected { .. } => "rejected",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}
