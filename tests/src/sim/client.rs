//! A simulated ZooKeeper client: one session at a time, one request in flight (so its requests and
//! replies are trivially in FIFO order), connected to one member and moving to another when the
//! connection breaks, re-attaching its session there. Every request and what came of it is recorded
//! in the run's [`History`] for the checkers.

use fk_net::client::{Acl, Id};
use fk_net::client::{
    CheckVersionRequest, ConnectRequest, CreateRequest, DeleteRequest, OpCode, PathRequest, PathWatchRequest,
    ReplyHeader, Request, Response, SetDataRequest, WriteOp,
};

use super::history::{History, OpId, OpKind};
use super::member::{ConnId, FromClient, ToClient};
use super::rng::Rng;

/// The paths clients fight over: few, so that versions clash and deletes meet creates.
pub const KEYS: u64 = 6;

/// How long a client waits for a reply, or a connection, before it gives up and moves on.
const PATIENCE_MS: u64 = 3_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not connected; try again at `retry_at`.
    Disconnected {
        retry_at: u64,
    },
    Connecting {
        since: u64,
    },
    Ready,
    Waiting {
        op: OpId,
        xid: i32,
        since: u64,
    },
}

pub struct SimClient {
    pub index: usize,
    /// The member and connection it talks to.
    pub conn: Option<(usize, ConnId)>,
    session: Option<(i64, u32)>,
    phase: Phase,
    next_xid: i32,
    last_zxid_seen: i64,
    next_ping_at: u64,
    /// The op to send after a sync completes (a read that must see everything acknowledged before).
    after_sync: Option<Request>,
    /// The request in flight (a read's watch is recorded with its reply).
    in_flight: Option<Request>,
    /// Requests made; whether it may still make more (the run winds clients down at the end).
    pub active: bool,
}

/// What a client asks the world to do.
pub enum ClientOut {
    /// Open a connection to a member.
    Connect {
        member: usize,
        conn: ConnId,
        request: ConnectRequest,
    },
    Send {
        member: usize,
        conn: ConnId,
        msg: FromClient,
    },
}

/// The session timeout clients ask for.
pub const SESSION_TIMEOUT_MS: i32 = 4_000;

impl SimClient {
    pub fn new(index: usize) -> SimClient {
        SimClient {
            index,
            conn: None,
            session: None,
            phase: Phase::Disconnected { retry_at: 0 },
            next_xid: 1,
            last_zxid_seen: 0,
            next_ping_at: 0,
            after_sync: None,
            in_flight: None,
            active: true,
        }
    }

    /// When the client next wants to act without a message.
    pub fn next_wake(&self, now: u64, rng: &mut Rng) -> u64 {
        match self.phase {
            Phase::Disconnected { retry_at } => retry_at.max(now + 1),
            Phase::Connecting { since } => since + PATIENCE_MS,
            Phase::Ready => now + rng.between(1, 30),
            Phase::Waiting { since, .. } => (since + PATIENCE_MS).min(self.next_ping_at.max(now + 1)),
        }
    }

    /// Time passes: connect, send the next request, ping, or give up waiting; a `quiet` client (an
    /// expiry storm: a pause, or a network hiccup on its side) does none of that.
    pub fn wake(
        &mut self,
        now: u64,
        quiet: bool,
        rng: &mut Rng,
        members: usize,
        next_conn: &mut ConnId,
        history: &mut History,
    ) -> Vec<ClientOut> {
        let mut out = Vec::new();
        if quiet {
            return out;
        }
        match self.phase {
            Phase::Disconnected { retry_at } if now >= retry_at && self.active => {
                let member = rng.below(members as u64) as usize;
                *next_conn += 1;
                let conn = *next_conn;
                let (session_id, passwd) = match self.session {
                    Some((id, _)) => (id, ferrokeeper::session::session_password(id).to_vec()),
                    None => (0, vec![0; 16]),
                };
                let request = ConnectRequest {
                    protocol_version: 0,
                    last_zxid_seen: self.last_zxid_seen,
                    timeout_ms: SESSION_TIMEOUT_MS,
                    session_id,
                    passwd,
                    read_only: Some(false),
                };
                self.conn = Some((member, conn));
                self.phase = Phase::Connecting { since: now };
                out.push(ClientOut::Connect { member, conn, request });
            }
            Phase::Connecting { since } if now >= since + PATIENCE_MS => {
                self.drop_connection(now, rng, history, &mut out)
            }
            Phase::Waiting { op, since, .. } if now >= since + PATIENCE_MS => {
                history.give_up(op, now);
                self.after_sync = None;
                self.drop_connection(now, rng, history, &mut out);
            }
            Phase::Ready if self.active => self.send_next(now, rng, history, &mut out),
            _ => {}
        }
        if let (Some((member, conn)), Phase::Ready | Phase::Waiting { .. }) = (self.conn, self.phase)
            && now >= self.next_ping_at
        {
            self.next_ping_at = now + (SESSION_TIMEOUT_MS as u64 / 3);
            out.push(ClientOut::Send { member, conn, msg: FromClient::Ping });
        }
        out
    }

    /// A message from the member on connection `conn`.
    pub fn receive(
        &mut self,
        now: u64,
        rng: &mut Rng,
        conn: ConnId,
        msg: ToClient,
        history: &mut History,
    ) -> Result<Vec<ClientOut>, String> {
        let mut out = Vec::new();
        if self.conn.map(|(_, c)| c) != Some(conn) {
            return Ok(out);
        }
        match msg {
            ToClient::Connected { session_id, timeout_ms } => {
                if let Some((old, _)) = self.session
                    && old != session_id
                {
                    return Err(format!("client {}: re-attached session {old:#x} as {session_id:#x}", self.index));
                }
                self.session = Some((session_id, timeout_ms));
                history.connected(now, session_id);
                self.phase = Phase::Ready;
                self.next_ping_at = now + timeout_ms as u64 / 3;
            }
            ToClient::Expired => {
                self.session = None;
                self.drop_connection(now, rng, history, &mut out);
            }
            ToClient::Reply { header, body } => self.reply(now, header, body, history, &mut out)?,
            ToClient::Event { event_type, path } => {
                if let Some((session_id, _)) = self.session {
                    history.watch_event(now, session_id, &path, event_type);
                }
            }
            ToClient::Closed => {
                if let Phase::Waiting { op, .. } = self.phase {
                    history.give_up(op, now);
                    self.after_sync = None;
                }
                self.conn = None;
                self.phase = Phase::Disconnected { retry_at: now + rng.between(5, 200) };
            }
        }
        Ok(out)
    }

    fn reply(
        &mut self,
        now: u64,
        header: ReplyHeader,
        body: Option<Response>,
        history: &mut History,
        out: &mut Vec<ClientOut>,
    ) -> Result<(), String> {
        let Phase::Waiting { op, xid, .. } = self.phase else {
            return Err(format!("client {}: a reply (xid {}) to nothing it asked", self.index, header.xid));
        };
        if header.xid != xid {
            return Err(format!("client {}: reply for xid {} while waiting for xid {xid}", self.index, header.xid));
        }
        history.complete_reply(op, now, &header, body.as_ref());
        if let Some(request) = self.in_flight.take()
            && let Some(kind) = OpKind::watch_left(&request, &history.op(op).outcome)
        {
            history.watch_set(op, kind);
        }
        self.last_zxid_seen = self.last_zxid_seen.max(header.zxid);
        self.phase = Phase::Ready;
        if let Some(request) = self.after_sync.take()
            && header.err == 0
        {
            self.send(now, request, history, out);
        }
        Ok(())
    }

    /// Closes the connection (if any) and schedules a reconnect elsewhere.
    fn drop_connection(&mut self, now: u64, rng: &mut Rng, history: &mut History, out: &mut Vec<ClientOut>) {
        let _ = history;
        if let Some((member, conn)) = self.conn.take() {
            out.push(ClientOut::Send { member, conn, msg: FromClient::Close });
        }
        self.phase = Phase::Disconnected { retry_at: now + rng.between(5, 200) };
    }

    fn send_next(&mut self, now: u64, rng: &mut Rng, history: &mut History, out: &mut Vec<ClientOut>) {
        let request = random_request(rng);
        if let Request::Sync(_) = request {
            // A sync is followed by a read that must see every write acknowledged before the sync.
            self.after_sync = Some(read_request(rng));
        }
        self.send(now, request, history, out);
    }

    fn send(&mut self, now: u64, request: Request, history: &mut History, out: &mut Vec<ClientOut>) {
        let (Some((member, conn)), Some((session_id, _))) = (self.conn, self.session) else { return };
        let xid = self.next_xid;
        self.next_xid += 1;
        let kind = OpKind::from_request(&request).expect("the simulated clients send only modelled requests");
        let op = history.invoke(now, self.index, session_id, xid, kind);
        self.phase = Phase::Waiting { op, xid, since: now };
        self.in_flight = Some(request.clone());
        out.push(ClientOut::Send { member, conn, msg: FromClient::Request { xid, request } });
    }
}

fn key(rng: &mut Rng) -> String {
    format!("/k{}", rng.below(KEYS))
}

fn version(rng: &mut Rng) -> i32 {
    if rng.chance(0.5) { -1 } else { rng.below(4) as i32 }
}

fn data(rng: &mut Rng) -> Option<Vec<u8>> {
    Some(format!("v{}", rng.below(1000)).into_bytes())
}

fn open_acl() -> Vec<Acl> {
    vec![Acl { perms: 31, id: Id { scheme: "world".into(), id: "anyone".into() } }]
}

fn create(rng: &mut Rng) -> WriteOp {
    let (path, flags) = match rng.below(10) {
        0..=5 => (key(rng), 0),
        6..=7 => (key(rng), 1),
        8 => ("/s-".to_owned(), 2),
        _ => ("/s-".to_owned(), 3),
    };
    let op = if rng.chance(0.5) { OpCode::Create } else { OpCode::Create2 };
    WriteOp::Create { op, request: CreateRequest { path, data: data(rng), acl: open_acl(), flags } }
}

fn write(rng: &mut Rng) -> WriteOp {
    match rng.below(3) {
        0 => create(rng),
        1 => WriteOp::SetData(SetDataRequest { path: key(rng), data: data(rng), version: version(rng) }),
        _ => WriteOp::Delete(DeleteRequest { path: key(rng), version: version(rng) }),
    }
}

fn read_request(rng: &mut Rng) -> Request {
    let watch = rng.chance(0.3);
    match rng.below(3) {
        0 => Request::GetData(PathWatchRequest { path: key(rng), watch }),
        1 => Request::Exists(PathWatchRequest { path: key(rng), watch }),
        _ => Request::GetChildren(PathWatchRequest { path: "/".into(), watch }),
    }
}

fn random_request(rng: &mut Rng) -> Request {
    match rng.below(20) {
        0..=9 => Request::Write(write(rng)),
        10..=15 => read_request(rng),
        16..=17 => Request::Sync(PathRequest { path: "/".into() }),
        _ => {
            let check = WriteOp::Check(CheckVersionRequest { path: key(rng), version: version(rng) });
            Request::Multi(vec![check, write(rng)])
        }
    }
}
