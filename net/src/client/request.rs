//! A client request decoded from its opcode and body.

use super::opcode::OpCode;
use super::records::*;
use crate::jute::{DecodeError, DecodeResult, Jute, JuteReader};

/// One state-changing operation: alone, or as a sub-op of a multi.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// `op` is create, create2 or createContainer: they share the record but not the reply.
    Create {
        op: OpCode,
        request: CreateRequest,
    },
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    SetData(SetDataRequest),
    SetAcl(SetAclRequest),
    Check(CheckVersionRequest),
}

impl WriteOp {
    pub fn op_code(&self) -> OpCode {
        match self {
            WriteOp::Create { op, .. } => *op,
            WriteOp::CreateTtl(_) => OpCode::CreateTtl,
            WriteOp::Delete(_) => OpCode::Delete,
            WriteOp::SetData(_) => OpCode::SetData,
            WriteOp::SetAcl(_) => OpCode::SetAcl,
            WriteOp::Check(_) => OpCode::Check,
        }
    }

    pub fn path(&self) -> &str {
        match self {
            WriteOp::Create { request, .. } => &request.path,
            WriteOp::CreateTtl(r) => &r.path,
            WriteOp::Delete(r) => &r.path,
            WriteOp::SetData(r) => &r.path,
            WriteOp::SetAcl(r) => &r.path,
            WriteOp::Check(r) => &r.path,
        }
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            WriteOp::Create { request, .. } => request.encode(out),
            WriteOp::CreateTtl(r) => r.encode(out),
            WriteOp::Delete(r) => r.encode(out),
            WriteOp::SetData(r) => r.encode(out),
            WriteOp::SetAcl(r) => r.encode(out),
            WriteOp::Check(r) => r.encode(out),
        }
    }
}

/// A read inside a multiRead (reference §7): only getData and getChildren are allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOp {
    GetData(PathWatchRequest),
    GetChildren(PathWatchRequest),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Write(WriteOp),
    Multi(Vec<WriteOp>),
    MultiRead(Vec<ReadOp>),
    Exists(PathWatchRequest),
    GetData(PathWatchRequest),
    GetChildren(PathWatchRequest),
    GetChildren2(PathWatchRequest),
    GetAcl(PathRequest),
    GetEphemerals(PathRequest),
    GetAllChildrenNumber(PathRequest),
    Sync(PathRequest),
    Ping,
    Reconfig(ReconfigRequest),
    CheckWatches(WatchTypeRequest),
    RemoveWatches(WatchTypeRequest),
    AddWatch(AddWatchRequest),
    /// setWatches is decoded into the setWatches2 shape with empty persistent lists.
    SetWatches(SetWatches2),
    Auth(AuthPacket),
    Sasl(SaslRequest),
    /// Only the server's own container reaper issues it; a client that sends it is refused.
    DeleteContainer(String),
    WhoAmI,
    CloseSession,
}

/// Why a frame could not become a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The opcode is not one ZooKeeper defines: reply Unimplemented and close (as ZooKeeper does).
    UnknownOp(i32),
    /// The body does not decode for this opcode: reply MarshallingError.
    Malformed(OpCode, DecodeError),
}

const MULTI_DONE: i32 = -1;

impl Request {
    /// Decodes the body that follows a `RequestHeader` whose type was `op`.
    pub fn decode(op: i32, body: &[u8]) -> Result<Request, RequestError> {
        // Notification (0) and error (-1) are opcodes of server messages; ZooKeeper answers a client
        // that sends one as it answers an unknown opcode.
        let code = OpCode::from_i32(op)
            .filter(|code| !matches!(code, OpCode::Notification | OpCode::Error))
            .ok_or(RequestError::UnknownOp(op))?;
        let mut r = JuteReader::new(body);
        Self::decode_known(code, &mut r).map_err(|e| RequestError::Malformed(code, e))
    }

    fn decode_known(op: OpCode, r: &mut JuteReader<'_>) -> DecodeResult<Request> {
        Ok(match op {
            OpCode::Create
            | OpCode::Create2
            | OpCode::CreateContainer
            | OpCode::CreateTtl
            | OpCode::Delete
            | OpCode::SetData
            | OpCode::SetAcl
            | OpCode::Check => Request::Write(decode_write_op(op, r)?.expect("op is a write op")),
            OpCode::Multi => Request::Multi(decode_multi(r, decode_write_op)?),
            OpCode::MultiRead => Request::MultiRead(decode_multi(r, decode_read_op)?),
            OpCode::Exists => Request::Exists(Jute::decode(r)?),
            OpCode::GetData => Request::GetData(Jute::decode(r)?),
            OpCode::GetChildren => Request::GetChildren(Jute::decode(r)?),
            OpCode::GetChildren2 => Request::GetChildren2(Jute::decode(r)?),
            OpCode::GetAcl => Request::GetAcl(Jute::decode(r)?),
            OpCode::GetEphemerals => Request::GetEphemerals(Jute::decode(r)?),
            OpCode::GetAllChildrenNumber => Request::GetAllChildrenNumber(Jute::decode(r)?),
            OpCode::Sync => Request::Sync(Jute::decode(r)?),
            OpCode::Ping => Request::Ping,
            OpCode::Reconfig => Request::Reconfig(Jute::decode(r)?),
            OpCode::CheckWatches => Request::CheckWatches(Jute::decode(r)?),
            OpCode::RemoveWatches => Request::RemoveWatches(Jute::decode(r)?),
            OpCode::AddWatch => Request::AddWatch(Jute::decode(r)?),
            OpCode::SetWatches => {
                let w = SetWatches::decode(r)?;
                Request::SetWatches(SetWatches2 {
                    relative_zxid: w.relative_zxid,
                    data_watches: w.data_watches,
                    exist_watches: w.exist_watches,
                    child_watches: w.child_watches,
                    ..Default::default()
                })
            }
            OpCode::SetWatches2 => Request::SetWatches(Jute::decode(r)?),
            OpCode::Auth => Request::Auth(Jute::decode(r)?),
            OpCode::Sasl => Request::Sasl(Jute::decode(r)?),
            OpCode::DeleteContainer => Request::DeleteContainer(String::decode(r)?),
            OpCode::WhoAmI => Request::WhoAmI,
            OpCode::CloseSession => Request::CloseSession,
            // A client's createSession is a MarshallingError in ZooKeeper (its body is not a request).
            OpCode::Notification | OpCode::CreateSession | OpCode::Error => {
                return Err(DecodeError::UnknownValue { what: "client opcode", value: op.as_i32(), offset: 0 });
            }
        })
    }

    /// Encodes the body (without header); used by clients (fkbench, tests).
    pub fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            Request::Write(w) => w.encode_body(out),
            Request::Multi(ops) => encode_multi(out, ops.iter().map(|w| (w.op_code(), w)), |w, out| w.encode_body(out)),
            Request::MultiRead(ops) => encode_multi(
                out,
                ops.iter().map(|op| match op {
                    ReadOp::GetData(_) => (OpCode::GetData, op),
                    ReadOp::GetChildren(_) => (OpCode::GetChildren, op),
                }),
                |op, out| match op {
                    ReadOp::GetData(r) | ReadOp::GetChildren(r) => r.encode(out),
                },
            ),
            Request::Exists(r) | Request::GetData(r) | Request::GetChildren(r) | Request::GetChildren2(r) => {
                r.encode(out)
            }
            Request::GetAcl(r) | Request::GetEphemerals(r) | Request::GetAllChildrenNumber(r) | Request::Sync(r) => {
                r.encode(out)
            }
            Request::Reconfig(r) => r.encode(out),
            Request::CheckWatches(r) | Request::RemoveWatches(r) => r.encode(out),
            Request::AddWatch(r) => r.encode(out),
            Request::SetWatches(r) => r.encode(out),
            Request::Auth(r) => r.encode(out),
            Request::Sasl(r) => r.encode(out),
            Request::DeleteContainer(path) => path.encode(out),
            Request::Ping | Request::WhoAmI | Request::CloseSession => {}
        }
    }

    /// The opcode this request is sent with.
    pub fn op_code(&self) -> OpCode {
        match self {
            Request::Write(w) => w.op_code(),
            Request::Multi(_) => OpCode::Multi,
            Request::MultiRead(_) => OpCode::MultiRead,
            Request::Exists(_) => OpCode::Exists,
            Request::GetData(_) => OpCode::GetData,
            Request::GetChildren(_) => OpCode::GetChildren,
            Request::GetChildren2(_) => OpCode::GetChildren2,
            Request::GetAcl(_) => OpCode::GetAcl,
            Request::GetEphemerals(_) => OpCode::GetEphemerals,
            Request::GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
            Request::Sync(_) => OpCode::Sync,
            Request::Ping => OpCode::Ping,
            Request::Reconfig(_) => OpCode::Reconfig,
            Request::CheckWatches(_) => OpCode::CheckWatches,
            Request::RemoveWatches(_) => OpCode::RemoveWatches,
            Request::AddWatch(_) => OpCode::AddWatch,
            Request::SetWatches(_) => OpCode::SetWatches2,
            Request::Auth(_) => OpCode::Auth,
            Request::Sasl(_) => OpCode::Sasl,
            Request::DeleteContainer(_) => OpCode::DeleteContainer,
            Request::WhoAmI => OpCode::WhoAmI,
            Request::CloseSession => OpCode::CloseSession,
        }
    }
}

/// Decodes a write sub-op record; `None` if `op` is not a write op.
fn decode_write_op(op: OpCode, r: &mut JuteReader<'_>) -> DecodeResult<Option<WriteOp>> {
    Ok(Some(match op {
        OpCode::Create | OpCode::Create2 | OpCode::CreateContainer => WriteOp::Create { op, request: Jute::decode(r)? },
        OpCode::CreateTtl => WriteOp::CreateTtl(Jute::decode(r)?),
        OpCode::Delete => WriteOp::Delete(Jute::decode(r)?),
        OpCode::SetData => WriteOp::SetData(Jute::decode(r)?),
        OpCode::SetAcl => WriteOp::SetAcl(Jute::decode(r)?),
        OpCode::Check => WriteOp::Check(Jute::decode(r)?),
        _ => return Ok(None),
    }))
}

fn decode_read_op(op: OpCode, r: &mut JuteReader<'_>) -> DecodeResult<Option<ReadOp>> {
    Ok(Some(match op {
        OpCode::GetData => ReadOp::GetData(Jute::decode(r)?),
        OpCode::GetChildren => ReadOp::GetChildren(Jute::decode(r)?),
        _ => return Ok(None),
    }))
}

/// Reads `{MultiHeader, record}*` up to the `done` terminator. A sub-op the multi kind does not allow is
/// a decode error (ZooKeeper: "Invalid type of op" → MarshallingError). setACL is refused inside multi
/// as in ZooKeeper's `MultiOperationRecord`.
fn decode_multi<T>(
    r: &mut JuteReader<'_>,
    decode_op: impl Fn(OpCode, &mut JuteReader<'_>) -> DecodeResult<Option<T>>,
) -> DecodeResult<Vec<T>> {
    let mut ops = Vec::new();
    loop {
        let offset = r.position();
        let op = r.read_i32()?;
        let done = r.read_bool()?;
        let _err = r.read_i32()?;
        if done {
            return Ok(ops);
        }
        let unknown = DecodeError::UnknownValue { what: "multi sub-op", value: op, offset };
        let code = OpCode::from_i32(op).filter(|c| *c != OpCode::SetAcl).ok_or(unknown.clone())?;
        ops.push(decode_op(code, r)?.ok_or(unknown)?);
    }
}

fn encode_multi<'a, T: 'a>(
    out: &mut Vec<u8>,
    ops: impl Iterator<Item = (OpCode, &'a T)>,
    encode_op: impl Fn(&T, &mut Vec<u8>),
) {
    use crate::jute::JuteWriter;
    for (code, op) in ops {
        out.put_i32(code.as_i32());
        out.put_bool(false);
        out.put_i32(-1);
        encode_op(op, out);
    }
    out.put_i32(MULTI_DONE);
    out.put_bool(true);
    out.put_i32(-1);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(request: Request) {
        let mut body = Vec::new();
        request.encode_body(&mut body);
        let decoded = Request::decode(request.op_code().as_i32(), &body).unwrap();
        assert_eq!(decoded, request);
    }

    #[test]
    fn multi_round_trips() {
        round_trip(Request::Multi(vec![
            WriteOp::Create {
                op: OpCode::Create,
                request: CreateRequest { path: "/a".into(), data: Some(b"x".to_vec()), acl: vec![], flags: 0 },
            },
            WriteOp::Check(CheckVersionRequest { path: "/a".into(), version: 3 }),
            WriteOp::Delete(DeleteRequest { path: "/b".into(), version: -1 }),
        ]));
        round_trip(Request::MultiRead(vec![ReadOp::GetData(PathWatchRequest { path: "/a".into(), watch: false })]));
        round_trip(Request::Multi(vec![]));
    }

    #[test]
    fn unknown_opcode_and_mixed_multi_are_refused() {
        assert_eq!(Request::decode(999, &[]), Err(RequestError::UnknownOp(999)));
        let mut body = Vec::new();
        Request::MultiRead(vec![ReadOp::GetData(PathWatchRequest { path: "/a".into(), watch: false })])
            .encode_body(&mut body);
        assert!(matches!(Request::decode(OpCode::Multi.as_i32(), &body), Err(RequestError::Malformed(..))));
    }
}
