//! Seedable randomness.

use std::collections::HashSet;

use palisade::random::{FastRandom, Random, SharedRng};
use rand::{Rng, SeedableRng, rngs::StdRng};

#[test]
fn fast_random_is_splitmix64() {
    // The reference outputs of SplitMix64 for seed 1234567.
    let rng = FastRandom::seeded(1_234_567);
    let draws: Vec<u64> = (0..5).map(|_| rng.next_u64()).collect();
    assert_eq!(
        draws,
        [
            6_457_827_717_110_365_317,
            3_203_168_211_198_807_973,
            9_817_491_932_198_370_423,
            4_593_380_528_125_082_431,
            16_408_922_859_458_223_821,
        ]
    );
}

#[test]
fn same_seed_same_sequence_other_seed_other_sequence() {
    let draw = |seed| {
        let rng = FastRandom::seeded(seed);
        (0..100).map(|_| rng.next_u64()).collect::<Vec<_>>()
    };
    assert_eq!(draw(42), draw(42));
    assert_ne!(draw(42), draw(43));
}

#[test]
fn clones_draw_from_one_sequence() {
    let rng = FastRandom::seeded(5);
    let clone = rng.clone();
    let interleaved = [rng.next_u64(), clone.next_u64(), rng.next_u64()];
    let reference = FastRandom::seeded(5);
    let single = [
        reference.next_u64(),
        reference.next_u64(),
        reference.next_u64(),
    ];
    assert_eq!(interleaved, single);
}

#[test]
fn threads_sharing_one_source_never_draw_the_same_state() {
    let rng = FastRandom::seeded(9);
    let per_thread = 10_000;
    let draws: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let rng = rng.clone();
                s.spawn(move || (0..per_thread).map(|_| rng.next_u64()).collect::<Vec<_>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    // SplitMix64's output is a bijection of its state and every draw advances
    // the state atomically, so no two draws can coincide.
    let distinct: HashSet<u64> = draws.iter().copied().collect();
    assert_eq!(distinct.len(), 2 * per_thread);
}

#[test]
fn next_f64_is_in_the_unit_interval_and_uniform_enough() {
    let rng = FastRandom::seeded(11);
    let n = 100_000;
    let mut buckets = [0u32; 10];
    for _ in 0..n {
        let x = rng.next_f64();
        assert!((0.0..1.0).contains(&x), "{x}");
        buckets[(x * 10.0) as usize] += 1;
    }
    // Each decile expects 10 000 draws; a fair generator stays within ±5 %.
    for count in buckets {
        assert!((9_500..=10_500).contains(&count), "{buckets:?}");
    }
}

#[test]
fn next_f64_extremes() {
    #[derive(Clone)]
    struct Fixed(u64);
    impl Random for Fixed {
        fn next_u64(&self) -> u64 {
            self.0
        }
    }
    assert_eq!(Fixed(0).next_f64(), 0.0);
    assert!(Fixed(u64::MAX).next_f64() < 1.0);
}

#[test]
fn shared_rng_follows_the_wrapped_generator() {
    let shared = SharedRng::new(StdRng::seed_from_u64(77));
    let mut reference = StdRng::seed_from_u64(77);
    for _ in 0..10 {
        assert_eq!(shared.next_u64(), reference.next_u64());
    }
    // Clones share the generator.
    let clone = shared.clone();
    assert_eq!(clone.next_u64(), reference.next_u64());
}

#[test]
fn entropy_seeded_sources_differ() {
    let a: Vec<u64> = {
        let rng = FastRandom::default();
        (0..4).map(|_| rng.next_u64()).collect()
    };
    let b: Vec<u64> = {
        let rng = FastRandom::from_entropy();
        (0..4).map(|_| rng.next_u64()).collect()
    };
    assert_ne!(a, b);
}
