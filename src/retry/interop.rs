//! tower's retry and palisade's, each usable with the other's parts
//! (feature `tower-retry`): a `tower::retry::Policy` deciding in palisade's
//! retry, and palisade's [`Backoff`] timing tower's retry.

use std::{fmt, time::Duration};

use tower::{BoxError, retry::backoff};

use super::{Backoff, Decision, RetryPolicy};
use crate::{
    clock::{Clock, TokioClock},
    random::{FastRandom, Random},
};

/// A `tower::retry::Policy` deciding in palisade's retry layer: pass it to
/// [`RetryBuilder::policy`](super::RetryBuilder::policy).
///
/// The policy's `retry` is asked after each attempt, with the attempt's
/// request and result (both `&mut`, as tower hands them over): `Some` is
/// [`Decision::Retry`], `None` is [`Decision::Accept`]. To have its
/// `clone_request` copy each attempt's request too, hand it to
/// [`clone_request`](super::RetryBuilder::clone_request) as a closure (the
/// example), which names the policy's response type.
///
/// What palisade keeps for itself: **when** and **how often**. The future
/// `retry` returns (tower's wait) is dropped unpolled; palisade's
/// [`Backoff`], on the layer's clock, sets the wait, and its attempts,
/// budget and deadline bound the retries. tower clones a policy once per
/// request and keeps the clone across its attempts; here each question goes
/// to a fresh clone, so a policy that counts attempts in itself (tower's
/// documented `Attempts(n)`) sees its first attempt every time — say how
/// many with [`max_attempts`](super::RetryBuilder::max_attempts).
///
/// # Examples
///
/// ```
/// use std::future::{Ready, ready};
/// use palisade::retry::{Decision, RetryLayer, RetryPolicy, TowerPolicy};
/// use tower::{BoxError, retry::Policy};
///
/// /// A tower policy: retry errors, copy requests.
/// #[derive(Clone)]
/// struct RetryErrorsTower;
///
/// impl tower::retry::Policy<u32, u32, BoxError> for RetryErrorsTower {
///     type Future = Ready<()>;
///     fn retry(&mut self, _: &mut u32, result: &mut Result<u32, BoxError>) -> Option<Ready<()>> {
///         result.is_err().then(|| ready(()))
///     }
///     fn clone_request(&mut self, request: &u32) -> Option<u32> {
///         Some(*request)
///     }
/// }
///
/// let policy = TowerPolicy::new(RetryErrorsTower);
/// assert_eq!(policy.decide(&mut 1, &mut Err("boom".into())), Decision::Retry);
/// assert_eq!(policy.decide(&mut 1, &mut Ok(7)), Decision::Accept);
///
/// let layer = RetryLayer::builder()
///     .policy(policy)
///     .clone_request(|request: &u32| {
///         Policy::<u32, u32, BoxError>::clone_request(&mut RetryErrorsTower, request)
///     })
///     .max_attempts(3)
///     .build()?;
/// # let _ = layer;
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct TowerPolicy<P> {
    policy: P,
}

impl<P> TowerPolicy<P> {
    /// Wraps the tower policy `policy`.
    ///
    /// ```
    /// # #[derive(Clone)] struct Mine;
    /// let _ = palisade::retry::TowerPolicy::new(Mine);
    /// ```
    pub fn new(policy: P) -> TowerPolicy<P> {
        TowerPolicy { policy }
    }

    /// The tower policy.
    ///
    /// ```
    /// # #[derive(Clone, Debug, PartialEq)] struct Mine;
    /// assert_eq!(palisade::retry::TowerPolicy::new(Mine).into_inner(), Mine);
    /// ```
    pub fn into_inner(self) -> P {
        self.policy
    }
}

impl<Req, Res, P> RetryPolicy<Req, Res> for TowerPolicy<P>
where
    P: tower::retry::Policy<Req, Res, BoxError> + Clone,
{
    fn decide(&self, request: &mut Req, result: &mut Result<Res, BoxError>) -> Decision {
        match self.policy.clone().retry(request, result) {
            Some(_) => Decision::Retry,
            None => Decision::Accept,
        }
    }
}

/// palisade's [`Backoff`] as tower's `MakeBackoff`: the waits of
/// `tower::retry::Retry` grown, capped and jittered as palisade's, and slept
/// on a palisade [`Clock`] (so `ManualClock` drives tower's retry in tests).
///
/// Each `make_backoff` starts a session (one request's retries): its
/// `next_backoff` sleeps the first delay, then the second, … Delays draw
/// from the [`Random`] given, seeded in tests.
///
/// # Examples
///
/// ```
/// use std::{future::Future, pin::pin, task::{Context, Poll, Waker}, time::Duration};
/// use palisade::{clock::ManualClock, random::FastRandom, retry::{Backoff, TowerBackoff}};
/// use tower::retry::backoff::{Backoff as _, MakeBackoff};
///
/// let clock = ManualClock::new();
/// let mut make = TowerBackoff::new(Backoff::exponential(Duration::from_millis(100), 2.0))
///     .clock(clock.clone())
///     .random(FastRandom::seeded(7));
/// let mut session = make.make_backoff();
/// assert_eq!(session.delays_so_far(), 0);
///
/// let mut wait = pin!(session.next_backoff()); // 100 ms
/// let mut cx = Context::from_waker(Waker::noop());
/// clock.advance(Duration::from_millis(99));
/// assert!(wait.as_mut().poll(&mut cx).is_pending());
/// clock.advance(Duration::from_millis(1));
/// assert!(wait.as_mut().poll(&mut cx).is_ready());
/// ```
#[derive(Clone)]
pub struct TowerBackoff<C = TokioClock, R = FastRandom> {
    backoff: Backoff,
    clock: C,
    random: R,
}

impl TowerBackoff {
    /// `backoff`'s delays, on the tokio clock, with unseeded jitter.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use palisade::retry::{Backoff, TowerBackoff};
    /// let _ = TowerBackoff::new(Backoff::constant(Duration::from_millis(50)));
    /// ```
    pub fn new(backoff: Backoff) -> TowerBackoff {
        TowerBackoff {
            backoff,
            clock: TokioClock::new(),
            random: FastRandom::default(),
        }
    }
}

impl<C, R> TowerBackoff<C, R> {
    /// The clock the waits sleep on.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use palisade::{clock::ManualClock, retry::{Backoff, TowerBackoff}};
    /// let _ = TowerBackoff::new(Backoff::constant(Duration::from_millis(50))).clock(ManualClock::new());
    /// ```
    pub fn clock<C2: Clock>(self, clock: C2) -> TowerBackoff<C2, R> {
        TowerBackoff {
            backoff: self.backoff,
            clock,
            random: self.random,
        }
    }

    /// The source of the jitter.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use palisade::{random::FastRandom, retry::{Backoff, TowerBackoff}};
    /// let _ = TowerBackoff::new(Backoff::constant(Duration::from_millis(50))).random(FastRandom::seeded(1));
    /// ```
    pub fn random<R2: Random>(self, random: R2) -> TowerBackoff<C, R2> {
        TowerBackoff {
            backoff: self.backoff,
            clock: self.clock,
            random,
        }
    }
}

impl<C: Clock, R: Random> backoff::MakeBackoff for TowerBackoff<C, R> {
    type Backoff = BackoffSession<C, R>;

    fn make_backoff(&mut self) -> BackoffSession<C, R> {
        BackoffSession {
            maker: self.clone(),
            delays: 0,
            previous: self.backoff.base(),
        }
    }
}

impl<C, R> fmt::Debug for TowerBackoff<C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TowerBackoff")
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

/// One request's waits in tower's retry: made by
/// [`TowerBackoff`]'s `make_backoff`.
///
/// ```
/// # use std::time::Duration;
/// use palisade::retry::{Backoff, TowerBackoff};
/// use tower::retry::backoff::MakeBackoff;
/// let session = TowerBackoff::new(Backoff::constant(Duration::from_millis(50))).make_backoff();
/// assert_eq!(session.delays_so_far(), 0);
/// ```
#[derive(Clone)]
pub struct BackoffSession<C = TokioClock, R = FastRandom> {
    maker: TowerBackoff<C, R>,
    delays: u32,
    previous: Duration,
}

impl<C, R> BackoffSession<C, R> {
    /// How many waits this session has started.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use palisade::retry::{Backoff, TowerBackoff};
    /// use tower::retry::backoff::{Backoff as _, MakeBackoff};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let mut session = TowerBackoff::new(Backoff::constant(Duration::ZERO)).make_backoff();
    /// session.next_backoff().await;
    /// assert_eq!(session.delays_so_far(), 1);
    /// # }
    /// ```
    pub fn delays_so_far(&self) -> u32 {
        self.delays
    }
}

impl<C: Clock, R: Random> backoff::Backoff for BackoffSession<C, R> {
    type Future = C::Sleep;

    fn next_backoff(&mut self) -> C::Sleep {
        let maker = &self.maker;
        let delay = maker
            .backoff
            .delay(self.delays, self.previous, &maker.random);
        self.delays = self.delays.saturating_add(1);
        self.previous = delay;
        maker
            .clock
            .sleep_until(maker.clock.now().saturating_add(delay))
    }
}

impl<C, R> fmt::Debug for BackoffSession<C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackoffSession")
            .field("delays", &self.delays)
            .field("previous", &self.previous)
            .finish_non_exhaustive()
    }
}
