//! Time for every layer: one [`Clock`] trait that owns both *now* and *sleep*.
//!
//! Every timing decision a palisade layer makes — window edges, how long a
//! breaker stays open, token refill, waits, backoff sleeps, timeouts, slow-call
//! measurement — reads this clock and sleeps on it. Nothing reads
//! [`std::time::Instant`] behind your back, so a test that swaps in a
//! [`ManualClock`] controls every layer completely.
//!
//! - [`TokioClock`] is the default for every layer. It is built on
//!   [`tokio::time`], so `tokio::time::pause`, `tokio::time::advance` and
//!   `#[tokio::test(start_paused = true)]` drive it.
//! - [`ManualClock`] moves only when you tell it to: "advance 30 s, the breaker
//!   is half-open". It needs no runtime at all.
//! - `QuantaClock` (feature `quanta`) reads the CPU's time-stamp counter: the
//!   same real time as [`TokioClock`] at a fraction of the cost of a read, for
//!   layers that read the clock on every call (a rate limiter) where the
//!   operating system's clock is slow. It does not follow tokio's paused time.
//!
//! Times are [`Instant`]s: a `Copy` count of nanoseconds since the clock's
//! epoch, with saturating arithmetic, so a pure state machine can take `now` as
//! a plain value and never panic on overflow.
//!
//! # Examples
//!
//! A function written once against [`Clock`] runs on real time in production
//! and on manual time in tests:
//!
//! ```
//! use std::time::Duration;
//! use palisade::clock::{Clock, ManualClock};
//!
//! fn is_expired<C: Clock>(clock: &C, deadline: palisade::clock::Instant) -> bool {
//!     clock.now() >= deadline
//! }
//!
//! let clock = ManualClock::new();
//! let deadline = clock.now() + Duration::from_secs(30);
//! assert!(!is_expired(&clock, deadline));
//! clock.advance(Duration::from_secs(30));
//! assert!(is_expired(&clock, deadline));
//! ```

mod instant;
mod manual;
#[cfg(feature = "quanta")]
mod quanta_clock;
mod tokio_clock;

use std::{future::Future, pin::Pin, time::Duration};

pub(crate) use self::instant::nanos;
#[cfg(feature = "quanta")]
#[cfg_attr(docsrs, doc(cfg(feature = "quanta")))]
pub use self::quanta_clock::{QuantaClock, QuantaSleep};
pub use self::{
    instant::Instant,
    manual::{ManualClock, ManualSleep},
    tokio_clock::{TokioClock, TokioSleep},
};

/// A source of time: the current [`Instant`] and sleeps until a later one.
///
/// Implementations are cheap to clone; clones observe the same time. Layers
/// are generic over `C: Clock` and default to [`TokioClock`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::clock::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// let start = clock.now();
/// clock.advance(Duration::from_millis(250));
/// assert_eq!(clock.now() - start, Duration::from_millis(250));
/// ```
pub trait Clock: Clone + Send + Sync + 'static {
    /// The future returned by [`sleep_until`](Clock::sleep_until): a concrete
    /// type, so layers can store it in their response futures without boxing.
    type Sleep: Sleep;

    /// The current time. Never goes backwards.
    ///
    /// ```
    /// use palisade::clock::{Clock, TokioClock};
    /// let clock = TokioClock::new();
    /// let (a, b) = (clock.now(), clock.now());
    /// assert!(b >= a);
    /// ```
    fn now(&self) -> Instant;

    /// A future that completes once [`now`](Clock::now) is at or after
    /// `deadline`. A deadline that has already passed completes on first poll.
    /// [`Instant::MAX`], the end of time where every deadline past the end of
    /// the clock saturates, is never reached ([`Instant::is_due`]): a sleep
    /// until it never completes.
    ///
    /// ```
    /// use std::{future::Future, pin::pin, task::{Context, Waker}, time::Duration};
    /// use palisade::clock::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let deadline = clock.now() + Duration::from_millis(100);
    /// let mut sleep = pin!(clock.sleep_until(deadline));
    /// clock.set(deadline);
    /// assert!(sleep.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_ready());
    /// ```
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep;

    /// A future that completes `duration` after the current time.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::clock::{Clock, ManualClock, Sleep};
    ///
    /// let clock = ManualClock::new();
    /// let sleep = clock.sleep(Duration::from_secs(1));
    /// assert_eq!(sleep.deadline(), clock.now() + Duration::from_secs(1));
    /// ```
    fn sleep(&self, duration: Duration) -> Self::Sleep {
        self.sleep_until(self.now() + duration)
    }
}

/// A pending sleep on a [`Clock`]: a future that completes at its deadline and
/// can be moved to another deadline without being recreated.
///
/// A layer that waits again and again for the same thing (the circuit
/// breaker's and the rate limiter's backpressure waits) keeps one `Sleep` and
/// [`reset`](Sleep::reset)s it, as tower does with tokio's `Sleep`.
///
/// # Examples
///
/// ```
/// use std::{pin::pin, time::Duration};
/// use palisade::clock::{Clock, ManualClock, Sleep};
///
/// let clock = ManualClock::new();
/// let mut sleep = pin!(clock.sleep(Duration::from_secs(5)));
/// sleep.as_mut().reset(clock.now() + Duration::from_secs(1));
/// assert_eq!(sleep.deadline(), clock.now() + Duration::from_secs(1));
/// ```
pub trait Sleep: Future<Output = ()> + Send + 'static {
    /// The instant at which this sleep completes.
    ///
    /// ```
    /// use palisade::clock::{Clock, Instant, ManualClock, Sleep};
    /// let clock = ManualClock::new();
    /// assert_eq!(clock.sleep_until(Instant::from_nanos(9)).deadline(), Instant::from_nanos(9));
    /// ```
    fn deadline(&self) -> Instant;

    /// Moves the deadline. The sleep keeps its registration with the clock: a
    /// task already waiting on it is woken at the new deadline (or at once, if
    /// the new deadline has already passed).
    ///
    /// ```
    /// use std::{future::Future, pin::pin, task::{Context, Waker}, time::Duration};
    /// use palisade::clock::{Clock, ManualClock, Sleep};
    ///
    /// let clock = ManualClock::new();
    /// let mut cx = Context::from_waker(Waker::noop());
    /// let mut sleep = pin!(clock.sleep(Duration::from_secs(60)));
    /// assert!(sleep.as_mut().poll(&mut cx).is_pending());
    /// sleep.as_mut().reset(clock.now()); // due now
    /// assert!(sleep.as_mut().poll(&mut cx).is_ready());
    /// ```
    fn reset(self: Pin<&mut Self>, deadline: Instant);
}
