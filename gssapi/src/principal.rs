//! Kerberos principal names as ZooKeeper reads them (its `KerberosName`): `service/host@REALM`,
//! `user@REALM` or a bare name, and the identity a SASL-authenticated client gets from its principal.

use std::ffi::CStr;

use crate::{GssError, ffi};

/// A principal split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KerberosName {
    pub service: String,
    pub host: Option<String>,
    pub realm: Option<String>,
}

impl KerberosName {
    /// ZooKeeper's pattern `([^/@]*)(/([^/@]*))?@([^/@]*)`; a name without `@` is a bare service name.
    pub fn parse(name: &str) -> Result<KerberosName, GssError> {
        let malformed = || GssError::MalformedName(name.to_owned());
        let Some((principal, realm)) = name.split_once('@') else {
            return Ok(KerberosName { service: name.to_owned(), host: None, realm: None });
        };
        if realm.contains(['/', '@']) {
            return Err(malformed());
        }
        let (service, host) = match principal.split_once('/') {
            Some((service, host)) => (service, Some(host)),
            None => (principal, None),
        };
        if host.is_some_and(|h| h.contains('/')) {
            return Err(malformed());
        }
        Ok(KerberosName { service: service.to_owned(), host: host.map(str::to_owned), realm: Some(realm.to_owned()) })
    }
}

impl std::fmt::Display for KerberosName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.service)?;
        if let Some(host) = &self.host {
            write!(f, "/{host}")?;
        }
        if let Some(realm) = &self.realm {
            write!(f, "@{realm}")?;
        }
        Ok(())
    }
}

/// How a client's principal becomes its `sasl` identity (`kerberos.removeHostFromPrincipal`,
/// `kerberos.removeRealmFromPrincipal`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdentityRules {
    pub remove_host: bool,
    pub remove_realm: bool,
}

impl IdentityRules {
    /// ZooKeeper's `SaslServerCallbackHandler`: the principal's short name under the `DEFAULT`
    /// auth-to-local rule (its first component, for a principal of `default_realm` or of none), then
    /// `/host` and `@realm` unless removed. A principal of another realm matches no rule; ZooKeeper then
    /// keeps the authorization id the client asked for, `authorization_id`.
    pub fn identity(&self, principal: &str, authorization_id: &str, default_realm: &str) -> String {
        let Ok(name) = KerberosName::parse(principal) else {
            return authorization_id.to_owned();
        };
        if name.realm.as_deref().is_some_and(|realm| realm != default_realm) {
            return authorization_id.to_owned();
        }
        let mut identity = name.service.clone();
        if let Some(host) = name.host.as_ref().filter(|_| !self.remove_host) {
            identity.push('/');
            identity.push_str(host);
        }
        if let Some(realm) = name.realm.as_ref().filter(|_| !self.remove_realm) {
            identity.push('@');
            identity.push_str(realm);
        }
        identity
    }
}

/// The default realm of the Kerberos configuration (`KRB5_CONFIG`, else `/etc/krb5.conf`).
pub fn default_realm() -> Result<String, GssError> {
    let api = ffi::api()?;
    let failed =
        |code: i32| GssError::Call { doing: "reading the default realm", reason: format!("krb5 error {code}") };
    let mut context = std::ptr::null_mut();
    // SAFETY: the context is freed below on every path.
    let code = unsafe { (api.krb5_init_context)(&mut context) };
    if code != 0 {
        return Err(failed(code));
    }
    let mut realm = std::ptr::null_mut();
    // SAFETY: a live context; the realm string is freed below.
    let code = unsafe { (api.krb5_get_default_realm)(context, &mut realm) };
    let result = if code == 0 {
        // SAFETY: a NUL-terminated string from the library.
        let text = unsafe { CStr::from_ptr(realm) }.to_string_lossy().into_owned();
        unsafe { (api.krb5_free_default_realm)(context, realm) };
        Ok(text)
    } else {
        Err(failed(code))
    };
    unsafe { (api.krb5_free_context)(context) };
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_as_zookeeper_splits_them() {
        let name = KerberosName::parse("zookeeper/host1.example.com@EXAMPLE.COM").unwrap();
        assert_eq!(name.service, "zookeeper");
        assert_eq!(name.host.as_deref(), Some("host1.example.com"));
        assert_eq!(name.realm.as_deref(), Some("EXAMPLE.COM"));
        assert_eq!(name.to_string(), "zookeeper/host1.example.com@EXAMPLE.COM");
        assert_eq!(KerberosName::parse("bob@EXAMPLE.COM").unwrap().host, None);
        assert_eq!(KerberosName::parse("bob").unwrap().realm, None);
        assert!(KerberosName::parse("a/b/c@R").is_err());
        assert!(KerberosName::parse("a@R@S").is_err());
    }

    #[test]
    fn identities_follow_the_remove_switches_within_the_default_realm_only() {
        let keep = IdentityRules::default();
        let no_host = IdentityRules { remove_host: true, remove_realm: false };
        let neither = IdentityRules { remove_host: true, remove_realm: true };
        let principal = "client/app1@EXAMPLE.COM";
        assert_eq!(keep.identity(principal, principal, "EXAMPLE.COM"), "client/app1@EXAMPLE.COM");
        assert_eq!(no_host.identity(principal, principal, "EXAMPLE.COM"), "client@EXAMPLE.COM");
        assert_eq!(neither.identity(principal, principal, "EXAMPLE.COM"), "client");
        // Another realm: no rule applies, the authorization id stays.
        assert_eq!(neither.identity("client/app1@OTHER.ORG", "asked", "EXAMPLE.COM"), "asked");
    }
}
