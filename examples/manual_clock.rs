//! A `ManualClock` driving sleeps: three tasks wait different times, and the
//! program moves time forward by hand. No real time passes — the whole run
//! takes microseconds — which is how palisade's layers are tested.
//!
//! Run with `cargo run --example manual_clock`.

use std::time::Duration;

use palisade::clock::{Clock, ManualClock};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let clock = ManualClock::new();
    let started = std::time::Instant::now();

    let mut tasks = Vec::new();
    for (name, wait) in [
        ("breaker probe", 30),
        ("retry backoff", 2),
        ("token refill", 10),
    ] {
        let clock = clock.clone();
        tasks.push(tokio::spawn(async move {
            clock.sleep(Duration::from_secs(wait)).await;
            println!(
                "  {name:<13} (due at {wait}s) woke at t = {:?}",
                clock.now().since_epoch()
            );
        }));
    }

    // Let every task reach its sleep, then move time in steps.
    while clock.sleepers() < tasks.len() {
        tokio::task::yield_now().await;
    }
    println!("{} sleepers registered at t = 0s", clock.sleepers());
    for step in [1, 4, 10, 20] {
        clock.advance(Duration::from_secs(step));
        println!("advance {step}s -> t = {:?}", clock.now().since_epoch());
        // Give the woken tasks a turn to run and print.
        for _ in 0..tasks.len() {
            tokio::task::yield_now().await;
        }
    }
    for task in tasks {
        task.await.expect("sleeper task");
    }
    assert_eq!(clock.sleepers(), 0);
    println!("35 virtual seconds in {:?} of real time", started.elapsed());
}
