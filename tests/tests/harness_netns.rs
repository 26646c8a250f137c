//! The network lab proven: TCP across namespaces works, is cut by isolate/cut/cut_one_way and works
//! again once healed; leftovers of a killed run are swept; and a Java ZooKeeper ensemble whose leader is
//! isolated elects a new one, the isolated member stops serving, and after rejoining it follows.
//! Skips with a printed reason where namespaces cannot be made (not root, no `ip`/`nft`) or where Java
//! or Debian's ZooKeeper is missing.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fk_tests::ensemble::{EnsembleSpec, Implementation, Mode, TestEnsemble};
use fk_tests::netns::{Lab, LabError};
use fk_tests::server_binary;

/// A cut path is detected by this timeout expiring: small, but far above a healthy connect on a bridge.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
const PORT: u16 = 2181;

fn lab_or_skip(members: usize) -> Option<Lab> {
    match Lab::new(members) {
        Ok(lab) => Some(lab),
        Err(reason) => {
            eprintln!("SKIPPED: cannot build a network lab: {reason}");
            None
        }
    }
}

/// A standalone ferrokeeper inside a lab namespace: something to connect to.
struct Listener {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listen(lab: &Lab, i: usize) -> Listener {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = dir.path().join("zoo.cfg");
    let text = format!(
        "tickTime=2000\nclientPort={PORT}\nclientPortAddress={}\ndataDir={}\n4lw.commands.whitelist=*\npreAllocSize=1024\nadmin.enableServer=false\n",
        lab.ip(i),
        dir.path().join("data").display()
    );
    std::fs::write(&cfg, text).expect("write zoo.cfg");
    let log = std::fs::File::create(dir.path().join("server.log")).expect("create log");
    let child = lab.command(i, server_binary()).arg(&cfg).stdout(Stdio::null()).stderr(log).spawn().expect("spawn");
    let mut listener = Listener { child, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect_timeout(&address(lab, i), PROBE_TIMEOUT).is_err() {
        if let Ok(Some(status)) = listener.child.try_wait() {
            panic!("ferrokeeper in namespace {i} exited with {status}");
        }
        assert!(Instant::now() < deadline, "ferrokeeper in namespace {i} did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    listener
}

fn address(lab: &Lab, i: usize) -> SocketAddr {
    SocketAddr::new(lab.ip(i).into(), PORT)
}

/// Where a probe starts: the root namespace (where tests and their clients run) or a member.
#[derive(Debug, Clone, Copy)]
enum Origin {
    Root,
    Member(usize),
}

fn connects(lab: &Lab, from: Origin, to: usize) -> bool {
    match from {
        Origin::Root => TcpStream::connect_timeout(&address(lab, to), PROBE_TIMEOUT).is_ok(),
        Origin::Member(i) => lab.can_connect(i, address(lab, to), PROBE_TIMEOUT),
    }
}

/// Whether member `at` holds a half-open connection (SYN received, SYN-ACK unanswered) from member
/// `peer`: proof that `peer`'s SYN crossed although the handshake failed.
fn syn_received_from(lab: &Lab, at: usize, peer: usize) -> bool {
    let output = lab.command(at, "ss").args(["-Htn", "state", "syn-recv"]).output().expect("run ss");
    String::from_utf8_lossy(&output.stdout).contains(&format!("{}:", lab.ip(peer)))
}

/// Every probed path and whether it must connect, checked in parallel (a cut path costs a timeout).
fn check_paths(lab: &Lab, step: &str, expected: &[(Origin, usize, bool)]) {
    std::thread::scope(|scope| {
        let probes: Vec<_> = expected
            .iter()
            .map(|&(from, to, ok)| (from, to, ok, scope.spawn(move || connects(lab, from, to))))
            .collect();
        for (from, to, ok, probe) in probes {
            assert_eq!(probe.join().expect("probe thread"), ok, "after {step}: {from:?} -> member {to}");
        }
    });
}

#[test]
fn tcp_across_namespaces_is_cut_and_healed() {
    let Some(lab) = lab_or_skip(3) else { return };
    let _servers = [listen(&lab, 0), listen(&lab, 1)];
    use Origin::{Member as M, Root};
    let healthy =
        [(Root, 0, true), (Root, 1, true), (M(1), 0, true), (M(2), 0, true), (M(0), 1, true), (M(2), 1, true)];
    check_paths(&lab, "start", &healthy);

    lab.cut(0, 1);
    check_paths(
        &lab,
        "cut(0, 1)",
        &[(M(1), 0, false), (M(0), 1, false), (M(2), 0, true), (M(2), 1, true), (Root, 0, true)],
    );
    lab.heal(0, 1);
    check_paths(&lab, "heal(0, 1)", &healthy);

    // One way: 1's frames to 0 are dropped, 0's reach 1. TCP fails both ways (the handshake needs both
    // directions), but only 0's SYN arrives: 1 holds it half-open, 0 holds nothing from 1.
    lab.cut_one_way(1, 0);
    check_paths(&lab, "cut_one_way(1, 0)", &[(M(1), 0, false), (M(0), 1, false), (M(2), 0, true), (M(2), 1, true)]);
    assert!(syn_received_from(&lab, 1, 0), "0's SYN must reach 1");
    assert!(!syn_received_from(&lab, 0, 1), "1's SYN must not reach 0");
    lab.heal(1, 0);
    check_paths(&lab, "heal(1, 0)", &healthy);

    lab.isolate(0);
    let isolated =
        [(Root, 0, false), (M(1), 0, false), (M(2), 0, false), (M(0), 1, false), (Root, 1, true), (M(2), 1, true)];
    check_paths(&lab, "isolate(0)", &isolated);
    lab.rejoin(0);
    check_paths(&lab, "rejoin(0)", &healthy);
    assert_eq!(lab.faults(), Default::default());
}

#[test]
fn leftovers_of_a_killed_run_are_swept() {
    // A lab whose owner died before its Drop ran, made by hand: a namespace, its veth, the bridge.
    let mut dead = Command::new("true").spawn().expect("spawn true");
    let dead_pid = dead.id();
    dead.wait().expect("wait");
    let namespace = format!("fk-{dead_pid}-0-0");
    let (bridge, port) = ("fkbr249", "fk249v0");
    let ip = |args: &[&str]| Command::new("ip").args(args).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if !ip(&["netns", "add", &namespace]) {
        eprintln!("SKIPPED: cannot make a fake leftover namespace (not root?)");
        return;
    }
    // A concurrent test's Lab::new may sweep these while they are being made: then they are gone all the
    // same. A live lab's bridge of that name is never touched (nor its alias overwritten).
    let bridge_made = ip(&["link", "add", bridge, "type", "bridge"])
        && ip(&["link", "set", bridge, "alias", &format!("fk-{dead_pid}-0")]);
    if ip(&["link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", &namespace]) && bridge_made {
        ip(&["link", "set", port, "master", bridge]);
    }
    let Some(lab) = lab_or_skip(1) else { return };
    let namespaces = Command::new("ip").args(["netns", "list"]).output().expect("ip netns list").stdout;
    assert!(!String::from_utf8_lossy(&namespaces).contains(&namespace), "leftover namespace {namespace} kept");
    assert!(!bridge_made || !Path::new("/sys/class/net").join(bridge).exists(), "leftover bridge kept");
    assert!(!Path::new("/sys/class/net").join(port).exists(), "leftover port kept");
    // The live lab works.
    let _server = listen(&lab, 0);
    assert!(connects(&lab, Origin::Root, 0));
}

#[test]
fn lab_errors_say_why() {
    let reasons = [
        (LabError::NotRoot, "root"),
        (LabError::NoFreeSubnet, "subnet"),
        (LabError::TooManyMembers(300), "300 members"),
        (
            LabError::Command { command: "ip netns add x".into(), stderr: "Permission denied\n".into() },
            "Permission denied",
        ),
    ];
    for (error, needle) in reasons {
        assert!(error.to_string().contains(needle), "{error}");
    }
    assert!(matches!(Lab::new(300), Err(LabError::TooManyMembers(300))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_leader_isolated_then_rejoined() {
    let spec = EnsembleSpec::uniform(Implementation::ZooKeeper, 3, 0).with_ticks(200, 10, 5);
    if let Some(reason) = spec.unavailable() {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    let Some(lab) = lab_or_skip(3) else { return };
    let mut ensemble = TestEnsemble::start_in_lab(spec, lab).expect("availability checked above");
    let leader = ensemble.wait_for_leader(Duration::from_secs(60));
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();

    // Followers stop hearing the leader; after syncLimit (5 ticks = 1 s) they elect among themselves.
    let isolated_at = Instant::now();
    ensemble.lab().isolate(leader);
    let new_leader = ensemble.wait_for_leader_among(&others, Duration::from_secs(30));
    let elected_after = isolated_at.elapsed();
    assert_ne!(new_leader, leader);
    // The isolated leader loses its quorum of synced followers and stops serving (asked from inside its
    // own namespace: clients outside cannot reach it at all).
    ensemble.wait_for_mode(leader, None, Duration::from_secs(30));
    let stopped_after = isolated_at.elapsed();
    assert!(
        TcpStream::connect_timeout(&ensemble.client_address(leader), PROBE_TIMEOUT).is_err(),
        "clients must not reach an isolated member"
    );

    let rejoined_at = Instant::now();
    ensemble.lab().rejoin(leader);
    assert_eq!(ensemble.wait_for_leader(Duration::from_secs(90)), new_leader);
    assert_eq!(ensemble.mode(leader), Some(Mode::Follower));
    eprintln!(
        "MEASURED: Java ZooKeeper 3.8 in a lab (tickTime=200 syncLimit=5): leader isolated -> new leader \
         settled in {} ms, isolated leader stopped serving after {} ms; rejoined -> following in {} ms",
        elected_after.as_millis(),
        stopped_after.as_millis(),
        rejoined_at.elapsed().as_millis()
    );
}
