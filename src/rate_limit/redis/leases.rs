//! Leased tokens: in the approximate mode, a round trip takes a batch of a
//! key's tokens from Redis, and the instance spends them on that key's
//! next requests without asking again.
//!
//! A lease is taken out of the bucket in Redis, so the fleet never admits
//! more tokens than Redis handed out; what a lease changes is *when* they
//! are spent: tokens taken at one instant may be spent up to the lease's
//! validity later, when the bucket has refilled too. Over any span of time,
//! the fleet admits at most what the bucket allows in it plus the tokens
//! leased before it and still unspent: at most `instances × (batch − 1)` —
//! the bound [the module docs](super#leased-tokens) give. Tokens left when a
//! lease expires are lost (the fleet admits less, never more).

use super::table::Table;

/// A key's unspent leased tokens, and until when they may be spent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Lease {
    left: u64,
    /// On the layer's clock, in nanoseconds.
    until: u64,
}

/// The leases this instance holds.
pub(super) struct Leases {
    table: Table<Lease>,
}

impl Leases {
    /// Leases for at most `max_keys` keys at once (0: none).
    pub(super) fn new(max_keys: usize) -> Leases {
        Leases {
            table: Table::new(max_keys),
        }
    }

    /// Spends `cost` leased tokens of key `id` at `now`, if it holds as
    /// many still valid.
    #[inline]
    pub(super) fn spend(&self, id: u64, cost: u64, now: u64) -> bool {
        self.table
            .with(id, |lease| {
                let spent = now < lease.until && lease.left >= cost;
                if spent {
                    lease.left -= cost;
                }
                spent
            })
            .unwrap_or(false)
    }

    /// Holds `left` more tokens of key `id`, to spend before `until`; they
    /// replace what was left of an earlier lease.
    pub(super) fn hold(&self, id: u64, left: u64, until: u64, now: u64) {
        let lease = Lease { left, until };
        let replace = |held: &mut Lease, lease: Lease| *held = lease;
        self.table.put(id, lease, replace, |held| {
            held.until <= now || held.left == 0
        });
    }
}

#[cfg(test)]
mod tests {
    use super::Leases;

    #[test]
    fn a_lease_is_spent_until_it_runs_out_or_expires() {
        let leases = Leases::new(100);
        let id = 42;
        assert!(!leases.spend(id, 1, 0), "nothing leased yet");
        leases.hold(id, 3, 1_000, 0);
        assert!(leases.spend(id, 2, 10));
        assert!(!leases.spend(id, 2, 20), "one left");
        assert!(leases.spend(id, 1, 30));
        assert!(!leases.spend(id, 1, 40));
        leases.hold(id, 5, 1_000, 50);
        assert!(!leases.spend(id, 1, 1_000), "expired");
        let none = Leases::new(0);
        none.hold(id, 5, 1_000, 0);
        assert!(!none.spend(id, 1, 0), "a table of no keys holds nothing");
    }
}
