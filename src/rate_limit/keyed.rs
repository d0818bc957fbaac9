//! Limits per key, in bounded memory.
//!
//! Each key (a client address, an API key, a tenant…) gets the state of its
//! own limit. Keys are identified by a 64-bit SipHash of the key under a
//! random per-layer seed, so the table stores eight bytes a key whatever the
//! key's type, and a client cannot choose keys that collide: two distinct
//! keys share a limit only by a hash collision, with odds around
//! `keys² / 2⁶⁵` (under 3 × 10⁻⁸ for a million keys).
//!
//! The table is split in shards, each behind its own lock, chosen by the
//! hash: requests for different keys rarely wait on each other.
//!
//! # Memory bound and eviction
//!
//! Each shard holds at most `max_keys / shards` keys, so the table never
//! holds more than `max_keys`, whatever the number of distinct keys seen. A
//! new key arriving at a full shard makes the shard forget every key that is
//! *idle* — whose state has recovered completely, so that forgetting it
//! changes no decision: a full bucket, a window with nothing left in it.
//! **A key that is still limited is never evicted**, so eviction can never
//! let a key exceed its limit. When no key of the shard is idle, the new key
//! is refused — as rate limited, with `retry_after` the time until the
//! shard's first key goes idle — and the shard is not searched again before
//! then: a flood of new keys costs one scan of a shard per idle period, not
//! one per request.

use std::{
    collections::HashMap,
    hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState},
};

use super::core::{Algorithm, Denied, State};
use crate::sync::{CachePadded, Mutex, lock};

/// The limit states of many keys.
#[derive(Debug)]
pub(crate) struct Keyed {
    shards: Box<[CachePadded<Mutex<Shard>>]>,
    /// The most keys one shard holds.
    per_shard: usize,
    hasher: RandomState,
}

#[derive(Debug, Default)]
struct Shard {
    states: HashMap<u64, State, BuildHasherDefault<Prehashed>>,
    /// When the shard is full: no key goes idle before this instant.
    full_until: u64,
}

impl Keyed {
    /// A table of at most `max_keys` keys in `shards` shards (a power of
    /// two; each holds at least one key).
    pub(crate) fn new(max_keys: usize, shards: usize) -> Keyed {
        Keyed {
            shards: (0..shards)
                .map(|_| CachePadded(Mutex::new(Shard::default())))
                .collect(),
            per_shard: (max_keys / shards).max(1),
            hasher: RandomState::new(),
        }
    }

    /// The hash that identifies `key`.
    pub(crate) fn hash<K: Hash + ?Sized>(&self, key: &K) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Decides a request for the key whose hash is `key`; see
    /// [`Algorithm::acquire`].
    pub(crate) fn acquire(
        &self,
        algorithm: &Algorithm,
        key: u64,
        now: u64,
        cost: u64,
        max_wait: u64,
    ) -> Result<u64, Denied> {
        // The high bits pick the shard; the map uses the low ones.
        let index = (key >> 32) as usize & (self.shards.len() - 1);
        let mut shard = lock(&self.shards[index]);
        if let Some(state) = shard.states.get_mut(&key) {
            return algorithm.acquire(state, now, cost, max_wait);
        }
        let mut state = algorithm.fresh();
        let due = algorithm.acquire(&mut state, now, cost, max_wait)?;
        if shard.states.len() >= self.per_shard {
            shard.make_room(algorithm, now, self.per_shard)?;
        }
        shard.states.insert(key, state);
        Ok(due)
    }

    /// How many keys the table holds.
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| lock(shard).states.len())
            .sum()
    }
}

impl Shard {
    /// Forgets the idle keys, to hold fewer than `per_shard`; refused when
    /// none is idle.
    fn make_room(
        &mut self,
        algorithm: &Algorithm,
        now: u64,
        per_shard: usize,
    ) -> Result<(), Denied> {
        if now < self.full_until {
            return Err(Denied::Wait(self.full_until - now));
        }
        self.states
            .retain(|_, state| algorithm.idle_at(state) > now);
        if self.states.len() < per_shard {
            return Ok(());
        }
        // Every key left goes idle after `now`.
        let first_idle = self
            .states
            .values()
            .map(|state| algorithm.idle_at(state))
            .min()
            .unwrap_or(now);
        self.full_until = first_idle;
        Err(Denied::Wait(first_idle - now))
    }
}

/// The hasher of a map whose keys are already hashes.
#[derive(Clone, Copy, Debug, Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
