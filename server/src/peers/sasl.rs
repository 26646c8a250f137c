//! SASL (DIGEST-MD5) between members, as ZooKeeper 3.8's `SaslQuorumAuthLearner` and
//! `SaslQuorumAuthServer` speak it (`quorum.auth.enableSasl`, `learnerRequireSasl`, `serverRequireSasl`,
//! the JAAS file's `QuorumLearner` and `QuorumServer` sections).
//!
//! The dialling member (election connection: after its opening message; learner connection: before its
//! FOLLOWERINFO) sends an empty token if it requires SASL of itself, and nothing otherwise; the accepting
//! member looks at the next 8 bytes: an auth packet's magic starts the exchange (challenge,
//! digest-response, then SUCCESS with the server's proof, or ERROR), anything else passes only if it does
//! not require SASL. A member with wrong credentials is refused and the ensemble goes on without it.
//! Blocking, on the connection's own thread.

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::sync::Arc;

use fk_gssapi::GssapiClient;
use fk_net::quorum::{AuthStatus, QuorumAuthPacket};
use fk_net::sasl::digest_md5::{DigestMd5Client, Service};

use crate::config::{LearnerLogin, QuorumSasl, SaslService};
use crate::sasl::{Authenticated, ServerExchange};

/// The largest token either side sends: a DIGEST-MD5 challenge or response is a few hundred bytes, a
/// Kerberos ticket a few kilobytes (more with a large authorization-data field).
const TOKEN_MAX: usize = 64 * 1024;
/// Tokens an accepting member takes before giving up (ZooKeeper's `MAX_RETRIES`): DIGEST-MD5 needs two,
/// GSSAPI three.
const MAX_ROUNDS: usize = 5;

/// SASL between members, loaded.
#[derive(Debug)]
pub struct PeerSasl {
    settings: QuorumSasl,
    /// The members' hosts as the configuration names them: a Kerberos peer is admitted only with a
    /// principal `service/<one of these>@REALM` (ZooKeeper's `authzHosts`, fixed at start-up there too).
    member_hosts: BTreeSet<String>,
}

/// How an accepting exchange ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Authenticated as this user or principal.
    Authenticated(String),
    /// The peer sent no auth packet (or failed), and this member does not require SASL.
    LetThrough(String),
}

impl PeerSasl {
    pub fn new(settings: Option<&QuorumSasl>, member_hosts: impl IntoIterator<Item = String>) -> Option<Arc<PeerSasl>> {
        let member_hosts = member_hosts.into_iter().collect();
        settings.map(|settings| Arc::new(PeerSasl { settings: settings.clone(), member_hosts }))
    }

    /// The dialling side, to the member at `host` (as the configuration names it): nothing unless
    /// `learnerRequireSasl` (ZooKeeper's learner skips SASL then); otherwise the whole exchange, which
    /// must end in SUCCESS (with the server's proof, for DIGEST-MD5).
    pub fn authenticate_to(&self, reader: &mut impl Read, writer: &mut impl Write, host: &str) -> Result<(), String> {
        if !self.settings.learner_require {
            return Ok(());
        }
        let mut pending = Vec::new();
        match &self.settings.learner {
            LearnerLogin::Digest { user, password } => {
                send(writer, AuthStatus::InProgress, Vec::new())?;
                let challenge = receive(reader, &mut pending)?;
                if challenge.status != AuthStatus::InProgress {
                    return Err(format!("the member refused to start SASL ({:?})", challenge.status));
                }
                let cnonce = crate::sasl::nonce();
                let (response, client) =
                    DigestMd5Client::respond_for(Service::QUORUM, &challenge.token, user, password, &cnonce)
                        .map_err(|e| e.to_string())?;
                send(writer, AuthStatus::InProgress, response)?;
                let outcome = receive(reader, &mut pending)?;
                match outcome.status {
                    AuthStatus::Success => {
                        client.check_rspauth(&outcome.token).map_err(|e| format!("the member's proof: {e}"))
                    }
                    status => Err(format!("the member refused our credentials (user {user}): {status:?}")),
                }
            }
            LearnerLogin::Kerberos { identity, service_principal, server_realm } => {
                let target = service_target(service_principal, host, server_realm.as_deref(), &identity.principal);
                let refused = |status| {
                    format!(
                        "the member refused our Kerberos authentication as {} to {target}: {status:?}",
                        identity.principal
                    )
                };
                let credential = &identity.credential;
                let (mut client, first) =
                    GssapiClient::start(credential, &target, &identity.principal).map_err(|e| e.to_string())?;
                send(writer, AuthStatus::InProgress, first)?;
                for _ in 0..MAX_ROUNDS {
                    let packet = receive(reader, &mut pending)?;
                    match packet.status {
                        AuthStatus::InProgress if !client.is_complete() => {
                            let token = client.step(credential, &packet.token).map_err(|e| e.to_string())?;
                            send(writer, AuthStatus::InProgress, token)?;
                        }
                        AuthStatus::Success if client.is_complete() => return Ok(()),
                        status => return Err(refused(status)),
                    }
                }
                Err(format!("the member did not complete Kerberos authentication within {MAX_ROUNDS} tokens"))
            }
        }
    }

    /// The accepting side, after the peer's opening: `pending` holds the bytes read past it, and keeps
    /// those read past the exchange. An error means the connection must close.
    pub fn authenticate_from(
        &self,
        reader: &mut impl Read,
        writer: &mut impl Write,
        pending: &mut Vec<u8>,
    ) -> Result<Admission, String> {
        let required = self.settings.server_require;
        let let_through = |why: String| if required { Err(why) } else { Ok(Admission::LetThrough(why)) };
        while pending.len() < 8 {
            let mut chunk = [0u8; 64];
            match reader.read(&mut chunk) {
                Ok(0) => return let_through("the peer sent no auth packet before closing".into()),
                Ok(n) => pending.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return let_through(format!("reading its first packet: {e}")),
            }
        }
        if QuorumAuthPacket::starts(pending) != Some(true) {
            return let_through("the peer is not trying to authenticate".into());
        }
        match self.exchange(reader, writer, pending) {
            Ok(user) => Ok(Admission::Authenticated(user)),
            Err(why) => {
                let _ = send(writer, AuthStatus::Error, Vec::new());
                let_through(why)
            }
        }
    }

    fn exchange(
        &self,
        reader: &mut impl Read,
        writer: &mut impl Write,
        pending: &mut Vec<u8>,
    ) -> Result<String, String> {
        let service = &self.settings.server;
        let mut exchange = ServerExchange::new(service, Service::QUORUM)?;
        let mut token = receive(reader, pending)?.token;
        for _ in 0..MAX_ROUNDS {
            let step = exchange.step(service, &token)?;
            if let Some(who) = step.authenticated {
                let user = self.admit(&who)?;
                send(writer, AuthStatus::Success, step.token.unwrap_or_default())?;
                return Ok(user);
            }
            send(writer, AuthStatus::InProgress, step.token.unwrap_or_default())?;
            token = receive(reader, pending)?.token;
        }
        Err(format!("SASL did not complete within {MAX_ROUNDS} tokens"))
    }

    /// ZooKeeper's `SaslQuorumServerCallbackHandler`: a DIGEST-MD5 user is admitted as it is; a Kerberos
    /// principal must ask to be itself and be `service/host@REALM` with the host of a member.
    fn admit(&self, who: &Authenticated) -> Result<String, String> {
        match &self.settings.server {
            SaslService::Digest(_) => Ok(who.authorization_id.clone()),
            SaslService::Kerberos(_) => {
                let principal = &who.authentication_id;
                if *principal != who.authorization_id {
                    return Err(format!("{principal} asked to be authorized as {}", who.authorization_id));
                }
                let parts: Vec<&str> = principal.split(['/', '@']).collect();
                if parts.len() != 3 || !self.member_hosts.contains(parts[1]) {
                    return Err(format!(
                        "{principal} is not authorized to connect: not service/host@REALM with a member's host"
                    ));
                }
                Ok(principal.clone())
            }
        }
    }
}

/// The host of a dialled `host:port` (`[v6]:port`) address.
pub fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host)
}

/// The principal a learner asks a ticket for: `quorum.auth.kerberos.servicePrincipal` with `_HOST`
/// replaced by the dialled member's host (lower case) when the principal is exactly `service/_HOST`, and
/// the realm (`zookeeper.server.realm`, else the learner's own) added when it names none — ZooKeeper's
/// `SecurityUtils.getServerPrincipal` and `createSaslClient`.
fn service_target(configured: &str, host: &str, server_realm: Option<&str>, own_principal: &str) -> String {
    let principal = match configured.split('/').collect::<Vec<_>>().as_slice() {
        [service, "_HOST"] => format!("{service}/{}", host.to_lowercase()),
        _ => configured.to_owned(),
    };
    if principal.contains('@') {
        return principal;
    }
    let own_realm = own_principal.split_once('@').map(|(_, realm)| realm);
    match server_realm.or(own_realm) {
        Some(realm) => format!("{principal}@{realm}"),
        None => principal,
    }
}

fn send(writer: &mut impl Write, status: AuthStatus, token: Vec<u8>) -> Result<(), String> {
    writer.write_all(&QuorumAuthPacket { status, token }.to_bytes()).map_err(|e| format!("sending an auth packet: {e}"))
}

/// The next auth packet, from `pending` and then the connection (what is read past it stays in
/// `pending`).
fn receive(reader: &mut impl Read, pending: &mut Vec<u8>) -> Result<QuorumAuthPacket, String> {
    loop {
        match QuorumAuthPacket::parse(pending, TOKEN_MAX) {
            Ok(Some((packet, used))) => {
                pending.drain(..used);
                return Ok(packet);
            }
            Ok(None) => {}
            Err(e) => return Err(e.to_string()),
        }
        let mut chunk = [0u8; 1024];
        match reader.read(&mut chunk) {
            Ok(0) => return Err("the peer closed the connection during SASL".into()),
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading an auth packet: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    fn sasl(learner_require: bool, server_require: bool, user: &str, password: &str) -> PeerSasl {
        let dir = tempfile::tempdir().unwrap();
        let jaas = dir.path().join("jaas.conf");
        std::fs::write(
            &jaas,
            "QuorumServer {\n org.apache.zookeeper.server.auth.DigestLoginModule required\n user_member=\"pw\";\n};\n",
        )
        .unwrap();
        let fk_net::sasl::jaas::ServerLogin::Digest(users) =
            fk_net::sasl::jaas::server_login(&jaas, "QuorumServer").unwrap()
        else {
            unreachable!("a DigestLoginModule section")
        };
        let settings = QuorumSasl {
            learner_require,
            server_require,
            server: SaslService::Digest(Arc::new(users)),
            learner: LearnerLogin::Digest { user: user.into(), password: password.into() },
        };
        PeerSasl { settings, member_hosts: BTreeSet::new() }
    }

    /// The two sides over a socket pair: what the acceptor concluded and what the dialler was told.
    fn run(dialler: PeerSasl, acceptor: PeerSasl) -> (Result<Admission, String>, Result<(), String>) {
        let (a, b) = UnixStream::pair().unwrap();
        let dialling = std::thread::spawn(move || {
            let (mut r, mut w) = (b.try_clone().unwrap(), b);
            let result = dialler.authenticate_to(&mut r, &mut w, "localhost");
            // What a learner sends next (FOLLOWERINFO's first bytes), or closes.
            let _ = w.write_all(&[0, 0, 0, 11, 0, 0, 0, 0]);
            result
        });
        let (mut r, mut w) = (a.try_clone().unwrap(), a);
        let mut pending = Vec::new();
        let accepted = acceptor.authenticate_from(&mut r, &mut w, &mut pending);
        let dialled = dialling.join().unwrap();
        if accepted.is_ok() {
            // The stream stays aligned: what follows the exchange is the learner's next packet.
            while pending.len() < 4 {
                let mut chunk = [0u8; 8];
                let n = r.read(&mut chunk).unwrap();
                pending.extend_from_slice(&chunk[..n]);
            }
            assert_eq!(&pending[..4], &[0, 0, 0, 11], "the bytes after the exchange are kept");
        }
        (accepted, dialled)
    }

    #[test]
    fn members_authenticate_and_wrong_credentials_are_refused() {
        let (accepted, dialled) = run(sasl(true, true, "member", "pw"), sasl(true, true, "member", "pw"));
        assert_eq!((accepted, dialled), (Ok(Admission::Authenticated("member".into())), Ok(())));
        let (accepted, dialled) = run(sasl(true, true, "member", "wrong"), sasl(true, true, "member", "pw"));
        assert!(accepted.unwrap_err().contains("wrong password"));
        assert!(dialled.unwrap_err().contains("refused our credentials"));
        let (accepted, dialled) = run(sasl(true, true, "nobody", "pw"), sasl(true, true, "member", "pw"));
        assert!(accepted.unwrap_err().contains("unknown user"));
        assert!(dialled.is_err());
    }

    #[test]
    fn a_member_that_does_not_require_sasl_lets_unauthenticated_peers_through() {
        // The dialler does not require SASL of itself: it sends none.
        let (accepted, dialled) = run(sasl(false, false, "member", "pw"), sasl(true, false, "member", "pw"));
        assert!(matches!(accepted, Ok(Admission::LetThrough(_))), "{accepted:?}");
        assert_eq!(dialled, Ok(()));
        let (accepted, _) = run(sasl(false, false, "member", "pw"), sasl(true, true, "member", "pw"));
        assert!(accepted.unwrap_err().contains("not trying to authenticate"));
        // A failed exchange is let through too where SASL is not required (ZooKeeper's "maintaining
        // learner connection despite SASL authentication failure").
        let (accepted, _) = run(sasl(true, true, "member", "wrong"), sasl(true, false, "member", "pw"));
        assert!(matches!(accepted, Ok(Admission::LetThrough(_))), "{accepted:?}");
    }

    #[test]
    fn a_learner_asks_for_the_service_principal_zookeeper_would() {
        let own = "zkquorum/host1@EXAMPLE.COM";
        assert_eq!(service_target("zkquorum/localhost", "h", None, own), "zkquorum/localhost@EXAMPLE.COM");
        assert_eq!(service_target("zkquorum/_HOST", "Host2", None, own), "zkquorum/host2@EXAMPLE.COM");
        assert_eq!(service_target("zkquorum/_HOST", "h", Some("OTHER.ORG"), own), "zkquorum/h@OTHER.ORG");
        // `_HOST` is replaced only in exactly `service/_HOST`, as ZooKeeper's getServerPrincipal does.
        assert_eq!(service_target("zkquorum/_HOST@EXAMPLE.COM", "h", None, own), "zkquorum/_HOST@EXAMPLE.COM");
        assert_eq!(service_target("zkquorum/a@R", "h", Some("OTHER.ORG"), own), "zkquorum/a@R");
    }
}
