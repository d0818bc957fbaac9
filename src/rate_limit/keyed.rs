//! Limits per key, in bounded memory: a table of limit states keyed by a
//! 64-bit SipHash of the key, split in independently locked shards. Its
//! contract — identity, memory bound, eviction of idle keys only — is
//! documented for users in [the module docs](super#keys).

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
