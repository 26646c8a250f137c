//! One TCP connection to one server, in plaintext or TLS: the session handshake and length-prefixed
//! frames both ways.
//!
//! The reading side (the session's I/O thread) and the writing side (any caller) work at once, over TLS
//! too (fk_tls::blocking).

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use fk_tls::blocking::{ReadHalf, WriteHalf};
use rustls::ClientConfig;

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
    stream: ReadHalf,
    writer: Writer,
    buf: Vec<u8>,
}

/// The writing side.
pub type Writer = WriteHalf;

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
        Some(config) => Some(fk_tls::blocking::connect(config.clone(), &mut stream, host)?),
        None => None,
    };
    let mut out = Vec::new();
    let start = begin_frame(&mut out);
    request.encode(&mut out);
    end_frame(&mut out, start);
    let (stream, mut writer) = fk_tls::blocking::split(stream, tls)?;
    writer.write_all(&out)?;
    let mut reader = Reader { stream, writer, buf: Vec::new() };
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
        Ok(self.writer.clone())
    }

    pub fn set_read_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.stream.socket().set_read_timeout(Some(timeout))
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
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(io::Error::new(ErrorKind::UnexpectedEof, "server closed the connection")),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return Ok(None),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
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
