//! The fixed window: `limit` per window, the windows laid end to end from the
//! clock's zero, each counted from nothing.
//!
//! It is the [sliding window counter](super::sliding_window) with a single
//! segment the length of the window, counting only the current one — the
//! cheapest and the least smooth: a burst of `limit` at the end of one window
//! and another at the start of the next pass **2 × `limit` within a span
//! barely longer than an instant**. Prefer the sliding window or the token
//! bucket unless windows aligned on the clock are what you need.

use super::sliding_window::Segments;

/// `limit` per `window` nanoseconds, reservable up to `ahead` windows past
/// the current one.
pub(crate) const fn fixed_window(limit: u64, window: u64, ahead: u64) -> Segments {
    Segments::new(limit, window, 1, ahead)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate_limit::core::Denied;

    #[test]
    fn twice_the_limit_passes_across_an_edge() {
        let window = fixed_window(3, 1_000, 0);
        let mut state = window.fresh();
        assert_eq!(window.acquire(&mut state, 999, 3, 0), Ok(999));
        assert_eq!(window.acquire(&mut state, 999, 1, 0), Err(Denied::Wait(1)));
        assert_eq!(window.acquire(&mut state, 1_000, 3, 0), Ok(1_000));
    }
}
