//! What an instance remembers of keys between round trips (refusals,
//! leases): a bounded table split in locked shards, keyed by a hash of the
//! key drawn under a per-process random seed.

use std::{
    collections::HashMap,
    hash::{BuildHasher, BuildHasherDefault, Hash, RandomState},
};

use crate::{
    rate_limit::keyed::{Prehashed, rebuild},
    sync::{CachePadded, Mutex, lock},
};

/// Shards of a table, each behind its own lock.
const SHARDS: usize = 16;

/// One shard: a key's hash (already a hash, so not hashed again) → what is
/// remembered of it.
type Shard<V> = CachePadded<Mutex<HashMap<u64, V, BuildHasherDefault<Prehashed>>>>;

/// At most a given number of keys' values.
pub(super) struct Table<V> {
    shards: Box<[Shard<V>]>,
    /// The most keys one shard holds; 0: the table holds nothing.
    per_shard: usize,
    hasher: RandomState,
}

impl<V> Table<V> {
    /// A table of at most `max_keys` keys (0: none).
    pub(super) fn new(max_keys: usize) -> Table<V> {
        Table {
            shards: (0..SHARDS)
                .map(|_| CachePadded(Mutex::new(HashMap::default())))
                .collect(),
            per_shard: max_keys.div_ceil(SHARDS),
            hasher: RandomState::new(),
        }
    }

    /// Whether the table holds anything at all.
    fn is_used(&self) -> bool {
        self.per_shard > 0
    }

    /// The identity of a key in the table.
    pub(super) fn id<K: Hash>(&self, key: Option<&K>) -> u64 {
        self.hasher.hash_one(key)
    }

    fn shard(&self, id: u64) -> &Shard<V> {
        &self.shards[(id >> 32) as usize % SHARDS]
    }

    /// `look` at the value of key `id`, if one is held.
    #[inline]
    pub(super) fn with<T>(&self, id: u64, look: impl FnOnce(&mut V) -> T) -> Option<T> {
        if !self.is_used() {
            return None;
        }
        lock(self.shard(id)).get_mut(&id).map(look)
    }

    /// Stores `value` for key `id`, or merges it into the one held. When
    /// the shard is full, the values that are `stale` go first; if none is,
    /// the key is not stored (the table only saves round trips).
    pub(super) fn put(
        &self,
        id: u64,
        value: V,
        merge: impl FnOnce(&mut V, V),
        stale: impl FnMut(&V) -> bool,
    ) {
        if !self.is_used() {
            return;
        }
        let mut shard = lock(self.shard(id));
        if let Some(held) = shard.get_mut(&id) {
            merge(held, value);
            return;
        }
        if shard.len() >= self.per_shard {
            let mut stale = stale;
            let held = shard.len();
            shard.retain(|_, held| !stale(held));
            if shard.len() < held {
                rebuild(&mut shard, self.per_shard);
            }
            if shard.len() >= self.per_shard {
                return;
            }
        }
        shard.insert(id, value);
    }

    /// Empties every shard.
    pub(super) fn clear(&self) {
        for shard in self.shards.iter() {
            lock(shard).clear();
        }
    }

    /// How many keys the table holds.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_s_map_stays_at_the_size_of_its_keys_through_evictions() {
        // 1 792 keys a shard fill a map of 2 048 buckets; each eviction
        // (of the oldest eighth) leaves tombstones.
        let per_shard = 1_792;
        let table = Table::<u64>::new(per_shard * SHARDS);
        for n in 0..100 * per_shard as u64 {
            // Every id in the first shard (its high bits 0).
            let oldest_kept = n.saturating_sub(per_shard as u64 * 7 / 8);
            table.put(n, n, |_, _| {}, |&held| held < oldest_kept);
            let capacity = lock(&table.shards[0]).capacity();
            assert!(capacity <= per_shard, "{capacity} after {n}");
        }
    }
}
