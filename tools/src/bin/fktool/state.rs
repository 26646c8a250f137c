//! Where a tool's tree comes from: one snapshot file as it is, or a data directory rebuilt offline as
//! start-up recovery would (newest usable snapshot + log replay), optionally as of a given zxid. Every
//! path here is read-only: a torn tail is reported, never cut.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use fk_engine::files::{SNAPSHOT_PREFIX, VERSION_DIR, parse_name};
use fk_engine::recovery::{RecoverLimits, Recovered, recover_with};
use fk_engine::snap::load_snapshot;
use fk_engine::tree::{DataTree, TreeOptions};

/// Offline tools decode TTL owners as ZooKeeper does with `extendedTypesEnabled`: the snapshot does not
/// record the setting, and a TTL encoding is never a valid session id.
pub(crate) fn tree_options() -> TreeOptions {
    TreeOptions::fixed_seed(true)
}

/// The `version-2` directories of a data dir and its optional separate log dir.
#[derive(Debug, Clone)]
pub(crate) struct DataDirs {
    pub snap: PathBuf,
    pub log: PathBuf,
}

impl DataDirs {
    /// Refuses a directory without `version-2/`: recovering from nothing would quietly yield an empty
    /// tree for a mistyped path.
    pub(crate) fn resolve(data_dir: &Path, log_dir: Option<&Path>) -> anyhow::Result<DataDirs> {
        let snap = data_dir.join(VERSION_DIR);
        let log = log_dir.unwrap_or(data_dir).join(VERSION_DIR);
        for dir in [&snap, &log] {
            if !dir.is_dir() {
                bail!("{} is not a directory (expected a ZooKeeper dataDir containing {VERSION_DIR}/)", dir.display());
            }
        }
        Ok(DataDirs { snap, log })
    }
}

/// Rebuilds the tree of `dirs` as of `at_zxid` (or of the last txn), read-only, with notes on stderr for
/// what an operator should know (a torn tail, a zxid past the logs, digest mismatches).
pub(crate) fn rebuild(dirs: &DataDirs, at_zxid: Option<i64>) -> anyhow::Result<Recovered> {
    let progress = crate::progress::spinner(format!("rebuilding the tree from {}", dirs.snap.display()));
    let limits = RecoverLimits { up_to_zxid: at_zxid, read_only: true, ..RecoverLimits::default() };
    let recovered = recover_with(&dirs.snap, &dirs.log, tree_options(), limits)
        .with_context(|| format!("rebuilding the tree of {}", dirs.snap.display()))?;
    progress.finish_and_clear();
    if let Some((path, offset)) = &recovered.truncated {
        eprintln!(
            "note: {} ends with a torn record at offset {offset}; recovery would cut it there (left as is)",
            path.display()
        );
    }
    for path in &recovered.never_written {
        eprintln!("note: {} has no header and holds no txn; recovery would remove it (left as is)", path.display());
    }
    let reached = recovered.tree.last_processed_zxid();
    if let Some(zxid) = at_zxid.filter(|z| *z > reached) {
        eprintln!("note: the logs end at zxid 0x{reached:x}, before 0x{zxid:x}; this is the tree at 0x{reached:x}");
    }
    if recovered.digest_mismatches > 0 {
        eprintln!(
            "warning: {} of {} logged digests differ from the rebuilt tree",
            recovered.digest_mismatches, recovered.digests_checked
        );
    }
    Ok(recovered)
}

/// A tree and where it came from, for reports.
pub(crate) struct Loaded {
    pub tree: DataTree,
    pub source: String,
}

/// `input` is a snapshot file (loaded as it is: a fuzzy snapshot alone may hold part of later txns) or
/// a data dir (rebuilt, see [`rebuild`]).
pub(crate) fn load(input: &Path, log_dir: Option<&Path>, at_zxid: Option<i64>) -> anyhow::Result<Loaded> {
    if input.is_file() {
        if log_dir.is_some() || at_zxid.is_some() {
            bail!("--log-dir and --at-zxid apply to a data directory, not to the snapshot file {}", input.display());
        }
        let progress = crate::progress::spinner(format!("loading {}", input.display()));
        let (tree, _) = load_snapshot(input, snapshot_zxid(input), tree_options())?;
        progress.finish_and_clear();
        return Ok(Loaded { tree, source: input.display().to_string() });
    }
    let recovered = rebuild(&DataDirs::resolve(input, log_dir)?, at_zxid)?;
    let snapshot = recovered.snapshot.as_ref().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
    let source = format!(
        "{} ({} + {} txns)",
        input.display(),
        snapshot.unwrap_or_else(|| "no snapshot".into()),
        recovered.replayed
    );
    Ok(Loaded { tree: recovered.tree, source })
}

/// The zxid a snapshot file is named after (0 for a name that is not `snapshot.<hex>`).
pub(crate) fn snapshot_zxid(file: &Path) -> i64 {
    file.file_name().and_then(|n| n.to_str()).and_then(|n| parse_name(n, SNAPSHOT_PREFIX)).unwrap_or(0)
}
