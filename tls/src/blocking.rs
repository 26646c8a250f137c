//! A TLS connection on a blocking socket, used from two threads at once: one reading (and waiting on
//! the socket), one writing — the shape of fk-client's sessions and of the links between ensemble
//! members. The rustls state is shared behind a mutex that the reader never holds while it waits: it
//! takes raw bytes from the socket unlocked, then decrypts them locked.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};

/// The reading half.
pub struct ReadHalf {
    socket: TcpStream,
    tls: Option<(Arc<Mutex<rustls::Connection>>, Vec<u8>)>,
}

/// The writing half (any number of them; each write goes out whole).
#[derive(Clone)]
pub struct WriteHalf {
    socket: Arc<TcpStream>,
    tls: Option<Arc<Mutex<rustls::Connection>>>,
}

/// Splits a connection whose TLS handshake (if any) is done into its two halves.
pub fn split(socket: TcpStream, tls: Option<rustls::Connection>) -> io::Result<(ReadHalf, WriteHalf)> {
    let tls = tls.map(|tls| Arc::new(Mutex::new(tls)));
    let writer = WriteHalf { socket: Arc::new(socket.try_clone()?), tls: tls.clone() };
    Ok((ReadHalf { socket, tls: tls.map(|tls| (tls, Vec::new())) }, writer))
}

/// A client's TLS on a connected blocking socket to `host_port`, its handshake done.
pub fn connect(
    config: Arc<rustls::ClientConfig>,
    socket: &mut TcpStream,
    host_port: &str,
) -> io::Result<rustls::Connection> {
    let name = crate::server_name(host_port).map_err(|e| io::Error::new(ErrorKind::InvalidInput, e))?;
    let mut tls = rustls::ClientConnection::new(config, name).map_err(io::Error::other)?.into();
    handshake(&mut tls, socket)?;
    Ok(tls)
}

/// Runs a TLS handshake to its end on a blocking socket (bounded by the socket's timeouts).
pub fn handshake(tls: &mut rustls::Connection, socket: &mut TcpStream) -> io::Result<()> {
    while tls.is_handshaking() {
        tls.complete_io(socket)?;
    }
    // The last flight (a client's Finished) may still be queued.
    while tls.wants_write() {
        tls.write_tls(socket)?;
    }
    Ok(())
}

impl ReadHalf {
    /// The socket, for timeouts and addresses.
    pub fn socket(&self) -> &TcpStream {
        &self.socket
    }
}

impl Read for ReadHalf {
    /// Plaintext rustls holds, else what the raw bytes read so far decrypt to, else more raw bytes.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some((tls, raw)) = &mut self.tls else { return self.socket.read(buf) };
        loop {
            {
                let mut tls = tls.lock().expect("a TLS user panicked");
                match tls.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                if !raw.is_empty() {
                    let mut unread = &raw[..];
                    tls.read_tls(&mut unread)?;
                    let consumed = raw.len() - unread.len();
                    raw.drain(..consumed);
                    if let Err(e) = tls.process_new_packets() {
                        let _ = tls.write_tls(&mut self.socket);
                        return Err(io::Error::new(ErrorKind::InvalidData, crate::nonblocking::TlsFailure(e)));
                    }
                    // Post-handshake messages (TLS 1.3 key updates) may ask for an answer.
                    while tls.wants_write() {
                        tls.write_tls(&mut self.socket)?;
                    }
                    continue;
                }
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.socket.read(&mut chunk)?;
            if n == 0 {
                return Ok(0);
            }
            raw.extend_from_slice(&chunk[..n]);
        }
    }
}

impl WriteHalf {
    pub fn shutdown(&self) -> io::Result<()> {
        self.socket.shutdown(Shutdown::Both)
    }

    pub fn socket(&self) -> &TcpStream {
        &self.socket
    }
}

impl Write for WriteHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    /// The whole of `bytes`, in one piece with respect to other writers.
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let Some(tls) = &self.tls else { return (&*self.socket).write_all(bytes) };
        let mut tls = tls.lock().expect("a TLS user panicked");
        tls.writer().write_all(bytes)?;
        while tls.wants_write() {
            tls.write_tls(&mut &*self.socket)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
