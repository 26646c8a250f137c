//! Reply bodies. A reply frame is `ReplyHeader` followed by the body, which is omitted when `err != 0`.

use super::opcode::OpCode;
use super::records::*;
use crate::jute::{DecodeError, DecodeResult, Jute, JuteReader, JuteWriter};

/// One result inside a multi or multiRead reply (reference §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    Create(String),
    /// create2, createContainer and createTTL sub-ops all answer with a Create2Response.
    Create2(String, Stat),
    Delete,
    SetData(Stat),
    Check,
    GetData(Option<Vec<u8>>, Stat),
    GetChildren(Vec<String>),
    Error(i32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// delete, sync-less ops, auth, setWatches, ping, closeSession, removeWatches, checkWatches.
    Empty,
    Create(CreateResponse),
    Create2(Create2Response),
    /// exists, setData, setACL and a lone check answer with a bare Stat.
    Stat(Stat),
    GetData(GetDataResponse),
    GetAcl(GetAclResponse),
    GetChildren(GetChildrenResponse),
    GetChildren2(GetChildren2Response),
    Sync(PathRequest),
    Multi(Vec<MultiResult>),
    GetEphemerals(GetEphemeralsResponse),
    GetAllChildrenNumber(GetAllChildrenNumberResponse),
    WhoAmI(WhoAmIResponse),
    /// addWatch answers with an ErrorResponse{err: 0}: a 4-byte body.
    AddWatch(ErrorResponse),
    Sasl(SaslRequest),
}

impl Response {
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Response::Empty => {}
            Response::Create(r) => r.encode(out),
            Response::Create2(r) => r.encode(out),
            Response::Stat(r) => r.encode(out),
            Response::GetData(r) => r.encode(out),
            Response::GetAcl(r) => r.encode(out),
            Response::GetChildren(r) => r.encode(out),
            Response::GetChildren2(r) => r.encode(out),
            Response::Sync(r) => r.encode(out),
            Response::Multi(results) => encode_multi_results(results, out),
            Response::GetEphemerals(r) => r.encode(out),
            Response::GetAllChildrenNumber(r) => r.encode(out),
            Response::WhoAmI(r) => r.encode(out),
            Response::AddWatch(r) => r.encode(out),
            Response::Sasl(r) => r.encode(out),
        }
    }

    /// Decodes the body of a successful reply to a request sent with `op` (used by clients).
    pub fn decode(op: OpCode, body: &[u8]) -> DecodeResult<Response> {
        let r = &mut JuteReader::new(body);
        Ok(match op {
            OpCode::Create => Response::Create(Jute::decode(r)?),
            OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => Response::Create2(Jute::decode(r)?),
            OpCode::Exists | OpCode::SetData | OpCode::SetAcl | OpCode::Check => Response::Stat(Jute::decode(r)?),
            OpCode::GetData => Response::GetData(Jute::decode(r)?),
            OpCode::GetAcl => Response::GetAcl(Jute::decode(r)?),
            OpCode::GetChildren => Response::GetChildren(Jute::decode(r)?),
            OpCode::GetChildren2 => Response::GetChildren2(Jute::decode(r)?),
            OpCode::Sync => Response::Sync(Jute::decode(r)?),
            OpCode::Multi | OpCode::MultiRead => Response::Multi(decode_multi_results(r)?),
            OpCode::GetEphemerals => Response::GetEphemerals(Jute::decode(r)?),
            OpCode::GetAllChildrenNumber => Response::GetAllChildrenNumber(Jute::decode(r)?),
            OpCode::WhoAmI => Response::WhoAmI(Jute::decode(r)?),
            OpCode::AddWatch => Response::AddWatch(Jute::decode(r)?),
            OpCode::Sasl => Response::Sasl(Jute::decode(r)?),
            _ => Response::Empty,
        })
    }
}

fn put_multi_header(out: &mut Vec<u8>, op: i32, done: bool, err: i32) {
    out.put_i32(op);
    out.put_bool(done);
    out.put_i32(err);
}

fn encode_multi_results(results: &[MultiResult], out: &mut Vec<u8>) {
    for result in results {
        match result {
            MultiResult::Create(path) => {
                put_multi_header(out, OpCode::Create.as_i32(), false, 0);
                path.encode(out);
            }
            MultiResult::Create2(path, stat) => {
                put_multi_header(out, OpCode::Create2.as_i32(), false, 0);
                path.encode(out);
                stat.encode(out);
            }
            MultiResult::Delete => put_multi_header(out, OpCode::Delete.as_i32(), false, 0),
            MultiResult::SetData(stat) => {
                put_multi_header(out, OpCode::SetData.as_i32(), false, 0);
                stat.encode(out);
            }
            MultiResult::Check => put_multi_header(out, OpCode::Check.as_i32(), false, 0),
            MultiResult::GetData(data, stat) => {
                put_multi_header(out, OpCode::GetData.as_i32(), false, 0);
                out.put_buffer(data.as_deref());
                stat.encode(out);
            }
            MultiResult::GetChildren(children) => {
                put_multi_header(out, OpCode::GetChildren.as_i32(), false, 0);
                children.encode(out);
            }
            MultiResult::Error(err) => {
                put_multi_header(out, OpCode::Error.as_i32(), false, *err);
                out.put_i32(*err);
            }
        }
    }
    put_multi_header(out, -1, true, -1);
}

fn decode_multi_results(r: &mut JuteReader<'_>) -> DecodeResult<Vec<MultiResult>> {
    let mut results = Vec::new();
    loop {
        let offset = r.position();
        let op = r.read_i32()?;
        let done = r.read_bool()?;
        let err = r.read_i32()?;
        if done {
            return Ok(results);
        }
        results.push(match OpCode::from_i32(op) {
            Some(OpCode::Create) => MultiResult::Create(String::decode(r)?),
            Some(OpCode::Create2) => MultiResult::Create2(String::decode(r)?, Stat::decode(r)?),
            Some(OpCode::Delete) => MultiResult::Delete,
            Some(OpCode::SetData) => MultiResult::SetData(Stat::decode(r)?),
            Some(OpCode::Check) => MultiResult::Check,
            Some(OpCode::GetData) => MultiResult::GetData(Option::<Vec<u8>>::decode(r)?, Stat::decode(r)?),
            Some(OpCode::GetChildren) => MultiResult::GetChildren(Vec::<String>::decode(r)?),
            Some(OpCode::Error) => {
                let body_err = r.read_i32()?;
                debug_assert_eq!(body_err, err);
                MultiResult::Error(body_err)
            }
            _ => return Err(DecodeError::UnknownValue { what: "multi result type", value: op, offset }),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_results_round_trip() {
        let results = vec![
            MultiResult::Create("/a".into()),
            MultiResult::Create2("/b".into(), Stat { czxid: 5, ..Default::default() }),
            MultiResult::Delete,
            MultiResult::SetData(Stat::default()),
            MultiResult::Check,
            MultiResult::Error(-101),
        ];
        let mut out = Vec::new();
        Response::Multi(results.clone()).encode(&mut out);
        assert_eq!(Response::decode(OpCode::Multi, &out).unwrap(), Response::Multi(results));
    }
}
