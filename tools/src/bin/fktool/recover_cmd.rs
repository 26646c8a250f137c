//! `fktool recover`: start-up recovery as a dry run — what would load, from where, and what recovery
//! would cut — without changing a file (read-only recovery, no scratch copy of the data).

use std::path::Path;
use std::process::ExitCode;

use crate::state::{DataDirs, rebuild};

pub(crate) fn recover(data_dir: &Path, log_dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let recovered = rebuild(&DataDirs::resolve(data_dir, log_dir)?, None)?;
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
