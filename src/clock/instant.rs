use std::{
    fmt,
    ops::{Add, AddAssign, Sub, SubAssign},
    time::Duration,
};

/// A point in time on a [`Clock`](super::Clock): nanoseconds since the clock's
/// epoch.
///
/// `Copy`, eight bytes, totally ordered. All arithmetic saturates instead of
/// panicking: adding a huge duration gives [`Instant::MAX`], and the duration
/// from a later instant to an earlier one is zero. That lets the pure cores of
/// the layers do arithmetic on untrusted durations (a server's `Retry-After`,
/// attempt 10 000 of a backoff) without a failure mode.
///
/// Instants from one clock, and from its clones, are comparable. All
/// [`TokioClock`](super::TokioClock)s share one epoch, so their instants are
/// comparable too.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::clock::Instant;
///
/// let t = Instant::from_nanos(1_000);
/// assert_eq!(t + Duration::from_nanos(500), Instant::from_nanos(1_500));
/// assert_eq!(t - Instant::from_nanos(400), Duration::from_nanos(600));
///
/// // Saturating, never panicking:
/// assert_eq!(Instant::from_nanos(400) - t, Duration::ZERO);
/// assert_eq!(t + Duration::MAX, Instant::MAX);
/// assert_eq!(t - Duration::from_secs(1), Instant::ZERO);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant {
    nanos: u64,
}

impl Instant {
    /// The clock's epoch.
    ///
    /// ```
    /// # use palisade::clock::Instant;
    /// assert_eq!(Instant::ZERO.as_nanos(), 0);
    /// ```
    pub const ZERO: Instant = Instant { nanos: 0 };

    /// The latest representable instant, about 584 years after the epoch.
    ///
    /// ```
    /// # use palisade::clock::Instant;
    /// assert_eq!(Instant::MAX.as_nanos(), u64::MAX);
    /// ```
    pub const MAX: Instant = Instant { nanos: u64::MAX };

    /// The instant `nanos` nanoseconds after the epoch.
    ///
    /// ```
    /// # use palisade::clock::Instant;
    /// assert_eq!(Instant::from_nanos(42).as_nanos(), 42);
    /// ```
    pub const fn from_nanos(nanos: u64) -> Instant {
        Instant { nanos }
    }

    /// Nanoseconds since the epoch.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use palisade::clock::Instant;
    /// assert_eq!((Instant::ZERO + Duration::from_micros(3)).as_nanos(), 3_000);
    /// ```
    pub const fn as_nanos(self) -> u64 {
        self.nanos
    }

    /// The time elapsed since the epoch.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use palisade::clock::Instant;
    /// assert_eq!(Instant::from_nanos(1_500_000_000).since_epoch(), Duration::from_millis(1_500));
    /// ```
    pub const fn since_epoch(self) -> Duration {
        Duration::from_nanos(self.nanos)
    }

    /// The duration from `earlier` to `self`, or zero if `earlier` is later.
    ///
    /// ```
    /// # use palisade::clock::Instant;
    /// # use std::time::Duration;
    /// let (a, b) = (Instant::from_nanos(10), Instant::from_nanos(25));
    /// assert_eq!(b.saturating_duration_since(a), Duration::from_nanos(15));
    /// assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
    /// ```
    pub const fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.nanos.saturating_sub(earlier.nanos))
    }

    /// Whether a deadline at this instant is due at `now`: `self <= now`,
    /// except for [`Instant::MAX`], the end of time, which is never due.
    /// Every deadline that would lie past the end of the clock saturates
    /// there (`now + duration`), so a timeout, an open breaker or a sleep
    /// keeps its meaning up to the clock's last instant instead of ending
    /// early.
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::clock::Instant;
    ///
    /// let now = Instant::from_nanos(10);
    /// assert!(Instant::from_nanos(10).is_due(now));
    /// assert!(!Instant::from_nanos(11).is_due(now));
    /// let late = Instant::MAX.saturating_sub(Duration::from_secs(1));
    /// assert!(!(late + Duration::from_secs(3600)).is_due(Instant::MAX));
    /// ```
    pub const fn is_due(self, now: Instant) -> bool {
        self.nanos <= now.nanos && self.nanos != u64::MAX
    }

    /// `self + duration`, or `None` past [`Instant::MAX`].
    ///
    /// ```
    /// # use palisade::clock::Instant;
    /// # use std::time::Duration;
    /// assert_eq!(Instant::ZERO.checked_add(Duration::from_nanos(7)), Some(Instant::from_nanos(7)));
    /// assert_eq!(Instant::MAX.checked_add(Duration::from_nanos(1)), None);
    /// ```
    pub fn checked_add(self, duration: Duration) -> Option<Instant> {
        let nanos = u64::try_from(duration.as_nanos()).ok()?;
        self.nanos.checked_add(nanos).map(Instant::from_nanos)
    }

    /// `self + duration`, clamped to [`Instant::MAX`].
    ///
    /// ```
    /// # use palisade::clock::Instant;
    /// # use std::time::Duration;
    /// assert_eq!(Instant::from_nanos(1).saturating_add(Duration::MAX), Instant::MAX);
    /// ```
    pub fn saturating_add(self, duration: Duration) -> Instant {
        self.checked_add(duration).unwrap_or(Instant::MAX)
    }

    /// `self - duration`, clamped to [`Instant::ZERO`].
    ///
    /// ```
    /// # use palisade::clock::Instant;
    /// # use std::time::Duration;
    /// assert_eq!(Instant::from_nanos(5).saturating_sub(Duration::from_nanos(9)), Instant::ZERO);
    /// ```
    pub fn saturating_sub(self, duration: Duration) -> Instant {
        Instant::from_nanos(self.nanos.saturating_sub(nanos(duration)))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    /// Saturating: see [`Instant::saturating_add`].
    fn add(self, duration: Duration) -> Instant {
        self.saturating_add(duration)
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, duration: Duration) {
        *self = *self + duration;
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;

    /// Saturating: see [`Instant::saturating_sub`].
    fn sub(self, duration: Duration) -> Instant {
        self.saturating_sub(duration)
    }
}

impl SubAssign<Duration> for Instant {
    fn sub_assign(&mut self, duration: Duration) {
        *self = *self - duration;
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;

    /// Saturating: see [`Instant::saturating_duration_since`].
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Instant({:?})", self.since_epoch())
    }
}

/// `duration` in whole nanoseconds, at most `u64::MAX` (584 years): the
/// unit every clock-driven core counts in.
pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
