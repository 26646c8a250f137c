//! config (getConfig) and reconfig.

use serde_json::json;

use super::{Command, Ctx, Reply};
use crate::error::CliError;
use crate::format::{stat_json, stat_lines};
use crate::words::{flag, valued};

pub const CONFIG: Command = Command {
    name: "config",
    usage: "[-c] [-w] [-s]",
    options: &[flag("c"), flag("w"), flag("s")],
    handler: Some(config),
};
pub const RECONFIG: Command = Command {
    name: "reconfig",
    usage: "[-s] [-v version] [[-file path] | [-members serverID=host:port1:port2;port3[,...]*]] | [-add serverId=host:port1:port2;port3[,...]]* [-remove serverId[,...]*]",
    options: &[flag("s"), valued("v"), valued("file"), valued("members"), valued("add"), valued("remove")],
    handler: Some(reconfig),
};

fn config(ctx: &Ctx<'_>) -> Result<Reply, CliError> {
    let (data, stat) = ctx.client.get_config(ctx.parsed.has("w"))?;
    let text = data.as_deref().map_or_else(|| "null".to_owned(), |d| String::from_utf8_lossy(d).into_owned());
    let shown = if ctx.parsed.has("c") { client_config(&text) } else { text.clone() };
    let mut lines = vec![shown];
    let mut json = json!({ "config": text });
    if ctx.parsed.has("s") {
        lines.extend(stat_lines(&stat));
        json["stat"] = stat_json(&stat);
    }
    Ok(Reply::out(lines, json))
}

/// `ConfigUtils.getClientConfigStr`: the config version, a space, and the client addresses
/// (`host:port` after each server line's `;`) joined by commas.
fn client_config(config: &str) -> String {
    let mut version = String::new();
    let mut clients = Vec::new();
    for line in config.lines() {
        if let Some(v) = line.strip_prefix("version=") {
            version = v.to_owned();
        } else if let Some((key, value)) = line.split_once('=').filter(|(k, _)| k.starts_with("server.")) {
            let _ = key;
            let Some((quorum, client)) = value.split_once(';') else { continue };
            let client = if client.contains(':') {
                client.to_owned()
            } else {
                // A bare port listens on the quorum address's host.
                format!("{}:{client}", quorum.split(':').next().unwrap_or_default())
            };
            clients.push(client);
        }
    }
    format!("{version} {}", clients.join(","))
}

/// Incremental (`-add`/`-remove`) or non-incremental (`-members`/`-file`) reconfiguration, with
/// zkCli's checks on mixing them.
fn reconfig(ctx: &Ctx<'_>) -> Result<Reply, CliError> {
    let p = &ctx.parsed;
    let version = match p.value("v") {
        None => -1,
        Some(v) => i64::from_str_radix(v.trim_start_matches("0x"), 16)
            .map_err(|_| CliError::usage("-v must be followed by a long (configuration version)"))?,
    };
    let incremental = p.has("add") || p.has("remove");
    if incremental && (p.has("file") || p.has("members")) {
        return Err(CliError::usage(
            "Can't use -file or -members together with -add or -remove (mixing incremental and non-incremental modes is not allowed)",
        ));
    }
    if p.has("file") && p.has("members") {
        return Err(CliError::usage("Can't use -file and -members together (conflicting non-incremental modes)"));
    }
    if !incremental && !p.has("file") && !p.has("members") {
        return Err(CliError::usage(ctx.usage.clone()));
    }
    let members = match p.value("file") {
        Some(file) => members_from_file(file)?,
        None => p.value("members").unwrap_or_default().to_owned(),
    };
    let (data, stat) = ctx.client.reconfig(
        p.value("add").unwrap_or_default(),
        p.value("remove").unwrap_or_default(),
        &members,
        version,
    )?;
    let text = String::from_utf8_lossy(&data.unwrap_or_default()).into_owned();
    let mut lines = vec![format!("Committed new configuration:\n{text}")];
    if p.has("s") {
        lines.extend(stat_lines(&stat));
    }
    Ok(Reply::out(lines, json!({ "config": text, "stat": stat_json(&stat) })))
}

/// The `server.N=…` lines of a dynamic configuration file, comma-separated.
fn members_from_file(file: &str) -> Result<String, CliError> {
    let text = std::fs::read_to_string(file).map_err(|e| CliError::usage(format!("Error processing {file}{e}")))?;
    Ok(text.lines().map(str::trim).filter(|l| l.starts_with("server.")).collect::<Vec<_>>().join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_config_lists_client_addresses() {
        let config = "server.1=a:2888:3888:participant;0.0.0.0:2181\nserver.2=b:2888:3888;2182\nversion=100000000";
        assert_eq!(client_config(config), "100000000 0.0.0.0:2181,b:2182");
        assert_eq!(client_config(""), " ");
    }
}
