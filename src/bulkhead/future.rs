//! The response future of [`Bulkhead`](super::Bulkhead), and the permit it
//! holds.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use pin_project_lite::pin_project;
use tower::BoxError;

use super::layer::Shared;
use crate::{
    classify::Outcome,
    clock::{Clock, Instant},
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
    pub(crate) fn new(shared: Arc<Shared<C>>) -> Self {
        let started = shared.observer.is_active().then(|| {
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
        self.shared.permits.release();
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

pin_project! {
    /// The response future of [`Bulkhead`](super::Bulkhead): the wrapped
    /// future holding its permit, or an immediate [`BulkheadFull`] refusal.
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
    pub struct ResponseFuture<F, C: Clock> {
        #[pin]
        kind: Kind<F, C>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, C: Clock> {
        Called {
            #[pin]
            future: F,
            permit: Option<Permit<C>>,
        },
        Rejected {
            error: Option<BulkheadFull>,
        },
    }
}

impl<F, C: Clock> ResponseFuture<F, C> {
    pub(crate) fn called(future: F, permit: Permit<C>) -> Self {
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

impl<F, C, Res, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<Res, E>>,
    E: Into<BoxError>,
    C: Clock,
{
    type Output = Result<Res, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called { future, permit } => {
                let result = ready!(future.poll(cx));
                // Give the permit back as soon as the call is done.
                if let Some(mut permit) = permit.take() {
                    permit.outcome = if result.is_ok() {
                        Outcome::Success
                    } else {
                        Outcome::Failure
                    };
                }
                Poll::Ready(result.map_err(Into::into))
            }
            KindProj::Rejected { error } => Poll::Ready(Err(error
                .take()
                .expect("ResponseFuture polled after completion")
                .into())),
        }
    }
}

impl<F, C: Clock> fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.kind {
            Kind::Called { .. } => "called",
            Kind::Rejected { .. } => "rejected",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}
