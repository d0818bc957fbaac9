//! Shared helpers for palisade's benchmarks (none yet beyond the bench files).
