//! systemd's readiness protocol (sd_notify(3)): under `Type=notify` the service manager waits for
//! `READY=1` on the datagram socket `NOTIFY_SOCKET` names. ferrokeeper sends it once it serves clients —
//! at once when standalone, once in a quorum for an ensemble member, so `systemctl start` returns when
//! the member is useful and dependent units start after it — and a `STATUS=` line whenever its role
//! changes. Without `NOTIFY_SOCKET` nothing is sent. Each message is one datagram; a name starting with
//! `@` is an abstract socket.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicBool, Ordering};

pub struct Notifier {
    socket: Option<(UnixDatagram, SocketAddr)>,
    ready_sent: AtomicBool,
}

impl Notifier {
    /// The notifier `NOTIFY_SOCKET` asks for; one that sends nothing without it (or if it cannot be
    /// used, which is logged: the service manager will then time the start out, and say so).
    pub fn from_env() -> Notifier {
        let socket = std::env::var_os("NOTIFY_SOCKET").and_then(|name| {
            let name = name.to_string_lossy().into_owned();
            let address = match name.strip_prefix('@') {
                Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name.as_bytes()),
                None => SocketAddr::from_pathname(&name),
            };
            match address.and_then(|a| UnixDatagram::unbound().map(|s| (s, a))) {
                Ok(socket) => Some(socket),
                Err(e) => {
                    tracing::warn!("NOTIFY_SOCKET={name} cannot be used: {e}; systemd will not hear that we are ready");
                    None
                }
            }
        });
        Notifier { socket, ready_sent: AtomicBool::new(false) }
    }

    fn send(&self, message: &str) {
        if let Some((socket, address)) = &self.socket
            && let Err(e) = socket.send_to_addr(message.as_bytes(), address)
        {
            tracing::warn!("cannot notify systemd ({message:?}): {e}");
        }
    }

    /// `READY=1` with `status`, the first time only; later calls send the status alone.
    pub fn serving(&self, status: &str) {
        if !self.ready_sent.swap(true, Ordering::AcqRel) {
            self.send(&format!("READY=1\nSTATUS={status}"));
        } else {
            self.status(status);
        }
    }

    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={status}"));
    }
}
