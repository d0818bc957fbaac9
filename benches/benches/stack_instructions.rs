//! The stack comparison of `stack.rs` counted in instructions rather than
//! timed: how many instructions one call through each stack executes, as
//! valgrind's callgrind counts them; and the rate limiter alone, a token
//! bucket next to a leaky bucket that finds itself idle.
//!
//! A count does not move with the host's speed, which on a shared virtual
//! machine drifts by more than the differences between stacks; the same
//! build gives the same count every time, so it is the yardstick for
//! comparing two versions of the code. It is not a time: an instruction
//! that waits on memory or on another core counts one like any other. And
//! callgrind counts user-space instructions only: under valgrind a read of
//! the operating system's clock is a system call, not a call into the vDSO,
//! so the read itself counts nothing, only std's and libc's code around it
//! (palisade's six layers read that clock once a call, tower's three twice;
//! the `QuantaClock` row reads the time-stamp counter instead, which counts).
//! Counts also differ somewhat from one build to another of the same code,
//! as the compiler inlines differently; compare counts of one bench.
//!
//! Run with `cargo bench -p palisade-benches --bench stack_instructions`
//! (valgrind must be installed; without it the table is skipped). Each stack
//! runs in a child process under callgrind, which counts only inside the
//! loop of `CALLS` calls: building the stack, and a first call made before
//! the loop for whatever is set up lazily (such as `QuantaClock`'s
//! calibration against the system clock, whose length varies), are left
//! out. Prints a Markdown table.

use std::{
    hint::black_box,
    process::{Command, Stdio},
};

use palisade::clock::{QuantaClock, TokioClock};
use palisade_benches::{
    Echo, filtered_out, leaky_on, rate_limit_on, ready_call, six_layers, timer_runtime,
    towers_three_layers,
};
use tower::{Layer, Service};

/// Calls counted through each stack.
const CALLS: u64 = 100_000;

/// The stacks: the name a child is given, and the row's label.
const STACKS: [(&str, &str); 8] = [
    ("bare", "bare service (baseline)"),
    ("six", "palisade, 6 layers"),
    (
        "six-quanta",
        "palisade, 6 layers, rate limit on QuantaClock",
    ),
    ("tower", "tower, RateLimit + ConcurrencyLimit + Timeout"),
    ("token", "palisade rate limit alone, token bucket"),
    ("leaky", "palisade rate limit alone, leaky bucket, idle"),
    (
        "token-quanta",
        "palisade rate limit alone, token bucket, QuantaClock",
    ),
    (
        "leaky-quanta",
        "palisade rate limit alone, leaky bucket, idle, QuantaClock",
    ),
];

/// One call through `service` for whatever is set up lazily, then `calls`
/// more in `counted`.
fn run<S: Service<u64>>(mut service: S, calls: u64) {
    assert!(ready_call(&mut service, 0));
    counted(&mut service, calls);
}

/// `calls` calls through `service`: the only function callgrind counts in.
#[inline(never)]
fn counted<S: Service<u64>>(service: &mut S, calls: u64) {
    for i in 0..calls {
        assert!(ready_call(service, black_box(i)));
    }
}

/// The child: `calls` calls through the stack called `stack`.
fn child(stack: &str, calls: u64) {
    let runtime = timer_runtime();
    let _entered = runtime.enter();
    match stack {
        "bare" => run(Echo, calls),
        "six" => run(six_layers(rate_limit_on(TokioClock::new())), calls),
        "six-quanta" => run(six_layers(rate_limit_on(QuantaClock::new())), calls),
        "tower" => run(towers_three_layers(), calls),
        "token" => run(rate_limit_on(TokioClock::new()).layer(Echo), calls),
        "leaky" => run(leaky_on(TokioClock::new()).layer(Echo), calls),
        "token-quanta" => run(rate_limit_on(QuantaClock::new()).layer(Echo), calls),
        "leaky-quanta" => run(leaky_on(QuantaClock::new()).layer(Echo), calls),
        other => panic!("no stack called {other:?}"),
    }
}

/// The instructions callgrind counted in `counted` in a child making `calls`
/// calls through `stack`, or why there is no count.
fn count(stack: &str, calls: u64) -> Result<u64, String> {
    let this = std::env::current_exe().map_err(|e| e.to_string())?;
    let output = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            "--toggle-collect=stack_instructions::counted*",
        ])
        .arg(this)
        .args(["--child", stack, &calls.to_string()])
        .stdout(Stdio::null())
        .output()
        .map_err(|e| format!("valgrind could not be started: {e}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("the child failed under valgrind:\n{stderr}"));
    }
    // callgrind ends with a line `==pid== Collected : 123,456`.
    stderr
        .lines()
        .find_map(|line| line.split_once("Collected :"))
        .and_then(|(_, n)| n.trim().replace(',', "").parse().ok())
        .ok_or_else(|| format!("no instruction count in callgrind's output:\n{stderr}"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, stack, calls] = args.as_slice()
        && flag == "--child"
    {
        return child(stack, calls.parse().expect("a number of calls"));
    }
    // `cargo bench --no-run` builds this; `cargo bench` runs it with
    // `--bench`.
    if filtered_out("stack_instructions") {
        return;
    }
    if Command::new("valgrind").arg("--version").output().is_err() {
        println!("stack_instructions: valgrind is not installed; no table.");
        return;
    }
    println!("| stack, {CALLS} calls under callgrind | instructions a call |");
    println!("|---|---:|");
    for (stack, label) in STACKS {
        let total = count(stack, CALLS).unwrap_or_else(|why| panic!("{label}: {why}"));
        assert!(total > 0, "{label}: callgrind counted nothing in `counted`");
        println!("| {label} | {:.1} |", total as f64 / CALLS as f64);
    }
}
