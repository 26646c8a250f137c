//! addWatch, removewatches, and watch-tail (streams the events of a persistent recursive watch).

use std::io::Write;

use fk_client::{AddWatchMode, EventType, KeeperState, WatcherType};
use serde_json::json;

use super::{Command, Ctx, Reply};
use crate::error::CliError;
use crate::words::{flag, valued};

pub const ADD_WATCH: Command = Command {
    name: "addWatch",
    usage: "[-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE",
    options: &[valued("m")],
    handler: Some(add_watch),
};
pub const REMOVE_WATCHES: Command = Command {
    name: "removewatches",
    usage: "path [-c|-d|-a] [-l]",
    options: &[flag("c"), flag("d"), flag("a"), flag("l")],
    handler: Some(remove_watches),
};
pub const WATCH_TAIL: Command =
    Command { name: "watch-tail", usage: "[-n count] path", options: &[valued("n")], handler: Some(watch_tail) };

fn add_watch(ctx: &Ctx<'_>) -> Result<Reply, CliError> {
    // zkCli wants exactly one path and a mode name it knows, else it prints its usage.
    if ctx.parsed.args.len() != 2 {
        return Err(CliError::usage(ctx.usage.clone()));
    }
    let mode = match ctx.parsed.value("m").map(str::to_uppercase).as_deref() {
        None | Some("PERSISTENT_RECURSIVE") => AddWatchMode::PersistentRecursive,
        Some("PERSISTENT") => AddWatchMode::Persistent,
        Some(_) => return Err(CliError::usage(ctx.usage.clone())),
    };
    let path = ctx.arg(1)?;
    ctx.client.add_watch(path, mode)?;
    Ok(Reply { json: Some(json!({ "path": path, "mode": mode.name() })), ..Reply::default() })
}

fn remove_watches(ctx: &Ctx<'_>) -> Result<Reply, CliError> {
    let path = ctx.arg(1)?;
    let watcher_type = if ctx.parsed.has("c") {
        WatcherType::Children
    } else if ctx.parsed.has("d") {
        WatcherType::Data
    } else {
        WatcherType::Any
    };
    ctx.client.remove_watches(path, watcher_type, ctx.parsed.has("l"))?;
    Ok(Reply { json: Some(json!({ "path": path, "type": watcher_type.name() })), ..Reply::default() })
}

/// Adds a persistent recursive watch on `path` and prints one line per event (`TYPE path`, or a JSON
/// object per line with `--json`) as it arrives, flushed, until `-n count` events or the session ends.
fn watch_tail(ctx: &Ctx<'_>) -> Result<Reply, CliError> {
    let path = ctx.arg(1)?;
    let limit = ctx.int_option::<u64>("n", u64::MAX, "a positive number")?;
    // Events already queued (the connection's own) are not part of the tail.
    while ctx.client.events().try_recv().is_ok() {}
    ctx.client.add_watch(path, AddWatchMode::PersistentRecursive)?;
    let mut stdout = std::io::stdout();
    let mut seen = 0;
    while seen < limit {
        let Ok(event) = ctx.client.events().recv() else { break };
        if event.event_type == EventType::None {
            if matches!(event.state, KeeperState::Expired | KeeperState::Closed | KeeperState::AuthFailed) {
                return Err(CliError::usage(format!("watch-tail stopped: session {}", event.state.name())));
            }
            continue;
        }
        let event_path = event.path.unwrap_or_default();
        let line = if ctx.json {
            json!({ "type": event.event_type.name(), "path": event_path }).to_string()
        } else {
            format!("{} {event_path}", event.event_type.name())
        };
        // A closed pipe (`| head`) ends the tail quietly.
        if writeln!(stdout, "{line}").and_then(|()| stdout.flush()).is_err() {
            break;
        }
        seen += 1;
    }
    Ok(Reply::empty())
}
