//! TLS between members, as ZooKeeper 3.8 runs it: with `sslQuorum` every election and learner connection
//! this member makes is TLS, with mutual authentication (`ssl.quorum.clientAuth`, need by default) and
//! each side's certificate checked against the other's address (`ssl.quorum.hostnameVerification`,
//! on by default); with `portUnification` the election and quorum ports take TLS and plaintext alike,
//! which is how a running ensemble moves to TLS one restart at a time (portUnification=true everywhere,
//! then sslQuorum=true everywhere, then portUnification=false).
//!
//! The accepting side's TLS runs inside the admission gate's non-blocking loop (no thread before a
//! member's opening); the dialling side's handshake blocks its own connecting thread. Both end with the
//! two halves the link threads read and write (fk_tls::blocking).

use std::io;
use std::net::{IpAddr, TcpStream};
use std::sync::Arc;

use fk_tls::blocking::{ReadHalf, WriteHalf};
use parking_lot::RwLock;
use rustls::{ClientConfig, Connection, ServerConfig, ServerConnection};

use crate::config::tls::QuorumTls;

/// What the election and quorum ports take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepts {
    Plaintext,
    Tls,
    /// Either, told apart by the first byte.
    Both,
}

/// TLS between members, ready to use.
#[derive(Debug)]
pub struct PeerTls {
    dial_tls: bool,
    accepts: Accepts,
    /// The configurations in force; replaced whole when `sslQuorumReloadCertFiles` sees the stores change.
    current: RwLock<(Arc<ServerConfig>, Arc<ClientConfig>)>,
    verify_hostname: bool,
    settings: QuorumTls,
}

impl PeerTls {
    /// Reads the `ssl.quorum.*` stores; `None` when TLS between members is off.
    pub fn new(settings: Option<&QuorumTls>) -> Result<Option<Arc<PeerTls>>, fk_tls::TlsError> {
        let Some(settings) = settings else { return Ok(None) };
        let (server, client) = Self::build(settings)?;
        let accepts = match (settings.port_unification, settings.ssl_quorum) {
            (true, _) => Accepts::Both,
            (false, true) => Accepts::Tls,
            (false, false) => Accepts::Plaintext,
        };
        Ok(Some(Arc::new(PeerTls {
            dial_tls: settings.ssl_quorum,
            accepts,
            current: RwLock::new((server, client)),
            verify_hostname: settings.settings.verify_hostname,
            settings: settings.clone(),
        })))
    }

    fn build(settings: &QuorumTls) -> Result<(Arc<ServerConfig>, Arc<ClientConfig>), fk_tls::TlsError> {
        let server = fk_tls::server_config(&settings.settings)?;
        let client = fk_tls::client_config(&settings.settings)?;
        for note in server.notes.iter().chain(&client.notes) {
            tracing::warn!("{}", note.replacen("ssl.", "ssl.quorum.", 1));
        }
        Ok((server.config, client.config))
    }

    /// Whether `sslQuorumReloadCertFiles` asks for [`PeerTls::watch_stores`].
    pub fn reloads(&self) -> bool {
        self.settings.reload
    }

    /// `sslQuorumReloadCertFiles`: when a store's file changes, the configurations are built again and
    /// connections made from then on use them; stores that no longer load leave the old ones in force.
    pub fn watch_stores(self: Arc<Self>) {
        fk_tls::reload::watch(self.settings.settings.store_files(), || match Self::build(&self.settings) {
            Ok(built) => {
                *self.current.write() = built;
                tracing::info!("sslQuorumReloadCertFiles: the ssl.quorum stores were read again");
            }
            Err(e) => tracing::error!("sslQuorumReloadCertFiles: keeping the stores in force: {e}"),
        })
    }

    pub fn accepts(&self) -> Accepts {
        self.accepts
    }

    /// For the log: what this member dials and takes.
    pub fn describe(&self) -> String {
        let dials = if self.dial_tls { "dials over TLS" } else { "dials in plaintext" };
        let takes = match self.accepts {
            Accepts::Plaintext => "takes plaintext",
            Accepts::Tls => "takes TLS only",
            Accepts::Both => "takes TLS and plaintext (portUnification)",
        };
        format!("TLS between members: {dials}, {takes}")
    }

    /// A new accepted connection's TLS state.
    pub fn accept(&self) -> io::Result<Connection> {
        let server = self.current.read().0.clone();
        Ok(ServerConnection::new(server).map_err(io::Error::other)?.into())
    }

    /// After an accepted handshake: the dialling member's certificate must name the address it came
    /// from (ZooKeeper's quorum trust manager checks client host names too). IP addresses only: no
    /// reverse lookup of the peer's name.
    pub fn check_dialler(&self, tls: &Connection, from: IpAddr) -> Result<(), String> {
        if !self.verify_hostname {
            return Ok(());
        }
        match tls.peer_certificates().and_then(|chain| chain.first()) {
            Some(leaf) => fk_tls::certificate_names_address(leaf, from),
            // clientAuth want/none: nothing presented, nothing to check.
            None => Ok(()),
        }
    }
}

/// Splits a dialled connection into its halves, over TLS when `sslQuorum` (the handshake first, bounded
/// by the socket's timeouts; `address` is the `host:port` dialled, whose host the peer's certificate
/// must name unless hostname verification is off).
pub fn dialled(tls: Option<&PeerTls>, mut stream: TcpStream, address: &str) -> io::Result<(ReadHalf, WriteHalf)> {
    let session = match tls {
        Some(tls) if tls.dial_tls => {
            let client = tls.current.read().1.clone();
            Some(fk_tls::blocking::connect(client, &mut stream, address)?)
        }
        _ => None,
    };
    fk_tls::blocking::split(stream, session)
}
