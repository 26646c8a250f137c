//! getAcl, setAcl, addauth.

use serde_json::json;

use super::nodes::visit_subtree;
use super::{Command, Ctx, Reply};
use crate::acl::parse_acl;
use crate::error::CliError;
use crate::format::{acl_json, acl_line, stat_json, stat_lines};
use crate::words::{flag, valued};

pub const GET_ACL: Command =
    Command { name: "getAcl", usage: "[-s] path", options: &[flag("s")], handler: Some(get_acl) };
pub const SET_ACL: Command = Command {
    name: "setAcl",
    usage: "[-s] [-v version] [-R] path acl",
    options: &[flag("s"), valued("v"), flag("R")],
    handler: Some(set_acl),
};
pub const ADD_AUTH: Command = Command { name: "addauth", usage: "scheme auth", options: &[], handler: Some(add_auth) };

fn get_acl(ctx: &Ctx<'_>) -> Result<Reply, CliError> {
    let path = ctx.arg(1)?;
    let (acl, stat) = ctx.client.get_acl(path)?;
    let mut lines: Vec<String> = acl.iter().map(acl_line).collect();
    let mut json = json!({ "path": path, "acl": acl.iter().map(acl_json).collect::<Vec<_>>() });
    if ctx.parsed.has("s") {
        lines.extend(stat_lines(&stat));
        json["stat"] = stat_json(&stat);
    }
    Ok(Reply::out(lines, json))
}

/// With `-R` every node of the subtree gets the ACL; a failure on one node is printed and the walk
/// goes on (zkCli prints the exception's message with `print`, no newline; we end the line).
fn set_acl(ctx: &Ctx<'_>) -> Result<Reply, CliError> {
    let path = ctx.arg(1)?;
    let (acl, warnings) = parse_acl(ctx.arg(2)?);
    let version = ctx.int_option("v", -1, "an int value")?;
    let mut reply = Reply { stderr: warnings, ..Reply::default() };
    if ctx.parsed.has("R") {
        let mut failed = Vec::new();
        for node in visit_subtree(ctx.client, path, false)? {
            if let Err(e) = ctx.client.set_acl(&node, &acl, version) {
                reply.stdout.push(crate::error::CliError::from(e).message);
                failed.push(node);
            }
        }
        reply.json = Some(json!({ "path": path, "recursive": true, "failed": failed }));
        return Ok(reply);
    }
    let stat = ctx.client.set_acl(path, &acl, version)?;
    if ctx.parsed.has("s") {
        reply.stdout = stat_lines(&stat);
    }
    reply.json = Some(json!({ "path": path, "stat": stat_json(&stat) }));
    Ok(reply)
}

/// zkCli sends the auth and prints nothing; a refused one shows up as an AuthFailed event and the
/// server closing the connection. We also wait for the answer so a script sees the failure.
fn add_auth(ctx: &Ctx<'_>) -> Result<Reply, CliError> {
    let scheme = ctx.arg(1)?;
    let auth = ctx.parsed.arg(2).unwrap_or_default();
    ctx.client.add_auth(scheme, auth.as_bytes())?;
    Ok(Reply { json: Some(json!({ "scheme": scheme })), ..Reply::default() })
}
