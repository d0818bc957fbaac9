//! Retry budgets: a bound on retries relative to traffic, so that an outage
//! does not multiply the load on the failing service.

use std::{fmt, time::Duration};

use super::{layer::LAYER, settings::BudgetSettings};
use crate::{
    clock::Instant,
    error::{ConfigError, check},
    sync::{Arc, Mutex, lock},
};

/// Fixed-point unit of the budgets: one retry is `UNIT`.
const UNIT: u64 = 1_000_000;

/// How many slots a TTL budget's window is kept in.
const SLOTS: u64 = 10;

/// A retry budget, shared by every clone of the layers given it: a cheap
/// handle to one state.
///
/// - [`RetryBudget::ttl`]: every request deposits `ratio` of a retry, every
///   retry withdraws one, and deposits expire after `ttl`; on top of that,
///   `min_per_second` retries a second are always allowed. Whenever a retry
///   is allowed, the retries of the last `ttl` (it included) are within
///   `min_per_second · ttl + ratio · requests of the last ttl`; the window
///   moves in tenths of `ttl`. The
///   ratio is kept exactly to six decimal places in integer arithmetic, so
///   a fractional ratio allows what it says — 0.1 is one retry per ten
///   requests, not more (tower's `TpsBudget` over-allows fractional ratios,
///   tower#857).
/// - [`RetryBudget::tokens`]: gRPC's retry throttling. The budget starts
///   full at `max_tokens`; each failed attempt takes a token, each success
///   gives back `token_ratio`; retries are allowed only while more than half
///   the tokens remain.
///
/// An exhausted budget refuses the retry at once — the caller gets the last
/// attempt's result, and a
/// [`BudgetExhausted`](crate::observe::EventKind::BudgetExhausted) event is
/// emitted. Nothing waits for a budget.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::{clock::Instant, retry::RetryBudget};
///
/// // Retries may add 10 % to the traffic of the last 10 s, and 1 a second.
/// let budget = RetryBudget::ttl(Duration::from_secs(10), 1, 0.1)?;
/// let now = Instant::ZERO;
/// assert_eq!(budget.available(now), 10); // the reserve: 1 a second for 10 s
/// for _ in 0..100 {
///     budget.deposit(now);
/// }
/// assert_eq!(budget.available(now), 20);
/// assert!(budget.withdraw(now));
/// assert_eq!(budget.available(now), 19);
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct RetryBudget {
    inner: Arc<Mutex<Budget>>,
}

#[expect(
    clippy::large_enum_variant,
    reason = "one per budget, behind its Arc: boxing would only add a pointer chase"
)]
enum Budget {
    Ttl(Ttl),
    Tokens(Tokens),
}

/// Deposits and withdrawals in slots of `ttl / SLOTS`.
#[derive(Clone)]
struct Ttl {
    /// The numbers it was made with.
    numbers: BudgetSettings,
    /// Nanoseconds per slot.
    slot: u64,
    /// The reserve, in units.
    reserve: u64,
    /// Units a request deposits.
    ratio: u64,
    /// `(slot number, deposits, withdrawals)`, by slot number modulo SLOTS.
    slots: [(u64, u64, u64); SLOTS as usize],
}

#[derive(Clone)]
struct Tokens {
    /// The numbers it was made with.
    numbers: BudgetSettings,
    /// In units.
    max: u64,
    ratio: u64,
    tokens: u64,
}

impl RetryBudget {
    /// A budget of `min_per_second` retries a second plus `ratio` of the
    /// requests made within the last `ttl`.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when `ttl` is zero or over a day, or `ratio` is not
    /// in `[0, 1000]`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let err = palisade::retry::RetryBudget::ttl(Duration::from_secs(10), 0, f64::NAN).unwrap_err();
    /// assert_eq!(err.field(), "budget.ratio");
    /// ```
    pub fn ttl(ttl: Duration, min_per_second: u32, ratio: f64) -> Result<RetryBudget, ConfigError> {
        check::positive(LAYER, "budget.ttl", ttl)?;
        if ttl > Duration::from_secs(86_400) {
            return Err(ConfigError::new(
                LAYER,
                "budget.ttl",
                format!("must be at most a day, got {ttl:?}"),
            ));
        }
        let ratio = units(LAYER, "budget.ratio", ratio)?;
        let ttl_nanos = ttl.as_nanos();
        // min_per_second · ttl retries, in units, rounded down.
        let reserve = u128::from(min_per_second) * ttl_nanos * u128::from(UNIT) / 1_000_000_000;
        Ok(RetryBudget::new(Budget::Ttl(Ttl {
            numbers: BudgetSettings::Ttl {
                ttl,
                min_per_second,
                ratio: ratio as f64 / UNIT as f64,
            },
            slot: u64::try_from(ttl_nanos.div_ceil(u128::from(SLOTS))).unwrap_or(u64::MAX),
            reserve: u64::try_from(reserve).unwrap_or(u64::MAX),
            ratio,
            slots: [(u64::MAX, 0, 0); SLOTS as usize],
        })))
    }

    /// gRPC's retry throttling: `max_tokens` tokens, `token_ratio` back per
    /// success, one taken per failure, retries while more than half remain.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when `max_tokens` is 0 or over 1000, or
    /// `token_ratio` is not in `(0, 1000]`.
    ///
    /// ```
    /// use palisade::{clock::Instant, retry::RetryBudget};
    ///
    /// let budget = RetryBudget::tokens(10, 0.1)?;
    /// for _ in 0..5 {
    ///     budget.record(false); // five failures: 5 tokens left, not more than half
    /// }
    /// assert!(!budget.withdraw(Instant::ZERO));
    /// budget.record(true); // 5.1 tokens
    /// assert!(budget.withdraw(Instant::ZERO));
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn tokens(max_tokens: u32, token_ratio: f64) -> Result<RetryBudget, ConfigError> {
        if !(1..=1000).contains(&max_tokens) {
            return Err(ConfigError::new(
                LAYER,
                "budget.max_tokens",
                format!("must be in 1..=1000, got {max_tokens}"),
            ));
        }
        let ratio = units(LAYER, "budget.token_ratio", token_ratio)?;
        if ratio == 0 {
            return Err(ConfigError::new(
                LAYER,
                "budget.token_ratio",
                "must be greater than zero",
            ));
        }
        let max = u64::from(max_tokens) * UNIT;
        Ok(RetryBudget::new(Budget::Tokens(Tokens {
            numbers: BudgetSettings::Tokens {
                max_tokens,
                token_ratio,
            },
            max,
            ratio,
            tokens: max,
        })))
    }

    fn new(budget: Budget) -> RetryBudget {
        RetryBudget {
            inner: Arc::new(Mutex::new(budget)),
        }
    }

    /// Takes the numbers of `numbers` (a budget of the same kind, made
    /// with [`ttl`](Self::ttl) or [`tokens`](Self::tokens), which checked
    /// them) at `now`, keeping this budget's state: every layer given this
    /// budget sees the change at its next request. What is kept: a TTL
    /// budget its deposits and withdrawals (worth the new ratio from now on;
    /// with a new TTL, each tenth of the old window counts as made at its
    /// last instant — `now` at the latest — for the new TTL); a token budget
    /// its tokens (at most the new maximum).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] on `budget` when `numbers` is of the other kind.
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::{clock::Instant, retry::RetryBudget};
    ///
    /// let budget = RetryBudget::ttl(Duration::from_secs(10), 0, 0.1)?;
    /// for _ in 0..100 {
    ///     budget.deposit(Instant::ZERO);
    /// }
    /// assert_eq!(budget.available(Instant::ZERO), 10);
    /// budget.reconfigure(&RetryBudget::ttl(Duration::from_secs(10), 0, 0.2)?, Instant::ZERO)?;
    /// assert_eq!(budget.available(Instant::ZERO), 20); // the same 100 requests
    /// let tokens = RetryBudget::tokens(10, 0.1)?;
    /// assert_eq!(budget.reconfigure(&tokens, Instant::ZERO).unwrap_err().field(), "budget");
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn reconfigure(&self, numbers: &RetryBudget, now: Instant) -> Result<(), ConfigError> {
        if Arc::ptr_eq(&self.inner, &numbers.inner) {
            return Ok(());
        }
        let new = match &*lock(&numbers.inner) {
            Budget::Ttl(ttl) => Budget::Ttl(ttl.clone()),
            Budget::Tokens(tokens) => Budget::Tokens(tokens.clone()),
        };
        let mut budget = lock(&self.inner);
        match (&mut *budget, new) {
            (Budget::Ttl(old), Budget::Ttl(new)) => {
                let mut carried = Ttl {
                    slots: [(u64::MAX, 0, 0); SLOTS as usize],
                    ..new
                };
                // Oldest first: a newer slot that takes an older one's place
                // in the ring has left the older out of its window.
                let mut slots = old.slots;
                slots.sort_unstable_by_key(|&(number, ..)| number);
                let current = now.as_nanos() / old.slot;
                for (number, deposits, withdrawals) in slots {
                    // Only what the old window still holds: a longer one
                    // does not count again what it has let go.
                    if number == u64::MAX || current.saturating_sub(number) >= SLOTS {
                        continue;
                    }
                    let last = number.saturating_add(1).saturating_mul(old.slot) - 1;
                    let slot = carried.slot_at(last.min(now.as_nanos()));
                    slot.1 = slot.1.saturating_add(deposits);
                    slot.2 = slot.2.saturating_add(withdrawals);
                }
                *old = carried;
            }
            (Budget::Tokens(old), Budget::Tokens(new)) => {
                *old = Tokens {
                    tokens: old.tokens.min(new.max),
                    ..new
                };
            }
            _ => {
                return Err(ConfigError::new(
                    LAYER,
                    "budget",
                    "a budget keeps its kind (TTL or tokens); give the layer another budget \
                     when built",
                ));
            }
        }
        Ok(())
    }

    /// A request was made at `now` (TTL budgets: it deposits its share).
    ///
    /// ```
    /// # use std::time::Duration;
    /// use palisade::{clock::Instant, retry::RetryBudget};
    /// let budget = RetryBudget::ttl(Duration::from_secs(1), 0, 0.5)?;
    /// budget.deposit(Instant::ZERO);
    /// budget.deposit(Instant::ZERO);
    /// assert_eq!(budget.available(Instant::ZERO), 1);
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn deposit(&self, now: Instant) {
        if let Budget::Ttl(ttl) = &mut *lock(&self.inner) {
            let deposits = &mut ttl.slot_at(now.as_nanos()).1;
            *deposits = deposits.saturating_add(1);
        }
    }

    /// An attempt ended: succeeded or failed (token budgets: a success gives
    /// back `token_ratio`, a failure takes a token).
    ///
    /// ```
    /// use palisade::{clock::Instant, retry::RetryBudget};
    /// let budget = RetryBudget::tokens(2, 1.0)?;
    /// budget.record(false);
    /// assert!(!budget.withdraw(Instant::ZERO));
    /// budget.record(true);
    /// assert!(budget.withdraw(Instant::ZERO));
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn record(&self, success: bool) {
        if let Budget::Tokens(tokens) = &mut *lock(&self.inner) {
            tokens.tokens = if success {
                (tokens.tokens + tokens.ratio).min(tokens.max)
            } else {
                tokens.tokens.saturating_sub(UNIT)
            };
        }
    }

    /// Spends a retry at `now`, if the budget allows one.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use palisade::{clock::Instant, retry::RetryBudget};
    /// let budget = RetryBudget::ttl(Duration::from_secs(1), 0, 1.0)?;
    /// assert!(!budget.withdraw(Instant::ZERO));
    /// budget.deposit(Instant::ZERO);
    /// assert!(budget.withdraw(Instant::ZERO));
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn withdraw(&self, now: Instant) -> bool {
        match &mut *lock(&self.inner) {
            Budget::Ttl(ttl) => {
                if ttl.balance(now.as_nanos()) < UNIT {
                    return false;
                }
                let withdrawals = &mut ttl.slot_at(now.as_nanos()).2;
                *withdrawals = withdrawals.saturating_add(1);
                true
            }
            Budget::Tokens(tokens) => tokens.tokens * 2 > tokens.max,
        }
    }

    /// How many retries the budget would allow at `now` (whole retries).
    ///
    /// ```
    /// # use std::time::Duration;
    /// use palisade::{clock::Instant, retry::RetryBudget};
    /// let budget = RetryBudget::ttl(Duration::from_secs(10), 2, 0.0)?;
    /// assert_eq!(budget.available(Instant::ZERO), 20);
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn available(&self, now: Instant) -> u64 {
        match &mut *lock(&self.inner) {
            Budget::Ttl(ttl) => ttl.balance(now.as_nanos()) / UNIT,
            Budget::Tokens(tokens) => {
                // Retries until no more than half remain — without success.
                let half = tokens.max / 2;
                tokens.tokens.saturating_sub(half).div_ceil(UNIT)
            }
        }
    }
}

impl RetryBudget {
    /// The numbers it was made with (or last given by
    /// [`reconfigure`](Self::reconfigure)); a TTL budget's ratio as kept,
    /// to six decimal places.
    ///
    /// ```
    /// use palisade::retry::{BudgetSettings, RetryBudget};
    /// let budget = RetryBudget::tokens(10, 0.5)?;
    /// assert_eq!(budget.settings(), BudgetSettings::Tokens { max_tokens: 10, token_ratio: 0.5 });
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn settings(&self) -> BudgetSettings {
        match &*lock(&self.inner) {
            Budget::Ttl(ttl) => ttl.numbers,
            Budget::Tokens(tokens) => tokens.numbers,
        }
    }

    /// Its numbers by name, as the events of a change report them: a TTL
    /// budget's `budget.ttl` (seconds), `budget.reserve` (retries) and
    /// `budget.ratio`; a token budget's `budget.max_tokens` and
    /// `budget.token_ratio`.
    pub(crate) fn numbers(&self) -> Vec<(&'static str, f64)> {
        let unit = |n: u64| n as f64 / UNIT as f64;
        match &*lock(&self.inner) {
            Budget::Ttl(ttl) => vec![
                (
                    "budget.ttl",
                    Duration::from_nanos(ttl.slot * SLOTS).as_secs_f64(),
                ),
                ("budget.reserve", unit(ttl.reserve)),
                ("budget.ratio", unit(ttl.ratio)),
            ],
            Budget::Tokens(tokens) => vec![
                ("budget.max_tokens", unit(tokens.max)),
                ("budget.token_ratio", unit(tokens.ratio)),
            ],
        }
    }
}

impl Ttl {
    /// The slot of `now`, emptied first if it last held an older slot.
    fn slot_at(&mut self, now: u64) -> &mut (u64, u64, u64) {
        let number = now / self.slot;
        let slot = &mut self.slots[(number % SLOTS) as usize];
        if slot.0 != number {
            *slot = (number, 0, 0);
        }
        slot
    }

    /// The units available at `now`: the reserve, plus the deposits, minus
    /// the withdrawals of the slots still in the window.
    fn balance(&self, now: u64) -> u64 {
        let current = now / self.slot;
        let (deposits, withdrawals) = self
            .slots
            .iter()
            .filter(|(number, ..)| *number <= current && current - number < SLOTS)
            .fold((0u64, 0u64), |(d, w), (_, deposits, withdrawals)| {
                (d.saturating_add(*deposits), w.saturating_add(*withdrawals))
            });
        // Saturating: a reserve of a billion a second over a day is beyond
        // `u64`'s units, and must stay "plenty", not wrap to a few.
        self.reserve
            .saturating_add(deposits.saturating_mul(self.ratio))
            .saturating_sub(withdrawals.saturating_mul(UNIT))
    }
}

/// `ratio` in units (six decimal places, rounded to the nearest); in
/// `[0, 1000]`.
fn units(layer: &'static str, field: &'static str, ratio: f64) -> Result<u64, ConfigError> {
    if !(0.0..=1000.0).contains(&ratio) {
        return Err(ConfigError::new(
            layer,
            field,
            format!("must be in [0, 1000], got {ratio}"),
        ));
    }
    Ok((ratio * UNIT as f64).round() as u64)
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &*lock(&self.inner) {
            Budget::Ttl(_) => "ttl",
            Budget::Tokens(_) => "tokens",
        };
        f.debug_struct("RetryBudget")
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}
