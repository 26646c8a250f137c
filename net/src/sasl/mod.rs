//! SASL between ZooKeeper clients and servers (ZooKeeper's `SASLAuthenticationProvider`): the JAAS files
//! that name the server's users and a client's credentials, and the DIGEST-MD5 mechanism, both sides.
//! GSSAPI (Kerberos) itself is the fk-gssapi crate's; its JAAS sections are read here.

pub mod digest_md5;
pub mod jaas;
