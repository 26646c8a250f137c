//! `fktool snap …`: snapshot files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use fk_engine::files::{SNAPSHOT_PREFIX, parse_name};
use fk_engine::snap::{load_snapshot, looks_complete};

#[derive(Subcommand)]
pub(crate) enum SnapCommand {
    /// Prints the summary, and every node with `--nodes`.
    Dump {
        file: PathBuf,
        #[arg(long)]
        nodes: bool,
    },
    /// Checks the checksums; exit status 0 = valid, 2 = not.
    Verify { file: PathBuf },
}

pub(crate) fn run(command: SnapCommand) -> anyhow::Result<ExitCode> {
    match command {
        SnapCommand::Dump { file, nodes } => snap_dump(&file, nodes),
        SnapCommand::Verify { file } => snap_verify(&file),
    }
}

fn snapshot_zxid(file: &Path) -> i64 {
    file.file_name().and_then(|n| n.to_str()).and_then(|n| parse_name(n, SNAPSHOT_PREFIX)).unwrap_or(0)
}

fn snap_dump(file: &Path, nodes: bool) -> anyhow::Result<ExitCode> {
    let (tree, info) = load_snapshot(file, snapshot_zxid(file), fk_engine::tree::TreeOptions::fixed_seed(true))?;
    println!(
        "{}: {} nodes, {} sessions, last zxid 0x{:x}",
        file.display(),
        info.nodes,
        tree.sessions().count(),
        tree.last_processed_zxid()
    );
    if let Some((zxid, _)) = info.digest {
        println!("digest zxid 0x{zxid:x}");
    }
    for (id, timeout) in tree.sessions() {
        println!("session 0x{id:x} timeout {timeout} ephemerals {}", tree.ephemerals_of(id).count());
    }
    if nodes {
        let mut all: Vec<_> = tree.iter().collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        for (path, node) in all {
            let s = tree.client_stat(node);
            println!(
                "{path} czxid=0x{:x} mzxid=0x{:x} version={} cversion={} aversion={} owner=0x{:x} bytes={}",
                s.czxid, s.mzxid, s.version, s.cversion, s.aversion, node.stat.ephemeral_owner, s.data_length
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn snap_verify(file: &Path) -> anyhow::Result<ExitCode> {
    if !looks_complete(file) {
        println!("INCOMPLETE: {} does not end with the \"/\" trailer", file.display());
        return Ok(ExitCode::from(2));
    }
    match load_snapshot(file, snapshot_zxid(file), fk_engine::tree::TreeOptions::fixed_seed(true)) {
        Ok((_, info)) => {
            println!("{}: valid, {} nodes", file.display(), info.nodes);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("CORRUPT: {e}");
            Ok(ExitCode::from(2))
        }
    }
}
