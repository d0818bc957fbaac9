//! The response future of [`CircuitBreaker`](super::CircuitBreaker).

use std::{
    any::Any,
    fmt,
    future::Future,
    mem,
    pin::Pin,
    task::{Context, Poll, ready},
};

use pin_project_lite::pin_project;
use tower::BoxError;

use super::shared::{CloneRef, Permit, Report};
use crate::{
    classify::{Classify, DeferredOutcome, Outcome},
    clock::{Clock, Instant, nanos},
    error::{CircuitOpen, Rejection, RejectionKind},
    observe::EventKind,
    random::Random,
    sync::Arc,
};

/// The right to one call, reporting how it ended exactly once: when its
/// future completes, or — as ignored — when it is dropped first (cancelled,
/// or unwound by a panic). A half-open probe slot is thereby always freed.
pub(crate) struct Guard<K, C: Clock, R: Random> {
    shared: CloneRef<K, C, R>,
    permit: Permit,
    /// When the call was made, if it was timed ([`Stage::Timed`]).
    started: Instant,
    stage: Stage,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Held by a service between `poll_ready` and `call`.
    Reserved,
    Called,
    /// Called, and its start read: `started` holds it.
    Timed,
    Finished,
}

impl<K, C: Clock, R: Random> Guard<K, C, R> {
    pub(crate) fn new(shared: CloneRef<K, C, R>, permit: Permit) -> Self {
        Guard {
            shared,
            permit,
            started: Instant::ZERO,
            stage: Stage::Reserved,
        }
    }

    /// The guard of a call already made and not timed.
    #[inline(always)]
    pub(crate) fn called(shared: CloneRef<K, C, R>, permit: Permit) -> Self {
        Guard {
            shared,
            permit,
            started: Instant::ZERO,
            stage: Stage::Called,
        }
    }

    /// The call is being made now.
    #[inline]
    pub(crate) fn start(&mut self) {
        self.stage = Stage::Called;
        if self.shared.times_calls() {
            let now = self.shared.clock.now();
            self.started = now;
            self.stage = Stage::Timed;
            if self.shared.observed() {
                self.shared.permitted(now);
            }
        }
    }

    #[inline]
    fn finish<Res, E: 'static>(&mut self, result: &mut Result<Res, E>)
    where
        K: Classify<Res, E>,
    {
        if self.shared.classifier.defers(result) {
            let mut later = self.hand_over();
            let outcome = DeferredOutcome::new(move |outcome| later.report(outcome, None));
            self.shared.classifier.defer(result, outcome);
            return;
        }
        let outcome = match result {
            Err(error) if is_ignored(error, self.shared.count_request_deadlines) => {
                Outcome::Ignored
            }
            _ => self.shared.classifier.classify(result),
        };
        let pushback = match outcome {
            Outcome::Failure => self.shared.classifier.open_for(result),
            _ => None,
        };
        self.report(outcome, pushback);
    }

    /// A guard for the same call that reports in this one's place, for an
    /// outcome known only later; this one is done.
    fn hand_over(&mut self) -> Self {
        let later = Guard {
            shared: Arc::clone(&self.shared),
            permit: mem::replace(&mut self.permit, Permit::Uncounted),
            started: self.started,
            stage: self.stage,
        };
        self.stage = Stage::Finished;
        later
    }

    #[inline]
    fn report(&mut self, outcome: Outcome, pushback: Option<std::time::Duration>) {
        if self.shared.reads_end_time() {
            return self.report_timed(outcome, pushback);
        }
        self.stage = Stage::Finished;
        let report = Report {
            outcome,
            slow: false,
            pushback,
            now: None,
            nanos: None,
        };
        self.shared.finish(&self.permit, report);
    }

    /// [`report`](Self::report) for a breaker that reads the clock when a
    /// call ends: to time it, to place it in a time window, or to emit it.
    #[inline(never)]
    fn report_timed(&mut self, outcome: Outcome, pushback: Option<std::time::Duration>) {
        let timed = self.stage == Stage::Timed;
        self.stage = Stage::Finished;
        let now = self.shared.clock.now();
        // A call started while nothing timed calls has no start: it is not
        // judged slow, even if slow-call detection was turned on since.
        let elapsed = timed.then(|| now - self.started);
        let slow = match (self.shared.slow_threshold(), elapsed) {
            (Some(threshold), Some(elapsed)) => outcome != Outcome::Ignored && elapsed >= threshold,
            _ => false,
        };
        let nanos = elapsed.filter(|_| self.shared.keeps_durations()).map(nanos);
        self.shared.finish(
            &self.permit,
            Report {
                outcome,
                slow,
                pushback,
                now: Some(now),
                nanos,
            },
        );
        if let Some(elapsed) = elapsed {
            if self.shared.observed() {
                self.shared
                    .observer
                    .emit(now, EventKind::Finished { outcome, elapsed });
            }
        }
    }
}

/// Whether `error` is a rejection that says nothing of the dependency's
/// health ([`RejectionKind::is_dependency_failure`]): a refusal made on the
/// caller's side by a layer inside the breaker, or — unless they are
/// counted — a timeout at a deadline the request chose. A timeout at the
/// layer's own duration is classified.
fn is_ignored<E: 'static>(error: &E, count_request_deadlines: bool) -> bool {
    let error: &dyn Any = error;
    error
        .downcast_ref::<BoxError>()
        .and_then(|error| Rejection::find(&**error))
        .is_some_and(|rejection| match rejection.kind() {
            RejectionKind::DeadlineExceeded => !count_request_deadlines,
            kind => !kind.is_dependency_failure(),
        })
}

impl<K, C: Clock, R: Random> Drop for Guard<K, C, R> {
    fn drop(&mut self) {
        if self.stage != Stage::Finished {
            self.report(Outcome::Ignored, None);
        }
    }
}

impl<K, C: Clock, R: Random> fmt::Debug for Guard<K, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("permit", &self.permit)
            .field("stage", &self.stage)
            .finish()
    }
}

pin_project! {
    /// The response future of [`CircuitBreaker`](super::CircuitBreaker): the
    /// wrapped service's future, which reports its outcome to the breaker when
    /// it completes, or an immediate [`CircuitOpen`] error.
    ///
    /// # Cancellation
    ///
    /// Dropped before the wrapped future completes, the call is reported as ignored: it
    /// counts neither as a success nor as a failure, and a half-open probe slot it held is
    /// freed at once, so the breaker never waits on a call that will not report.
    ///
    /// # Examples
    ///
    /// ```
    /// use palisade::circuit_breaker::{CircuitBreakerLayer, future::ResponseFuture};
    /// use tower::{Layer, Service, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let layer = CircuitBreakerLayer::builder().build().unwrap();
    /// let mut service = layer.layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
    /// let future /* : ResponseFuture<_, _, _, _> */ = service.call(7);
    /// assert_eq!(future.await.unwrap(), 7);
    /// # }
    /// ```
    pub struct ResponseFuture<F, K, C: Clock, R: Random> {
        #[pin]
        kind: Kind<F, K, C, R>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, K, C: Clock, R: Random> {
        Called {
            #[pin]
            future: F,
            guard: Guard<K, C, R>,
        },
        Rejected {
            error: Option<CircuitOpen>,
        },
    }
}

impl<F, K, C: Clock, R: Random> ResponseFuture<F, K, C, R> {
    #[inline(always)]
    pub(crate) fn called(future: F, guard: Guard<K, C, R>) -> Self {
        ResponseFuture {
            kind: Kind::Called { future, guard },
        }
    }

    pub(crate) fn rejected(error: CircuitOpen) -> Self {
        ResponseFuture {
            kind: Kind::Rejected { error: Some(error) },
        }
    }
}

impl<F, K, C, R, Res, E> Future for ResponseFuture<F, K, C, R>
where
    F: Future<Output = Result<Res, E>>,
    E: Into<BoxError> + 'static,
    K: Classify<Res, E>,
    C: Clock,
    R: Random,
{
    type Output = Result<Res, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called { future, guard } => {
                let mut result = ready!(future.poll(cx));
                guard.finish(&mut result);
                Poll::Ready(result.map_err(Into::into))
            }
            KindProj::Rejected { error } => Poll::Ready(Err(error
                .take()
                .expect("ResponseFuture polled after completion")
                .into())),
        }
    }
}

impl<F, K, C: Clock, R: Random> fmt::Debug for ResponseFuture<F, K, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Called { guard, .. } => f
                .debug_struct("ResponseFuture")
                .field("guard", guard)
                .finish_non_exhaustive(),
            Kind::Rejected { error } => f
                .debug_struct("ResponseFuture")
                .field("rejected", error)
                .finish(),
        }
    }
}
