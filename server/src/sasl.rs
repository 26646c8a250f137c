//! The server side of one SASL exchange, clients' and members' alike, with the mechanism the JAAS
//! section chose ([`SaslService`]): DIGEST-MD5 against its users, or GSSAPI with its Kerberos service
//! key. What the authenticated principal may become (a client's `sasl` identity, an admitted member) is
//! the caller's to decide.

use fk_gssapi::GssapiServer;
use fk_net::sasl::digest_md5::{DigestMd5Server, Service};

use crate::config::SaslService;

/// One exchange under way.
pub enum ServerExchange {
    Digest(DigestMd5Server),
    Gssapi(GssapiServer),
}

/// What one token brought.
#[derive(Debug, PartialEq, Eq)]
pub struct Step {
    /// The token to answer with; `None` for ZooKeeper's null token (GSSAPI's last answer).
    pub token: Option<Vec<u8>>,
    /// Once complete: who authenticated.
    pub authenticated: Option<Authenticated>,
}

/// Who authenticated: the principal whose secret was proven (a DIGEST-MD5 user, a Kerberos principal)
/// and the authorization id it asked for (the same unless it asked for another).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub authentication_id: String,
    pub authorization_id: String,
}

impl ServerExchange {
    /// A new exchange for `service`; `digest` names DIGEST-MD5's protocol and realm (clients' or
    /// members').
    pub fn new(service: &SaslService, digest: Service) -> Result<ServerExchange, String> {
        Ok(match service {
            SaslService::Digest(_) => ServerExchange::Digest(DigestMd5Server::for_service(digest, nonce())),
            SaslService::Kerberos(_) => ServerExchange::Gssapi(GssapiServer::new().map_err(|e| e.to_string())?),
        })
    }

    /// The peer's next token.
    pub fn step(&mut self, service: &SaslService, token: &[u8]) -> Result<Step, String> {
        match (self, service) {
            (ServerExchange::Digest(server), SaslService::Digest(users)) => {
                let step =
                    server.step(token, |user| users.password(user).map(str::to_owned)).map_err(|e| e.to_string())?;
                let authenticated =
                    step.identity.map(|user| Authenticated { authentication_id: user.clone(), authorization_id: user });
                Ok(Step { token: Some(step.token), authenticated })
            }
            (ServerExchange::Gssapi(server), SaslService::Kerberos(kerberos)) => {
                let step = server.step(&kerberos.credential, token).map_err(|e| e.to_string())?;
                let authenticated = step
                    .authenticated
                    .map(|(authentication_id, authorization_id)| Authenticated { authentication_id, authorization_id });
                Ok(Step { token: step.token, authenticated })
            }
            _ => unreachable!("an exchange is made for the service it steps with"),
        }
    }

    pub fn mechanism(&self) -> &'static str {
        match self {
            ServerExchange::Digest(_) => "DIGEST-MD5",
            ServerExchange::Gssapi(_) => "GSSAPI",
        }
    }
}

/// A DIGEST-MD5 nonce: 16 bytes from the OS's generator, in hex.
pub fn nonce() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random number generator");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
