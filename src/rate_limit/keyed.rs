//! Limits per key, in bounded memory: a table of limit states keyed by a
//! 64-bit SipHash of the key, split in independently locked shards. Its
//! contract — identity, memory bound, eviction of the idle keys first and
//! then of the least recently seen — is documented for users in
//! [the module docs](super#keys).

use std::{
    collections::HashMap,
    hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState},
};

use super::{
    core::{Algorithm, Denied, Question, Rule, State},
    token_bucket::TokenBucket,
};
use crate::sync::{CachePadded, Mutex, lock};

/// The limit states of many keys.
#[derive(Debug)]
pub(crate) struct Keyed {
    table: Table,
    /// The most keys one shard holds.
    per_shard: usize,
    hasher: RandomState,
    /// The identity of the requests that have no key and share a limit: a
    /// random number, the hash of nothing any key hashes to.
    keyless: u64,
}

/// The shards, with the state each algorithm keeps per key: token buckets
/// (the common case) keep their bare TAT, so that a table of many keys stays
/// small enough for the cache.
#[derive(Debug)]
enum Table {
    Buckets(Shards<TokenBucket>),
    Any(Shards<Algorithm>),
}

type Shards<L> = Box<[CachePadded<Mutex<Shard<L>>>]>;

/// Some of the keys, and the limit they are decided by: a copy in each
/// shard, read under the shard's lock, so that a change of the numbers
/// reaches each shard's keys together with their carried states.
#[derive(Debug)]
struct Shard<L: Rule> {
    limit: L,
    states: HashMap<u64, Entry<L::State>, BuildHasherDefault<Prehashed>>,
    /// The shard's requests so far: each entry's `seen` is this count at
    /// its key's last request, so the counts order the keys by recency.
    requests: u64,
}

/// A key's limit state, and when it was last seen.
#[derive(Debug)]
struct Entry<S> {
    state: S,
    seen: u64,
}

impl Keyed {
    /// A table of at most `max_keys` keys of `algorithm` in `shards` shards
    /// (a power of two; each holds at least one key).
    pub(crate) fn new(algorithm: Algorithm, max_keys: usize, shards: usize) -> Keyed {
        fn shards_of<L: Rule + Copy>(limit: L, shards: usize) -> Shards<L> {
            (0..shards)
                .map(|_| {
                    CachePadded(Mutex::new(Shard {
                        limit,
                        states: HashMap::default(),
                        requests: 0,
                    }))
                })
                .collect()
        }
        let table = match algorithm {
            Algorithm::TokenBucket(bucket) => Table::Buckets(shards_of(bucket, shards)),
            _ => Table::Any(shards_of(algorithm, shards)),
        };
        Keyed {
            table,
            per_shard: (max_keys / shards).max(1),
            hasher: RandomState::new(),
            keyless: RandomState::new().hash_one(()),
        }
    }

    /// The most memory a table of `max_keys` keys of `algorithm` in
    /// `shards` shards may take, in bytes: each shard's map at its largest
    /// (as the standard map sizes it: buckets a power of two, at most 7/8
    /// full, one control byte each) and every key's state at its largest.
    pub(crate) fn memory(algorithm: &Algorithm, max_keys: usize, shards: usize) -> u128 {
        let per_shard = (max_keys / shards).max(1);
        let entry = match algorithm {
            Algorithm::TokenBucket(_) => size_of::<(u64, Entry<u64>)>(),
            _ => size_of::<(u64, Entry<<Algorithm as Rule>::State>)>(),
        };
        let shard = size_of::<CachePadded<Mutex<Shard<Algorithm>>>>()
            + map_buckets(per_shard) * (entry + 1);
        let keys = (per_shard * shards) as u128;
        shards as u128 * shard as u128 + keys * algorithm.heap_bytes()
    }

    /// The hash that identifies `key`.
    pub(crate) fn hash<K: Hash + ?Sized>(&self, key: &K) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The identity shared by the requests that have no key.
    pub(crate) fn keyless(&self) -> u64 {
        self.keyless
    }

    /// Decides a request for the key whose hash is `key`; see
    /// [`Rule::acquire`].
    pub(crate) fn acquire(
        &self,
        key: u64,
        now: u64,
        cost: u64,
        max_wait: u64,
    ) -> Result<u64, Denied> {
        match &self.table {
            Table::Buckets(shards) => self.decide(shards, key, now, cost, max_wait),
            Table::Any(shards) => self.decide(shards, key, now, cost, max_wait),
        }
    }

    #[inline]
    fn decide<L: Rule>(
        &self,
        shards: &Shards<L>,
        key: u64,
        now: u64,
        cost: u64,
        max_wait: u64,
    ) -> Result<u64, Denied> {
        let mut guard = lock(shard_of(shards, key));
        let shard = &mut *guard;
        shard.requests += 1;
        let seen = shard.requests;
        if let Some(entry) = shard.states.get_mut(&key) {
            entry.seen = seen;
            return shard.limit.acquire(&mut entry.state, now, cost, max_wait);
        }
        let mut state = shard.limit.fresh();
        let due = shard.limit.acquire(&mut state, now, cost, max_wait)?;
        if shard.states.len() >= self.per_shard {
            shard.make_room(now, self.per_shard);
        }
        shard.states.insert(key, Entry { state, seen });
        Ok(due)
    }

    /// Runs `f` on the limit of the key whose hash is `key` and on its
    /// state — `None` for a key the table does not hold — leaving the key's
    /// recency as it is; or, with `insert`, as a request of the key at
    /// `now`: it is seen, and a new key gets a fresh state (room made for
    /// it as [`acquire`](Self::acquire) makes it). For the limits whose
    /// decisions are more than [`Rule::acquire`] (a leaky bucket's queue).
    pub(crate) fn visit<R>(
        &self,
        key: u64,
        now: u64,
        insert: bool,
        f: impl FnOnce(&Algorithm, Option<&mut State>) -> R,
    ) -> R {
        let Table::Any(shards) = &self.table else {
            unreachable!("a token bucket's table holds bare TATs")
        };
        let mut guard = lock(shard_of(shards, key));
        let shard = &mut *guard;
        if !insert {
            let state = shard.states.get_mut(&key).map(|entry| &mut entry.state);
            return f(&shard.limit, state);
        }
        shard.requests += 1;
        let seen = shard.requests;
        if !shard.states.contains_key(&key) && shard.states.len() >= self.per_shard {
            shard.make_room(now, self.per_shard);
        }
        let Shard { limit, states, .. } = shard;
        let entry = states.entry(key).or_insert_with(|| Entry {
            state: limit.fresh(),
            seen,
        });
        entry.seen = seen;
        f(limit, Some(&mut entry.state))
    }

    /// Changes every key's limit to `into`, shard by shard, carrying each
    /// key's state as at `now`.
    pub(crate) fn reconfigure(&self, into: Algorithm, now: u64) {
        fn carry<L: Rule + Copy>(shards: &Shards<L>, into: L, now: u64) {
            for shard in shards {
                let mut guard = lock(shard);
                let shard = &mut *guard;
                for entry in shard.states.values_mut() {
                    shard.limit.carry(&into, &mut entry.state, now);
                }
                shard.limit = into;
            }
        }
        match (&self.table, into) {
            (Table::Buckets(shards), Algorithm::TokenBucket(into)) => carry(shards, into, now),
            (Table::Any(shards), into) => carry(shards, into, now),
            (Table::Buckets(_), _) => unreachable!("a token bucket stays one"),
        }
    }

    /// The answer to `question` for `key` at `now` (for the requests that
    /// have no key when `None`); a key the table does not hold is a fresh
    /// one. Asking is not a use: the key's recency is left as it is, and
    /// nothing is inserted.
    pub(crate) fn ask<K: Hash + ?Sized, Q: Question>(
        &self,
        key: Option<&K>,
        now: u64,
        question: &Q,
    ) -> Q::Answer {
        fn read<L: Rule, Q: Question>(
            shards: &Shards<L>,
            key: u64,
            now: u64,
            question: &Q,
        ) -> Q::Answer
        where
            L::State: Clone,
        {
            let shard = lock(shard_of(shards, key));
            match shard.states.get(&key) {
                Some(entry) => question.ask(&shard.limit, &entry.state, now),
                None => question.ask(&shard.limit, &shard.limit.fresh(), now),
            }
        }
        let key = key.map_or(self.keyless, |key| self.hash(key));
        match &self.table {
            Table::Buckets(shards) => read(shards, key, now, question),
            Table::Any(shards) => read(shards, key, now, question),
        }
    }

    /// How many keys the table holds.
    pub(crate) fn len(&self) -> usize {
        fn count<L: Rule>(shards: &Shards<L>) -> usize {
            shards.iter().map(|shard| lock(shard).states.len()).sum()
        }
        match &self.table {
            Table::Buckets(shards) => count(shards),
            Table::Any(shards) => count(shards),
        }
    }
}

/// The buckets of a standard map of `keys` keys at most, as it sizes them
/// (at least 8 counted here): a power of two, at most 7/8 full.
fn map_buckets(keys: usize) -> usize {
    if keys < 8 {
        8
    } else {
        (keys * 8 / 7).next_power_of_two()
    }
}

/// The shard of the key whose hash is `key`: the high bits pick it, the
/// map inside uses the low ones.
fn shard_of<L: Rule>(shards: &Shards<L>, key: u64) -> &CachePadded<Mutex<Shard<L>>> {
    &shards[(key >> 32) as usize & (shards.len() - 1)]
}

impl<L: Rule> Shard<L> {
    /// Frees an eighth of the shard (at least one entry): the idle keys
    /// first, whose forgetting changes no decision, then the keys seen
    /// least recently. Freeing a batch makes a flood of new keys cost one
    /// scan of the shard per `per_shard / 8` keys, not one per key. The map
    /// is then [rebuilt](rebuild) at the size of `per_shard` keys, as
    /// [`Keyed::memory`] counts it.
    fn make_room(&mut self, now: u64, per_shard: usize) {
        let limit = &self.limit;
        self.states
            .retain(|_, entry| limit.idle_at(&entry.state) > now);
        let target = per_shard - (per_shard / 8).max(1);
        if let Some(excess) = self.states.len().checked_sub(target).filter(|&n| n > 0) {
            // Every entry was seen at a request of its own, so the counts
            // are distinct: exactly `excess` of them are at most the cut-off.
            let mut seen: Vec<u64> = self.states.values().map(|entry| entry.seen).collect();
            let (_, &mut cutoff, _) = seen.select_nth_unstable(excess - 1);
            self.states.retain(|_, entry| entry.seen > cutoff);
        }
        rebuild(&mut self.states, per_shard);
    }
}

/// Rebuilds `map` at the size of `keys` keys, after entries were removed:
/// the standard map marks a removed entry with a tombstone, and once
/// tombstones fill it, clears them by doubling its buckets — twice the
/// memory its keys need.
pub(crate) fn rebuild<V>(map: &mut HashMap<u64, V, BuildHasherDefault<Prehashed>>, keys: usize) {
    let mut rebuilt = HashMap::with_capacity_and_hasher(keys, BuildHasherDefault::default());
    rebuilt.extend(map.drain());
    *map = rebuilt;
}

/// The hasher of a map whose keys are already hashes.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Prehashed(u64);

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate_limit::core::State;

    #[test]
    fn a_key_s_entry_is_24_bytes_for_a_bucket_and_32_for_a_window() {
        assert_eq!(size_of::<(u64, Entry<u64>)>(), 24);
        assert_eq!(size_of::<(u64, Entry<State>)>(), 32);
    }

    #[test]
    fn the_memory_bound_counts_the_buckets_a_map_of_its_keys_has() {
        for keys in (1..=300).chain([1_000, 1_792, 1_793, 4_096, 100_000]) {
            let mut map: HashMap<u64, ()> = HashMap::new();
            map.extend((0..keys as u64).map(|key| (key, ())));
            // The map's buckets, from the keys it can hold without growing.
            let capacity = map.capacity();
            let buckets = if capacity < 8 {
                capacity + 1
            } else {
                capacity / 7 * 8
            };
            assert_eq!(map_buckets(keys), buckets.max(8), "{keys}");
        }
        let bucket = Algorithm::TokenBucket(TokenBucket::new(1_000, 10));
        let shard = size_of::<CachePadded<Mutex<Shard<Algorithm>>>>() as u128;
        // 4 shards of 1 000 keys: 2 048 buckets each, of an entry and a
        // control byte.
        assert_eq!(Keyed::memory(&bucket, 4_000, 4), 4 * (shard + 2_048 * 25));
        assert_eq!(Keyed::memory(&bucket, 4, 4), 4 * (shard + 8 * 25));
    }

    #[test]
    fn a_flood_of_keys_leaves_each_shard_s_map_at_the_size_of_its_keys() {
        // 1 792 keys fill a map of 2 048 buckets: each eviction leaves
        // tombstones, and a map full of them would double.
        let per_shard = 1_792;
        let keyed = Keyed::new(
            Algorithm::TokenBucket(TokenBucket::new(1_000, 10)),
            per_shard,
            1,
        );
        let Table::Buckets(shards) = &keyed.table else {
            unreachable!("a token bucket's table")
        };
        for key in 0..100 * per_shard as u64 {
            keyed.acquire(keyed.hash(&key), 0, 1, 0).unwrap();
            let capacity = lock(&shards[0]).states.capacity();
            assert!(capacity <= per_shard, "{capacity} after {key}");
        }
    }
}
