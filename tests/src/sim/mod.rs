pub mod history;
pub mod linearizability;
