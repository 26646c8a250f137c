//! sync, whoami, getEphemerals, getAllChildrenNumber, version: questions about the session and server.

use serde_json::json;

use super::{Command, Ctx, Reply};
use crate::error::CliError;

pub const SYNC: Command = Command { name: "sync", usage: "path", options: &[], handler: Some(sync) };
pub const WHO_AM_I: Command = Command { name: "whoami", usage: "", options: &[], handler: Some(who_am_i) };
pub const GET_EPHEMERALS: Command =
    Command { name: "getEphemerals", usage: "path", options: &[], handler: Some(get_ephemerals) };
pub const GET_ALL_CHILDREN_NUMBER: Command =
    Command { name: "getAllChildrenNumber", usage: "path", options: &[], handler: Some(get_all_children_number) };
pub const VERSION: Command = Command { name: "version", usage: "", options: &[], handler: Some(version) };

fn sync(ctx: &Ctx<'_>) -> Result<Reply, CliError> {
    let path = ctx.arg(1)?;
    // zkCli reports a failed sync as a line on stdout rather than an error (its async callback's rc).
    let line = match ctx.client.sync(path) {
        Ok(()) => "Sync is OK".to_owned(),
        Err(e) => match e.code() {
            Some(code) if !matches!(e, fk_client::Error::InvalidPath { .. }) => {
                format!("Sync has failed. rc={}", code.as_i32())
            }
            _ => return Err(e.into()),
        },
    };
    let ok = line == "Sync is OK";
    Ok(Reply::out(vec![line], json!({ "path": path, "ok": ok })))
}

fn who_am_i(ctx: &Ctx<'_>) -> Result<Reply, CliError> {
    let infos = ctx.client.who_am_i()?;
    let mut lines = vec!["Auth scheme: User".to_owned()];
    lines.extend(infos.iter().map(|i| format!("{}: {}", i.auth_scheme, i.user)));
    let json = json!(infos.iter().map(|i| json!({ "scheme": i.auth_scheme, "user": i.user })).collect::<Vec<_>>());
    Ok(Reply::out(lines, json))
}

/// Without a path, all of the session's ephemerals (Java's `getEphemerals()` asks for "/").
fn get_ephemerals(ctx: &Ctx<'_>) -> Result<Reply, CliError> {
    let ephemerals = ctx.client.get_ephemerals(ctx.parsed.arg(1).unwrap_or("/"))?;
    Ok(Reply::out(vec![format!("[{}]", ephemerals.join(", "))], json!(ephemerals)))
}

fn get_all_children_number(ctx: &Ctx<'_>) -> Result<Reply, CliError> {
    let path = ctx.arg(1)?;
    let count = ctx.client.get_all_children_number(path)?;
    Ok(Reply::out(vec![count.to_string()], json!({ "path": path, "count": count })))
}

fn version(_ctx: &Ctx<'_>) -> Result<Reply, CliError> {
    let version = env!("CARGO_PKG_VERSION");
    Ok(Reply::out(vec![format!("ZooKeeper CLI version: fkcli {version}")], json!({ "version": version })))
}
