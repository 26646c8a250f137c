//! rustls configurations from ZooKeeper's settings: protocols and cipher suites by their Java names,
//! client authentication none/want/need, and (for clients) hostname verification that can be turned
//! off as `ssl.hostnameVerification=false` does.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use crate::TlsError;
use crate::store::{self, StoreSpec};

/// `ssl.clientAuth`: whether a client must, may or may not present a certificate. ZooKeeper's default
/// is `need`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    None,
    Want,
    #[default]
    Need,
}

impl ClientAuth {
    /// ZooKeeper's `ClientAuth.fromPropertyValue`: none, want or need, any case.
    pub fn from_name(name: &str) -> Option<ClientAuth> {
        match name.trim().to_ascii_lowercase().as_str() {
            "none" => Some(ClientAuth::None),
            "want" => Some(ClientAuth::Want),
            "need" => Some(ClientAuth::Need),
            _ => None,
        }
    }
}

/// The TLS versions to offer, from `ssl.enabledProtocols` (or `ssl.protocol` alone, ZooKeeper 3.8's
/// default being `TLSv1.2` only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocols(Vec<&'static rustls::SupportedProtocolVersion>);

impl Protocols {
    /// Java protocol names. TLSv1 and TLSv1.1 are skipped as Java 17 disables them; SSLv3 too. An unknown
    /// name, or nothing left, is an error.
    pub fn from_java_names(names: &[String]) -> Result<Protocols, String> {
        let mut versions = Vec::new();
        for name in names {
            match name.trim() {
                "TLSv1.3" => versions.push(&rustls::version::TLS13),
                "TLSv1.2" => versions.push(&rustls::version::TLS12),
                "TLSv1.1" | "TLSv1" | "SSLv3" => {}
                other => return Err(format!("unknown protocol '{other}'")),
            }
        }
        if versions.is_empty() {
            return Err("no protocol ferrokeeper speaks (TLSv1.2, TLSv1.3) is enabled".into());
        }
        versions.dedup();
        Ok(Protocols(versions))
    }
}

impl Default for Protocols {
    fn default() -> Self {
        Protocols(vec![&rustls::version::TLS12])
    }
}

/// One side's TLS settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsSettings {
    pub key_store: Option<StoreSpec>,
    pub trust_store: Option<StoreSpec>,
    /// Server side only.
    pub client_auth: ClientAuth,
    pub protocols: Protocols,
    /// `ssl.ciphersuites` (Java names); rustls' own list when `None`.
    pub cipher_suites: Option<Vec<String>>,
    /// Client side only: `ssl.hostnameVerification` (default true).
    pub verify_hostname: bool,
}

/// A setting that cannot be taken: its key (with the prefix it was read under) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadKey {
    pub key: String,
    pub reason: String,
}

impl TlsSettings {
    /// ZooKeeper's X509Util keys under `prefix` (`ssl` for clients, `ssl.quorum` between members): the
    /// key and trust stores (a password from `*.password` or the file `*.passwordPath` names, the type
    /// from `*.type` or the file name), `clientAuth` (need by default), the protocols (`enabledProtocols`,
    /// else `protocol`, else TLSv1.2 as in ZooKeeper 3.8), `ciphersuites` and `hostnameVerification`.
    /// `get` gives a key's value, trimmed, or `None` when unset or empty.
    pub fn from_keys(prefix: &str, get: &dyn Fn(&str) -> Option<String>) -> Result<TlsSettings, BadKey> {
        let key = |name: &str| format!("{prefix}.{name}");
        let bad = |name: &str, reason: String| BadKey { key: key(name), reason };
        let store = |store: &str| -> Result<Option<StoreSpec>, BadKey> {
            let store_type = match get(&key(&format!("{store}.type"))) {
                Some(name) => Some(store::StoreType::from_name(&name).ok_or_else(|| {
                    bad(&format!("{store}.type"), format!("'{name}' is not a store type (PEM, PKCS12, JKS or BCFKS)"))
                })?),
                None => None,
            };
            let Some(location) = get(&key(&format!("{store}.location"))) else { return Ok(None) };
            let password = match get(&key(&format!("{store}.password"))) {
                Some(password) => Some(password),
                None => match get(&key(&format!("{store}.passwordPath"))) {
                    Some(path) => Some(read_secret(&path).map_err(|e| bad(&format!("{store}.passwordPath"), e))?),
                    None => None,
                },
            };
            Ok(Some(StoreSpec { location: location.into(), password, store_type }))
        };
        let client_auth = match get(&key("clientAuth")) {
            Some(v) => ClientAuth::from_name(&v)
                .ok_or_else(|| bad("clientAuth", format!("'{v}' is not none, want or need")))?,
            None => ClientAuth::Need,
        };
        let protocols = match (get(&key("enabledProtocols")), get(&key("protocol"))) {
            (Some(list), _) => {
                Protocols::from_java_names(&split(&list)).map_err(|reason| bad("enabledProtocols", reason))?
            }
            (None, Some(one)) => Protocols::from_java_names(&[one]).map_err(|reason| bad("protocol", reason))?,
            (None, None) => Protocols::default(),
        };
        Ok(TlsSettings {
            key_store: store("keyStore")?,
            trust_store: store("trustStore")?,
            client_auth,
            protocols,
            cipher_suites: get(&key("ciphersuites")).map(|list| split(&list)),
            // Boolean.parseBoolean of the value, true when unset.
            verify_hostname: get(&key("hostnameVerification")).is_none_or(|v| v.eq_ignore_ascii_case("true")),
        })
    }
}

/// ZooKeeper's comma-separated lists.
fn split(list: &str) -> Vec<String> {
    list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// ZooKeeper's `SecretUtils.readSecret`: the file's text, less one trailing line separator.
fn read_secret(path: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    Ok(text.strip_suffix('\n').unwrap_or(&text).to_owned())
}

impl TlsSettings {
    /// The store files, to watch for reloading.
    pub fn store_files(&self) -> Vec<std::path::PathBuf> {
        [&self.key_store, &self.trust_store].into_iter().flatten().map(|s| s.location.clone()).collect()
    }
}

/// What was built, and what the operator should be told about it (suites named but not available).
pub struct Built<T> {
    pub config: Arc<T>,
    pub notes: Vec<String>,
}

/// The server side: needs a key store; a trust store when clients are asked for certificates.
pub fn server_config(settings: &TlsSettings) -> Result<Built<ServerConfig>, TlsError> {
    let key_store = settings.key_store.as_ref().ok_or(TlsError::Setting {
        key: "ssl.keyStore.location",
        reason: "TLS for clients needs the server's key store".into(),
    })?;
    let keys = store::load_key_store(key_store)?;
    let (provider, notes) = provider(settings)?;
    let builder =
        ServerConfig::builder_with_provider(provider.clone()).with_protocol_versions(&settings.protocols.0)?;
    let builder = match settings.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Want | ClientAuth::Need => {
            let spec = settings.trust_store.as_ref().ok_or(TlsError::Setting {
                key: "ssl.trustStore.location",
                reason: "ssl.clientAuth asks clients for certificates (want or need, need being the default), \
                         and a trust store must say which to accept; set it, or ssl.clientAuth=none"
                    .into(),
            })?;
            let roots = roots(spec)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
            let verifier =
                if settings.client_auth == ClientAuth::Want { verifier.allow_unauthenticated() } else { verifier };
            let verifier = verifier.build().map_err(|e| TlsError::Setting {
                key: "ssl.trustStore.location",
                reason: format!("cannot verify clients with it: {e}"),
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder.with_single_cert(keys.chain, keys.key).map_err(|e| TlsError::Setting {
        key: "ssl.keyStore.location",
        reason: format!("its key does not serve: {e}"),
    })?;
    Ok(Built { config: Arc::new(config), notes })
}

/// The client side: a trust store is required (there is no system default here); a key store when the
/// server asks for a certificate.
pub fn client_config(settings: &TlsSettings) -> Result<Built<ClientConfig>, TlsError> {
    let spec = settings.trust_store.as_ref().ok_or(TlsError::Setting {
        key: "ssl.trustStore.location",
        reason: "a TLS client needs a trust store to check the server's certificate".into(),
    })?;
    let roots = roots(spec)?;
    let (provider, notes) = provider(settings)?;
    let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone()).build().map_err(|e| {
        TlsError::Setting { key: "ssl.trustStore.location", reason: format!("cannot verify servers with it: {e}") }
    })?;
    let builder = ClientConfig::builder_with_provider(provider).with_protocol_versions(&settings.protocols.0)?;
    let builder = if settings.verify_hostname {
        builder.with_webpki_verifier(webpki)
    } else {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyHostname(webpki)))
    };
    let config = match &settings.key_store {
        Some(spec) => {
            let keys = store::load_key_store(spec)?;
            builder.with_client_auth_cert(keys.chain, keys.key).map_err(|e| TlsError::Setting {
                key: "ssl.keyStore.location",
                reason: format!("its key does not serve: {e}"),
            })?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Built { config: Arc::new(config), notes })
}

/// The name a client checks the server's certificate against: the host of `host:port` (an IP address
/// or a DNS name; an IPv6 address in brackets).
pub fn server_name(host_port: &str) -> Result<ServerName<'static>, TlsError> {
    let host = host_port.rsplit_once(':').map_or(host_port, |(host, _)| host).trim_matches(['[', ']']);
    ServerName::try_from(host.to_owned())
        .map_err(|e| TlsError::Certificate(format!("{host} is not a name a certificate can be checked against: {e}")))
}

/// Whether a peer's certificate names the address it connected from (an IP address entry), which
/// ZooKeeper checks of a member dialling in when `ssl.quorum.hostnameVerification` is on.
pub fn certificate_names_address(certificate: &CertificateDer<'_>, address: std::net::IpAddr) -> Result<(), String> {
    let certificate =
        webpki::EndEntityCert::try_from(certificate).map_err(|e| format!("unreadable certificate: {e}"))?;
    let name = ServerName::IpAddress(address.into());
    certificate
        .verify_is_valid_for_subject_name(&name)
        .map_err(|e| format!("its certificate is not for {address} ({e:?})"))
}

fn roots(spec: &StoreSpec) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for certificate in store::load_trust_store(spec)? {
        roots.add(certificate).map_err(|e| TlsError::Store {
            path: spec.location.clone(),
            reason: format!("a certificate in it cannot be a trust anchor: {e}"),
        })?;
    }
    Ok(Arc::new(roots))
}

/// ring's provider with the cipher suites `ssl.ciphersuites` names (Java names, which are IANA's), in
/// the order given. Names rustls does not implement (CBC suites, mostly) are skipped and noted.
fn provider(settings: &TlsSettings) -> Result<(Arc<CryptoProvider>, Vec<String>), TlsError> {
    // Deprecated only for lacking post-quantum key exchange, which no ZooKeeper client (Java 17's JSSE,
    // Python's OpenSSL builds) offers yet; ring builds with a C compiler alone, aws-lc-rs wants more.
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    let mut notes = Vec::new();
    if let Some(names) = &settings.cipher_suites {
        let available = std::mem::take(&mut provider.cipher_suites);
        for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
            match available.iter().find(|suite| java_suite_name(suite).as_deref() == Some(name)) {
                Some(suite) => provider.cipher_suites.push(*suite),
                None => notes.push(format!("ssl.ciphersuites: {name} is not available here; skipped")),
            }
        }
        if provider.cipher_suites.is_empty() {
            let known: Vec<String> = available.iter().filter_map(java_suite_name).collect();
            return Err(TlsError::Setting {
                key: "ssl.ciphersuites",
                reason: format!("none of the suites named is available; these are: {}", known.join(", ")),
            });
        }
    }
    Ok((Arc::new(provider), notes))
}

/// rustls writes TLS 1.3 suites as `TLS13_…`; Java and IANA as `TLS_…`.
fn java_suite_name(suite: &rustls::SupportedCipherSuite) -> Option<String> {
    let name = suite.suite().as_str()?;
    Some(name.strip_prefix("TLS13_").map_or_else(|| name.to_owned(), |rest| format!("TLS_{rest}")))
}

/// `ssl.hostnameVerification=false`: the chain is verified as usual, the name it was issued for is not.
#[derive(Debug)]
struct AnyHostname(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHostname {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_by_java_name() {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let both = Protocols::from_java_names(&names(&["TLSv1.3", "TLSv1.2", "TLSv1.1"]));
        assert_eq!(both.unwrap().0.len(), 2);
        let old = Protocols::from_java_names(&names(&["TLSv1", "TLSv1.1"]));
        assert!(old.unwrap_err().contains("no protocol ferrokeeper speaks"));
        assert_eq!(Protocols::from_java_names(&names(&["TLSv9"])).unwrap_err(), "unknown protocol 'TLSv9'");
    }

    #[test]
    fn settings_from_zookeepers_keys() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("pw");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let keys = [
            ("ssl.quorum.keyStore.location", "/etc/zk/server.p12".to_owned()),
            ("ssl.quorum.keyStore.passwordPath", secret.display().to_string()),
            ("ssl.quorum.trustStore.location", "/etc/zk/ca.pem".to_owned()),
            ("ssl.quorum.trustStore.type", "pem".to_owned()),
            ("ssl.quorum.hostnameVerification", "False".to_owned()),
        ];
        let get = |k: &str| keys.iter().find(|(key, _)| *key == k).map(|(_, v)| v.clone());
        let settings = TlsSettings::from_keys("ssl.quorum", &get).unwrap();
        assert_eq!(settings.client_auth, ClientAuth::Need);
        assert_eq!(settings.protocols, Protocols::default());
        assert!(!settings.verify_hostname);
        let key_store = settings.key_store.unwrap();
        assert_eq!(key_store.password.as_deref(), Some("s3cret"));
        assert_eq!(key_store.store_type, None, "inferred from the name when loaded");
        assert_eq!(settings.trust_store.unwrap().store_type, Some(store::StoreType::Pem));
        let bad = [("ssl.clientAuth", "always"), ("ssl.keyStore.type", "p12"), ("ssl.enabledProtocols", "TLSv1")];
        for (key, value) in bad {
            let get = |k: &str| (k == key).then(|| value.to_owned());
            let error = TlsSettings::from_keys("ssl", &get).unwrap_err();
            assert_eq!(error.key, key, "{error:?}");
        }
    }

    #[test]
    fn cipher_suites_by_java_name() {
        let settings = TlsSettings {
            cipher_suites: Some(vec![
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384".into(),
                "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA".into(),
                "TLS_AES_128_GCM_SHA256".into(),
            ]),
            ..TlsSettings::default()
        };
        let (chosen, notes) = provider(&settings).unwrap();
        let chosen: Vec<String> = chosen.cipher_suites.iter().filter_map(java_suite_name).collect();
        assert_eq!(chosen, ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256"]);
        assert_eq!(notes, ["ssl.ciphersuites: TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA is not available here; skipped"]);
        let none = TlsSettings { cipher_suites: Some(vec!["TLS_RSA_WITH_NULL_SHA".into()]), ..TlsSettings::default() };
        let Err(error) = provider(&none) else { panic!("a list of unknown suites must be refused") };
        assert!(error.to_string().contains("TLS_AES_256_GCM_SHA384"), "{error}");
    }
}
