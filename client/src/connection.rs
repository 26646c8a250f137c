//! One TCP connection to one server, in plaintext or TLS: the session handshake and length-prefixed
//! frames both ways.
//!
//! The reading side (the session's I/O thread) and the writing side (any caller) work at once. Over
//! TLS they share the rustls state behind a mutex that neither holds while it waits on the socket: the
//! reader takes raw bytes from the socket unlocked, then decrypts them locked.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::ClientConfig;
use rustls::pki_types::ServerName;

use fk_net::client::{ConnectRequest, ConnectResponse, ReplyHeader, Request, RequestHeader};
use fk_net::frame::{LENGTH_PREFIX, begin_frame, complete_frame, end_frame};
use fk_net::jute::{Jute, JuteReader};

/// The largest reply accepted: ZooKeeper's default `jute.maxbuffer` (0xfffff) plus room for the header
/// and a getChildren of many names (the Java client accepts 4 MiB by default too).
pub const REPLY_BYTES_MAX: usize = 4 * 1024 * 1024;

/// A reply frame split into its header and body.
#[derive(Debug)]
pub struct Frame {
    pub header: ReplyHeader,
    pub body: Vec<u8>,
}

/// The reading side: owns a buffer so a read timeout in the middle of a frame loses nothing.
pub struct Reader {
    stream: TcpStream,
    tls: Option<Tls>,
    buf: Vec<u8>,
}

/// A TLS connection's shared state, and the raw bytes read but not yet given to rustls.
struct Tls {
    session: Arc<Mutex<rustls::ClientConnection>>,
    raw: Vec<u8>,
}

/// The writing side.
pub struct Writer {
    stream: TcpStream,
    tls: Option<Arc<Mutex<rustls::ClientConnection>>>,
}

/// Connects to `host` (over TLS with `tls`) and exchanges ConnectRequest/ConnectResponse within
/// `timeout`.
pub fn handshake(
    host: &str,
    request: &ConnectRequest,
    timeout: Duration,
    tls: Option<&Arc<ClientConfig>>,
) -> io::Result<(Reader, ConnectResponse)> {
    let address = resolve(host)?;
    let mut stream = TcpStream::connect_timeout(&address, timeout)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let tls = match tls {
        Some(config) => {
            let name = host.rsplit_once(':').map_or(host, |(name, _)| name).trim_matches(['[', ']']);
            let name = ServerName::try_from(name.to_owned()).map_err(|e| io::Error::new(ErrorKind::InvalidInput, e))?;
            let mut session = rustls::ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
            while session.is_handshaking() {
                session.complete_io(&mut stream)?;
            }
            Some(Tls { session: Arc::new(Mutex::new(session)), raw: Vec::new() })
        }
        None => None,
    };
    let mut out = Vec::new();
    let start = begin_frame(&mut out);
    request.encode(&mut out);
    end_frame(&mut out, start);
    let mut reader = Reader { stream, tls, buf: Vec::new() };
    reader.writer()?.write_all(&out)?;
    let body = reader.next_payload()?.ok_or_else(|| io::Error::new(ErrorKind::TimedOut, "no ConnectResponse"))?;
    let response = ConnectResponse::decode_exact(&body).map_err(|e| io::Error::new(ErrorKind::InvalidData, e))?;
    Ok((reader, response))
}

fn resolve(host: &str) -> io::Result<SocketAddr> {
    host.to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(ErrorKind::NotFound, format!("{host} resolves to nothing")))
}

impl Reader {
    pub fn writer(&self) -> io::Result<Writer> {
        Ok(Writer { stream: self.stream.try_clone()?, tls: self.tls.as_ref().map(|t| t.session.clone()) })
    }

    pub fn set_read_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.stream.set_read_timeout(Some(timeout))
    }

    /// The next reply frame; `Ok(None)` when the read timeout passed first.
    pub fn next_frame(&mut self) -> io::Result<Option<Frame>> {
        let Some(payload) = self.next_payload()? else { return Ok(None) };
        let mut r = JuteReader::new(&payload);
        let header = ReplyHeader::decode(&mut r).map_err(|e| io::Error::new(ErrorKind::InvalidData, e))?;
        let body = payload[r.position()..].to_vec();
        Ok(Some(Frame { header, body }))
    }

    fn next_payload(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            match complete_frame(&self.buf, REPLY_BYTES_MAX) {
                Err(e) => return Err(io::Error::new(ErrorKind::InvalidData, e)),
                Ok(Some(len)) => {
                    let payload = self.buf[LENGTH_PREFIX..LENGTH_PREFIX + len].to_vec();
                    self.buf.drain(..LENGTH_PREFIX + len);
                    return Ok(Some(payload));
                }
                Ok(None) => {}
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.read_plaintext(&mut chunk) {
                Ok(0) => return Err(io::Error::new(ErrorKind::UnexpectedEof, "server closed the connection")),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return Ok(None),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Plaintext from the socket, or from TLS records: what rustls holds, else what the raw bytes read
    /// so far decrypt to, else more raw bytes (read without holding the lock the writer needs).
    fn read_plaintext(&mut self, chunk: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = &mut self.tls else { return self.stream.read(chunk) };
        loop {
            {
                let mut session = tls.session.lock().expect("a TLS user panicked");
                match session.reader().read(chunk) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                if !tls.raw.is_empty() {
                    let mut unread = &tls.raw[..];
                    session.read_tls(&mut unread)?;
                    let consumed = tls.raw.len() - unread.len();
                    tls.raw.drain(..consumed);
                    session.process_new_packets().map_err(|e| io::Error::new(ErrorKind::InvalidData, e))?;
                    // Post-handshake messages (TLS 1.3 key updates) may ask for an answer.
                    while session.wants_write() {
                        session.write_tls(&mut self.stream)?;
                    }
                    continue;
                }
            }
            let n = self.stream.read(chunk)?;
            if n == 0 {
                return Ok(0);
            }
            tls.raw.extend_from_slice(&chunk[..n]);
        }
    }
}

impl Writer {
    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let Some(tls) = &self.tls else { return self.stream.write_all(bytes) };
        let mut session = tls.lock().expect("a TLS user panicked");
        session.writer().write_all(bytes)?;
        while session.wants_write() {
            session.write_tls(&mut self.stream)?;
        }
        Ok(())
    }

    pub fn shutdown(&self) -> io::Result<()> {
        self.stream.shutdown(Shutdown::Both)
    }
}

/// Writes one request frame: `RequestHeader{xid, op}` then the body.
pub fn write_request(stream: &mut Writer, xid: i32, request: &Request) -> io::Result<()> {
    let mut out = Vec::new();
    let start = begin_frame(&mut out);
    RequestHeader { xid, op: request.op_code().as_i32() }.encode(&mut out);
    request.encode_body(&mut out);
    end_frame(&mut out, start);
    stream.write_all(&out)
}
