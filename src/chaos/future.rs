//! The response future of [`Chaos`](super::Chaos).

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
    time::Duration,
};

use pin_project_lite::pin_project;
use tower::BoxError;

use crate::clock::{Clock, Sleep};

/// What a call comes to, after its delay if it has one.
pub(crate) enum Next<F, Res> {
    /// The wrapped service's future.
    Call(F),
    /// A made-up answer.
    Answer(Result<Res, BoxError>),
    /// No answer, ever.
    Hang,
}

pin_project! {
    /// The response future of [`Chaos`](super::Chaos): the wrapped
    /// service's, or an injected answer, after an injected delay if any —
    /// or never, for a hang. The delay starts when the future is first
    /// polled, and the wrapped service's future is polled from its end: the
    /// delays of chaos layers wrapping one another add up.
    pub struct ResponseFuture<F, Res, C>
    where
        C: Clock,
    {
        #[pin]
        kind: Kind<F, Res, C>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, Res, C>
    where
        C: Clock,
    {
        // Untouched: the wrapped future, and nothing else to drop.
        Called { #[pin] future: F },
        // Touched by chaos: boxed, the rare path, so that the untouched
        // one stays the wrapped future plus a tag.
        Chaos { state: Pin<Box<State<F, Res, C>>> },
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, Res, C>
    where
        C: Clock,
    {
        Called { #[pin] future: F },
        // The sleep is set to end `delay` after the first poll (until then,
        // `delay` after the call). `next` is moved out when the delay ends:
        // never pinned before.
        Delayed {
            clock: C,
            delay: Option<Duration>,
            #[pin]
            sleep: C::Sleep,
            next: Option<Next<F, Res>>,
        },
        Answered { answer: Option<Result<Res, BoxError>> },
        Hanging,
    }
}

impl<F, Res, C: Clock> ResponseFuture<F, Res, C> {
    /// The wrapped service's future, untouched.
    #[inline]
    pub(crate) fn called(future: F) -> Self {
        ResponseFuture {
            kind: Kind::Called { future },
        }
    }

    /// `next`, at once.
    pub(crate) fn now(next: Next<F, Res>) -> Self {
        ResponseFuture::chaos(State::after(next))
    }

    /// `next`, `delay` after the first poll on `clock`.
    pub(crate) fn delayed(clock: C, delay: Duration, next: Next<F, Res>) -> Self {
        ResponseFuture::chaos(State::Delayed {
            sleep: clock.sleep(delay),
            clock,
            delay: Some(delay),
            next: Some(next),
        })
    }

    fn chaos(state: State<F, Res, C>) -> Self {
        ResponseFuture {
            kind: Kind::Chaos {
                state: Box::pin(state),
            },
        }
    }
}

impl<F, Res, C: Clock> State<F, Res, C> {
    fn after(next: Next<F, Res>) -> Self {
        match next {
            Next::Call(future) => State::Called { future },
            Next::Answer(answer) => State::Answered {
                answer: Some(answer),
            },
            Next::Hang => State::Hanging,
        }
    }

    /// Out of line: the untouched path's caller keeps no room for it.
    #[inline(never)]
    fn poll<E>(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Res, BoxError>>
    where
        F: Future<Output = Result<Res, E>>,
        E: Into<BoxError>,
    {
        loop {
            let next = match self.as_mut().project() {
                StateProj::Called { future } => return future.poll(cx).map_err(Into::into),
                StateProj::Delayed {
                    clock,
                    delay,
                    mut sleep,
                    next,
                } => {
                    if let Some(delay) = delay.take() {
                        let ends = clock.now() + delay;
                        sleep.as_mut().reset(ends);
                    }
                    ready!(sleep.poll(cx));
                    next.take().expect("a delay ends once")
                }
                StateProj::Answered { answer } => {
                    return Poll::Ready(answer.take().expect("polled after completion"));
                }
                // Never woken: the caller gives up and drops it.
                StateProj::Hanging => return Poll::Pending,
            };
            self.set(State::after(next));
        }
    }
}

impl<F, E, Res, C> Future for ResponseFuture<F, Res, C>
where
    F: Future<Output = Result<Res, E>>,
    E: Into<BoxError>,
    C: Clock,
{
    type Output = Result<Res, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called { future } => future.poll(cx).map_err(Into::into),
            KindProj::Chaos { state } => state.as_mut().poll(cx),
        }
    }
}

impl<F, Res, C: Clock> fmt::Debug for ResponseFuture<F, Res, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.kind {
            Kind::Called { .. } => "called",
            Kind::Chaos { state } => match **state {
                State::Called { .. } => "called",
                State::Delayed { .. } => "delayed",
                State::Answered { .. } => "answered",
                State::Hanging => "hanging",
            },
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
