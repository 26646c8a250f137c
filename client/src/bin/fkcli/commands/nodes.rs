//! ls, create, get, set, stat, delete, deleteall: reading and writing znodes.

use fk_client::{Client, CreateMode, Error, ErrorCode, WriteOp, open_acl_unsafe};
use fk_net::client::DeleteRequest;
use serde_json::json;

use super::{Command, Ctx, Reply};
use crate::acl::parse_acl;
use crate::error::CliError;
use crate::format::{human_stat_lines, stat_json, stat_lines};
use crate::words::{flag, valued};

pub const LS: Command = Command {
    name: "ls",
    usage: "[-s] [-w] [-R] path",
    options: &[flag("s"), flag("w"), flag("R")],
    handler: Some(ls),
};
pub const CREATE: Command = Command {
    name: "create",
    usage: "[-s] [-e] [-c] [-t ttl] path [data] [acl]",
    options: &[flag("s"), flag("e"), flag("c"), valued("t")],
    handler: Some(create),
};
pub const GET: Command =
    Command { name: "get", usage: "[-s] [-w] path", options: &[flag("s"), flag("w")], handler: Some(get) };
pub const SET: Command = Command {
    name: "set",
    usage: "[-s] [-v version] path data",
    options: &[flag("s"), valued("v")],
    handler: Some(set),
};
pub const STAT: Command =
    Command { name: "stat", usage: "[-w] path", options: &[flag("w"), flag("human")], handler: Some(stat) };
pub const DELETE: Command =
    Command { name: "delete", usage: "[-v version] path", options: &[valued("v")], handler: Some(delete) };
pub const DELETE_ALL: Command =
    Command { name: "deleteall", usage: "path [-b batch size]", options: &[valued("b")], handler: Some(delete_all) };

/// zkCli's print of children: sorted, Java's `List.toString`, then the parent's Stat with `-s`.
fn ls(ctx: &Ctx<'_>) -> Result<Reply, CliError> {
    let path = ctx.arg(1)?;
    let watch = ctx.parsed.has("w");
    if ctx.parsed.has("R") {
        let paths = visit_subtree(ctx.client, path, watch)?;
        let json = json!(paths);
        return Ok(Reply::out(paths, json));
    }
    let (mut children, stat) = ctx.client.get_children2(path, watch)?;
    children.sort();
    let mut lines = vec![format!("[{}]", children.join(", "))];
    let mut json = json!({ "path": path, "children": children });
    if ctx.parsed.has("s") {
        lines.extend(stat_lines(&stat));
        json["stat"] = stat_json(&stat);
    }
    Ok(Reply::out(lines, json))
}

/// `ZKUtil.visitSubTreeDFS`: the root, then each node's sorted children listed before any of them is
/// descended into. A node deleted meanwhile is skipped, as ZooKeeper does.
pub fn visit_subtree(client: &Client, root: &str, watch: bool) -> Result<Vec<String>, CliError> {
    client.get_data(root, watch)?;
    let mut paths = vec![root.to_owned()];
    visit_children(client, root, watch, &mut paths)?;
    Ok(paths)
}

fn visit_children(client: &Client, path: &str, watch: bool, paths: &mut Vec<String>) -> Result<(), CliError> {
    let mut children = match client.get_children(path, watch) {
        Ok(children) => children,
        Err(Error::Server { code: ErrorCode::NoNode, .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    children.sort();
    let child_paths: Vec<String> = children.iter().map(|c| join(path, c)).collect();
    paths.extend(child_paths.iter().cloned());
    for child in &child_paths {
        visit_children(client, child, watch, paths)?;
    }
    Ok(())
}

pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" { format!("/{child}") } else { format!("{parent}/{child}") }
}

fn create(ctx: &Ctx<'_>) -> Result<Reply, CliError> {
    let path = ctx.arg(1)?;
    let mode = create_mode(ctx)?;
    let data = ctx.parsed.arg(2).map(str::as_bytes);
    let (acl, warnings) = match ctx.parsed.arg(3) {
        Some(text) => parse_acl(text),
        None => (open_acl_unsafe(), Vec::new()),
    };
    let mut reply = Reply { stderr: warnings, ..Reply::default() };
    let (created, stat) = ctx.client.create(path, data, &acl, mode)?;
    reply.stderr.push(format!("Created {created}"));
    reply.json = Some(json!({ "created": created, "stat": stat_json(&stat) }));
    Ok(reply)
}

/// `CreateCommand.exec`'s checks, in its order and words.
fn create_mode(ctx: &Ctx<'_>) -> Result<CreateMode, CliError> {
    let (e, s, c, t) = (ctx.parsed.has("e"), ctx.parsed.has("s"), ctx.parsed.has("c"), ctx.parsed.has("t"));
    if c && (e || s) {
        return Err(CliError::usage(
            "-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.",
        ));
    }
    let ttl = if t { Some(ctx.int_option::<i64>("t", 0, "a long value")?) } else { None };
    if t && e {
        return Err(CliError::usage("TTLs cannot be used with Ephemeral znodes"));
    }
    if t && c {
        return Err(CliError::usage("TTLs cannot be used with Container znodes"));
    }
    // `EphemeralType.TTL.toEphemeralOwner`: a TTL must be positive and fit in 40 bits.
    if let Some(ttl) = ttl.filter(|ttl| *ttl <= 0 || *ttl > 0xff_ffff_ffff) {
        return Err(CliError::usage(format!(
            "ttl must be positive and cannot be larger than: {} ({ttl})",
            0xff_ffff_ffffi64
        )));
    }
    Ok(CreateMode::from_cli(s, e, c, ttl))
}

fn get(ctx: &Ctx<'_>) -> Result<Reply, CliError> {
    let path = ctx.arg(1)?;
    let (data, stat) = ctx.client.get_data(path, ctx.parsed.has("w"))?;
    // zkCli prints a null value as "null" and bytes as UTF-8 (lossily, as Java's String constructor).
    let text = data.as_deref().map_or_else(|| "null".to_owned(), |d| String::from_utf8_lossy(d).into_owned());
    let mut lines = vec![text];
    let mut json = json!({ "path": path, "data": data.as_deref().map(String::from_utf8_lossy) });
    if ctx.parsed.has("s") {
        lines.extend(stat_lines(&stat));
        json["stat"] = stat_json(&stat);
    }
    Ok(Reply::out(lines, json))
}

fn set(ctx: &Ctx<'_>) -> Result<Reply, CliError> {
    let path = ctx.arg(1)?;
    let data = ctx.arg(2)?;
    let version = ctx.int_option("v", -1, "an int value")?;
    let stat = ctx.client.set_data(path, Some(data.as_bytes()), version)?;
    let lines = if ctx.parsed.has("s") { stat_lines(&stat) } else { Vec::new() };
    Ok(Reply::out(lines, json!({ "path": path, "stat": stat_json(&stat) })))
}

fn stat(ctx: &Ctx<'_>) -> Result<Reply, CliError> {
    let path = ctx.arg(1)?;
    let Some(stat) = ctx.client.exists(path, ctx.parsed.has("w"))? else {
        return Err(Error::Server { code: ErrorCode::NoNode, path: path.into() }.into());
    };
    let lines = if ctx.parsed.has("human") { human_stat_lines(&stat) } else { stat_lines(&stat) };
    Ok(Reply::out(lines, stat_json(&stat)))
}

fn delete(ctx: &Ctx<'_>) -> Result<Reply, CliError> {
    let path = ctx.arg(1)?;
    let version = ctx.int_option("v", -1, "an int value")?;
    ctx.client.delete(path, version)?;
    Ok(Reply { json: Some(json!({ "deleted": path })), ..Reply::default() })
}

/// `ZKUtil.deleteRecursive`: the subtree listed breadth first, deleted deepest first in multis of
/// `-b` ops (1000 by default); a failed batch stops the rest and is reported, not thrown.
fn delete_all(ctx: &Ctx<'_>) -> Result<Reply, CliError> {
    let batch = ctx.int_option::<i32>("b", 1000, "an int value")?.max(1) as usize;
    let root = ctx.arg(1)?;
    fk_net::path::validate_path(root).map_err(CliError::usage)?;
    let tree = list_subtree_bfs(ctx.client, root)?;
    let mut all_deleted = true;
    for chunk in tree.rchunks(batch) {
        let ops = chunk
            .iter()
            .rev()
            .map(|p| WriteOp::Delete(DeleteRequest { path: ctx.client.server_path(p), version: -1 }))
            .collect();
        let results = ctx.client.multi(ops)?;
        if results.iter().any(|r| matches!(r, fk_client::MultiResult::Error(_))) {
            all_deleted = false;
            break;
        }
    }
    let mut reply = Reply { json: Some(json!({ "deleted": root, "complete": all_deleted })), ..Reply::default() };
    if !all_deleted {
        reply.stderr.push("Failed to delete some node(s) in the subtree!".into());
    }
    Ok(reply)
}

/// `ZKUtil.listSubTreeBFS`: the root first, then level by level.
pub fn list_subtree_bfs(client: &Client, root: &str) -> Result<Vec<String>, CliError> {
    let mut tree = vec![root.to_owned()];
    let mut next = 0;
    while next < tree.len() {
        let node = tree[next].clone();
        next += 1;
        for child in client.get_children(&node, false)? {
            tree.push(join(&node, &child));
        }
    }
    Ok(tree)
}
