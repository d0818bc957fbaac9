//! The response future of [`RedisRateLimit`](super::RedisRateLimit).

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
    backend::{Limit, Verdict},
    layer::{RedisShared, Unavailable},
};
use crate::{
    clock::Clock,
    deferred::Deferred,
    error::{CircuitOpen, Elapsed, Rejection, StoreUnavailable},
    observe::EventKind,
    rate_limit::{Cost, KeyExtractor, core::Denied, shared::Admission},
    sync::Arc,
};

/// The decision on its way back from Redis (boxed: a round trip costs far
/// more than the allocation).
type Decision = Pin<Box<dyn Future<Output = Result<Verdict, BoxError>> + Send>>;

/// What was asked of Redis, as the answer needs it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Asked {
    pub(super) cost: u64,
    /// The key's identity in the denial cache and among the leases.
    pub(super) id: u64,
    /// When it was asked, on the layer's clock, in nanoseconds.
    pub(super) sent: u64,
    /// The generation of the numbers it was asked with.
    pub(super) generation: u64,
}

pin_project! {
    /// The response future of [`RedisRateLimit`](super::RedisRateLimit):
    /// waits for Redis's decision (or the [`Unavailable`] policy's), then
    /// calls the wrapped service — at once, or after the wait it reserved —
    /// or fails with the refusal.
    ///
    /// # Cancellation
    ///
    /// Dropped while Redis decides, the round trip is abandoned: a script already sent
    /// still runs on Redis and its decision stands (one atomic script cannot be taken
    /// back), and the store's breaker counts the round trip as ignored. Dropped while
    /// waiting for its reserved turn, the reservation stays used, as in process. Dropped
    /// while its call runs, the wrapped future is dropped.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use palisade::rate_limit::{Rate, RateLimitLayer};
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    ///
    /// # async fn run(connection: redis::aio::ConnectionManager) -> Result<(), tower::BoxError> {
    /// let layer = RateLimitLayer::builder()
    ///     .token_bucket(Rate::per_second(10), 10)
    ///     .redis(connection)
    ///     .build()?;
    /// let mut service = layer.layer(service_fn(|x: u8| async move { Ok::<_, std::io::Error>(x) }));
    /// assert_eq!(service.ready().await?.call(3).await?, 3);
    /// # Ok(()) }
    /// ```
    pub struct ResponseFuture<S: Service<Req>, Req, X, W, C: Clock, R> {
        #[pin]
        kind: Kind<S, Req, X, W, C, R>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S: Service<Req>, Req, X, W, C: Clock, R> {
        Deciding {
            decision: Decision,
            call: Deferred<S, Req>,
            asked: Asked,
            shared: Arc<RedisShared<X, W, C, R>>,
        },
        Waiting {
            #[pin]
            sleep: C::Sleep,
            call: Deferred<S, Req>,
        },
        Called {
            #[pin]
            future: S::Future,
        },
        Rejected {
            error: Option<BoxError>,
        },
    }
}

impl<S: Service<Req>, Req, X, W, C: Clock, R> ResponseFuture<S, Req, X, W, C, R> {
    pub(super) fn called(future: S::Future) -> Self {
        ResponseFuture {
            kind: Kind::Called { future },
        }
    }

    pub(super) fn rejected(error: BoxError) -> Self {
        ResponseFuture {
            kind: Kind::Rejected { error: Some(error) },
        }
    }

    pub(super) fn deciding(
        decision: Decision,
        service: S,
        request: Req,
        asked: Asked,
        shared: Arc<RedisShared<X, W, C, R>>,
    ) -> Self {
        ResponseFuture {
            kind: Kind::Deciding {
                decision,
                call: Deferred::new(service, request),
                asked,
                shared,
            },
        }
    }
}

/// What a decision leads to.
enum Next<Sl> {
    Call,
    Wait(Sl),
    Refuse(BoxError),
}

impl<S, Req, X, W, C, R> Future for ResponseFuture<S, Req, X, W, C, R>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    X: KeyExtractor<Req>,
    W: Cost<Req>,
    C: Clock,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut kind = self.project().kind;
        loop {
            match kind.as_mut().project() {
                KindProj::Called { future } => return future.poll(cx).map_err(Into::into),
                KindProj::Rejected { error } => {
                    return Poll::Ready(Err(error
                        .take()
                        .expect("ResponseFuture polled after completion")));
                }
                KindProj::Waiting { sleep, call } => {
                    ready!(sleep.poll(cx));
                    let future = call.call();
                    kind.set(Kind::Called { future });
                }
                KindProj::Deciding {
                    decision,
                    call,
                    asked,
                    shared,
                } => {
                    let verdict = ready!(decision.as_mut().poll(cx));
                    match decide(shared, call, *asked, verdict) {
                        Next::Call => {
                            let future = call.call();
                            kind.set(Kind::Called { future });
                        }
                        Next::Wait(sleep) => {
                            let call = call.take();
                            kind.set(Kind::Waiting { sleep, call });
                        }
                        Next::Refuse(error) => kind.set(Kind::Rejected { error: Some(error) }),
                    }
                }
            }
        }
    }
}

/// What to do with a call, given Redis's verdict or its failure.
fn decide<S, Req, X, W, C, R>(
    shared: &RedisShared<X, W, C, R>,
    call: &Deferred<S, Req>,
    asked: Asked,
    verdict: Result<Verdict, BoxError>,
) -> Next<C::Sleep>
where
    X: KeyExtractor<Req>,
    W: Cost<Req>,
    C: Clock,
{
    let local = &shared.local;
    let micros = Duration::from_micros;
    let cost = asked.cost;
    // The bucket's TAT after the decision, on the layer's clock: anchored
    // at the sending (in whole microseconds, as Redis counts), so never
    // later than the true one.
    let tat = |ahead: u64| (asked.sent / 1_000 * 1_000).saturating_add(ahead.saturating_mul(1_000));
    // An answer on numbers changed since says nothing the denial cache may
    // keep: the next decision on the key changes what Redis holds.
    let current = shared.is_current(asked.generation);
    match verdict {
        Ok(Verdict::Admitted { wait, ahead, taken }) => {
            if current {
                shared.denials.raise(asked.id, tat(ahead));
            }
            if taken > cost && current {
                // The rest of the batch, to spend before it would have
                // refilled (dropped if the numbers changed meanwhile: the
                // fleet admits less, never more).
                if let Limit::Bucket { interval, .. } = shared.numbers().limit {
                    let now = local.clock.now().as_nanos();
                    let until = asked.sent.saturating_add(shared.batch * interval * 1_000);
                    shared.leases.hold(asked.id, taken - cost, until, now);
                }
            }
            if local.is_observed() {
                local.emit_let_through(local.clock.now());
            }
            match wait {
                0 => Next::Call,
                wait => Next::Wait(local.clock.sleep(micros(wait))),
            }
        }
        Ok(Verdict::Refused { wait, ahead }) => {
            let now = local.clock.now();
            if current {
                shared
                    .denials
                    .remember(asked.id, tat(ahead), now.as_nanos());
            }
            Next::Refuse(local.refusal(now, cost, Denied::Wait(wait.saturating_mul(1_000))))
        }
        Ok(Verdict::Never) => Next::Refuse(shared.unsatisfiable(cost, shared.numbers().limit)),
        Err(error) => {
            if local.observer().is_active() {
                let answer = match shared.unavailable {
                    Unavailable::Open => "admitted",
                    Unavailable::Closed => "refused",
                    Unavailable::Local { .. } => "local",
                };
                let cause = if error.is::<CircuitOpen>() {
                    "circuit_open"
                } else if error.is::<Elapsed>() {
                    "timeout"
                } else {
                    "error"
                };
                let kind = EventKind::StoreUnavailable { cause, answer };
                local.observer().emit(local.clock.now(), kind);
            }
            unavailable(shared, call, error)
        }
    }
}

/// What [`Unavailable`] says to do with a call Redis could not decide.
fn unavailable<S, Req, X, W, C, R>(
    shared: &RedisShared<X, W, C, R>,
    call: &Deferred<S, Req>,
    error: BoxError,
) -> Next<C::Sleep>
where
    X: KeyExtractor<Req>,
    W: Cost<Req>,
    C: Clock,
{
    let local = &shared.local;
    match shared.unavailable {
        Unavailable::Open => Next::Call,
        Unavailable::Closed => {
            // While the breaker is open, say when Redis is tried again.
            let retry_after = Rejection::find(&*error)
                .filter(|_| error.is::<CircuitOpen>())
                .and_then(|open| open.retry_after());
            let name = local.observer().name().clone();
            Next::Refuse(StoreUnavailable::new(name, retry_after).into())
        }
        Unavailable::Local { .. } => match local.admit(call.request()) {
            Admission::Now => Next::Call,
            Admission::At(due) => Next::Wait(local.clock.sleep_until(due)),
            Admission::Refused(error) => Next::Refuse(error),
            Admission::Queued(..) => unreachable!("a leaky bucket is refused on Redis when built"),
        },
    }
}

impl<S: Service<Req>, Req, X, W, C: Clock, R> fmt::Debug for ResponseFuture<S, Req, X, W, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.kind {
            Kind::Deciding { .. } => "deciding",
            Kind::Waiting { .. } => "waiting",
            Kind::Called { .. } => "called",
            Kind::Rejected { .. } => "rejected",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}
