//! systemd's readiness protocol: with `NOTIFY_SOCKET` set (as under `Type=notify`), a standalone server
//! sends `READY=1` once it serves; an ensemble member sends only a `STATUS=` while it has no quorum and
//! `READY=1` once it joins one. And `packaging/systemd/ferrokeeper.service` passes `systemd-analyze verify`.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fk_tests::server_binary;

/// A socket standing in for systemd's, and the messages it received.
struct Listener {
    socket: UnixDatagram,
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl Listener {
    fn new() -> Listener {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        Listener { socket, _dir: dir, path }
    }

    /// Messages until one contains `wanted`, within `limit`; all of them, or `None` if it never came.
    fn until(&self, wanted: &str, limit: Duration) -> Option<Vec<String>> {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            self.socket.set_read_timeout(Some(left.max(Duration::from_millis(1)))).unwrap();
            let Ok(n) = self.socket.recv(&mut buf) else { break };
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            let found = message.contains(wanted);
            seen.push(message);
            if found {
                return Some(seen);
            }
        }
        None
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start(dir: &Path, config: &str, notify: Option<&Path>) -> Child {
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let cfg = dir.join("zoo.cfg");
    std::fs::write(&cfg, format!("dataDir={}\nadmin.enableServer=false\n{config}", dir.join("data").display()))
        .unwrap();
    let mut command = Command::new(server_binary());
    command.arg(&cfg).env_remove("NOTIFY_SOCKET").stdout(Stdio::null()).stderr(Stdio::null());
    if let Some(path) = notify {
        command.env("NOTIFY_SOCKET", path);
    }
    command.spawn().expect("start ferrokeeper")
}

struct Killed(Vec<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn a_standalone_server_is_ready_once_it_serves() {
    let listener = Listener::new();
    let dir = tempfile::tempdir().unwrap();
    let _server = Killed(vec![start(
        dir.path(),
        "tickTime=2000\nclientPort=0\nclientPortAddress=127.0.0.1\n",
        Some(&listener.path),
    )]);
    let seen = listener.until("READY=1", Duration::from_secs(30)).expect("READY=1 within 30 s");
    assert_eq!(seen.last().unwrap(), "READY=1\nSTATUS=serving clients (standalone)");
}

#[test]
fn an_ensemble_member_is_ready_only_once_in_a_quorum() {
    let ports: Vec<[u16; 3]> = (0..3).map(|_| [free_port(), free_port(), free_port()]).collect();
    let servers: String = ports
        .iter()
        .enumerate()
        .map(|(i, [_, quorum, election])| format!("server.{}=127.0.0.1:{quorum}:{election}\n", i + 1))
        .collect();
    let config = |i: usize| {
        format!(
            "tickTime=200\ninitLimit=10\nsyncLimit=5\nclientPort={}\nclientPortAddress=127.0.0.1\n{servers}",
            ports[i][0]
        )
    };
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    for (i, dir) in dirs.iter().enumerate() {
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("data/myid"), format!("{}\n", i + 1)).unwrap();
    }
    let listener = Listener::new();
    let mut members = Killed(vec![start(dirs[0].path(), &config(0), Some(&listener.path))]);
    // Alone, it looks for a quorum and says so, but is not ready.
    let alone = listener.until("READY=1", Duration::from_secs(3));
    assert!(alone.is_none(), "ready without a quorum: {alone:?}");
    members.0.push(start(dirs[1].path(), &config(1), None));
    members.0.push(start(dirs[2].path(), &config(2), None));
    let seen = listener.until("READY=1", Duration::from_secs(60)).expect("READY=1 once in a quorum");
    let ready = seen.last().unwrap();
    assert!(
        ready == "READY=1\nSTATUS=serving clients (leader)" || ready == "READY=1\nSTATUS=serving clients (follower)",
        "{seen:?}"
    );
}

#[test]
fn the_unit_file_verifies() {
    let Ok(output) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("SKIPPED: systemd-analyze is not installed");
        return;
    };
    assert!(output.status.success());
    let unit = concat!(env!("CARGO_MANIFEST_DIR"), "/../packaging/systemd/ferrokeeper.service");
    let dir = tempfile::tempdir().unwrap();
    // verify checks that ExecStart's program exists: point it at this build's binary.
    let text = std::fs::read_to_string(unit).unwrap();
    assert!(text.contains("Type=notify") && text.contains("LimitNOFILE=") && text.contains("Restart=on-failure"));
    let copy = dir.path().join("ferrokeeper.service");
    std::fs::write(&copy, text.replace("/usr/bin/ferrokeeper", &server_binary().display().to_string())).unwrap();
    let verify = Command::new("systemd-analyze").arg("verify").arg(&copy).output().expect("run systemd-analyze");
    let said = String::from_utf8_lossy(&verify.stderr).into_owned() + &String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success() && said.trim().is_empty(), "systemd-analyze verify: {said}");
}
