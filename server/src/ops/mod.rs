//! Operator interfaces: the 4-letter words, the Prometheus endpoint, the AdminServer, the audit log, and
//! the figures behind them.

pub mod admin;
pub mod admin_data;
pub mod audit;
pub mod figures;
pub mod fourlw;
pub mod http;
pub mod jackson;
pub mod metrics;
pub mod prometheus;
pub mod stats;
pub mod summary;
