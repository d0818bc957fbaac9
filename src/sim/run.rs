//! The load driver: virtual clients sending requests through a stack, on
//! the simulation's clock, every outcome recorded.

use std::{
    cell::RefCell,
    collections::VecDeque,
    fmt,
    future::{Future, poll_fn},
    pin::Pin,
    rc::Rc,
    sync::{Arc, Mutex},
    task::{Context, Poll, Wake, Waker},
    time::Duration,
};

use tower::{BoxError, Service};

use super::{
    LAYER,
    report::{Interval, Latencies, Outcome, Report},
};
use crate::{
    classify::{Classify, ErrorsAsFailures},
    clock::{Clock, Instant, Sleep},
    error::{ConfigError, check},
    random::{FastRandom, Random},
    sync::lock,
};

/// How the virtual clients send their requests.
///
/// An *open* load sends at its rate whatever the answers — as users of a
/// public service do, and the load that exposes overload. A *closed* load
/// is a fixed number of clients, each sending its next request when its
/// last is answered — as workers draining a queue do.
///
/// ```
/// use std::time::Duration;
/// use palisade::sim::Load;
///
/// let users = Load::Poisson { rate: 200.0 };
/// let workers = Load::Closed { clients: 16, think: Duration::from_millis(5) };
/// # let _ = (users, workers);
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Load {
    /// Open: `rate` requests a second on average, arriving at random
    /// (a Poisson process: independent arrivals, exponential gaps).
    Poisson {
        /// Requests a second, above 0.
        rate: f64,
    },
    /// Open: `rate` requests a second, evenly spaced.
    Even {
        /// Requests a second, above 0.
        rate: f64,
    },
    /// Closed: `clients` clients, each sending a request, waiting for its
    /// answer, then `think` before the next.
    Closed {
        /// How many, at least 1.
        clients: u32,
        /// The pause between an answer and the next request.
        think: Duration,
    },
}

impl Load {
    fn check(&self) -> Result<(), ConfigError> {
        match *self {
            Load::Poisson { rate } | Load::Even { rate } => {
                if !(rate > 0.0 && rate.is_finite() && 1e9 / rate >= 1.0) {
                    return Err(ConfigError::new(
                        LAYER,
                        "load",
                        format!("needs a rate above 0, at most 1e9 a second, got {rate}"),
                    ));
                }
                Ok(())
            }
            Load::Closed { clients, think } => {
                check::at_least_one(LAYER, "load", clients)?;
                check::at_most_longest(LAYER, "load", think)
            }
        }
    }

    /// The gap to the next arrival of an open load.
    fn gap(&self, random: &FastRandom) -> Duration {
        let nanos = match *self {
            Load::Poisson { rate } => -(1.0 - random.next_f64()).ln() * 1e9 / rate,
            Load::Even { rate } => 1e9 / rate,
            Load::Closed { .. } => 0.0,
        };
        Duration::from_nanos(nanos.round() as u64)
    }
}

type ProbeFn = Box<dyn Fn() -> f64>;

/// Runs a whole stack against a load of virtual clients on a clock —
/// seconds of simulated traffic in milliseconds of real time with a
/// [`ManualClock`](crate::clock::ManualClock) — and reports what became of
/// every request: a [`Report`].
///
/// The clients send for [`duration`](SimulationBuilder::duration); the
/// requests still under way then get up to
/// [`drain`](SimulationBuilder::drain) more to finish, after which they are
/// dropped (cancelled) and counted [`Unfinished`](Outcome::Unfinished).
/// [`probe`](SimulationBuilder::probe)s read anything — a breaker's state, a
/// limit, the upstream's queue — at the end of every interval of the
/// timeline.
///
/// [`run`](Simulation::run) is a future that sleeps only on the
/// simulation's clock. With a `ManualClock`, run it with
/// [`ManualClock::block_on`](crate::clock::ManualClock::block_on), which
/// jumps from one deadline to the next; with a
/// [`TokioClock`](crate::clock::TokioClock), await it in a tokio runtime
/// whose time is paused. Everything is drawn from seeded sources and the
/// clients are polled in a fixed order, so a run is repeatable to the
/// request. The clients are tasks of the simulation's own, polled by
/// `run`'s future, which is therefore not `Send`: run it where it is made
/// (`block_on`, a current-thread runtime, `#[tokio::test]`). Every latency
/// is kept for exact percentiles: about 32 bytes a request.
///
/// # Examples
///
/// What does a breaker do when its dependency fails for ten seconds?
///
/// ```
/// use std::time::Duration;
/// use palisade::{
///     circuit_breaker::{CircuitBreakerLayer, CircuitState, OpenDuration},
///     clock::ManualClock,
///     error::RejectionKind,
///     sim::{Load, Outcome, Phase, Simulation, Upstream},
/// };
/// use tower::Layer;
///
/// let secs = Duration::from_secs;
/// let clock = ManualClock::new();
/// let upstream = Upstream::<u64, _>::builder(clock.clone())
///     .phase(secs(10)..secs(20), Phase::new().errors(1.0))
///     .build()?;
/// let breaker = CircuitBreakerLayer::builder()
///     .open_duration(OpenDuration::fixed(secs(2)))
///     .clock(clock.clone())
///     .build()?;
/// let handle = breaker.handle();
/// let simulation = Simulation::builder(clock.clone(), Load::Poisson { rate: 100.0 })
///     .duration(secs(30))
///     .seed(7)
///     .probe("breaker open", move || f64::from(handle.state() == CircuitState::Open))
///     .build()?;
/// let report = clock.block_on(simulation.run(breaker.layer(upstream), |n| n));
///
/// assert!(report.count(Outcome::Rejected(RejectionKind::CircuitOpen)) > 500);
/// let open_at = |second: usize| report.timeline()[second].probes[0];
/// assert_eq!((open_at(5), open_at(15), open_at(25)), (0.0, 1.0, 0.0));
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
pub struct Simulation<C, K = ErrorsAsFailures> {
    clock: C,
    load: Load,
    duration: Duration,
    drain: Duration,
    interval: Duration,
    seed: u64,
    classifier: K,
    probes: Vec<(String, ProbeFn)>,
}

impl<C: Clock> Simulation<C> {
    /// A builder of a simulation of `load` on `clock`: by default 60 s of
    /// load, 30 s of drain, a timeline of 1 s intervals, seed 0, every error
    /// a failure.
    ///
    /// ```
    /// use palisade::{clock::ManualClock, sim::{Load, Simulation}};
    /// let _ = Simulation::builder(ManualClock::new(), Load::Even { rate: 10.0 });
    /// ```
    pub fn builder(clock: C, load: Load) -> SimulationBuilder<C> {
        SimulationBuilder {
            simulation: Simulation {
                clock,
                load,
                duration: Duration::from_secs(60),
                drain: Duration::from_secs(30),
                interval: Duration::from_secs(1),
                seed: 0,
                classifier: ErrorsAsFailures,
                probes: Vec::new(),
            },
        }
    }
}

impl<C: Clock, K> Simulation<C, K> {
    /// Sends the load through `service`, request number `n` (from 0) being
    /// `request(n)`, and reports what became of them. Sleeps only on the
    /// simulation's clock; see [`Simulation`] for how to run it.
    pub async fn run<S, Req, F>(self, service: S, request: F) -> Report
    where
        S: Service<Req> + Clone,
        S::Error: Into<BoxError>,
        K: Classify<S::Response, BoxError>,
        F: FnMut(u64) -> Req,
    {
        let Simulation {
            clock,
            load,
            duration,
            drain,
            interval,
            seed,
            classifier,
            probes,
        } = self;
        let start = clock.now();
        let end = start + duration;
        let last = end + drain;
        let context = Rc::new(Client {
            clock: clock.clone(),
            service,
            classifier,
            request: RefCell::new(request),
            recorder: RefCell::new(Recorder::new(start, interval)),
            end,
        });
        let random = FastRandom::seeded(seed);
        let mut tasks = Tasks::default();
        // The next arrival of an open load, the first at once; a closed
        // load's clients start at once, and send until the end.
        let mut arrival = match load {
            Load::Closed { clients, think } => {
                for _ in 0..clients {
                    tasks.spawn(Box::pin(Rc::clone(&context).closed(think)));
                }
                end
            }
            Load::Poisson { .. } | Load::Even { .. } => start,
        };
        let mut boundary = start + interval;
        let mut timer = Box::pin(clock.sleep_until(arrival.min(boundary)));
        poll_fn(|cx| {
            tasks.ready.set_waker(cx.waker());
            loop {
                let now = clock.now();
                while arrival <= now && arrival < end {
                    tasks.spawn(Box::pin(Rc::clone(&context).open()));
                    arrival = arrival.saturating_add(load.gap(&random));
                }
                tasks.poll_woken();
                // What finished at a boundary belongs to the interval it
                // ends; the probes read the state it leaves.
                while boundary <= now {
                    context.recorder.borrow_mut().close(boundary, &probes);
                    boundary += interval;
                }
                // (A closed load's clients stop by themselves.)
                let sending = arrival < end;
                if (!sending && tasks.is_empty()) || now >= last {
                    return Poll::Ready(());
                }
                let next = if arrival < end { arrival } else { last };
                let next = next.min(boundary).min(last);
                if timer.deadline() != next {
                    timer.as_mut().reset(next);
                }
                if timer.as_mut().poll(cx).is_pending() && !tasks.ready.any() {
                    return Poll::Pending;
                }
            }
        })
        .await;
        // What is still under way is dropped, and counted unfinished.
        drop(tasks);
        let now = clock.now();
        let mut recorder = context.recorder.replace(Recorder::new(start, interval));
        recorder.close(now, &probes);
        recorder.report(
            now - start,
            probes.into_iter().map(|(name, _)| name).collect(),
        )
    }
}

impl<C, K> fmt::Debug for Simulation<C, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulation")
            .field("load", &self.load)
            .field("duration", &self.duration)
            .field("drain", &self.drain)
            .field("interval", &self.interval)
            .field("seed", &self.seed)
            .field(
                "probes",
                &self.probes.iter().map(|(name, _)| name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Configures a [`Simulation`].
///
/// ```
/// use std::time::Duration;
/// use palisade::{clock::ManualClock, sim::{Load, Simulation}};
///
/// let simulation = Simulation::builder(ManualClock::new(), Load::Poisson { rate: 500.0 })
///     .duration(Duration::from_secs(120))
///     .drain(Duration::from_secs(10))
///     .interval(Duration::from_millis(500))
///     .seed(42)
///     .build()?;
/// # let _ = simulation;
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
pub struct SimulationBuilder<C, K = ErrorsAsFailures> {
    simulation: Simulation<C, K>,
}

impl<C: Clock, K> SimulationBuilder<C, K> {
    /// How long the clients send. Default: 60 s.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use palisade::{clock::ManualClock, sim::{Load, Simulation}};
    /// let _ = Simulation::builder(ManualClock::new(), Load::Even { rate: 1.0 })
    ///     .duration(Duration::from_secs(600));
    /// ```
    pub fn duration(mut self, duration: Duration) -> Self {
        self.simulation.duration = duration;
        self
    }

    /// How long the requests under way at the end may still take before
    /// they are dropped and counted unfinished. Default: 30 s.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use palisade::{clock::ManualClock, sim::{Load, Simulation}};
    /// let _ = Simulation::builder(ManualClock::new(), Load::Even { rate: 1.0 })
    ///     .drain(Duration::ZERO); // stop at the end, whatever is under way
    /// ```
    pub fn drain(mut self, drain: Duration) -> Self {
        self.simulation.drain = drain;
        self
    }

    /// The length of the timeline's intervals. Default: 1 s.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use palisade::{clock::ManualClock, sim::{Load, Simulation}};
    /// let _ = Simulation::builder(ManualClock::new(), Load::Even { rate: 1.0 })
    ///     .interval(Duration::from_millis(100));
    /// ```
    pub fn interval(mut self, interval: Duration) -> Self {
        self.simulation.interval = interval;
        self
    }

    /// The seed of the arrivals of a [`Poisson`](Load::Poisson) load (the
    /// upstream and the layers have their own). Default: 0.
    ///
    /// ```
    /// # use palisade::{clock::ManualClock, sim::{Load, Simulation}};
    /// let _ = Simulation::builder(ManualClock::new(), Load::Poisson { rate: 1.0 }).seed(9);
    /// ```
    pub fn seed(mut self, seed: u64) -> Self {
        self.simulation.seed = seed;
        self
    }

    /// What counts as a failure among the answers, as for the breaker: with
    /// feature `http`, [`ServerErrorsAsFailures`](crate::classify::ServerErrorsAsFailures)
    /// for a stack that answers refusals with a `503`. Default: every error.
    ///
    /// ```
    /// # use palisade::{classify::ErrorsAsFailures, clock::ManualClock, sim::{Load, Simulation}};
    /// let _ = Simulation::builder(ManualClock::new(), Load::Even { rate: 1.0 })
    ///     .classifier(ErrorsAsFailures);
    /// ```
    pub fn classifier<K2>(self, classifier: K2) -> SimulationBuilder<C, K2> {
        let s = self.simulation;
        SimulationBuilder {
            simulation: Simulation {
                clock: s.clock,
                load: s.load,
                duration: s.duration,
                drain: s.drain,
                interval: s.interval,
                seed: s.seed,
                classifier,
                probes: s.probes,
            },
        }
    }

    /// Reads `probe` at the end of every interval, under `name`: a
    /// breaker's state, a limit, the upstream's queue — a line of the chart.
    ///
    /// ```
    /// # use palisade::{clock::ManualClock, sim::{Load, Simulation, Upstream}};
    /// let upstream = Upstream::<u64, _>::builder(ManualClock::new()).build()?;
    /// let watched = upstream.clone();
    /// let _ = Simulation::builder(ManualClock::new(), Load::Even { rate: 1.0 })
    ///     .probe("upstream in flight", move || watched.in_flight() as f64);
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn probe<F>(mut self, name: impl Into<String>, probe: F) -> Self
    where
        F: Fn() -> f64 + 'static,
    {
        self.simulation.probes.push((name.into(), Box::new(probe)));
        self
    }

    /// Checks the configuration and builds the simulation.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `load` (a rate not above 0, no clients),
    /// `duration` or `interval` (0, or over 100 years), `drain` (over 100
    /// years).
    ///
    /// ```
    /// # use palisade::{clock::ManualClock, sim::{Load, Simulation}};
    /// let err = Simulation::builder(ManualClock::new(), Load::Poisson { rate: 0.0 })
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.field(), "load");
    /// ```
    pub fn build(self) -> Result<Simulation<C, K>, ConfigError> {
        let s = &self.simulation;
        s.load.check()?;
        for (field, duration) in [("duration", s.duration), ("interval", s.interval)] {
            check::positive(LAYER, field, duration)?;
            check::at_most_longest(LAYER, field, duration)?;
        }
        check::at_most_longest(LAYER, "drain", s.drain)?;
        Ok(self.simulation)
    }
}

impl<C, K> fmt::Debug for SimulationBuilder<C, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulationBuilder")
            .field("simulation", &self.simulation)
            .finish()
    }
}

/// What every virtual client shares.
struct Client<C, S, K, F> {
    clock: C,
    service: S,
    classifier: K,
    request: RefCell<F>,
    recorder: RefCell<Recorder>,
    /// When clients stop sending.
    end: Instant,
}

impl<C, S, K, F, Req> Client<C, S, K, F>
where
    C: Clock,
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    K: Classify<S::Response, BoxError>,
    F: FnMut(u64) -> Req,
{
    /// One request of an open load.
    async fn open(self: Rc<Self>) {
        self.send().await;
    }

    /// A client of a closed load: a request, an answer, a pause, until
    /// the end.
    async fn closed(self: Rc<Self>, think: Duration) {
        while self.clock.now() < self.end {
            self.send().await;
            if !think.is_zero() {
                self.clock.sleep(think).await;
            }
        }
    }

    async fn send(&self) {
        let number = {
            let mut recorder = self.recorder.borrow_mut();
            recorder.sent += 1;
            recorder.sent - 1
        };
        let request = (self.request.borrow_mut())(number);
        let mut pending = Pending {
            recorder: &self.recorder,
            clock: &self.clock,
            started: self.clock.now(),
            done: false,
        };
        let mut service = self.service.clone();
        let result = match poll_fn(|cx| service.poll_ready(cx)).await {
            Ok(()) => service.call(request).await.map_err(Into::into),
            Err(err) => Err(err.into()),
        };
        pending.done = true;
        let outcome = Outcome::of(&result, &self.classifier);
        let now = self.clock.now();
        self.recorder
            .borrow_mut()
            .record(outcome, now - pending.started);
    }
}

/// A request under way: dropped before it is answered, it is recorded
/// unfinished.
struct Pending<'a, C: Clock> {
    recorder: &'a RefCell<Recorder>,
    clock: &'a C,
    started: Instant,
    done: bool,
}

impl<C: Clock> Drop for Pending<'_, C> {
    fn drop(&mut self) {
        if !self.done {
            let now = self.clock.now();
            self.recorder
                .borrow_mut()
                .record(Outcome::Unfinished, now - self.started);
        }
    }
}

/// Every request's latency by outcome, and the timeline.
struct Recorder {
    start: Instant,
    interval: Duration,
    sent: u64,
    outcomes: Vec<Vec<Duration>>,
    /// The intervals closed so far.
    timeline: Vec<Interval>,
    /// The interval under way: its start, what finished in it, and the
    /// latencies of its answers.
    open: (Instant, [u64; 11], Vec<Duration>),
}

impl Recorder {
    fn new(start: Instant, interval: Duration) -> Recorder {
        Recorder {
            start,
            interval,
            sent: 0,
            outcomes: vec![Vec::new(); Outcome::ALL.len()],
            timeline: Vec::new(),
            open: (start, [0; 11], Vec::new()),
        }
    }

    fn record(&mut self, outcome: Outcome, latency: Duration) {
        self.outcomes[outcome.index()].push(latency);
        self.open.1[outcome.index()] += 1;
        if outcome != Outcome::Unfinished {
            self.open.2.push(latency);
        }
    }

    /// Ends the interval under way at `at` (unless it is empty in time),
    /// reading the probes.
    fn close(&mut self, at: Instant, probes: &[(String, ProbeFn)]) {
        let (started, finished, latencies) =
            std::mem::replace(&mut self.open, (at, [0; 11], Vec::new()));
        if at <= started {
            return;
        }
        let latencies = Latencies::new(latencies);
        self.timeline.push(Interval {
            start: started - self.start,
            length: (at - started).min(self.interval),
            finished,
            p50: latencies.quantile(0.5),
            p99: latencies.quantile(0.99),
            max: latencies.quantile(1.0),
            probes: probes.iter().map(|(_, probe)| probe()).collect(),
        });
    }

    fn report(self, elapsed: Duration, probes: Vec<String>) -> Report {
        let answered = self
            .outcomes
            .iter()
            .zip(Outcome::ALL)
            .filter(|(_, outcome)| *outcome != Outcome::Unfinished)
            .flat_map(|(latencies, _)| latencies.iter().copied())
            .collect();
        Report {
            elapsed,
            sent: self.sent,
            outcomes: self.outcomes.into_iter().map(Latencies::new).collect(),
            answered: Latencies::new(answered),
            timeline: self.timeline,
            probes,
        }
    }
}

/// The ids of the tasks woken since they were last polled, and the waker
/// of whoever polls them.
#[derive(Default)]
struct Ready {
    woken: Mutex<VecDeque<usize>>,
    waker: Mutex<Option<Waker>>,
}

impl Ready {
    fn set_waker(&self, waker: &Waker) {
        let mut current = lock(&self.waker);
        if current
            .as_ref()
            .is_none_or(|current| !current.will_wake(waker))
        {
            *current = Some(waker.clone());
        }
    }

    fn push(&self, id: usize) {
        lock(&self.woken).push_back(id);
        if let Some(waker) = lock(&self.waker).as_ref() {
            waker.wake_by_ref();
        }
    }

    fn any(&self) -> bool {
        !lock(&self.woken).is_empty()
    }
}

/// Wakes one task: queues its id.
struct TaskWaker {
    id: usize,
    ready: Arc<Ready>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.ready.push(self.id);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.ready.push(self.id);
    }
}

type Task<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

/// The clients' tasks, polled when woken, in the order they were woken.
#[derive(Default)]
struct Tasks<'a> {
    slots: Vec<Option<(Task<'a>, Waker)>>,
    free: Vec<usize>,
    live: usize,
    ready: Arc<Ready>,
}

impl<'a> Tasks<'a> {
    fn spawn(&mut self, task: Task<'a>) {
        let id = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let waker = Waker::from(Arc::new(TaskWaker {
            id,
            ready: Arc::clone(&self.ready),
        }));
        self.slots[id] = Some((task, waker));
        self.live += 1;
        self.ready.push(id);
    }

    /// Polls every woken task, and those they wake, until none is.
    fn poll_woken(&mut self) {
        loop {
            let Some(id) = lock(&self.ready.woken).pop_front() else {
                return;
            };
            let Some((task, waker)) = &mut self.slots[id] else {
                continue; // finished since it was woken
            };
            if task
                .as_mut()
                .poll(&mut Context::from_waker(waker))
                .is_ready()
            {
                self.slots[id] = None;
                self.free.push(id);
                self.live -= 1;
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.live == 0
    }
}
