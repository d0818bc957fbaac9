//! What a rate limiter is told: the algorithm and its numbers, the mode, the
//! keys. Validated once, when the layer is built.

use std::time::Duration;

use super::{
    core::Algorithm, fixed_window::fixed_window, keyed::Keyed, leaky_bucket::LeakyBucket,
    sliding_log::SlidingLog, sliding_window::Segments, token_bucket::TokenBucket,
};
use crate::{
    clock::nanos,
    error::{ConfigError, check},
};

/// The most shards a keyed table is split in.
const MAX_SHARDS: usize = 1 << 16;

pub(crate) const LAYER: &str = "rate_limit";

/// A refill rate: `tokens` every `per`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::rate_limit::Rate;
///
/// assert_eq!(Rate::per_second(100), Rate::new(100, Duration::from_secs(1)));
/// assert_eq!(Rate::per_minute(30).interval(), Duration::from_secs(2));
/// ```
///
/// With feature `serde`, a rate is the string `"tokens/period"`: `"100/s"`,
/// `"600/min"`, `"5/250ms"` (a period without a number is one of its unit).
///
/// ```
/// use palisade::rate_limit::Rate;
/// use std::time::Duration;
///
/// assert_eq!("5/250ms".parse::<Rate>(), Ok(Rate::new(5, Duration::from_millis(250))));
/// assert_eq!("100/s".parse::<Rate>(), Ok(Rate::per_second(100)));
/// assert_eq!(Rate::per_minute(30).to_string(), "30/1m");
/// assert!("fast".parse::<Rate>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    tokens: u32,
    per: Duration,
}

/// Why a string is not a [`Rate`].
///
/// ```
/// let err = "100 per second".parse::<palisade::rate_limit::Rate>().unwrap_err();
/// assert!(err.to_string().contains("tokens/period"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a rate is `tokens/period`, such as `100/s` or `5/250ms`: {0}")]
pub struct ParseRateError(String);

impl std::str::FromStr for Rate {
    type Err = ParseRateError;

    fn from_str(text: &str) -> Result<Rate, ParseRateError> {
        let (tokens, per) = text
            .split_once('/')
            .ok_or_else(|| ParseRateError(format!("no `/` in {text:?}")))?;
        let tokens = tokens
            .trim()
            .parse()
            .map_err(|err| ParseRateError(format!("tokens {tokens:?}: {err}")))?;
        let per = per.trim();
        let per = if per.starts_with(|c: char| c.is_ascii_digit()) {
            humantime_parse(per)
        } else {
            humantime_parse(&format!("1{per}"))
        }
        .map_err(|err| ParseRateError(format!("period {per:?}: {err}")))?;
        Ok(Rate::new(tokens, per))
    }
}

/// A duration read as humans write it (`"250ms"`, `"1m 30s"`).
fn humantime_parse(text: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(text)
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}",
            self.tokens,
            humantime::format_duration(self.per)
        )
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Rate {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Rate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Rate, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Rate {
    /// `tokens` every `per`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let rate = palisade::rate_limit::Rate::new(5, Duration::from_millis(10));
    /// assert_eq!(rate.interval(), Duration::from_millis(2));
    /// ```
    pub const fn new(tokens: u32, per: Duration) -> Rate {
        Rate { tokens, per }
    }

    /// `tokens` a second.
    ///
    /// ```
    /// let _ = palisade::rate_limit::Rate::per_second(100);
    /// ```
    pub const fn per_second(tokens: u32) -> Rate {
        Rate::new(tokens, Duration::from_secs(1))
    }

    /// `tokens` a minute.
    ///
    /// ```
    /// let _ = palisade::rate_limit::Rate::per_minute(600);
    /// ```
    pub const fn per_minute(tokens: u32) -> Rate {
        Rate::new(tokens, Duration::from_secs(60))
    }

    /// The tokens of each period.
    #[cfg(feature = "redis")]
    pub(crate) const fn tokens(&self) -> u32 {
        self.tokens
    }

    /// The period.
    #[cfg(feature = "redis")]
    pub(crate) const fn per(&self) -> Duration {
        self.per
    }

    /// The time between two tokens, rounded up to a whole nanosecond (the
    /// bucket never refills faster than asked). Zero tokens: the whole
    /// period.
    ///
    /// ```
    /// let rate = palisade::rate_limit::Rate::per_second(3);
    /// assert_eq!(rate.interval().as_nanos(), 333_333_334);
    /// ```
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(
            u64::try_from(self.per.as_nanos().div_ceil(u128::from(self.tokens.max(1))))
                .unwrap_or(u64::MAX),
        )
    }
}

/// What to do with a request the key function finds no key in (for
/// example, no peer address because the server was not set up to record
/// it).
///
/// # Examples
///
/// ```
/// use palisade::rate_limit::{MissingKey, RateLimitLayer};
///
/// let _ = RateLimitLayer::builder()
///     .key(|request: &String| request.split_once(':').map(|(tenant, _)| tenant.to_owned()))
///     .missing_key(MissingKey::Shared);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MissingKey {
    /// Refuse it with a [`KeyMissing`](crate::error::KeyMissing) error
    /// (the default): a misconfigured key function shows at once.
    #[default]
    Reject,
    /// Count every request without a key against one limit they share.
    Shared,
    /// Let it through, unlimited.
    Allow,
}

/// A limit: the algorithm and its numbers, as the builder's
/// [`token_bucket`](super::RateLimitBuilder::token_bucket),
/// [`sliding_window`](super::RateLimitBuilder::sliding_window),
/// [`sliding_log`](super::RateLimitBuilder::sliding_log),
/// [`fixed_window`](super::RateLimitBuilder::fixed_window) and
/// [`leaky_bucket`](super::RateLimitBuilder::leaky_bucket) take them (see
/// those for what each number means). What
/// [`RateLimitLayer::limit`](super::RateLimitLayer::limit) reads and
/// [`RateLimitLayer::set_limit`](super::RateLimitLayer::set_limit) changes
/// on a running layer.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::rate_limit::{Limit, Rate, RateLimitLayer};
///
/// let limit = Limit::TokenBucket { rate: Rate::per_second(100), burst: 20 };
/// let layer = RateLimitLayer::builder().limit(limit).build()?;
/// assert_eq!(layer.limit(), limit);
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
///
/// With feature `serde`, a limit reads and writes as one of
/// `token_bucket = { rate = "100/s", burst = 20 }`,
/// `sliding_window = { limit = 1000, window = "1m", segments = 12 }`,
/// `sliding_log = { limit = 10, window = "1s" }`,
/// `fixed_window = { limit = 100, window = "1s" }`,
/// `leaky_bucket = { rate = "10/s", queue = 50 }` (in TOML), checked as the
/// builder checks it: a zero burst is refused while reading, naming
/// `burst`.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// A token bucket of `burst` tokens refilled at `rate`.
    TokenBucket {
        /// The refill rate.
        rate: Rate,
        /// How many tokens the bucket holds.
        burst: u32,
    },
    /// A sliding window counter: `limit` per `window`, in `segments`.
    SlidingWindow {
        /// The most a window admits.
        limit: u32,
        /// The window's length.
        window: Duration,
        /// How many counters divide it.
        segments: u32,
    },
    /// A sliding log: exactly `limit` per sliding `window`.
    SlidingLog {
        /// The most a window admits.
        limit: u32,
        /// The window's length.
        window: Duration,
    },
    /// A fixed window: `limit` per window, aligned on the clock's zero.
    FixedWindow {
        /// The most a window admits.
        limit: u32,
        /// The window's length.
        window: Duration,
    },
    /// A leaky bucket: requests released at `rate`, evenly, at most
    /// `queue` in the bucket.
    LeakyBucket {
        /// The release rate.
        rate: Rate,
        /// How many requests (units of cost) the bucket holds: the one
        /// released last, while its slot lasts, and those waiting.
        queue: u32,
    },
}

#[cfg(feature = "serde")]
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(remote = "Limit", rename_all = "snake_case", deny_unknown_fields)]
enum Form {
    TokenBucket {
        rate: Rate,
        burst: u32,
    },
    SlidingWindow {
        limit: u32,
        #[serde(with = "humantime_serde")]
        window: Duration,
        segments: u32,
    },
    SlidingLog {
        limit: u32,
        #[serde(with = "humantime_serde")]
        window: Duration,
    },
    FixedWindow {
        limit: u32,
        #[serde(with = "humantime_serde")]
        window: Duration,
    },
    LeakyBucket {
        rate: Rate,
        queue: u32,
    },
}

#[cfg(feature = "serde")]
crate::settings::checked_serde!(Limit, Form, |limit| {
    let config = Config {
        limit: *limit,
        ..Config::default()
    };
    config.algorithm(false, false).map(drop)
});

impl Limit {
    /// The algorithm's name.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Limit::TokenBucket { .. } => "token bucket",
            Limit::SlidingWindow { .. } => "sliding window",
            Limit::SlidingLog { .. } => "sliding log",
            Limit::FixedWindow { .. } => "fixed window",
            Limit::LeakyBucket { .. } => "leaky bucket",
        }
    }

    /// Refuses `new` unless it is of this limit's algorithm: a running
    /// limit changes its numbers only.
    pub(crate) fn same_kind(&self, new: Limit) -> Result<(), ConfigError> {
        if std::mem::discriminant(self) == std::mem::discriminant(&new) {
            return Ok(());
        }
        Err(ConfigError::new(
            LAYER,
            "algorithm",
            format!(
                "a running limit keeps its algorithm ({}); change its numbers, or build another \
                 layer",
                self.kind()
            ),
        ))
    }

    /// Its numbers, by name, as its change events report them: rates in
    /// tokens a second, windows in seconds.
    pub(crate) fn numbers(&self) -> Vec<(&'static str, f64)> {
        match *self {
            Limit::TokenBucket { rate, burst } => vec![
                ("rate", f64::from(rate.tokens) / rate.per.as_secs_f64()),
                ("burst", f64::from(burst)),
            ],
            Limit::SlidingWindow {
                limit,
                window,
                segments,
            } => vec![
                ("limit", f64::from(limit)),
                ("window", window.as_secs_f64()),
                ("segments", f64::from(segments)),
            ],
            Limit::SlidingLog { limit, window } | Limit::FixedWindow { limit, window } => vec![
                ("limit", f64::from(limit)),
                ("window", window.as_secs_f64()),
            ],
            Limit::LeakyBucket { rate, queue } => vec![
                ("rate", f64::from(rate.tokens) / rate.per.as_secs_f64()),
                ("queue", f64::from(queue)),
            ],
        }
    }
}

/// What happens to a request over the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Reject,
    Wait(Duration),
    Backpressure,
}

impl Mode {
    /// How long a request may wait for capacity, in nanoseconds.
    pub(crate) fn max_wait(self) -> u64 {
        match self {
            Mode::Wait(wait) => nanos(wait),
            Mode::Reject | Mode::Backpressure => 0,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) limit: Limit,
    pub(crate) mode: Mode,
    pub(crate) max_keys: usize,
    pub(crate) shards: usize,
    pub(crate) missing_key: MissingKey,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            limit: Limit::TokenBucket {
                rate: Rate::per_second(100),
                burst: 100,
            },
            mode: Mode::Reject,
            max_keys: 100_000,
            shards: 16,
            missing_key: MissingKey::Reject,
        }
    }
}

impl Config {
    /// How long a request may wait, in nanoseconds: a leaky bucket's
    /// requests wait for their slots unless bounded.
    pub(crate) fn max_wait(&self) -> u64 {
        match (self.limit, self.mode) {
            (Limit::LeakyBucket { .. }, Mode::Reject) => u64::MAX,
            (_, mode) => mode.max_wait(),
        }
    }

    /// Checks the configuration and makes the algorithm. `keyed` and
    /// `weighted` say whether a key function and a cost function were given.
    pub(crate) fn algorithm(&self, keyed: bool, weighted: bool) -> Result<Algorithm, ConfigError> {
        if let Mode::Wait(wait) = self.mode {
            check::positive(LAYER, "wait_up_to", wait)?;
            check::at_most_longest(LAYER, "wait_up_to", wait)?;
        }
        if self.mode == Mode::Backpressure && matches!(self.limit, Limit::LeakyBucket { .. }) {
            return Err(ConfigError::new(
                LAYER,
                "backpressure",
                "a leaky bucket queues its requests itself: each call waits for its slot (bound \
                 the wait with `wait_up_to`)",
            ));
        }
        if self.mode == Mode::Backpressure && (keyed || weighted) {
            return Err(ConfigError::new(
                LAYER,
                "backpressure",
                "needs a shared limit of one unit a request: `poll_ready` cannot see the \
                 request's key or cost (use `wait_up_to` instead)",
            ));
        }
        if keyed {
            check::at_least_one(LAYER, "max_keys", count(self.max_keys))?;
            if !self.shards.is_power_of_two() || self.shards > MAX_SHARDS {
                return Err(ConfigError::new(
                    LAYER,
                    "shards",
                    format!(
                        "must be a power of two and at most {MAX_SHARDS}, got {}",
                        self.shards
                    ),
                ));
            }
            if self.shards > self.max_keys {
                return Err(ConfigError::new(
                    LAYER,
                    "shards",
                    format!(
                        "must be at most max_keys ({}): each shard holds at least one key, got {}",
                        self.max_keys, self.shards
                    ),
                ));
            }
        }
        let algorithm = self.make(self.mode.max_wait())?;
        let memory = if keyed {
            Keyed::memory(&algorithm, self.max_keys, self.shards)
        } else {
            algorithm.heap_bytes()
        };
        let field = match (keyed, self.limit) {
            (true, _) => "max_keys",
            (false, Limit::SlidingWindow { .. }) => "segments",
            (false, Limit::LeakyBucket { .. }) => "queue",
            (false, _) => "limit",
        };
        within_memory(field, memory, || self.limit_name())?;
        Ok(algorithm)
    }

    fn limit_name(&self) -> String {
        match self.limit {
            Limit::SlidingWindow { segments, .. } => {
                format!("sliding window of {segments} segments")
            }
            Limit::SlidingLog { limit, .. } => format!("sliding log of up to {limit} entries"),
            Limit::LeakyBucket { queue, .. } => format!("leaky bucket of up to {queue} waiting"),
            limit => limit.kind().to_owned(),
        }
    }

    /// The algorithm the numbers describe, checked.
    fn make(&self, max_wait: u64) -> Result<Algorithm, ConfigError> {
        Ok(match self.limit {
            Limit::TokenBucket { rate, burst } => {
                let interval = bucket(rate, ("burst", "refills"), burst)?;
                Algorithm::TokenBucket(TokenBucket::new(interval, u64::from(burst)))
            }
            Limit::LeakyBucket { rate, queue } => {
                let interval = bucket(rate, ("queue", "drains"), queue)?;
                Algorithm::LeakyBucket(LeakyBucket::new(interval, u64::from(queue)))
            }
            Limit::SlidingWindow {
                limit,
                window,
                segments,
            } => {
                check::at_least_one(LAYER, "limit", limit)?;
                check::positive(LAYER, "window", window)?;
                check::at_most_longest(LAYER, "window", window)?;
                check::at_least_one(LAYER, "segments", segments)?;
                let segment = nanos(window).div_ceil(u64::from(segments));
                if u64::from(segments) > nanos(window) || segments > 4096 {
                    return Err(ConfigError::new(
                        LAYER,
                        "segments",
                        format!(
                            "must be at most 4096 and at most the window in nanoseconds, got {segments}"
                        ),
                    ));
                }
                Algorithm::Segments(Segments::new(
                    u64::from(limit),
                    segment,
                    u64::from(segments) + 1,
                    ahead(max_wait, segment)?,
                ))
            }
            Limit::SlidingLog { limit, window } => {
                check::at_least_one(LAYER, "limit", limit)?;
                check::positive(LAYER, "window", window)?;
                check::at_most_longest(LAYER, "window", window)?;
                Algorithm::SlidingLog(SlidingLog::new(u64::from(limit), nanos(window)))
            }
            Limit::FixedWindow { limit, window } => {
                check::at_least_one(LAYER, "limit", limit)?;
                check::positive(LAYER, "window", window)?;
                check::at_most_longest(LAYER, "window", window)?;
                let window = nanos(window);
                Algorithm::Segments(fixed_window(
                    u64::from(limit),
                    window,
                    ahead(max_wait, window)?,
                ))
            }
        })
    }
}

/// Checks a bucket of `size` units at `rate`, `field` naming the size and
/// what the bucket does at the rate: the nanoseconds a unit takes.
fn bucket(rate: Rate, (field, verb): (&'static str, &str), size: u32) -> Result<u64, ConfigError> {
    check::at_least_one(LAYER, "rate.tokens", rate.tokens)?;
    check::positive(LAYER, "rate.per", rate.per)?;
    check::at_most_longest(LAYER, "rate.per", rate.per)?;
    check::at_least_one(LAYER, field, size)?;
    let interval = nanos(rate.interval());
    if u128::from(rate.tokens) > rate.per.as_nanos() {
        return Err(ConfigError::new(
            LAYER,
            "rate",
            "must be at most one token a nanosecond",
        ));
    }
    if interval
        .checked_mul(u64::from(size))
        .is_none_or(|t| t > nanos(check::LONGEST))
    {
        return Err(ConfigError::new(
            LAYER,
            field,
            format!("{verb} in more than 100 years at {rate:?}, got {size}"),
        ));
    }
    Ok(interval)
}

/// Refuses a limit that may take more than [`check::MAX_MEMORY`]: `memory`
/// bytes, made so by `field`, for the limit `name` names.
fn within_memory(
    field: &'static str,
    memory: u128,
    name: impl FnOnce() -> String,
) -> Result<(), ConfigError> {
    if memory <= check::MAX_MEMORY {
        return Ok(());
    }
    Err(ConfigError::new(
        LAYER,
        field,
        format!(
            "makes a limit that may take {} of memory ({}); at most {} (fewer keys, a lower \
             limit, or a sliding window instead of a log)",
            check::bytes(memory),
            name(),
            check::bytes(check::MAX_MEMORY),
        ),
    ))
}

/// How many segments past the current one a wait of `max_wait` may book.
fn ahead(max_wait: u64, segment: u64) -> Result<u64, ConfigError> {
    if max_wait == 0 {
        return Ok(0);
    }
    let ahead = max_wait / segment + 1;
    if ahead > 1 << 16 {
        return Err(ConfigError::new(
            LAYER,
            "wait_up_to",
            format!(
                "spans {ahead} window segments; at most 65536 can hold reservations \
                 (wait less, or use longer segments)"
            ),
        ));
    }
    Ok(ahead)
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// What the limiter would answer a request now, asked without consuming
/// anything: see [`RateLimitLayer::check`](super::RateLimitLayer::check).
///
/// ```
/// use palisade::rate_limit::{Check, Rate, RateLimitLayer};
/// let layer = RateLimitLayer::builder().token_bucket(Rate::per_second(10), 5).build()?;
/// assert_eq!(layer.check(5), Check::Admitted);
/// assert_eq!(layer.check(6), Check::Never);
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// It would be admitted at once.
    Admitted,
    /// It would be admitted after this wait, were nothing else admitted
    /// meanwhile (what a refusal's `retry_after` would say).
    After(Duration),
    /// It costs more than the limit ever admits at once.
    Never,
}

impl Check {
    /// The answer to a request, from the decision on a copy of the state.
    pub(crate) fn from_peek(peeked: Result<(), super::core::Denied>) -> Check {
        match peeked {
            Ok(()) => Check::Admitted,
            Err(super::core::Denied::Wait(wait)) => Check::After(Duration::from_nanos(wait)),
            Err(super::core::Denied::Never) => Check::Never,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_may_take_1_gib_and_not_a_byte_more() {
        let name = || "sliding log of up to 10 entries".to_owned();
        assert!(within_memory("limit", check::MAX_MEMORY, name).is_ok());
        let err = within_memory("limit", check::MAX_MEMORY + 1, name).unwrap_err();
        assert_eq!(err.field(), "limit");
        assert_eq!(
            err.rule(),
            "makes a limit that may take 1.0 GiB of memory (sliding log of up to 10 entries); at \
             most 1.0 GiB (fewer keys, a lower limit, or a sliding window instead of a log)"
        );
    }

    #[cfg(feature = "redis")]
    #[test]
    fn a_rate_gives_its_numbers_to_the_redis_store() {
        let rate = Rate::new(7, Duration::from_millis(20));
        assert_eq!((rate.tokens(), rate.per()), (7, Duration::from_millis(20)));
    }
}
