//! Randomness for every jittered decision, injectable and seedable.
//!
//! Layers that jitter (backoff delays, the growth of a breaker's open time)
//! draw from a [`Random`] they were given. Production code uses the default
//! [`FastRandom`], seeded from the operating system; tests pass
//! [`FastRandom::seeded`] and get the same delays on every run. Any RNG from
//! the `rand` ecosystem plugs in through [`SharedRng`].
//!
//! # Examples
//!
//! ```
//! use palisade::random::{FastRandom, Random};
//!
//! let a = FastRandom::seeded(7);
//! let b = FastRandom::seeded(7);
//! let draws: Vec<u64> = (0..3).map(|_| a.next_u64()).collect();
//! assert_eq!(draws, (0..3).map(|_| b.next_u64()).collect::<Vec<_>>());
//! ```

use std::fmt;

use crate::sync::{Arc, AtomicU64, Mutex, Ordering, lock};

/// A thread-safe source of random numbers, shared by the clones of a layer.
///
/// Takes `&self`: one source serves every clone of a layer and every thread.
/// Implement [`next_u64`](Random::next_u64); the rest is derived from it.
///
/// # Examples
///
/// A source that always returns the middle of the range, for a test that wants
/// jitter out of the way:
///
/// ```
/// use palisade::random::Random;
///
/// #[derive(Clone)]
/// struct Middle;
///
/// impl Random for Middle {
///     fn next_u64(&self) -> u64 {
///         u64::MAX / 2
///     }
/// }
///
/// assert!((Middle.next_f64() - 0.5).abs() < 1e-9);
/// ```
pub trait Random: Clone + Send + Sync + 'static {
    /// The next 64 uniformly distributed random bits.
    ///
    /// ```
    /// use palisade::random::{FastRandom, Random};
    /// let rng = FastRandom::seeded(7);
    /// assert_ne!(rng.next_u64(), rng.next_u64());
    /// ```
    fn next_u64(&self) -> u64;

    /// A uniformly distributed float in `[0, 1)`.
    ///
    /// ```
    /// use palisade::random::{FastRandom, Random};
    /// let x = FastRandom::seeded(1).next_f64();
    /// assert!((0.0..1.0).contains(&x));
    /// ```
    fn next_f64(&self) -> f64 {
        // The top 53 bits fill an f64 mantissa exactly.
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// The default [`Random`]: SplitMix64 over one atomic word.
///
/// Lock-free (one `fetch_add` a draw) and shared by its clones, so a layer and
/// all its clones draw one sequence. Not cryptographic: jitter only needs to
/// spread clients apart. With a single thread drawing, the sequence from
/// [`seeded`](FastRandom::seeded) is the same on every run and every platform.
///
/// # Examples
///
/// ```
/// use palisade::random::{FastRandom, Random};
///
/// let rng = FastRandom::seeded(42);
/// let clone = rng.clone();
/// let first = rng.next_u64();
/// assert_ne!(clone.next_u64(), first); // clones share the sequence
/// ```
#[derive(Clone)]
pub struct FastRandom {
    state: Arc<AtomicU64>,
}

/// The SplitMix64 increment: the odd integer closest to 2^64 / φ.
const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

impl FastRandom {
    /// A source whose sequence is fixed by `seed`.
    ///
    /// ```
    /// use palisade::random::{FastRandom, Random};
    /// assert_eq!(FastRandom::seeded(3).next_u64(), FastRandom::seeded(3).next_u64());
    /// ```
    pub fn seeded(seed: u64) -> FastRandom {
        FastRandom {
            state: Arc::new(AtomicU64::new(seed)),
        }
    }

    /// A source seeded from the operating system's randomness (through
    /// `rand`'s thread-local generator). This is what [`Default`] gives.
    ///
    /// ```
    /// use palisade::random::{FastRandom, Random};
    /// let x = FastRandom::from_entropy().next_f64();
    /// assert!((0.0..1.0).contains(&x));
    /// ```
    pub fn from_entropy() -> FastRandom {
        FastRandom::seeded(rand::random())
    }
}

impl Default for FastRandom {
    fn default() -> FastRandom {
        FastRandom::from_entropy()
    }
}

impl Random for FastRandom {
    fn next_u64(&self) -> u64 {
        let mut z = self
            .state
            .fetch_add(GOLDEN_GAMMA, Ordering::Relaxed)
            .wrapping_add(GOLDEN_GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl fmt::Debug for FastRandom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FastRandom").finish_non_exhaustive()
    }
}

/// Any `rand` generator as a [`Random`], behind a mutex so clones and threads
/// can share it.
///
/// For when a test or a deployment wants a particular algorithm; the mutex is
/// taken once a draw, and draws happen only on jittered (retry, re-open)
/// paths.
///
/// # Examples
///
/// ```
/// use palisade::random::{Random, SharedRng};
/// use rand::{SeedableRng, rngs::StdRng};
///
/// let rng = SharedRng::new(StdRng::seed_from_u64(9));
/// let again = SharedRng::new(StdRng::seed_from_u64(9));
/// assert_eq!(rng.next_u64(), again.next_u64());
/// ```
pub struct SharedRng<R> {
    rng: Arc<Mutex<R>>,
}

impl<R> SharedRng<R>
where
    R: rand::Rng + Send + 'static,
{
    /// Wraps `rng`.
    ///
    /// ```
    /// use palisade::random::SharedRng;
    /// use rand::{SeedableRng, rngs::StdRng};
    /// let _rng = SharedRng::new(StdRng::seed_from_u64(1));
    /// ```
    pub fn new(rng: R) -> SharedRng<R> {
        SharedRng {
            rng: Arc::new(Mutex::new(rng)),
        }
    }
}

impl<R> Clone for SharedRng<R> {
    fn clone(&self) -> SharedRng<R> {
        SharedRng {
            rng: Arc::clone(&self.rng),
        }
    }
}

impl<R> Random for SharedRng<R>
where
    R: rand::Rng + Send + 'static,
{
    fn next_u64(&self) -> u64 {
        lock(&self.rng).next_u64()
    }
}

impl<R> fmt::Debug for SharedRng<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedRng").finish_non_exhaustive()
    }
}
