use std::{
    future::Future,
    pin::Pin,
    sync::OnceLock,
    task::{Context, Poll, ready},
    time::Duration,
};

use pin_project_lite::pin_project;

use super::{Clock, Instant, Sleep, tokio_clock::FAR_FUTURE};

/// A clock that reads the CPU's time-stamp counter through [`quanta`]: the
/// same time as [`TokioClock`](super::TokioClock), at a fraction of the cost
/// of a read (feature `quanta`).
///
/// Every layer reads its clock on each call it times or counts — the rate
/// limiter on every request. Where the operating system's monotonic clock is
/// slow to read (tens of nanoseconds in many virtual machines), that read is
/// most of what a rate limit costs; `QuantaClock` reads the counter and scales
/// it to nanoseconds, calibrated once per process against the monotonic clock.
/// Where the CPU has no invariant counter, [`quanta`] falls back to the
/// monotonic clock, so `QuantaClock` is never worse than correct.
///
/// Sleeping uses tokio's timer (a runtime with the time driver is needed, as
/// for [`TokioClock`](super::TokioClock)); a sleep completes only once this
/// clock has reached its deadline, whatever the two clocks' drift.
///
/// Unlike [`TokioClock`](super::TokioClock), this clock does **not** follow
/// tokio's paused time: in tests, give the layer a
/// [`ManualClock`](super::ManualClock) instead. All `QuantaClock`s share one
/// epoch (the first reading of any of them), so their [`Instant`]s are
/// comparable with each other, but not with other clocks' instants.
///
/// # Examples
///
/// A rate limiter on the fast clock:
///
/// ```
/// use palisade::{clock::QuantaClock, rate_limit::{Rate, RateLimitLayer}};
///
/// let layer = RateLimitLayer::builder()
///     .token_bucket(Rate::per_second(100), 120)
///     .clock(QuantaClock::new())
///     .build()
///     .unwrap();
/// # let _ = layer;
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct QuantaClock {
    _private: (),
}

impl QuantaClock {
    /// The counter-based clock.
    ///
    /// ```
    /// use palisade::clock::{Clock, QuantaClock};
    /// let clock = QuantaClock::new();
    /// assert!(clock.now() <= clock.now());
    /// ```
    pub const fn new() -> QuantaClock {
        QuantaClock { _private: () }
    }
}

/// The calibrated counter and the raw reading that [`Instant::ZERO`] stands for.
struct Source {
    clock: quanta::Clock,
    epoch: u64,
}

fn source() -> &'static Source {
    static SOURCE: OnceLock<Source> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let clock = quanta::Clock::new();
        let epoch = clock.raw();
        Source { clock, epoch }
    })
}

impl Clock for QuantaClock {
    type Sleep = QuantaSleep;

    fn now(&self) -> Instant {
        let Source { clock, epoch } = source();
        Instant::from_nanos(clock.delta_as_nanos(*epoch, clock.raw()))
    }

    fn sleep_until(&self, deadline: Instant) -> QuantaSleep {
        QuantaSleep {
            sleep: tokio::time::sleep(deadline - self.now()),
            deadline,
        }
    }
}

/// The tokio instant `remaining` from now, or tokio's "never" when that is
/// beyond what the platform can represent.
fn tokio_deadline(remaining: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(remaining)
        .or_else(|| now.checked_add(FAR_FUTURE))
        .unwrap_or(now)
}

pin_project! {
    /// The [`Sleep`] of a [`QuantaClock`]: a [`tokio::time::Sleep`] that is
    /// re-armed if tokio's timer fires before the counter reaches the
    /// deadline, and that is ready without it once the counter has.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::clock::{Clock, QuantaClock, Sleep};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let clock = QuantaClock::new();
    /// let sleep = clock.sleep(Duration::from_secs(5));
    /// assert!(sleep.deadline() >= clock.now() + Duration::from_secs(4));
    ///
    /// let due = clock.sleep_until(clock.now()); // already due: completes at once
    /// due.await;
    /// # }
    /// ```
    #[derive(Debug)]
    pub struct QuantaSleep {
        #[pin]
        sleep: tokio::time::Sleep,
        deadline: Instant,
    }
}

/// How much longer a sleep must wait, if at all.
fn remaining(now: Instant, deadline: Instant) -> Option<Duration> {
    (now < deadline).then(|| deadline - now)
}

impl Future for QuantaSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        // Each turn: done if the counter says so; otherwise wait on tokio's
        // timer, and should it fire early (the clocks drift), wait the rest.
        while let Some(rest) = remaining(QuantaClock::new().now(), *this.deadline) {
            ready!(this.sleep.as_mut().poll(cx));
            this.sleep.as_mut().reset(tokio_deadline(rest));
        }
        Poll::Ready(())
    }
}

impl Sleep for QuantaSleep {
    fn deadline(&self) -> Instant {
        self.deadline
    }

    fn reset(self: Pin<&mut Self>, deadline: Instant) {
        let this = self.project();
        *this.deadline = deadline;
        this.sleep
            .reset(tokio_deadline(deadline - QuantaClock::new().now()));
    }
}

#[cfg(test)]
mod tests {
    use std::{pin::pin, task::Waker};

    use super::*;

    #[test]
    fn a_woken_sleep_completes_only_at_or_after_its_deadline() {
        let deadline = Instant::from_nanos(1_000);
        assert_eq!(
            remaining(Instant::from_nanos(999), deadline),
            Some(Duration::from_nanos(1))
        );
        assert_eq!(remaining(deadline, deadline), None);
        assert_eq!(remaining(Instant::from_nanos(1_001), deadline), None);
    }

    #[test]
    fn the_clock_never_goes_back_and_clocks_share_one_epoch() {
        let (a, b) = (QuantaClock::new(), QuantaClock::default());
        let first = a.now();
        let mut last = first;
        for _ in 0..10_000 {
            let now = if last.as_nanos() % 2 == 0 {
                a.now()
            } else {
                b.now()
            };
            assert!(now >= last, "{now:?} < {last:?}");
            last = now;
        }
        assert!(last > first, "ten thousand readings, and time did not move");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_sleep_due_already_is_ready_at_once_and_a_later_one_is_pending() {
        let clock = QuantaClock::new();
        let mut cx = Context::from_waker(Waker::noop());

        let mut due = pin!(clock.sleep_until(Instant::ZERO));
        assert_eq!(due.deadline(), Instant::ZERO);
        assert!(due.as_mut().poll(&mut cx).is_ready());

        let mut later = pin!(clock.sleep(Duration::from_secs(3_600)));
        assert!(later.deadline() >= clock.now() + Duration::from_secs(3_599));
        assert!(later.as_mut().poll(&mut cx).is_pending());
        later.as_mut().reset(clock.now());
        assert!(later.as_mut().poll(&mut cx).is_ready());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_deadline_beyond_the_platform_is_never_and_does_not_panic() {
        let clock = QuantaClock::new();
        let mut sleep = pin!(clock.sleep_until(Instant::MAX));
        assert_eq!(sleep.deadline(), Instant::MAX);
        assert!(
            sleep
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
                .is_pending()
        );
        sleep.as_mut().reset(Instant::MAX);
    }
}
