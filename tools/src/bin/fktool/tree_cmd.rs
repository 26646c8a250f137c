//! `fktool tree`: the tree of a data directory, rebuilt offline, as JSON lines — one znode per line,
//! sorted by path, in the shape of tests/fixtures/zk38/expected-tree.jsonl (the dump of a live
//! ZooKeeper 3.8): path, data (base64), the 11 Stat fields a client sees, the ACL, and `"system": true`
//! under /zookeeper. Two fields a client cannot see are added where they apply: `"container": true`
//! and `"ttl": <ms>` (the Stat shows their owner as 0, as ZooKeeper's does).

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use base64::Engine;
use clap::Args;
use fk_engine::tree::{DataTree, EphemeralKind, Node, ZOOKEEPER_PATH};
use serde::Serialize;

#[derive(Args)]
pub(crate) struct TreeArgs {
    /// The dataDir (containing version-2/).
    data_dir: PathBuf,
    /// The dataLogDir, if separate.
    #[arg(long)]
    log_dir: Option<PathBuf>,
    /// The tree as of this zxid (hex): the newest snapshot holding nothing newer, plus replay up to it.
    #[arg(long, value_parser = crate::parse_zxid)]
    at_zxid: Option<i64>,
    /// Only this znode and its descendants.
    #[arg(long)]
    path: Option<String>,
    /// Data that is valid UTF-8 as text, with `"utf8": true`; other data stays base64.
    #[arg(long)]
    utf8: bool,
}

pub(crate) fn run(args: TreeArgs) -> anyhow::Result<ExitCode> {
    let dirs = crate::state::DataDirs::resolve(&args.data_dir, args.log_dir.as_deref())?;
    let tree = crate::state::rebuild(&dirs, args.at_zxid)?.tree;
    let root = args.path.as_deref().unwrap_or("/");
    if tree.get(root).is_none() {
        bail!("no znode {root} in the tree at zxid 0x{:x}", tree.last_processed_zxid());
    }
    let mut out = BufWriter::new(std::io::stdout().lock());
    crate::output::closed_pipe_is_fine(write_subtree(&tree, root, args.utf8, &mut out).and_then(|()| out.flush()))?;
    Ok(ExitCode::SUCCESS)
}

/// The paths of `root` and every node below it, sorted.
pub(crate) fn subtree_paths<'t>(tree: &'t DataTree, root: &str) -> Vec<&'t str> {
    let mut paths: Vec<&str> = tree.iter().map(|(path, _)| path).filter(|path| is_within(path, root)).collect();
    paths.sort_unstable();
    paths
}

/// Whether `path` is `root` or below it.
pub(crate) fn is_within(path: &str, root: &str) -> bool {
    root == "/" || path == root || path.strip_prefix(root).is_some_and(|rest| rest.starts_with('/'))
}

fn write_subtree(tree: &DataTree, root: &str, utf8: bool, out: &mut impl Write) -> std::io::Result<()> {
    let paths = subtree_paths(tree, root);
    let progress = crate::progress::bar(paths.len() as u64, "writing znodes");
    for path in paths {
        let node = tree.get(path).expect("a path listed from the tree is in it");
        serde_json::to_writer(&mut *out, &ZnodeRecord::new(tree, node, utf8))?;
        out.write_all(b"\n")?;
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(())
}

/// One line of the export. Field order follows the fixture's.
#[derive(Serialize)]
pub(crate) struct ZnodeRecord<'a> {
    path: &'a str,
    data: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    utf8: bool,
    stat: StatRecord,
    acl: Vec<AclRecord<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    container: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<i64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    system: bool,
}

/// The Stat as a client sees it, with ZooKeeper's (Java) field names.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatRecord {
    czxid: i64,
    mzxid: i64,
    ctime: i64,
    mtime: i64,
    version: i32,
    cversion: i32,
    aversion: i32,
    ephemeral_owner: i64,
    data_length: i32,
    num_children: i32,
    pzxid: i64,
}

#[derive(Serialize)]
struct AclRecord<'a> {
    perms: i32,
    scheme: &'a str,
    id: &'a str,
}

impl<'a> ZnodeRecord<'a> {
    pub(crate) fn new(tree: &'a DataTree, node: &'a Node, utf8: bool) -> ZnodeRecord<'a> {
        let bytes = node.data.as_deref().unwrap_or_default();
        let text = std::str::from_utf8(bytes).ok().filter(|_| utf8 && !bytes.is_empty());
        let data = text.map_or_else(|| base64::engine::general_purpose::STANDARD.encode(bytes), |text| text.to_owned());
        let s = tree.client_stat(node);
        let stat = StatRecord {
            czxid: s.czxid,
            mzxid: s.mzxid,
            ctime: s.ctime,
            mtime: s.mtime,
            version: s.version,
            cversion: s.cversion,
            aversion: s.aversion,
            ephemeral_owner: s.ephemeral_owner,
            data_length: s.data_length,
            num_children: s.num_children,
            pzxid: s.pzxid,
        };
        let acl =
            tree.acl(node).iter().map(|a| AclRecord { perms: a.perms, scheme: &a.id.scheme, id: &a.id.id }).collect();
        let kind = tree.ephemeral_kind(node);
        ZnodeRecord {
            path: &node.path,
            data,
            utf8: text.is_some(),
            stat,
            acl,
            container: kind == EphemeralKind::Container,
            ttl: match kind {
                EphemeralKind::Ttl(ms) => Some(ms),
                _ => None,
            },
            system: is_within(&node.path, ZOOKEEPER_PATH),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_means_the_node_itself_or_below_it() {
        let cases = [
            ("/a", "/", true),
            ("/", "/", true),
            ("/a", "/a", true),
            ("/a/b", "/a", true),
            ("/ab", "/a", false),
            ("/a-b", "/a", false),
            ("/", "/a", false),
            ("/zookeeper/quota", "/zookeeper", true),
        ];
        for (path, root, expected) in cases {
            assert_eq!(is_within(path, root), expected, "{path} within {root}");
        }
    }
}
