//! The 4-letter words, their whitelist, and the counters they report.

use fk_net::client::*;
use fk_tests::TestServer;
use fk_tests::raw::RawClient;

fn create(path: &str, flags: i32) -> Request {
    let acl = vec![Acl::new(perms::ALL, "world", "anyone")];
    Request::Write(WriteOp::Create {
        op: OpCode::Create,
        request: CreateRequest { path: path.into(), data: None, acl, flags },
    })
}

#[test]
fn every_word_answers_in_zookeepers_format() {
    let server = TestServer::start();
    let mut a = RawClient::connect(&server.address());
    let mut b = RawClient::connect(&server.address());
    a.call(&create("/w", 0));
    a.call(&create("/w/e", 1));
    a.call(&Request::GetData(PathWatchRequest { path: "/w".into(), watch: true }));
    a.call(&Request::GetChildren(PathWatchRequest { path: "/w".into(), watch: true }));
    b.call(&Request::Exists(PathWatchRequest { path: "/w/e".into(), watch: true }));
    b.call(&Request::AddWatch(AddWatchRequest { path: "/w".into(), mode: 1 }));

    assert_eq!(server.four_letter("ruok"), "imok");
    let srvr = server.four_letter("srvr");
    for line in [
        "Zookeeper version: 3.8.0-ferrokeeper",
        "Latency min/avg/max: ",
        "Received: ",
        "Sent: ",
        "Connections: 2",
        "Outstanding: 0",
        "Mode: standalone",
        "Node count: 7",
    ] {
        assert!(srvr.contains(line), "srvr lacks {line:?}:\n{srvr}");
    }
    assert!(srvr.contains("Zxid: 0x4\n"), "two sessions and two creates: {srvr}");
    let stat = server.four_letter("stat");
    assert!(stat.contains("Clients:\n /127.0.0.1:") && stat.contains("[1](queued=0,recved="), "{stat}");
    let cons = server.four_letter("cons");
    assert_eq!(cons.lines().filter(|l| l.contains(",sid=0x")).count(), 2, "{cons}");
    assert!(cons.contains(&format!("sid=0x{:x},lop=", a.session_id)) && cons.ends_with(")\n\n"), "{cons}");
    assert_eq!(server.four_letter("wchs"), "2 connections watching 2 paths\nTotal watches:3\n");
    assert_eq!(server.four_letter("wchc"), {
        let (first, second) =
            if a.session_id < b.session_id { (a.session_id, b.session_id) } else { (b.session_id, a.session_id) };
        let lines = |s: i64| if s == a.session_id { "\t/w\n".to_owned() } else { "\t/w\n\t/w/e\n".to_owned() };
        format!("0x{first:x}\n{}0x{second:x}\n{}\n", lines(first), lines(second))
    });
    let wchp = server.four_letter("wchp");
    assert!(wchp.starts_with("/w\n\t0x") && wchp.contains("/w/e\n\t0x"), "{wchp}");
    let dump = server.four_letter("dump");
    assert!(dump.starts_with("SessionTracker dump:\nSession Sets ("), "{dump}");
    assert!(
        dump.contains(&format!(
            "ephemeral nodes dump:\nSessions with Ephemerals (1):\n0x{:x}:\n\t/w/e\n",
            a.session_id
        )),
        "{dump}"
    );
    let conf = server.four_letter("conf");
    assert!(conf.starts_with(&format!("clientPort={}\nsecureClientPort=-1\ndataDir=", server.port)), "{conf}");
    assert!(
        conf.contains("tickTime=100\nmaxClientCnxns=60\nminSessionTimeout=200\nmaxSessionTimeout=60000\n"),
        "{conf}"
    );
    let mntr = server.four_letter("mntr");
    assert!(mntr.contains("zk_server_state\tstandalone\n") && mntr.contains("zk_znode_count\t7\n"), "{mntr}");
    assert!(mntr.contains("zk_ephemerals_count\t1\n") && mntr.contains("zk_global_sessions\t2\n"), "{mntr}");
    assert!(server.four_letter("envi").starts_with("Environment:\nzookeeper.version=3.8.0-ferrokeeper"));
    assert!(server.four_letter("dirs").starts_with("datadir_size: "));
    assert_eq!(server.four_letter("isro"), "rw");
    // ZooTrace's default mask, as ZooKeeper 3.8 answers it.
    assert_eq!(server.four_letter("gtmk"), "306");
    assert_eq!(server.four_letter("crst"), "Connection stats reset.\n");
    assert_eq!(server.four_letter("srst"), "Server stats reset.\n");
    assert!(server.four_letter("srvr").contains("Received: 0\nSent: 0\n"));
}

#[test]
fn the_whitelist_defaults_to_srvr_only() {
    let server = TestServer::with_config("4lw.commands.whitelist=srvr");
    assert!(server.four_letter("srvr").starts_with("Zookeeper version:"));
    assert_eq!(server.four_letter("ruok"), "ruok is not executed because it is not in the whitelist.\n");
    assert_eq!(server.four_letter("dump"), "dump is not executed because it is not in the whitelist.\n");
    // Not a 4-letter word at all: read as a huge frame length and closed, as ZooKeeper does.
    assert_eq!(server.four_letter("abcd"), "");
    let mut c = RawClient::connect(&server.address());
    assert_eq!(c.call(&Request::Ping).0.err(), 0);
}
