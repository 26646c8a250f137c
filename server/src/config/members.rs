//! `server.N` lines and hosts as Java reads and prints them live in the pure crate
//! ([`fk_core::servers`]); what is here is the one thing a pure crate may not do: ask the resolver.

use std::net::{SocketAddr, ToSocketAddrs};

pub use fk_core::servers::*;

/// Resolving a configured host and port (a driver's job: the pure crate never touches the network).
pub trait Resolve {
    /// The address to bind or connect to: an IP literal as Java reads it, `""` as localhost, otherwise
    /// the first address the resolver gives (as `new InetSocketAddress(host, port)` does).
    fn to_socket_addr(&self) -> std::io::Result<SocketAddr>;
}

impl Resolve for HostPort {
    fn to_socket_addr(&self) -> std::io::Result<SocketAddr> {
        if let Some(ip) = java_ip_literal(&self.host) {
            return Ok(SocketAddr::new(ip, self.port));
        }
        let host = if self.host.is_empty() { "localhost" } else { self.host.as_str() };
        (host, self.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, format!("{host} has no address")))
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    #[test]
    fn an_empty_host_is_localhost() {
        assert_eq!(HostPort::new("", 1).to_socket_addr().unwrap().ip(), IpAddr::from([127, 0, 0, 1]));
        assert_eq!(HostPort::new("10.1.2.3", 7).to_socket_addr().unwrap(), SocketAddr::from(([10, 1, 2, 3], 7)));
    }
}
