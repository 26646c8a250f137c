pub mod client;
pub mod faults;
pub mod history;
pub mod linearizability;
pub mod member;
pub mod rng;
pub mod run;
pub mod world;
