//! SASL for clients (ZooKeeper's `SASLAuthenticationProvider`): the JAAS file that names the users, and
//! the DIGEST-MD5 mechanism they authenticate with. GSSAPI (Kerberos) is not here yet: a JAAS section
//! that asks for it stops start-up.

pub mod digest_md5;
pub mod jaas;
