//! Property test of the bulkhead: whatever the sequence of calls, waits,
//! cancellations and time, the calls in flight seen by the wrapped service
//! never exceed the bound, the queue never exceeds its size, every call that
//! is neither refused nor dropped completes, and every permit comes back.
//! The bound and the queue also change mid-run (`reconfigure`): a call is
//! only ever let in under the bound in force, and a queue made smaller
//! takes no newcomer until it has room.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::Poll,
    time::Duration,
};

use palisade::{
    bulkhead::{BulkheadLayer, QueueBounds},
    clock::ManualClock,
    error::BulkheadFull,
};
use proptest::prelude::*;
use tokio_test::task;
use tower::{BoxError, Layer, Service, service_fn};

#[derive(Clone, Copy, Debug)]
enum Op {
    /// A call that takes this many milliseconds.
    Call(u64),
    /// Drop the n-th live call (modulo their number).
    Drop(usize),
    Advance(u64),
    /// New settings: a bound, and a queue (size, wait in ms) or none.
    Reconfigure(u32, Option<(u32, u64)>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..50u64).prop_map(Op::Call),
        1 => any::<usize>().prop_map(Op::Drop),
        3 => (0..60u64).prop_map(Op::Advance),
        1 => (1..4u32, proptest::option::of((1..4u32, 1..40u64)))
            .prop_map(|(max, queue)| Op::Reconfigure(max, queue)),
    ]
}

/// Takes a call out of the count of calls in the wrapped service.
struct Leaving(Arc<AtomicUsize>);

impl Drop for Leaving {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Polls every live call, dropping those that are done.
fn poll_all<F: Future<Output = Result<u64, BoxError>>>(live: &mut Vec<task::Spawn<F>>) {
    live.retain_mut(|call| match call.poll() {
        Poll::Pending => true,
        Poll::Ready(Ok(_)) => false,
        Poll::Ready(Err(err)) => {
            assert!(err.is::<BulkheadFull>(), "{err}");
            false
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::cases(256)))]

    #[test]
    fn the_bound_holds_and_nothing_leaks(
        max in 1..4u32,
        queue in proptest::option::of((1..4u32, 1..40u64)),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let clock = ManualClock::new();
        let (in_flight, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let inner = service_fn({
            let (clock, in_flight, most) = (clock.clone(), Arc::clone(&in_flight), Arc::clone(&most));
            move |takes: u64| {
                let (clock, in_flight, most) = (clock.clone(), Arc::clone(&in_flight), Arc::clone(&most));
                async move {
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    // Leaves the count when the call ends, completed or dropped.
                    let _leaving = Leaving(in_flight);
                    palisade::clock::Clock::sleep(&clock, Duration::from_millis(takes)).await;
                    Ok::<_, BoxError>(takes)
                }
            }
        });
        let (mut max, mut queue) = (max, queue);
        let mut builder = BulkheadLayer::builder(max).clock(clock.clone());
        if let Some((max_waiting, wait_ms)) = queue {
            builder = builder.queue(max_waiting, Duration::from_millis(wait_ms));
        }
        let layer = builder.build().unwrap();
        let mut service = layer.layer(inner);
        let mut live = Vec::new();
        // What may wait: the room, or more while a smaller queue empties.
        let mut waiting_cap = 0u64;
        for op in ops {
            // The most calls in flight at a call's entry, this step.
            most.store(0, Ordering::SeqCst);
            match op {
                Op::Call(takes) => live.push(task::spawn(service.call(takes))),
                Op::Drop(n) if !live.is_empty() => {
                    let n = n % live.len();
                    drop(live.remove(n));
                }
                Op::Drop(_) => {}
                Op::Advance(ms) => clock.advance(Duration::from_millis(ms)),
                Op::Reconfigure(new_max, new_queue) => {
                    let mut settings = layer.settings();
                    settings.max_concurrent = new_max;
                    settings.queue = new_queue.map(|(max_waiting, wait_ms)| QueueBounds {
                        max_waiting,
                        max_wait: Duration::from_millis(wait_ms),
                    });
                    layer.reconfigure(settings).unwrap();
                    prop_assert_eq!(layer.settings(), settings);
                    (max, queue) = (new_max, new_queue);
                }
            }
            poll_all(&mut live);
            prop_assert!(most.load(Ordering::SeqCst) <= max as usize, "let in above the bound");
            let room = queue.map_or(0, |(max_waiting, _)| u64::from(max_waiting));
            waiting_cap = room.max(waiting_cap.min(layer.waiting()));
            prop_assert!(layer.waiting() <= waiting_cap);
        }
        // Drain: every call still live either completes or times out.
        for _ in 0..200 {
            if live.is_empty() {
                break;
            }
            clock.advance(Duration::from_millis(10));
            poll_all(&mut live);
        }
        prop_assert!(live.is_empty(), "calls stuck: {}", live.len());
        prop_assert_eq!(layer.in_flight(), 0);
        prop_assert_eq!(layer.waiting(), 0);
        prop_assert_eq!(in_flight.load(Ordering::SeqCst), 0);
    }
}
