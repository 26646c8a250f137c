//! A txn as `log dump` shows it: one text line, or one JSON object.
//!
//! Op names are ZooKeeper's own (`OpCode` names, as `Request.op2String` prints them in TxnLogToolkit's
//! output), so `--op` takes what operators see in ZooKeeper's tools.

use fk_net::client::{Acl, OpCode};
use fk_net::txn::{Txn, TxnBody};
use serde_json::{Map, Value, json};

/// The ops a txn log can hold: every type a `TxnBody` decodes.
pub(crate) const LOGGED_OPS: &[OpCode] = &[
    OpCode::Create,
    OpCode::Create2,
    OpCode::CreateContainer,
    OpCode::CreateTtl,
    OpCode::Delete,
    OpCode::DeleteContainer,
    OpCode::SetData,
    OpCode::Reconfig,
    OpCode::SetAcl,
    OpCode::Check,
    OpCode::Multi,
    OpCode::CreateSession,
    OpCode::CloseSession,
    OpCode::Error,
];

pub(crate) fn op_name(body: &TxnBody) -> &'static str {
    OpCode::from_i32(body.txn_type()).map_or("unknown", OpCode::name)
}

/// The znode a txn names (a multi or a session txn names none itself).
pub(crate) fn path(body: &TxnBody) -> Option<&str> {
    match body {
        TxnBody::Create { txn, .. } => Some(&txn.path),
        TxnBody::CreateContainer(t) => Some(&t.path),
        TxnBody::CreateTtl(t) => Some(&t.path),
        TxnBody::Delete { path, .. } => Some(path),
        TxnBody::SetData(t) | TxnBody::Reconfig(t) => Some(&t.path),
        TxnBody::SetAcl(t) => Some(&t.path),
        TxnBody::Check(t) => Some(&t.path),
        TxnBody::Multi(_) | TxnBody::CreateSession(_) | TxnBody::CloseSession { .. } | TxnBody::Error(_) => None,
    }
}

fn data_len(body: &TxnBody) -> Option<usize> {
    let data = match body {
        TxnBody::Create { txn, .. } => &txn.data,
        TxnBody::CreateContainer(t) => &t.data,
        TxnBody::CreateTtl(t) => &t.data,
        TxnBody::SetData(t) | TxnBody::Reconfig(t) => &t.data,
        _ => return None,
    };
    Some(data.as_ref().map_or(0, Vec::len))
}

/// Every znode a txn touches: its own path, those of the ops in a multi, and the ephemerals a
/// closeSession deletes.
pub(crate) fn touched_paths(body: &TxnBody) -> Vec<&str> {
    match body {
        TxnBody::Multi(ops) => ops.iter().flat_map(touched_paths).collect(),
        TxnBody::CloseSession { paths_to_delete } => paths_to_delete.iter().flatten().map(String::as_str).collect(),
        _ => path(body).into_iter().collect(),
    }
}

/// A txn's op name and, for a multi, the names of the ops inside it.
pub(crate) fn op_names(body: &TxnBody) -> Vec<&'static str> {
    let mut names = vec![op_name(body)];
    if let TxnBody::Multi(ops) = body {
        names.extend(ops.iter().map(op_name));
    }
    names
}

/// The text line of `log dump` (before the offset column).
pub(crate) fn text(txn: &Txn) -> String {
    let h = &txn.header;
    let body = match &txn.body {
        TxnBody::Create { op, txn } => format!(
            "{} {} ({} bytes, ephemeral={})",
            op.name(),
            txn.path,
            txn.data.as_ref().map_or(0, Vec::len),
            txn.ephemeral
        ),
        TxnBody::CreateContainer(t) => format!("createContainer {}", t.path),
        TxnBody::CreateTtl(t) => format!("createTTL {} ttl={}", t.path, t.ttl),
        TxnBody::Delete { op, path } => format!("{} {path}", op.name()),
        TxnBody::SetData(t) => format!("setData {} version={}", t.path, t.version),
        TxnBody::Reconfig(_) => "reconfig".to_owned(),
        TxnBody::SetAcl(t) => format!("setACL {} aversion={}", t.path, t.version),
        TxnBody::Check(t) => format!("check {} version={}", t.path, t.version),
        TxnBody::Multi(txns) => format!("multi ({} ops)", txns.len()),
        TxnBody::CreateSession(t) => format!("createSession timeout={}", t.timeout_ms),
        TxnBody::CloseSession { paths_to_delete } => {
            format!("closeSession {:?}", paths_to_delete.as_deref().unwrap_or_default())
        }
        TxnBody::Error(t) => format!("error {}", t.err),
    };
    format!("zxid 0x{:x} session 0x{:x} cxid 0x{:x} time {} {body}", h.zxid, h.client_id, h.cxid, h.time)
}

/// The JSON object of `log dump --json`. Zxids and session ids are hex strings (as ZooKeeper prints
/// them, and because 64-bit ids do not survive a JSON reader's doubles).
pub(crate) fn json(file: &str, offset: u64, txn: &Txn) -> Value {
    let h = &txn.header;
    let mut object = Map::new();
    object.insert("file".into(), file.into());
    object.insert("offset".into(), offset.into());
    object.insert("zxid".into(), format!("0x{:x}", h.zxid).into());
    object.insert("session".into(), format!("0x{:x}", h.client_id).into());
    object.insert("cxid".into(), h.cxid.into());
    object.insert("time".into(), h.time.into());
    object.append(&mut body_json(&txn.body));
    if let Some(digest) = &txn.digest {
        object.insert("digest".into(), json!({"version": digest.version, "tree_digest": digest.tree_digest}));
    }
    Value::Object(object)
}

/// op, path, data_length, then the fields of that op.
fn body_json(body: &TxnBody) -> Map<String, Value> {
    let mut object = Map::new();
    object.insert("op".into(), op_name(body).into());
    object.insert("path".into(), path(body).into());
    object.insert("data_length".into(), data_len(body).into());
    let specific = match body {
        TxnBody::Create { txn, .. } => {
            json!({"ephemeral": txn.ephemeral, "parent_cversion": txn.parent_cversion, "acl": acl_json(&txn.acl)})
        }
        TxnBody::CreateContainer(t) => json!({"parent_cversion": t.parent_cversion, "acl": acl_json(&t.acl)}),
        TxnBody::CreateTtl(t) => json!({"parent_cversion": t.parent_cversion, "ttl": t.ttl, "acl": acl_json(&t.acl)}),
        TxnBody::SetData(t) | TxnBody::Reconfig(t) => json!({"version": t.version}),
        TxnBody::SetAcl(t) => json!({"version": t.version, "acl": acl_json(&t.acl)}),
        TxnBody::Check(t) => json!({"version": t.version}),
        TxnBody::Multi(ops) => json!({"ops": ops.iter().map(|op| Value::Object(body_json(op))).collect::<Vec<_>>()}),
        TxnBody::CreateSession(t) => json!({"timeout_ms": t.timeout_ms}),
        TxnBody::CloseSession { paths_to_delete } => json!({"paths_to_delete": paths_to_delete}),
        TxnBody::Error(t) => json!({"err": t.err}),
        TxnBody::Delete { .. } => json!({}),
    };
    if let Value::Object(mut fields) = specific {
        object.append(&mut fields);
    }
    object
}

fn acl_json(acl: &[Acl]) -> Value {
    acl.iter().map(|a| json!({"perms": a.perms, "scheme": a.id.scheme, "id": a.id.id})).collect()
}
