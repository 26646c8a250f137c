//! The simulator's only source of randomness: the server's SplitMix64 ([`ferrokeeper::rng::Rng`]),
//! seeded from the run's seed, so a seed replays the run exactly.

pub use ferrokeeper::rng::Rng;
