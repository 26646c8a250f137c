//! The binary's command line and start-up errors.

use std::process::Command;

fn ferrokeeper() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ferrokeeper"))
}

#[test]
fn a_bad_value_stops_start_up_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(&cfg, "dataDir=/tmp/x\nclientPort=2181\ntickTime=soon\n").unwrap();
    let out = ferrokeeper().arg(&cfg).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{}:3: tickTime: 'soon' is not a valid integer", cfg.display())), "{stderr}");
}

#[test]
fn a_missing_file_and_an_incomplete_ensemble_config_are_refused_clearly() {
    let out = ferrokeeper().arg("/nonexistent/zoo.cfg").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/zoo.cfg"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("myid"), "1\n").unwrap();
    let cfg = dir.path().join("zoo.cfg");
    let text =
        format!("dataDir={}\nclientPort=2181\nserver.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\n", dir.path().display());
    std::fs::write(&cfg, text).unwrap();
    let out = ferrokeeper().arg(&cfg).output().unwrap();
    assert!(!out.status.success());
    // An ensemble needs initLimit and syncLimit (ZooKeeper refuses it the same way).
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{}: initLimit is not set", cfg.display())), "{stderr}");
}

#[test]
fn version_and_help() {
    let out = ferrokeeper().arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ferrokeeper "));
    let out = ferrokeeper().arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("usage: ferrokeeper [path/to/zoo.cfg]"));
}
