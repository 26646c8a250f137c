//! Kerberos for ZooKeeper's SASL `GSSAPI` mechanism, clients' and members': the system's MIT GSS-API
//! library ([`ffi`], opened at run time), safe handles over its names, credentials and contexts
//! ([`context`]), RFC 4752's exchange on top ([`sasl`]) and principal names as ZooKeeper reads them
//! ([`principal`]).
//!
//! Credentials come from keytabs, as ZooKeeper's `Krb5LoginModule` sections name them (`keyTab`,
//! `principal`), through MIT's credential stores: nothing is read from or written to the process's
//! default ticket cache unless a section asks for it. The Kerberos configuration is the library's:
//! `KRB5_CONFIG`, else `/etc/krb5.conf`.

pub mod context;
pub mod ffi;
pub mod principal;
pub mod sasl;

pub use context::{Credential, Usage};
pub use principal::{IdentityRules, KerberosName};
pub use sasl::{GssapiClient, GssapiServer, ServerStep};

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum GssError {
    #[error(
        "Kerberos needs MIT Kerberos' GSS-API library, which could not be loaded ({0}); install it \
         (Debian: libgssapi-krb5-2)"
    )]
    Library(String),
    #[error("Kerberos: {doing} failed: {reason}")]
    Call { doing: &'static str, reason: String },
    #[error("Kerberos: malformed principal name {0:?}")]
    MalformedName(String),
    #[error("SASL GSSAPI: {0}")]
    Protocol(&'static str),
}
