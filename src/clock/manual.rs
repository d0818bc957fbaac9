use std::{
    collections::BTreeMap,
    fmt,
    future::Future,
    mem,
    pin::{Pin, pin},
    task::{Context, Poll, Waker},
    time::Duration,
};

use super::{Clock, Instant, Sleep};
use crate::sync::{Arc, AtomicU64, Mutex, Ordering, lock};

/// A clock that moves only when told to: the clock for tests and examples.
///
/// Clones share one time. [`advance`](ManualClock::advance) and
/// [`set`](ManualClock::set) move it forward and wake every sleeper whose
/// deadline has been reached, earliest deadline first. No runtime is needed:
/// any executor — tokio's, `tokio_test::task`, a hand-written poll loop — can
/// drive its sleeps. A sleep whose deadline has already passed is ready on
/// first poll; dropping a pending sleep removes it from the clock.
///
/// A new clock starts at [`Instant::ZERO`].
///
/// # Examples
///
/// ```
/// use std::{future::Future, pin::pin, task::{Context, Poll, Waker}, time::Duration};
/// use palisade::clock::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// let mut sleep = pin!(clock.sleep(Duration::from_secs(30)));
/// let mut cx = Context::from_waker(Waker::noop());
///
/// assert!(sleep.as_mut().poll(&mut cx).is_pending());
/// clock.advance(Duration::from_secs(29));
/// assert!(sleep.as_mut().poll(&mut cx).is_pending());
/// clock.advance(Duration::from_secs(1));
/// assert!(sleep.as_mut().poll(&mut cx).is_ready());
/// ```
///
/// # Clone
///
/// Cloning is cheap (one reference count) and the clone shares the time and the
/// sleepers: hand one clone to every layer and keep one in the test to move
/// time.
#[derive(Clone)]
pub struct ManualClock {
    shared: Arc<Shared>,
}

struct Shared {
    /// Nanoseconds since the epoch. Written only while `sleepers` is locked, so
    /// a sleep that checks the time under that lock and then registers cannot
    /// miss an advance.
    now: AtomicU64,
    sleepers: Mutex<Sleepers>,
    /// Sleeps made by `sleep_until`, polled or not.
    created: AtomicU64,
}

#[derive(Default)]
struct Sleepers {
    next_id: u64,
    /// Keyed by deadline, then by registration order: iteration order is the
    /// order in which sleepers are woken.
    by_deadline: BTreeMap<(Instant, u64), Waker>,
    /// The task of [`ManualClock::auto_advance`], woken when a sleep
    /// registers (its deadline may be the new earliest).
    watcher: Option<Waker>,
}

impl ManualClock {
    /// A clock at [`Instant::ZERO`] with no sleepers.
    ///
    /// ```
    /// use palisade::clock::{Clock, Instant, ManualClock};
    /// assert_eq!(ManualClock::new().now(), Instant::ZERO);
    /// ```
    pub fn new() -> ManualClock {
        ManualClock {
            shared: Arc::new(Shared {
                now: AtomicU64::new(0),
                sleepers: Mutex::new(Sleepers::default()),
                created: AtomicU64::new(0),
            }),
        }
    }

    /// Moves time forward by `duration` (saturating at [`Instant::MAX`]) and
    /// wakes every sleeper whose deadline is now reached, earliest first.
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::clock::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let other = clock.clone();
    /// clock.advance(Duration::from_millis(1500));
    /// assert_eq!(other.now().since_epoch(), Duration::from_millis(1500));
    /// ```
    pub fn advance(&self, duration: Duration) {
        self.move_to(|now| now + duration);
    }

    /// Moves time forward to `instant` and wakes every sleeper whose deadline is
    /// now reached, earliest first. Setting the current time again does
    /// nothing.
    ///
    /// # Panics
    ///
    /// If `instant` is earlier than the current time: time never goes back.
    ///
    /// ```
    /// use palisade::clock::{Clock, Instant, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// clock.set(Instant::from_nanos(5_000));
    /// assert_eq!(clock.now(), Instant::from_nanos(5_000));
    /// ```
    pub fn set(&self, instant: Instant) {
        self.move_to(|now| {
            assert!(
                instant >= now,
                "ManualClock::set({instant:?}) would move time back from {now:?}"
            );
            instant
        });
    }

    /// How many sleeps are registered with this clock: polled, pending, and
    /// not yet dropped or woken.
    ///
    /// ```
    /// use std::{future::Future, pin::pin, task::{Context, Waker}, time::Duration};
    /// use palisade::clock::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// {
    ///     let mut sleep = pin!(clock.sleep(Duration::from_secs(1)));
    ///     let _ = sleep.as_mut().poll(&mut Context::from_waker(Waker::noop()));
    ///     assert_eq!(clock.sleepers(), 1);
    /// }
    /// assert_eq!(clock.sleepers(), 0); // dropped, so removed
    /// ```
    pub fn sleepers(&self) -> usize {
        lock(&self.shared.sleepers).by_deadline.len()
    }

    /// The earliest deadline among the registered sleeps, if any: the instant
    /// to [`set`](ManualClock::set) the clock to for the next thing to happen.
    ///
    /// ```
    /// use std::{future::Future, pin::pin, task::{Context, Waker}, time::Duration};
    /// use palisade::clock::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// assert_eq!(clock.next_deadline(), None);
    /// let mut sleep = pin!(clock.sleep(Duration::from_secs(3)));
    /// let _ = sleep.as_mut().poll(&mut Context::from_waker(Waker::noop()));
    /// assert_eq!(clock.next_deadline(), Some(clock.now() + Duration::from_secs(3)));
    /// ```
    pub fn next_deadline(&self) -> Option<Instant> {
        let sleepers = lock(&self.shared.sleepers);
        sleepers
            .by_deadline
            .keys()
            .next()
            .map(|&(deadline, _)| deadline)
    }

    /// How many sleeps this clock (and its clones) has made, polled or not:
    /// a test asserts "no timer was armed" as no change in this count.
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::clock::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// assert_eq!(clock.sleeps_created(), 0);
    /// let _never_polled = clock.sleep(Duration::from_secs(1));
    /// assert_eq!(clock.sleeps_created(), 1);
    /// ```
    pub fn sleeps_created(&self) -> u64 {
        self.shared.created.load(Ordering::Relaxed)
    }

    /// Runs `future` to its end on this thread, with no runtime: polls it,
    /// and whenever it waits, moves the clock to the earliest registered
    /// deadline (waking that sleeper) and polls again. For a call that
    /// sleeps on this clock — a retry's backoff, a timeout, a rate limiter's
    /// wait — and nothing else.
    ///
    /// # Panics
    ///
    /// If `future` waits while no sleep is registered with the clock: it
    /// waits for something the clock cannot bring, and would wait forever.
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::clock::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let two_naps = async {
    ///     clock.sleep(Duration::from_secs(5)).await;
    ///     clock.sleep(Duration::from_secs(3)).await;
    ///     "rested"
    /// };
    /// assert_eq!(clock.block_on(two_naps), "rested");
    /// assert_eq!(clock.now().since_epoch(), Duration::from_secs(8));
    /// ```
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let mut future = pin!(future);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
            match self.next_deadline() {
                Some(deadline) if deadline != Instant::MAX => self.set(deadline),
                _ => panic!("ManualClock::block_on: the future waits, but not on this clock"),
            }
        }
    }

    /// Runs `future` in a tokio runtime whose time is paused
    /// (`#[tokio::test(start_paused = true)]`), moving this clock as tokio
    /// moves paused time: whenever every task of the runtime is idle, the
    /// clock jumps to the earliest registered deadline and wakes that
    /// sleeper. Spawned tasks that sleep on this clock — many clients
    /// through one layer — then run to their ends without a hand-written
    /// loop, and the clock reads exactly what they slept.
    ///
    /// It waits on a tokio timer as long as the clock's next sleep; with
    /// tokio's time paused, that costs no real time. (On a runtime whose
    /// time is not paused, it sleeps for real.) Run one `auto_advance` at a
    /// time on a clock and its clones.
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::clock::{Clock, ManualClock};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # tokio::time::pause();
    /// let clock = ManualClock::new();
    /// let sleepers: Vec<_> = (1..=3)
    ///     .map(|secs| {
    ///         let clock = clock.clone();
    ///         tokio::spawn(async move {
    ///             clock.sleep(Duration::from_secs(secs)).await;
    ///             clock.now().since_epoch().as_secs()
    ///         })
    ///     })
    ///     .collect();
    /// let woke = clock
    ///     .auto_advance(async {
    ///         let mut woke = Vec::new();
    ///         for sleeper in sleepers {
    ///             woke.push(sleeper.await.unwrap());
    ///         }
    ///         woke
    ///     })
    ///     .await;
    /// assert_eq!(woke, [1, 2, 3]);
    /// assert_eq!(clock.now().since_epoch(), Duration::from_secs(3));
    /// # }
    /// ```
    #[cfg(not(loom))]
    pub async fn auto_advance<F: Future>(&self, future: F) -> F::Output {
        let mut future = pin!(future);
        // The tokio timer of the deadline the clock moves to next.
        let mut timer: Option<(Instant, Pin<Box<tokio::time::Sleep>>)> = None;
        std::future::poll_fn(|cx| {
            if let Poll::Ready(output) = future.as_mut().poll(cx) {
                return Poll::Ready(output);
            }
            loop {
                let next = {
                    let mut sleepers = lock(&self.shared.sleepers);
                    sleepers.watcher = Some(cx.waker().clone());
                    sleepers.by_deadline.keys().next().map(|&(at, _)| at)
                };
                let Some(next) = next.filter(|&at| at != Instant::MAX) else {
                    // Nothing to move to: wait for a sleep to register.
                    timer = None;
                    return Poll::Pending;
                };
                if timer.as_ref().is_none_or(|(at, _)| *at != next) {
                    let wait = next.saturating_duration_since(self.now());
                    timer = Some((next, Box::pin(tokio::time::sleep(wait))));
                }
                let (_, sleep) = timer.as_mut().expect("set above");
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                timer = None;
                // Every task was idle until tokio's time reached `next`:
                // move there, unless that sleeper left meanwhile.
                if self.next_deadline() == Some(next) {
                    self.set(next);
                }
                if let Poll::Ready(output) = future.as_mut().poll(cx) {
                    return Poll::Ready(output);
                }
            }
        })
        .await
    }

    fn move_to(&self, target: impl FnOnce(Instant) -> Instant) {
        let due = {
            let mut sleepers = lock(&self.shared.sleepers);
            let now = target(self.shared.now());
            self.shared.now.store(now.as_nanos(), Ordering::Release);
            sleepers.take_due(now)
        };
        // Wake outside the lock: a waker may poll (and so lock) right away.
        for waker in due.into_values() {
            waker.wake();
        }
    }
}

impl Default for ManualClock {
    fn default() -> ManualClock {
        ManualClock::new()
    }
}

impl Shared {
    fn now(&self) -> Instant {
        Instant::from_nanos(self.now.load(Ordering::Acquire))
    }
}

impl Sleepers {
    /// Removes a registration, returning its waker if it had not been woken.
    fn deregister(&mut self, deadline: Instant, id: Option<u64>) -> Option<Waker> {
        self.by_deadline.remove(&(deadline, id?))
    }

    /// Registers a sleeper; returns its id, and the watcher to wake once
    /// the lock is released.
    fn register(&mut self, deadline: Instant, waker: Waker) -> (u64, Option<Waker>) {
        let id = self.next_id;
        self.next_id += 1;
        self.by_deadline.insert((deadline, id), waker);
        (id, self.watcher.take())
    }

    /// Removes and returns every sleeper whose deadline is due at `now`
    /// (never one at the end of time, [`Instant::MAX`]).
    fn take_due(&mut self, now: Instant) -> BTreeMap<(Instant, u64), Waker> {
        let after = now.saturating_add(Duration::from_nanos(1));
        let later = self.by_deadline.split_off(&(after, 0));
        mem::replace(&mut self.by_deadline, later)
    }
}

impl Clock for ManualClock {
    type Sleep = ManualSleep;

    fn now(&self) -> Instant {
        self.shared.now()
    }

    fn sleep_until(&self, deadline: Instant) -> ManualSleep {
        self.shared.created.fetch_add(1, Ordering::Relaxed);
        ManualSleep {
            shared: Arc::clone(&self.shared),
            deadline,
            id: None,
        }
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &self.now())
            .field("sleepers", &self.sleepers())
            .finish()
    }
}

/// The [`Sleep`] of a [`ManualClock`]: completes once the clock has been moved
/// to or past its deadline.
///
/// Registers with the clock only when polled and pending; dropping it removes
/// the registration.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::clock::{Clock, ManualClock};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let clock = ManualClock::new();
/// let sleeper = tokio::spawn({
///     let clock = clock.clone();
///     async move { clock.sleep(Duration::from_secs(60)).await }
/// });
/// tokio::task::yield_now().await; // let it register
/// clock.advance(Duration::from_secs(60));
/// sleeper.await.unwrap();
/// # }
/// ```
pub struct ManualSleep {
    shared: Arc<Shared>,
    deadline: Instant,
    /// The registration id, while registered in `by_deadline`.
    id: Option<u64>,
}

impl Future for ManualSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.deadline.is_due(this.shared.now()) {
            if this.id.is_some() {
                lock(&this.shared.sleepers).deregister(this.deadline, this.id.take());
            }
            return Poll::Ready(());
        }
        let mut sleepers = lock(&this.shared.sleepers);
        // Checked again under the lock: an advance between the check above and
        // this point has already taken its due sleepers, so registering now
        // would never be woken.
        if this.deadline.is_due(this.shared.now()) {
            sleepers.deregister(this.deadline, this.id.take());
            return Poll::Ready(());
        }
        match this.id {
            Some(id) => {
                let waker = sleepers
                    .by_deadline
                    .get_mut(&(this.deadline, id))
                    .expect("a registered sleep stays registered until woken or dropped");
                if !waker.will_wake(cx.waker()) {
                    waker.clone_from(cx.waker());
                }
            }
            None => {
                let (id, watcher) = sleepers.register(this.deadline, cx.waker().clone());
                this.id = Some(id);
                drop(sleepers);
                if let Some(watcher) = watcher {
                    watcher.wake();
                }
            }
        }
        Poll::Pending
    }
}

impl Sleep for ManualSleep {
    fn deadline(&self) -> Instant {
        self.deadline
    }

    fn reset(self: Pin<&mut Self>, deadline: Instant) {
        let this = self.get_mut();
        let mut sleepers = lock(&this.shared.sleepers);
        let waker = sleepers.deregister(this.deadline, this.id.take());
        this.deadline = deadline;
        let Some(waker) = waker else { return };
        if this.shared.now() >= deadline {
            drop(sleepers);
            waker.wake();
        } else {
            let (id, watcher) = sleepers.register(deadline, waker);
            this.id = Some(id);
            drop(sleepers);
            if let Some(watcher) = watcher {
                watcher.wake();
            }
        }
    }
}

impl Drop for ManualSleep {
    fn drop(&mut self) {
        if self.id.is_some() {
            lock(&self.shared.sleepers).deregister(self.deadline, self.id.take());
        }
    }
}

impl fmt::Debug for ManualSleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualSleep")
            .field("deadline", &self.deadline)
            .field("registered", &self.id.is_some())
            .finish()
    }
}
