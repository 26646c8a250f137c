//! Reloading stores when their files change (`client.certReload`, `sslQuorumReloadCertFiles`): their
//! modification times are looked at once a second, as ZooKeeper's FileChangeWatcher reacts to the
//! directory's change events.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// How often the files are looked at.
pub const POLL: Duration = Duration::from_secs(1);

/// Calls `changed` whenever one of `files` changed since the last look (appeared, vanished or was
/// rewritten); never returns.
pub fn watch(files: Vec<PathBuf>, mut changed: impl FnMut()) -> ! {
    let stamps = || files.iter().map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok()).collect::<Vec<_>>();
    let mut seen: Vec<Option<SystemTime>> = stamps();
    loop {
        std::thread::sleep(POLL);
        let now = stamps();
        if now != seen {
            seen = now;
            changed();
        }
    }
}
