//! The retry layer, its builder, and the state its services share.

use std::{fmt, time::Duration};

use tower::Layer;

use super::{
    backoff::Backoff,
    budget::RetryBudget,
    policy::{RetryErrors, ViaClone},
    service::Retry,
    settings::{Settings, check_max_pushback},
};
use crate::{
    clock::{Clock, TokioClock, nanos},
    error::{ConfigError, check},
    observe::{Observer, ObserverBuilder},
    random::{FastRandom, Random},
    sync::{Arc, AtomicU64, Mutex, Ordering, lock},
};

/// The kind of layer, and the name of one not given its own.
pub(crate) const LAYER: &str = "retry";

/// What every service and clone made by one layer shares.
pub(crate) struct Shared<P, Q, C, R> {
    /// Read when a retry is scheduled; changed live by
    /// [`RetryLayer::set_backoff`].
    backoff: Mutex<Backoff>,
    /// Read by every call; changed live by [`RetryLayer::set_max_attempts`].
    max_attempts: AtomicU64,
    /// In nanoseconds, 0 for none; read by every call, changed live by
    /// [`RetryLayer::set_deadline`].
    deadline: AtomicU64,
    /// In nanoseconds; read when a server pushes back, changed live by
    /// [`RetryLayer::set_max_pushback`].
    max_pushback: AtomicU64,
    pub(crate) pushback_may_shorten: bool,
    pub(crate) budget: Option<RetryBudget>,
    pub(crate) policy: P,
    pub(crate) requests: Q,
    pub(crate) clock: C,
    pub(crate) random: R,
    pub(crate) observer: Observer,
}

/// A [`Layer`] that retries failed calls with backoff, within attempts, a
/// deadline and a budget.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::retry::{Backoff, Jitter, RetryBudget, RetryLayer};
/// use tower::ServiceBuilder;
///
/// let retry = RetryLayer::builder()
///     .name("inventory")
///     .max_attempts(4)
///     .backoff(
///         Backoff::exponential(Duration::from_millis(50), 2.0)
///             .max_delay(Duration::from_secs(2))
///             .jitter(Jitter::Full),
///     )
///     .deadline(Duration::from_secs(5))
///     .budget(RetryBudget::ttl(Duration::from_secs(10), 5, 0.2)?)
///     .build()?;
/// let service = ServiceBuilder::new()
///     .layer(retry)
///     .service_fn(|request: u32| async move { Ok::<_, std::io::Error>(request) });
/// # let _ = service;
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
pub struct RetryLayer<P = RetryErrors, Q = ViaClone, C: Clock = TokioClock, R: Random = FastRandom>
{
    shared: Arc<Shared<P, Q, C, R>>,
}

impl RetryLayer {
    /// A builder with the defaults: 3 attempts (the first call and two
    /// retries), exponential backoff from 100 ms doubling up to 30 s with
    /// full jitter, no deadline, no budget, pushback capped at 60 s; every
    /// error retried except palisade's refusals; requests cloned; the tokio
    /// clock.
    ///
    /// ```
    /// let layer = palisade::retry::RetryLayer::builder().build().unwrap();
    /// # let _ = layer;
    /// ```
    pub fn builder() -> RetryBuilder {
        RetryBuilder {
            settings: Given {
                settings: Settings::default(),
                pushback_may_shorten: false,
                budget: None,
                observe: ObserverBuilder::new(),
            },
            policy: RetryErrors::new(),
            requests: ViaClone,
            clock: TokioClock::new(),
            random: FastRandom::default(),
        }
    }
}

impl<P, Q, C, R> Shared<P, Q, C, R> {
    /// How many attempts a call may take, now.
    #[inline]
    pub(crate) fn max_attempts(&self) -> u32 {
        self.max_attempts.load(Ordering::Relaxed) as u32
    }

    /// A call's deadline from its start, now.
    #[inline]
    pub(crate) fn deadline(&self) -> Option<Duration> {
        match self.deadline.load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    /// The longest wait a pushback may ask for, now.
    pub(crate) fn max_pushback(&self) -> Duration {
        Duration::from_nanos(self.max_pushback.load(Ordering::Relaxed))
    }

    /// The backoff, now.
    pub(crate) fn backoff(&self) -> Backoff {
        *lock(&self.backoff)
    }
}

impl<P, Q, C: Clock, R: Random> RetryLayer<P, Q, C, R> {
    /// How many attempts a call may take now, the first call included.
    ///
    /// ```
    /// let layer = palisade::retry::RetryLayer::builder().build().unwrap();
    /// assert_eq!(layer.max_attempts(), 3);
    /// ```
    pub fn max_attempts(&self) -> u32 {
        self.shared.max_attempts()
    }

    /// The overall deadline of a call now, if any.
    ///
    /// ```
    /// let layer = palisade::retry::RetryLayer::builder().build().unwrap();
    /// assert_eq!(layer.deadline(), None);
    /// ```
    pub fn deadline(&self) -> Option<std::time::Duration> {
        self.shared.deadline()
    }

    /// The backoff now.
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::retry::{Backoff, RetryLayer};
    /// let constant = Backoff::constant(Duration::from_millis(20));
    /// let layer = RetryLayer::builder().backoff(constant).build().unwrap();
    /// assert_eq!(layer.backoff(), constant);
    /// ```
    pub fn backoff(&self) -> Backoff {
        self.shared.backoff()
    }

    /// Changes how many attempts a call may take, on the running layer,
    /// from any thread. What is kept: a call in progress keeps the attempts
    /// it made, and obeys the new bound at its next decision (lowered below
    /// what it made, it makes no more). Checked as the builder checks it;
    /// emits [`Reconfigured`](crate::observe::EventKind::Reconfigured)
    /// (`max_attempts`).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] on `max_attempts` when it is 0; the layer is left
    /// as it was.
    ///
    /// ```
    /// let layer = palisade::retry::RetryLayer::builder().build().unwrap();
    /// layer.set_max_attempts(5)?;
    /// assert_eq!(layer.max_attempts(), 5);
    /// assert_eq!(layer.set_max_attempts(0).unwrap_err().field(), "max_attempts");
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn set_max_attempts(&self, attempts: u32) -> Result<(), ConfigError> {
        check::at_least_one(LAYER, "max_attempts", attempts)?;
        let old = self
            .shared
            .max_attempts
            .swap(u64::from(attempts), Ordering::Relaxed);
        self.changed("max_attempts", old as f64, f64::from(attempts));
        Ok(())
    }

    /// Changes the overall deadline (`None`: none) on the running layer.
    /// What is kept: a call in progress keeps the deadline it started with;
    /// calls made from now on get the new one. Emits `Reconfigured`
    /// (`deadline`, in seconds; 0 for none).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] on `deadline` when it is zero.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = palisade::retry::RetryLayer::builder().build().unwrap();
    /// layer.set_deadline(Some(Duration::from_secs(2)))?;
    /// assert_eq!(layer.deadline(), Some(Duration::from_secs(2)));
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn set_deadline(&self, deadline: Option<Duration>) -> Result<(), ConfigError> {
        if let Some(deadline) = deadline {
            check::positive(LAYER, "deadline", deadline)?;
        }
        let old = self
            .shared
            .deadline
            .swap(deadline.map_or(0, nanos), Ordering::Relaxed);
        let secs = |nanos: u64| Duration::from_nanos(nanos).as_secs_f64();
        self.changed("deadline", secs(old), secs(deadline.map_or(0, nanos)));
        Ok(())
    }

    /// Changes the backoff on the running layer. What is kept: a call
    /// waiting between attempts wakes when its wait was set to end; its next
    /// wait, and every call's from now on, follow the new backoff. Checked
    /// as the builder checks it; emits `Reconfigured` for `backoff.base` and
    /// `backoff.max_delay` (seconds).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the backoff's field that is invalid (such as
    /// `backoff.multiplier`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::retry::{Backoff, RetryLayer};
    /// let layer = RetryLayer::builder().build().unwrap();
    /// layer.set_backoff(Backoff::constant(Duration::from_millis(50)))?;
    /// assert_eq!(layer.backoff().base(), Duration::from_millis(50));
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn set_backoff(&self, backoff: Backoff) -> Result<(), ConfigError> {
        backoff.validate()?;
        let old = std::mem::replace(&mut *lock(&self.shared.backoff), backoff);
        let secs = Duration::as_secs_f64;
        self.changed("backoff.base", secs(&old.base()), secs(&backoff.base()));
        self.changed("backoff.max_delay", secs(&old.cap()), secs(&backoff.cap()));
        Ok(())
    }

    /// The event of a change.
    fn changed(&self, setting: &'static str, old: f64, new: f64) {
        let shared = &self.shared;
        shared
            .observer
            .changed(shared.clock.now(), setting, old, new);
    }

    /// Changes the longest wait a server's pushback may ask for, on the
    /// running layer: from the next pushback on (a call waiting on one keeps
    /// its wait). Emits `Reconfigured` (`max_pushback`, seconds).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] on `max_pushback` when it is zero or over an hour,
    /// as the builder checks it.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = palisade::retry::RetryLayer::builder().build().unwrap();
    /// layer.set_max_pushback(Duration::from_secs(5))?;
    /// assert_eq!(layer.max_pushback(), Duration::from_secs(5));
    /// assert_eq!(layer.set_max_pushback(Duration::ZERO).unwrap_err().field(), "max_pushback");
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn set_max_pushback(&self, max: Duration) -> Result<(), ConfigError> {
        check_max_pushback(max)?;
        let old = self.shared.max_pushback.swap(nanos(max), Ordering::Relaxed);
        let old = Duration::from_nanos(old).as_secs_f64();
        self.changed("max_pushback", old, max.as_secs_f64());
        Ok(())
    }

    /// The longest wait a pushback may ask for.
    ///
    /// ```
    /// let layer = palisade::retry::RetryLayer::builder().build().unwrap();
    /// assert_eq!(layer.max_pushback(), std::time::Duration::from_secs(60));
    /// ```
    pub fn max_pushback(&self) -> Duration {
        self.shared.max_pushback()
    }

    /// The layer's retry budget, if it has one: a handle on the budget
    /// every service and clone of the layer shares.
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::retry::{RetryBudget, RetryLayer};
    /// let budget = RetryBudget::tokens(10, 0.1)?;
    /// let layer = RetryLayer::builder().budget(budget).build()?;
    /// assert!(layer.budget().is_some());
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn budget(&self) -> Option<RetryBudget> {
        self.shared.budget.clone()
    }

    /// Gives the layer's budget the numbers of `numbers` (see
    /// [`RetryBudget::reconfigure`]: its state is kept), and emits
    /// `Reconfigured` for each number that changed (`budget.ttl`,
    /// `budget.reserve`, `budget.ratio`; `budget.max_tokens`,
    /// `budget.token_ratio`). Other layers given the same budget see the
    /// change too.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] on `budget` when the layer has no budget (it is
    /// given one when built) or `numbers` is of the other kind.
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::retry::{RetryBudget, RetryLayer};
    /// let layer = RetryLayer::builder()
    ///     .budget(RetryBudget::ttl(Duration::from_secs(10), 1, 0.1)?)
    ///     .build()?;
    /// layer.set_budget(&RetryBudget::ttl(Duration::from_secs(10), 3, 0.1)?)?;
    /// assert_eq!(layer.budget_available(), Some(30)); // 3 a second over 10 s
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn set_budget(&self, numbers: &RetryBudget) -> Result<(), ConfigError> {
        let budget = self.shared.budget.as_ref().ok_or_else(budget_mismatch)?;
        let old = budget.numbers();
        let now = self.shared.clock.now();
        budget.reconfigure(numbers, now)?;
        self.shared.observer.changes(now, old, budget.numbers());
        Ok(())
    }

    /// The settings now (the budget's numbers as it holds them).
    ///
    /// ```
    /// let layer = palisade::retry::RetryLayer::builder().max_attempts(4).build().unwrap();
    /// assert_eq!(layer.settings().max_attempts, 4);
    /// ```
    pub fn settings(&self) -> Settings {
        let shared = &self.shared;
        Settings {
            max_attempts: self.max_attempts(),
            backoff: shared.backoff(),
            deadline: shared.deadline(),
            max_pushback: shared.max_pushback(),
            budget: shared.budget.as_ref().map(RetryBudget::settings),
        }
    }

    /// Changes every setting at once on the running layer, as
    /// [`set_max_attempts`](Self::set_max_attempts),
    /// [`set_backoff`](Self::set_backoff),
    /// [`set_deadline`](Self::set_deadline),
    /// [`set_max_pushback`](Self::set_max_pushback) and
    /// [`set_budget`](Self::set_budget) do (what is kept is theirs); all are
    /// checked before any changes. A setting given its own value again is
    /// no change, and no event.
    ///
    /// # Errors
    ///
    /// The [`ConfigError`] of the first invalid setting (the field named),
    /// or one on `budget` when the settings have a budget and the layer none
    /// (or the other way round, or of the other kind): a budget is given
    /// when the layer is built. The layer is then left as it was.
    ///
    /// ```
    /// use palisade::retry::RetryLayer;
    /// let layer = RetryLayer::builder().build()?;
    /// let mut settings = layer.settings();
    /// settings.max_attempts = 0;
    /// assert_eq!(layer.reconfigure(settings).unwrap_err().field(), "max_attempts");
    /// assert_eq!(layer.max_attempts(), 3);
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn reconfigure(&self, settings: Settings) -> Result<(), ConfigError> {
        settings.check()?;
        let budget = match (&self.shared.budget, settings.budget) {
            (None, None) => None,
            (Some(budget), Some(numbers)) => {
                let kind = |numbers: &super::BudgetSettings| std::mem::discriminant(numbers);
                if kind(&budget.settings()) != kind(&numbers) {
                    return Err(budget_mismatch());
                }
                Some(numbers.budget()?)
            }
            _ => return Err(budget_mismatch()),
        };
        self.set_max_attempts(settings.max_attempts)?;
        self.set_backoff(settings.backoff)?;
        self.set_deadline(settings.deadline)?;
        self.set_max_pushback(settings.max_pushback)?;
        if let Some(numbers) = budget {
            self.set_budget(&numbers)?;
        }
        Ok(())
    }

    /// The retry budget's balance now — how many retries it would allow,
    /// on the layer's clock — or `None` without a budget. Shared by every
    /// service and clone of the layer (and by other layers given the same
    /// budget).
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::retry::{RetryBudget, RetryLayer};
    ///
    /// let layer = RetryLayer::builder()
    ///     .budget(RetryBudget::ttl(Duration::from_secs(10), 2, 0.2)?)
    ///     .build()?;
    /// assert_eq!(layer.budget_available(), Some(20)); // 2 a second over 10 s
    /// assert_eq!(RetryLayer::builder().build()?.budget_available(), None);
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn budget_available(&self) -> Option<u64> {
        let shared = &self.shared;
        let budget = shared.budget.as_ref()?;
        Some(budget.available(shared.clock.now()))
    }
}

impl<S: Clone, P, Q, C: Clock, R: Random> Layer<S> for RetryLayer<P, Q, C, R> {
    type Service = Retry<S, P, Q, C, R>;

    fn layer(&self, inner: S) -> Self::Service {
        Retry::new(inner, Arc::clone(&self.shared))
    }
}

impl<P, Q, C: Clock, R: Random> Clone for RetryLayer<P, Q, C, R> {
    fn clone(&self) -> Self {
        RetryLayer {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<P, Q, C: Clock, R: Random> fmt::Debug for RetryLayer<P, Q, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryLayer")
            .field("retry", &self.shared)
            .finish()
    }
}

impl<P, Q, C, R> fmt::Debug for Shared<P, Q, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("name", self.observer.name())
            .field("max_attempts", &self.max_attempts())
            .field("backoff", &self.backoff())
            .field("deadline", &self.deadline())
            .field("max_pushback", &self.max_pushback())
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

/// Configures a [`RetryLayer`]; [`build`](RetryBuilder::build) checks the
/// configuration.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::{clock::ManualClock, random::FastRandom, retry::{Backoff, RetryLayer}};
///
/// let layer = RetryLayer::builder()
///     .max_attempts(5)
///     .backoff(Backoff::constant(Duration::from_millis(10)))
///     .clock(ManualClock::new())
///     .random(FastRandom::seeded(7))
///     .build()?;
/// # let _ = layer;
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
pub struct RetryBuilder<P = RetryErrors, Q = ViaClone, C = TokioClock, R = FastRandom> {
    settings: Given,
    policy: P,
    requests: Q,
    clock: C,
    random: R,
}

/// The builder's settings whose types do not change as it is configured.
#[derive(Debug)]
struct Given {
    /// Those a running layer can change (the budget's numbers made into a
    /// budget when built, unless `budget` gives one).
    settings: Settings,
    pushback_may_shorten: bool,
    /// A budget given as such, perhaps shared with other layers.
    budget: Option<RetryBudget>,
    observe: ObserverBuilder,
}

impl<P, Q, C, R> RetryBuilder<P, Q, C, R> {
    crate::observe::name_and_listeners!(
        settings.observe,
        "let _ = palisade::retry::RetryLayer::builder()"
    );

    /// How many attempts a call may take **in all, the first call
    /// included**: `max_attempts(3)` is one call and up to two retries;
    /// `max_attempts(1)` never retries. Default 3.
    ///
    /// ```
    /// let _ = palisade::retry::RetryLayer::builder().max_attempts(4);
    /// ```
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.settings.settings.max_attempts = attempts;
        self
    }

    /// The delays between attempts: see [`Backoff`].
    ///
    /// ```
    /// # use std::time::Duration;
    /// use palisade::retry::{Backoff, RetryLayer};
    /// let _ = RetryLayer::builder().backoff(Backoff::constant(Duration::from_millis(250)));
    /// ```
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.settings.settings.backoff = backoff;
        self
    }

    /// The overall time a call may take, from `call` on the layer's clock:
    /// no backoff sleep is begun that would end past it, so no attempt
    /// starts after it; the last attempt's result is returned instead. No
    /// deadline by default.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let _ = palisade::retry::RetryLayer::builder().deadline(Duration::from_secs(3));
    /// ```
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.settings.settings.deadline = Some(deadline);
        self
    }

    /// The longest delay a server may ask for
    /// ([`Decision::RetryAfter`](super::Decision::RetryAfter)); longer asks
    /// are cut to it. Default 60 s; at most 1 hour, so that a server cannot
    /// hold a request for longer whether or not a deadline is set.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let _ = palisade::retry::RetryLayer::builder().max_pushback(Duration::from_secs(10));
    /// ```
    pub fn max_pushback(mut self, max: Duration) -> Self {
        self.settings.settings.max_pushback = max;
        self
    }

    /// Whether a server's pushback may make the wait **shorter** than the
    /// backoff's next delay. Default `false`: pushback may lengthen the wait,
    /// never shorten it, so a `Retry-After: 0` or a date in the past cannot
    /// turn a backoff into an immediate retry (the wait is the longer of the
    /// two). `true` follows the server to the letter, for a server you trust
    /// to pace its clients.
    ///
    /// ```
    /// let _ = palisade::retry::RetryLayer::builder().pushback_may_shorten(true);
    /// ```
    pub fn pushback_may_shorten(mut self, may: bool) -> Self {
        self.settings.pushback_may_shorten = may;
        self
    }

    /// Every setting that can also change live, at once, as a [`Settings`]
    /// value (what a configuration file holds). Its budget's numbers make a
    /// new budget when the layer is built (give a budget shared with other
    /// layers with [`budget`](Self::budget) instead).
    ///
    /// ```
    /// use palisade::retry::RetryLayer;
    /// let running = RetryLayer::builder().max_attempts(5).build()?;
    /// let twin = RetryLayer::builder().settings(running.settings()).build()?;
    /// assert_eq!(twin.settings(), running.settings());
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings.settings = settings;
        self.settings.budget = None;
        self
    }

    /// Bounds retries by a [`RetryBudget`], shared with every layer given a
    /// clone of it.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use palisade::retry::{RetryBudget, RetryLayer};
    /// let budget = RetryBudget::tokens(100, 0.1).unwrap();
    /// let _ = RetryLayer::builder().budget(budget.clone());
    /// let _ = RetryLayer::builder().budget(budget);
    /// ```
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.settings.settings.budget = Some(budget.settings());
        self.settings.budget = Some(budget);
        self
    }

    /// What is worth another attempt: any [`RetryPolicy`](super::RetryPolicy).
    /// Default [`RetryErrors`].
    ///
    /// ```
    /// use palisade::retry::{Decision, RetryLayer};
    /// let _ = RetryLayer::builder().policy(|_: &u32, result: &Result<u16, tower::BoxError>| {
    ///     match result {
    ///         Ok(503) | Err(_) => Decision::Retry,
    ///         Ok(_) => Decision::Accept,
    ///     }
    /// });
    /// ```
    pub fn policy<P2>(self, policy: P2) -> RetryBuilder<P2, Q, C, R> {
        RetryBuilder {
            settings: self.settings,
            policy,
            requests: self.requests,
            clock: self.clock,
            random: self.random,
        }
    }

    /// How a further attempt gets its request: any
    /// [`RequestCloner`](super::RequestCloner). Default: `Clone`.
    ///
    /// ```
    /// use palisade::retry::RetryLayer;
    /// let _ = RetryLayer::builder().clone_request(|request: &Vec<u8>| Some(request.clone()));
    /// ```
    pub fn clone_request<Q2>(self, requests: Q2) -> RetryBuilder<P, Q2, C, R> {
        RetryBuilder {
            settings: self.settings,
            policy: self.policy,
            requests,
            clock: self.clock,
            random: self.random,
        }
    }

    crate::observe::clock_setting!(
        "of the sleeps between attempts and of the deadline",
        "let _ = palisade::retry::RetryLayer::builder()",
        RetryBuilder<P, Q, C2, R> { settings, policy, requests, random }
    );

    /// The random source of the jitter. Default [`FastRandom`] seeded from
    /// the system.
    ///
    /// ```
    /// use palisade::{random::FastRandom, retry::RetryLayer};
    /// let _ = RetryLayer::builder().random(FastRandom::seeded(1));
    /// ```
    pub fn random<R2: Random>(self, random: R2) -> RetryBuilder<P, Q, C, R2> {
        RetryBuilder {
            settings: self.settings,
            policy: self.policy,
            requests: self.requests,
            clock: self.clock,
            random,
        }
    }
}

impl<P, Q, C: Clock, R: Random> RetryBuilder<P, Q, C, R> {
    /// Checks the configuration and builds the layer.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the field when `max_attempts` is 0, the
    /// deadline or `max_pushback` is 0, `max_pushback` exceeds 1 hour, or the
    /// backoff's multiplier, jitter or maximum is out of range.
    ///
    /// ```
    /// use palisade::retry::RetryLayer;
    /// let err = RetryLayer::builder().max_attempts(0).build().unwrap_err();
    /// assert_eq!(err.field(), "max_attempts");
    /// ```
    pub fn build(self) -> Result<RetryLayer<P, Q, C, R>, ConfigError> {
        let Given {
            settings,
            pushback_may_shorten,
            budget,
            observe,
        } = self.settings;
        settings.check()?;
        let budget = match (budget, settings.budget) {
            (Some(budget), _) => Some(budget),
            (None, Some(numbers)) => Some(numbers.budget()?),
            (None, None) => None,
        };
        Ok(RetryLayer {
            shared: Arc::new(Shared {
                backoff: Mutex::new(settings.backoff),
                max_attempts: AtomicU64::new(u64::from(settings.max_attempts)),
                deadline: AtomicU64::new(settings.deadline.map_or(0, nanos)),
                max_pushback: AtomicU64::new(nanos(settings.max_pushback)),
                pushback_may_shorten,
                budget,
                policy: self.policy,
                requests: self.requests,
                clock: self.clock,
                random: self.random,
                observer: observe.build(LAYER),
            }),
        })
    }
}

impl<P, Q, C, R> fmt::Debug for RetryBuilder<P, Q, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBuilder")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The refusal of a budget the layer cannot take live.
fn budget_mismatch() -> ConfigError {
    ConfigError::new(
        LAYER,
        "budget",
        "a running layer keeps the budget it was built with, or none, and its kind (TTL or \
         tokens); change its numbers, or build another layer",
    )
}
