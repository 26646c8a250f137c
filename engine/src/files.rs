//! File names in `version-2/`: `log.<hex zxid>` and `snapshot.<hex zxid>`, where the hex is Java's
//! `Long.toHexString` (lower case, no padding, no `0x`). Files are ordered by that zxid, not by name.

use std::io;
use std::path::{Path, PathBuf};

use crate::fs::Fs;

/// The subdirectory ZooKeeper keeps its files in (`FileTxnSnapLog.VERSION`).
pub const VERSION_DIR: &str = "version-2";

pub const LOG_PREFIX: &str = "log";
pub const SNAPSHOT_PREFIX: &str = "snapshot";

/// `<prefix>.<hex zxid>`.
pub fn file_name(prefix: &str, zxid: i64) -> String {
    format!("{prefix}.{:x}", zxid as u64)
}

/// The zxid in a file name of the given prefix; `None` for anything else (ZooKeeper ignores such files).
/// A trailing compression suffix (`.gz`, `.snappy`) is accepted for snapshots and reported separately.
pub fn parse_name(name: &str, prefix: &str) -> Option<i64> {
    let mut parts = name.split('.');
    if parts.next()? != prefix {
        return None;
    }
    let hex = parts.next()?;
    if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let zxid = u64::from_str_radix(hex, 16).ok()? as i64;
    match parts.next() {
        None => Some(zxid),
        Some("gz" | "snappy") if prefix == SNAPSHOT_PREFIX && parts.next().is_none() => Some(zxid),
        Some(_) => None,
    }
}

/// Files of one kind in `dir`, sorted by zxid (ascending).
pub fn list(dir: &Path, prefix: &str) -> io::Result<Vec<(i64, PathBuf)>> {
    list_in(&crate::fs::RealFs, dir, prefix)
}

/// [`list`] on `fs`.
pub fn list_in(fs: &dyn crate::fs::Fs, dir: &Path, prefix: &str) -> io::Result<Vec<(i64, PathBuf)>> {
    let mut files = Vec::new();
    match fs.list(dir) {
        Ok(paths) => {
            for path in paths {
                if let Some(zxid) = path.file_name().and_then(|n| n.to_str()).and_then(|n| parse_name(n, prefix)) {
                    files.push((zxid, path));
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    files.sort_by_key(|(zxid, path)| (*zxid, path.clone()));
    Ok(files)
}

/// Opens a directory and fsyncs it, so that a file created or renamed in it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Writes `dir/name` atomically and durably: `bytes` to `dir/tmp_name`, fsync, rename over `name`,
/// directory fsync. A crash leaves the old file or the new one, never a mix.
pub fn replace_durably(fs: &dyn Fs, dir: &Path, name: &str, tmp_name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(tmp_name);
    let file = fs.open(&tmp, true)?;
    file.write_at(bytes, 0)?;
    file.sync_data()?;
    fs.rename(&tmp, &dir.join(name))?;
    fs.sync_dir(dir)
}

/// Removes `dir/name` durably, if it exists.
pub fn remove_durably(fs: &dyn Fs, dir: &Path, name: &str) -> io::Result<()> {
    match fs.remove(&dir.join(name)) {
        Ok(()) => fs.sync_dir(dir),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_like_java() {
        assert_eq!(file_name(LOG_PREFIX, 0x1e8), "log.1e8");
        assert_eq!(file_name(SNAPSHOT_PREFIX, 0), "snapshot.0");
        assert_eq!(file_name(LOG_PREFIX, 0x1_0000_0001), "log.100000001");
        assert_eq!(parse_name("log.1e8", LOG_PREFIX), Some(0x1e8));
        assert_eq!(parse_name("snapshot.b3.gz", SNAPSHOT_PREFIX), Some(0xb3));
        assert_eq!(parse_name("log.b3.gz", LOG_PREFIX), None);
        assert_eq!(parse_name("log.xyz", LOG_PREFIX), None);
        assert_eq!(parse_name("log", LOG_PREFIX), None);
        assert_eq!(parse_name("snapshot.1.tmp", SNAPSHOT_PREFIX), None);
    }
}
