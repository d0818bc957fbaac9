//! The response future of [`Bulkhead`](super::Bulkhead), and the permit it
//! holds.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use pin_project_lite::pin_project;
use tower::{BoxError, Service};

use super::layer::Shared;
use crate::{
    classify::Outcome,
    clock::{Clock, Instant},
    deferred::Deferred,
    error::BulkheadFull,
    observe::EventKind,
    sync::Arc,
};

/// A call's permit: given back exactly once — when the call completes, or
/// when its future is dropped (cancelled, or unwound by a panic).
pub(crate) struct Permit<C: Clock> {
    shared: Arc<Shared<C>>,
    /// When the call was let through, if anyone observes.
    started: Option<Instant>,
    outcome: Outcome,
}

impl<C: Clock> Permit<C> {
    #[inline(always)]
    pub(crate) fn new(shared: Arc<Shared<C>>) -> Self {
        let started = shared.observed.then(|| {
            let now = shared.clock.now();
            shared.observer.emit(now, EventKind::Permitted);
            now
        });
        Permit {
            shared,
            started,
            outcome: Outcome::Ignored,
        }
    }
}

impl<C: Clock> Drop for Permit<C> {
    fn drop(&mut self) {
        self.shared.queue.release(&self.shared.permits);
        if let Some(started) = self.started {
            let now = self.shared.clock.now();
            let finished = EventKind::Finished {
                outcome: self.outcome,
                elapsed: now - started,
            };
            self.shared.observer.emit(now, finished);
        }
    }
}

/// A place in the bulkhead's queue: leaves it (giving back a permit it was
/// handed meanwhile) when dropped before it is redeemed.
pub(crate) struct Ticket<C: Clock> {
    id: u64,
    shared: Option<Arc<Shared<C>>>,
}

impl<C: Clock> Ticket<C> {
    pub(crate) fn new(id: u64, shared: Arc<Shared<C>>) -> Self {
        Ticket {
            id,
            shared: Some(shared),
        }
    }

    /// The permit, once the queue has handed it over.
    fn poll_permit(&mut self, cx: &Context<'_>) -> Option<Permit<C>> {
        let shared = self.shared.as_ref().expect("a ticket is redeemed once");
        if !shared.queue.poll_ticket(self.id, cx.waker()) {
            return None;
        }
        self.shared.take().map(Permit::new)
    }

    fn name(&self) -> crate::LayerName {
        let shared = self.shared.as_ref().expect("a ticket is redeemed once");
        shared.observer.name().clone()
    }
}

impl<C: Clock> Drop for Ticket<C> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            shared.queue.cancel(self.id, &shared.permits);
        }
    }
}

pin_project! {
    /// The response future of [`Bulkhead`](super::Bulkhead): the wrapped
    /// future holding its permit; or a call waiting in the queue for one (its
    /// place given up when the future is dropped or its wait runs out); or
    /// an immediate [`BulkheadFull`] refusal.
    ///
    /// # Cancellation
    ///
    /// Dropped while its call runs, the permit goes back at once (to the next waiter in the
    /// queue, if any) and the call finishes as ignored (`Finished` event). Dropped while
    /// queued, it leaves the queue; a permit handed to it meanwhile passes to the next
    /// waiter. Nothing is counted against the wrapped service.
    ///
    /// # Examples
    ///
    /// ```
    /// use palisade::bulkhead::BulkheadLayer;
    /// use tower::{Layer, Service, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let layer = BulkheadLayer::builder(1).build().unwrap();
    /// let mut service = layer.layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
    /// assert_eq!(service.call(1).await.unwrap(), 1);
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
            permit: Option<Permit<C>>,
        },
        Waiting {
            // Boxed: a call that waits is the rare, slow case, and its
            // sleep and deferred call would otherwise make every call's
            // future several times larger.
            wait: Pin<Box<Wait<S, Req, C>>>,
        },
        Rejected {
            error: Option<BulkheadFull>,
        },
    }
}

pin_project! {
    /// A call waiting in the queue: its place, its deadline, and the call to
    /// make once it has a permit.
    struct Wait<S: Service<Req>, Req, C: Clock> {
        ticket: Ticket<C>,
        #[pin]
        sleep: C::Sleep,
        call: Deferred<S, Req>,
    }
}

impl<S: Service<Req>, Req, C: Clock> ResponseFuture<S, Req, C> {
    pub(crate) fn waiting(ticket: Ticket<C>, sleep: C::Sleep, service: S, request: Req) -> Self {
        ResponseFuture {
            kind: Kind::Waiting {
                wait: Box::pin(Wait {
                    ticket,
                    sleep,
                    call: Deferred::new(service, request),
                }),
            },
        }
    }

    #[inline(always)]
    pub(crate) fn called(future: S::Future, permit: Permit<C>) -> Self {
        ResponseFuture {
            kind: Kind::Called {
                future,
                permit: Some(permit),
            },
        }
    }

    pub(crate) fn rejected(error: BulkheadFull) -> Self {
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
                KindProj::Waiting { wait } => {
                    let wait = wait.as_mut().project();
                    let (ticket, sleep, call) = (wait.ticket, wait.sleep, wait.call);
                    if let Some(permit) = ticket.poll_permit(cx) {
                        let future = call.call();
                        kind.set(Kind::Called {
                            future,
                            permit: Some(permit),
                        });
                        continue;
                    }
                    ready!(sleep.poll(cx));
                    let name = ticket.name();
                    // Leave the queue (the ticket's drop) before answering.
                    kind.set(Kind::Rejected { error: None });
                    return Poll::Ready(Err(BulkheadFull::new(name, None).into()));
                }
                _ => return Self::poll_settled(kind, cx),
            }
        }
    }
}

impl<S, Req, C> ResponseFuture<S, Req, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    C: Clock,
{
    fn poll_settled(
        kind: Pin<&mut Kind<S, Req, C>>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<S::Response, BoxError>> {
        match kind.project() {
            KindProj::Waiting { .. } => unreachable!("handled by poll"),
            KindProj::Called { future, permit } => {
                let result = ready!(future.poll(cx));
                // Give the permit back as soon as the call is done, dropping
                // it where it is (moving it out first copies it, a copy that
                // stalls on the byte just written).
                if let Some(permit) = permit.as_mut() {
                    permit.outcome = if result.is_ok() {
                        Outcome::Success
                    } else {
                        Outcome::Failure
                    };
                }
                *permit = None;
                Poll::Ready(result.map_err(Into::into))
            }
            KindProj::Rejected { error } => Poll::Ready(Err(error
                .take()
                .expect("ResponseFuture polled after completion")
                .into())),
        }
    }
}

impl<S: Service<Req>, Req, C: Clock> fmt::Debug for ResponseFuture<S, Req, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.kind {
            Kind::Called { .. } => "called",
            Kind::Waiting { .. } => "waiting",
            Kind::Rejected { .. } => "rejected",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}
