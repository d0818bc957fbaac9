//! The denial cache: what Redis refused, remembered here, so that a client
//! hammering a key it is refused on costs no round trip until its tokens
//! come back.
//!
//! What is remembered of a refused key is a lower bound of its bucket's
//! theoretical arrival time (TAT), on the layer's clock. A bucket's TAT only
//! moves later — an admission anywhere in the fleet pushes it, a refusal
//! leaves it, time never pulls it back — so a request that the lower bound
//! already refuses would be refused by Redis too: the cache can only say
//! "refused" when Redis would, and never admits anything itself. It cannot
//! over-admit. (Should Redis lose the key — a restart without persistence —
//! the cache refuses what Redis would now admit, until the remembered TAT;
//! never longer.)

use std::hash::Hash;

use super::table::Table;

/// Keys refused by Redis, with a lower bound of their bucket's TAT.
pub(super) struct Denials {
    table: Table<u64>,
}

impl Denials {
    /// A cache of at most `max_keys` keys (0: no cache).
    pub(super) fn new(max_keys: usize) -> Denials {
        Denials {
            table: Table::new(max_keys),
        }
    }

    /// The identity of a key in the cache.
    pub(super) fn id<K: Hash>(&self, key: Option<&K>) -> u64 {
        self.table.id(key)
    }

    /// How long a request that would push the TAT by `push` nanoseconds,
    /// against a tolerance of `tolerance`, is still refused at `now`; `None`
    /// when the cache cannot tell (Redis must be asked).
    #[inline]
    pub(super) fn refused(&self, id: u64, now: u64, push: u64, tolerance: u64) -> Option<u64> {
        let tat = self.table.with(id, |tat| *tat)?;
        let due = tat.saturating_add(push).saturating_sub(tolerance);
        (due > now).then(|| due - now)
    }

    /// Forgets every key (the limit's numbers changed).
    pub(super) fn clear(&self) {
        self.table.clear();
    }

    /// Raises what is remembered of key `id` to `tat`, if anything is (an
    /// admission: keeps the bound exact without filling the cache with
    /// keys that were never refused).
    pub(super) fn raise(&self, id: u64, tat: u64) {
        self.table.with(id, |known| *known = (*known).max(tat));
    }

    /// Remembers that the TAT of key `id` is at least `tat`. When full, the
    /// entries that no longer refuse anything (TAT past) make room.
    pub(super) fn remember(&self, id: u64, tat: u64, now: u64) {
        let merge = |known: &mut u64, tat: u64| *known = (*known).max(tat);
        self.table.put(id, tat, merge, |known| *known <= now);
    }
}

#[cfg(test)]
mod tests {
    use super::Denials;

    #[test]
    fn a_remembered_tat_refuses_until_the_tokens_come_back() {
        let denials = Denials::new(100);
        let id = denials.id(Some(&"client"));
        // TAT 1 000, tolerance 500, a token every 100.
        denials.remember(id, 1_000, 0);
        assert_eq!(denials.refused(id, 0, 100, 500), Some(600));
        assert_eq!(denials.refused(id, 599, 100, 500), Some(1));
        assert_eq!(denials.refused(id, 600, 100, 500), None);
        // A larger cost is refused longer.
        assert_eq!(denials.refused(id, 600, 300, 500), Some(200));
        // Another key is unknown.
        assert_eq!(
            denials.refused(denials.id(Some(&"other")), 0, 100, 500),
            None
        );
        // The bound only moves later.
        denials.remember(id, 900, 0);
        assert_eq!(denials.refused(id, 0, 100, 500), Some(600));
    }

    #[test]
    fn a_full_cache_forgets_what_refuses_nothing_and_stays_bounded() {
        let denials = Denials::new(16);
        for key in 0..1_000u32 {
            denials.remember(denials.id(Some(&key)), 1_000, 0);
        }
        assert!(denials.table.len() <= 16, "{}", denials.table.len());
        // Once past, they make room.
        let late = denials.id(Some(&"late"));
        for key in 0..1_000u32 {
            denials.remember(denials.id(Some(&key)), 5_000, 2_000);
        }
        denials.remember(late, 5_000, 2_000);
        assert!(denials.table.len() <= 16, "{}", denials.table.len());
        assert_eq!(Denials::new(0).refused(late, 0, 1, 1), None);
    }
}
