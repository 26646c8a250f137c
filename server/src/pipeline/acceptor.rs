//! Accepts client connections, enforces `maxClientCnxns` per address, and deals them to the shards. One
//! acceptor per listener: the client port, and the secure client port when TLS has one of its own.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Arc;

use parking_lot::Mutex;
use tracing::{error, warn};

use super::Shared;
use super::messages::ShardMsg;
use super::tls::Port;
use crate::config::Config;
use crate::config::members::Resolve;

/// Connections per client address (ZooKeeper's `maxClientCnxns`; 0 = unlimited).
pub struct ConnectionLimiter {
    max_per_ip: u32,
    counts: Mutex<HashMap<IpAddr, u32>>,
}

impl ConnectionLimiter {
    pub fn new(max_per_ip: u32) -> Self {
        ConnectionLimiter { max_per_ip, counts: Mutex::new(HashMap::new()) }
    }

    /// Counts a new connection from `ip`, unless that would exceed the limit.
    pub fn try_acquire(&self, ip: IpAddr) -> bool {
        let mut counts = self.counts.lock();
        let count = counts.entry(ip).or_insert(0);
        if self.max_per_ip != 0 && *count >= self.max_per_ip {
            return false;
        }
        *count += 1;
        true
    }

    pub fn release(&self, ip: IpAddr) {
        let mut counts = self.counts.lock();
        if let Some(count) = counts.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&ip);
            }
        }
    }
}

/// The client listeners: the client port (plaintext, or unified with `client.portUnification`) unless
/// only a secure port is configured, then the secure port. The first is where clients are told to go.
pub fn bind_all(config: &Config) -> std::io::Result<Vec<(TcpListener, Port)>> {
    let tls = config.client_tls.as_ref();
    let mut listeners = Vec::new();
    // A member's client address may come from its own server line.
    let plain = match config.client_address() {
        Some(address) => Some(address.to_socket_addr()?),
        None if tls.is_some_and(|t| t.secure_port.is_some()) => None,
        None => Some(SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 2181)),
    };
    if let Some(addr) = plain {
        let port = if tls.is_some_and(|t| t.port_unification) { Port::Unified } else { Port::Plain };
        listeners.push((listen(addr)?, port));
    }
    if let Some(secure_port) = tls.and_then(|t| t.secure_port) {
        let ip = tls.and_then(|t| t.secure_address).unwrap_or(IpAddr::from([0, 0, 0, 0]));
        listeners.push((listen(SocketAddr::new(ip, secure_port))?, Port::Secure));
    }
    Ok(listeners)
}

/// The client port's listener, which a reconfiguration may move to another address (ZooKeeper's
/// `processReconfig` calls `NIOServerCnxnFactory.reconfigure`): the new address is bound, the old
/// listener is shut down — which wakes its acceptor out of `accept` — and the acceptor carries on with
/// the new one. Connections already accepted stay.
pub struct MovablePort {
    address: Mutex<SocketAddr>,
    /// The listener in use (a second handle on its socket, to shut it down).
    current: Mutex<TcpListener>,
    next: Mutex<Option<TcpListener>>,
}

impl MovablePort {
    pub fn new(listener: &TcpListener) -> std::io::Result<MovablePort> {
        Ok(MovablePort {
            address: Mutex::new(listener.local_addr()?),
            current: Mutex::new(listener.try_clone()?),
            next: Mutex::new(None),
        })
    }

    pub fn address(&self) -> SocketAddr {
        *self.address.lock()
    }

    /// Listens on `address` from now on (nothing changes if it cannot be bound).
    pub fn move_to(&self, address: SocketAddr) -> std::io::Result<()> {
        let listener = listen(address)?;
        let current = listener.try_clone()?;
        *self.next.lock() = Some(listener);
        let old = std::mem::replace(&mut *self.current.lock(), current);
        *self.address.lock() = address;
        socket2::SockRef::from(&old).shutdown(std::net::Shutdown::Read)
    }

    /// The listener to accept on after `accept` failed, if the port moved.
    fn moved(&self) -> Option<TcpListener> {
        self.next.lock().take()
    }
}

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

pub fn run(shared: Arc<Shared>, mut listener: TcpListener, port: Port) {
    let mut next_shard = 0;
    let movable = (port != Port::Secure).then_some(&shared.client_port);
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(_) if let Some(moved) = movable.and_then(MovablePort::moved) => {
                tracing::info!(address = %shared.client_port.address(), "the client port moved");
                listener = moved;
                continue;
            }
            Err(e) => {
                error!("accept failed: {e}");
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            }
        };
        if !shared.limiter.try_acquire(peer.ip()) {
            warn!("Too many connections from {} - max is {}", peer.ip(), shared.config.max_client_cnxns);
            continue;
        }
        if let Err(e) = stream.set_nonblocking(true).and_then(|()| stream.set_nodelay(true)) {
            warn!(%peer, "cannot configure socket: {e}");
            shared.limiter.release(peer.ip());
            continue;
        }
        shared.shards[next_shard].send(ShardMsg::NewConnection(mio::net::TcpStream::from_std(stream), peer, port));
        next_shard = (next_shard + 1) % shared.shards.len();
    }
}
