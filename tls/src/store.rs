//! Key and trust stores as ZooKeeper's `ssl.keyStore.*` / `ssl.trustStore.*` keys name them: a file, an
//! optional password and a type (PEM or PKCS#12 here; JKS and BCFKS are refused with the command that
//! converts them).

use std::path::{Path, PathBuf};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer};

use crate::TlsError;

/// ZooKeeper's `KeyStoreFileType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    Pem,
    Pkcs12,
    Jks,
    Bcfks,
}

impl StoreType {
    /// A `*.type` value, as ZooKeeper reads it (any case).
    pub fn from_name(name: &str) -> Option<StoreType> {
        match name.trim().to_ascii_uppercase().as_str() {
            "PEM" => Some(StoreType::Pem),
            "PKCS12" => Some(StoreType::Pkcs12),
            "JKS" => Some(StoreType::Jks),
            "BCFKS" => Some(StoreType::Bcfks),
            _ => None,
        }
    }

    /// The type ZooKeeper infers from a file name when `*.type` is not set.
    pub fn from_file_name(path: &Path) -> Option<StoreType> {
        let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
        let extension = name.rsplit_once('.')?.1;
        match extension {
            "pem" => Some(StoreType::Pem),
            "p12" | "pfx" => Some(StoreType::Pkcs12),
            "jks" => Some(StoreType::Jks),
            "bcfks" => Some(StoreType::Bcfks),
            _ => None,
        }
    }
}

/// One store as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSpec {
    pub location: PathBuf,
    /// `*.password`, or the content of `*.passwordPath`.
    pub password: Option<String>,
    /// `*.type`; inferred from the file name when `None`.
    pub store_type: Option<StoreType>,
}

impl StoreSpec {
    fn resolved_type(&self) -> Result<StoreType, TlsError> {
        let store_type = self.store_type.or_else(|| StoreType::from_file_name(&self.location)).ok_or_else(|| {
            self.error(
                "cannot tell the store's type from its file name (.pem, .p12, .pfx, .jks or .bcfks): set its \
                 *.type key to PEM or PKCS12"
                    .into(),
            )
        })?;
        match store_type {
            StoreType::Pem | StoreType::Pkcs12 => Ok(store_type),
            StoreType::Jks | StoreType::Bcfks => {
                let kind = if store_type == StoreType::Jks { "JKS" } else { "BCFKS" };
                let p12 = self.location.with_extension("p12");
                Err(self.error(format!(
                    "{kind} stores are not read by ferrokeeper; convert it to PKCS12 (and set the *.type key to \
                     PKCS12) with: keytool -importkeystore -srckeystore {} -srcstoretype {kind} -destkeystore {} \
                     -deststoretype PKCS12",
                    self.location.display(),
                    p12.display()
                )))
            }
        }
    }

    fn read(&self) -> Result<Vec<u8>, TlsError> {
        std::fs::read(&self.location).map_err(|e| self.error(format!("cannot read it: {e}")))
    }

    fn error(&self, reason: String) -> TlsError {
        TlsError::Store { path: self.location.clone(), reason }
    }
}

/// A certificate chain (leaf first) and its private key.
#[derive(Debug)]
pub struct KeyStore {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Clone for KeyStore {
    fn clone(&self) -> Self {
        KeyStore { chain: self.chain.clone(), key: self.key.clone_key() }
    }
}

/// Reads a key store: the private key and the certificate chain that goes with it.
pub fn load_key_store(spec: &StoreSpec) -> Result<KeyStore, TlsError> {
    let bytes = spec.read()?;
    let store = match spec.resolved_type()? {
        StoreType::Pem => {
            let pem = parse_pem(spec, &bytes)?;
            let key = pem.key.ok_or_else(|| spec.error("no private key in it".into()))?;
            KeyStore { chain: pem.certificates, key }
        }
        StoreType::Pkcs12 => {
            let store = pkcs12(spec, &bytes, p12_keystore::Pkcs12ImportPolicy::Strict)?;
            let (_, chain) = store
                .private_key_chain()
                .ok_or_else(|| spec.error("no private key with its certificate in it".into()))?;
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec()));
            let chain = chain.certs().iter().map(|c| CertificateDer::from(c.as_der().to_vec())).collect();
            KeyStore { chain, key }
        }
        StoreType::Jks | StoreType::Bcfks => unreachable!("resolved_type refuses them"),
    };
    if store.chain.is_empty() {
        return Err(spec.error("no certificate for its private key in it".into()));
    }
    Ok(store)
}

/// Reads a trust store: every certificate in it.
pub fn load_trust_store(spec: &StoreSpec) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = spec.read()?;
    let certificates = match spec.resolved_type()? {
        StoreType::Pem => parse_pem(spec, &bytes)?.certificates,
        StoreType::Pkcs12 => {
            // Raw: every certificate, whether or not Java marked it as a trusted entry (openssl does not).
            let store = pkcs12(spec, &bytes, p12_keystore::Pkcs12ImportPolicy::Raw)?;
            let mut certificates = Vec::new();
            for (_, entry) in store.entries() {
                match entry {
                    p12_keystore::KeyStoreEntry::Certificate(c) => certificates.push(c.as_der().to_vec().into()),
                    p12_keystore::KeyStoreEntry::PrivateKeyChain(chain) => {
                        certificates.extend(chain.certs().iter().map(|c| c.as_der().to_vec().into()))
                    }
                    p12_keystore::KeyStoreEntry::Secret(_) => {}
                }
            }
            certificates
        }
        StoreType::Jks | StoreType::Bcfks => unreachable!("resolved_type refuses them"),
    };
    if certificates.is_empty() {
        return Err(spec.error("no certificate in it".into()));
    }
    Ok(certificates)
}

fn pkcs12(
    spec: &StoreSpec,
    bytes: &[u8],
    policy: p12_keystore::Pkcs12ImportPolicy,
) -> Result<p12_keystore::KeyStore, TlsError> {
    let password = spec.password.as_deref().unwrap_or("");
    p12_keystore::KeyStore::from_pkcs12(bytes, password, policy).map_err(|e| {
        spec.error(format!("not a PKCS12 store it can open with the password given ({e}); check *.password"))
    })
}

struct Pem {
    certificates: Vec<CertificateDer<'static>>,
    key: Option<PrivateKeyDer<'static>>,
}

/// The certificates and (at most one) private key of a PEM file. An encrypted PKCS#8 key is decrypted
/// with the store's password, as ZooKeeper's PemReader does.
fn parse_pem(spec: &StoreSpec, bytes: &[u8]) -> Result<Pem, TlsError> {
    let text = std::str::from_utf8(bytes).map_err(|_| spec.error("not a PEM file (not text)".into()))?;
    let mut pem = Pem { certificates: Vec::new(), key: None };
    for (index, block) in pem_blocks(text).into_iter().enumerate() {
        let (label, der) = pkcs8::der::pem::decode_vec(block.as_bytes())
            .map_err(|e| spec.error(format!("PEM block {} cannot be decoded: {e}", index + 1)))?;
        let key = match label {
            "CERTIFICATE" | "TRUSTED CERTIFICATE" => {
                pem.certificates.push(der.into());
                continue;
            }
            "PRIVATE KEY" => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)),
            "RSA PRIVATE KEY" => PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der)),
            "EC PRIVATE KEY" => PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der)),
            "ENCRYPTED PRIVATE KEY" => {
                let password = spec.password.as_deref().ok_or_else(|| {
                    spec.error("its private key is encrypted and no password is given (*.password)".into())
                })?;
                let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(der.as_slice())
                    .map_err(|e| spec.error(format!("its encrypted private key cannot be decoded: {e}")))?;
                let plain = info.decrypt(password).map_err(|e| {
                    spec.error(format!("its private key cannot be decrypted with the password given: {e}"))
                })?;
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(plain.as_bytes().to_vec()))
            }
            // Parameters and the like travel beside keys in some files; they are not ours to use.
            _ => continue,
        };
        if pem.key.replace(key).is_some() {
            return Err(spec.error("more than one private key in it".into()));
        }
    }
    Ok(pem)
}

/// The `-----BEGIN …-----` … `-----END …-----` blocks of a PEM text, text between them dropped (as
/// openssl writes "Bag Attributes" before each).
fn pem_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim_end();
        if line.starts_with("-----BEGIN ") {
            current = Some(String::new());
        }
        if let Some(block) = &mut current {
            block.push_str(line);
            block.push('\n');
            if line.starts_with("-----END ") {
                blocks.extend(current.take());
            }
        }
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_types_by_name_and_file_name() {
        assert_eq!(StoreType::from_name("pkcs12"), Some(StoreType::Pkcs12));
        assert_eq!(StoreType::from_name(" PEM "), Some(StoreType::Pem));
        assert_eq!(StoreType::from_name("p12"), None);
        assert_eq!(StoreType::from_file_name(Path::new("/etc/zk/keystore.JKS")), Some(StoreType::Jks));
        assert_eq!(StoreType::from_file_name(Path::new("server.pfx")), Some(StoreType::Pkcs12));
        assert_eq!(StoreType::from_file_name(Path::new("server")), None);
    }

    #[test]
    fn a_jks_store_is_refused_with_the_command_that_converts_it() {
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().join("keystore.jks");
        std::fs::write(&location, b"\xfe\xed\xfe\xed").unwrap();
        let spec = StoreSpec { location, password: Some("pw".into()), store_type: None };
        let message = load_key_store(&spec).unwrap_err().to_string();
        assert!(message.contains("keytool -importkeystore"), "{message}");
        assert!(message.contains("keystore.p12"), "{message}");
    }

    #[test]
    fn pem_errors_name_the_file_and_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().join("empty.pem");
        std::fs::write(&location, "nothing here\n").unwrap();
        let spec = StoreSpec { location: location.clone(), password: None, store_type: None };
        let message = load_key_store(&spec).unwrap_err().to_string();
        assert!(message.contains("empty.pem") && message.contains("no private key"), "{message}");
        let message = load_trust_store(&spec).unwrap_err().to_string();
        assert!(message.contains("no certificate"), "{message}");
        std::fs::write(&location, "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n").unwrap();
        let message = load_trust_store(&spec).unwrap_err().to_string();
        assert!(message.contains("PEM block 1"), "{message}");
    }

    /// A PEM key store whose PKCS#8 key is encrypted (openssl's PBES2, AES-256-CBC), as ZooKeeper's
    /// PemReader takes one with `ssl.keyStore.password`.
    #[test]
    fn an_encrypted_pem_key_is_decrypted_with_the_password() {
        let location = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/encrypted-key.pem");
        let spec = |password: Option<&str>| StoreSpec {
            location: location.clone(),
            password: password.map(str::to_owned),
            store_type: None,
        };
        let store = load_key_store(&spec(Some("secret"))).unwrap();
        assert_eq!(store.chain.len(), 1);
        assert!(matches!(store.key, PrivateKeyDer::Pkcs8(_)));
        let wrong = load_key_store(&spec(Some("guess"))).unwrap_err().to_string();
        assert!(wrong.contains("cannot be decrypted with the password given"), "{wrong}");
        let none = load_key_store(&spec(None)).unwrap_err().to_string();
        assert!(none.contains("encrypted and no password is given"), "{none}");
    }
}
