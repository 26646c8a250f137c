//! Connect strings: `host1:port1,host2:port2/optional/chroot`, as ZooKeeper's `ConnectStringParser`.

use crate::error::Error;

/// The port a host without one is given (ZooKeeper's default client port).
pub const DEFAULT_PORT: u16 = 2181;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectString {
    /// `host:port` pairs in the order given; the client tries them round-robin.
    pub hosts: Vec<String>,
    /// The chroot every path is relative to; `None` for `/`.
    pub chroot: Option<String>,
}

impl ConnectString {
    pub fn parse(text: &str) -> Result<ConnectString, Error> {
        let invalid = |why: &str| Error::InvalidConnectString { text: text.to_owned(), why: why.to_owned() };
        let (host_list, chroot) = match text.find('/') {
            Some(at) => (&text[..at], Some(&text[at..])),
            None => (text, None),
        };
        // ZooKeeper treats a chroot of "/" as none and validates the rest as a path.
        let chroot = match chroot {
            None | Some("/") => None,
            Some(path) => {
                fk_net::path::validate_path(path).map_err(|_| invalid("the chroot is not a valid path"))?;
                Some(path.to_owned())
            }
        };
        let hosts: Vec<String> = host_list
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| if has_port(h) { h.to_owned() } else { format!("{h}:{DEFAULT_PORT}") })
            .collect();
        if hosts.is_empty() {
            return Err(invalid("no host"));
        }
        Ok(ConnectString { hosts, chroot })
    }

    /// The server-side path for a client path.
    pub fn to_server(&self, path: &str) -> String {
        match &self.chroot {
            None => path.to_owned(),
            Some(root) if path == "/" => root.clone(),
            Some(root) => format!("{root}{path}"),
        }
    }

    /// The client path for a server-side path (as the Java client strips its chroot from replies and
    /// events); a path outside the chroot is returned as it is.
    pub fn to_client(&self, path: &str) -> String {
        let Some(root) = &self.chroot else { return path.to_owned() };
        match path.strip_prefix(root.as_str()) {
            Some("") => "/".to_owned(),
            Some(rest) if rest.starts_with('/') => rest.to_owned(),
            _ => path.to_owned(),
        }
    }
}

/// True if `host` ends in `:port` (an IPv6 literal is bracketed: `[::1]:2181`).
fn has_port(host: &str) -> bool {
    match host.rfind(':') {
        None => false,
        Some(at) => host[at + 1..].parse::<u16>().is_ok() && (!host.starts_with('[') || host[..at].ends_with(']')),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_zookeeper() {
        let cases: &[(&str, &[&str], Option<&str>)] = &[
            ("localhost:2181", &["localhost:2181"], None),
            ("a:1,b:2", &["a:1", "b:2"], None),
            ("a,b:3", &["a:2181", "b:3"], None),
            ("a:1,b:2/app", &["a:1", "b:2"], Some("/app")),
            ("a:1/", &["a:1"], None),
            ("[::1]:5/x/y", &["[::1]:5"], Some("/x/y")),
        ];
        for (text, hosts, chroot) in cases {
            let parsed = ConnectString::parse(text).unwrap();
            assert_eq!(parsed.hosts, *hosts, "{text}");
            assert_eq!(parsed.chroot.as_deref(), *chroot, "{text}");
        }
        for bad in ["", "/app", "a:1/app/"] {
            assert!(ConnectString::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn chroot_maps_both_ways() {
        let cs = ConnectString::parse("h:1/app").unwrap();
        let cases = [("/", "/app"), ("/x", "/app/x"), ("/x/y", "/app/x/y")];
        for (client, server) in cases {
            assert_eq!(cs.to_server(client), server);
            assert_eq!(cs.to_client(server), client);
        }
        assert_eq!(cs.to_client("/apple"), "/apple");
    }
}
