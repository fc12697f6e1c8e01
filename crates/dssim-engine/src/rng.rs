//! Random-number streams: one named generator per component, derived from the run seed
//! and the component's name, so adding a component leaves every other stream unchanged.

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// The generator every stream uses: Xoshiro256++ (fast, 256-bit state, well tested).
pub type Rng = Xoshiro256PlusPlus;

/// SplitMix64 finaliser: spreads a 64-bit input over all output bits.
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// FNV-1a over bytes: a fixed, platform-independent hash for stream names.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The seed of stream `name` within a run whose seed is `run_seed`.
pub fn stream_seed(run_seed: u64, name: &str) -> u64 {
    splitmix64(run_seed ^ splitmix64(fnv1a(name.as_bytes())))
}

/// A generator for stream `name` of run `run_seed`.
pub fn stream(run_seed: u64, name: &str) -> Rng {
    Rng::seed_from_u64(stream_seed(run_seed, name))
}

/// The seed of replication `rep` of an experiment seeded with `experiment_seed`. The same for
/// every sweep point, so points are compared under common random numbers.
pub fn replication_seed(experiment_seed: u64, rep: u64) -> u64 {
    splitmix64(experiment_seed.wrapping_mul(0x9E37_79B9).wrapping_add(rep))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    #[test]
    fn streams_are_independent_of_each_other_and_stable() {
        let mut a1 = stream(7, "app");
        let mut a2 = stream(7, "app");
        let mut b = stream(7, "db");
        let x = a1.next_u64();
        assert_eq!(x, a2.next_u64());
        assert_ne!(x, b.next_u64());
        assert_ne!(stream_seed(7, "app"), stream_seed(8, "app"));
    }
}
