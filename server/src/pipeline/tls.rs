//! TLS on the client port: the rustls configuration in force (read again from the stores when
//! `client.certReload` sees their files change), and each connection's transport — plaintext, TLS, or
//! not yet known on a port that takes both (`client.portUnification`), where the first byte decides.
//!
//! A TLS connection runs in the shard's non-blocking loop like any other: the socket's bytes go through
//! rustls into the connection's input buffer, and its output buffer through rustls to the socket. No
//! thread per connection, and a stalled handshake is bounded by a deadline like any sessionless
//! connection.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use fk_net::reactor::{BufferPool, Buffers, ReadStatus};
use fk_tls::nonblocking::{Plaintext, write_records};
use parking_lot::RwLock;
use rustls::{Connection, ServerConfig, ServerConnection};
use tracing::{info, warn};

use crate::config::tls::ClientTls;

/// A TLS record of type handshake starts with this byte; a plaintext connection starts with a frame
/// length's high byte (0 for any frame `jute.maxbuffer` allows) or a 4-letter word's first letter.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;
/// Plaintext rustls may hold for one connection beyond what the socket took: the connection's own
/// output buffer is where replies wait, and its limits apply there.
const TLS_BUFFER_LIMIT_BYTES: usize = 64 << 10;

/// The listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// `clientPort`: plaintext.
    Plain,
    /// `secureClientPort`: TLS only.
    Secure,
    /// `clientPort` with `client.portUnification`: either.
    Unified,
}

/// The client port's TLS as configured, with the rustls configuration in force.
pub struct ClientTlsRuntime {
    pub settings: ClientTls,
    current: RwLock<Arc<ServerConfig>>,
}

impl ClientTlsRuntime {
    /// Reads the stores; any error stops start-up.
    pub fn new(settings: ClientTls) -> Result<ClientTlsRuntime, fk_tls::TlsError> {
        let built = fk_tls::server_config(&settings.settings)?;
        for note in &built.notes {
            warn!("{note}");
        }
        Ok(ClientTlsRuntime { settings, current: RwLock::new(built.config) })
    }

    /// A new connection's TLS state, with the configuration in force now.
    pub fn accept(&self) -> io::Result<Box<Connection>> {
        let mut tls = ServerConnection::new(self.current.read().clone()).map_err(io::Error::other)?;
        tls.set_buffer_limit(Some(TLS_BUFFER_LIMIT_BYTES));
        Ok(Box::new(tls.into()))
    }

    /// How long a handshake may take (`ssl.handshakeDetectionTimeoutMillis`).
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.settings.handshake_timeout_ms)
    }

    /// `client.certReload`: when a store's file changes, builds the configuration again; connections
    /// made from then on use it. A store that no longer loads keeps the old one in force, with an error
    /// logged (ZooKeeper does the same).
    pub fn watch_stores(self: Arc<Self>) {
        fk_tls::reload::watch(self.settings.settings.store_files(), || {
            match fk_tls::server_config(&self.settings.settings) {
                Ok(built) => {
                    *self.current.write() = built.config;
                    info!("client.certReload: the key and trust stores were read again; new connections use them");
                }
                Err(e) => tracing::error!("client.certReload: keeping the stores in force: {e}"),
            }
        })
    }
}

/// How a connection's bytes travel.
pub enum Transport {
    Plain,
    /// On a unified port, before the first byte arrived.
    Undecided,
    Tls(Box<Connection>),
}

impl Transport {
    pub fn for_port(port: Port, tls: Option<&ClientTlsRuntime>) -> io::Result<Transport> {
        Ok(match (port, tls) {
            (Port::Plain, _) => Transport::Plain,
            (Port::Unified, Some(_)) => Transport::Undecided,
            (Port::Secure, Some(tls)) => Transport::Tls(tls.accept()?),
            (_, None) => unreachable!("a TLS port is bound only with TLS configured"),
        })
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }

    /// A TLS connection whose handshake has not finished (or a unified one not yet decided).
    pub fn handshaking(&self) -> bool {
        match self {
            Transport::Plain => false,
            Transport::Undecided => true,
            Transport::Tls(tls) => tls.is_handshaking(),
        }
    }

    /// Reads what the socket has into `buffers` (through TLS if it is one). On a unified port, the first
    /// byte decides first.
    pub fn fill(
        &mut self,
        stream: &mut mio::net::TcpStream,
        buffers: &mut Buffers,
        limit_bytes: usize,
        pool: &mut BufferPool,
        tls: Option<&ClientTlsRuntime>,
    ) -> io::Result<ReadStatus> {
        if let Transport::Undecided = self {
            let mut first = [0u8; 1];
            match stream.peek(&mut first) {
                Ok(0) => return Ok(ReadStatus::Closed),
                Ok(_) if first[0] == TLS_HANDSHAKE_RECORD => {
                    *self = Transport::Tls(tls.expect("a unified port has TLS configured").accept()?)
                }
                Ok(_) => *self = Transport::Plain,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(ReadStatus::Drained),
                Err(e) => return Err(e),
            }
        }
        match self {
            Transport::Plain => buffers.fill(stream, limit_bytes, pool),
            Transport::Tls(tls) => buffers.fill(&mut Plaintext { tls, socket: stream }, limit_bytes, pool),
            Transport::Undecided => unreachable!("decided above"),
        }
    }

    /// Writes what it can of `buffers`' output; true once all of it (and every TLS record made from it)
    /// is in the socket.
    pub fn flush(&mut self, stream: &mut mio::net::TcpStream, buffers: &mut Buffers) -> io::Result<bool> {
        match self {
            Transport::Plain | Transport::Undecided => buffers.flush(stream),
            Transport::Tls(tls) => {
                let all_taken = buffers.flush(&mut Plaintext { tls, socket: stream })?;
                Ok(all_taken && write_records(tls, stream)?)
            }
        }
    }

    /// A TLS connection being closed in good order tells its peer so (best effort: the socket closes
    /// next).
    pub fn close_notify(&mut self, stream: &mut mio::net::TcpStream) {
        if let Transport::Tls(tls) = self {
            tls.send_close_notify();
            let _ = write_records(tls, stream);
        }
    }
}
