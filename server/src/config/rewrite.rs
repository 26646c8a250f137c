//! The configuration files an ensemble member writes when a membership version is established with
//! `reconfigEnabled=true`, byte for byte as ZooKeeper 3.8 writes them (`QuorumPeerConfig`
//! `backupOldConfig`, `writeDynamicConfig`, `editStaticConfig`):
//! - at start-up, while the servers are still listed in zoo.cfg: a copy of it, `zoo.cfg.bak`;
//! - once the version is adopted: `zoo.cfg.dynamic.<version in hex>` with the membership (its
//!   `server.N` lines sorted as strings, joined by newlines, no version line, no final newline), and
//!   zoo.cfg rewritten without the membership (`server.`, `group`, `weight`, `dynamicConfigFile`,
//!   `peerType`, and `clientPort`/`clientPortAddress` when this member's server line gives its client
//!   address), its other keys in `java.util.Properties` order with trimmed values, then
//!   `dynamicConfigFile=<canonical path>`;
//! - when a reconfiguration is logged (proposed, not yet in force): `zoo.cfg.dynamic.next`, the same
//!   lines with its `version=` line among them (ZooKeeper's `setLastSeenQuorumVerifier`; a ZooKeeper
//!   member started on these files reads it back as the last configuration seen), removed once a version
//!   at least as new is in force.
//!
//! Every file is written whole beside its target, made durable, then renamed over it.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// `zoo.cfg.bak`, a copy of the static file.
pub fn backup_static(static_path: &Path) -> io::Result<()> {
    let bytes = std::fs::read(static_path)?;
    write_atomically(&with_suffix(static_path, ".bak"), &bytes)
}

/// Writes the dynamic file of `version` (the membership's `server.N=…` lines, as in
/// `/zookeeper/config`) and points the static file at it; returns the dynamic file's path.
pub fn adopt_version(
    static_path: &Path,
    members: &[String],
    version: u64,
    erase_client_address: bool,
) -> io::Result<PathBuf> {
    let dynamic = with_suffix(static_path, &format!(".dynamic.{version:x}"));
    let mut lines: Vec<&str> = members.iter().map(String::as_str).collect();
    lines.sort_unstable();
    write_atomically(&dynamic, lines.join("\n").as_bytes())?;
    let canonical = std::fs::canonicalize(&dynamic)?;
    let text = std::fs::read_to_string(static_path)?;
    write_atomically(static_path, edited_static(&text, &canonical, erase_client_address).as_bytes())?;
    Ok(dynamic)
}

/// Writes `zoo.cfg.dynamic.next` for a logged reconfiguration's membership text (its `version` line
/// included); returns the file's path.
pub fn write_next(static_path: &Path, text: &[u8]) -> io::Result<PathBuf> {
    let next = with_suffix(static_path, NEXT_SUFFIX);
    let text = String::from_utf8_lossy(text);
    let mut lines: Vec<String> = text
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| format!("{}={}", key.trim(), value.trim()))
        .collect();
    lines.sort_unstable();
    write_atomically(&next, lines.join("\n").as_bytes())?;
    Ok(next)
}

/// Removes `zoo.cfg.dynamic.next` if the version it holds is not newer than `version` (now in force).
/// Returns whether it was removed.
pub fn retire_next(static_path: &Path, version: i64) -> io::Result<bool> {
    let next = with_suffix(static_path, NEXT_SUFFIX);
    let text = match std::fs::read(&next) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if crate::zab::config_text::version_of(&text).is_some_and(|next_version| next_version > version) {
        return Ok(false);
    }
    std::fs::remove_file(&next)?;
    Ok(true)
}

const NEXT_SUFFIX: &str = ".dynamic.next";

/// The static file's text as `editStaticConfig` writes it.
fn edited_static(text: &str, dynamic: &Path, erase_client_address: bool) -> String {
    let entries = super::properties(text);
    let mut keys: Vec<&str> = Vec::new();
    for (_, key, _) in &entries {
        if !keys.contains(&key.as_str()) {
            keys.push(key);
        }
    }
    let mut out = String::new();
    for key in crate::java_order::properties_order(&keys) {
        let membership =
            ["server.", "group", "weight", "dynamicConfigFile", "peerType"].iter().any(|p| key.starts_with(p));
        let client = erase_client_address && key.starts_with("clientPort");
        if membership || client {
            continue;
        }
        // A repeated key keeps its first place and its last value, as in a Properties table.
        let value = entries.iter().rev().find(|(_, k, _)| k == key).map(|(_, _, v)| v.trim()).unwrap_or_default();
        out.push_str(&format!("{key}={value}\n"));
    }
    out.push_str(&format!("dynamicConfigFile={}\n", dynamic.display()));
    out
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn write_atomically(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let temp = with_suffix(target, ".tmp");
    let mut file = std::fs::File::create(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temp, target)?;
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What ZooKeeper 3.8 wrote for this zoo.cfg (member 1 of a 3-member ensemble with
    /// reconfigEnabled=true, after its first leader was established at zxid 0x100000000).
    #[test]
    fn files_as_zookeeper_wrote_them() {
        let dir = tempfile::tempdir().unwrap();
        let static_path = dir.path().join("zoo.cfg");
        let original = "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir=/tmp/rc/m1/data\nreconfigEnabled=true\n\
                        admin.enableServer=false\n4lw.commands.whitelist=*\n\
                        server.1=127.0.0.1:31881:31891;127.0.0.1:31801\n\
                        server.2=127.0.0.1:31882:31892;127.0.0.1:31802\n\
                        server.3=127.0.0.1:31883:31893;127.0.0.1:31803\n";
        std::fs::write(&static_path, original).unwrap();
        backup_static(&static_path).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("zoo.cfg.bak")).unwrap(), original);
        let members: Vec<String> = [3, 1, 2]
            .iter()
            .map(|n| format!("server.{n}=127.0.0.1:3188{n}:3189{n}:participant;127.0.0.1:3180{n}"))
            .collect();
        let dynamic = adopt_version(&static_path, &members, 0x1_0000_0000, true).unwrap();
        assert_eq!(dynamic, dir.path().join("zoo.cfg.dynamic.100000000"));
        assert_eq!(
            std::fs::read_to_string(&dynamic).unwrap(),
            "server.1=127.0.0.1:31881:31891:participant;127.0.0.1:31801\n\
             server.2=127.0.0.1:31882:31892:participant;127.0.0.1:31802\n\
             server.3=127.0.0.1:31883:31893:participant;127.0.0.1:31803"
        );
        let canonical = std::fs::canonicalize(&dynamic).unwrap();
        assert_eq!(
            std::fs::read_to_string(&static_path).unwrap(),
            format!(
                "admin.enableServer=false\ndataDir=/tmp/rc/m1/data\ntickTime=500\ninitLimit=10\n\
                 4lw.commands.whitelist=*\nsyncLimit=5\nreconfigEnabled=true\ndynamicConfigFile={}\n",
                canonical.display()
            )
        );
    }

    /// `zoo.cfg.dynamic.next` as `writeDynamicConfig(…, needKeepVersion = true)` writes it: the lines of
    /// the reconfig's membership text sorted as strings, version included; removed once that version
    /// (or a newer one) is in force, kept while an older one is activated.
    #[test]
    fn the_next_file_holds_a_logged_reconfiguration_until_it_is_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let static_path = dir.path().join("zoo.cfg");
        let text = b"server.2=127.0.0.1:2889:3889:participant;0.0.0.0:2182\n\
                     server.10=127.0.0.1:2898:3898:participant;0.0.0.0:2190\nversion=100000005";
        let next = write_next(&static_path, text).unwrap();
        assert_eq!(next, dir.path().join("zoo.cfg.dynamic.next"));
        assert_eq!(
            std::fs::read_to_string(&next).unwrap(),
            "server.10=127.0.0.1:2898:3898:participant;0.0.0.0:2190\n\
             server.2=127.0.0.1:2889:3889:participant;0.0.0.0:2182\nversion=100000005"
        );
        assert!(!retire_next(&static_path, 0x1_0000_0004).unwrap(), "an older version activated");
        assert!(next.exists());
        assert!(retire_next(&static_path, 0x1_0000_0005).unwrap());
        assert!(!next.exists());
        assert!(!retire_next(&static_path, 0x1_0000_0006).unwrap(), "nothing to remove");
    }
}
