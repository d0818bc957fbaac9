//! Every layer's settings as configuration-file data (feature `serde`):
//! humane durations, a round trip through TOML, and bad values refused
//! while read with their field's name.

use std::time::Duration;

use palisade::{bulkhead, circuit_breaker, rate_limit, retry, timeout};
use serde::{Deserialize, Serialize};

/// A service's configuration file: one table per layer.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Config {
    rate_limit: rate_limit::Limit,
    circuit_breaker: circuit_breaker::Settings,
    bulkhead: bulkhead::Settings,
    timeout: timeout::Settings,
    retry: retry::Settings,
}

const FILE: &str = r#"
[rate_limit]
token_bucket = { rate = "100/s", burst = 20 }

[circuit_breaker]
failure_model = { time_window = { window = "1m", buckets = 12 } }
failure_rate = 0.5
minimum_calls = 10
slow_calls = { threshold = "2s", rate = 0.8 }
open_duration = { initial = "5s", multiplier = 2.0, max = "5m", jitter = 0.2 }
half_open = { max_probes = 2, probes = 4, success_rate = 0.75, timeout = "10s" }

[bulkhead]
max_concurrent = 64
queue = { max_waiting = 100, max_wait = "500ms" }

[timeout]
timeout = "1m 30s"

[retry]
max_attempts = 4
backoff = { exponential = { base = "50ms", multiplier = 2.0 }, max_delay = "2s", jitter = "full" }
deadline = "5s"
max_pushback = "1m"
budget = { ttl = { ttl = "10s", min_per_second = 5, ratio = 0.2 } }
"#;

#[test]
fn every_layer_s_settings_read_from_toml_with_humane_durations() {
    let config: Config = toml::from_str(FILE).unwrap();
    assert_eq!(
        config.rate_limit,
        rate_limit::Limit::TokenBucket {
            rate: rate_limit::Rate::per_second(100),
            burst: 20
        }
    );
    let breaker = config.circuit_breaker;
    assert_eq!(
        breaker.failure_model,
        circuit_breaker::FailureModel::TimeWindow {
            window: Duration::from_secs(60),
            buckets: 12
        }
    );
    assert_eq!(
        breaker.open_duration,
        circuit_breaker::OpenDuration::exponential(
            Duration::from_secs(5),
            2.0,
            Duration::from_secs(300)
        )
        .jitter(0.2)
    );
    assert_eq!(
        breaker.slow_calls.unwrap().threshold,
        Duration::from_secs(2)
    );
    assert_eq!(
        config.bulkhead.queue.unwrap().max_wait,
        Duration::from_millis(500)
    );
    assert_eq!(config.timeout.timeout, Duration::from_secs(90));
    assert_eq!(
        config.retry.backoff,
        retry::Backoff::exponential(Duration::from_millis(50), 2.0)
            .max_delay(Duration::from_secs(2))
            .jitter(retry::Jitter::Full)
    );
    assert_eq!(
        config.retry.budget,
        Some(retry::BudgetSettings::Ttl {
            ttl: Duration::from_secs(10),
            min_per_second: 5,
            ratio: 0.2
        })
    );

    let leaky: rate_limit::Limit =
        toml::from_str("leaky_bucket = { rate = \"10/s\", queue = 50 }").unwrap();
    assert_eq!(
        leaky,
        rate_limit::Limit::LeakyBucket {
            rate: rate_limit::Rate::per_second(10),
            queue: 50
        }
    );
    assert_eq!(
        toml::from_str::<rate_limit::Limit>(&toml::to_string(&leaky).unwrap()).unwrap(),
        leaky
    );

    // And back: what is written reads the same.
    let written = toml::to_string(&config).unwrap();
    assert!(written.contains("\"100/1s\""), "{written}");
    assert!(written.contains("\"1m 30s\""), "{written}");
    assert_eq!(toml::from_str::<Config>(&written).unwrap(), config);
}

#[test]
fn settings_left_out_take_the_builders_defaults() {
    let breaker: circuit_breaker::Settings = toml::from_str("failure_rate = 0.8").unwrap();
    let mut expected = circuit_breaker::Settings::default();
    expected.failure_rate = 0.8;
    assert_eq!(breaker, expected);
    let retry: retry::Settings = toml::from_str("").unwrap();
    assert_eq!(retry, retry::Settings::default());
    let backoff: retry::Backoff = toml::from_str("constant = \"200ms\"").unwrap();
    assert_eq!(
        backoff,
        retry::Backoff::constant(Duration::from_millis(200))
    );
}

/// `text`, read as `T`, is refused with an error naming `field`.
fn refused<T: for<'de> Deserialize<'de> + std::fmt::Debug>(text: &str, field: &str) {
    let err = toml::from_str::<T>(text).expect_err(text).to_string();
    assert!(err.contains(field), "{text}: {err}");
}

#[test]
fn bad_values_are_refused_while_read_naming_their_field() {
    use rate_limit::Limit;
    refused::<Limit>("token_bucket = { rate = \"100/s\", burst = 0 }", "`burst`");
    refused::<Limit>(
        "token_bucket = { rate = \"fast\", burst = 1 }",
        "tokens/period",
    );
    refused::<Limit>("sliding_log = { limit = 10, window = \"0s\" }", "`window`");
    refused::<Limit>(
        "sliding_log = { limit = 10, window = \"10 parsecs\" }",
        "parsecs",
    );
    refused::<Limit>("leaky_bucket = { rate = \"1/s\" }", "`queue`");
    refused::<Limit>("leaky_bucket = { rate = \"1/s\", queue = 0 }", "`queue`");
    refused::<Limit>(
        "leaking_bucket = { rate = \"1/s\", queue = 5 }",
        "leaking_bucket",
    );
    refused::<circuit_breaker::Settings>("failure_rate = 1.5", "`failure_rate`");
    refused::<circuit_breaker::Settings>(
        "failure_model = { count_window = 10 }\nminimum_calls = 11",
        "`minimum_calls`",
    );
    refused::<circuit_breaker::Settings>("half_open = { probes = 0 }", "`half_open.probes`");
    refused::<circuit_breaker::Settings>("failure_rat = 0.5", "failure_rat");
    refused::<bulkhead::Settings>("max_concurrent = 0", "`max_concurrent`");
    refused::<bulkhead::Settings>(
        "max_concurrent = 4\nqueue = { max_waiting = 1, max_wait = \"0ms\" }",
        "`queue.max_wait`",
    );
    refused::<timeout::Settings>("timeout = \"0s\"", "`timeout`");
    refused::<retry::Settings>("max_attempts = 0", "`max_attempts`");
    refused::<retry::Settings>(
        "backoff = { exponential = { base = \"1s\", multiplier = 0.5 } }",
        "`backoff.multiplier`",
    );
    refused::<retry::Settings>(
        "budget = { tokens = { max_tokens = 0, token_ratio = 0.1 } }",
        "`budget.max_tokens`",
    );
    refused::<retry::Settings>("max_pushback = \"2h\"", "`max_pushback`");
}
