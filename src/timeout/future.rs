//! The response future of [`Timeout`](super::Timeout).

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use pin_project_lite::pin_project;
use tower::BoxError;

use super::layer::{LAYER, Shared};
use crate::{
    LayerName,
    clock::Clock,
    error::{DeadlineExceeded, Elapsed},
    observe::EventKind,
    sync::Arc,
};

pin_project! {
    /// The response future of [`Timeout`](super::Timeout): the wrapped
    /// future, raced against a timer armed at its first `Pending` (none when
    /// it is ready at once; boxed when made, so that the future stays small).
    /// When the timer wins, the wrapped future is dropped at once — freeing
    /// what it holds at the deadline — and the call fails with [`Elapsed`],
    /// or with [`DeadlineExceeded`] when the request asked for less time
    /// than the layer's own.
    ///
    /// # Cancellation
    ///
    /// Dropped before either side wins, the wrapped future and the timer are dropped
    /// together; no event is emitted (neither `LetThrough` nor `TimedOut`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::timeout::TimeoutLayer;
    /// use tower::{Layer, Service, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let layer = TimeoutLayer::builder(Duration::from_secs(1)).build().unwrap();
    /// let mut service = layer.layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
    /// assert_eq!(service.call(3).await.unwrap(), 3);
    /// # }
    /// ```
    pub struct ResponseFuture<F, T, C: Clock> {
        #[pin]
        inner: Call<F>,
        sleep: Option<Pin<Box<C::Sleep>>>,
        // In nanoseconds (a Duration's padding would leave no room for
        // `asked` in the same words).
        timeout: u64,
        asked: bool,
        held: Held<T, C>,
    }
}

/// What a call's future holds of its layer: the layer itself when a firing
/// has a listener to tell or a name of its own to give; otherwise only the
/// clock, so that most calls take no reference count on the layer.
pub(crate) enum Held<T, C> {
    Clock(C),
    Layer(Arc<Shared<T, C>>),
}

impl<T, C> Held<T, C> {
    fn clock(&self) -> &C {
        match self {
            Held::Clock(clock) => clock,
            Held::Layer(shared) => &shared.clock,
        }
    }
}

pin_project! {
    /// The wrapped call, until it is dropped on a timeout.
    #[project = CallProj]
    enum Call<F> {
        Running {
            #[pin]
            future: F,
        },
        Dropped,
    }
}

impl<F, T, C: Clock> ResponseFuture<F, T, C> {
    #[inline(always)]
    /// The call `inner`, timed out after `timeout` nanoseconds; `asked`:
    /// the request set that time.
    pub(crate) fn new(inner: F, timeout: u64, asked: bool, held: Held<T, C>) -> Self {
        ResponseFuture {
            inner: Call::Running { future: inner },
            sleep: None,
            timeout,
            asked,
            held,
        }
    }
}

impl<F, T, C, Res, E> Future for ResponseFuture<F, T, C>
where
    F: Future<Output = Result<Res, E>>,
    E: Into<BoxError>,
    C: Clock,
{
    type Output = Result<Res, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let CallProj::Running { future } = this.inner.as_mut().project() else {
            panic!("ResponseFuture polled after completion");
        };
        if let Poll::Ready(result) = future.poll(cx) {
            if let Held::Layer(layer) = &*this.held {
                if layer.observer.is_active() {
                    layer
                        .observer
                        .emit(layer.clock.now(), EventKind::LetThrough);
                }
            }
            return Poll::Ready(result.map_err(Into::into));
        }
        let (clock, timeout) = (this.held.clock(), Duration::from_nanos(*this.timeout));
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(clock.sleep(timeout)));
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        // Drop the call now: whatever it holds (a connection, a permit) is
        // freed at the deadline, not when the caller drops this future.
        this.inner.set(Call::Dropped);
        let name = match &*this.held {
            Held::Clock(_) => LayerName::from(LAYER),
            Held::Layer(layer) => {
                let observer = &layer.observer;
                if observer.is_active() {
                    observer.emit(clock.now(), EventKind::TimedOut { after: timeout });
                }
                observer.name().clone()
            }
        };
        Poll::Ready(Err(if *this.asked {
            DeadlineExceeded::new(name, None).into()
        } else {
            Elapsed::new(name, None).into()
        }))
    }
}

impl<F, T, C: Clock> fmt::Debug for ResponseFuture<F, T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("timeout", &Duration::from_nanos(self.timeout))
            .field("timer", &self.sleep.is_some())
            .finish_non_exhaustive()
    }
}
