//! The AdminServer over real HTTP, beside ZooKeeper 3.8's: every command answers under each of its
//! names with the JSON keys a real ZooKeeper 3.8 gave (`tests/fixtures/zk38-admin-commands.json`,
//! recorded from Debian's package running its Jetty AdminServer, standalone, with one client session
//! holding an ephemeral and watches); on an ensemble, `leader`, `zabstate` and `voting_view` answer with
//! the keys of ZooKeeper's source (`Commands.java`), and a member that is not serving refuses what
//! needs a serving server, `ruok` included.

use std::collections::BTreeSet;
use std::time::Duration;

use fk_tests::TestServer;
use fk_tests::ensemble::{EnsembleSpec, Implementation, TestEnsemble};
use fk_tests::zk;
use serde_json::Value;

const ADMIN: &str = "admin.enableServer=true\nadmin.serverAddress=127.0.0.1\nadmin.serverPort=0";
const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/zk38-admin-commands.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("the fixture")).expect("fixture JSON")
}

fn strings(value: &Value) -> BTreeSet<String> {
    value.as_array().expect("a list").iter().map(|v| v.as_str().expect("a string").to_owned()).collect()
}

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().unwrap_or_else(|| panic!("an object: {value}")).keys().cloned().collect()
}

/// Where the server says its AdminServer listens (it was given port 0).
fn admin_address(log: &str) -> String {
    let at = log.split("AdminServer at http://").nth(1).expect("the AdminServer address is logged");
    at.split('/').next().expect("host:port").to_owned()
}

fn request(address: &str, method: &str, path: &str) -> (u16, String) {
    let response = fk_tests::http_request(address, method, path);
    (response.status, response.body)
}

fn command(address: &str, name: &str) -> Value {
    let (status, body) = request(address, "GET", &format!("/commands/{name}"));
    assert_eq!(status, 200, "{name}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {body}"))
}

#[test]
fn every_command_answers_with_zookeepers_keys() {
    let fixture = fixture();
    let server = TestServer::with_config(ADMIN);
    let address = admin_address(&server.log_text());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = runtime.block_on(async {
        let c = zk::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(&server.address())
            .await
            .unwrap();
        c.create("/w", b"x", &zk::persistent()).await.unwrap();
        c.create("/e", b"y", &zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all())).await.unwrap();
        let _watch = c.get_and_watch_data("/w").await.unwrap();
        c
    });
    let session = client.session_id().0;

    // Per-JVM figures are not ours to copy; everything else answers with ZooKeeper's keys exactly.
    let theirs = fixture["commands"].as_object().unwrap();
    for (name, their_keys) in theirs {
        let ours = command(&address, name);
        assert_eq!(ours["command"], Value::String(name.clone()), "{name}");
        match name.as_str() {
            "system_properties" => continue,
            "monitor" => {
                // Our figures are a subset of ZooKeeper's ~490 (plus our own, prefixed fk_, and two
                // that its mntr prints but its monitor command does not).
                let extra: Vec<String> = keys(&ours)
                    .difference(&strings(their_keys))
                    .filter(|k| {
                        !k.starts_with("fk_")
                            && !["watched_paths", "followers", "last_processed_zxid"].contains(&k.as_str())
                    })
                    .cloned()
                    .collect();
                assert!(extra.is_empty(), "monitor keys ZooKeeper does not have: {extra:?}");
                for key in [
                    "znode_count",
                    "num_alive_connections",
                    "avg_readlatency",
                    "p99_readlatency",
                    "cnt_fsynctime",
                    "snap_count",
                ] {
                    assert!(ours.get(key).is_some(), "monitor lacks {key}");
                }
            }
            _ => assert_eq!(keys(&ours), strings(their_keys), "{name}: {ours}"),
        }
        assert!(ours["error"].is_null() || name == "leader" || name == "set_trace_mask", "{name}: {ours}");
    }
    for (short, primary) in fixture["short_names"].as_object().unwrap() {
        assert_eq!(command(&address, short)["command"], *primary, "{short}");
    }

    let connections = command(&address, "connections");
    let entry = &connections["connections"][0];
    assert_eq!(keys(entry), strings(&fixture["connection_keys"]), "{entry}");
    assert_eq!(entry["session_id"], session, "{entry}");
    let stats = command(&address, "stats");
    assert_eq!(keys(&stats["connections"][0]), strings(&fixture["brief_connection_keys"]));
    assert_eq!(keys(&stats["server_stats"]), strings(&fixture["server_stats_keys"]));
    assert_eq!(keys(&stats["client_response"]), strings(&fixture["client_response_keys"]));
    assert_eq!(stats["node_count"], 7);
    let dump = command(&address, "dump");
    assert_eq!(dump["session_id_to_ephemeral_paths"][session.to_string()], serde_json::json!(["/e"]), "{dump}");
    let watches = command(&address, "watches");
    assert_eq!(watches["session_id_to_watched_paths"][session.to_string()], serde_json::json!(["/w"]), "{watches}");
    assert_eq!(command(&address, "watches_by_path")["path_to_session_ids"]["/w"], serde_json::json!([session]));
    assert_eq!(command(&address, "watch_summary")["num_total_watches"], 1);
    assert_eq!(command(&address, "monitor")["znode_count"], 7);

    // The trace mask: ZooKeeper's default, set through the admin command, read back by the 4-letter word.
    assert_eq!(command(&address, "gtmk")["tracemask"], 306);
    assert_eq!(command(&address, "stmk?traceMask=42")["tracemask"], 42);
    assert_eq!(server.four_letter("gtmk"), "42");
    let refused = command(&address, "stmk?traceMask=x");
    assert_eq!(refused["error"], "setTraceMask requires long traceMask argument, got x");

    let unknown = command(&address, "nope");
    assert_eq!((&unknown["command"], &unknown["error"]), (&Value::from("nope"), &Value::from("Unknown command: nope")));
    let (status, listing) = request(&address, "GET", "/commands");
    assert_eq!(status, 200);
    for name in theirs.keys() {
        assert!(listing.contains(&format!("<a href=\"/commands/{name}\">{name}</a>")), "{listing}");
    }
    assert_eq!(request(&address, "POST", "/commands/ruok").0, 405);
    assert_eq!(request(&address, "GET", "/elsewhere").0, 404);
    drop(client);
}

#[test]
fn ensemble_members_answer_the_quorum_commands_and_refuse_while_not_serving() {
    let spec = EnsembleSpec::uniform(Implementation::Ferrokeeper, 3, 0).with_ticks(200, 10, 5).with_extra(ADMIN);
    let mut ensemble = TestEnsemble::start(spec).unwrap_or_else(|e| panic!("cannot start the ensemble: {e}"));
    let leader = ensemble.wait_for_leader(Duration::from_secs(60));
    let follower = (leader + 1) % 3;
    let at = |ensemble: &TestEnsemble, i: usize| admin_address(&ensemble.log_text(i));

    let lead = command(&at(&ensemble, follower), "lead");
    assert_eq!(keys(&lead), ["command", "error", "is_leader", "leader_id", "leader_ip"].map(String::from).into());
    assert_eq!((&lead["is_leader"], &lead["leader_id"]), (&Value::from(false), &Value::from(leader as u64 + 1)));
    assert_eq!(lead["leader_ip"], "127.0.0.1");
    assert_eq!(command(&at(&ensemble, leader), "lead")["is_leader"], true);
    // A member restored alone would hold a history its ensemble does not have: refused, nothing changed.
    let auth = [("Authorization", "digest alice:secret")];
    let restore = fk_tests::http_exchange(&at(&ensemble, follower), "POST", "/commands/restore", &auth, b"snapshot");
    let answer: Value = serde_json::from_slice(&restore.body).expect("JSON");
    assert_eq!(restore.status, 500, "{answer}");
    assert!(answer["error"].as_str().is_some_and(|e| e.contains("standalone server only")), "{answer}");
    let zab = command(&at(&ensemble, leader), "zabstate");
    let zab_keys = [
        "client_address",
        "command",
        "election_address",
        "error",
        "is_leader",
        "last_zxid",
        "myid",
        "quorum_address",
        "voting",
        "zab_counter",
        "zab_epoch",
        "zabstate",
    ];
    assert_eq!(keys(&zab), zab_keys.map(String::from).into());
    assert_eq!(
        (&zab["zabstate"], &zab["voting"], &zab["myid"]),
        (&Value::from("broadcast"), &Value::from(true), &Value::from(leader as u64 + 1))
    );
    let view = command(&at(&ensemble, follower), "voting_view");
    let members = view["current_config"].as_object().expect("current_config");
    assert_eq!(members.len(), 3, "{view}");
    assert_eq!(
        keys(&members["1"]),
        ["clientAddress", "electionAddresses", "learnerType", "serverAddresses"].map(String::from).into()
    );
    assert!(command(&at(&ensemble, leader), "ruok")["error"].is_null());

    // Alone, the follower looks for a quorum: what needs a serving server is refused, as in 3.8.
    let other = (leader + 2) % 3;
    ensemble.kill(leader);
    ensemble.kill(other);
    let address = at(&ensemble, follower);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while command(&address, "ruok")["error"].is_null() {
        assert!(std::time::Instant::now() < deadline, "still serving without a quorum");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(command(&address, "ruok")["error"], NOT_SERVING);
    assert_eq!(command(&address, "srvr")["error"], NOT_SERVING);
    assert!(command(&address, "mntr")["error"].is_null(), "monitor answers anyway");
    // Looking, or briefly trying a leader a stale vote named: never broadcasting.
    let state = command(&address, "zabstate")["zabstate"].clone();
    assert!(state == "election" || state == "synchronization", "{state}");
}

/// A taken port stops start-up naming the keys, as ZooKeeper exits when its AdminServer cannot start.
#[test]
fn a_port_in_use_stops_start_up_naming_the_keys() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (code, log) =
        TestServer::expect_start_failure(|_| {}, &ADMIN.replace("serverPort=0", &format!("serverPort={port}")));
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains(&format!("cannot start the AdminServer on admin.serverAddress=127.0.0.1 admin.serverPort={port}")),
        "{log}"
    );
}
