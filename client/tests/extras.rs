//! fkcli's extras, kept scriptable: `--json`, `tree`, `watch-tail`, `stat --human`.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fk_client::{Client, CreateMode, Options, open_acl_unsafe};
use fk_tests::TestServer;
use serde_json::Value;

fn fkcli(server: &TestServer, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_fkcli"))
        .args(["-server", &server.address()])
        .args(args)
        .output()
        .expect("run fkcli");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code().unwrap_or(-1), text(&output.stdout), text(&output.stderr))
}

fn json(text: &str) -> Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not one JSON value ({e}): {text:?}"))
}

fn populate(server: &TestServer) -> Client {
    let client = Client::connect(&server.address(), Options::default()).unwrap();
    for path in ["/app", "/app/a", "/app/a/x", "/app/a/y", "/app/b"] {
        client.create(path, Some(b"v"), &open_acl_unsafe(), CreateMode::Persistent).unwrap();
    }
    client
}

#[test]
fn json_output_is_one_value_per_command_and_errors_carry_the_code() {
    let server = TestServer::start();
    let _client = populate(&server);
    let (status, stdout, _) = fkcli(&server, &["--json", "ls", "/app"]);
    assert_eq!(status, 0);
    assert_eq!(json(&stdout)["children"], serde_json::json!(["a", "b"]), "no 'Connecting to' noise: {stdout}");
    let (_, stdout, _) = fkcli(&server, &["--json", "get", "-s", "/app/a"]);
    let value = json(&stdout);
    assert_eq!((value["data"].as_str(), value["stat"]["numChildren"].as_i64()), (Some("v"), Some(2)));
    let (_, stdout, _) = fkcli(&server, &["--json", "getAcl", "/app"]);
    assert_eq!(json(&stdout)["acl"][0]["perms"], "cdrwa");
    let (status, stdout, stderr) = fkcli(&server, &["--json", "get", "/nope"]);
    assert_eq!((status, stdout.as_str()), (1, ""));
    let error = json(&stderr);
    assert_eq!((error["code"].as_str(), error["error"].as_str()), (Some("NoNode"), Some("Node does not exist: /nope")));
}

#[test]
fn tree_indents_and_counts() {
    let server = TestServer::start();
    let _client = populate(&server);
    let (status, stdout, _) = fkcli(&server, &["tree", "/app"]);
    assert_eq!(status, 0);
    let tree: Vec<&str> = stdout.lines().skip_while(|l| !l.starts_with("/app")).collect();
    assert_eq!(tree, ["/app (2 children, 4 descendants)", "  a (2 children, 2 descendants)", "    x", "    y", "  b"]);
    let (_, stdout, _) = fkcli(&server, &["tree", "-d", "1", "/app"]);
    assert!(stdout.contains("  a (2 children, 2 descendants)") && !stdout.contains("    x"), "{stdout}");
    let (status, _, stderr) = fkcli(&server, &["tree", "/nope"]);
    assert_eq!((status, stderr.trim()), (1, "Node does not exist: /nope"));
}

#[test]
fn stat_human_decodes_zxids_and_times() {
    let server = TestServer::start();
    let _client = populate(&server);
    let (status, stdout, _) = fkcli(&server, &["stat", "--human", "/app/a"]);
    assert_eq!(status, 0);
    assert!(stdout.contains("(epoch 0, counter "), "{stdout}");
    assert!(stdout.contains("versions  data 0, children 2, acl 0"), "{stdout}");
    assert!(stdout.contains("owner     none (persistent)"), "{stdout}");
    let (_, plain, _) = fkcli(&server, &["stat", "/app/a"]);
    assert!(plain.contains("cZxid = 0x"), "the zkCli shape stays the default: {plain}");
}

#[test]
fn watch_tail_streams_events_below_the_path() {
    let server = TestServer::start();
    let client = populate(&server);
    let mut tail = Command::new(env!("CARGO_BIN_EXE_fkcli"))
        .args(["-server", &server.address(), "watch-tail", "-n", "3", "/app"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start watch-tail");
    // The watch is in place some time after start: keep changing nodes below /app until the tail has
    // seen its three events and exited (each change is an event once the watch is there).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut next = 0;
    while tail.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "watch-tail saw fewer than 3 events");
        client.set_data("/app/a/x", Some(next.to_string().as_bytes()), -1).unwrap();
        next += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut stdout = String::new();
    tail.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    // Before the events: zkCli's "Connecting to" and the connection's own WATCHER:: lines.
    let events: Vec<&str> = stdout.lines().filter(|l| l.starts_with("Node")).collect();
    assert_eq!(events, ["NodeDataChanged /app/a/x"; 3], "{stdout}");
    assert!(tail.wait().unwrap().success());
}
