//! `fktool diff`: how two trees differ — two data directories, or one directory at two zxids. Each
//! tree is rebuilt offline, read-only. Exit status 0 = the same, 1 = different.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use fk_engine::tree::{DataTree, Node};
use serde::Serialize;

use crate::state::{DataDirs, rebuild};

#[derive(Args)]
pub(crate) struct DiffArgs {
    /// The first dataDir (containing version-2/).
    a: PathBuf,
    /// The second dataDir; without it, A is compared with itself at --against-zxid.
    b: Option<PathBuf>,
    /// A's tree as of this zxid (hex).
    #[arg(long, value_parser = crate::parse_zxid)]
    at_zxid: Option<i64>,
    /// The other tree as of this zxid (hex): B's, or A's when B is not given.
    #[arg(long, value_parser = crate::parse_zxid)]
    against_zxid: Option<i64>,
    /// A's dataLogDir, if separate.
    #[arg(long)]
    log_dir: Option<PathBuf>,
    /// B's dataLogDir, if separate.
    #[arg(long)]
    against_log_dir: Option<PathBuf>,
    /// One JSON object per difference instead of text.
    #[arg(long)]
    json: bool,
}

/// One difference between tree A and tree B.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "change", rename_all = "snake_case")]
pub(crate) enum Difference {
    Added { path: String },
    Removed { path: String },
    Changed { path: String, fields: Vec<FieldChange> },
    SessionAdded { session: String, timeout_ms: i32 },
    SessionRemoved { session: String, timeout_ms: i32 },
    SessionTimeout { session: String, before: i32, after: i32 },
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct FieldChange {
    pub field: &'static str,
    pub before: String,
    pub after: String,
}

pub(crate) fn run(args: DiffArgs) -> anyhow::Result<ExitCode> {
    let b_dir = match (&args.b, args.against_zxid) {
        (Some(b), _) => b.clone(),
        (None, Some(_)) => args.a.clone(),
        (None, None) => bail!("give a second data directory, or --against-zxid to compare A with itself"),
    };
    let b_log_dir = if args.b.is_some() { args.against_log_dir.as_deref() } else { args.log_dir.as_deref() };
    let a = rebuild(&DataDirs::resolve(&args.a, args.log_dir.as_deref())?, args.at_zxid)?.tree;
    let b = rebuild(&DataDirs::resolve(&b_dir, b_log_dir)?, args.against_zxid)?.tree;
    let differences = compare(&a, &b);
    let mut text = String::new();
    for difference in &differences {
        let line = if args.json { serde_json::to_string(difference)? } else { describe(difference) };
        text.push_str(&line);
        text.push('\n');
    }
    if !args.json {
        text += &format!(
            "A at zxid 0x{:x} ({} znodes), B at zxid 0x{:x} ({} znodes): {}\n",
            a.last_processed_zxid(),
            a.node_count(),
            b.last_processed_zxid(),
            b.node_count(),
            if differences.is_empty() { "the same".to_owned() } else { format!("{} differences", differences.len()) }
        );
    }
    crate::output::emit(&text)?;
    Ok(if differences.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Every difference, znodes in path order, then sessions.
pub(crate) fn compare(a: &DataTree, b: &DataTree) -> Vec<Difference> {
    let paths: BTreeSet<&str> = a.iter().chain(b.iter()).map(|(path, _)| path).collect();
    let progress = crate::progress::bar(paths.len() as u64, "comparing znodes");
    let mut differences = Vec::new();
    for path in paths {
        progress.inc(1);
        let difference = match (a.get(path), b.get(path)) {
            (Some(_), None) => Difference::Removed { path: path.to_owned() },
            (None, Some(_)) => Difference::Added { path: path.to_owned() },
            (Some(x), Some(y)) => {
                let fields = compare_nodes(a, x, b, y);
                if fields.is_empty() {
                    continue;
                }
                Difference::Changed { path: path.to_owned(), fields }
            }
            (None, None) => unreachable!("{path} came from one of the trees"),
        };
        differences.push(difference);
    }
    progress.finish_and_clear();
    differences.extend(compare_sessions(a, b));
    differences
}

/// A field of a znode as text that differs exactly when the field does (data is compared as bytes).
type Field = (&'static str, fn(&DataTree, &Node) -> String);

/// The persisted fields; dataLength and numChildren follow from data and the children's own entries.
const FIELDS: [Field; 10] = [
    ("acl", |t, n| t.acl(n).iter().map(crate::snap_stats::format_acl).collect::<Vec<_>>().join(",")),
    ("owner", |t, n| format!("{:?}", t.ephemeral_kind(n))),
    ("version", |_, n| n.stat.version.to_string()),
    ("cversion", |t, n| t.client_stat(n).cversion.to_string()),
    ("aversion", |_, n| n.stat.aversion.to_string()),
    ("czxid", |_, n| format!("0x{:x}", n.stat.czxid)),
    ("mzxid", |_, n| format!("0x{:x}", n.stat.mzxid)),
    ("pzxid", |_, n| format!("0x{:x}", n.stat.pzxid)),
    ("ctime", |_, n| n.stat.ctime.to_string()),
    ("mtime", |_, n| n.stat.mtime.to_string()),
];

pub(crate) fn compare_nodes(a: &DataTree, x: &Node, b: &DataTree, y: &Node) -> Vec<FieldChange> {
    let mut changes = Vec::new();
    if x.data != y.data {
        changes.push(FieldChange { field: "data", before: preview(x), after: preview(y) });
    }
    for (field, show) in FIELDS {
        let (before, after) = (show(a, x), show(b, y));
        if before != after {
            changes.push(FieldChange { field, before, after });
        }
    }
    changes
}

/// Data as a short, quoted summary: enough to recognise a value, not to reproduce it.
fn preview(node: &Node) -> String {
    const SHOWN_BYTES: usize = 24;
    let Some(data) = node.data.as_deref() else { return "null".into() };
    let shown = String::from_utf8_lossy(&data[..data.len().min(SHOWN_BYTES)]).into_owned();
    let more = if data.len() > SHOWN_BYTES { "…" } else { "" };
    format!("{} bytes {shown:?}{more}", data.len())
}

fn compare_sessions(a: &DataTree, b: &DataTree) -> Vec<Difference> {
    let ids: BTreeSet<i64> = a.sessions().chain(b.sessions()).map(|(id, _)| id).collect();
    ids.into_iter()
        .filter_map(|id| {
            let session = format!("0x{id:x}");
            match (a.session_timeout(id), b.session_timeout(id)) {
                (Some(timeout_ms), None) => Some(Difference::SessionRemoved { session, timeout_ms }),
                (None, Some(timeout_ms)) => Some(Difference::SessionAdded { session, timeout_ms }),
                (Some(before), Some(after)) if before != after => {
                    Some(Difference::SessionTimeout { session, before, after })
                }
                _ => None,
            }
        })
        .collect()
}

fn describe(difference: &Difference) -> String {
    match difference {
        Difference::Added { path } => format!("+ {path}"),
        Difference::Removed { path } => format!("- {path}"),
        Difference::Changed { path, fields } => {
            let fields: Vec<String> =
                fields.iter().map(|f| format!("{} {} -> {}", f.field, f.before, f.after)).collect();
            format!("~ {path}: {}", fields.join("; "))
        }
        Difference::SessionAdded { session, timeout_ms } => format!("+ session {session} (timeout {timeout_ms} ms)"),
        Difference::SessionRemoved { session, timeout_ms } => {
            format!("- session {session} (timeout {timeout_ms} ms)")
        }
        Difference::SessionTimeout { session, before, after } => {
            format!("~ session {session}: timeout {before} -> {after} ms")
        }
    }
}
