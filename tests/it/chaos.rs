//! The chaos layer on a `ManualClock` and a seeded random source: each
//! fault, the delays, the switches, the opt-in, the events — and runs
//! repeatable to the request.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    task::Poll,
    time::Duration,
};

use palisade::{
    chaos::{ChaosLayer, InjectedFault, Latency, Settings},
    clock::{Clock, ManualClock},
    error::Elapsed,
    observe::EventKind,
    random::FastRandom,
    timeout::TimeoutLayer,
};
use proptest::prelude::*;
use tokio_test::{assert_pending, task};
use tower::{BoxError, Layer, Service, service_fn};

const MS: Duration = Duration::from_millis(1);

/// What one request came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Came {
    /// The wrapped service answered.
    Served,
    Error,
    Response,
    /// Still waiting when the run looked.
    Pending,
}

/// An upstream that answers `request * 10` at once, counting its calls.
fn upstream(
    reached: &Arc<AtomicUsize>,
) -> impl Service<u32, Response = u32, Error = BoxError, Future: Send> + Clone + use<> {
    let reached = Arc::clone(reached);
    service_fn(move |request: u32| {
        reached.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, BoxError>(request * 10) }
    })
}

/// Sends `requests` requests through `layer` at once, each polled once:
/// what each came to.
fn run(layer: &ChaosLayer<u32, u32, ManualClock, FastRandom>, requests: u32) -> Vec<Came> {
    let mut service = layer.layer(upstream(&Arc::default()));
    (0..requests)
        .map(|request| match task::spawn(service.call(request)).poll() {
            Poll::Ready(Ok(7)) => Came::Response,
            Poll::Ready(Ok(_)) => Came::Served,
            Poll::Ready(Err(err)) => {
                assert!(err.is::<InjectedFault>(), "{err}");
                Came::Error
            }
            Poll::Pending => Came::Pending,
        })
        .collect()
}

fn layer(seed: u64, settings: Settings) -> ChaosLayer<u32, u32, ManualClock, FastRandom> {
    ChaosLayer::builder()
        .response(0.0, |_: &u32| 7)
        .settings(settings)
        .clock(ManualClock::new())
        .random(FastRandom::seeded(seed))
        .build()
        .unwrap()
}

fn settings(error: f64, response: f64, hang: f64) -> Settings {
    let mut settings = Settings::default();
    (settings.error, settings.response, settings.hang) = (error, response, hang);
    settings
}

/// The same seed, the same faults, request by request; and over 10 000
/// requests each fault comes as often as its probability says (within four
/// standard deviations).
#[test]
fn a_seeded_run_is_repeatable_to_the_request_and_faults_come_at_their_rates() {
    let chosen = settings(0.1, 0.05, 0.02);
    let first = run(&layer(7, chosen), 10_000);
    assert_eq!(first, run(&layer(7, chosen), 10_000));
    assert_ne!(first, run(&layer(8, chosen), 10_000));
    let count = |came: Came| first.iter().filter(|c| **c == came).count() as f64;
    for (came, p) in [
        (Came::Error, 0.1),
        (Came::Response, 0.05),
        (Came::Pending, 0.02),
        (Came::Served, 0.83),
    ] {
        let p: f64 = p;
        let (mean, sd) = (10_000.0 * p, (10_000.0 * p * (1.0 - p)).sqrt());
        assert!(
            (count(came) - mean).abs() < 4.0 * sd,
            "{came:?}: {} against {mean}",
            count(came)
        );
    }
}

/// A delayed request waits exactly its drawn delay on the clock, and only
/// then is the wrapped service's future polled.
#[test]
fn a_delay_holds_the_call_exactly_its_time_on_the_clock() {
    let clock = ManualClock::new();
    let polled_at = Arc::new(Mutex::new(None));
    let layer = ChaosLayer::builder()
        .latency(1.0, Latency::Fixed(300 * MS))
        .clock(clock.clone())
        .random(FastRandom::seeded(1))
        .build()
        .unwrap();
    let mut service = layer.layer(service_fn({
        let (clock, polled_at) = (clock.clone(), Arc::clone(&polled_at));
        move |request: u32| {
            let (clock, polled_at) = (clock.clone(), Arc::clone(&polled_at));
            async move {
                *polled_at.lock().unwrap() = Some(clock.now());
                Ok::<_, BoxError>(request)
            }
        }
    }));
    let started = clock.now();
    let mut call = task::spawn(service.call(5));
    assert_pending!(call.poll());
    clock.advance(300 * MS - Duration::from_nanos(1));
    assert_pending!(call.poll());
    assert_eq!(
        *polled_at.lock().unwrap(),
        None,
        "not polled during the delay"
    );
    clock.advance(Duration::from_nanos(1));
    assert!(matches!(call.poll(), Poll::Ready(Ok(5))));
    assert_eq!(*polled_at.lock().unwrap(), Some(started + 300 * MS));
}

#[test]
fn the_delays_of_chaos_layers_around_one_another_add_up() {
    let clock = ManualClock::new();
    let delay = |millis: u32, seed: u64| {
        ChaosLayer::<u32, u32, _, _>::builder()
            .latency(1.0, Latency::Fixed(MS * millis))
            .clock(clock.clone())
            .random(FastRandom::seeded(seed))
            .build()
            .unwrap()
    };
    let (outer, inner) = (delay(200, 1), delay(50, 2));
    let mut service = outer.layer(inner.layer(upstream(&Arc::default())));
    let started = clock.now();
    // Called now, polled from later: a delay counts from the first poll.
    let call = service.call(3);
    clock.advance(MS * 10);
    let mut call = task::spawn(call);
    assert_pending!(call.poll());
    clock.advance(MS * 200);
    assert!(call.is_woken(), "the outer delay is over");
    assert_pending!(call.poll());
    clock.advance(MS * 49);
    assert_pending!(call.poll());
    clock.advance(MS);
    assert!(call.is_woken(), "the inner delay is over");
    assert!(matches!(call.poll(), Poll::Ready(Ok(30))));
    assert_eq!(clock.now() - started, MS * 260);
}

/// A hang never answers and never reaches the service; a timeout outside
/// gives up on it at its deadline.
#[test]
fn a_hang_is_given_up_by_the_timeout_around_it() {
    let clock = ManualClock::new();
    let reached = Arc::new(AtomicUsize::new(0));
    let chaos = ChaosLayer::builder()
        .hang(1.0)
        .clock(clock.clone())
        .build()
        .unwrap();
    let timeout = TimeoutLayer::builder(Duration::from_secs(2))
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut service = timeout.layer(chaos.layer(upstream(&reached)));
    let mut call = task::spawn(service.call(1));
    assert_pending!(call.poll());
    clock.advance(Duration::from_secs(2));
    let Poll::Ready(Err(err)) = call.poll() else {
        panic!("the timeout gives up")
    };
    assert!(err.is::<Elapsed>(), "{err}");
    assert_eq!(reached.load(Ordering::SeqCst), 0);
}

/// An error or a response of the caller's own, in place of the service's
/// answer, which is not called.
#[test]
fn injected_errors_and_responses_are_the_callers_own_and_skip_the_service() {
    let reached = Arc::new(AtomicUsize::new(0));
    let failing = ChaosLayer::builder()
        .error_with(1.0, |request: &u32| format!("refused {request}"))
        .build()
        .unwrap();
    let mut service = failing.layer(upstream(&reached));
    let Poll::Ready(Err(err)) = task::spawn(service.call(3)).poll() else {
        panic!("an injected error")
    };
    assert_eq!(err.to_string(), "refused 3");
    let answering = ChaosLayer::builder()
        .response(1.0, |request: &u32| request + 1000)
        .build()
        .unwrap();
    let mut service = answering.layer(upstream(&reached));
    assert!(matches!(
        task::spawn(service.call(3)).poll(),
        Poll::Ready(Ok(1003))
    ));
    assert_eq!(reached.load(Ordering::SeqCst), 0);
}

/// Disabled, the layer passes everything through; switched on again at
/// runtime, it injects; each switch and each injection is evented.
#[test]
fn the_switch_turns_injection_off_and_on_at_runtime_with_events() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let layer = ChaosLayer::builder()
        .name("db")
        .error(1.0)
        .disabled()
        .clock(ManualClock::new())
        .random(FastRandom::seeded(3))
        .on_event({
            let events = Arc::clone(&events);
            move |event| events.lock().unwrap().push(event.kind)
        })
        .build()
        .unwrap();
    assert!(!layer.is_enabled());
    assert_eq!(run(&layer, 10), vec![Came::Served; 10]);
    layer.enable();
    assert!(layer.is_enabled());
    assert_eq!(run(&layer, 3), vec![Came::Error; 3]);
    let mut settings = layer.settings();
    settings.error = 0.0;
    settings.latency = 1.0;
    settings.delay = Latency::Fixed(MS);
    layer.reconfigure(settings).unwrap();
    assert_eq!(run(&layer, 1), vec![Came::Pending], "delayed now");
    layer.disable();
    assert_eq!(
        *events.lock().unwrap(),
        [
            EventKind::Reconfigured {
                setting: "enabled",
                old: 0.0,
                new: 1.0
            },
            EventKind::Injected { fault: "error" },
            EventKind::Injected { fault: "error" },
            EventKind::Injected { fault: "error" },
            EventKind::Reconfigured {
                setting: "error",
                old: 1.0,
                new: 0.0
            },
            EventKind::Reconfigured {
                setting: "latency",
                old: 0.0,
                new: 1.0
            },
            EventKind::Injected { fault: "latency" },
            EventKind::Reconfigured {
                setting: "enabled",
                old: 1.0,
                new: 0.0
            },
        ]
    );
}

/// With an opt-in, only the requests that ask are touched.
#[test]
fn only_requests_that_opt_in_meet_chaos() {
    let layer = ChaosLayer::builder()
        .error(1.0)
        .opt_in(|request: &u32| request % 2 == 0)
        .clock(ManualClock::new())
        .build()
        .unwrap();
    assert_eq!(
        run(&layer, 4),
        [Came::Error, Came::Served, Came::Error, Came::Served]
    );
}

/// Bad numbers are refused with the field's name, by the builder and by a
/// change at runtime (which then leaves the settings as they were).
#[test]
fn bad_settings_are_refused_by_field() {
    fn field<T>(result: Result<T, palisade::error::ConfigError>) -> String {
        result.map(drop).unwrap_err().field().to_owned()
    }
    let builder = || ChaosLayer::<u32, u32>::builder();
    assert_eq!(field(builder().error(1.5).build()), "error");
    assert_eq!(field(builder().error(0.6).hang(0.6).build()), "hang");
    assert_eq!(
        field(
            builder()
                .latency(
                    0.5,
                    Latency::Exponential {
                        mean: Duration::ZERO
                    }
                )
                .build()
        ),
        "latency"
    );
    let layer = builder().error(0.1).build().unwrap();
    let mut settings = layer.settings();
    settings.response = 0.1;
    assert_eq!(field(layer.reconfigure(settings)), "response");
    settings.response = 0.0;
    settings.latency = -1.0;
    assert_eq!(field(layer.reconfigure(settings)), "latency");
    assert_eq!(layer.settings().error, 0.1);
    assert_eq!(layer.settings().latency, 0.0);
    // The bounds themselves are accepted: a uniform delay of one value, a
    // Pareto delay whose scale is its cap.
    let ms = Duration::from_millis;
    let one = Latency::Uniform {
        min: ms(5),
        max: ms(5),
    };
    assert!(builder().latency(1.0, one).build().is_ok());
    let capped = Latency::Pareto {
        scale: ms(5),
        shape: 1.5,
        max: ms(5),
    };
    assert!(builder().latency(1.0, capped).build().is_ok());
}

/// The chaos layer is ready when the service it wraps is, and not before.
#[test]
fn the_chaos_layer_is_ready_when_its_service_is() {
    let (mock, mut handle) = tower_test::mock::pair::<u32, u32>();
    let mut service = ChaosLayer::<u32, u32>::builder()
        .build()
        .unwrap()
        .layer(mock);
    handle.allow(0);
    let mut ready = task::spawn(tower::ServiceExt::ready(&mut service));
    assert_pending!(ready.poll());
    handle.allow(1);
    assert!(matches!(ready.poll(), Poll::Ready(Ok(_))));
}

#[test]
fn debug_and_display_show_the_chaos_its_faults_and_its_calls() {
    assert_eq!(
        InjectedFault::new("db").to_string(),
        "fault injected by chaos layer `db`"
    );
    let builder = ChaosLayer::<u32, u32>::builder().name("db").error(0.5);
    assert!(
        format!("{builder:?}").starts_with("ChaosBuilder { "),
        "{builder:?}"
    );
    let layer = builder.clock(ManualClock::new()).build().unwrap();
    let settings = format!("{:?}", layer.settings());
    let chaos = format!("Chaos {{ name: \"db\", enabled: true, settings: {settings}, .. }}");
    assert_eq!(
        format!("{layer:?}"),
        format!("ChaosLayer {{ chaos: {chaos} }}")
    );
    let service = layer.layer(7u8);
    assert_eq!(
        format!("{service:?}"),
        format!("Chaos {{ inner: 7, chaos: {chaos} }}")
    );
    let hanging = ChaosLayer::builder()
        .hang(1.0)
        .clock(ManualClock::new())
        .build()
        .unwrap()
        .layer(upstream(&Arc::default()))
        .call(1);
    assert_eq!(
        format!("{hanging:?}"),
        "ResponseFuture { state: \"hanging\" }"
    );
}

#[cfg(feature = "http")]
mod http_opt_in {
    use std::time::Duration;

    use palisade::chaos::{ChaosLayer, OptIn, http};
    use tokio_test::task;
    use tower::{BoxError, Layer, Service, service_fn};

    type Request = ::http::Request<String>;
    type Response = ::http::Response<String>;

    /// An opt-in header or extension marks the requests that meet the
    /// `503` chaos answers; the others reach the service; a disabled layer
    /// ignores the header.
    #[test]
    fn the_opt_in_header_or_extension_chooses_the_requests_a_503_answers() {
        let layer = ChaosLayer::<Request, Response>::builder()
            .response(1.0, |_| http::unavailable(Duration::from_secs(3)))
            .opt_in(http::opt_in("x-chaos"))
            .build()
            .unwrap();
        let mut service = layer.layer(service_fn(|_: Request| async {
            Ok::<_, BoxError>(Response::new("fresh".to_owned()))
        }));
        let mut status = |request: Request| {
            let std::task::Poll::Ready(Ok(response)) = task::spawn(service.call(request)).poll()
            else {
                panic!("answered at once")
            };
            (
                response.status().as_u16(),
                response.headers().get("retry-after").cloned(),
            )
        };
        let marked = ::http::Request::builder()
            .header("x-chaos", "on")
            .body(String::new())
            .unwrap();
        assert_eq!(status(marked), (503, Some("3".parse().unwrap())));
        let mut extended = Request::new(String::new());
        extended.extensions_mut().insert(OptIn);
        assert_eq!(status(extended).0, 503);
        assert_eq!(status(Request::new(String::new())), (200, None));
        layer.disable();
        let marked = ::http::Request::builder()
            .header("x-chaos", "on")
            .body(String::new())
            .unwrap();
        assert_eq!(status(marked).0, 200, "ignored while disabled");
    }
}

/// With feature `serde`, the settings come from a configuration file,
/// durations humane, checked while read.
#[cfg(feature = "serde")]
#[test]
fn chaos_settings_read_from_toml() {
    let settings: Settings = toml::from_str(
        r#"
        error = 0.05
        hang = 0.01
        latency = 0.2
        delay = { pareto = { scale = "10ms", shape = 1.5, max = "5s" } }
        "#,
    )
    .unwrap();
    assert!(settings.enabled);
    assert_eq!(
        (settings.error, settings.hang, settings.latency),
        (0.05, 0.01, 0.2)
    );
    assert_eq!(
        settings.delay,
        Latency::Pareto {
            scale: 10 * MS,
            shape: 1.5,
            max: Duration::from_secs(5)
        }
    );
    let err = toml::from_str::<Settings>("error = 0.7\nhang = 0.7").unwrap_err();
    assert!(err.to_string().contains("hang"), "{err}");
    let back: Settings = toml::from_str(&toml::to_string(&settings).unwrap()).unwrap();
    assert_eq!(back, settings);
}

proptest! {
    /// Whatever the settings and the seed, a request is served, faulted or
    /// delayed exactly as a reference reading of the same draws says: one
    /// draw for the delay (and one for its length), then one for the fault.
    #[test]
    fn each_request_meets_what_its_draws_say(
        error in 0.0..0.4f64,
        response in 0.0..0.3f64,
        hang in 0.0..0.3f64,
        latency in 0.0..1.0f64,
        seed in any::<u64>(),
    ) {
        let mut chosen = settings(error, response, hang);
        chosen.latency = latency;
        chosen.delay = Latency::Fixed(MS);
        let came = run(&layer(seed, chosen), 200);
        let draws = FastRandom::seeded(seed);
        use palisade::random::Random;
        for (request, came) in came.into_iter().enumerate() {
            let delayed = draws.next_f64() < latency;
            if delayed {
                draws.next_f64();
            }
            let draw = draws.next_f64();
            // A delay comes first: the request is still waiting.
            let expected = if delayed || (draw >= error + response && draw < error + response + hang) {
                Came::Pending
            } else if draw < error {
                Came::Error
            } else if draw < error + response {
                Came::Response
            } else {
                Came::Served
            };
            prop_assert_eq!(came, expected, "request {}", request);
        }
    }
}
