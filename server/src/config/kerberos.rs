//! Kerberos logins of the JAAS file made ready at start-up, so that a missing keytab, a principal it does
//! not hold or a missing Kerberos library stops the server with the section named, instead of failing
//! each client later: a server section's service key ([`KerberosService`]) and a learner section's
//! client identity ([`KerberosIdentity`]).

use fk_gssapi::{Credential, IdentityRules, KerberosName};
use fk_net::sasl::jaas::{KerberosLogin, KeySource};

/// Whom this server is to Kerberos clients, and how a client's principal becomes its identity.
pub struct KerberosService {
    pub credential: Credential,
    /// `service/host@REALM`.
    pub principal: String,
    pub rules: IdentityRules,
    /// The Kerberos configuration's default realm: the `DEFAULT` auth-to-local rule maps only its
    /// principals.
    pub default_realm: String,
}

impl std::fmt::Debug for KerberosService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KerberosService").field("principal", &self.principal).field("rules", &self.rules).finish()
    }
}

impl KerberosService {
    pub fn load(login: &KerberosLogin, rules: IdentityRules) -> Result<KerberosService, String> {
        // ZooKeeper splits the principal at `/` and `@` into the service and host its SASL server runs as.
        let form = "a server's Krb5LoginModule entry needs principal=\"<service>/<host>@<REALM>\"";
        let principal = login.principal.clone().ok_or(form)?;
        let name = KerberosName::parse(&principal).map_err(|e| e.to_string())?;
        if name.host.is_none() || name.realm.is_none() {
            return Err(format!("{form}, not {principal:?}"));
        }
        let KeySource::Keytab(keytab) = &login.source else {
            return Err(format!("{principal}: a server needs its key, useKeyTab=true with keyTab=\"<file>\""));
        };
        let credential = Credential::acceptor(&principal, keytab.as_deref())
            .map_err(|e| format!("{e} (principal {principal}, keytab {})", shown(keytab.as_deref())))?;
        let default_realm = fk_gssapi::principal::default_realm().map_err(|e| e.to_string())?;
        Ok(KerberosService { credential, principal, rules, default_realm })
    }
}

/// Whom this member is when it dials another (a `QuorumLearner` section).
pub struct KerberosIdentity {
    pub credential: Credential,
    /// Its principal, which it asks to be authorized as.
    pub principal: String,
}

impl std::fmt::Debug for KerberosIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KerberosIdentity").field("principal", &self.principal).finish()
    }
}

impl KerberosIdentity {
    pub fn load(login: &KerberosLogin) -> Result<KerberosIdentity, String> {
        let principal = login.principal.clone().ok_or("a learner's Krb5LoginModule entry needs principal=\"…\"")?;
        let credential = match &login.source {
            KeySource::Keytab(keytab) => Credential::initiator_from_keytab(Some(&principal), keytab.as_deref())
                .map_err(|e| format!("{e} (principal {principal}, keytab {})", shown(keytab.as_deref())))?,
            KeySource::TicketCache(cache) => Credential::initiator_from_cache(Some(&principal), cache.as_deref())
                .map_err(|e| format!("{e} (principal {principal}, ticket cache {})", shown(cache.as_deref())))?,
        };
        Ok(KerberosIdentity { credential, principal })
    }
}

fn shown(path: Option<&std::path::Path>) -> String {
    path.map_or_else(|| "the default".to_owned(), |p| p.display().to_string())
}
