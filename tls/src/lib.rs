//! TLS for ferrokeeper's client port and its client tools, configured as ZooKeeper 3.8's `ssl.*` keys
//! describe it: key and trust stores ([`store`]), the rustls configurations built from them
//! ([`config`]), the plaintext side of a connection in a non-blocking loop ([`nonblocking`]), and a
//! client certificate's subject written as Java writes it ([`subject`]), which
//! x509 authentication turns into an ACL id.

pub mod blocking;
pub mod config;
pub mod nonblocking;
pub mod reload;
pub mod store;
pub mod subject;

pub use config::{
    BadKey, ClientAuth, Protocols, TlsSettings, certificate_names_address, client_config, server_config, server_name,
};
pub use store::{StoreSpec, StoreType};
pub use subject::java_subject_name;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {reason}", path.display())]
    Store { path: PathBuf, reason: String },
    #[error("{key}: {reason}")]
    Setting { key: &'static str, reason: String },
    #[error("{0}")]
    Certificate(String),
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
}
