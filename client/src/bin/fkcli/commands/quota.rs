//! setquota, listquota, delquota: done client-side on `/zookeeper/quota`, as zkCli does (the server
//! only counts; the limits live in `<path>/zookeeper_limits`, the counts in `zookeeper_stats`).

use std::collections::BTreeMap;

use fk_client::{Client, CreateMode, Error, ErrorCode, open_acl_unsafe};
use serde_json::json;

use super::nodes::join;
use super::{Command, Ctx, Reply};
use crate::error::CliError;
use crate::words::{flag, valued};

const QUOTA_ROOT: &str = "/zookeeper/quota";
const LIMIT_NODE: &str = "zookeeper_limits";
const STAT_NODE: &str = "zookeeper_stats";

pub const SET_QUOTA: Command = Command {
    name: "setquota",
    usage: "-n|-b|-N|-B val path",
    options: &[valued("n"), valued("b"), valued("N"), valued("B")],
    handler: Some(set_quota),
};
pub const LIST_QUOTA: Command = Command { name: "listquota", usage: "path", options: &[], handler: Some(list_quota) };
pub const DEL_QUOTA: Command = Command {
    name: "delquota",
    usage: "[-n|-b|-N|-B] path",
    options: &[flag("n"), flag("b"), flag("N"), flag("B")],
    handler: Some(del_quota),
};

/// The option letter of each `StatsTrack` key.
const KEYS: [(&str, &str); 4] = [("n", "count"), ("b", "bytes"), ("N", "countHardLimit"), ("B", "byteHardLimit")];

/// ZooKeeper's `StatsTrack`: `count=…,bytes=…` first (older readers parse only those), then `=` and the
/// other keys sorted, each after a `;`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct StatsTrack(BTreeMap<String, i64>);

impl StatsTrack {
    fn parse(bytes: &[u8]) -> StatsTrack {
        let text = String::from_utf8_lossy(bytes);
        let mut stats = BTreeMap::new();
        for pair in text.split([',', ';']).filter(|p| !p.is_empty()) {
            let mut kv = pair.split('=');
            let key = kv.next().unwrap_or_default();
            let value = kv.next().filter(|v| !v.is_empty()).and_then(|v| v.parse().ok()).unwrap_or(-1);
            stats.insert(key.to_owned(), value);
        }
        StatsTrack(stats)
    }

    fn get(&self, key: &str) -> i64 {
        self.0.get(key).copied().unwrap_or(-1)
    }

    fn set(&mut self, key: &str, value: i64) {
        self.0.insert(key.to_owned(), value);
    }

    fn render(&self) -> String {
        let mut text = format!("count={},bytes={}", self.get("count"), self.get("bytes"));
        let others: Vec<_> = self.0.iter().filter(|(k, _)| *k != "count" && *k != "bytes").collect();
        if !others.is_empty() {
            text.push('=');
            for (key, value) in others {
                text.push_str(&format!(";{key}={value}"));
            }
        }
        text
    }
}

fn limit_path(path: &str) -> String {
    format!("{QUOTA_ROOT}{path}/{LIMIT_NODE}")
}

fn stat_path(path: &str) -> String {
    format!("{QUOTA_ROOT}{path}/{STAT_NODE}")
}

fn set_quota(ctx: &Ctx<'_>) -> Result<Reply, CliError> {
    let path = ctx.arg(1)?;
    let given: Vec<_> = KEYS.iter().filter(|(opt, _)| ctx.parsed.has(opt)).collect();
    if given.is_empty() {
        return Err(CliError::usage(format!("Missing required option: [-n, -b, -N, -B]\n{}", ctx.usage)));
    }
    if path.starts_with(QUOTA_ROOT) {
        return Ok(Reply {
            stderr: vec![format!("cannot set a quota under the path: {QUOTA_ROOT}")],
            ..Reply::default()
        });
    }
    // Every key starts at -1 (unset), so the limits node names all four, as zkCli writes it.
    let mut quota = StatsTrack::default();
    for (_, key) in KEYS {
        quota.set(key, -1);
    }
    for (opt, key) in given {
        let Ok(value) = ctx.parsed.value(opt).unwrap_or_default().parse::<i64>() else {
            return Ok(warning("NumberFormatException happens when parsing the option value"));
        };
        match *opt {
            "n" | "N" if value <= 0 => return Ok(warning("the num quota must be greater than zero")),
            "b" | "B" if value < 0 => return Ok(warning("the bytes quota must be greater than or equal to zero")),
            _ => quota.set(key, value),
        }
    }
    let warnings = create_quota(ctx.client, path, &quota)?;
    Ok(Reply { stdout: warnings, json: Some(json!({ "path": path, "quota": quota.render() })), ..Reply::default() })
}

fn warning(text: &str) -> Reply {
    Reply { stderr: vec![text.to_owned()], ..Reply::default() }
}

/// `SetQuotaCommand.createQuota`: refuses nested quotas, creates the quota path's nodes, and writes or
/// merges the limits; returns the warnings zkCli prints when the limits are already exceeded.
fn create_quota(client: &Client, path: &str, quota: &StatsTrack) -> Result<Vec<String>, CliError> {
    if client.exists(path, false)?.is_none() {
        return Err(CliError::usage(format!("{path} does not exist.")));
    }
    check_no_quota_below(client, path)?;
    check_no_quota_above(client, path)?;
    let mut node = QUOTA_ROOT.to_owned();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        node = join(&node, part);
        create_if_missing(client, &node, None)?;
    }
    let (limits, stats) = (limit_path(path), stat_path(path));
    let merged = match client.get_data(&limits, false) {
        Err(Error::Server { code: ErrorCode::NoNode, .. }) => {
            client.create(&limits, Some(quota.render().as_bytes()), &open_acl_unsafe(), CreateMode::Persistent)?;
            let zero = StatsTrack::parse(b"count=0,bytes=0");
            create_if_missing(client, &stats, Some(zero.render().as_bytes()))?;
            quota.clone()
        }
        Err(e) => return Err(e.into()),
        Ok((data, _)) => {
            let mut merged = StatsTrack::parse(&data.unwrap_or_default());
            for (key, value) in quota.0.iter().filter(|(_, v)| **v > -1) {
                merged.set(key, *value);
            }
            client.set_data(&limits, Some(merged.render().as_bytes()), -1)?;
            merged
        }
    };
    let (data, _) = client.get_data(&stats, false)?;
    Ok(exceeded_warnings(&merged, &StatsTrack::parse(&data.unwrap_or_default())))
}

fn create_if_missing(client: &Client, path: &str, data: Option<&[u8]>) -> Result<(), CliError> {
    match client.create(path, data, &open_acl_unsafe(), CreateMode::Persistent) {
        Ok(_) | Err(Error::Server { code: ErrorCode::NodeExists, .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// `SetQuotaCommand.checkQuota`.
fn exceeded_warnings(quota: &StatsTrack, stats: &StatsTrack) -> Vec<String> {
    let over = |soft: &str, hard: &str, used: i64| {
        (quota.get(soft) > -1 && quota.get(soft) < used) || (quota.get(hard) > -1 && quota.get(hard) < used)
    };
    let mut warnings = Vec::new();
    if over("count", "countHardLimit", stats.get("count")) {
        warnings.push(format!(
            "[Warning]: the count quota you create is less than the existing count:{}",
            stats.get("count")
        ));
    }
    if over("bytes", "byteHardLimit", stats.get("bytes")) {
        warnings.push(format!(
            "[Warning]: the bytes quota you create is less than the existing bytes:{}",
            stats.get("bytes")
        ));
    }
    warnings
}

/// `checkIfChildQuota`: no node below `path` may have a quota already.
fn check_no_quota_below(client: &Client, path: &str) -> Result<(), CliError> {
    let own = format!("{QUOTA_ROOT}{path}");
    let nodes = match super::nodes::visit_subtree(client, &own, false) {
        Ok(nodes) => nodes,
        Err(_) => return Ok(()),
    };
    for node in nodes.iter().filter(|n| **n != own) {
        if client.get_children(node, false).unwrap_or_default().iter().any(|c| c == LIMIT_NODE) {
            let below = &node[QUOTA_ROOT.len()..];
            return Err(CliError::usage(format!("{path} has a child {below} which has a quota")));
        }
    }
    Ok(())
}

/// `checkIfParentQuota`: no ancestor of `path` may have a quota already.
fn check_no_quota_above(client: &Client, path: &str) -> Result<(), CliError> {
    let parts: Vec<&str> = path.split('/').collect();
    let mut node = QUOTA_ROOT.to_owned();
    for part in parts.iter().take(parts.len().saturating_sub(1)).skip(1) {
        node = format!("{node}/{part}");
        let children = match client.get_children(&node, false) {
            Ok(children) if !children.is_empty() => children,
            _ => return Ok(()),
        };
        if children.iter().any(|c| c == LIMIT_NODE) {
            let above = &node[QUOTA_ROOT.len()..];
            return Err(CliError::usage(format!("{path} has a parent {above} which has a quota")));
        }
    }
    Ok(())
}

fn list_quota(ctx: &Ctx<'_>) -> Result<Reply, CliError> {
    let path = ctx.arg(1)?;
    let mut reply = Reply { stderr: vec![format!("absolute path is {}", limit_path(path))], ..Reply::default() };
    let read = |node: String| ctx.client.get_data(&node, false).map(|(d, _)| StatsTrack::parse(&d.unwrap_or_default()));
    match read(limit_path(path)).and_then(|quota| Ok((quota, read(stat_path(path))?))) {
        Ok((quota, stats)) => {
            reply.stdout.push(format!("Output quota for {path} {}", quota.render()));
            reply.stdout.push(format!("Output stat for {path} {}", stats.render()));
            reply.json = Some(json!({ "path": path, "quota": quota.0, "stat": stats.0 }));
        }
        Err(Error::Server { code: ErrorCode::NoNode, .. }) => {
            reply.stderr.push(format!("quota for {path} does not exist."))
        }
        Err(e) => return Err(e.into()),
    }
    Ok(reply)
}

fn del_quota(ctx: &Ctx<'_>) -> Result<Reply, CliError> {
    let path = ctx.arg(1)?;
    let limits = limit_path(path);
    let Some(_) = ctx.client.exists(&limits, false)? else {
        return Ok(Reply::out(
            vec![format!("Quota does not exist for {path}")],
            json!({ "path": path, "deleted": false }),
        ));
    };
    let flags: Vec<_> = KEYS.iter().filter(|(opt, _)| ctx.parsed.has(opt)).collect();
    if flags.is_empty() {
        let parent = format!("{QUOTA_ROOT}{path}");
        for child in ctx.client.get_children(&parent, false)? {
            ctx.client.delete(&join(&parent, &child), -1)?;
        }
        trim_empty_quota_nodes(ctx.client, &parent)?;
    } else {
        let (data, _) = ctx.client.get_data(&limits, false)?;
        let mut quota = StatsTrack::parse(&data.unwrap_or_default());
        for (_, key) in flags {
            quota.set(key, -1);
        }
        ctx.client.set_data(&limits, Some(quota.render().as_bytes()), -1)?;
    }
    Ok(Reply { json: Some(json!({ "path": path, "deleted": true })), ..Reply::default() })
}

/// `trimProcQuotas`: removes quota path nodes left empty, up to `/zookeeper/quota`.
fn trim_empty_quota_nodes(client: &Client, path: &str) -> Result<(), CliError> {
    let mut node = path.to_owned();
    while node != QUOTA_ROOT && client.get_children(&node, false)?.is_empty() {
        client.delete(&node, -1)?;
        node = fk_net::path::parent(&node).to_owned();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_track_round_trips_zookeepers_text() {
        let cases = [
            (
                "count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1",
                "count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1",
            ),
            ("count=1,bytes=5", "count=1,bytes=5"),
            ("", "count=-1,bytes=-1"),
            ("count=,bytes=3", "count=-1,bytes=3"),
        ];
        for (text, rendered) in cases {
            assert_eq!(StatsTrack::parse(text.as_bytes()).render(), rendered, "{text}");
        }
        let quota = StatsTrack::parse(b"count=2,bytes=-1");
        let stats = StatsTrack::parse(b"count=3,bytes=10");
        assert_eq!(
            exceeded_warnings(&quota, &stats),
            ["[Warning]: the count quota you create is less than the existing count:3"]
        );
    }
}
