//! The model upstream: a service of a given capacity whose calls take a
//! time drawn from a distribution and fail as told (by a chaos layer), on
//! a schedule of phases.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, VecDeque},
    fmt,
    future::{Future, Ready, ready},
    ops::Range,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tower::{BoxError, Layer, Service};

use super::LAYER;
use crate::{
    chaos::{Chaos, ChaosLayer, Latency, Settings},
    clock::{Clock, Instant},
    error::ConfigError,
    random::{FastRandom, Random},
    sync::{Arc, AtomicU64, Mutex, Ordering, lock},
};

/// The error of a call the [`Upstream`] refused because its queue was
/// full — what an overloaded server answers (a `503`, a reset
/// connection). A failure of the dependency, not a palisade rejection:
/// a breaker counts it.
///
/// ```
/// let err: tower::BoxError = palisade::sim::Refused.into();
/// assert!(palisade::error::Rejection::find(&*err).is_none());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, thiserror::Error)]
#[error("the upstream refused the call: its queue is full")]
pub struct Refused;

/// How the upstream behaves: its latency, failures and capacity. The
/// builder sets the normal condition; each [`Phase`] changes some of it for
/// a while.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Condition {
    /// Every call's service time.
    latency: Latency,
    /// The share of calls that take `straggle` more.
    stragglers: f64,
    straggle: Latency,
    errors: f64,
    hangs: f64,
    capacity: u32,
}

impl Condition {
    /// This condition changed by `phase`.
    fn with(mut self, phase: &Phase) -> Condition {
        if let Some(latency) = phase.latency {
            self.latency = latency;
        }
        if let Some((share, straggle)) = phase.stragglers {
            (self.stragglers, self.straggle) = (share, straggle);
        }
        if phase.slower != 1.0 {
            self.latency = self.latency.scaled(phase.slower);
            self.straggle = self.straggle.scaled(phase.slower);
        }
        self.errors = phase.errors.unwrap_or(self.errors);
        self.hangs = phase.hangs.unwrap_or(self.hangs);
        self.capacity = phase.capacity.unwrap_or(self.capacity);
        self
    }

    /// The faults: the chaos layer's settings.
    fn faults(&self) -> Settings {
        Settings {
            error: self.errors,
            hang: self.hangs,
            ..Settings::default()
        }
    }

    /// Checks the numbers, naming the field as the builder spells it.
    fn check(&self, phase: Option<usize>) -> Result<(), ConfigError> {
        let within = |err: ConfigError, field| {
            let rule = match phase {
                Some(index) => format!("in phase {index}: {}", err.rule()),
                None => err.rule().to_owned(),
            };
            ConfigError::new(LAYER, field, rule)
        };
        self.faults().check().map_err(|err| {
            let field = if err.field() == "error" {
                "errors"
            } else {
                "hangs"
            };
            within(err, field)
        })?;
        let latency = |latency: Latency, field| {
            let settings = Settings {
                latency: 1.0,
                delay: latency,
                ..Settings::default()
            };
            settings.check().map_err(|err| within(err, field))
        };
        latency(self.latency, "latency")?;
        latency(self.straggle, "stragglers")?;
        if !(0.0..=1.0).contains(&self.stragglers) {
            return Err(within(
                ConfigError::new(
                    LAYER,
                    "stragglers",
                    format!("must be a share, in [0, 1], got {}", self.stragglers),
                ),
                "stragglers",
            ));
        }
        if self.capacity == 0 {
            return Err(within(
                ConfigError::new(LAYER, "capacity", "must be at least 1"),
                "capacity",
            ));
        }
        Ok(())
    }
}

/// A change of the upstream's condition for a while: slower, failing,
/// hanging, of less capacity. Whatever a phase does not set stays as the
/// builder set it.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::{clock::ManualClock, sim::{Phase, Upstream}};
///
/// let secs = Duration::from_secs;
/// let upstream = Upstream::<u32, _>::builder(ManualClock::new())
///     .phase(secs(10)..secs(20), Phase::new().slower(10.0))
///     .phase(secs(30)..secs(35), Phase::new().errors(1.0))
///     .build()?;
/// # let _ = upstream;
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Phase {
    latency: Option<Latency>,
    slower: f64,
    stragglers: Option<(f64, Latency)>,
    errors: Option<f64>,
    hangs: Option<f64>,
    capacity: Option<u32>,
}

impl Default for Phase {
    fn default() -> Phase {
        Phase::new()
    }
}

impl Phase {
    /// A phase that changes nothing; set what it changes with the methods
    /// below.
    ///
    /// ```
    /// let _ = palisade::sim::Phase::new();
    /// ```
    pub fn new() -> Phase {
        Phase {
            latency: None,
            slower: 1.0,
            stragglers: None,
            errors: None,
            hangs: None,
            capacity: None,
        }
    }

    /// Every call's service time drawn from `latency` instead.
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::{chaos::Latency, sim::Phase};
    /// let _ = Phase::new().latency(Latency::Fixed(Duration::from_millis(400)));
    /// ```
    pub fn latency(mut self, latency: Latency) -> Phase {
        self.latency = Some(latency);
        self
    }

    /// Every time — the service time and the stragglers' — `factor` times
    /// longer: "the dependency slows down 10×" is `slower(10.0)`.
    ///
    /// ```
    /// let _ = palisade::sim::Phase::new().slower(10.0);
    /// ```
    pub fn slower(mut self, factor: f64) -> Phase {
        self.slower = factor;
        self
    }

    /// A share of calls taking `extra` more, instead of the builder's.
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::{chaos::Latency, sim::Phase};
    /// let _ = Phase::new().stragglers(0.2, Latency::Fixed(Duration::from_secs(1)));
    /// ```
    pub fn stragglers(mut self, share: f64, extra: Latency) -> Phase {
        self.stragglers = Some((share, extra));
        self
    }

    /// Calls failing with this probability (after their service time);
    /// `errors(1.0)` is an outage.
    ///
    /// ```
    /// let _ = palisade::sim::Phase::new().errors(1.0);
    /// ```
    pub fn errors(mut self, probability: f64) -> Phase {
        self.errors = Some(probability);
        self
    }

    /// Calls never answering with this probability (after their service
    /// time), holding their place in the upstream's capacity until the
    /// caller gives up.
    ///
    /// ```
    /// let _ = palisade::sim::Phase::new().hangs(1.0);
    /// ```
    pub fn hangs(mut self, probability: f64) -> Phase {
        self.hangs = Some(probability);
        self
    }

    /// This many calls served at once instead.
    ///
    /// ```
    /// let _ = palisade::sim::Phase::new().capacity(4);
    /// ```
    pub fn capacity(mut self, calls: u32) -> Phase {
        self.capacity = Some(calls);
        self
    }
}

/// A service that answers every request with the request itself, at once.
#[derive(Clone, Copy, Debug)]
struct Echo;

impl<Req> Service<Req> for Echo {
    type Response = Req;
    type Error = BoxError;
    type Future = Ready<Result<Req, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Req) -> Self::Future {
        ready(Ok(request))
    }
}

/// The upstream's servers and queue, in time: when each busy server is
/// free, when each queued call starts, when each call under way ends.
/// Calls are served in arrival order by the first server free; a call's
/// times are fixed when it arrives, and nothing its caller does changes
/// them.
#[derive(Debug, Default)]
struct Servers {
    /// When each busy server is free (those free by now are dropped).
    busy: BinaryHeap<Reverse<Instant>>,
    /// When each queued call starts: in arrival order, which is start order.
    queued: VecDeque<Instant>,
    /// When each call under way (queued or served) ends.
    ends: BinaryHeap<Reverse<Instant>>,
}

impl Servers {
    /// Forgets what is over by `now`.
    fn catch_up(&mut self, now: Instant) {
        for heap in [&mut self.busy, &mut self.ends] {
            while heap.peek().is_some_and(|&Reverse(at)| at <= now) {
                heap.pop();
            }
        }
        while self.queued.front().is_some_and(|&at| at <= now) {
            self.queued.pop_front();
        }
    }

    /// A call arriving at `now` and taking `service` once started, with
    /// `capacity` servers and at most `max_queued` calls waiting: when it
    /// ends, or `None` if the queue is full.
    fn admit(
        &mut self,
        now: Instant,
        service: Duration,
        capacity: u32,
        max_queued: Option<u32>,
    ) -> Option<Instant> {
        self.catch_up(now);
        let capacity = capacity as usize;
        // Servers taken away (a phase of less capacity) leave once free:
        // here, the first to be free go first.
        while self.busy.len() > capacity {
            self.busy.pop();
        }
        let start = if self.busy.len() < capacity {
            now
        } else {
            if max_queued.is_some_and(|max| self.queued.len() >= max as usize) {
                return None;
            }
            let Reverse(free) = self.busy.pop().expect("capacity is at least 1");
            free.max(now)
        };
        let end = start.saturating_add(service);
        self.busy.push(Reverse(end));
        self.ends.push(Reverse(end));
        if start > now {
            self.queued.push_back(start);
        }
        Some(end)
    }
}

struct Shared<Req, C> {
    clock: C,
    /// When the schedule's times count from.
    start: Instant,
    normal: Condition,
    /// In order of their start, not overlapping.
    phases: Vec<(Range<Duration>, Phase)>,
    max_queued: Option<u32>,
    /// The phase in force (`usize::MAX`: none) and its condition, as last
    /// applied; and the servers.
    state: Mutex<(usize, Condition, Servers)>,
    /// The faults.
    faults: ChaosLayer<Req, Req, C>,
    /// The service times and the stragglers' draws.
    random: FastRandom,
    calls: AtomicU64,
}

impl<Req, C: Clock> Shared<Req, C> {
    /// When a call arriving now ends, or `None` if it is refused; the
    /// condition of the phase in force brought to the fault layer first.
    fn arrive(&self) -> Option<Instant> {
        let now = self.clock.now();
        let mut state = lock(&self.state);
        let (current, condition, servers) = &mut *state;
        if !self.phases.is_empty() {
            let at = now - self.start;
            let phase = self
                .phases
                .iter()
                .position(|(range, _)| range.contains(&at))
                .unwrap_or(usize::MAX);
            if *current != phase {
                *current = phase;
                *condition = match self.phases.get(phase) {
                    Some((_, phase)) => self.normal.with(phase),
                    None => self.normal,
                };
                // Checked when built, so this cannot fail.
                let applied = self.faults.reconfigure(condition.faults());
                debug_assert!(applied.is_ok(), "{applied:?}");
            }
        }
        let mut service = condition.latency.sample(self.random.next_f64());
        if condition.stragglers > 0.0 && self.random.next_f64() < condition.stragglers {
            service = service.saturating_add(condition.straggle.sample(self.random.next_f64()));
        }
        servers.admit(now, service, condition.capacity, self.max_queued)
    }
}

/// A model of a dependency, for a [`Simulation`](super::Simulation): it
/// serves up to `capacity` calls at once, each taking a time drawn from a
/// [`Latency`] distribution (a share of them taking much longer: the
/// stragglers), failing or hanging with given probabilities; calls beyond
/// the capacity wait in arrival order (and so take longer), up to a queue
/// bound past which they are [`Refused`]. A schedule of [`Phase`]s changes
/// all of it for a while: an outage, a slowdown, a loss of capacity.
///
/// Like a real server, it does not know when a caller gives up: a call
/// dropped by its caller (a timeout) keeps its place in the queue and its
/// server until its time is up. That is how an overloaded dependency
/// collapses — busy with calls nobody waits for any more — and what a
/// concurrency limit is for.
///
/// It answers a request with the request itself (map it to the response
/// type your stack expects with tower's `map_response`), and fails with
/// [`InjectedFault`](crate::chaos::InjectedFault) or [`Refused`]. The
/// faults are a [`ChaosLayer`]'s; the times and the queue are computed
/// exactly, on the given clock, from seeded draws, so a run is repeatable
/// to the call.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::{chaos::Latency, clock::{Clock, ManualClock}, sim::Upstream};
/// use tower::{Service, ServiceExt};
///
/// let ms = Duration::from_millis;
/// let clock = ManualClock::new();
/// let mut upstream = Upstream::builder(clock.clone())
///     .latency(Latency::Fixed(ms(20)))
///     .capacity(1)
///     .build()?;
/// let answers = clock.block_on(async {
///     let first = upstream.ready().await?.call(1u32);
///     let second = upstream.ready().await?.call(2u32); // waits for the first
///     Ok::<_, tower::BoxError>((first.await?, clock.now(), second.await?, clock.now()))
/// })?;
/// assert_eq!(answers, (1, clock.now() - ms(20), 2, clock.now()));
/// assert_eq!(clock.now().since_epoch(), ms(40));
/// assert_eq!(upstream.calls(), 2);
/// # Ok::<(), tower::BoxError>(())
/// ```
pub struct Upstream<Req, C> {
    faults: Chaos<Echo, Req, Req, C>,
    shared: Arc<Shared<Req, C>>,
}

impl<Req, C: Clock> Upstream<Req, C> {
    /// A builder for an upstream on `clock`: by default a fixed 10 ms a
    /// call, no failures, no stragglers, capacity unbounded, seed 0.
    ///
    /// ```
    /// let _ = palisade::sim::Upstream::<u32, _>::builder(palisade::clock::ManualClock::new());
    /// ```
    pub fn builder(clock: C) -> UpstreamBuilder<Req, C> {
        UpstreamBuilder {
            clock,
            normal: Condition {
                latency: Latency::Fixed(Duration::from_millis(10)),
                stragglers: 0.0,
                straggle: Latency::Fixed(Duration::ZERO),
                errors: 0.0,
                hangs: 0.0,
                capacity: u32::MAX,
            },
            queue: None,
            phases: Vec::new(),
            seed: 0,
            request: std::marker::PhantomData,
        }
    }

    /// How many calls it has been given, refused ones included.
    ///
    /// ```
    /// # let upstream = palisade::sim::Upstream::<u32, _>::builder(palisade::clock::ManualClock::new()).build()?;
    /// assert_eq!(upstream.calls(), 0);
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn calls(&self) -> u64 {
        self.shared.calls.load(Ordering::Relaxed)
    }

    /// How many calls it is serving now (at most its capacity), whether
    /// their callers still wait or not.
    ///
    /// ```
    /// # let upstream = palisade::sim::Upstream::<u32, _>::builder(palisade::clock::ManualClock::new()).build()?;
    /// assert_eq!(upstream.in_flight(), 0);
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn in_flight(&self) -> u64 {
        let (under_way, waiting) = self.counts();
        under_way - waiting
    }

    /// How many calls wait for a server now.
    ///
    /// ```
    /// # let upstream = palisade::sim::Upstream::<u32, _>::builder(palisade::clock::ManualClock::new()).build()?;
    /// assert_eq!(upstream.waiting(), 0);
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn waiting(&self) -> u64 {
        self.counts().1
    }

    /// Calls under way (served or waiting), and waiting, now.
    fn counts(&self) -> (u64, u64) {
        let mut state = lock(&self.shared.state);
        let servers = &mut state.2;
        servers.catch_up(self.shared.clock.now());
        (servers.ends.len() as u64, servers.queued.len() as u64)
    }
}

impl<Req, C> Service<Req> for Upstream<Req, C>
where
    Req: Send + 'static,
    C: Clock,
{
    type Response = Req;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Req, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let shared = &self.shared;
        shared.calls.fetch_add(1, Ordering::Relaxed);
        let Some(end) = shared.arrive() else {
            return Box::pin(ready(Err(Refused.into())));
        };
        let ends = shared.clock.sleep_until(end);
        // The fault is drawn now, and met at the end of the call's time.
        let answer = self.faults.call(request);
        Box::pin(async move {
            ends.await;
            answer.await
        })
    }
}

impl<Req, C: Clone> Clone for Upstream<Req, C> {
    fn clone(&self) -> Self {
        Upstream {
            faults: self.faults.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<Req, C> fmt::Debug for Upstream<Req, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("normal", &self.shared.normal)
            .field("phases", &self.shared.phases)
            .field("calls", &self.shared.calls.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Configures an [`Upstream`].
///
/// ```
/// use std::time::Duration;
/// use palisade::{chaos::Latency, clock::ManualClock, sim::Upstream};
///
/// let ms = Duration::from_millis;
/// let upstream = Upstream::<u32, _>::builder(ManualClock::new())
///     .latency(Latency::Uniform { min: ms(8), max: ms(12) })
///     .stragglers(0.02, Latency::Fixed(ms(1000)))
///     .errors(0.01)
///     .capacity(100)
///     .queue(1000)
///     .seed(7)
///     .build()?;
/// # let _ = upstream;
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
pub struct UpstreamBuilder<Req, C> {
    clock: C,
    normal: Condition,
    queue: Option<u32>,
    phases: Vec<(Range<Duration>, Phase)>,
    seed: u64,
    request: std::marker::PhantomData<fn(Req)>,
}

impl<Req, C: Clock> UpstreamBuilder<Req, C> {
    /// Every call's service time, drawn from `latency`. Default: a fixed
    /// 10 ms.
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::{chaos::Latency, clock::ManualClock, sim::Upstream};
    /// let _ = Upstream::<u32, _>::builder(ManualClock::new())
    ///     .latency(Latency::Exponential { mean: Duration::from_millis(20) });
    /// ```
    pub fn latency(mut self, latency: Latency) -> Self {
        self.normal.latency = latency;
        self
    }

    /// A `share` of calls (each independently) take `extra` more: "2 % of
    /// calls take 100× the median". Default: none.
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::{chaos::Latency, clock::ManualClock, sim::Upstream};
    /// let _ = Upstream::<u32, _>::builder(ManualClock::new())
    ///     .stragglers(0.02, Latency::Fixed(Duration::from_secs(1)));
    /// ```
    pub fn stragglers(mut self, share: f64, extra: Latency) -> Self {
        (self.normal.stragglers, self.normal.straggle) = (share, extra);
        self
    }

    /// Calls fail with this probability, after their service time.
    /// Default: 0.
    ///
    /// ```
    /// # use palisade::{clock::ManualClock, sim::Upstream};
    /// let _ = Upstream::<u32, _>::builder(ManualClock::new()).errors(0.01);
    /// ```
    pub fn errors(mut self, probability: f64) -> Self {
        self.normal.errors = probability;
        self
    }

    /// Calls never answer with this probability (after their service time),
    /// keeping their place until the caller gives up. Default: 0.
    ///
    /// ```
    /// # use palisade::{clock::ManualClock, sim::Upstream};
    /// let _ = Upstream::<u32, _>::builder(ManualClock::new()).hangs(0.001);
    /// ```
    pub fn hangs(mut self, probability: f64) -> Self {
        self.normal.hangs = probability;
        self
    }

    /// At most this many calls served at once; the others wait, in arrival
    /// order. Default: unbounded.
    ///
    /// ```
    /// # use palisade::{clock::ManualClock, sim::Upstream};
    /// let _ = Upstream::<u32, _>::builder(ManualClock::new()).capacity(64);
    /// ```
    pub fn capacity(mut self, calls: u32) -> Self {
        self.normal.capacity = calls;
        self
    }

    /// At most this many calls wait for a place; a call finding the queue
    /// full is [`Refused`] at once. Default: unbounded.
    ///
    /// ```
    /// # use palisade::{clock::ManualClock, sim::Upstream};
    /// let _ = Upstream::<u32, _>::builder(ManualClock::new()).capacity(64).queue(256);
    /// ```
    pub fn queue(mut self, max_waiting: u32) -> Self {
        self.queue = Some(max_waiting);
        self
    }

    /// Changes the condition by `phase` from `during.start` to `during.end`,
    /// counted from when the upstream is built. Phases may not overlap.
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::{clock::ManualClock, sim::{Phase, Upstream}};
    /// let _ = Upstream::<u32, _>::builder(ManualClock::new())
    ///     .phase(Duration::from_secs(60)..Duration::from_secs(90), Phase::new().errors(1.0));
    /// ```
    pub fn phase(mut self, during: Range<Duration>, phase: Phase) -> Self {
        self.phases.push((during, phase));
        self
    }

    /// The seed of every draw. Default: 0.
    ///
    /// ```
    /// # use palisade::{clock::ManualClock, sim::Upstream};
    /// let _ = Upstream::<u32, _>::builder(ManualClock::new()).seed(42);
    /// ```
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Checks the configuration and builds the upstream.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the field: `latency`, `stragglers`,
    /// `errors`, `hangs` (a probability outside [0, 1], errors and hangs
    /// adding up to more than 1, a bad distribution), `capacity` or `queue`
    /// (0), `phases` (empty, overlapping, a slowdown not above 0) — the
    /// builder's numbers and each phase's.
    ///
    /// ```
    /// # use palisade::{clock::ManualClock, sim::Upstream};
    /// let err = Upstream::<u32, _>::builder(ManualClock::new())
    ///     .errors(0.8)
    ///     .hangs(0.5)
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.field(), "hangs");
    /// ```
    pub fn build(mut self) -> Result<Upstream<Req, C>, ConfigError> {
        self.normal.check(None)?;
        if self.queue == Some(0) {
            return Err(ConfigError::new(LAYER, "queue", "must be at least 1"));
        }
        self.phases.sort_by_key(|(during, _)| during.start);
        for (index, (during, phase)) in self.phases.iter().enumerate() {
            let phases = |rule: String| ConfigError::new(LAYER, "phases", rule);
            if during.start >= during.end {
                return Err(phases(format!(
                    "phase {index} is empty: {:?} to {:?}",
                    during.start, during.end
                )));
            }
            if index > 0 && self.phases[index - 1].0.end > during.start {
                return Err(phases(format!("phase {index} overlaps the one before it")));
            }
            if !(phase.slower > 0.0 && phase.slower.is_finite()) {
                return Err(phases(format!(
                    "phase {index} is slower by {}, which must be above 0",
                    phase.slower
                )));
            }
            self.normal.with(phase).check(Some(index))?;
        }
        let faults = ChaosLayer::builder()
            .name("upstream")
            .settings(self.normal.faults())
            .clock(self.clock.clone())
            .random(FastRandom::seeded(self.seed))
            .build()?;
        Ok(Upstream {
            faults: faults.layer(Echo),
            shared: Arc::new(Shared {
                start: self.clock.now(),
                clock: self.clock,
                normal: self.normal,
                phases: self.phases,
                max_queued: self.queue,
                state: Mutex::new((usize::MAX, self.normal, Servers::default())),
                faults,
                random: FastRandom::seeded(self.seed ^ 0x5eed_5eed),
                calls: AtomicU64::new(0),
            }),
        })
    }
}

impl<Req, C> fmt::Debug for UpstreamBuilder<Req, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamBuilder")
            .field("normal", &self.normal)
            .field("queue", &self.queue)
            .field("phases", &self.phases)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}
