//! SASL on each new connection, before anything else is sent (the Java client's `ZooKeeperSaslClient`
//! order): DIGEST-MD5 with a user and password, or GSSAPI with a Kerberos principal's credential.

use std::sync::Arc;

use fk_gssapi::{Credential, GssapiClient};
use fk_net::client::{Request, SaslRequest};
use fk_net::jute::Jute;
use fk_net::sasl::digest_md5::DigestMd5Client;
use fk_net::sasl::jaas::{ClientLogin, KeySource};

use crate::connection::{self, Reader};

/// The xid of SASL packets, as the Java client sends them.
const SASL_XID: i32 = 1;

/// How a client authenticates.
#[derive(Clone)]
pub enum Sasl {
    Digest { user: String, password: String },
    Kerberos(Arc<Kerberos>),
}

impl std::fmt::Debug for Sasl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Never the password.
            Sasl::Digest { user, .. } => f.debug_struct("Digest").field("user", user).finish_non_exhaustive(),
            Sasl::Kerberos(kerberos) => f.debug_struct("Kerberos").field("principal", &kerberos.principal).finish(),
        }
    }
}

/// A Kerberos client login and whom it asks tickets for.
pub struct Kerberos {
    pub credential: Credential,
    /// The client's principal, which it asks to be authorized as.
    pub principal: String,
    /// The server principal asked for: `zookeeper.server.principal` if set, else built per host.
    pub server_principal: Option<String>,
    /// `zookeeper.sasl.client.username` (default `zookeeper`): the service part of the server principal.
    pub service: String,
    /// `zookeeper.server.realm`: the server principal's realm (default the client's own).
    pub server_realm: Option<String>,
    /// `zookeeper.sasl.client.canonicalize.hostname` (default true): the host part is the connected
    /// address's name from a reverse lookup, where it has one.
    pub canonicalize: bool,
}

impl Sasl {
    /// A JAAS client login made ready: DIGEST-MD5 as it is, a Kerberos login's credential acquired now so
    /// that a missing keytab is reported before any connection.
    pub fn from_login(login: ClientLogin, settings: KerberosSettings) -> Result<Sasl, String> {
        match login {
            ClientLogin::Digest { user, password } => Ok(Sasl::Digest { user, password }),
            ClientLogin::Kerberos(login) => {
                let principal = login.principal.clone().ok_or("a Krb5LoginModule entry needs principal=\"…\"")?;
                let credential = match &login.source {
                    KeySource::Keytab(keytab) => Credential::initiator_from_keytab(Some(&principal), keytab.as_deref()),
                    KeySource::TicketCache(cache) => {
                        Credential::initiator_from_cache(Some(&principal), cache.as_deref())
                    }
                }
                .map_err(|e| format!("{e} (principal {principal})"))?;
                Ok(Sasl::Kerberos(Arc::new(Kerberos {
                    credential,
                    principal,
                    server_principal: settings.server_principal,
                    service: settings.service.unwrap_or_else(|| "zookeeper".into()),
                    server_realm: settings.server_realm,
                    canonicalize: settings.canonicalize,
                })))
            }
        }
    }
}

/// The Java client's Kerberos properties, as given.
#[derive(Debug, Clone, Default)]
pub struct KerberosSettings {
    pub server_principal: Option<String>,
    pub service: Option<String>,
    pub server_realm: Option<String>,
    pub canonicalize: bool,
}

pub(crate) enum SaslFailure {
    /// The server refused the credentials, or could not prove it knows them.
    Refused,
    /// The connection broke or went silent.
    Io,
}

/// The whole exchange on a fresh connection to `host` (`host:port`).
pub(crate) fn authenticate(reader: &mut Reader, host: &str, sasl: &Sasl) -> Result<(), SaslFailure> {
    let mut stream = reader.writer().map_err(|_| SaslFailure::Io)?;
    let mut exchange = |token: Vec<u8>| -> Result<Vec<u8>, SaslFailure> {
        let request = Request::Sasl(SaslRequest { token: Some(token) });
        connection::write_request(&mut stream, SASL_XID, &request).map_err(|_| SaslFailure::Io)?;
        let frame = reader.next_frame().map_err(|_| SaslFailure::Io)?.ok_or(SaslFailure::Io)?;
        if frame.header.err != 0 {
            return Err(SaslFailure::Refused);
        }
        let answer =
            SaslRequest::decode(&mut fk_net::jute::JuteReader::new(&frame.body)).map_err(|_| SaslFailure::Io)?;
        Ok(answer.token.unwrap_or_default())
    };
    match sasl {
        Sasl::Digest { user, password } => {
            let challenge = exchange(Vec::new())?;
            let mut cnonce = [0u8; 12];
            getrandom::fill(&mut cnonce).map_err(|_| SaslFailure::Io)?;
            let cnonce: String = cnonce.iter().map(|b| format!("{b:02x}")).collect();
            let (response, client) =
                DigestMd5Client::respond(&challenge, user, password, &cnonce).map_err(|_| SaslFailure::Refused)?;
            let proof = exchange(response)?;
            client.check_rspauth(&proof).map_err(|_| SaslFailure::Refused)
        }
        Sasl::Kerberos(kerberos) => {
            let target = kerberos.target(host);
            let credential = &kerberos.credential;
            let (mut client, first) =
                GssapiClient::start(credential, &target, &kerberos.principal).map_err(|_| SaslFailure::Refused)?;
            let mut answer = exchange(first)?;
            while !client.is_complete() {
                let token = client.step(credential, &answer).map_err(|_| SaslFailure::Refused)?;
                answer = exchange(token)?;
            }
            Ok(())
        }
    }
}

impl Kerberos {
    /// The server principal for `host` (`host:port`), as ZooKeeper's `SaslServerPrincipal` and
    /// `createSaslClient` build it: `<service>/<host>`, the host canonicalized unless that is turned off
    /// or gives only an address, then `@<realm>`.
    fn target(&self, host: &str) -> String {
        if let Some(principal) = &self.server_principal {
            return principal.clone();
        }
        let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
        let name = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')).unwrap_or(name);
        let name =
            if self.canonicalize { canonical_name(host).unwrap_or_else(|| name.to_owned()) } else { name.to_owned() };
        let realm = self.server_realm.as_deref().or_else(|| self.principal.split_once('@').map(|(_, realm)| realm));
        match realm {
            Some(realm) => format!("{}/{name}@{realm}", self.service),
            None => format!("{}/{name}", self.service),
        }
    }
}

/// The name a reverse lookup gives the first address of `host:port`, as Java's `getCanonicalHostName`.
fn canonical_name(host: &str) -> Option<String> {
    use std::net::ToSocketAddrs;
    let address = host.to_socket_addrs().ok()?.next()?;
    let address = socket2::SockAddr::from(address);
    let mut name = [0 as libc::c_char; 1025];
    // SAFETY: the address and output buffer live for the call, with their true lengths.
    let status = unsafe {
        libc::getnameinfo(
            address.as_ptr().cast(),
            address.len(),
            name.as_mut_ptr(),
            name.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if status != 0 {
        return None;
    }
    // SAFETY: getnameinfo wrote a NUL-terminated name.
    Some(unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }.to_string_lossy().into_owned())
}
