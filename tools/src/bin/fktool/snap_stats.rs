//! `fktool snap stats`: what a tree holds and where — sizes, the biggest subtrees and widest nodes,
//! ephemerals per session, ACL use — for a snapshot file or a data directory rebuilt offline.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::path::Path;
use std::process::ExitCode;

use fk_engine::tree::{DataTree, EphemeralKind};
use fk_net::client::Acl;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub(crate) struct TreeStats {
    pub source: String,
    /// Hex, as operators write zxids; session ids likewise (they exceed JSON's exact integers).
    pub last_zxid: String,
    pub nodes: usize,
    pub data_bytes: u64,
    pub ephemerals: usize,
    pub containers: usize,
    pub ttl_nodes: usize,
    /// Open sessions, most ephemerals first.
    pub sessions: Vec<SessionUse>,
    /// Ephemerals whose owner is not in the session list (possible in a fuzzy snapshot alone).
    pub orphan_ephemerals: Vec<SessionUse>,
    pub top_subtrees_by_nodes: Vec<Subtree>,
    pub top_subtrees_by_bytes: Vec<Subtree>,
    pub top_by_children: Vec<Wide>,
    /// Each distinct ACL list and how many nodes use it, most used first.
    pub acls: Vec<AclUse>,
    /// Nodes whose ACL has an entry of each scheme.
    pub schemes: BTreeMap<String, usize>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct SessionUse {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<i32>,
    pub ephemerals: usize,
}

/// A node and everything below it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct Subtree {
    pub path: String,
    pub nodes: u64,
    pub bytes: u64,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct Wide {
    pub path: String,
    pub children: usize,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct AclUse {
    /// `scheme:id:perms` entries, perms in zkCli's letters (`cdrwa`).
    pub acl: Vec<String>,
    pub nodes: usize,
}

pub(crate) fn run(input: &Path, log_dir: Option<&Path>, top: usize, json: bool) -> anyhow::Result<ExitCode> {
    let loaded = crate::state::load(input, log_dir, None)?;
    let stats = collect(&loaded.tree, loaded.source, top);
    let text = if json { serde_json::to_string_pretty(&stats)? + "\n" } else { render_text(&stats)? };
    crate::output::emit(&text)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn collect(tree: &DataTree, source: String, top: usize) -> TreeStats {
    let progress = crate::progress::bar(tree.node_count() as u64, "scanning znodes");
    let mut subtrees: HashMap<&str, (u64, u64)> = HashMap::with_capacity(tree.node_count());
    let mut acl_nodes: HashMap<i64, usize> = HashMap::new();
    let (mut data_bytes, mut containers, mut ttl_nodes) = (0, 0, 0);
    let mut wide = Vec::new();
    for (path, node) in tree.iter() {
        let bytes = node.data_len() as u64;
        data_bytes += bytes;
        for ancestor in ancestors_and_self(path) {
            let entry = subtrees.entry(ancestor).or_default();
            entry.0 += 1;
            entry.1 += bytes;
        }
        *acl_nodes.entry(node.acl).or_default() += 1;
        match tree.ephemeral_kind(node) {
            EphemeralKind::Container => containers += 1,
            EphemeralKind::Ttl(_) => ttl_nodes += 1,
            EphemeralKind::Persistent | EphemeralKind::Session(_) => {}
        }
        if node.child_count() > 0 {
            wide.push(Wide { path: path.to_owned(), children: node.child_count() });
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    let (sessions, orphan_ephemerals) = session_use(tree);
    let (acls, schemes) = acl_use(tree, &acl_nodes);
    let subtree = |(path, (nodes, bytes)): (&&str, &(u64, u64))| Subtree {
        path: (*path).to_owned(),
        nodes: *nodes,
        bytes: *bytes,
    };
    let below_root = || subtrees.iter().filter(|(path, _)| **path != "/");
    TreeStats {
        source,
        last_zxid: format!("0x{:x}", tree.last_processed_zxid()),
        nodes: tree.node_count(),
        data_bytes,
        ephemerals: tree.ephemeral_count(),
        containers,
        ttl_nodes,
        sessions,
        orphan_ephemerals,
        top_subtrees_by_nodes: top_n(below_root().map(subtree).collect(), top, |s| (s.nodes, s.bytes)),
        top_subtrees_by_bytes: top_n(below_root().map(subtree).collect(), top, |s| (s.bytes, s.nodes)),
        top_by_children: top_n(wide, top, |w| (w.children as u64, 0)),
        acls,
        schemes,
    }
}

/// "/a/b/c" → "/", "/a", "/a/b", "/a/b/c".
fn ancestors_and_self(path: &str) -> impl Iterator<Item = &str> {
    let cuts = path.match_indices('/').map(|(i, _)| i).filter(|i| *i > 0);
    std::iter::once("/").chain(cuts.map(|i| &path[..i])).chain((path != "/").then_some(path))
}

/// The `n` largest by `key`, ties in path order so that output is stable.
fn top_n<T: PathKeyed>(mut items: Vec<T>, n: usize, key: impl Fn(&T) -> (u64, u64)) -> Vec<T> {
    items.sort_unstable_by(|a, b| key(b).cmp(&key(a)).then_with(|| a.path().cmp(b.path())));
    items.truncate(n);
    items
}

trait PathKeyed {
    fn path(&self) -> &str;
}

impl PathKeyed for Subtree {
    fn path(&self) -> &str {
        &self.path
    }
}

impl PathKeyed for Wide {
    fn path(&self) -> &str {
        &self.path
    }
}

fn session_use(tree: &DataTree) -> (Vec<SessionUse>, Vec<SessionUse>) {
    let mut sessions: Vec<SessionUse> = tree
        .sessions()
        .map(|(id, timeout)| SessionUse {
            id: format!("0x{id:x}"),
            timeout_ms: Some(timeout),
            ephemerals: tree.ephemerals_of(id).count(),
        })
        .collect();
    sessions.sort_unstable_by(|a, b| b.ephemerals.cmp(&a.ephemerals).then_with(|| a.id.cmp(&b.id)));
    let mut orphans: Vec<SessionUse> = tree
        .all_ephemerals()
        .filter(|(id, paths)| tree.session_timeout(*id).is_none() && !paths.is_empty())
        .map(|(id, paths)| SessionUse { id: format!("0x{id:x}"), timeout_ms: None, ephemerals: paths.len() })
        .collect();
    orphans.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    (sessions, orphans)
}

fn acl_use(tree: &DataTree, acl_nodes: &HashMap<i64, usize>) -> (Vec<AclUse>, BTreeMap<String, usize>) {
    let mut schemes = BTreeMap::new();
    // Keyed by the list itself: the built-in open list (index -1) and a stored world:anyone list are
    // one ACL to an operator.
    let mut lists: BTreeMap<Vec<String>, usize> = BTreeMap::new();
    for (&id, &nodes) in acl_nodes {
        let list = tree.acl_cache().get(id);
        let mut seen: Vec<&str> = list.iter().map(|a| a.id.scheme.as_str()).collect();
        seen.sort_unstable();
        seen.dedup();
        for scheme in seen {
            *schemes.entry(scheme.to_owned()).or_default() += nodes;
        }
        *lists.entry(list.iter().map(format_acl).collect()).or_default() += nodes;
    }
    let mut acls: Vec<AclUse> = lists.into_iter().map(|(acl, nodes)| AclUse { acl, nodes }).collect();
    acls.sort_by(|a, b| b.nodes.cmp(&a.nodes).then_with(|| a.acl.cmp(&b.acl)));
    (acls, schemes)
}

/// `scheme:id:perms` as zkCli's setAcl takes it, perms in getAcl's letter order.
pub(crate) fn format_acl(acl: &Acl) -> String {
    const LETTERS: [(i32, char); 5] = [(4, 'c'), (8, 'd'), (1, 'r'), (2, 'w'), (16, 'a')];
    let perms: String = LETTERS.iter().filter(|(bit, _)| acl.perms & bit != 0).map(|(_, c)| *c).collect();
    format!("{}:{}:{perms}", acl.id.scheme, acl.id.id)
}

/// The report as text. Writing into a String cannot fail; `?` only satisfies `writeln!`'s signature.
fn render_text(s: &TreeStats) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    writeln!(out, "{}", s.source)?;
    writeln!(
        out,
        "last zxid {}: {} znodes, {} data bytes, {} ephemerals, {} containers, {} TTL nodes",
        s.last_zxid, s.nodes, s.data_bytes, s.ephemerals, s.containers, s.ttl_nodes
    )?;
    writeln!(out, "sessions: {}", s.sessions.len())?;
    for session in &s.sessions {
        let timeout = session.timeout_ms.unwrap_or_default();
        writeln!(out, "  {} timeout {timeout} ms, {} ephemerals", session.id, session.ephemerals)?;
    }
    for orphan in &s.orphan_ephemerals {
        writeln!(out, "  {} not in the session list, owns {} ephemerals", orphan.id, orphan.ephemerals)?;
    }
    writeln!(out, "largest subtrees by nodes:")?;
    for t in &s.top_subtrees_by_nodes {
        writeln!(out, "  {:>10} nodes {:>12} bytes  {}", t.nodes, t.bytes, t.path)?;
    }
    writeln!(out, "largest subtrees by data bytes:")?;
    for t in &s.top_subtrees_by_bytes {
        writeln!(out, "  {:>12} bytes {:>10} nodes  {}", t.bytes, t.nodes, t.path)?;
    }
    writeln!(out, "most children:")?;
    for w in &s.top_by_children {
        writeln!(out, "  {:>10} children  {}", w.children, w.path)?;
    }
    writeln!(out, "ACL lists: {}", s.acls.len())?;
    for acl in &s.acls {
        writeln!(out, "  {:>10} nodes  {}", acl.nodes, acl.acl.join(", "))?;
    }
    let schemes: Vec<String> = s.schemes.iter().map(|(scheme, n)| format!("{scheme} {n}")).collect();
    writeln!(out, "nodes per ACL scheme: {}", schemes.join(", "))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ancestor_of_a_path_and_the_path_itself() {
        let cases: [(&str, &[&str]); 4] = [
            ("/", &["/"]),
            ("/a", &["/", "/a"]),
            ("/a/b/c", &["/", "/a", "/a/b", "/a/b/c"]),
            ("/zookeeper/quota", &["/", "/zookeeper", "/zookeeper/quota"]),
        ];
        for (path, expected) in cases {
            assert_eq!(ancestors_and_self(path).collect::<Vec<_>>(), expected, "{path}");
        }
    }

    #[test]
    fn acls_read_as_zkcli_writes_them() {
        let cases = [
            (31, "world", "anyone", "world:anyone:cdrwa"),
            (1, "world", "anyone", "world:anyone:r"),
            (19, "digest", "alice:x=", "digest:alice:x=:rwa"),
            (12, "ip", "127.0.0.1", "ip:127.0.0.1:cd"),
        ];
        for (perms, scheme, id, expected) in cases {
            assert_eq!(format_acl(&Acl::new(perms, scheme, id)), expected);
        }
    }
}
