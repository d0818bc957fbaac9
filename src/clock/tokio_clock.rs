use std::{
    future::Future,
    pin::Pin,
    sync::OnceLock,
    task::{Context, Poll},
    time::Duration,
};

use pin_project_lite::pin_project;

use super::{Clock, Instant, Sleep};

/// The default clock of every layer: [`tokio::time`].
///
/// Because it reads [`tokio::time::Instant::now`] and sleeps with
/// [`tokio::time::sleep_until`], tokio's paused time drives it:
/// `#[tokio::test(start_paused = true)]`, `tokio::time::pause()` and
/// `tokio::time::advance(d)` (these need tokio's `test-util` feature in your
/// dev-dependencies). Sleeping needs a tokio runtime with the time driver
/// enabled; reading the time does not.
///
/// All `TokioClock`s share one epoch, fixed the first time any of them is
/// read, so their [`Instant`]s are comparable across layers.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::clock::{Clock, TokioClock};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let clock = TokioClock::new();
/// let start = clock.now();
/// clock.sleep(Duration::from_secs(3600)).await; // paused time: returns at once
/// assert!(clock.now() - start >= Duration::from_secs(3600));
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioClock {
    _private: (),
}

impl TokioClock {
    /// The tokio clock.
    ///
    /// ```
    /// use palisade::clock::{Clock, TokioClock};
    /// let clock = TokioClock::new();
    /// assert!(clock.now() <= clock.now());
    /// ```
    pub const fn new() -> TokioClock {
        TokioClock { _private: () }
    }
}

/// The instant that [`Instant::ZERO`] stands for on every `TokioClock`.
///
/// Set somewhat before the first reading where the platform can represent it:
/// a test runtime whose time was paused a moment before the first reading
/// (another test, running in parallel) must still see its time move forward
/// rather than sit clamped at zero.
fn epoch() -> std::time::Instant {
    static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
    *EPOCH.get_or_init(|| {
        let first = std::time::Instant::now();
        [86_400, 3_600, 60, 1]
            .into_iter()
            .find_map(|secs| first.checked_sub(Duration::from_secs(secs)))
            .unwrap_or(first)
    })
}

fn from_tokio(instant: tokio::time::Instant) -> Instant {
    let since = instant.into_std().saturating_duration_since(epoch());
    // Whole seconds and the rest: cheaper than `Duration::as_nanos`'s u128.
    let nanos = since
        .as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(since.subsec_nanos()));
    Instant::from_nanos(nanos)
}

fn to_tokio(instant: Instant) -> tokio::time::Instant {
    let epoch = epoch();
    // An instant beyond what the platform can represent (a deadline derived
    // from a hostile `Retry-After`, say) becomes "in thirty years", which is as
    // good as never and what tokio itself uses as "far future".
    let std = epoch
        .checked_add(instant.since_epoch())
        .or_else(|| std::time::Instant::now().checked_add(FAR_FUTURE))
        .unwrap_or(epoch);
    tokio::time::Instant::from_std(std)
}

pub(super) const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

impl Clock for TokioClock {
    type Sleep = TokioSleep;

    fn now(&self) -> Instant {
        from_tokio(tokio::time::Instant::now())
    }

    fn sleep_until(&self, deadline: Instant) -> TokioSleep {
        TokioSleep {
            sleep: tokio::time::sleep_until(to_tokio(deadline)),
        }
    }

    /// [`tokio::time::sleep`], with no conversion of the deadline either way.
    fn sleep(&self, duration: Duration) -> TokioSleep {
        TokioSleep {
            sleep: tokio::time::sleep(duration),
        }
    }
}

pin_project! {
    /// The [`Sleep`] of a [`TokioClock`]: a [`tokio::time::Sleep`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::clock::{Clock, Sleep, TokioClock};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let clock = TokioClock::new();
    /// let sleep = clock.sleep(Duration::from_millis(10));
    /// assert_eq!(sleep.deadline() - clock.now(), Duration::from_millis(10));
    /// sleep.await;
    /// # }
    /// ```
    #[derive(Debug)]
    pub struct TokioSleep {
        #[pin]
        sleep: tokio::time::Sleep,
    }
}

impl Future for TokioSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.project().sleep.poll(cx)
    }
}

impl Sleep for TokioSleep {
    fn deadline(&self) -> Instant {
        from_tokio(self.sleep.deadline())
    }

    fn reset(self: Pin<&mut Self>, deadline: Instant) {
        self.project().sleep.reset(to_tokio(deadline));
    }
}
