//! kazoo scripts (tests/fixtures/kazoo, Debian's python3-kazoo under /usr/bin/python3): whether the
//! Python modules a script needs are there, and the one-line JSON report a script prints.

use std::process::Command;

pub const PYTHON: &str = "/usr/bin/python3";

/// Whether `/usr/bin/python3` imports `modules` (comma separated); prints why not, naming the Debian
/// `packages`, so the caller can skip.
pub fn available(modules: &str, packages: &str) -> bool {
    let found = Command::new(PYTHON).args(["-c", &format!("import {modules}")]).status().is_ok_and(|s| s.success());
    if !found {
        eprintln!("SKIPPED: {PYTHON} cannot import {modules} ({packages})");
    }
    found
}

/// Runs a prepared script command and reads its report; panics with what it printed if it fails.
pub fn report(command: &mut Command) -> serde_json::Value {
    let output = command.output().expect("run python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "kazoo: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("kazoo said {stdout:?}: {e}"))
}
