//! SASL's GSSAPI mechanism (RFC 4752) as Java's `GssKrb5Server` and `GssKrb5Client` speak it, both
//! sides, over a [`SecurityContext`].
//!
//! The exchange: the client's tokens establish the Kerberos context (its ticket, then, with mutual
//! authentication, the server's answer proving its key). Then the server offers security layers in a
//! wrapped 4-byte token (a bit mask, 1 = none, and a 3-byte maximum message size); the client answers
//! with its choice, its own maximum and the authorization id it asks for, wrapped. ZooKeeper asks for
//! authentication only (quality of protection `auth`), so the one layer offered and accepted is "none".
//! When the context completes on the server without a token to send, the security-layer offer goes out
//! at once, as Java sends it.

use crate::GssError;
use crate::context::{Credential, Name, SecurityContext};

/// The security-layer bit for "no protection after authentication", the only one ZooKeeper uses.
const NO_SECURITY_LAYER: u8 = 1;
/// The maximum message size offered and asked for: Java's default for `javax.security.sasl.maxbuffer`.
const MAX_BUFFER: u32 = 65536;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerStage {
    /// Context tokens are being accepted.
    Accepting,
    /// The context is established and the client's last context token acknowledged with an empty one.
    AwaitingEmpty,
    /// The security-layer offer is out; the client's choice is next.
    AwaitingChoice,
    Complete,
}

/// A server's answer to one client token.
#[derive(Debug, PartialEq, Eq)]
pub struct ServerStep {
    /// The token to send back; `None` once complete (ZooKeeper then sends a null token).
    pub token: Option<Vec<u8>>,
    /// Once complete: the client's principal (authentication id) and the authorization id it asked for
    /// (its principal when it asked for none).
    pub authenticated: Option<(String, String)>,
}

/// The server side of one exchange.
pub struct GssapiServer {
    context: SecurityContext,
    stage: ServerStage,
    peer: Option<String>,
}

impl GssapiServer {
    pub fn new() -> Result<GssapiServer, GssError> {
        Ok(GssapiServer { context: SecurityContext::new()?, stage: ServerStage::Accepting, peer: None })
    }

    /// The next client token, with the server's credential.
    pub fn step(&mut self, credential: &Credential, token: &[u8]) -> Result<ServerStep, GssError> {
        let pending = |token| Ok(ServerStep { token: Some(token), authenticated: None });
        match self.stage {
            ServerStage::Accepting => {
                let (reply, peer) = self.context.accept(credential, token)?;
                if peer.is_none() {
                    return pending(reply);
                }
                self.peer = peer;
                if reply.is_empty() {
                    return pending(self.offer_layers()?);
                }
                self.stage = ServerStage::AwaitingEmpty;
                pending(reply)
            }
            ServerStage::AwaitingEmpty => {
                if !token.is_empty() {
                    return Err(GssError::Protocol("a token after the Kerberos context was established"));
                }
                pending(self.offer_layers()?)
            }
            ServerStage::AwaitingChoice => {
                let choice = self.context.unwrap(token)?;
                if choice.len() < 4 {
                    return Err(GssError::Protocol("the security-layer choice is shorter than 4 bytes"));
                }
                if choice[0] != NO_SECURITY_LAYER {
                    return Err(GssError::Protocol("the client chose a security layer that was not offered"));
                }
                let peer = self.peer.clone().expect("set when the context was established");
                let asked = std::str::from_utf8(&choice[4..])
                    .map_err(|_| GssError::Protocol("the authorization id is not UTF-8"))?;
                let authorization = if asked.is_empty() { peer.clone() } else { asked.to_owned() };
                self.stage = ServerStage::Complete;
                Ok(ServerStep { token: None, authenticated: Some((peer, authorization)) })
            }
            ServerStage::Complete => Err(GssError::Protocol("a token after the exchange completed")),
        }
    }

    fn offer_layers(&mut self) -> Result<Vec<u8>, GssError> {
        self.stage = ServerStage::AwaitingChoice;
        self.context.wrap(&layer_token(NO_SECURITY_LAYER, b""), false)
    }
}

/// A security-layer token: the layer mask, the 3-byte maximum message size, the authorization id.
fn layer_token(layers: u8, authorization_id: &[u8]) -> Vec<u8> {
    let mut token = vec![layers];
    token.extend_from_slice(&MAX_BUFFER.to_be_bytes()[1..]);
    token.extend_from_slice(authorization_id);
    token
}

/// The client side of one exchange.
pub struct GssapiClient {
    context: SecurityContext,
    target: Name,
    authorization_id: String,
    complete: bool,
}

impl GssapiClient {
    /// An exchange with the service principal `target` (`zookeeper/host@REALM`), asking for
    /// `authorization_id` (ZooKeeper's clients ask for their own principal); the first token to send.
    pub fn start(
        credential: &Credential,
        target: &str,
        authorization_id: &str,
    ) -> Result<(GssapiClient, Vec<u8>), GssError> {
        let mut client = GssapiClient {
            context: SecurityContext::new()?,
            target: Name::principal(target)?,
            authorization_id: authorization_id.to_owned(),
            complete: false,
        };
        let first = client.context.initiate(credential, &client.target, None)?;
        Ok((client, first))
    }

    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// The server's next token; the one to answer with.
    pub fn step(&mut self, credential: &Credential, challenge: &[u8]) -> Result<Vec<u8>, GssError> {
        if self.complete {
            return Err(GssError::Protocol("a server token after the exchange completed"));
        }
        if !self.context.is_established() {
            return self.context.initiate(credential, &self.target, Some(challenge));
        }
        let offer = self.context.unwrap(challenge)?;
        if offer.len() != 4 {
            return Err(GssError::Protocol("the server's security-layer offer is not 4 bytes"));
        }
        if offer[0] & NO_SECURITY_LAYER == 0 {
            return Err(GssError::Protocol("the server does not offer authentication without a security layer"));
        }
        self.complete = true;
        self.context.wrap(&layer_token(NO_SECURITY_LAYER, self.authorization_id.as_bytes()), false)
    }
}
