//! Operator interfaces: the 4-letter words and the counters behind them.

pub mod figures;
pub mod fourlw;
pub mod stats;
