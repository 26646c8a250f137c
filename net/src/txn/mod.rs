//! Transactions: every state change, as ZooKeeper serializes it.

pub mod records;

pub use records::*;

use crate::client::OpCode;
use crate::jute::{DecodeError, DecodeResult, Jute, JuteReader, JuteWriter};

/// A txn body, by `TxnHeader.txn_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnBody {
    /// `op` is create or create2 (same body, different type on disk).
    Create {
        op: OpCode,
        txn: CreateTxn,
    },
    CreateContainer(CreateContainerTxn),
    CreateTtl(CreateTtlTxn),
    /// `op` is delete or deleteContainer.
    Delete {
        op: OpCode,
        path: String,
    },
    SetData(SetDataTxn),
    Reconfig(SetDataTxn),
    SetAcl(SetAclTxn),
    Check(CheckVersionTxn),
    Multi(Vec<TxnBody>),
    CreateSession(CreateSessionTxn),
    /// `None` for the empty body of 3.4/3.5 (delete every ephemeral of the session).
    CloseSession {
        paths_to_delete: Option<Vec<String>>,
    },
    Error(ErrorTxn),
}

impl TxnBody {
    pub fn txn_type(&self) -> i32 {
        match self {
            TxnBody::Create { op, .. } | TxnBody::Delete { op, .. } => op.as_i32(),
            TxnBody::CreateContainer(_) => OpCode::CreateContainer.as_i32(),
            TxnBody::CreateTtl(_) => OpCode::CreateTtl.as_i32(),
            TxnBody::SetData(_) => OpCode::SetData.as_i32(),
            TxnBody::Reconfig(_) => OpCode::Reconfig.as_i32(),
            TxnBody::SetAcl(_) => OpCode::SetAcl.as_i32(),
            TxnBody::Check(_) => OpCode::Check.as_i32(),
            TxnBody::Multi(_) => OpCode::Multi.as_i32(),
            TxnBody::CreateSession(_) => OpCode::CreateSession.as_i32(),
            TxnBody::CloseSession { .. } => OpCode::CloseSession.as_i32(),
            TxnBody::Error(_) => OpCode::Error.as_i32(),
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            TxnBody::Create { txn, .. } => txn.encode(out),
            TxnBody::CreateContainer(t) => t.encode(out),
            TxnBody::CreateTtl(t) => t.encode(out),
            TxnBody::Delete { path, .. } => path.encode(out),
            TxnBody::SetData(t) | TxnBody::Reconfig(t) => t.encode(out),
            TxnBody::SetAcl(t) => t.encode(out),
            TxnBody::Check(t) => t.encode(out),
            TxnBody::Multi(txns) => {
                out.put_i32(txns.len() as i32);
                for txn in txns {
                    MultiTxnEntry { txn_type: txn.txn_type(), data: Some(txn.to_bytes()) }.encode(out);
                }
            }
            TxnBody::CreateSession(t) => t.encode(out),
            TxnBody::CloseSession { paths_to_delete: Some(paths) } => paths.encode(out),
            TxnBody::CloseSession { paths_to_delete: None } => {}
            TxnBody::Error(t) => t.encode(out),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes a body of type `txn_type`. Bytes left over (a TxnDigest) are the caller's.
    pub fn decode(txn_type: i32, r: &mut JuteReader<'_>) -> DecodeResult<TxnBody> {
        let unknown = || DecodeError::UnknownValue { what: "txn type", value: txn_type, offset: r.position() };
        let op = OpCode::from_i32(txn_type).ok_or_else(unknown)?;
        Ok(match op {
            OpCode::Create | OpCode::Create2 => TxnBody::Create { op, txn: decode_create(r)? },
            OpCode::CreateContainer => TxnBody::CreateContainer(Jute::decode(r)?),
            OpCode::CreateTtl => TxnBody::CreateTtl(Jute::decode(r)?),
            OpCode::Delete | OpCode::DeleteContainer => TxnBody::Delete { op, path: String::decode(r)? },
            OpCode::SetData => TxnBody::SetData(Jute::decode(r)?),
            OpCode::Reconfig => TxnBody::Reconfig(Jute::decode(r)?),
            OpCode::SetAcl => TxnBody::SetAcl(Jute::decode(r)?),
            OpCode::Check => TxnBody::Check(Jute::decode(r)?),
            OpCode::Multi => TxnBody::Multi(decode_multi(r)?),
            OpCode::CreateSession => TxnBody::CreateSession(Jute::decode(r)?),
            OpCode::CloseSession if r.is_empty() => TxnBody::CloseSession { paths_to_delete: None },
            OpCode::CloseSession => TxnBody::CloseSession { paths_to_delete: Some(Jute::decode(r)?) },
            OpCode::Error => TxnBody::Error(Jute::decode(r)?),
            _ => return Err(unknown()),
        })
    }
}

/// CreateTxn, or the pre-3.3 CreateTxnV0 without parentCVersion (detected by the record ending early),
/// which replays with parentCVersion -1 ("current + 1").
fn decode_create(r: &mut JuteReader<'_>) -> DecodeResult<CreateTxn> {
    let path = String::decode(r)?;
    let data = Option::<Vec<u8>>::decode(r)?;
    let acl = Jute::decode(r)?;
    let ephemeral = r.read_bool()?;
    let parent_cversion = if r.remaining() >= 4 { r.read_i32()? } else { -1 };
    Ok(CreateTxn { path, data, acl, ephemeral, parent_cversion })
}

fn decode_multi(r: &mut JuteReader<'_>) -> DecodeResult<Vec<TxnBody>> {
    let entries = Vec::<MultiTxnEntry>::decode(r)?;
    entries
        .into_iter()
        .map(|entry| {
            let bytes = entry.data.unwrap_or_default();
            let mut inner = JuteReader::new(&bytes);
            TxnBody::decode(entry.txn_type, &mut inner)
        })
        .collect()
}

/// A complete txn: header, body and the optional digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    pub header: TxnHeader,
    pub body: TxnBody,
    pub digest: Option<TxnDigest>,
}

impl Txn {
    /// Serializes the txn the way it sits inside a log record (the "entry" bytes).
    pub fn encode(&self, out: &mut Vec<u8>) {
        debug_assert_eq!(self.header.txn_type, self.body.txn_type());
        self.header.encode(out);
        self.body.encode(out);
        if let Some(digest) = &self.digest {
            digest.encode(out);
        }
    }

    pub fn decode(bytes: &[u8]) -> DecodeResult<Txn> {
        let mut r = JuteReader::new(bytes);
        let header = TxnHeader::decode(&mut r)?;
        let body = TxnBody::decode(header.txn_type, &mut r)?;
        let digest = if r.is_empty() { None } else { Some(TxnDigest::decode(&mut r)?) };
        Ok(Txn { header, body, digest })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Acl;

    #[test]
    fn multi_txn_round_trips_with_digest() {
        let txn = Txn {
            header: TxnHeader { client_id: 7, cxid: 3, zxid: 0x34, time: 99, txn_type: OpCode::Multi.as_i32() },
            body: TxnBody::Multi(vec![
                TxnBody::Create {
                    op: OpCode::Create,
                    txn: CreateTxn {
                        path: "/multi".into(),
                        data: None,
                        acl: vec![Acl::new(31, "world", "anyone")],
                        ephemeral: false,
                        parent_cversion: 4,
                    },
                },
                TxnBody::Check(CheckVersionTxn { path: "/app/bin".into(), version: 1 }),
                TxnBody::Error(ErrorTxn { err: -2 }),
            ]),
            digest: Some(TxnDigest { version: 2, tree_digest: -5 }),
        };
        let mut out = Vec::new();
        txn.encode(&mut out);
        assert_eq!(Txn::decode(&out).unwrap(), txn);
    }

    #[test]
    fn close_session_without_body_is_the_old_format() {
        let mut out = Vec::new();
        TxnHeader { txn_type: OpCode::CloseSession.as_i32(), ..Default::default() }.encode(&mut out);
        assert_eq!(Txn::decode(&out).unwrap().body, TxnBody::CloseSession { paths_to_delete: None });
    }
}
