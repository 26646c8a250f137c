//! fkcli's interactive mode driven through a pseudo-terminal: the prompt, line editing with completion
//! of commands and znode paths, watch events printed while the shell waits at its prompt, and the
//! history file.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fk_client::{Client, CreateMode, Options, open_acl_unsafe};
use fk_tests::TestServer;

/// How long the screen may take to show something (generous: a loaded CI machine).
const SCREEN_WAIT: Duration = Duration::from_secs(30);

/// fkcli on the slave side of a pty; everything it writes collects in `screen`.
struct Terminal {
    child: Child,
    master: File,
    screen: Arc<Mutex<String>>,
}

impl Terminal {
    fn start(server: &TestServer, history: &std::path::Path) -> Terminal {
        let (master, slave) = open_pty();
        let mut child = Command::new(env!("CARGO_BIN_EXE_fkcli"));
        child
            .args(["-server", &server.address()])
            .env("TERM", "xterm")
            .env("FKCLI_HISTORY", history)
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        let child = child.spawn().expect("start fkcli on the pty");
        let master = File::from(master);
        let screen = Arc::new(Mutex::new(String::new()));
        let mut reader = master.try_clone().unwrap();
        let sink = Arc::clone(&screen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once the child has exited and the slave side is closed.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Terminal { child, master, screen }
    }

    fn type_keys(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
    }

    /// Waits until the screen, from `from` on, contains `text`; returns where it ends.
    fn wait_for(&self, text: &str, from: usize) -> usize {
        let deadline = Instant::now() + SCREEN_WAIT;
        loop {
            let screen = self.screen.lock().unwrap().clone();
            if let Some(at) = screen.get(from..).and_then(|s| s.find(text)) {
                return from + at + text.len();
            }
            assert!(Instant::now() < deadline, "{text:?} never appeared; the screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A pty pair with an 80x24 window (line editors need a width).
fn open_pty() -> (OwnedFd, OwnedFd) {
    let (mut master, mut slave) = (0, 0);
    let size = libc::winsize { ws_row: 24, ws_col: 80, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: openpty writes two descriptors into the ints given and reads the winsize; both are valid
    // for the call. Each descriptor is owned exactly once below.
    let rc = unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), &size) };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened by openpty and are not owned by anything else.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

#[test]
fn interactive_session_completes_prints_events_and_keeps_history() {
    let server = TestServer::start();
    let other = Client::connect(&server.address(), Options::default()).unwrap();
    other.create("/application", Some(b"v0"), &open_acl_unsafe(), CreateMode::Persistent).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history");
    let mut term = Terminal::start(&server, &history);

    let port = server.port;
    // The session is opened in the background, so the first prompt may still say CONNECTING (as
    // zkCli's does); commands wait for the connection.
    let at = term.wait_for(&format!("[zk: 127.0.0.1:{port}("), 0);
    let at = term.wait_for(" 0] ", at);
    // Tab completes the command name, then the znode path from the server's children.
    term.type_keys("ge\t-w /appl\t\r");
    let at = term.wait_for("get -w /application", at);
    let at = term.wait_for("v0", at);
    let at = term.wait_for("(CONNECTED) 1] ", at);

    // An event arriving while the shell waits at its prompt is printed at once.
    other.set_data("/application", Some(b"v1"), -1).unwrap();
    let at = term.wait_for("WATCHER::", at);
    let at = term.wait_for("WatchedEvent state:SyncConnected type:NodeDataChanged path:/application", at);

    term.type_keys("history\r");
    let at = term.wait_for("1 - history", at);
    term.type_keys("quit\r");
    term.wait_for("state:Closed", at);
    let status = term.child.wait().unwrap();
    assert!(status.success(), "{status}");
    let saved = std::fs::read_to_string(&history).unwrap();
    assert!(saved.contains("get -w /application") && saved.contains("history"), "history file:\n{saved}");
}
