//! The synchronisation primitives the crate builds on, swapped for loom's
//! under `--cfg loom` so that the loom models in `tests/loom.rs` explore every
//! interleaving of the real code.

#[cfg(loom)]
pub(crate) use loom::sync::{
    Arc, Mutex, MutexGuard,
    atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU32, AtomicU64, Ordering, fence},
};

#[cfg(not(loom))]
pub(crate) use std::sync::{
    Arc, Mutex, MutexGuard,
    atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU32, AtomicU64, Ordering, fence},
};

/// Locks `mutex`, ignoring poisoning.
///
/// Every critical section in this crate leaves its data consistent before it
/// can panic (user code — listeners, classifiers — never runs under a lock),
/// so a poisoned lock still guards valid data.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Keeps `T` on cache lines of its own, so that writes to neighbouring data
/// (an `Arc`'s reference count, another thread's counters) do not evict it.
/// 128 bytes: two lines, as adjacent-line prefetchers pair them.
#[repr(align(128))]
#[derive(Debug, Default)]
pub(crate) struct CachePadded<T>(pub(crate) T);

impl<T> std::ops::Deref for CachePadded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}
