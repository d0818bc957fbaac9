//! The clocks: `Instant` arithmetic, `ManualClock` without a runtime, and
//! `TokioClock` under tokio's paused time.

use std::{
    future::Future,
    pin::{Pin, pin},
    sync::{Arc, Mutex},
    task::{Context, Poll, Wake, Waker},
    time::Duration,
};

use palisade::clock::{Clock, Instant, ManualClock, ManualSleep, Sleep, TokioClock};
use proptest::prelude::*;
use tokio_test::task;

const NS: Duration = Duration::from_nanos(1);

/// A waker that appends its id to a shared log when woken.
struct Recorder {
    id: usize,
    log: Arc<Mutex<Vec<usize>>>,
}

impl Wake for Recorder {
    fn wake(self: Arc<Self>) {
        self.log.lock().unwrap().push(self.id);
    }
}

fn recording_waker(id: usize, log: &Arc<Mutex<Vec<usize>>>) -> Waker {
    Waker::from(Arc::new(Recorder {
        id,
        log: Arc::clone(log),
    }))
}

fn poll_with(sleep: Pin<&mut ManualSleep>, waker: &Waker) -> Poll<()> {
    sleep.poll(&mut Context::from_waker(waker))
}

#[test]
fn instant_arithmetic_saturates() {
    let t = Instant::from_nanos(10);
    assert_eq!(t + Duration::MAX, Instant::MAX);
    assert_eq!(Instant::MAX + NS, Instant::MAX);
    assert_eq!(t - Duration::from_secs(1), Instant::ZERO);
    assert_eq!(Instant::ZERO - t, Duration::ZERO);
    assert_eq!(t - Instant::ZERO, Duration::from_nanos(10));
    assert_eq!(Instant::MAX.checked_add(NS), None);
    assert_eq!(t.checked_add(Duration::MAX), None);
    let mut u = t;
    u += Duration::from_nanos(5);
    u -= Duration::from_nanos(2);
    assert_eq!(u, Instant::from_nanos(13));
}

#[test]
fn clones_share_time() {
    let clock = ManualClock::new();
    let clone = clock.clone();
    clock.advance(Duration::from_secs(3));
    assert_eq!(clone.now(), Instant::ZERO + Duration::from_secs(3));
    clone.set(Instant::from_nanos(5_000_000_000));
    assert_eq!(clock.now(), Instant::from_nanos(5_000_000_000));
}

#[test]
fn sleep_fires_at_the_deadline_not_a_nanosecond_before() {
    let clock = ManualClock::new();
    let mut sleep = task::spawn(clock.sleep(Duration::from_secs(30)));
    assert!(sleep.poll().is_pending());

    clock.advance(Duration::from_secs(30) - NS);
    assert!(!sleep.is_woken());
    assert!(sleep.poll().is_pending());

    clock.advance(NS);
    assert!(sleep.is_woken());
    assert!(sleep.poll().is_ready());
    assert_eq!(clock.sleepers(), 0);
}

#[test]
fn a_past_deadline_is_ready_on_first_poll_and_never_registers() {
    let clock = ManualClock::new();
    clock.advance(Duration::from_secs(10));
    let mut past = task::spawn(clock.sleep_until(Instant::ZERO + Duration::from_secs(1)));
    assert!(past.poll().is_ready());
    let mut now = task::spawn(clock.sleep(Duration::ZERO));
    assert!(now.poll().is_ready());
    assert_eq!(clock.sleepers(), 0);
}

#[test]
fn sleepers_wake_in_deadline_order() {
    let clock = ManualClock::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    // Registered out of order; two share a deadline (woken in registration order).
    let deadlines = [5, 1, 4, 2, 4, 3];
    let mut sleeps: Vec<_> = deadlines
        .iter()
        .map(|&s| Box::pin(clock.sleep(Duration::from_secs(s))))
        .collect();
    for (id, sleep) in sleeps.iter_mut().enumerate() {
        assert!(poll_with(sleep.as_mut(), &recording_waker(id, &log)).is_pending());
    }
    assert_eq!(clock.sleepers(), deadlines.len());
    assert_eq!(
        clock.next_deadline(),
        Some(Instant::ZERO + Duration::from_secs(1))
    );

    clock.advance(Duration::from_secs(4));
    assert_eq!(*log.lock().unwrap(), vec![1, 3, 5, 2, 4]);
    assert_eq!(clock.sleepers(), 1);

    clock.advance(Duration::from_secs(10));
    assert_eq!(*log.lock().unwrap(), vec![1, 3, 5, 2, 4, 0]);
    assert_eq!(clock.sleepers(), 0);
}

#[test]
fn dropped_sleepers_are_removed() {
    let clock = ManualClock::new();
    let mut kept = task::spawn(clock.sleep(Duration::from_secs(2)));
    {
        let mut dropped = task::spawn(clock.sleep(Duration::from_secs(1)));
        assert!(dropped.poll().is_pending());
        assert!(kept.poll().is_pending());
        assert_eq!(clock.sleepers(), 2);
    }
    assert_eq!(clock.sleepers(), 1);
    assert_eq!(
        clock.next_deadline(),
        Some(Instant::ZERO + Duration::from_secs(2))
    );

    // Dropping a sleep that was woken but not polled again leaves nothing behind.
    clock.advance(Duration::from_secs(5));
    assert!(kept.is_woken());
    drop(kept);
    assert_eq!(clock.sleepers(), 0);
}

#[test]
fn a_repolled_sleep_registers_once_and_wakes_its_latest_waker() {
    let clock = ManualClock::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut sleep = pin!(clock.sleep(Duration::from_secs(1)));
    assert!(poll_with(sleep.as_mut(), &recording_waker(1, &log)).is_pending());
    assert!(poll_with(sleep.as_mut(), &recording_waker(2, &log)).is_pending());
    assert_eq!(clock.sleepers(), 1);
    clock.advance(Duration::from_secs(1));
    assert_eq!(*log.lock().unwrap(), vec![2]);
}

#[test]
fn reset_moves_a_registered_sleep() {
    let clock = ManualClock::new();
    let mut sleep = task::spawn(clock.sleep(Duration::from_secs(10)));
    assert!(sleep.poll().is_pending());

    sleep.enter(|_, sleep| sleep.reset(Instant::ZERO + Duration::from_secs(2)));
    assert_eq!(clock.sleepers(), 1);
    assert_eq!(
        clock.next_deadline(),
        Some(Instant::ZERO + Duration::from_secs(2))
    );
    clock.advance(Duration::from_secs(2));
    assert!(sleep.is_woken());
    assert!(sleep.poll().is_ready());

    // Reset after completion: pending again until the new deadline.
    sleep.enter(|_, sleep| sleep.reset(Instant::ZERO + Duration::from_secs(3)));
    assert!(sleep.poll().is_pending());
    clock.advance(Duration::from_secs(1));
    assert!(sleep.poll().is_ready());
}

#[test]
fn reset_to_a_past_deadline_wakes_at_once() {
    let clock = ManualClock::new();
    clock.advance(Duration::from_secs(5));
    let mut sleep = task::spawn(clock.sleep(Duration::from_secs(10)));
    assert!(sleep.poll().is_pending());
    sleep.enter(|_, sleep| sleep.reset(Instant::ZERO + Duration::from_secs(1)));
    assert!(sleep.is_woken());
    assert_eq!(clock.sleepers(), 0);
    assert!(sleep.poll().is_ready());
}

#[test]
#[should_panic(expected = "would move time back")]
fn set_refuses_to_move_time_back() {
    let clock = ManualClock::new();
    clock.advance(Duration::from_secs(1));
    clock.set(Instant::ZERO);
}

#[test]
fn advancing_to_the_end_of_time_wakes_everyone_but_the_sleeps_that_never_end() {
    let clock = ManualClock::new();
    let last = Instant::MAX.saturating_sub(Duration::from_nanos(1));
    let mut late = task::spawn(clock.sleep_until(last));
    // A deadline past the end of the clock saturates at its end: never due.
    let mut never = task::spawn(clock.sleep(Duration::MAX));
    assert!(late.poll().is_pending());
    assert!(never.poll().is_pending());
    clock.advance(Duration::MAX);
    assert_eq!(clock.now(), Instant::MAX);
    assert!(late.is_woken());
    assert!(late.poll().is_ready());
    assert!(!never.is_woken());
    assert!(never.poll().is_pending());
    assert_eq!(clock.next_deadline(), Some(Instant::MAX));
}

/// A minimal executor: park the thread until woken.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

#[test]
fn a_plain_executor_drives_manual_sleeps_advanced_from_another_thread() {
    let clock = ManualClock::new();
    let advancer = std::thread::spawn({
        let clock = clock.clone();
        move || {
            while clock.sleepers() == 0 {
                std::thread::yield_now();
            }
            clock.advance(Duration::from_secs(3600));
        }
    });
    block_on(clock.sleep(Duration::from_secs(3600)));
    advancer.join().unwrap();
    assert_eq!(clock.now(), Instant::ZERO + Duration::from_secs(3600));
}

#[tokio::test]
async fn manual_sleeps_run_on_a_tokio_runtime() {
    let clock = ManualClock::new();
    let sleeper = tokio::spawn({
        let clock = clock.clone();
        async move {
            clock.sleep(Duration::from_secs(60)).await;
            clock.now()
        }
    });
    while clock.sleepers() == 0 {
        tokio::task::yield_now().await;
    }
    clock.advance(Duration::from_secs(90));
    assert_eq!(
        sleeper.await.unwrap(),
        Instant::ZERO + Duration::from_secs(90)
    );
}

#[tokio::test(start_paused = true)]
async fn tokio_clock_follows_paused_time() {
    let clock = TokioClock::new();
    let start = clock.now();
    tokio::time::advance(Duration::from_millis(1500)).await;
    assert_eq!(clock.now() - start, Duration::from_millis(1500));

    let sleep = clock.sleep(Duration::from_secs(3600));
    assert_eq!(
        sleep.deadline() - start,
        Duration::from_millis(1500) + Duration::from_secs(3600)
    );
    sleep.await; // auto-advanced by the paused runtime
    assert_eq!(
        clock.now() - start,
        Duration::from_millis(1500) + Duration::from_secs(3600)
    );
}

#[tokio::test(start_paused = true)]
async fn tokio_sleep_fires_at_the_deadline_not_before() {
    let clock = TokioClock::new();
    let mut sleep = task::spawn(clock.sleep(Duration::from_secs(1)));
    assert!(sleep.poll().is_pending());
    tokio::time::advance(Duration::from_secs(1) - Duration::from_millis(1)).await;
    assert!(sleep.poll().is_pending());
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(sleep.poll().is_ready());
}

#[tokio::test(start_paused = true)]
async fn tokio_sleep_reset_moves_the_deadline() {
    let clock = TokioClock::new();
    let start = clock.now();
    let mut sleep = Box::pin(clock.sleep(Duration::from_secs(100)));
    sleep.as_mut().reset(start + Duration::from_secs(2));
    assert_eq!(sleep.deadline(), start + Duration::from_secs(2));
    sleep.await;
    assert_eq!(clock.now() - start, Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn tokio_clock_survives_a_deadline_at_the_end_of_time() {
    let clock = TokioClock::new();
    let mut far = task::spawn(clock.sleep_until(Instant::MAX));
    assert!(far.poll().is_pending());
    tokio::time::advance(Duration::from_secs(86_400)).await;
    assert!(far.poll().is_pending());
}

#[test]
fn tokio_clocks_share_one_epoch() {
    let a = TokioClock::new().now();
    let b = TokioClock::default().now();
    assert!(b >= a);
    assert!(b - a < Duration::from_secs(60));
}

#[derive(Clone, Debug)]
enum Step {
    Sleep(u64),
    Poll(usize),
    Drop(usize),
    Advance(u64),
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            (0u64..50).prop_map(Step::Sleep),
            any::<usize>().prop_map(Step::Poll),
            any::<usize>().prop_map(Step::Drop),
            (0u64..20).prop_map(Step::Advance),
        ],
        1..60,
    )
}

/// A sleep of the model: id, deadline, the sleep, and its place in the
/// registration order while registered.
type Live = (usize, Instant, Pin<Box<ManualSleep>>, Option<usize>);

proptest! {
    /// Against a reference model (a list of deadlines): after every step the
    /// clock holds exactly the polled, pending, undropped sleeps; an advance
    /// wakes exactly those that came due, in (deadline, registration) order;
    /// a poll is ready exactly when the deadline has been reached.
    #[test]
    fn manual_clock_matches_the_model(steps in steps()) {
        let clock = ManualClock::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut live: Vec<Live> = Vec::new();
        let mut next_id = 0;
        let mut registrations = 0;
        for step in steps {
            match step {
                Step::Sleep(ns) => {
                    let deadline = clock.now() + Duration::from_nanos(ns);
                    live.push((next_id, deadline, Box::pin(clock.sleep_until(deadline)), None));
                    next_id += 1;
                }
                Step::Poll(i) if !live.is_empty() => {
                    let i = i % live.len();
                    let (id, deadline, sleep, registered) = &mut live[i];
                    let ready = poll_with(sleep.as_mut(), &recording_waker(*id, &log)).is_ready();
                    prop_assert_eq!(ready, clock.now() >= *deadline);
                    if ready {
                        live.remove(i);
                    } else if registered.is_none() {
                        *registered = Some(registrations);
                        registrations += 1;
                    }
                }
                Step::Drop(i) if !live.is_empty() => {
                    live.remove(i % live.len());
                }
                Step::Advance(ns) => {
                    log.lock().unwrap().clear();
                    clock.advance(Duration::from_nanos(ns));
                    let now = clock.now();
                    let mut due: Vec<_> = live
                        .iter_mut()
                        .filter(|(_, d, _, r)| r.is_some() && *d <= now)
                        .map(|(id, d, _, r)| (*d, r.take().unwrap(), *id))
                        .collect();
                    due.sort();
                    let expected: Vec<usize> = due.into_iter().map(|(_, _, id)| id).collect();
                    prop_assert_eq!(&*log.lock().unwrap(), &expected);
                }
                _ => {}
            }
            let registered = live.iter().filter(|(_, _, _, r)| r.is_some()).count();
            prop_assert_eq!(clock.sleepers(), registered);
        }
    }
}

/// Many clients through one retry layer on a `ManualClock`, each in its own
/// task: `auto_advance` runs them all to their ends, and the clock reads
/// exactly what the longest slept.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn auto_advance_runs_spawned_tasks_that_sleep_on_the_clock_to_their_ends() {
    use palisade::retry::{Backoff, RetryLayer};
    use tower::{Layer, ServiceExt, service_fn};

    let clock = ManualClock::new();
    let calls = Arc::new(Mutex::new(Vec::new()));
    // Client `n` fails its first `n` attempts.
    let upstream = service_fn({
        let calls = Arc::clone(&calls);
        let clock = clock.clone();
        move |(client, attempt): (u32, Arc<Mutex<u32>>)| {
            let mut made = attempt.lock().unwrap();
            *made += 1;
            calls
                .lock()
                .unwrap()
                .push((client, clock.now().since_epoch()));
            std::future::ready(if *made <= client {
                Err(std::io::Error::other("unavailable"))
            } else {
                Ok(client)
            })
        }
    });
    let service = RetryLayer::builder()
        .backoff(Backoff::exponential(Duration::from_millis(100), 2.0))
        .max_attempts(4)
        .clock(clock.clone())
        .build()
        .unwrap()
        .layer(upstream);
    let clients: Vec<_> = (0..4u32)
        .map(|client| {
            let service = service.clone();
            tokio::spawn(async move {
                let attempts = Arc::new(Mutex::new(0));
                service.oneshot((client, attempts)).await
            })
        })
        .collect();
    let answers = clock
        .auto_advance(async {
            let mut answers = Vec::new();
            for client in clients {
                answers.push(client.await.unwrap().ok());
            }
            answers
        })
        .await;
    // Client `n` gets through after `n` retries; client 3 on its last
    // allowed attempt.
    assert_eq!(answers, [Some(0), Some(1), Some(2), Some(3)]);
    // 100 + 200 + 400 ms of backoff for the client that retried most.
    assert_eq!(clock.now().since_epoch(), Duration::from_millis(700));
    let mut by_client: Vec<_> = calls.lock().unwrap().clone();
    by_client.sort();
    let at = |client| -> Vec<u64> {
        by_client
            .iter()
            .filter(|(c, _)| *c == client)
            .map(|(_, at)| at.as_millis() as u64)
            .collect()
    };
    assert_eq!(at(0), [0]);
    assert_eq!(at(2), [0, 100, 300]);
    assert_eq!(at(3), [0, 100, 300, 700]);
}

#[test]
fn block_on_moves_the_clock_to_each_deadline_a_call_waits_for() {
    use palisade::{error::Elapsed, timeout::TimeoutLayer};
    use tower::{Layer, Service, service_fn};

    let clock = ManualClock::new();
    let mut service = TimeoutLayer::builder(Duration::from_millis(250))
        .clock(clock.clone())
        .build()
        .unwrap()
        .layer(service_fn({
            let clock = clock.clone();
            move |wait: u64| {
                let sleep = clock.sleep(Duration::from_millis(wait));
                async move {
                    sleep.await;
                    Ok::<_, std::io::Error>(wait)
                }
            }
        }));
    assert_eq!(clock.block_on(service.call(100)).unwrap(), 100);
    assert_eq!(clock.now().since_epoch(), Duration::from_millis(100));
    let slow = clock.block_on(service.call(1000)).unwrap_err();
    assert!(slow.is::<Elapsed>());
    assert_eq!(clock.now().since_epoch(), Duration::from_millis(350));
}

#[test]
#[should_panic(expected = "waits, but not on this clock")]
fn block_on_refuses_to_wait_for_what_the_clock_cannot_bring() {
    ManualClock::new().block_on(std::future::pending::<()>());
}

#[test]
fn sleeps_created_tells_whether_a_timer_was_armed() {
    use palisade::timeout::TimeoutLayer;
    use tower::{Layer, Service, service_fn};

    let clock = ManualClock::new();
    let layer = TimeoutLayer::builder(Duration::from_secs(1))
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut ready_at_once = layer.layer(service_fn(|x: u8| {
        std::future::ready(Ok::<_, std::io::Error>(x))
    }));
    clock.block_on(ready_at_once.call(1)).unwrap();
    assert_eq!(
        clock.sleeps_created(),
        0,
        "no timer for a call ready at once"
    );

    let mut pending_once = layer.layer(service_fn(|x: u8| async move {
        tokio::task::yield_now().await;
        Ok::<_, std::io::Error>(x)
    }));
    let mut call = task::spawn(pending_once.call(2));
    assert!(call.poll().is_pending());
    assert_eq!(clock.sleeps_created(), 1, "one timer once the call waits");
}
