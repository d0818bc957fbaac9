//! The stack comparison of `stack.rs` measured in pairs: palisade's six
//! layers and tower's three, timed in alternating slices of calls, so that
//! both are measured under the same conditions.
//!
//! Criterion measures one row after another, seconds apart; on a shared
//! virtual machine the speed of the host drifts over such spans by more
//! than the difference between the two stacks. Here each round times one
//! slice of each stack back to back (in alternating order), and the table
//! gives, over all rounds, the time per call of each and the ratio of the
//! two within a round. Run with `cargo bench -p palisade-benches --bench
//! stack_paired`; prints a Markdown table.

use std::{hint::black_box, time::Instant};

use palisade::clock::{QuantaClock, TokioClock};
use palisade_benches::{
    filtered_out, rate_limit_on, ready_call, six_layers, timer_runtime, towers_three_layers,
};
use tower::Service;

/// Calls per slice: long enough (tens of milliseconds) that the clock reads
/// around a slice do not count, short enough that both slices of a round
/// run under the same conditions.
const CALLS: u64 = 200_000;
/// Rounds per pair.
const ROUNDS: usize = 200;

/// Nanoseconds per call over one slice of `CALLS` calls.
fn slice<S: Service<u64>>(service: &mut S) -> f64 {
    let start = Instant::now();
    for i in 0..CALLS {
        assert!(ready_call(service, black_box(i)));
    }
    start.elapsed().as_nanos() as f64 / CALLS as f64
}

/// The 10th, 50th and 90th percentiles of `values`.
fn percentiles(mut values: Vec<f64>) -> [f64; 3] {
    values.sort_by(f64::total_cmp);
    [10, 50, 90].map(|p| values[(values.len() - 1) * p / 100])
}

/// Times `ours` and `theirs` in `ROUNDS` rounds of one slice each and
/// prints a table row.
fn pair<A: Service<u64>, B: Service<u64>>(name: &str, mut ours: A, mut theirs: B) {
    // One slice each first, untimed: caches, branch predictors, allocator.
    slice(&mut ours);
    slice(&mut theirs);
    let (mut a, mut b, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let (x, y) = if round % 2 == 0 {
            let x = slice(&mut ours);
            (x, slice(&mut theirs))
        } else {
            let y = slice(&mut theirs);
            (slice(&mut ours), y)
        };
        a.push(x);
        b.push(y);
        ratio.push(x / y);
    }
    let at_most = ratio.iter().filter(|r| **r <= 1.0).count();
    let [a, b, ratio] = [a, b, ratio].map(percentiles);
    let ns = |[p10, p50, p90]: [f64; 3]| format!("{p10:.1} / {p50:.1} / {p90:.1} ns");
    println!(
        "| {name} | {} | {} | {:.2} / {:.2} / {:.2} | {at_most} of {ROUNDS} |",
        ns(a),
        ns(b),
        ratio[0],
        ratio[1],
        ratio[2],
    );
}

fn main() {
    // `cargo bench --no-run` builds this; `cargo bench` runs it with
    // `--bench`.
    if filtered_out("stack_paired") {
        return;
    }
    let runtime = timer_runtime();
    let _entered = runtime.enter();
    println!(
        "| palisade's six layers against tower's three, {CALLS} calls a slice | palisade p10 / p50 / p90 | tower p10 / p50 / p90 | ratio p10 / p50 / p90 | rounds palisade ≤ tower |"
    );
    println!("|---|---|---|---|---|");
    pair(
        "rate limit on TokioClock (default)",
        six_layers(rate_limit_on(TokioClock::new())),
        towers_three_layers(),
    );
    pair(
        "rate limit on QuantaClock",
        six_layers(rate_limit_on(QuantaClock::new())),
        towers_three_layers(),
    );
}
