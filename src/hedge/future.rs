//! The response future of [`Hedge`](super::Hedge).

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use pin_project_lite::pin_project;
use tower::{BoxError, Service};

use super::layer::Shared;
use crate::{
    classify::{Classify, Outcome},
    clock::{Clock, Instant},
    observe::EventKind,
    retry::RequestCloner,
    sync::Arc,
};

pin_project! {
    #[project = FirstProj]
    enum First<F> {
        Running { #[pin] future: F },
        Done,
    }
}

/// An extra attempt: a clone of the service made ready, then its call.
enum Extra<S: Service<Req>, Req> {
    Readying { service: S, request: Option<Req> },
    Calling { future: Pin<Box<S::Future>> },
}

/// One extra attempt under way.
struct Attempt<S: Service<Req>, Req> {
    /// 2 for the first extra attempt.
    number: u32,
    started: Instant,
    extra: Extra<S, Req>,
}

type Answer<S, Req> = Result<<S as Service<Req>>::Response, BoxError>;

pin_project! {
    /// The response future of [`Hedge`](super::Hedge): the first acceptable
    /// answer of the request's attempts; the others are dropped.
    pub struct ResponseFuture<S, Req, K, Q, C>
    where
        S: Service<Req>,
        C: Clock,
    {
        #[pin]
        first: First<S::Future>,
        // A copy of the request and a service for extra attempts.
        spare: Option<(Req, S)>,
        attempts: Vec<Attempt<S, Req>>,
        // The next extra attempt is due when it completes; armed at the
        // first poll that finds the first attempt pending.
        timer: Option<Pin<Box<C::Sleep>>>,
        // When the first attempt was found pending (its latency is
        // measured from there).
        started: Option<Instant>,
        // Extra attempts sent.
        sent: u32,
        // The latest failure, returned if no attempt does better.
        failure: Option<Answer<S, Req>>,
        shared: Arc<Shared<K, Q, C>>,
    }
}

impl<S, Req, K, Q, C> ResponseFuture<S, Req, K, Q, C>
where
    S: Service<Req>,
    C: Clock,
{
    pub(crate) fn new(
        future: S::Future,
        spare: Option<(Req, S)>,
        shared: Arc<Shared<K, Q, C>>,
    ) -> Self {
        ResponseFuture {
            first: First::Running { future },
            spare,
            attempts: Vec::new(),
            timer: None,
            started: None,
            sent: 0,
            failure: None,
            shared,
        }
    }
}

impl<S, Req, K, Q, C> Future for ResponseFuture<S, Req, K, Q, C>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    K: Classify<S::Response, BoxError>,
    Q: RequestCloner<Req>,
    C: Clock,
{
    type Output = Answer<S, Req>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let shared = &**this.shared;
        // The first attempt.
        if let FirstProj::Running { future } = this.first.as_mut().project() {
            if let Poll::Ready(result) = future.poll(cx) {
                this.first.set(First::Done);
                if let Some(started) = *this.started {
                    shared.completed(started);
                }
                let answer = result.map_err(Into::into);
                let in_flight = !this.attempts.is_empty();
                if let Some(answer) = settle(shared, 1, answer, in_flight, *this.sent, this.failure)
                {
                    // The others are dropped now: cancelled, their permits
                    // given back.
                    this.attempts.clear();
                    *this.timer = None;
                    return Poll::Ready(answer);
                }
            } else if this.started.is_none() {
                // Pending at its first poll: from now on, time counts.
                let now = shared.clock.now();
                *this.started = Some(now);
                if this.spare.is_some() {
                    *this.timer = Some(Box::pin(shared.clock.sleep(shared.delay(now))));
                }
            }
        }
        // Extra attempts, each when the timer says.
        while let Some(timer) = this.timer.as_mut() {
            if timer.as_mut().poll(cx).is_pending() {
                break;
            }
            *this.timer = None;
            let now = shared.clock.now();
            let Some((request, service)) = this.spare.as_ref() else {
                break;
            };
            if !shared.budget.withdraw() {
                shared.emit(EventKind::BudgetExhausted);
                break;
            }
            let Some(request) = shared.cloner.clone_request(request) else {
                break;
            };
            *this.sent += 1;
            let number = *this.sent + 1;
            shared.emit(EventKind::Hedged { attempt: number });
            this.attempts.push(Attempt {
                number,
                started: now,
                extra: Extra::Readying {
                    service: service.clone(),
                    request: Some(request),
                },
            });
            if *this.sent < shared.max_extra {
                *this.timer = Some(Box::pin(shared.clock.sleep(shared.delay(now))));
            }
        }
        // Extra attempts under way.
        let mut index = 0;
        while index < this.attempts.len() {
            let attempt = &mut this.attempts[index];
            let answer = loop {
                match &mut attempt.extra {
                    Extra::Readying { service, request } => match service.poll_ready(cx) {
                        Poll::Pending => break None,
                        Poll::Ready(Err(error)) => break Some(Err(error.into())),
                        Poll::Ready(Ok(())) => {
                            let request = request.take().expect("called once");
                            let future = Box::pin(service.call(request));
                            attempt.extra = Extra::Calling { future };
                        }
                    },
                    Extra::Calling { future } => match future.as_mut().poll(cx) {
                        Poll::Pending => break None,
                        Poll::Ready(result) => {
                            shared.completed(attempt.started);
                            break Some(result.map_err(Into::into));
                        }
                    },
                }
            };
            let Some(answer) = answer else {
                index += 1;
                continue;
            };
            let Attempt {
                number, started, ..
            } = this.attempts.swap_remove(index);
            let in_flight =
                matches!(*this.first, First::Running { .. }) || !this.attempts.is_empty();
            if let Some(answer) =
                settle(shared, number, answer, in_flight, *this.sent, this.failure)
            {
                let first = match *this.first {
                    First::Running { .. } => *this.started,
                    First::Done => None,
                };
                this.first.set(First::Done);
                drop_losers(shared, started, first, this.attempts);
                *this.timer = None;
                return Poll::Ready(answer);
            }
        }
        let running = matches!(*this.first, First::Running { .. });
        if !running && this.attempts.is_empty() {
            // Every attempt failed, and no other is due: the last failure.
            if let Some(failure) = this.failure.take() {
                return Poll::Ready(failure);
            }
        }
        Poll::Pending
    }
}

/// Drops the attempts still under way when an extra attempt started at
/// `winner` answered — the first attempt, found pending at `first`, if it is
/// one of them — and records, of those started before the winner, the time
/// each has taken so far as its latency: a lower bound of the true one, but
/// above the answer's, which is what a quantile's rank needs (a straggler
/// overtaken by its hedge still counts as slow; counted for nothing, the
/// quantile would follow the hedges' latencies down, and hedge more). Those
/// started after the winner count for nothing: their time so far is no bound.
fn drop_losers<K, Q, C: Clock, S: Service<Req>, Req>(
    shared: &Shared<K, Q, C>,
    winner: Instant,
    first: Option<Instant>,
    attempts: &mut Vec<Attempt<S, Req>>,
) {
    let losers = first.into_iter().chain(attempts.iter().map(|a| a.started));
    for started in losers.filter(|&started| started < winner) {
        shared.completed(started);
    }
    attempts.clear();
}

/// What attempt `number`'s `answer` does to the request: answers it (an
/// acceptable one, or a failure with nothing else in flight or under
/// fail-fast), or is kept as the failure to return if nothing does better.
fn settle<K, Q, C, Res>(
    shared: &Shared<K, Q, C>,
    number: u32,
    answer: Result<Res, BoxError>,
    in_flight: bool,
    sent: u32,
    failure: &mut Option<Result<Res, BoxError>>,
) -> Option<Result<Res, BoxError>>
where
    K: Classify<Res, BoxError>,
    C: Clock,
{
    let failed = shared.classifier.classify(&answer) == Outcome::Failure;
    if failed && in_flight && !shared.fail_fast {
        *failure = Some(answer);
        return None;
    }
    if sent > 0 {
        shared.emit(EventKind::HedgeWon { attempt: number });
    }
    Some(answer)
}

impl<S, Req, K, Q, C> fmt::Debug for ResponseFuture<S, Req, K, Q, C>
where
    S: Service<Req>,
    C: Clock,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("extra_attempts", &self.sent)
            .field("in_flight", &self.attempts.len())
            .finish_non_exhaustive()
    }
}
