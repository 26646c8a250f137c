//! `server.N` lines, read as ZooKeeper 3.8's `QuorumPeer.QuorumServer` reads them, and hosts printed as
//! Java prints an `InetSocketAddress` created from them (`getHostString`).
//!
//! Syntax: `host:quorumPort:electionPort[:participant|:observer][;[clientHost:]clientPort]`, an IPv6 host
//! in brackets. ZooKeeper reads these values untrimmed (`QuorumMaj` takes the raw property), so trailing
//! blanks make a port unreadable there, and here.
//!
//! Also the members as the ensemble code knows them ([`ServerSpec`]) and as ZooKeeper prints them. No
//! name is resolved here (the drivers resolve, see `ferrokeeper::config::members::Resolve`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A host as written in zoo.cfg (brackets removed) and a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl HostPort {
    pub fn new(host: impl Into<String>, port: u16) -> HostPort {
        HostPort { host: host.into(), port }
    }
}

/// `host:port` as ZooKeeper prints it in config text: the host as Java's `getHostString` gives it,
/// bracketed when it holds a colon.
impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = java_host_string(&self.host);
        if host.contains(':') { write!(f, "[{host}]:{}", self.port) } else { write!(f, "{host}:{}", self.port) }
    }
}

/// The parts of one `server.N` value, before any cross-member check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLine {
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
    /// `None`: no role written (a participant).
    pub observer: Option<bool>,
    /// `(host, port)`; the host is `None` for a bare port (ZooKeeper then binds 0.0.0.0).
    pub client: Option<(Option<String>, u16)>,
}

/// Why a `server.N` value was refused; the caller adds file, line and key.
pub fn parse_server_line(sid: i64, value: &str) -> Result<ServerLine, String> {
    let wrong_format =
        || format!("'{value}' is not host:quorumPort:electionPort[:participant|:observer][;[clientHost:]clientPort]");
    // Java's String.split drops trailing empty strings: "a:1:2;" has no client part.
    let mut parts: Vec<&str> = value.split(';').collect();
    while parts.len() > 1 && parts.last() == Some(&"") {
        parts.pop();
    }
    if parts.len() > 2 {
        return Err(wrong_format());
    }
    let client = match parts.get(1) {
        Some(client) => Some(client_part(client, &wrong_format)?),
        None => None,
    };
    if parts[0].contains('|') {
        // ZooKeeper reads the switch from the JVM property zookeeper.multiAddress.enabled only; the
        // multiAddress.enabled key of zoo.cfg does not turn it on (3.8.0, 3.8.4 and 3.9 alike).
        return Err(format!(
            "multiple addresses were given for sid {sid}, but the multiple address feature is disabled (ZooKeeper \
             enables it only with the JVM property zookeeper.multiAddress.enabled, which ferrokeeper does not support)"
        ));
    }
    let fields = host_and_ports(parts[0])?;
    if !(3..=4).contains(&fields.len()) {
        return Err(wrong_format());
    }
    let quorum_port = port(fields[0], fields[1])?;
    let election_port = port(fields[0], fields[2])?;
    if quorum_port == election_port {
        return Err(format!("the quorum and election ports must differ (both are {quorum_port})"));
    }
    let observer = match fields.get(3).map(|role| role.trim().to_ascii_lowercase()) {
        None => None,
        Some(role) if role == "observer" => Some(true),
        Some(role) if role == "participant" => Some(false),
        Some(_) => return Err(format!("unknown peer role '{}'", fields[3])),
    };
    Ok(ServerLine { host: fields[0].to_owned(), quorum_port, election_port, observer, client })
}

fn client_part(client: &str, wrong_format: &dyn Fn() -> String) -> Result<(Option<String>, u16), String> {
    let fields = host_and_ports(client)?;
    match fields.as_slice() {
        [port_text] => Ok((None, port("", port_text)?)),
        [host, port_text] => Ok((Some((*host).to_owned()), port(host, port_text)?)),
        _ => Err(wrong_format()),
    }
}

/// ZooKeeper's `ConfigUtils.getHostAndPort`: `[v6host]:rest` or a plain `:` split (trailing empty
/// fields dropped, as Java's `split` does).
fn host_and_ports(text: &str) -> Result<Vec<&str>, String> {
    let mut fields: Vec<&str> = if let Some(rest) = text.strip_prefix('[') {
        let close = rest.find(']').ok_or_else(|| format!("'{text}' starts with '[' but has no matching ']:'"))?;
        // Java skips the one character after ']' (meant to be ':') whatever it is.
        let after = &rest[close + 1..];
        match after.chars().next() {
            None => vec![&rest[..close]],
            Some(_) if after.len() == 1 => return Err(format!("'{text}' has no port after the colon")),
            Some(skipped) => std::iter::once(&rest[..close]).chain(after[skipped.len_utf8()..].split(':')).collect(),
        }
    } else {
        text.split(':').collect()
    };
    while fields.len() > 1 && fields.last() == Some(&"") {
        fields.pop();
    }
    Ok(fields)
}

/// Java's `Integer.parseInt` then `new InetSocketAddress`: 0..=65535, an optional `+`, no blanks. Port 0
/// is accepted, as ZooKeeper accepts it (the caller warns).
fn port(host: &str, text: &str) -> Result<u16, String> {
    let number: i64 = text.parse().map_err(|_| format!("'{text}' is not a port number (address {host}:{text})"))?;
    u16::try_from(number).map_err(|_| format!("port out of range: {number}"))
}

/// How Java's `InetSocketAddress.getHostString` shows a host given as text: an IP literal in Java's
/// canonical form (IPv6 uncompressed, lower-case; an IPv4-mapped IPv6 address as IPv4), the empty host as
/// `localhost`, anything else (a name, or something Java does not take as a literal) as written.
pub fn java_host_string(host: &str) -> String {
    if host.is_empty() {
        return "localhost".into();
    }
    match java_ip_literal(host) {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => v6.segments().map(|s| format!("{s:x}")).join(":"),
        None => host.to_owned(),
    }
}

/// An IP literal as `InetAddress.getByName` reads it, or `None` for a host name. IPv4 takes Java's
/// forms (`a.b.c.d`, `a.b.c`, `a.b`, `a`, decimal parts, 15 characters at most); an IPv6 literal that is
/// IPv4-mapped becomes IPv4, as in Java. Scoped IPv6 (`%zone`) is left to the resolver.
pub fn java_ip_literal(host: &str) -> Option<IpAddr> {
    if let Some(v4) = java_ipv4_literal(host) {
        return Some(IpAddr::V4(v4));
    }
    let v6: Ipv6Addr = host.parse().ok()?;
    Some(match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    })
}

/// Java's `IPAddressUtil.textToNumericFormatV4`.
fn java_ipv4_literal(text: &str) -> Option<Ipv4Addr> {
    if text.is_empty() || text.len() > 15 {
        return None;
    }
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() > 4 || parts.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let (last, leading) = parts.split_last()?;
    let mut bytes = [0u8; 4];
    for (i, part) in leading.iter().enumerate() {
        bytes[i] = part.parse().ok()?;
    }
    // The last part fills every byte left.
    let remaining_bits = (4 - leading.len()) * 8;
    let last: u64 = last.parse().ok()?;
    if last >= 1u64 << remaining_bits {
        return None;
    }
    for (i, byte) in bytes.iter_mut().enumerate().skip(leading.len()) {
        *byte = (last >> ((3 - i) * 8)) as u8;
    }
    Some(Ipv4Addr::from(bytes))
}

/// The wildcard of the host's family, as a member bound with `quorumListenOnAllIPs` listens on.
pub fn wildcard_for(host: &str) -> &'static str {
    match java_ip_literal(host) {
        Some(IpAddr::V6(_)) => "::",
        _ => "0.0.0.0",
    }
}

/// Java's `InetAddress.isAnyLocalAddress` for a host as written.
pub fn is_wildcard(host: &str) -> bool {
    java_ip_literal(host).is_some_and(|ip| ip.is_unspecified())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRole {
    Participant,
    Observer,
}

/// One `server.N=host:quorumPort:electionPort[:role][;[clientHost:]clientPort]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    pub id: u64,
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
    pub role: PeerRole,
    pub client_addr: Option<(Option<String>, u16)>,
}

/// A member as ZooKeeper's `QuorumServer.toString` writes it after `server.N=`:
/// `host:quorumPort:electionPort:role[;clientHost:clientPort]`.
pub fn server_text(server: &ServerSpec) -> String {
    let mut text = format!(
        "{}:{}:{}",
        HostPort::new(server.host.clone(), server.quorum_port),
        server.election_port,
        role_name(server.role).to_ascii_lowercase()
    );
    if let Some((host, port)) = &server.client_addr {
        let host = host.clone().unwrap_or_else(|| "0.0.0.0".into());
        text.push_str(&format!(";{}", HostPort::new(host, *port)));
    }
    text
}

pub fn server_spec(id: u64, line: &ServerLine) -> ServerSpec {
    ServerSpec {
        id,
        host: line.host.clone(),
        quorum_port: line.quorum_port,
        election_port: line.election_port,
        role: if line.observer == Some(true) { PeerRole::Observer } else { PeerRole::Participant },
        client_addr: line.client.clone(),
    }
}

/// As ZooKeeper's `LearnerType` prints.
pub fn role_name(role: PeerRole) -> &'static str {
    match role {
        PeerRole::Participant => "PARTICIPANT",
        PeerRole::Observer => "OBSERVER",
    }
}

/// Java's `InetSocketAddress.equals` on two resolved hosts: the same IP. Names other than literals and
/// `localhost` are compared as written (no DNS while reading the configuration).
pub fn same_host(a: &str, b: &str) -> bool {
    let ip =
        |h: &str| java_ip_literal(h).or_else(|| h.eq_ignore_ascii_case("localhost").then(|| [127, 0, 0, 1].into()));
    match (ip(a), ip(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hosts as ZooKeeper 3.8 printed them in QuorumVerifier text (probed with the same zoo.cfg lines).
    #[test]
    fn hosts_print_as_java_prints_them() {
        let cases = [
            ("127.0.0.1", "127.0.0.1"),
            ("127.1", "127.0.0.1"),
            ("127.000.000.001", "127.0.0.1"),
            ("2130706433", "127.0.0.1"),
            ("127.0.0.1.", "127.0.0.1."),
            ("300.1.1.1", "300.1.1.1"),
            ("::1", "0:0:0:0:0:0:0:1"),
            ("0:0:0:0:0:0:0:1", "0:0:0:0:0:0:0:1"),
            ("::", "0:0:0:0:0:0:0:0"),
            ("::ffff:127.0.0.1", "127.0.0.1"),
            ("::1.2.3.4", "0:0:0:0:0:0:102:304"),
            ("FE80::A%lo", "FE80::A%lo"),
            ("", "localhost"),
            ("LOCALHOST", "LOCALHOST"),
            ("no-such-host.invalid", "no-such-host.invalid"),
        ];
        for (host, printed) in cases {
            assert_eq!(java_host_string(host), printed, "{host}");
        }
        assert_eq!(HostPort::new("::1", 2181).to_string(), "[0:0:0:0:0:0:0:1]:2181");
    }

    #[test]
    fn server_values() {
        type Case = (
            &'static str,
            Result<(&'static str, u16, u16, Option<bool>, Option<(Option<&'static str>, u16)>), &'static str>,
        );
        let cases: [Case; 22] = [
            ("a:1:2", Ok(("a", 1, 2, None, None))),
            ("a:1:2:observer;2181", Ok(("a", 1, 2, Some(true), Some((None, 2181))))),
            ("a:1:2: Observer ", Ok(("a", 1, 2, Some(true), None))),
            ("a:1:2:PARTICIPANT;h:7", Ok(("a", 1, 2, Some(false), Some((Some("h"), 7))))),
            ("[::1]:1:2;[::1]:3", Ok(("::1", 1, 2, None, Some((Some("::1"), 3))))),
            ("[localhost]:1:2", Ok(("localhost", 1, 2, None, None))),
            (":1:2", Ok(("", 1, 2, None, None))),
            ("a:+1:2", Ok(("a", 1, 2, None, None))),
            ("a:0:2", Ok(("a", 0, 2, None, None))),
            ("a:1:2;", Ok(("a", 1, 2, None, None))),
            ("a:1:1", Err("the quorum and election ports must differ")),
            ("a:1:2 ", Err("'2 ' is not a port number")),
            ("a:1:2;2181 ", Err("'2181 ' is not a port number")),
            ("a:1:2;x", Err("'x' is not a port number")),
            ("a:1:2;h:", Err("'h' is not a port number")),
            ("a:1:2;a:b:3", Err("is not host:quorumPort")),
            ("a:1:2;3;4", Err("is not host:quorumPort")),
            ("a:1:2:participant:x", Err("is not host:quorumPort")),
            ("::1:2888:3888", Err("is not host:quorumPort")),
            ("[::1:2:3", Err("has no matching ']:'")),
            ("a:70000:2", Err("port out of range: 70000")),
            ("a:1:2|b:1:2", Err("multiple address feature is disabled")),
        ];
        for (value, expected) in cases {
            let got = parse_server_line(1, value);
            match (got, expected) {
                (Ok(line), Ok((host, q, e, observer, client))) => {
                    let client = client.map(|(h, p)| (h.map(str::to_owned), p));
                    assert_eq!(
                        line,
                        ServerLine { host: host.into(), quorum_port: q, election_port: e, observer, client }
                    );
                }
                (Err(reason), Err(text)) => assert!(reason.contains(text), "{value}: {reason}"),
                (got, expected) => panic!("{value}: got {got:?}, expected {expected:?}"),
            }
        }
        assert!(parse_server_line(1, "a:1:2:boss").unwrap_err().contains("unknown peer role 'boss'"));
    }
}
