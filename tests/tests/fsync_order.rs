//! No reply leaves before its batch is durable, batches share one fsync, and a failed fsync stops the
//! server without acknowledging anything. SIGKILL cannot show this (the page cache survives a killed
//! process), so these tests run the server in-process with a log device whose fsync the test controls.

use std::io;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use ferrokeeper::config::Config;
use ferrokeeper::pipeline::{Server, Storage};
use fk_engine::log::{LogDevice, PwriteDevice};
use fk_net::client::*;
use fk_net::jute::Jute;
use fk_tests::raw::RawClient;

#[derive(Default)]
struct GateState {
    hold: bool,
    fail_next: bool,
    syncs_started: u64,
    syncs_done: u64,
}

#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

impl Gate {
    fn set(&self, f: impl FnOnce(&mut GateState)) {
        f(&mut self.state.lock().unwrap());
        self.changed.notify_all();
    }

    fn get<R>(&self, f: impl FnOnce(&GateState) -> R) -> R {
        f(&self.state.lock().unwrap())
    }

    /// Waits until `cond` holds (or 5 s pass).
    fn wait_for(&self, cond: impl Fn(&GateState) -> bool) {
        let guard = self.state.lock().unwrap();
        let (_guard, timeout) = self.changed.wait_timeout_while(guard, Duration::from_secs(5), |s| !cond(s)).unwrap();
        assert!(!timeout.timed_out(), "condition not reached in 5 s");
    }
}

/// Writes for real, but holds or fails the fsync as the test says.
struct GatedDevice(Arc<Gate>);

impl LogDevice for GatedDevice {
    fn write_and_sync(
        &mut self,
        file: &dyn fk_engine::fs::FsFile,
        bytes: &[u8],
        offset: u64,
        sync: bool,
    ) -> io::Result<()> {
        PwriteDevice.write_and_sync(file, bytes, offset, false)?;
        if !sync {
            return Ok(());
        }
        let mut state = self.0.state.lock().unwrap();
        state.syncs_started += 1;
        self.0.changed.notify_all();
        while state.hold {
            state = self.0.changed.wait(state).unwrap();
        }
        if std::mem::take(&mut state.fail_next) {
            return Err(io::Error::from_raw_os_error(EIO));
        }
        file.sync_data()?;
        state.syncs_done += 1;
        self.0.changed.notify_all();
        Ok(())
    }

    fn name(&self) -> &'static str {
        "gated test device"
    }
}

/// Linux's EIO: what a failing disk reports on fsync.
const EIO: i32 = 5;

struct InProcess {
    address: String,
    gate: Arc<Gate>,
    fatal: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
    _server: Server,
}

fn start() -> InProcess {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "tickTime=100\nclientPort=0\nclientPortAddress=127.0.0.1\ndataDir={}\npreAllocSize=64\nadmin.enableServer=false\n",
        dir.path().display()
    );
    let config = Config::parse(&text, "test.cfg").unwrap();
    let ferrokeeper::storage::Opened { dirs, recovered, damaged } = ferrokeeper::storage::open(&config).unwrap();
    let gate = Arc::new(Gate::default());
    let fatal = Arc::new(Mutex::new(Vec::new()));
    let sink = fatal.clone();
    let storage = Storage {
        dirs,
        recovered,
        damaged,
        device: Box::new(GatedDevice(gate.clone())),
        on_fatal: Box::new(move |m| sink.lock().unwrap().push(m.to_owned())),
    };
    let server = Server::start(config, storage).unwrap();
    InProcess { address: server.client_addr.to_string(), gate, fatal, _dir: dir, _server: server }
}

fn set(path: &str, data: &[u8]) -> Request {
    Request::Write(WriteOp::SetData(SetDataRequest { path: path.into(), data: Some(data.to_vec()), version: -1 }))
}

fn read(c: &mut RawClient, path: &str) -> Vec<u8> {
    let (reply, _) = c.call(&Request::GetData(PathWatchRequest { path: path.into(), watch: false }));
    GetDataResponse::decode_exact(&reply.body).unwrap().data.unwrap_or_default()
}

fn setup(server: &InProcess) -> (RawClient, RawClient) {
    let mut writer = RawClient::connect(&server.address);
    let reader = RawClient::connect(&server.address);
    let request = CreateRequest {
        path: "/n".into(),
        data: Some(b"old".to_vec()),
        acl: vec![Acl::new(31, "world", "anyone")],
        flags: 0,
    };
    assert_eq!(writer.call(&Request::Write(WriteOp::Create { op: OpCode::Create, request })).0.err(), 0);
    (writer, reader)
}

#[test]
fn a_reply_waits_for_its_fsync() {
    let server = start();
    let (mut writer, mut reader) = setup(&server);
    server.gate.set(|s| s.hold = true);
    let started = server.gate.get(|s| s.syncs_started);
    writer.send(&set("/n", b"new"));
    server.gate.wait_for(|s| s.syncs_started > started);
    writer.stream.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    assert!(writer.recv().is_none(), "no reply while the fsync is held");
    assert_eq!(read(&mut reader, "/n"), b"old", "an undurable write is not visible to readers either");
    server.gate.set(|s| s.hold = false);
    writer.stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let reply = writer.recv().expect("the reply once the fsync completed");
    assert_eq!(reply.err(), 0);
    assert_eq!(read(&mut reader, "/n"), b"new");
}

#[test]
fn writes_that_arrive_during_an_fsync_share_the_next_one() {
    let server = start();
    let (mut first, _) = setup(&server);
    let mut clients: Vec<RawClient> = (0..5).map(|_| RawClient::connect(&server.address)).collect();
    server.gate.set(|s| s.hold = true);
    first.send(&set("/n", b"0"));
    server.gate.wait_for(|s| s.hold && s.syncs_started > 0);
    let before = server.gate.get(|s| s.syncs_done);
    for (i, c) in clients.iter_mut().enumerate() {
        for j in 0..20 {
            c.send(&set("/n", format!("{i}-{j}").as_bytes()));
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    server.gate.set(|s| s.hold = false);
    assert_eq!(first.recv().unwrap().err(), 0);
    for c in &mut clients {
        for _ in 0..20 {
            assert_eq!(c.recv().unwrap().err(), 0);
        }
    }
    let syncs = server.gate.get(|s| s.syncs_done) - before;
    assert!(syncs <= 5, "101 writes took {syncs} fsyncs; those that queued behind the held one should share one");
}

#[test]
fn a_failed_fsync_stops_the_server_without_acknowledging() {
    let server = start();
    let (mut writer, mut reader) = setup(&server);
    server.gate.set(|s| s.fail_next = true);
    writer.send(&set("/n", b"lost"));
    writer.stream.set_read_timeout(Some(Duration::from_millis(800))).unwrap();
    assert!(writer.recv().is_none(), "a write whose fsync failed must not be acknowledged");
    let fatal = server.fatal.lock().unwrap().clone();
    assert_eq!(fatal.len(), 1, "{fatal:?}");
    assert!(
        fatal[0].contains("cannot write or sync the txn log") && fatal[0].contains("Input/output error"),
        "{fatal:?}"
    );
    assert_eq!(read(&mut reader, "/n"), b"old", "nothing of the failed batch was applied");
}
