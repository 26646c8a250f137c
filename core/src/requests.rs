//! A client session's request protocol: one copy for a shard (`ferrokeeper::pipeline::shard`, which keeps
//! only the sockets, buffers and figures) and for the simulator's members.
//!
//! - [`route_frame`] and [`route`]: what a request becomes when it arrives, as ZooKeeper 3.8 decides it:
//!   a write for the sequencer, a refusal the sequencer still logs as an error txn, a request answered
//!   here in its turn, an authentication answered at once, or a closed connection.
//! - [`RequestQueue`]: the session's FIFO order (ZooKeeper's client guarantee). Replies leave in request
//!   order, a locally answered request waits behind the session's earlier writes, and a write's reply
//!   must be for the oldest write waiting: anything else is a broken pipeline, and the connection closes.
//! - [`answer_local`]: the reply to a locally answered request, with the zxid ZooKeeper gives it and the
//!   watch events it sets off, which go out before it.
//!
//! The other half of "events before the reply that follows" is a batch's delivery order
//! ([`crate::apply::replies::in_delivery_order`]).

use std::collections::VecDeque;

use fk_net::client::watch::EventType;
use fk_net::client::{AuthPacket, ErrorCode, OpCode, Request, RequestError, RequestHeader, Response, SaslRequest};
use fk_net::jute::{Jute, JuteReader};

use crate::auth::AuthIds;
use crate::read::Reader;
use crate::sequencer::Sequenced;
use crate::watch::{ConnId, WatchTable};

/// What the server's configuration and the session's kind ask of every request.
#[derive(Debug, Clone, Copy)]
pub struct SessionRules<'a> {
    /// A read-only member's session (`readonlymode.enabled`): changes are refused with NotReadOnly.
    pub read_only: bool,
    /// `enforce.auth.schemes` / `sessionRequireClientSASLAuth`: the session must hold an identity of one
    /// of these schemes before anything but auth and SASL is served.
    pub required_schemes: Option<&'a [String]>,
    /// A SASL provider is configured. Without one, a SASL token is answered in turn with a null token.
    pub sasl: bool,
}

/// What an arriving request becomes.
#[derive(Debug)]
pub enum Routing {
    /// Down the write pipeline; its reply comes back through the applier, in order.
    Sequence { op: OpCode, work: Sequenced },
    /// Answered here once every earlier write of the session is answered.
    Local(Local),
    /// An `auth` packet: answered at once, outside the order (as ZooKeeper answers it on arrival).
    Authenticate(AuthPacket),
    /// A SASL token for the configured provider: answered at once.
    Sasl(Vec<u8>),
    /// Answered at once with `err`, then the connection closes.
    Refuse { err: ErrorCode, why: String },
    /// The connection closes without a reply.
    Close { why: String },
}

/// A request answered by the server that received it.
#[derive(Debug)]
pub enum Local {
    Read(Request),
    /// Decided on arrival (an undecodable body, an unknown opcode, a change on a read-only member), sent
    /// in its turn; `close`: the connection closes after it, for this reason.
    Error {
        err: ErrorCode,
        close: Option<&'static str>,
    },
}

impl Local {
    /// The name the connection's figures show for it (`cons`' `lop`).
    pub fn short_name(&self) -> &'static str {
        match self {
            Local::Read(request) => request.op_code().short_name(),
            Local::Error { .. } => "ERR",
        }
    }
}

/// Routes one request frame (header and body) of an established session. Returns the frame's xid
/// (0 when even the header does not decode) and what the request becomes.
pub fn route_frame(frame: &[u8], rules: &SessionRules<'_>, auth: &AuthIds) -> (i32, Routing) {
    let mut r = JuteReader::new(frame);
    let header = match RequestHeader::decode(&mut r) {
        Ok(header) => header,
        Err(e) => return (0, Routing::Close { why: format!("malformed request header: {e}") }),
    };
    let xid = header.xid;
    // ZooKeeper's AuthenticationHelper: every request but auth and SASL needs an identity of a required
    // scheme; without one the answer is SessionClosedRequireSaslAuth and the connection closes.
    if let Some(schemes) = rules.required_schemes
        && ![OpCode::Auth.as_i32(), OpCode::Sasl.as_i32()].contains(&header.op)
        && !auth.ids.iter().any(|id| schemes.contains(&id.scheme))
    {
        let why = format!("not authenticated with {}, which is required", schemes.join(" or "));
        return (xid, Routing::Refuse { err: ErrorCode::SessionClosedRequireSaslAuth, why });
    }
    if rules.read_only
        && let Some(op) = OpCode::from_i32(header.op)
        && (is_txn_op(op) || matches!(op, OpCode::Sync | OpCode::CloseSession))
    {
        // As ZooKeeper's ReadOnlyRequestProcessor, before the body is read: changes get NotReadOnly,
        // and closeSession ends the session (answered, then the connection closes).
        let local = if op == OpCode::CloseSession {
            Local::Error { err: ErrorCode::Ok, close: Some("client closed its read-only session") }
        } else {
            Local::Error { err: ErrorCode::NotReadOnly, close: None }
        };
        return (xid, Routing::Local(local));
    }
    let route = match Request::decode(header.op, &frame[r.position()..]) {
        Ok(request) => route(request, rules),
        Err(RequestError::UnknownOp(_)) => {
            Routing::Local(Local::Error { err: ErrorCode::Unimplemented, close: Some("unknown opcode") })
        }
        // ZooKeeper decodes auth and sasl packets as they arrive and drops the connection, without a
        // reply, when they do not decode (the session lives on).
        Err(RequestError::Malformed(op @ (OpCode::Auth | OpCode::Sasl), e)) => {
            Routing::Close { why: format!("undecodable {} packet: {e}", op.name()) }
        }
        // A change whose body does not decode still becomes an error txn in ZooKeeper.
        Err(RequestError::Malformed(op, _)) if is_txn_op(op) => {
            Routing::Sequence { op, work: Sequenced::Refused(op, ErrorCode::MarshallingError) }
        }
        Err(RequestError::Malformed(_, _)) => {
            Routing::Local(Local::Error { err: ErrorCode::MarshallingError, close: None })
        }
    };
    (xid, route)
}

/// Routes a decoded request (the simulator's clients send them decoded; [`route_frame`] decodes).
pub fn route(request: Request, rules: &SessionRules<'_>) -> Routing {
    match request {
        Request::Auth(packet) => Routing::Authenticate(packet),
        Request::Sasl(SaslRequest { token: Some(token) }) if rules.sasl => Routing::Sasl(token),
        // ZooKeeper fails on a null SASL token and drops the connection without a reply.
        Request::Sasl(SaslRequest { token: None }) => Routing::Close { why: "sasl packet without a token".into() },
        Request::Write(_) | Request::Multi(_) | Request::Sync(_) | Request::CloseSession | Request::Reconfig(_) => {
            Routing::Sequence { op: request.op_code(), work: Sequenced::Request(request) }
        }
        // Only the server's reaper may delete containers; ZooKeeper refuses a client's with BadArguments.
        Request::DeleteContainer(_) => {
            let op = OpCode::DeleteContainer;
            Routing::Sequence { op, work: Sequenced::Refused(op, ErrorCode::BadArguments) }
        }
        request => Routing::Local(Local::Read(request)),
    }
}

/// Ops whose requests become txns in ZooKeeper even when their body cannot be decoded.
fn is_txn_op(op: OpCode) -> bool {
    matches!(
        op,
        OpCode::Create
            | OpCode::Create2
            | OpCode::CreateContainer
            | OpCode::CreateTtl
            | OpCode::Delete
            | OpCode::DeleteContainer
            | OpCode::SetData
            | OpCode::SetAcl
            | OpCode::Check
            | OpCode::Multi
            | OpCode::Reconfig
    )
}

/// One waiting request: `W` is what the driver keeps of a write, `L` of a locally answered request.
#[derive(Debug)]
enum Queued<W, L> {
    Write { xid: i32, op: OpCode, kept: W },
    Local { xid: i32, kept: L },
}

/// A session's requests waiting for their reply, in arrival order.
#[derive(Debug)]
pub struct RequestQueue<W, L> {
    queue: VecDeque<Queued<W, L>>,
    closing_session: bool,
}

impl<W, L> Default for RequestQueue<W, L> {
    fn default() -> Self {
        RequestQueue { queue: VecDeque::new(), closing_session: false }
    }
}

/// A write's reply that is not for the session's oldest waiting write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("reply to xid {xid} does not match the oldest waiting request ({oldest})")]
pub struct OutOfOrder {
    pub xid: i32,
    pub oldest: String,
}

impl<W, L> RequestQueue<W, L> {
    /// A request sent down the write pipeline. After a closeSession nothing more is taken.
    pub fn write(&mut self, xid: i32, op: OpCode, kept: W) {
        assert!(!self.closing_session, "a request after closeSession was taken");
        self.closing_session |= op == OpCode::CloseSession;
        self.queue.push_back(Queued::Write { xid, op, kept });
    }

    /// A request to answer here once every earlier write is answered.
    pub fn local(&mut self, xid: i32, kept: L) {
        assert!(!self.closing_session, "a request after closeSession was taken");
        self.queue.push_back(Queued::Local { xid, kept });
    }

    /// The write a reply with `xid` answers: it must be the oldest waiting request.
    pub fn write_answered(&mut self, xid: i32) -> Result<(OpCode, W), OutOfOrder> {
        match self.queue.front() {
            Some(Queued::Write { xid: oldest, .. }) if *oldest == xid => {}
            other => {
                let oldest = match other {
                    Some(Queued::Write { xid, op, .. }) => format!("write xid {xid} ({})", op.name()),
                    Some(Queued::Local { xid, .. }) => format!("local xid {xid}"),
                    None => "none".into(),
                };
                return Err(OutOfOrder { xid, oldest });
            }
        }
        let Some(Queued::Write { op, kept, .. }) = self.queue.pop_front() else { unreachable!("checked above") };
        Ok((op, kept))
    }

    /// The next locally answered request whose turn has come (no write of the session before it).
    pub fn next_local(&mut self) -> Option<(i32, L)> {
        if !matches!(self.queue.front(), Some(Queued::Local { .. })) {
            return None;
        }
        let Some(Queued::Local { xid, kept }) = self.queue.pop_front() else { unreachable!("checked above") };
        Some((xid, kept))
    }

    /// Requests waiting (ZooKeeper's per-connection throttle counts them).
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether a write of the session still waits for its reply.
    pub fn writes_waiting(&self) -> bool {
        self.queue.iter().any(|q| matches!(q, Queued::Write { .. }))
    }

    /// How many locally answered requests wait (they are abandoned if the connection goes).
    pub fn locals_waiting(&self) -> usize {
        self.queue.iter().filter(|q| matches!(q, Queued::Local { .. })).count()
    }

    /// A closeSession is in the pipeline: nothing after it is read.
    pub fn closing_session(&self) -> bool {
        self.closing_session
    }
}

/// The reply to a locally answered request.
#[derive(Debug)]
pub struct LocalReply {
    /// The reply's xid (`xid::PING` for a ping).
    pub xid: i32,
    pub zxid: i64,
    pub err: ErrorCode,
    pub response: Response,
    /// Events to send before the reply (setWatches on nodes changed since the client's zxid).
    pub events: Vec<(EventType, String)>,
    /// The connection closes after the reply, for this reason.
    pub close: Option<&'static str>,
}

/// Answers a locally answered request of connection `conn`, whose turn has come.
pub fn answer_local(
    reader: &Reader<'_>,
    conn: ConnId,
    watches: &mut WatchTable,
    xid: i32,
    local: &Local,
) -> LocalReply {
    let zxid = reader.tree.last_processed_zxid();
    match local {
        Local::Read(request) => {
            let reply = crate::read::answer(reader, conn, watches, xid, request);
            // ZooKeeper answers SASL outside its request pipeline, with zxid 0.
            let zxid = if matches!(request, Request::Sasl(_)) { 0 } else { zxid };
            let crate::read::ReadReply { xid, err, response, events } = reply;
            LocalReply { xid, zxid, err, response, events, close: None }
        }
        Local::Error { err, close } => {
            // An unknown opcode never reached ZooKeeper's pipeline: its reply carries zxid -1.
            let zxid = if *err == ErrorCode::Unimplemented { -1 } else { zxid };
            LocalReply { xid, zxid, err: *err, response: Response::Empty, events: Vec::new(), close: *close }
        }
    }
}

#[cfg(test)]
mod tests {
    use fk_net::client::{Id, PathRequest};

    use super::*;

    const OPEN: SessionRules<'static> = SessionRules { read_only: false, required_schemes: None, sasl: false };

    fn frame(xid: i32, op: OpCode, body: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        RequestHeader { xid, op: op.as_i32() }.encode(&mut bytes);
        bytes.extend_from_slice(body);
        bytes
    }

    fn path_body(path: &str) -> Vec<u8> {
        let mut bytes = Vec::new();
        PathRequest { path: path.into() }.encode(&mut bytes);
        bytes
    }

    #[test]
    fn requests_route_as_zookeeper_routes_them() {
        let auth = AuthIds::for_peer([127, 0, 0, 1].into());
        let (xid, route) = route_frame(&frame(7, OpCode::Delete, b"\x00"), &OPEN, &auth);
        assert_eq!(xid, 7);
        assert!(matches!(
            route,
            Routing::Sequence { work: Sequenced::Refused(OpCode::Delete, ErrorCode::MarshallingError), .. }
        ));
        let (_, route) = route_frame(&frame(1, OpCode::GetData, b"\x00"), &OPEN, &auth);
        assert!(matches!(route, Routing::Local(Local::Error { err: ErrorCode::MarshallingError, close: None })));
        let mut unknown = Vec::new();
        RequestHeader { xid: 2, op: 4242 }.encode(&mut unknown);
        let (_, route) = route_frame(&unknown, &OPEN, &auth);
        assert!(matches!(route, Routing::Local(Local::Error { err: ErrorCode::Unimplemented, close: Some(_) })));
        let (_, route) = route_frame(&frame(3, OpCode::Auth, b"\x00"), &OPEN, &auth);
        assert!(matches!(route, Routing::Close { .. }), "an undecodable auth packet closes without a reply");
        let (_, route) = route_frame(&[1, 2], &OPEN, &auth);
        assert!(matches!(route, Routing::Close { .. }));

        let read_only = SessionRules { read_only: true, ..OPEN };
        let (_, route) = route_frame(&frame(4, OpCode::Sync, &path_body("/")), &read_only, &auth);
        assert!(matches!(route, Routing::Local(Local::Error { err: ErrorCode::NotReadOnly, close: None })));
        let (_, route) = route_frame(&frame(5, OpCode::CloseSession, &[]), &read_only, &auth);
        assert!(matches!(route, Routing::Local(Local::Error { err: ErrorCode::Ok, close: Some(_) })));
        let (_, route) = route_frame(&frame(6, OpCode::Exists, &[]), &read_only, &auth);
        assert!(matches!(route, Routing::Local(Local::Error { err: ErrorCode::MarshallingError, .. })));

        let schemes = ["sasl".to_owned()];
        let required = SessionRules { required_schemes: Some(&schemes), ..OPEN };
        let (_, route) = route_frame(&frame(8, OpCode::Exists, &path_body("/")), &required, &auth);
        assert!(matches!(route, Routing::Refuse { err: ErrorCode::SessionClosedRequireSaslAuth, .. }));
        let mut sasl_auth = auth.clone();
        sasl_auth.ids.push(Id::new("sasl", "bob"));
        let exists = [path_body("/"), vec![0]].concat();
        let (_, route) = route_frame(&frame(9, OpCode::Exists, &exists), &required, &sasl_auth);
        assert!(matches!(route, Routing::Local(Local::Read(Request::Exists(_)))));

        assert!(matches!(
            super::route(Request::Sync(PathRequest { path: "/".into() }), &OPEN),
            Routing::Sequence { op: OpCode::Sync, .. }
        ));
        let token = || Request::Sasl(SaslRequest { token: Some(vec![1]) });
        assert!(
            matches!(super::route(token(), &OPEN), Routing::Local(Local::Read(_))),
            "no provider: answered in turn"
        );
        assert!(matches!(super::route(token(), &SessionRules { sasl: true, ..OPEN }), Routing::Sasl(_)));
    }

    #[test]
    fn reads_wait_for_the_sessions_earlier_writes_and_replies_keep_order() {
        let mut queue: RequestQueue<(), &str> = RequestQueue::default();
        queue.local(1, "read before");
        queue.write(2, OpCode::SetData, ());
        queue.local(3, "read after");
        queue.write(4, OpCode::Create, ());
        assert_eq!(queue.next_local(), Some((1, "read before")));
        assert_eq!(queue.next_local(), None, "the read after waits for the write before it");
        assert!(queue.write_answered(4).is_err(), "a reply for a later write is out of order");
        assert_eq!(queue.write_answered(2), Ok((OpCode::SetData, ())));
        assert!(queue.write_answered(4).is_err(), "the read still comes first");
        assert_eq!(queue.next_local(), Some((3, "read after")));
        assert!(queue.writes_waiting());
        assert_eq!(queue.write_answered(4), Ok((OpCode::Create, ())));
        assert!(queue.is_empty() && !queue.writes_waiting());
        queue.write(5, OpCode::CloseSession, ());
        assert!(queue.closing_session());
    }
}
