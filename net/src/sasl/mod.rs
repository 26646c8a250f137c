//! SASL between ZooKeeper clients and servers (ZooKeeper's `SASLAuthenticationProvider`): the JAAS files
//! that name the server's users and a client's credentials, and the DIGEST-MD5 mechanism, both sides.
//! GSSAPI (Kerberos) is not here yet: a JAAS section that asks for it is refused.

pub mod digest_md5;
pub mod jaas;
