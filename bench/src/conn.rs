//! Talking to a server: the handshake, and a small blocking client for the workloads that wait on
//! events (watch fan-out, locks, connect storms).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context, bail};
use fk_net::client::*;
use fk_net::frame::{begin_frame, end_frame};
use fk_net::jute::{Jute, JuteReader};

/// Session timeout fkbench asks for: long enough that a loaded server never expires a bench session.
pub const SESSION_TIMEOUT_MS: i32 = 30_000;

/// A connected, handshaken, blocking session.
pub struct Session {
    pub stream: TcpStream,
    /// Over TLS (`--tls-ca`): the connection's TLS state, in the clear on `stream` otherwise.
    pub tls: Option<rustls::ClientConnection>,
    pub session_id: i64,
    next_xid: i32,
}

/// Appends one request frame.
pub fn encode_request(out: &mut Vec<u8>, xid: i32, request: &Request) {
    let start = begin_frame(out);
    RequestHeader { xid, op: request.op_code().as_i32() }.encode(out);
    request.encode_body(out);
    end_frame(out, start);
}

fn read_frame(stream: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let len = i32::from_be_bytes(len);
    if len < 0 {
        return Err(std::io::Error::other(format!("negative frame length {len}")));
    }
    let mut body = vec![0u8; len as usize];
    stream.read_exact(&mut body)?;
    Ok(body)
}

/// One reply or notification.
pub struct Reply {
    pub header: ReplyHeader,
    pub body: Vec<u8>,
}

/// SASL DIGEST-MD5 credentials (user, password) every session of this run authenticates with before
/// its first request (`--sasl-digest`), as a Java client with a JAAS `Client` section does.
static SASL_DIGEST: OnceLock<(String, String)> = OnceLock::new();

/// Sets the credentials of [`SASL_DIGEST`]; once per run.
pub fn use_sasl_digest(user: &str, password: &str) {
    let _ = SASL_DIGEST.set((user.to_owned(), password.to_owned()));
}

/// The TLS configuration every connection of this run uses (`--tls-ca`, `--tls-cert`).
static TLS: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();

/// Sets [`TLS`]; once per run.
pub fn use_tls(config: Arc<rustls::ClientConfig>) {
    let _ = TLS.set(config);
}

/// Picks the server for the next connection from a ZooKeeper connect string (`host:port[,host:port...]`):
/// in turn, so that an ensemble's members get equal shares of the connections.
fn next_server(connect_string: &str) -> &str {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let servers: Vec<&str> = connect_string.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    match servers.len() {
        0 => connect_string,
        n => servers[NEXT.fetch_add(1, Ordering::Relaxed) % n],
    }
}

impl Session {
    /// Connects to one of the servers in `connect_string` and creates a session.
    pub fn connect(connect_string: &str) -> anyhow::Result<Session> {
        let server = next_server(connect_string);
        let stream = TcpStream::connect(server).with_context(|| format!("cannot connect to {server}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let tls = match TLS.get() {
            Some(config) => Some(rustls::ClientConnection::new(config.clone(), fk_tls::server_name(server)?)?),
            None => None,
        };
        let mut session = Session { stream, tls, session_id: 0, next_xid: 1 };
        let request = ConnectRequest {
            timeout_ms: SESSION_TIMEOUT_MS,
            passwd: vec![0; PASSWORD_LEN],
            read_only: Some(false),
            ..Default::default()
        };
        let mut out = Vec::new();
        let start = begin_frame(&mut out);
        request.encode(&mut out);
        end_frame(&mut out, start);
        session.write_all(&out).with_context(|| format!("handshake with {server}"))?;
        let body = read_frame(&mut session.reader())
            .with_context(|| format!("{server} closed the connection during the handshake"))?;
        let response = ConnectResponse::decode(&mut JuteReader::new(&body)).context("malformed ConnectResponse")?;
        if response.session_id == 0 {
            bail!("{server} refused the session (timeout 0)");
        }
        session.session_id = response.session_id;
        if let Some((user, password)) = SASL_DIGEST.get() {
            session.sasl_digest(user, password).with_context(|| format!("SASL with {server} as {user}"))?;
        }
        Ok(session)
    }

    /// Writes bytes, through TLS if the session has it (the handshake happens on first use).
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match &mut self.tls {
            Some(tls) => rustls::Stream::new(tls, &mut self.stream).write_all(bytes),
            None => self.stream.write_all(bytes),
        }
    }

    /// The session's plaintext, to read from.
    fn reader(&mut self) -> Box<dyn Read + '_> {
        match &mut self.tls {
            Some(tls) => Box::new(rustls::Stream::new(tls, &mut self.stream)),
            None => Box::new(&mut self.stream),
        }
    }

    /// The DIGEST-MD5 exchange: the empty first token, the challenge, the response, the server's proof.
    fn sasl_digest(&mut self, user: &str, password: &str) -> anyhow::Result<()> {
        use fk_net::sasl::digest_md5::DigestMd5Client;
        let mut step = |token: Vec<u8>| -> anyhow::Result<Vec<u8>> {
            let reply = self.expect(&Request::Sasl(SaslRequest { token: Some(token) }), &[])?;
            Ok(SaslRequest::decode(&mut JuteReader::new(&reply.body))?.token.unwrap_or_default())
        };
        let challenge = step(Vec::new())?;
        let mut cnonce = [0u8; 12];
        getrandom::fill(&mut cnonce).map_err(|e| anyhow::anyhow!("the OS random number generator: {e}"))?;
        let cnonce: String = cnonce.iter().map(|b| format!("{b:02x}")).collect();
        let (response, client) = DigestMd5Client::respond(&challenge, user, password, &cnonce)?;
        let proof = step(response)?;
        client.check_rspauth(&proof)?;
        Ok(())
    }

    pub fn send(&mut self, request: &Request) -> anyhow::Result<i32> {
        let xid = self.next_xid;
        self.next_xid += 1;
        let mut out = Vec::new();
        encode_request(&mut out, xid, request);
        self.write_all(&out).context("connection lost")?;
        Ok(xid)
    }

    pub fn recv(&mut self) -> anyhow::Result<Reply> {
        let body = read_frame(&mut self.reader()).context("connection lost")?;
        let mut r = JuteReader::new(&body);
        let header = ReplyHeader::decode(&mut r).context("malformed reply header")?;
        Ok(Reply { header, body: body[r.position()..].to_vec() })
    }

    /// Sends a request and waits for its reply; notifications that arrive first are returned too.
    pub fn call(&mut self, request: &Request) -> anyhow::Result<(Reply, Vec<WatcherEvent>)> {
        let xid = self.send(request)?;
        let mut events = Vec::new();
        loop {
            let reply = self.recv()?;
            if reply.header.xid == xid::NOTIFICATION {
                events.push(WatcherEvent::decode(&mut JuteReader::new(&reply.body)).context("malformed event")?);
            } else if reply.header.xid == xid {
                return Ok((reply, events));
            } else {
                bail!("reply xid {} while waiting for {xid}", reply.header.xid);
            }
        }
    }

    /// Sends a request and fails unless it succeeds (or fails with one of `allowed`).
    pub fn expect(&mut self, request: &Request, allowed: &[ErrorCode]) -> anyhow::Result<Reply> {
        let (reply, _) = self.call(request)?;
        let err = reply.header.err;
        if err != 0 && !allowed.iter().any(|c| c.as_i32() == err) {
            let name = ErrorCode::from_i32(err).map_or("unknown".into(), |c| c.to_string());
            bail!("{} failed: {name}", request.op_code().name());
        }
        Ok(reply)
    }

    pub fn close(mut self) -> anyhow::Result<()> {
        self.call(&Request::CloseSession).map(|_| ())
    }
}

pub fn open_acl() -> Vec<Acl> {
    vec![Acl::new(perms::ALL, "world", "anyone")]
}

pub fn create(path: &str, data: &[u8], flags: i32) -> Request {
    let request = CreateRequest { path: path.into(), data: Some(data.to_vec()), acl: open_acl(), flags };
    Request::Write(WriteOp::Create { op: OpCode::Create, request })
}

/// Creates `path` and its missing ancestors (persistent, empty).
pub fn ensure_path(session: &mut Session, path: &str) -> anyhow::Result<()> {
    let mut prefix = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        prefix.push('/');
        prefix.push_str(part);
        session.expect(&create(&prefix, b"", 0), &[ErrorCode::NodeExists])?;
    }
    Ok(())
}
