//! A minimal blocking client over `fk-net`'s records, for exact-byte tests.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use fk_net::client::*;
use fk_net::frame::{begin_frame, end_frame};
use fk_net::jute::{Jute, JuteReader};

pub struct RawClient {
    pub stream: TcpStream,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub timeout_ms: i32,
    next_xid: i32,
}

/// One frame from the server after the handshake.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub header: ReplyHeader,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn err(&self) -> i32 {
        self.header.err
    }

    pub fn event(&self) -> WatcherEvent {
        assert_eq!(self.header.xid, -1, "not a notification: {self:?}");
        WatcherEvent::decode_exact(&self.body).expect("watcher event")
    }
}

impl RawClient {
    /// Connects and establishes a new session.
    pub fn connect(address: &str) -> RawClient {
        Self::connect_with(
            address,
            ConnectRequest { timeout_ms: 30_000, passwd: vec![0; 16], read_only: Some(false), ..Default::default() },
        )
        .expect("handshake")
    }

    /// Sends `request` as the first frame; `None` if the server refused the connection or closed it
    /// without answering.
    pub fn connect_with(address: &str, request: ConnectRequest) -> Option<RawClient> {
        let mut stream = TcpStream::connect(address).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        stream.write_all(&frame(|out| request.encode(out))).ok()?;
        let body = read_frame(&mut stream)?;
        let response = ConnectResponse::decode_exact(&body).expect("ConnectResponse");
        Some(RawClient {
            stream,
            session_id: response.session_id,
            passwd: response.passwd,
            timeout_ms: response.timeout_ms,
            next_xid: 1,
        })
    }

    /// Sends a request and returns its xid.
    pub fn send(&mut self, request: &Request) -> i32 {
        self.try_send(request).expect("send")
    }

    /// Sends a request and returns its xid, or why it could not be sent (the server is gone).
    pub fn try_send(&mut self, request: &Request) -> std::io::Result<i32> {
        let xid = match request {
            Request::Ping => xid::PING,
            Request::Auth(_) => xid::AUTH,
            Request::SetWatches(_) => xid::SET_WATCHES,
            _ => {
                self.next_xid += 1;
                self.next_xid
            }
        };
        let mut body = Vec::new();
        request.encode_body(&mut body);
        self.try_send_raw(xid, request.op_code().as_i32(), &body)?;
        Ok(xid)
    }

    /// Sends a request frame with any opcode and body.
    pub fn send_raw(&mut self, xid: i32, op: i32, body: &[u8]) {
        self.try_send_raw(xid, op, body).expect("send");
    }

    fn try_send_raw(&mut self, xid: i32, op: i32, body: &[u8]) -> std::io::Result<()> {
        let bytes = frame(|out| {
            RequestHeader { xid, op }.encode(out);
            out.extend_from_slice(body);
        });
        self.stream.write_all(&bytes)
    }

    /// The next frame; `None` once the server has closed the connection.
    pub fn recv(&mut self) -> Option<Reply> {
        let body = read_frame(&mut self.stream)?;
        let mut r = JuteReader::new(&body);
        let header = ReplyHeader::decode(&mut r).expect("reply header");
        Some(Reply { header, body: body[r.position()..].to_vec() })
    }

    /// Sends a request and returns its reply, skipping (and returning) notifications seen first.
    pub fn call(&mut self, request: &Request) -> (Reply, Vec<WatcherEvent>) {
        let xid = self.send(request);
        let mut events = Vec::new();
        loop {
            let reply = self.recv().expect("server closed the connection");
            if reply.header.xid == xid::NOTIFICATION {
                events.push(reply.event());
            } else {
                assert_eq!(reply.header.xid, xid, "reply out of order");
                return (reply, events);
            }
        }
    }
}

pub fn frame(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    let start = begin_frame(&mut out);
    f(&mut out);
    end_frame(&mut out, start);
    out
}

fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).ok()?;
    Some(body)
}
