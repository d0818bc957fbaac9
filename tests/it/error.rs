//! Rejections: downcasting, the source chain, messages; the config error.

use std::{error::Error, fmt, time::Duration};

use palisade::error::{
    BudgetExhausted, BulkheadFull, CircuitOpen, ConfigError, Elapsed, RateLimited, Rejection,
    RejectionKind,
};
use tower::BoxError;

/// An error of some other layer that wraps the error it was given.
#[derive(Debug)]
struct Wrapper(BoxError);

impl fmt::Display for Wrapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("wrapped")
    }
}

impl Error for Wrapper {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.0)
    }
}

fn all() -> Vec<(BoxError, RejectionKind)> {
    let wait = Some(Duration::from_millis(250));
    vec![
        (
            CircuitOpen::new("a", wait).into(),
            RejectionKind::CircuitOpen,
        ),
        (
            RateLimited::new("a", wait).into(),
            RejectionKind::RateLimited,
        ),
        (
            BulkheadFull::new("a", wait).into(),
            RejectionKind::BulkheadFull,
        ),
        (Elapsed::new("a", wait).into(), RejectionKind::Elapsed),
        (
            BudgetExhausted::new("a", wait).into(),
            RejectionKind::BudgetExhausted,
        ),
    ]
}

#[test]
fn each_rejection_is_its_own_type() {
    let errors = all();
    assert!(errors[0].0.is::<CircuitOpen>() && !errors[0].0.is::<RateLimited>());
    assert!(errors[1].0.is::<RateLimited>() && !errors[1].0.is::<CircuitOpen>());
    assert!(errors[2].0.is::<BulkheadFull>());
    assert!(errors[3].0.is::<Elapsed>());
    assert!(errors[4].0.is::<BudgetExhausted>());
    for (err, kind) in &errors {
        let found = Rejection::of(&**err).unwrap();
        assert_eq!(found.kind(), *kind);
        assert_eq!(found.name(), "a");
        assert_eq!(found.retry_after(), Some(Duration::from_millis(250)));
    }
}

#[test]
fn rejections_are_found_anywhere_in_the_source_chain() {
    for (err, kind) in all() {
        let wrapped: BoxError = Box::new(Wrapper(Box::new(Wrapper(err))));
        assert!(Rejection::of(&*wrapped).is_none());
        assert_eq!(Rejection::find(&*wrapped).unwrap().kind(), kind);
    }
    let plain: BoxError = Box::new(Wrapper("inner failure".into()));
    assert!(Rejection::find(&*plain).is_none());
}

#[test]
fn messages_are_lowercase_and_name_the_layer() {
    let messages: Vec<String> = all().iter().map(|(e, _)| e.to_string()).collect();
    assert_eq!(
        messages,
        [
            "circuit breaker `a` is open; retry after 250ms",
            "rate limiter `a` is over its limit; retry after 250ms",
            "bulkhead `a` is full; retry after 250ms",
            "timeout `a` elapsed; retry after 250ms",
            "retry budget `a` is exhausted; retry after 250ms",
        ]
    );
    assert_eq!(
        CircuitOpen::new("payments", None).to_string(),
        "circuit breaker `payments` is open"
    );
}

#[test]
fn kinds_have_distinct_labels() {
    let mut labels: Vec<_> = RejectionKind::ALL.iter().map(|k| k.as_str()).collect();
    labels.sort();
    labels.dedup();
    assert_eq!(labels.len(), RejectionKind::ALL.len());
}

#[test]
fn rejections_are_send_sync_static() {
    fn assert_bounds<T: Error + Send + Sync + 'static>() {}
    assert_bounds::<CircuitOpen>();
    assert_bounds::<RateLimited>();
    assert_bounds::<BulkheadFull>();
    assert_bounds::<Elapsed>();
    assert_bounds::<BudgetExhausted>();
    assert_bounds::<ConfigError>();
}

#[test]
fn config_error_names_layer_field_and_rule() {
    let err = ConfigError::new("retry", "max_attempts", "must be at least 1, got 0");
    assert_eq!(err.layer(), "retry");
    assert_eq!(err.field(), "max_attempts");
    assert_eq!(err.rule(), "must be at least 1, got 0");
    assert_eq!(
        err.to_string(),
        "invalid retry config: `max_attempts` must be at least 1, got 0"
    );
}
