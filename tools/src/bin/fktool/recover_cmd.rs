//! `fktool recover`: start-up recovery as a dry run.

use std::path::Path;
use std::process::ExitCode;

use fk_engine::files::VERSION_DIR;

pub(crate) fn recover(data_dir: &Path, log_dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let snap = data_dir.join(VERSION_DIR);
    let log = log_dir.unwrap_or(data_dir).join(VERSION_DIR);
    // Work on a copy: recovery truncates torn tails, and this command must not change anything.
    let scratch = tempfile::tempdir()?;
    let (snap_copy, log_copy) = (scratch.path().join("snap"), scratch.path().join("log"));
    copy_dir(&snap, &snap_copy)?;
    copy_dir(&log, &log_copy)?;
    let recovered =
        fk_engine::recovery::recover(&snap_copy, &log_copy, fk_engine::tree::TreeOptions::fixed_seed(true))?;
    println!(
        "would recover to zxid 0x{:x}: {} nodes, {} sessions, {} txns replayed after {}",
        recovered.tree.last_processed_zxid(),
        recovered.tree.node_count(),
        recovered.tree.sessions().count(),
        recovered.replayed,
        recovered
            .snapshot
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "no snapshot".into())
    );
    if let Some((path, offset)) = recovered.truncated {
        println!(
            "would truncate the torn tail of {} at offset {offset}",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    let Ok(entries) = std::fs::read_dir(from) else { return Ok(()) };
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}
