//! TLS keys as ZooKeeper 3.8 reads them. Between members: `sslQuorum`, `portUnification` and the
//! `ssl.quorum.*` family. For clients: `secureClientPort` (and its address), a
//! plaintext-or-TLS `clientPort` with `client.portUnification`, `client.certReload`, the `ssl.*` stores,
//! protocols, suites and client authentication, and x509 authentication (`authProvider.N=…
//! X509AuthenticationProvider`, `ssl.authProvider`, `X509AuthenticationProvider.superUser`).
//!
//! Keys are gathered as read (from zoo.cfg, or JVM flags where zoo.cfg does not set them) and resolved
//! once by [`Config::load_tls`](super::Config::load_tls), so a password may come from a
//! file and a store's type from its name whichever order the keys came in.

use std::collections::BTreeMap;
use std::net::IpAddr;

use fk_tls::TlsSettings;

/// ZooKeeper's x509 authentication provider.
pub const X509_PROVIDER: &str = "org.apache.zookeeper.server.auth.X509AuthenticationProvider";

/// Every client TLS key taken here (without the `zookeeper.` prefix).
pub const KEYS: &[&str] = &[
    "secureClientPort",
    "secureClientPortAddress",
    "client.portUnification",
    "client.certReload",
    "ssl.keyStore.location",
    "ssl.keyStore.password",
    "ssl.keyStore.passwordPath",
    "ssl.keyStore.type",
    "ssl.trustStore.location",
    "ssl.trustStore.password",
    "ssl.trustStore.passwordPath",
    "ssl.trustStore.type",
    "ssl.clientAuth",
    "ssl.protocol",
    "ssl.enabledProtocols",
    "ssl.ciphersuites",
    // A client's setting; the server does not check client host names (ZooKeeper's ClientX509Util).
    "ssl.hostnameVerification",
    "ssl.handshakeDetectionTimeoutMillis",
    "ssl.authProvider",
    "X509AuthenticationProvider.superUser",
    // Netty's engine choice (JDK or OpenSSL); rustls is the one engine here.
    "ssl.sslProvider",
];

/// Every quorum TLS key taken here (without the `zookeeper.` prefix).
pub const QUORUM_KEYS: &[&str] = &[
    "sslQuorum",
    "portUnification",
    "ssl.quorum.keyStore.location",
    "ssl.quorum.keyStore.password",
    "ssl.quorum.keyStore.passwordPath",
    "ssl.quorum.keyStore.type",
    "ssl.quorum.trustStore.location",
    "ssl.quorum.trustStore.password",
    "ssl.quorum.trustStore.passwordPath",
    "ssl.quorum.trustStore.type",
    "ssl.quorum.clientAuth",
    "ssl.quorum.protocol",
    "ssl.quorum.enabledProtocols",
    "ssl.quorum.ciphersuites",
    "ssl.quorum.hostnameVerification",
    // Accepted without its own bound: the election and quorum ports' admission deadlines (syncLimit and
    // initLimit ticks) bound every opening there, a TLS handshake and its detection included.
    "ssl.quorum.handshakeDetectionTimeoutMillis",
    "sslQuorumReloadCertFiles",
];

/// TLS between members, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumTls {
    /// `sslQuorum`: connections this member makes to others (election and learner) use TLS.
    pub ssl_quorum: bool,
    /// `portUnification`: the election and quorum ports take TLS and plaintext alike; without it they
    /// take only what `sslQuorum` says. Turned on for the rolling move to (or from) TLS.
    pub port_unification: bool,
    /// The `ssl.quorum.*` stores and choices; `verify_hostname` applies both ways between members.
    pub settings: TlsSettings,
    /// `sslQuorumReloadCertFiles`: the stores are read again when their files change.
    pub reload: bool,
}

/// Resolves the quorum keys. `Ok(None)` when neither `sslQuorum` nor `portUnification` is on.
pub fn resolve_quorum(raw: &BTreeMap<String, RawValue>) -> Result<Option<QuorumTls>, String> {
    let get = |key: &str| raw.get(key).map(|r| r.value.trim().to_owned()).filter(|v| !v.is_empty());
    let at = |key: &str, reason: String| match raw.get(key) {
        Some(r) => format!("{}: {key}: {reason}", r.source),
        None => format!("{key}: {reason}"),
    };
    let is_true = |key: &str| get(key).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let (ssl_quorum, port_unification) = (is_true("sslQuorum"), is_true("portUnification"));
    if !ssl_quorum && !port_unification {
        return Ok(None);
    }
    let settings = TlsSettings::from_keys("ssl.quorum", &get).map_err(|bad| at(&bad.key, bad.reason))?;
    let switch = if ssl_quorum { "sslQuorum" } else { "portUnification" };
    for (store, key) in [
        (&settings.key_store, "ssl.quorum.keyStore.location"),
        (&settings.trust_store, "ssl.quorum.trustStore.location"),
    ] {
        if store.is_none() {
            return Err(at(
                switch,
                format!("TLS between members needs {key} (each member proves itself to the others)"),
            ));
        }
    }
    Ok(Some(QuorumTls { ssl_quorum, port_unification, settings, reload: is_true("sslQuorumReloadCertFiles") }))
}

/// A key's value and where it came from (`zoo.cfg:12`, or a JVM flag), for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawValue {
    pub value: String,
    pub source: String,
}

/// The client port's TLS, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTls {
    /// `secureClientPort`: a port where every connection is TLS.
    pub secure_port: Option<u16>,
    /// `secureClientPortAddress` (default: every address).
    pub secure_address: Option<IpAddr>,
    /// `client.portUnification`: the plaintext client port also takes TLS, told apart by the first byte.
    pub port_unification: bool,
    /// `client.certReload`: the stores are read again when their files change.
    pub cert_reload: bool,
    pub settings: TlsSettings,
    /// The client certificate's subject becomes an `x509` id (`authProvider.N=…X509AuthenticationProvider`).
    /// Without it, ZooKeeper closes every connection that presented a certificate it asked for.
    pub x509: bool,
    /// `X509AuthenticationProvider.superUser`: the subject that bypasses every ACL.
    pub x509_super_user: Option<String>,
    /// `ssl.handshakeDetectionTimeoutMillis` (ZooKeeper's default 5 s): how long a TLS handshake may take.
    pub handshake_timeout_ms: u64,
}

/// Resolves the gathered keys. `Ok(None)` when no port asks for TLS (ssl.* keys alone serve nothing on
/// the client port, as in ZooKeeper; the caller warns about them).
pub fn resolve(raw: &BTreeMap<String, RawValue>, x509_provider: bool) -> Result<Option<ClientTls>, String> {
    let get = |key: &str| raw.get(key).map(|r| r.value.trim().to_owned()).filter(|v| !v.is_empty());
    let at = |key: &str, reason: String| match raw.get(key) {
        Some(r) => format!("{}: {key}: {reason}", r.source),
        None => format!("{key}: {reason}"),
    };
    let is_true = |key: &str| get(key).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let secure_port = match get("secureClientPort") {
        Some(v) => match v.parse::<u16>() {
            // 0 is no secure port, as in ZooKeeper.
            Ok(0) => None,
            Ok(port) => Some(port),
            Err(_) => return Err(at("secureClientPort", format!("'{v}' is not a port number"))),
        },
        None => None,
    };
    let secure_address = match get("secureClientPortAddress") {
        Some(v) => Some(v.parse().map_err(|_| at("secureClientPortAddress", format!("'{v}' is not an IP address")))?),
        None => None,
    };
    let port_unification = is_true("client.portUnification");
    if secure_port.is_none() && !port_unification {
        if let Some(key) = ["secureClientPortAddress", "client.certReload"].into_iter().find(|k| get(k).is_some()) {
            return Err(at(key, "no port serves TLS: set secureClientPort or client.portUnification=true".into()));
        }
        return Ok(None);
    }
    let settings = TlsSettings::from_keys("ssl", &get).map_err(|bad| at(&bad.key, bad.reason))?;
    if let Some(scheme) = get("ssl.authProvider").filter(|s| s != "x509") {
        return Err(at(
            "ssl.authProvider",
            format!(
                "'{scheme}': x509 (X509AuthenticationProvider) is the only certificate authentication provider here"
            ),
        ));
    }
    let handshake_timeout_ms = match get("ssl.handshakeDetectionTimeoutMillis") {
        Some(v) => match v.parse::<u64>() {
            Ok(ms) if ms > 0 => ms,
            _ => return Err(at("ssl.handshakeDetectionTimeoutMillis", format!("'{v}' is not a positive integer"))),
        },
        None => 5000,
    };
    Ok(Some(ClientTls {
        secure_port,
        secure_address,
        port_unification,
        cert_reload: is_true("client.certReload"),
        settings,
        x509: x509_provider,
        x509_super_user: get("X509AuthenticationProvider.superUser"),
        handshake_timeout_ms,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> BTreeMap<String, RawValue> {
        pairs
            .iter()
            .enumerate()
            .map(|(i, (k, v))| (k.to_string(), RawValue { value: v.to_string(), source: format!("zoo.cfg:{}", i + 1) }))
            .collect()
    }

    #[test]
    fn no_port_no_tls_and_keys_that_need_a_port_say_so() {
        assert_eq!(resolve(&raw(&[("ssl.keyStore.location", "/k.pem")]), false), Ok(None));
        let error = resolve(&raw(&[("client.certReload", "true")]), false).unwrap_err();
        assert!(error.starts_with("zoo.cfg:1: client.certReload: no port serves TLS"), "{error}");
    }

    #[test]
    fn ports_and_x509() {
        let tls = resolve(
            &raw(&[
                ("secureClientPort", "2281"),
                ("ssl.keyStore.location", "/etc/zk/server.p12"),
                ("X509AuthenticationProvider.superUser", "CN=admin"),
            ]),
            true,
        )
        .unwrap()
        .unwrap();
        assert_eq!((tls.secure_port, tls.port_unification, tls.x509), (Some(2281), false, true));
        assert_eq!(tls.x509_super_user.as_deref(), Some("CN=admin"));
        assert_eq!(tls.handshake_timeout_ms, 5000);
        assert_eq!(resolve(&raw(&[("secureClientPort", "0")]), false), Ok(None), "0 is no secure port");
    }

    #[test]
    fn bad_values_name_their_line_and_key() {
        let cases = [
            (("ssl.clientAuth", "always"), "zoo.cfg:2: ssl.clientAuth: 'always' is not none, want or need"),
            (("ssl.keyStore.type", "p12"), "zoo.cfg:2: ssl.keyStore.type: 'p12' is not a store type"),
            (("ssl.enabledProtocols", "TLSv1"), "zoo.cfg:2: ssl.enabledProtocols: no protocol ferrokeeper speaks"),
            (("ssl.authProvider", "x509custom"), "zoo.cfg:2: ssl.authProvider: 'x509custom'"),
            (("secureClientPortAddress", "any"), "zoo.cfg:2: secureClientPortAddress: 'any' is not an IP"),
        ];
        for ((key, value), expected) in cases {
            let error = resolve(&raw(&[("secureClientPort", "2281"), (key, value)]), false).unwrap_err();
            assert!(error.starts_with(expected), "{key}={value}: {error}");
        }
    }
}
