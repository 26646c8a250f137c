//! A data directory written by ferrokeeper opens in Apache ZooKeeper 3.8 (Debian's package) with the
//! same tree, and ZooKeeper's own TxnLogToolkit and SnapshotFormatter read our files without error.
//! Skips with a printed reason where Java or the package is missing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fk_net::client::*;
use fk_net::jute::Jute;
use fk_tests::TestServer;
use fk_tests::raw::RawClient;

/// Debian's ZooKeeper classpath, or why it is unavailable.
fn zookeeper_classpath() -> Result<String, String> {
    if Command::new("java").arg("-version").output().is_err() {
        return Err("java not found".into());
    }
    let jar = Path::new("/usr/share/java/zookeeper.jar");
    if !jar.exists() {
        return Err(format!("{} not found (install Debian's zookeeper package)", jar.display()));
    }
    let mut jars: Vec<String> = std::fs::read_dir("/usr/share/java")
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jar"))
        .map(|p| p.display().to_string())
        .collect();
    jars.sort();
    Ok(format!("/etc/zookeeper/conf:{}", jars.join(":")))
}

fn java(classpath: &str, class: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("java").args(["-cp", classpath, class]).args(args).output().expect("run java");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

struct ZooKeeper {
    child: Child,
    port: u16,
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_zookeeper(classpath: &str, data_dir: &Path, work: &Path) -> ZooKeeper {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cfg = work.join("zk.cfg");
    let text = format!(
        "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=*\n",
        data_dir.display()
    );
    std::fs::write(&cfg, text).unwrap();
    let log = std::fs::File::create(work.join("zk.log")).unwrap();
    let child = Command::new("java")
        .args([
            "-Dzookeeper.extendedTypesEnabled=true",
            "-cp",
            classpath,
            "org.apache.zookeeper.server.quorum.QuorumPeerMain",
        ])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let zk = ZooKeeper { child, port };
    let deadline = Instant::now() + Duration::from_secs(60);
    // The port opens before the database is loaded; srvr answers "Mode:" once it serves.
    while !four_letter(port, "srvr").contains("Mode: standalone") {
        assert!(
            Instant::now() < deadline,
            "ZooKeeper did not start:\n{}",
            std::fs::read_to_string(work.join("zk.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    zk
}

fn four_letter(port: u16, command: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return String::new() };
    // ZooKeeper sometimes leaves a 4lw connection made during its start-up unanswered and open.
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let _ = s.write_all(command.as_bytes());
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    out.sort();
    out
}

fn create(c: &mut RawClient, path: &str, data: &[u8], flags: i32, acl: Vec<Acl>) -> i32 {
    let request = CreateRequest { path: path.into(), data: Some(data.to_vec()), acl, flags };
    c.call(&Request::Write(WriteOp::Create { op: OpCode::Create, request })).0.err()
}

#[test]
fn zookeeper_opens_our_data_directory() {
    let classpath = match zookeeper_classpath() {
        Ok(cp) => cp,
        Err(reason) => {
            eprintln!("SKIPPED: {reason}");
            return;
        }
    };
    let mut server = TestServer::with_config("snapCount=40\nextendedTypesEnabled=true");
    let open = vec![Acl::new(perms::ALL, "world", "anyone")];
    let digest = vec![Acl::new(perms::ALL, "digest", "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=")];
    let mut c = RawClient::connect(&server.address());
    assert_eq!(create(&mut c, "/app", b"hello", 0, open.clone()), 0);
    for i in 0..30 {
        assert_eq!(create(&mut c, "/app/seq-", format!("{i}").as_bytes(), 2, open.clone()), 0);
    }
    assert_eq!(create(&mut c, "/app/eph", b"", 1, open.clone()), 0);
    assert_eq!(create(&mut c, "/secret", b"s", 0, digest), 0);
    let multi = Request::Multi(vec![
        WriteOp::Create {
            op: OpCode::Create,
            request: CreateRequest { path: "/m".into(), data: None, acl: open.clone(), flags: 0 },
        },
        WriteOp::SetData(SetDataRequest { path: "/app".into(), data: Some(b"world".to_vec()), version: 0 }),
    ]);
    c.call(&multi);
    let failed = Request::Multi(vec![
        WriteOp::Create {
            op: OpCode::Create,
            request: CreateRequest { path: "/n".into(), data: None, acl: open.clone(), flags: 0 },
        },
        WriteOp::Check(CheckVersionRequest { path: "/app".into(), version: 99 }),
    ]);
    c.call(&failed);
    // A lone check (which ZooKeeper itself logs as a txn it then cannot replay) must leave our log
    // readable by ZooKeeper.
    c.call(&Request::Write(WriteOp::Check(CheckVersionRequest { path: "/app".into(), version: 1 })));
    c.call(&Request::Write(WriteOp::Check(CheckVersionRequest { path: "/app".into(), version: 7 })));
    let ttl = CreateTtlRequest { path: "/ttl".into(), data: None, acl: open.clone(), flags: 5, ttl: 3_600_000 };
    c.call(&Request::Write(WriteOp::CreateTtl(ttl)));
    let session = c.session_id;
    server.kill();

    let v2 = server.data_dir().join("version-2");
    for log in files(&v2, "log.") {
        let (ok, out) =
            java(&classpath, "org.apache.zookeeper.server.persistence.TxnLogToolkit", &[log.to_str().unwrap()]);
        assert!(
            ok && out.contains("EOF reached after") && !out.contains("Exception"),
            "TxnLogToolkit {}:\n{out}",
            log.display()
        );
    }
    for snap in files(&v2, "snapshot.") {
        let (ok, out) = java(&classpath, "org.apache.zookeeper.server.SnapshotFormatter", &[snap.to_str().unwrap()]);
        assert!(
            ok && out.contains("Last zxid:") && !out.contains("Exception"),
            "SnapshotFormatter {}:\n{out}",
            snap.display()
        );
    }

    let zk = start_zookeeper(&classpath, &server.data_dir(), server.dir.path());
    let mut z = RawClient::connect(&format!("127.0.0.1:{}", zk.port));
    let get = |z: &mut RawClient, path: &str| {
        let (reply, _) = z.call(&Request::GetData(PathWatchRequest { path: path.into(), watch: false }));
        (reply.err(), GetDataResponse::decode_exact(&reply.body).ok())
    };
    let (_, app) = get(&mut z, "/app");
    let app = app.unwrap();
    assert_eq!((app.data.as_deref(), app.stat.version, app.stat.num_children), (Some(&b"world"[..]), 1, 31));
    let (children, _) = z.call(&Request::GetChildren(PathWatchRequest { path: "/app".into(), watch: false }));
    let names = GetChildrenResponse::decode_exact(&children.body).unwrap().children;
    assert!(names.contains(&"seq-0000000029".to_owned()) && names.contains(&"eph".to_owned()));
    assert_eq!(get(&mut z, "/secret").0, ErrorCode::NoAuth.as_i32());
    assert_eq!(get(&mut z, "/m").0, 0);
    assert_eq!(get(&mut z, "/n").0, ErrorCode::NoNode.as_i32(), "the failed multi applied nothing");
    let (ttl, _) = z.call(&Request::Exists(PathWatchRequest { path: "/ttl".into(), watch: false }));
    assert_eq!(ttl.err(), 0);
    // Our session is alive in ZooKeeper too: it lists the ephemeral under its id.
    let mntr = four_letter(zk.port, "mntr");
    assert!(mntr.contains("zk_digest_mismatches_count\t0\n"), "ZooKeeper found our digests wrong:\n{mntr}");
    let dump = four_letter(zk.port, "dump");
    assert!(dump.contains(&format!("0x{session:x}:\n\t/app/eph")), "{dump}");
}
