//! Standard output for reports that may be long. A reader that stops early (`fktool tree … | head`)
//! ends the output quietly, as with other Unix tools, instead of the panic `println!` gives on a closed
//! pipe; the exit status still reports the command's verdict.

use std::io::{ErrorKind, Write};

use anyhow::Context;

/// Writes `text` to stdout.
pub(crate) fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    closed_pipe_is_fine(out.write_all(text.as_bytes()).and_then(|()| out.flush()))
}

/// The result of writing to stdout, with a closed pipe counted as success.
pub(crate) fn closed_pipe_is_fine(result: std::io::Result<()>) -> anyhow::Result<()> {
    match result {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}
