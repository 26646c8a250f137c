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

use std::io::{self, Read, Write};
use std::sync::Arc;

use fk_net::quorum::{AuthStatus, QuorumAuthPacket};
use fk_net::sasl::digest_md5::{DigestMd5Client, DigestMd5Server, Service};

use crate::config::QuorumSasl;

/// The largest token either side sends (a DIGEST-MD5 challenge or response is a few hundred bytes).
const TOKEN_MAX: usize = 4096;

/// SASL between members, loaded.
#[derive(Debug)]
pub struct PeerSasl {
    settings: QuorumSasl,
}

/// How an accepting exchange ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Authenticated as this user.
    Authenticated(String),
    /// The peer sent no auth packet (or failed), and this member does not require SASL.
    LetThrough(String),
}

impl PeerSasl {
    pub fn new(settings: Option<&QuorumSasl>) -> Option<Arc<PeerSasl>> {
        settings.map(|settings| Arc::new(PeerSasl { settings: settings.clone() }))
    }

    /// The dialling side: nothing unless `learnerRequireSasl` (ZooKeeper's learner skips SASL then);
    /// otherwise the whole exchange, which must end in SUCCESS with the server's proof.
    pub fn authenticate_to(&self, reader: &mut impl Read, writer: &mut impl Write) -> Result<(), String> {
        if !self.settings.learner_require {
            return Ok(());
        }
        let (user, password) = &self.settings.credentials;
        let mut pending = Vec::new();
        send(writer, AuthStatus::InProgress, Vec::new())?;
        let challenge = receive(reader, &mut pending)?;
        if challenge.status != AuthStatus::InProgress {
            return Err(format!("the member refused to start SASL ({:?})", challenge.status));
        }
        let cnonce = nonce();
        let (response, client) =
            DigestMd5Client::respond_for(Service::QUORUM, &challenge.token, user, password, &cnonce)
                .map_err(|e| e.to_string())?;
        send(writer, AuthStatus::InProgress, response)?;
        let outcome = receive(reader, &mut pending)?;
        match outcome.status {
            AuthStatus::Success => client.check_rspauth(&outcome.token).map_err(|e| format!("the member's proof: {e}")),
            status => Err(format!("the member refused our credentials (user {user}): {status:?}")),
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
        let users = &self.settings.users;
        let mut server = DigestMd5Server::for_service(Service::QUORUM, nonce());
        let first = receive(reader, pending)?;
        let challenge =
            server.step(&first.token, |user| users.password(user).map(str::to_owned)).map_err(|e| e.to_string())?;
        send(writer, AuthStatus::InProgress, challenge.token)?;
        let response = receive(reader, pending)?;
        let done =
            server.step(&response.token, |user| users.password(user).map(str::to_owned)).map_err(|e| e.to_string())?;
        let user = done.identity.ok_or("DIGEST-MD5 did not complete")?;
        send(writer, AuthStatus::Success, done.token)?;
        Ok(user)
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

/// A DIGEST-MD5 nonce from the OS's generator, in hex.
fn nonce() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random number generator");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
        let users = fk_net::sasl::jaas::digest_users(&jaas, "QuorumServer").unwrap();
        let settings = QuorumSasl {
            learner_require,
            server_require,
            users: Arc::new(users),
            credentials: (user.into(), password.into()),
        };
        PeerSasl { settings }
    }

    /// The two sides over a socket pair: what the acceptor concluded and what the dialler was told.
    fn run(dialler: PeerSasl, acceptor: PeerSasl) -> (Result<Admission, String>, Result<(), String>) {
        let (a, b) = UnixStream::pair().unwrap();
        let dialling = std::thread::spawn(move || {
            let (mut r, mut w) = (b.try_clone().unwrap(), b);
            let result = dialler.authenticate_to(&mut r, &mut w);
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
}
