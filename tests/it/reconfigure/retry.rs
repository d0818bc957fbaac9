//! A retry's budget and pushback bound changed while it runs.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use palisade::{
    clock::{Clock, Instant, ManualClock},
    retry::{Backoff, BudgetSettings, Decision, RetryBudget, RetryLayer},
};
use tokio_test::task;
use tower::{BoxError, Layer, Service, service_fn};

use super::{Changes, MS, record};

const S: Duration = Duration::from_secs(1);

#[test]
fn a_ttl_budget_keeps_its_deposits_and_withdrawals_under_new_numbers() {
    let budget = RetryBudget::ttl(10 * S, 0, 0.1).unwrap();
    let at = |secs: u64| Instant::ZERO + S * secs as u32;
    for _ in 0..100 {
        budget.deposit(at(0));
    }
    for _ in 0..100 {
        budget.deposit(at(6));
    }
    assert!(budget.withdraw(at(6)));
    assert_eq!(budget.available(at(6)), 19);
    // Twice the ratio, same window: the 200 requests are worth 40.
    budget
        .reconfigure(&RetryBudget::ttl(10 * S, 0, 0.2).unwrap(), at(6))
        .unwrap();
    assert_eq!(budget.available(at(6)), 39);
    // A 5 s window: the deposits of 0 s are out of it at 6 s, those of 6 s
    // (and the retry) are kept; 1 a second of reserve on top.
    budget
        .reconfigure(&RetryBudget::ttl(5 * S, 1, 0.2).unwrap(), at(6))
        .unwrap();
    assert_eq!(budget.available(at(6)), 5 + 20 - 1);
    // A 20 s window counts again what the 5 s one had let go? No: it was
    // forgotten with the change.
    budget
        .reconfigure(&RetryBudget::ttl(20 * S, 0, 0.2).unwrap(), at(6))
        .unwrap();
    assert_eq!(budget.available(at(6)), 19);
    assert_eq!(budget.available(at(26)), 0, "all aged out");
}

#[test]
fn a_token_budget_keeps_its_tokens_up_to_the_new_maximum() {
    let budget = RetryBudget::tokens(10, 0.5).unwrap();
    for _ in 0..3 {
        budget.record(false);
    }
    assert_eq!(budget.available(Instant::ZERO), 2); // 7 tokens, above 5
    budget
        .reconfigure(&RetryBudget::tokens(20, 0.5).unwrap(), Instant::ZERO)
        .unwrap();
    assert_eq!(
        budget.available(Instant::ZERO),
        0,
        "7 of 20 is not above half"
    );
    budget
        .reconfigure(&RetryBudget::tokens(4, 0.5).unwrap(), Instant::ZERO)
        .unwrap();
    assert_eq!(
        budget.available(Instant::ZERO),
        2,
        "4 of 4 (the 7 cut to it)"
    );
}

#[test]
fn a_layer_s_budget_and_pushback_bound_change_with_their_events() {
    let clock = ManualClock::new();
    let changes = Changes::default();
    let waits = Arc::new(Mutex::new(Vec::new()));
    let layer = RetryLayer::builder()
        .policy(|_: &(), result: &Result<u32, BoxError>| match result {
            Ok(503) => Decision::RetryAfter(3600 * S),
            _ => Decision::Accept,
        })
        .max_attempts(3)
        .max_pushback(2 * S)
        .budget(RetryBudget::ttl(10 * S, 1, 0.0).unwrap())
        .clock(clock.clone())
        .on_event(record(&changes))
        .build()
        .unwrap();
    let mut service = layer.layer(service_fn({
        let (clock, waits) = (clock.clone(), Arc::clone(&waits));
        move |()| {
            waits.lock().unwrap().push(clock.now().since_epoch());
            std::future::ready(Ok::<u32, BoxError>(503))
        }
    }));
    let mut call = task::spawn(service.call(()));
    assert!(call.poll().is_pending(), "pushed back 2 s");
    layer.set_max_pushback(500 * MS).unwrap();
    clock.advance(2 * S);
    assert!(call.poll().is_pending(), "the next pushback: 500 ms");
    clock.advance(500 * MS);
    assert!(call.poll().is_ready());
    assert_eq!(*waits.lock().unwrap(), [Duration::ZERO, 2 * S, 2500 * MS]);
    assert_eq!(layer.budget_available(), Some(8));

    layer
        .set_budget(&RetryBudget::ttl(10 * S, 3, 0.0).unwrap())
        .unwrap();
    assert_eq!(
        layer.budget_available(),
        Some(28),
        "the 2 retries still spent"
    );
    assert_eq!(
        layer
            .set_budget(&RetryBudget::tokens(10, 0.1).unwrap())
            .unwrap_err()
            .field(),
        "budget"
    );
    assert_eq!(
        layer.set_max_pushback(Duration::ZERO).unwrap_err().field(),
        "max_pushback"
    );
    assert_eq!(
        *changes.lock().unwrap(),
        [("max_pushback", 2.0, 0.5), ("budget.reserve", 10.0, 30.0)]
    );
    let without = RetryLayer::builder().build().unwrap();
    assert_eq!(
        without
            .set_budget(&RetryBudget::tokens(10, 0.1).unwrap())
            .unwrap_err()
            .field(),
        "budget"
    );
}

#[test]
fn the_settings_read_back_what_the_layer_was_built_with_and_change_together() {
    let numbers = BudgetSettings::Ttl {
        ttl: 10 * S,
        min_per_second: 1,
        ratio: 0.2,
    };
    let backoff = Backoff::constant(20 * MS);
    let layer = RetryLayer::builder()
        .max_attempts(4)
        .backoff(backoff)
        .deadline(3 * S)
        .max_pushback(7 * S)
        .budget(numbers.budget().unwrap())
        .build()
        .unwrap();
    assert_eq!(layer.deadline(), Some(3 * S));
    assert_eq!(layer.backoff(), backoff);
    assert_eq!(layer.max_pushback(), 7 * S);
    assert_eq!(
        layer.budget().map(|budget| budget.settings()),
        Some(numbers)
    );
    let mut settings = layer.settings();
    assert_eq!(
        (
            settings.max_attempts,
            settings.backoff,
            settings.deadline,
            settings.max_pushback,
            settings.budget
        ),
        (4, backoff, Some(3 * S), 7 * S, Some(numbers))
    );

    settings.max_attempts = 2;
    settings.backoff = Backoff::constant(50 * MS);
    settings.deadline = None;
    settings.max_pushback = S;
    settings.budget = Some(BudgetSettings::Ttl {
        ttl: 10 * S,
        min_per_second: 3,
        ratio: 0.2,
    });
    layer.reconfigure(settings).unwrap();
    assert_eq!(layer.settings(), settings);
    assert_eq!(layer.budget_available(), Some(30), "3 a second over 10 s");

    // A budget of the other kind, or none: refused, and nothing changes.
    let tokens = BudgetSettings::Tokens {
        max_tokens: 10,
        token_ratio: 0.1,
    };
    for budget in [Some(tokens), None] {
        let mut wrong = settings;
        wrong.max_attempts = 5;
        wrong.budget = budget;
        assert_eq!(layer.reconfigure(wrong).unwrap_err().field(), "budget");
        assert_eq!(layer.settings(), settings, "left as it was");
    }

    let without = RetryLayer::builder().build().unwrap();
    let mut settings = without.settings();
    settings.max_attempts = 5;
    without.reconfigure(settings).unwrap();
    assert_eq!(without.max_attempts(), 5);
    settings.budget = Some(tokens);
    assert_eq!(without.reconfigure(settings).unwrap_err().field(), "budget");
}

#[test]
fn debug_shows_the_retry_its_builder_and_its_services() {
    let backoff = Backoff::constant(20 * MS);
    let builder = RetryLayer::builder().max_attempts(4).backoff(backoff);
    assert!(
        format!("{builder:?}")
            .starts_with("RetryBuilder { settings: Given { settings: Settings { max_attempts: 4, "),
        "{builder:?}"
    );
    let layer = builder.name("reads").build().unwrap();
    let retry = format!(
        "Retry {{ name: \"reads\", max_attempts: 4, backoff: {backoff:?}, deadline: None, \
         max_pushback: 60s, budget: None, .. }}"
    );
    assert_eq!(
        format!("{layer:?}"),
        format!("RetryLayer {{ retry: {retry} }}")
    );
    let service = layer.layer(7u8);
    assert_eq!(
        format!("{service:?}"),
        format!("Retry {{ inner: 7, retry: {retry} }}")
    );
}
