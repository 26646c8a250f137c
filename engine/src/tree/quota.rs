//! ZooKeeper 3.8's quotas: which paths have one, the usage kept in their stats nodes, and the check that
//! enforces hard limits.
//!
//! A quota on `/p` is two ordinary znodes, `/zookeeper/quota/p/zookeeper_limits` (what the operator set)
//! and `/zookeeper/quota/p/zookeeper_stats` (usage: `count` nodes in the subtree including `/p` itself,
//! `bytes` of their data). Clients (zkCli's `setquota`) create and delete them; the tree reacts the way
//! ZooKeeper's `DataTree` does:
//! - creating a limits node registers its path; deleting one unregisters it;
//! - creating a stats node overwrites the data the client gave with the subtree's real usage;
//! - every create, delete and setData below the deepest registered path moves that path's stats.
//!
//! Usage changes are applied locally, not logged: the stats node's data changes but its Stat does not
//! (no mzxid, no version, no watch), exactly as `DataTree.updateQuotaStat` writes `statNode.data`. They
//! never move the tree digest because ZooKeeper leaves every node under `/zookeeper/` out of it
//! ([`super::digest`]), which is why a Java member's digest and ours agree across them. After a snapshot
//! load the registry and every stats node are rebuilt from the tree (`DataTree.setupQuota`), so whatever
//! a snapshot holds in a stats node is replaced by the loaded tree's usage.
//!
//! The text in both nodes is ZooKeeper's `StatsTrack` format ([`StatsTrack`]); the registry matches its
//! `PathTrie`, including how it splits paths ([`components`]).

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use fk_net::client::ErrorCode;
use tracing::{error, warn};

use super::{DataTree, QUOTA_PATH};

/// The limits node's name under `/zookeeper/quota/<path>`.
pub const LIMIT_NODE: &str = "zookeeper_limits";
/// The stats node's name under `/zookeeper/quota/<path>`.
pub const STAT_NODE: &str = "zookeeper_stats";

const COUNT: &str = "count";
const BYTES: &str = "bytes";
const COUNT_HARD_LIMIT: &str = "countHardLimit";
const BYTE_HARD_LIMIT: &str = "byteHardLimit";

/// `Quotas.limitPath`: where the limits of `path` live.
pub fn limit_path(path: &str) -> String {
    format!("{QUOTA_PATH}{path}/{LIMIT_NODE}")
}

/// `Quotas.statPath`: where the usage of `path` lives.
pub fn stat_path(path: &str) -> String {
    format!("{QUOTA_PATH}{path}/{STAT_NODE}")
}

/// A stats or limits node's text that `StatsTrack` cannot parse (ZooKeeper throws on it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed quota text {text:?}: {reason}")]
pub struct StatsTrackError {
    pub text: String,
    pub reason: &'static str,
}

/// ZooKeeper's `StatsTrack`: `key=value` pairs separated by runs of ',' or ';'. A missing key reads as
/// -1 (no limit). Written back as `count=N,bytes=M`, then — only when other keys exist — a trailing '='
/// (which makes pre-3.7 parsers ignore the rest) and `;key=value` for every other key in key order:
/// `count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsTrack {
    stats: BTreeMap<String, i64>,
}

impl StatsTrack {
    /// Parses like the Java constructor: `String.split` semantics (trailing empty pieces dropped), an
    /// empty value meaning -1, and the errors Java would throw.
    pub fn parse(bytes: &[u8]) -> Result<StatsTrack, StatsTrackError> {
        let text = String::from_utf8_lossy(bytes);
        let mut track = StatsTrack::default();
        if text.is_empty() {
            return Ok(track);
        }
        let fail = |reason| StatsTrackError { text: text.to_string(), reason };
        for pair in java_split(&text, |c| c == ',' || c == ';', true) {
            let kv = java_split(pair, |c| c == '=', false);
            let (Some(key), Some(value)) = (kv.first(), kv.get(1)) else {
                return Err(fail("a pair without '=value'"));
            };
            let value = if value.is_empty() { -1 } else { value.parse().map_err(|_| fail("a value is not a long"))? };
            track.stats.insert((*key).to_owned(), value);
        }
        Ok(track)
    }

    fn get(&self, key: &str) -> i64 {
        self.stats.get(key).copied().unwrap_or(-1)
    }

    pub fn count(&self) -> i64 {
        self.get(COUNT)
    }

    pub fn bytes(&self) -> i64 {
        self.get(BYTES)
    }

    pub fn count_hard_limit(&self) -> i64 {
        self.get(COUNT_HARD_LIMIT)
    }

    pub fn byte_hard_limit(&self) -> i64 {
        self.get(BYTE_HARD_LIMIT)
    }

    pub fn set_count(&mut self, count: i64) {
        self.stats.insert(COUNT.to_owned(), count);
    }

    pub fn set_bytes(&mut self, bytes: i64) {
        self.stats.insert(BYTES.to_owned(), bytes);
    }

    /// The limit that applies to the count: the hard one when set (`QuotaMetricsUtils.getQuotaLimit`).
    pub fn effective_count_limit(&self) -> i64 {
        if self.count_hard_limit() > -1 { self.count_hard_limit() } else { self.count() }
    }

    pub fn effective_byte_limit(&self) -> i64 {
        if self.byte_hard_limit() > -1 { self.byte_hard_limit() } else { self.bytes() }
    }
}

impl std::fmt::Display for StatsTrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{COUNT}={},{BYTES}={}", self.count(), self.bytes())?;
        let mut others = self.stats.iter().filter(|(k, _)| *k != COUNT && *k != BYTES).peekable();
        if others.peek().is_some() {
            f.write_str("=")?;
            for (key, value) in others {
                write!(f, ";{key}={value}")?;
            }
        }
        Ok(())
    }
}

/// Java's `String.split(regex)` for a one-character class (`runs`: the class followed by '+'): pieces
/// between separators, a leading empty piece kept, trailing empty pieces dropped.
fn java_split(text: &str, is_separator: impl Fn(char) -> bool, runs: bool) -> Vec<&str> {
    let mut pieces: Vec<&str> = text.split(&is_separator).collect();
    if runs {
        // A run of separators is one match: only the empty piece before a leading run survives.
        let mut index = 0;
        pieces.retain(|piece| {
            index += 1;
            index == 1 || !piece.is_empty()
        });
    }
    while pieces.last().is_some_and(|p| p.is_empty()) {
        pieces.pop();
    }
    pieces
}

/// `PathTrie.split`: the components of a path, skipping those Java's `trim()` leaves empty (all
/// characters at or below ' '). So "/a/ /b" and "/a//b" name the same quota path as "/a/b".
pub fn components(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|c| !c.chars().all(|ch| ch <= ' '))
}

/// `PathUtils.getTopNamespace`: the first component of a path ("q" for "/q/c1"), what the quota metrics
/// are grouped by.
pub fn top_namespace(path: &str) -> Option<&str> {
    java_split(path, |c| c == '/', false).get(1).copied()
}

/// The paths that have a quota, normalised as `PathTrie` keeps them ("/" + non-blank components). Only
/// which paths carry the trie's property is observable (`findMaxPrefix`), so a set does its job.
#[derive(Debug, Default)]
pub struct QuotaIndex {
    paths: HashSet<String>,
}

impl QuotaIndex {
    fn normalise(path: &str) -> Option<String> {
        let mut normal = String::with_capacity(path.len());
        for component in components(path) {
            normal.push('/');
            normal.push_str(component);
        }
        // The trie's root can carry the property, but `findMaxPrefix` never returns it, so a quota on
        // "/" is never counted: leave it out.
        (!normal.is_empty()).then_some(normal)
    }

    /// `PathTrie.addPath`. ZooKeeper throws on "" (a limits node directly under /zookeeper/quota); it is
    /// refused here with a log line instead.
    pub fn add(&mut self, path: &str) {
        if path.is_empty() {
            error!("Invalid quota path \"\": a limits node directly under {QUOTA_PATH} names no path");
            return;
        }
        if let Some(normal) = Self::normalise(path) {
            self.paths.insert(normal);
        }
    }

    /// `PathTrie.deletePath`.
    pub fn remove(&mut self, path: &str) {
        if let Some(normal) = Self::normalise(path) {
            self.paths.remove(&normal);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// `DataTree.getMaxPrefixWithQuota`: the deepest quota path that is `path` or one of its ancestors.
    pub fn max_prefix(&self, path: &str) -> Option<String> {
        if self.paths.is_empty() {
            return None;
        }
        let mut prefix = String::with_capacity(path.len());
        let mut deepest = None;
        for component in components(path) {
            prefix.push('/');
            prefix.push_str(component);
            if self.paths.contains(&prefix) {
                deepest = Some(prefix.len());
            }
        }
        deepest.map(|len| {
            prefix.truncate(len);
            prefix
        })
    }
}

/// Writes refused for a hard limit, per top-level namespace of the written path: ZooKeeper's
/// `quota_exceeded_error_per_namespace` counter. A figure of this server, not replicated state: it is in
/// no snapshot and no digest, and only the member that prepares writes (standalone or leader) counts.
/// Behind a mutex because prep checks quotas under the tree's read lock.
#[derive(Debug, Default)]
pub struct QuotaExceededCounts(Mutex<BTreeMap<String, u64>>);

impl QuotaExceededCounts {
    fn add(&self, path: &str) {
        // `updateQuotaExceededMetrics` counts nothing for a path without a namespace.
        if let Some(namespace) = top_namespace(path) {
            let mut counts = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            *counts.entry(namespace.to_owned()).or_default() += 1;
        }
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

/// Java's `path.substring(0, lastSlash)` and `path.substring(lastSlash + 1)`: "/a" has parent "".
fn split_last(path: &str) -> (&str, &str) {
    let slash = path.rfind('/').unwrap_or(0);
    (&path[..slash], path.get(slash + 1..).unwrap_or(""))
}

/// `Quotas.trimQuotaPath`: what follows "/zookeeper/quota" (None where Java's substring would throw).
fn trim_quota_path(quota_path: &str) -> Option<&str> {
    quota_path.get(QUOTA_PATH.len()..)
}

/// Limits and usage per top-level namespace, as `mntr` reports them (`QuotaMetricsUtils`).
/// ZooKeeper keeps one gauge map per figure, so a namespace with limits but no stats node shows no usage
/// lines: `None` is "no entry".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NamespaceQuota {
    pub count_limit: Option<i64>,
    pub bytes_limit: Option<i64>,
    pub count_usage: Option<i64>,
    pub bytes_usage: Option<i64>,
}

impl DataTree {
    /// After a node was created (`DataTree.createNode`'s tail): a limits node registers its path, a stats
    /// node gets its path's real usage, then the usage of the deepest quota above the new node grows.
    pub(super) fn quota_after_create(&mut self, path: &str, data_len: i64) {
        let (parent, child) = split_last(path);
        if parent.starts_with(QUOTA_PATH) {
            let quota_path = trim_quota_path(parent).expect("parent starts with the quota path");
            if child == LIMIT_NODE {
                self.quotas.add(quota_path);
            }
            if child == STAT_NODE {
                self.update_quota_for_path(quota_path);
            }
        }
        if let Some(prefix) = self.quotas.max_prefix(path) {
            self.update_quota_stat(&prefix, data_len, 1);
        }
    }

    /// After a node was deleted: a deleted limits node unregisters its path (ZooKeeper tests the parent
    /// against "/zookeeper" here, not "/zookeeper/quota", and so do we), then usage shrinks.
    pub(super) fn quota_after_delete(&mut self, path: &str, data_len: i64) {
        let (parent, child) = split_last(path);
        if parent.starts_with(super::ZOOKEEPER_PATH) && child == LIMIT_NODE {
            match trim_quota_path(parent).filter(|p| !p.is_empty()) {
                Some(quota_path) => self.quotas.remove(quota_path),
                // ZooKeeper throws here (substring out of range, or "" for the trie) after the delete.
                None => error!("Deleted {path}, which names no quota path"),
            }
        }
        if let Some(prefix) = self.quotas.max_prefix(path) {
            self.update_quota_stat(&prefix, -data_len, -1);
        }
    }

    /// After setData: usage moves by the change in data length. The stats text is rewritten even when the
    /// length did not change, as ZooKeeper does.
    pub(super) fn quota_after_set_data(&mut self, path: &str, bytes_diff: i64) {
        if let Some(prefix) = self.quotas.max_prefix(path) {
            self.update_quota_stat(&prefix, bytes_diff, 0);
        }
    }

    /// `DataTree.setupQuota`, run once a snapshot is loaded: every leaf under /zookeeper/quota whose path
    /// ends in "/zookeeper_limits" registers the path before the first such suffix, and its stats node is
    /// recomputed from the tree.
    pub(super) fn setup_quota(&mut self) {
        let Some(start) = self.slot(QUOTA_PATH) else { return };
        let suffix = format!("/{LIMIT_NODE}");
        let mut quota_paths = Vec::new();
        let mut stack = vec![start];
        while let Some(index) = stack.pop() {
            let node = self.node_at(index);
            if node.child_count() > 0 {
                stack.extend(node.children.iter().flat_map(|c| c.slots()));
            } else if node.path.ends_with(&suffix) {
                let end = node.path.find(&suffix).expect("the path ends with it");
                quota_paths.push(node.path[QUOTA_PATH.len()..end].to_owned());
            }
        }
        for quota_path in quota_paths {
            self.update_quota_for_path(&quota_path);
            self.quotas.add(&quota_path);
        }
    }

    /// `DataTree.updateQuotaForPath`: the stats node of `path` is set to the subtree's node count and data
    /// bytes. A regular write: the digest follows (it is 0 under /zookeeper/ anyway).
    fn update_quota_for_path(&mut self, path: &str) {
        let (count, bytes) = self.subtree_usage(path);
        let mut stats = StatsTrack::default();
        stats.set_bytes(bytes);
        stats.set_count(count);
        let stats_path = stat_path(path);
        match self.slot(&stats_path) {
            Some(index) => self.write_stats(index, &stats),
            None => warn!("Missing quota stat node {stats_path}"),
        }
    }

    /// Nodes and data bytes of the subtree at `path` (`DataTree.getCounts`); "" is the root, as ZooKeeper
    /// keys it.
    fn subtree_usage(&self, path: &str) -> (i64, i64) {
        let Some(start) = self.slot(if path.is_empty() { "/" } else { path }) else { return (0, 0) };
        let (mut count, mut bytes) = (0, 0);
        let mut stack = vec![start];
        while let Some(index) = stack.pop() {
            let node = self.node_at(index);
            count += 1;
            bytes += i64::from(node.data_len());
            stack.extend(node.children.iter().flat_map(|c| c.slots()));
        }
        (count, bytes)
    }

    /// `DataTree.updateQuotaStat`: adds to the usage in `prefix`'s stats node.
    fn update_quota_stat(&mut self, prefix: &str, bytes_diff: i64, count_diff: i64) {
        let stats_path = stat_path(prefix);
        let Some(index) = self.slot(&stats_path) else {
            error!("Missing node for stat {stats_path}");
            return;
        };
        // ZooKeeper throws on unreadable stats after the write itself applied; the write stands here too
        // and only the usage update is skipped.
        let mut stats = match self.node_at(index).data.as_deref().map(StatsTrack::parse) {
            Some(Ok(stats)) => stats,
            Some(Err(e)) => return error!("Quota stats of {prefix} not updated: {e}"),
            None => return error!("Quota stats of {prefix} not updated: {stats_path} has null data"),
        };
        stats.set_count(stats.count() + count_diff);
        stats.set_bytes(stats.bytes() + bytes_diff);
        self.write_stats(index, &stats);
    }

    /// Replaces a stats node's data and nothing else of it: ZooKeeper leaves its Stat alone.
    fn write_stats(&mut self, index: u32, stats: &StatsTrack) {
        self.node_mut(index).data = Some(stats.to_string().into_bytes().into_boxed_slice());
        self.rehash(index);
    }

    /// The deepest quota path covering `path`, if any.
    pub fn quota_prefix(&self, path: &str) -> Option<String> {
        self.quotas.max_prefix(path)
    }

    /// `ZooKeeperServer.checkQuota` (called by prep, against the applied tree as ZooKeeper does, when
    /// `zookeeper.enforceQuota` is on): would adding `count_diff` nodes and `bytes_diff` bytes under
    /// `path` pass a limit? A count or byte limit passed is logged as ZooKeeper logs it ("Quota exceeded:
    /// /q [current count=6, softCountLimit=5]"); a hard one refuses the write with QuotaExceeded, the
    /// count checked first. Unreadable limits or stats are MarshallingError, ZooKeeper's answer to any
    /// unexpected exception in prep.
    pub fn check_quota(&self, path: &str, bytes_diff: i64, count_diff: i64) -> Result<(), ErrorCode> {
        let result = self.check_quota_limits(path, bytes_diff, count_diff);
        if result == Err(ErrorCode::QuotaExceeded) {
            self.quota_exceeded.add(path);
        }
        result
    }

    /// Writes refused for a hard limit so far, per namespace ([`QuotaExceededCounts`]).
    pub fn quota_exceeded_counts(&self) -> BTreeMap<String, u64> {
        self.quota_exceeded.snapshot()
    }

    fn check_quota_limits(&self, path: &str, bytes_diff: i64, count_diff: i64) -> Result<(), ErrorCode> {
        let Some(prefix) = self.quotas.max_prefix(path) else { return Ok(()) };
        let Some(limits) = self.quota_text(&limit_path(&prefix), "Missing limit node for quota")? else {
            return Ok(());
        };
        let check_count = count_diff != 0 && (limits.count() > -1 || limits.count_hard_limit() > -1);
        let check_bytes = bytes_diff != 0 && (limits.bytes() > -1 || limits.byte_hard_limit() > -1);
        if !check_count && !check_bytes {
            return Ok(());
        }
        let Some(usage) = self.quota_text(&stat_path(&prefix), "Missing node for stat")? else { return Ok(()) };
        if check_count {
            let hard = limits.count_hard_limit() > -1;
            check_limit(&prefix, "count", "Count", usage.count() + count_diff, limits.effective_count_limit(), hard)?;
        }
        if check_bytes {
            let hard = limits.byte_hard_limit() > -1;
            check_limit(&prefix, "bytes", "Byte", usage.bytes() + bytes_diff, limits.effective_byte_limit(), hard)?;
        }
        Ok(())
    }

    /// A quota node's text; `None` (after logging `missing`) when the node does not exist.
    fn quota_text(&self, node_path: &str, missing: &str) -> Result<Option<StatsTrack>, ErrorCode> {
        let Some(node) = self.get(node_path) else {
            error!("{missing} {node_path}");
            return Ok(None);
        };
        let data = node.data.as_deref().ok_or(ErrorCode::MarshallingError)?;
        StatsTrack::parse(data).map(Some).map_err(|e| {
            error!("Failed to check the quota at {node_path}: {e}");
            ErrorCode::MarshallingError
        })
    }

    /// Limits and usage summed per top-level namespace over every leaf limits and stats node under
    /// /zookeeper/quota (`QuotaMetricsUtils`); unreadable nodes are left out.
    pub fn quota_metrics(&self) -> BTreeMap<String, NamespaceQuota> {
        let mut metrics: BTreeMap<String, NamespaceQuota> = BTreeMap::new();
        let Some(start) = self.slot(QUOTA_PATH) else { return metrics };
        let (limit_suffix, stat_suffix) = (format!("/{LIMIT_NODE}"), format!("/{STAT_NODE}"));
        let mut stack = vec![start];
        while let Some(index) = stack.pop() {
            let node = self.node_at(index);
            if node.child_count() > 0 {
                stack.extend(node.children.iter().flat_map(|c| c.slots()));
                continue;
            }
            let (is_limit, is_stat) = (node.path.ends_with(&limit_suffix), node.path.ends_with(&stat_suffix));
            if !is_limit && !is_stat {
                continue;
            }
            let namespace = trim_quota_path(&node.path).and_then(top_namespace);
            let track = node.data.as_deref().and_then(|d| StatsTrack::parse(d).ok());
            let (Some(namespace), Some(track)) = (namespace, track) else { continue };
            let entry = metrics.entry(namespace.to_owned()).or_default();
            let add = |sum: &mut Option<i64>, value: i64| *sum = Some(sum.unwrap_or(0) + value);
            if is_limit {
                add(&mut entry.count_limit, track.effective_count_limit());
                add(&mut entry.bytes_limit, track.effective_byte_limit());
            } else {
                add(&mut entry.count_usage, track.count());
                add(&mut entry.bytes_usage, track.bytes());
            }
        }
        metrics
    }
}

/// One limit of `ZooKeeperServer.checkQuota`: logs a passed limit, refuses a passed hard one.
fn check_limit(prefix: &str, noun: &str, kind: &str, current: i64, limit: i64, hard: bool) -> Result<(), ErrorCode> {
    if current <= limit {
        return Ok(());
    }
    let strength = if hard { "hard" } else { "soft" };
    warn!("Quota exceeded: {prefix} [current {noun}={current}, {strength}{kind}Limit={limit}]");
    if hard { Err(ErrorCode::QuotaExceeded) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use fk_net::client::{Acl, StatPersisted, perms};

    use super::*;
    use crate::tree::{LoadCursor, Node, OPEN_ACL_ID, TreeOptions};

    #[test]
    fn stats_track_reads_and_writes_zookeepers_text() {
        // (text, count, bytes, countHardLimit, byteHardLimit, written back)
        let table: &[(&str, i64, i64, i64, i64, &str)] = &[
            ("", -1, -1, -1, -1, "count=-1,bytes=-1"),
            ("count=3,bytes=8", 3, 8, -1, -1, "count=3,bytes=8"),
            (
                "count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1",
                5,
                -1,
                -1,
                -1,
                "count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1",
            ),
            ("countHardLimit=3", -1, -1, 3, -1, "count=-1,bytes=-1=;countHardLimit=3"),
            ("bytes=10,,;;count=2", 2, 10, -1, -1, "count=2,bytes=10"),
            // An empty value is -1; a later duplicate wins; unknown keys are kept, sorted.
            ("count=1,bytes==7;zeta=1;alpha=2;count=4", 4, -1, -1, -1, "count=4,bytes=-1=;alpha=2;zeta=1"),
            (",,,", -1, -1, -1, -1, "count=-1,bytes=-1"),
        ];
        for (text, count, bytes, count_hard, byte_hard, written) in table {
            let track = StatsTrack::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(
                (track.count(), track.bytes(), track.count_hard_limit(), track.byte_hard_limit()),
                (*count, *bytes, *count_hard, *byte_hard),
                "{text}"
            );
            assert_eq!(track.to_string(), *written, "{text}");
        }
        for bad in ["count", "count=", "count=x", ",count=1", "count=1,=", "count=1.5"] {
            assert!(StatsTrack::parse(bad.as_bytes()).is_err(), "{bad} parses");
        }
    }

    #[test]
    fn quota_prefix_is_the_deepest_registered_ancestor() {
        let mut index = QuotaIndex::default();
        assert_eq!(index.max_prefix("/a"), None);
        for path in ["/a", "/a/b/c", "/x/ ", "/", "/zookeeper"] {
            index.add(path);
        }
        // (path, prefix)
        let table: &[(&str, Option<&str>)] = &[
            ("/a", Some("/a")),
            ("/a/b", Some("/a")),
            ("/a/b/c", Some("/a/b/c")),
            ("/a/b/c/d", Some("/a/b/c")),
            ("/a//b/c", Some("/a/b/c")),
            ("/ab", None),
            ("/x", Some("/x")),
            ("/y", None),
            ("/zookeeper/quota/a/zookeeper_stats", Some("/zookeeper")),
        ];
        for (path, prefix) in table {
            assert_eq!(index.max_prefix(path).as_deref(), *prefix, "{path}");
        }
        index.remove("/a/b/c");
        assert_eq!(index.max_prefix("/a/b/c/d").as_deref(), Some("/a"));
        index.remove("/a");
        assert_eq!(index.max_prefix("/a/b/c/d"), None);
    }

    #[test]
    fn top_namespace_is_the_first_component() {
        let table = [("/q/c1", Some("q")), ("/q", Some("q")), ("/", None), ("//x", Some(""))];
        for (path, namespace) in table {
            assert_eq!(top_namespace(path), namespace, "{path}");
        }
    }

    fn open() -> Vec<Acl> {
        vec![Acl::new(perms::ALL, "world", "anyone")]
    }

    /// Runs zkCli's `setquota` node creates for `path` with `limits`, from zxid 100 on.
    fn set_quota(tree: &mut DataTree, path: &str, limits: &str) {
        let mut quota_path = QUOTA_PATH.to_owned();
        let mut zxid = 100;
        for component in path.split('/').skip(1) {
            quota_path = format!("{quota_path}/{component}");
            zxid += 1;
            let _ = tree.create_node(&quota_path, None, &open(), 0, -1, zxid, 0);
        }
        tree.create_node(&limit_path(path), Some(limits.as_bytes()), &open(), 0, -1, zxid + 1, 0).unwrap();
        tree.create_node(&stat_path(path), Some(b"count=0,bytes=0"), &open(), 0, -1, zxid + 2, 0).unwrap();
    }

    fn usage(tree: &DataTree, path: &str) -> String {
        let node = tree.get(&stat_path(path)).expect("stats node");
        String::from_utf8(node.data.as_deref().unwrap().to_vec()).unwrap()
    }

    #[test]
    fn writes_under_a_quota_move_its_usage_and_nothing_else() {
        let mut tree = DataTree::new(TreeOptions::fixed_seed(false));
        tree.create_node("/q", Some(b"a"), &open(), 0, -1, 1, 0).unwrap();
        tree.create_node("/q/c1", Some(b"hello"), &open(), 0, -1, 2, 0).unwrap();
        set_quota(&mut tree, "/q", "count=5,bytes=-1");
        assert_eq!(usage(&tree, "/q"), "count=2,bytes=6", "the stats node's create counted the subtree");
        let stat_before = tree.get(&stat_path("/q")).unwrap().stat.clone();

        tree.create_node("/q/c2", Some(b"xy"), &open(), 0, -1, 10, 0).unwrap();
        tree.create_node("/q/c2/e", None, &open(), 0x42, -1, 11, 0).unwrap();
        assert_eq!(usage(&tree, "/q"), "count=4,bytes=8");
        tree.set_data("/q/c1", Some(b"hello-world"), 1, 12, 0).unwrap();
        assert_eq!(usage(&tree, "/q"), "count=4,bytes=14");
        tree.delete_node("/q/c2/e", 13).unwrap();
        tree.delete_node("/q/c2", 14).unwrap();
        assert_eq!(usage(&tree, "/q"), "count=2,bytes=12");
        tree.create_node("/other", Some(b"zzz"), &open(), 0, -1, 15, 0).unwrap();
        assert_eq!(usage(&tree, "/q"), "count=2,bytes=12", "outside the quota");
        assert_eq!(tree.get(&stat_path("/q")).unwrap().stat, stat_before, "ZooKeeper leaves the Stat alone");

        // Deleting the limits node ends the counting; the stats node stays as it was.
        tree.delete_node(&limit_path("/q"), 16).unwrap();
        tree.create_node("/q/c3", Some(b"x"), &open(), 0, -1, 17, 0).unwrap();
        assert_eq!(usage(&tree, "/q"), "count=2,bytes=12");
        assert_eq!(tree.quota_prefix("/q/c3"), None);
    }

    #[test]
    fn quota_nodes_never_move_the_digest() {
        // The same client writes, with the same zxids, on a tree with a quota and on one without.
        let mut with_quota = DataTree::new(TreeOptions::fixed_seed(false));
        let mut without = DataTree::new(TreeOptions::fixed_seed(false));
        for tree in [&mut with_quota, &mut without] {
            tree.create_node("/q", Some(b"a"), &open(), 0, -1, 1, 0).unwrap();
        }
        set_quota(&mut with_quota, "/q", "countHardLimit=9");
        for tree in [&mut with_quota, &mut without] {
            tree.create_node("/q/c", Some(b"data"), &open(), 0, -1, 200, 0).unwrap();
            tree.set_data("/q/c", Some(b"longer data"), 1, 201, 0).unwrap();
            tree.delete_node("/q/c", 202).unwrap();
        }
        assert_eq!(usage(&with_quota, "/q"), "count=1,bytes=1");
        assert_eq!(with_quota.digest(), without.digest());
    }

    #[test]
    fn a_quota_on_zookeeper_counts_its_own_quota_nodes_as_zookeeper_does() {
        // ZooKeeper 3.8 `setquota -n 2 /zookeeper` on a fresh server: the stats node's own create is
        // counted once by the recount and once more as a create under /zookeeper.
        let mut tree = DataTree::new(TreeOptions::fixed_seed(false));
        set_quota(&mut tree, "/zookeeper", "count=2,bytes=-1");
        // /zookeeper, quota, config, quota/zookeeper, limits, stats = 6 nodes, then the stats create again.
        let limits_len = "count=2,bytes=-1".len() as i64;
        let stats_len = "count=0,bytes=0".len() as i64;
        assert_eq!(usage(&tree, "/zookeeper"), format!("count=7,bytes={}", limits_len + 2 * stats_len));
    }

    /// The tree `nodes` describe, loaded as from a snapshot.
    fn load(nodes: &[(&str, &str)]) -> DataTree {
        let mut tree = DataTree::for_loading(TreeOptions::fixed_seed(false));
        let mut cursor = LoadCursor::default();
        for (path, data) in nodes {
            let node = Node::new(path, Some(data.as_bytes().into()), OPEN_ACL_ID, StatPersisted::default());
            tree.load_node(node, &mut cursor).unwrap();
        }
        tree.end_load(cursor);
        tree.finish_loading();
        tree
    }

    #[test]
    fn loading_recomputes_usage_and_registers_quotas() {
        let tree = load(&[
            ("/zookeeper", ""),
            ("/zookeeper/quota", ""),
            ("/zookeeper/quota/q", ""),
            ("/zookeeper/quota/q/zookeeper_limits", "count=2,bytes=-1"),
            ("/zookeeper/quota/q/zookeeper_stats", "count=99,bytes=99"),
            // A stats node without a limits node is neither registered nor recomputed.
            ("/zookeeper/quota/r", ""),
            ("/zookeeper/quota/r/zookeeper_stats", "count=7,bytes=7"),
            ("/q", "abc"),
            ("/q/a", "de"),
            ("/r", "x"),
        ]);
        assert_eq!(usage(&tree, "/q"), "count=2,bytes=5");
        assert_eq!(usage(&tree, "/r"), "count=7,bytes=7");
        assert_eq!(tree.quota_prefix("/q/a/b").as_deref(), Some("/q"));
        assert_eq!(tree.quota_prefix("/r"), None);
    }

    #[test]
    fn check_quota_refuses_only_hard_limits() {
        // (limits, usage, bytes_diff, count_diff, result)
        type Case<'a> = (&'a str, &'a str, i64, i64, Result<(), ErrorCode>);
        let table: &[Case] = &[
            ("count=2,bytes=-1", "count=2,bytes=0", 0, 1, Ok(())),
            ("countHardLimit=2", "count=2,bytes=0", 0, 1, Err(ErrorCode::QuotaExceeded)),
            ("countHardLimit=3", "count=2,bytes=0", 0, 1, Ok(())),
            // The hard limit replaces the soft one.
            ("count=1,bytes=-1=;countHardLimit=3", "count=2,bytes=0", 0, 1, Ok(())),
            ("byteHardLimit=10", "count=1,bytes=5", 5, 0, Ok(())),
            ("byteHardLimit=10", "count=1,bytes=5", 6, 0, Err(ErrorCode::QuotaExceeded)),
            // A zero difference is not checked, even past the limit.
            ("byteHardLimit=10", "count=1,bytes=50", 0, 1, Ok(())),
            ("countHardLimit=1", "count=5,bytes=0", 3, 0, Ok(())),
            ("byteHardLimit=0", "count=1,bytes=0", -1, 0, Ok(())),
            ("countHardLimit=1", "garbage", 0, 1, Err(ErrorCode::MarshallingError)),
        ];
        for (limits, used, bytes_diff, count_diff, expected) in table {
            let mut tree = DataTree::new(TreeOptions::fixed_seed(false));
            tree.create_node("/q", None, &open(), 0, -1, 1, 0).unwrap();
            set_quota(&mut tree, "/q", limits);
            tree.set_data(&stat_path("/q"), Some(used.as_bytes()), 1, 300, 0).unwrap();
            assert_eq!(tree.check_quota("/q/new", *bytes_diff, *count_diff), *expected, "{limits} {used}");
        }
        let tree = DataTree::new(TreeOptions::fixed_seed(false));
        assert_eq!(tree.check_quota("/q/new", 1 << 40, 1), Ok(()), "no quota");
    }

    #[test]
    fn refusals_are_counted_per_namespace_of_the_written_path() {
        let mut tree = DataTree::new(TreeOptions::fixed_seed(false));
        tree.create_node("/q", None, &open(), 0, -1, 1, 0).unwrap();
        set_quota(&mut tree, "/q", "countHardLimit=1,bytes=0");
        for _ in 0..2 {
            assert_eq!(tree.check_quota("/q/a/b", 0, 1), Err(ErrorCode::QuotaExceeded));
        }
        assert_eq!(tree.check_quota("/q", 5, 0), Ok(()), "a soft limit passed is not counted");
        assert_eq!(tree.quota_exceeded_counts(), BTreeMap::from([("q".to_owned(), 2)]));
    }

    #[test]
    fn mntr_figures_sum_per_namespace() {
        let mut tree = DataTree::new(TreeOptions::fixed_seed(false));
        tree.create_node("/g", Some(b"12345"), &open(), 0, -1, 1, 0).unwrap();
        tree.create_node("/g/h", None, &open(), 0, -1, 2, 0).unwrap();
        set_quota(&mut tree, "/g/h", "count=4,bytes=-1=;byteHardLimit=10");
        let metrics = tree.quota_metrics();
        let expected =
            NamespaceQuota { count_limit: Some(4), bytes_limit: Some(10), count_usage: Some(1), bytes_usage: Some(0) };
        assert_eq!(metrics.get("g"), Some(&expected));
        assert_eq!(metrics.len(), 1);
    }
}
