//! Fail closed on security keys: every ZooKeeper 3.8 setting that asks for a security property
//! ferrokeeper does not provide (certificate revocation, other authentication providers, Kerberos name
//! mapping rules, other digest algorithms) stops start-up with the key and what to do. Accepting such a key and ignoring it would start
//! a server that looks secured and serves in plaintext, unauthenticated.
//!
//! Each key is judged on its value where the value can turn the property off (`sslQuorum=false` asks for
//! nothing); a key that only configures a property (a keystore path, a JAAS file, a principal) asks for
//! it by being there. Keys are compared without the `zookeeper.` prefix (zoo.cfg and system-property
//! spellings alike).
//!
//! ZooKeeper's start scripts also take these as JVM flags (`SERVER_JVMFLAGS="-Dzookeeper.authProvider.1=…
//! -Djava.security.auth.login.config=…"`, as container images and Kafka's guides set them), which a
//! drop-in replacement inherits from the same service definition: [`check_jvm_flags`] refuses those too.

/// Why a key is refused: the property family it belongs to, told to the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Client connections over TLS (`secureClientPort`, `ssl.*`, port unification, certificate reload).
    ClientTls,
    /// Quorum and election connections over TLS (`sslQuorum`, `ssl.quorum.*`, `portUnification`).
    QuorumTls,
    /// SASL (DIGEST-MD5 or Kerberos) for clients, and what requires clients to authenticate.
    ClientSasl,
    /// An `authProvider.N` class other than the built-in digest and ip providers.
    AuthProvider,
    /// Digest authentication other than ZooKeeper's default (SHA1, enabled).
    Digest,
}

impl Refusal {
    fn explain(self) -> &'static str {
        match self {
            Refusal::ClientTls => {
                "this TLS setting is not supported (certificate revocation checks, a custom SSLContext supplier, \
                 TLS for the AdminServer); ferrokeeper refuses to start rather than serve with less protection \
                 than asked. Client TLS itself is provided: secureClientPort, client.portUnification, \
                 client.certReload, ssl.keyStore.*, ssl.trustStore.*, ssl.clientAuth, ssl.protocol, \
                 ssl.enabledProtocols, ssl.ciphersuites and x509 authentication"
            }
            Refusal::QuorumTls => {
                "this setting of TLS between members is not supported (revocation checks, a custom SSLContext \
                 supplier); ferrokeeper refuses to start rather than run with less protection than asked. TLS \
                 between members itself is provided: sslQuorum, portUnification, sslQuorumReloadCertFiles and \
                 the ssl.quorum.* stores, protocols, suites, clientAuth and hostnameVerification"
            }
            Refusal::ClientSasl => {
                "this part of SASL authentication is not supported (DIGEST-MD5 and Kerberos against a JAAS file \
                 are, with kerberos.removeHostFromPrincipal and removeRealmFromPrincipal; auth_to_local rules \
                 other than DEFAULT are not); ferrokeeper refuses to start rather than give clients identities \
                 other than those asked for. Remove the key, or write security.auth_to_local=DEFAULT"
            }
            Refusal::AuthProvider => {
                "this authentication provider is not available in ferrokeeper, whose ACLs know the world, auth, \
                 digest, ip, sasl and super schemes only; an ACL relying on it could not be enforced. Remove the \
                 key (org.apache.zookeeper.server.auth.DigestAuthenticationProvider and IPAuthenticationProvider \
                 are built in, SASLAuthenticationProvider is provided)"
            }
            Refusal::Digest => {
                "ferrokeeper's digest authentication is ZooKeeper's default (SHA1, enabled); another algorithm or \
                 turning it off is not supported yet, and ignoring the setting would let digest identities in \
                 that it meant to keep out. Remove the key"
            }
        }
    }
}

/// How a key asks for its property.
#[derive(Debug, Clone, Copy)]
enum Asks {
    /// By being set, whatever its value.
    Always,
    /// When its value is `true` (Java's `Boolean.parseBoolean`: any case).
    WhenTrue,
}

/// Every security key ZooKeeper 3.8 reads (without the `zookeeper.` prefix), by exact name.
const KEYS: &[(&str, Asks, Refusal)] = &[
    ("admin.forceHttps", Asks::WhenTrue, Refusal::ClientTls),
    ("admin.portUnification", Asks::WhenTrue, Refusal::ClientTls),
    // x509 client certificates for the AdminServer's authenticated commands.
    ("admin.needClientAuth", Asks::WhenTrue, Refusal::ClientTls),
    // Java's revocation checking fetches CRLs and OCSP answers over the network.
    ("ssl.crl", Asks::WhenTrue, Refusal::ClientTls),
    ("ssl.ocsp", Asks::WhenTrue, Refusal::ClientTls),
    ("ssl.quorum.crl", Asks::WhenTrue, Refusal::QuorumTls),
    ("ssl.quorum.ocsp", Asks::WhenTrue, Refusal::QuorumTls),
    // The principal a client expects of the server: a client setting, whose meaning on a server (which
    // takes its own from the JAAS file) would be a guess.
    ("server.principal", Asks::Always, Refusal::ClientSasl),
    // Read by no ZooKeeper 3.8 code, but Kafka's guides pair it with the SASL provider to require
    // authentication: whoever wrote it asked for that.
    ("requireClientAuthScheme", Asks::Always, Refusal::ClientSasl),
];

/// Authentication providers every ZooKeeper registers anyway; naming them in `authProvider.N` changes
/// nothing, here as there.
const BUILT_IN_PROVIDERS: &[&str] = &[
    "org.apache.zookeeper.server.auth.DigestAuthenticationProvider",
    "org.apache.zookeeper.server.auth.IPAuthenticationProvider",
];

/// Why `key=value` (the key without its `zookeeper.` prefix) cannot be honoured, if it cannot.
pub fn refusal(key: &str, value: &str) -> Option<&'static str> {
    refused_family(key, value.trim()).map(Refusal::explain)
}

fn refused_family(key: &str, value: &str) -> Option<Refusal> {
    if let Some(&(_, asks, family)) = KEYS.iter().find(|(name, _, _)| *name == key) {
        return match asks {
            Asks::Always => Some(family),
            Asks::WhenTrue => value.eq_ignore_ascii_case("true").then_some(family),
        };
    }
    if key.starts_with("ssl.quorum.") {
        return (!super::tls::QUORUM_KEYS.contains(&key)).then_some(Refusal::QuorumTls);
    }
    if key.starts_with("ssl.") {
        return (!super::tls::KEYS.contains(&key)).then_some(Refusal::ClientTls);
    }
    if key.starts_with("authProvider.") {
        let provided =
            BUILT_IN_PROVIDERS.contains(&value) || value == super::SASL_PROVIDER || value == super::tls::X509_PROVIDER;
        return (!provided).then_some(Refusal::AuthProvider);
    }
    match key {
        // Kerberos principals map to identities by the DEFAULT rule only (fk_gssapi::IdentityRules).
        "security.auth_to_local" => (value != "DEFAULT").then_some(Refusal::ClientSasl),
        // Java's MessageDigest names are case-insensitive; ZooKeeper's default is SHA1.
        "DigestAuthenticationProvider.digestAlg" => {
            (!["SHA1", "SHA-1"].iter().any(|a| a.eq_ignore_ascii_case(value))).then_some(Refusal::Digest)
        }
        // Digest authentication is on unless this says exactly false (Boolean.parseBoolean of the default).
        "DigestAuthenticationProvider.enabled" => value.eq_ignore_ascii_case("false").then_some(Refusal::Digest),
        _ => None,
    }
}

/// Whether `key` (without its `zookeeper.` prefix) is one of the security keys judged here, so that one
/// which asks for nothing (`sslQuorum=false`) is accepted quietly rather than warned about as unknown.
pub fn is_security_key(key: &str) -> bool {
    KEYS.iter().any(|(name, _, _)| *name == key)
        || ["ssl.", "authProvider."].iter().any(|prefix| key.starts_with(prefix))
        || key.starts_with("DigestAuthenticationProvider.")
        || key == "security.auth_to_local"
}

/// The environment variables ZooKeeper's scripts pass to its JVM.
pub const JVM_FLAG_VARIABLES: &[&str] = &["SERVER_JVMFLAGS", "JVMFLAGS"];

/// The first `-Dkey=value` in a JVM flags variable that asks for a security property, as
/// `(key, why)`. Other flags (heap size, jute.maxbuffer, …) are not ours to judge here.
pub fn check_jvm_flags(flags: &str) -> Option<(String, &'static str)> {
    jvm_properties(flags).into_iter().find_map(|(key, value)| {
        let bare = key.strip_prefix("zookeeper.").unwrap_or(&key);
        refusal(bare, &value).map(|why| (key.clone(), why))
    })
}

/// The `-Dkey=value` properties of a JVM flags variable, in order.
pub fn jvm_properties(flags: &str) -> Vec<(String, String)> {
    flags
        .split_whitespace()
        .filter_map(|flag| flag.strip_prefix("-D"))
        .map(|property| {
            let (key, value) = property.split_once('=').unwrap_or((property, ""));
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every security key of ZooKeeper 3.8 a zoo.cfg may hold, with a value, and whether it must stop
    /// start-up (and as which family).
    #[test]
    fn security_keys_are_refused_when_they_ask_for_a_property() {
        use Refusal::*;
        let cases: &[(&str, &str, Option<Refusal>)] = &[
            // Provided: client TLS (config::tls resolves them).
            ("secureClientPort", "2281", None),
            ("secureClientPortAddress", "0.0.0.0", None),
            ("client.portUnification", "true", None),
            ("client.certReload", "TRUE", None),
            ("ssl.keyStore.location", "/etc/zk/keystore.p12", None),
            ("ssl.keyStore.password", "secret", None),
            ("ssl.keyStore.passwordPath", "/etc/zk/pw", None),
            ("ssl.keyStore.type", "PKCS12", None),
            ("ssl.trustStore.location", "/etc/zk/trust.pem", None),
            ("ssl.trustStore.password", "secret", None),
            ("ssl.trustStore.type", "PEM", None),
            ("ssl.clientAuth", "need", None),
            ("ssl.enabledProtocols", "TLSv1.3", None),
            ("ssl.ciphersuites", "TLS_AES_128_GCM_SHA256", None),
            ("ssl.protocol", "TLSv1.2", None),
            ("ssl.hostnameVerification", "false", None),
            ("ssl.handshakeDetectionTimeoutMillis", "5000", None),
            ("ssl.authProvider", "x509", None),
            ("X509AuthenticationProvider.superUser", "CN=admin", None),
            ("authProvider.x509", "org.apache.zookeeper.server.auth.X509AuthenticationProvider", None),
            // Not provided.
            ("admin.forceHttps", "true", Some(ClientTls)),
            ("admin.portUnification", "true", Some(ClientTls)),
            ("admin.needClientAuth", "true", Some(ClientTls)),
            ("admin.needClientAuth", "false", None),
            ("ssl.crl", "true", Some(ClientTls)),
            ("ssl.crl", "false", None),
            ("ssl.ocsp", "true", Some(ClientTls)),
            ("ssl.context.supplier.class", "com.example.Ctx", Some(ClientTls)),
            ("ssl.fancyNewThing", "on", Some(ClientTls)),
            // Provided: TLS between members (config::tls resolves them).
            ("sslQuorum", "true", None),
            ("sslQuorum", "false", None),
            ("portUnification", "true", None),
            ("ssl.quorum.keyStore.location", "/etc/zk/q.p12", None),
            ("ssl.quorum.trustStore.location", "/etc/zk/qt.p12", None),
            ("ssl.quorum.hostnameVerification", "false", None),
            ("ssl.quorum.clientAuth", "need", None),
            // Not provided.
            ("sslQuorumReloadCertFiles", "true", None),
            ("ssl.quorum.crl", "true", Some(QuorumTls)),
            ("ssl.quorum.ocsp", "true", Some(QuorumTls)),
            ("ssl.quorum.context.supplier.class", "com.example.Ctx", Some(QuorumTls)),
            // Provided: requiring authentication (Config::enforce_auth checks the schemes).
            ("sessionRequireClientSASLAuth", "true", None),
            ("enforce.auth.enabled", "true", None),
            ("enforce.auth.schemes", "sasl", None),
            ("security.auth_to_local", "RULE:[1:$1]", Some(ClientSasl)),
            ("security.auth_to_local", "DEFAULT", None),
            // Provided: Kerberos (Config::load_sasl makes its logins ready).
            ("kerberos.removeHostFromPrincipal", "true", None),
            ("kerberos.removeRealmFromPrincipal", "true", None),
            ("server.principal", "zookeeper/host@REALM", Some(ClientSasl)),
            ("requireClientAuthScheme", "sasl", Some(ClientSasl)),
            // Provided: SASL (DIGEST-MD5 and Kerberos) between members (Config::load_quorum_sasl checks them).
            ("quorum.auth.enableSasl", "true", None),
            ("quorum.auth.learnerRequireSasl", "true", None),
            ("quorum.auth.serverRequireSasl", "true", None),
            ("quorum.auth.learner.saslLoginContext", "QuorumLearner", None),
            ("quorum.auth.server.saslLoginContext", "QuorumServer", None),
            ("quorum.auth.kerberos.servicePrincipal", "zkquorum/localhost", None),
            // Provided: SASL (DIGEST-MD5 and Kerberos; the JAAS file's checks are Config::load_sasl's).
            ("authProvider.1", "org.apache.zookeeper.server.auth.SASLAuthenticationProvider", None),
            ("java.security.auth.login.config", "/etc/zk/jaas.conf", None),
            ("sasl.serverconfig", "Server", None),
            ("superUser", "admin", None),
            ("SASLAuthenticationProvider.superPassword", "pw", None),
            ("authProvider.2", "com.example.MyProvider", Some(AuthProvider)),
            ("authProvider.1", "org.apache.zookeeper.server.auth.DigestAuthenticationProvider", None),
            ("authProvider.ip", "org.apache.zookeeper.server.auth.IPAuthenticationProvider", None),
            ("DigestAuthenticationProvider.digestAlg", "SHA-256", Some(Digest)),
            ("DigestAuthenticationProvider.digestAlg", "sha1", None),
            ("DigestAuthenticationProvider.digestAlg", "SHA-1", None),
            ("DigestAuthenticationProvider.enabled", "false", Some(Digest)),
            ("DigestAuthenticationProvider.enabled", "true", None),
            // What ferrokeeper provides, or what asks for no security property.
            ("DigestAuthenticationProvider.superDigest", "super:abc=", None),
            ("skipACL", "no", None),
            ("serverCnxnFactory", "org.apache.zookeeper.server.NettyServerCnxnFactory", None),
            ("allowSaslFailedClients", "false", None),
            ("clientPort", "2181", None),
        ];
        for &(key, value, expected) in cases {
            assert_eq!(refused_family(key, value), expected, "{key}={value}");
        }
        // The table holds no key twice, and every key in it is in the cases above.
        for (i, (name, _, _)) in KEYS.iter().enumerate() {
            assert!(!KEYS[i + 1..].iter().any(|(other, _, _)| other == name), "{name} twice");
            assert!(cases.iter().any(|(key, _, _)| key == name), "{name} untested");
        }
    }

    #[test]
    fn jvm_flags_that_ask_for_security_are_found() {
        let kafka = "-Xmx512m -Djava.security.auth.login.config=/etc/kafka/zk_jaas.conf \
                     -Dzookeeper.authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider \
                     -Dzookeeper.security.auth_to_local=RULE:[2:$1]";
        let (key, why) = check_jvm_flags(kafka).unwrap();
        assert_eq!(key, "zookeeper.security.auth_to_local");
        assert!(why.contains("SASL"));
        let (key, _) = check_jvm_flags("-Dzookeeper.sslQuorum=true -Dzookeeper.ssl.quorum.ocsp=true").unwrap();
        assert_eq!(key, "zookeeper.ssl.quorum.ocsp");
        assert_eq!(check_jvm_flags("-Xmx1g -Djute.maxbuffer=4194304 -Dzookeeper.sslQuorum=false"), None);
        assert_eq!(check_jvm_flags(""), None);
    }
}
