//! `fktool snap …`: snapshot files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
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
    /// Sizes, the biggest subtrees and widest nodes, ephemerals per session, ACL use: of one snapshot
    /// file as it is, or of a dataDir's recovered state (snapshot + logs).
    Stats {
        /// A snapshot file, or a dataDir (containing version-2/).
        input: PathBuf,
        /// The dataLogDir, if separate (with a dataDir).
        #[arg(long)]
        log_dir: Option<PathBuf>,
        /// How many entries each "top" list shows.
        #[arg(long, default_value_t = 10)]
        top: usize,
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(command: SnapCommand) -> anyhow::Result<ExitCode> {
    match command {
        SnapCommand::Dump { file, nodes } => snap_dump(&file, nodes),
        SnapCommand::Verify { file } => snap_verify(&file),
        SnapCommand::Stats { input, log_dir, top, json } => {
            crate::snap_stats::run(&input, log_dir.as_deref(), top, json)
        }
    }
}

fn snapshot_zxid(file: &Path) -> i64 {
    crate::state::snapshot_zxid(file)
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
