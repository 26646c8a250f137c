//! ZooKeeper's audit log (`audit.enable=true`): one line per change a client made through this server —
//! create, delete, setData, setAcl, the changes of a multi, reconfig — with who made it and whether it
//! succeeded, plus the server's start and stop and the ephemerals removed when a session ends.
//!
//! The lines are ZooKeeper 3.8's, so the tools that read its audit files read ours: its logback pattern
//! (`%d{ISO8601} %p %c{2}: %m%n`, ERROR for failures and INFO otherwise) around `AuditEvent.toString()`,
//! key=value pairs separated by tabs in the order session, user, ip, operation, znode, znode_type, acl,
//! then result; a pair whose value is unknown is left out. As in ZooKeeper, a client's change is logged by
//! the member the client is connected to, once its reply is known; an ephemeral removed with its session
//! is logged by every member that applies the removal.
//!
//! Writing never slows a request: events go through a bounded channel to a writer thread, and what does
//! not fit is dropped and counted (`fk_audit_events_dropped` in mntr and /metrics, and a warning in the
//! server log). The file rolls over at 10 MiB, keeping ten, as ZooKeeper's default logback configuration
//! does.

use std::fmt::{self, Write as _};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use fk_net::client::{Acl, ErrorCode, MultiResult, Request, Response, WriteOp, perms};

use crate::auth::AuthIds;

/// Events waiting for the writer at most; beyond it they are dropped (and counted).
const QUEUE_MAX: usize = 16 * 1024;
/// ZooKeeper's default logback policy for the audit file: roll at 10 MB, keep `.1` to `.10`.
const ROLL_AT_BYTES: u64 = 10 * 1024 * 1024;
const BACKUPS_KEPT: u32 = 10;
/// The writer's buffer: a few hundred lines per write(2) under load.
const WRITE_BUFFER_BYTES: usize = 256 * 1024;
/// After writing what was queued, the writer rests this long before it looks again, so that under load
/// it takes events in batches and a request thread almost never has to wake it (each wake-up is a
/// futex call on the request path; at 300k events/s they cost more than writing the lines). Lines reach
/// the file this much later at most.
const BATCH_PAUSE: Duration = Duration::from_millis(10);

/// ZooKeeper's `AuditEvent.Result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    /// The server's stop: logged before it is known to have happened.
    Invoked,
}

/// One audit line's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub session: Option<i64>,
    pub user: Option<Arc<str>>,
    pub ip: Option<Arc<str>>,
    pub operation: &'static str,
    pub znode: Option<String>,
    pub znode_type: Option<&'static str>,
    pub acl: Option<String>,
    pub outcome: Outcome,
}

impl AuditEvent {
    /// An event of the server itself (start, stop), by the user running it.
    pub fn server(operation: &'static str, outcome: Outcome) -> AuditEvent {
        AuditEvent {
            session: None,
            user: Some(server_user()),
            ip: None,
            operation,
            znode: None,
            znode_type: None,
            acl: None,
            outcome,
        }
    }

    /// An ephemeral removed because its session ended (closed or expired), as ZooKeeper's DataTree logs it.
    pub fn ephemeral_removed(session: i64, path: &str) -> AuditEvent {
        AuditEvent {
            session: Some(session),
            znode: Some(path.to_owned()),
            ..AuditEvent::server("ephemeralZNodeDeletionOnSessionCloseOrExpire", Outcome::Success)
        }
    }
}

impl AuditEvent {
    /// Appends `AuditEvent.toString()`: written byte by byte, as the writer does this for every change
    /// a client makes (the formatting machinery cost more than the rest of the line).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let mut pair = |key: &str, value: &[u8]| {
            out.extend_from_slice(key.as_bytes());
            out.push(b'=');
            out.extend_from_slice(value);
            out.push(b'\t');
        };
        if let Some(session) = self.session {
            pair("session", hex(session).as_bytes());
        }
        if let Some(user) = &self.user {
            pair("user", user.as_bytes());
        }
        if let Some(ip) = &self.ip {
            pair("ip", ip.as_bytes());
        }
        pair("operation", self.operation.as_bytes());
        if let Some(znode) = &self.znode {
            pair("znode", znode.as_bytes());
        }
        if let Some(znode_type) = self.znode_type {
            pair("znode_type", znode_type.as_bytes());
        }
        if let Some(acl) = &self.acl {
            pair("acl", acl.as_bytes());
        }
        out.extend_from_slice(match self.outcome {
            Outcome::Success => b"result=success",
            Outcome::Failure => b"result=failure",
            Outcome::Invoked => b"result=invoked",
        });
    }
}

/// `0x` and the lower-case hex digits of `value`, as `Long.toHexString` gives them.
fn hex(value: i64) -> HexText {
    let mut text = HexText { bytes: [0; 18], len: 0 };
    let digits = ((64 - (value as u64).leading_zeros()).max(1)).div_ceil(4) as usize;
    text.bytes[..2].copy_from_slice(b"0x");
    for i in 0..digits {
        let nibble = ((value as u64) >> (4 * (digits - 1 - i))) & 0xf;
        text.bytes[2 + i] = b"0123456789abcdef"[nibble as usize];
    }
    text.len = 2 + digits;
    text
}

struct HexText {
    bytes: [u8; 18],
    len: usize,
}

impl HexText {
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// `AuditEvent.toString()`.
impl fmt::Display for AuditEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut bytes = Vec::new();
        self.write_to(&mut bytes);
        f.write_str(&String::from_utf8_lossy(&bytes))
    }
}

/// Who made a request: the fields every event of a client's request shares.
pub struct Requester {
    pub session: i64,
    /// [`users`] of the connection's identities.
    pub users: Option<Arc<str>>,
    /// The client's address, as Java prints it.
    pub ip: Arc<str>,
}

/// `AuthUtil.getUsers`: the connection's identities as user names, comma-separated (a digest's user is
/// the part before ':'; `super` has no provider, so no name), or `None` if there is none.
pub fn users(auth: &AuthIds) -> Option<Arc<str>> {
    let names: Vec<&str> = auth
        .in_java_order()
        .into_iter()
        .filter_map(|id| match id.scheme.as_str() {
            "digest" => id.id.split(':').next(),
            "super" => None,
            _ => Some(id.id.as_str()),
        })
        .filter(|name| !name.trim().is_empty())
        .collect();
    (!names.is_empty()).then(|| names.join(",").into())
}

/// The `user` and `ip` of a connection's events: [`users`], and the address as ZooKeeper's
/// `getHostAddress` writes it.
pub fn identity(auth: &AuthIds, ip: IpAddr) -> (Option<Arc<str>>, Arc<str>) {
    (users(auth), crate::config::members::java_host_string(&ip.to_string()).into())
}

/// What a shard keeps of an audited request while it is in the write pipeline: the reply says how it
/// went, but not always which znode it was about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditDraft {
    Single(Change),
    /// The changes of a multi, in order (`None` for the sub-ops ZooKeeper does not log).
    Multi(Vec<Option<Change>>),
    Reconfig,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    operation: &'static str,
    path: String,
    /// For creates: the mode, as ZooKeeper's `CreateMode` prints it in lower case.
    znode_type: Option<&'static str>,
    /// For setAcl: `ZKUtil.aclToString`.
    acl: Option<String>,
}

/// The draft of a request ZooKeeper audits, `None` for the rest (reads, sync, closeSession).
pub fn draft(request: &Request) -> Option<AuditDraft> {
    match request {
        Request::Write(op) => change(op).map(AuditDraft::Single),
        Request::Multi(ops) => Some(AuditDraft::Multi(ops.iter().map(change).collect())),
        Request::Reconfig(_) => Some(AuditDraft::Reconfig),
        _ => None,
    }
}

fn change(op: &WriteOp) -> Option<Change> {
    let (operation, path, znode_type, acl) = match op {
        WriteOp::Create { request, .. } => ("create", &request.path, Some(create_mode(request.flags)?), None),
        WriteOp::CreateTtl(request) => ("create", &request.path, Some(create_mode(request.flags)?), None),
        WriteOp::Delete(request) => ("delete", &request.path, None, None),
        WriteOp::SetData(request) => ("setData", &request.path, None, None),
        WriteOp::SetAcl(request) => ("setAcl", &request.path, None, Some(acl_text(&request.acl))),
        WriteOp::Check(_) => return None,
    };
    Some(Change { operation, path: path.clone(), znode_type, acl })
}

/// `CreateMode.toString().toLowerCase()`; ZooKeeper logs nothing for a request with unknown flags.
fn create_mode(flags: i32) -> Option<&'static str> {
    Some(match flags {
        0 => "persistent",
        1 => "ephemeral",
        2 => "persistent_sequential",
        3 => "ephemeral_sequential",
        4 => "container",
        5 => "persistent_with_ttl",
        6 => "persistent_sequential_with_ttl",
        _ => return None,
    })
}

/// `ZKUtil.aclToString`: scheme:id:perms for each entry, with no separator between entries.
fn acl_text(acl: &[Acl]) -> String {
    let mut text = String::new();
    for entry in acl {
        let _ = write!(text, "{}:{}:", entry.id.scheme, entry.id.id);
        for (bit, letter) in
            [(perms::CREATE, 'c'), (perms::DELETE, 'd'), (perms::READ, 'r'), (perms::WRITE, 'w'), (perms::ADMIN, 'a')]
        {
            if entry.perms & bit != 0 {
                text.push(letter);
            }
        }
    }
    text
}

/// The events of a request's reply, as ZooKeeper's `AuditHelper.addAuditLog` writes them.
pub fn events(draft: &AuditDraft, err: ErrorCode, response: &Response, who: &Requester) -> Vec<AuditEvent> {
    let event = |operation, znode: Option<&str>, znode_type, acl: Option<&String>, outcome| AuditEvent {
        session: Some(who.session),
        user: who.users.clone(),
        ip: Some(who.ip.clone()),
        operation,
        znode: znode.map(str::to_owned),
        znode_type,
        acl: acl.cloned(),
        outcome,
    };
    let outcome = if err == ErrorCode::Ok { Outcome::Success } else { Outcome::Failure };
    match (draft, response) {
        (AuditDraft::Single(change), _) => {
            // A create logs the path it made (a sequential one has its suffix), a failed one the path asked for.
            let path = match response {
                Response::Create(r) => &r.path,
                Response::Create2(r) => &r.path,
                _ => &change.path,
            };
            vec![event(change.operation, Some(path), change.znode_type, change.acl.as_ref(), outcome)]
        }
        (AuditDraft::Multi(changes), Response::Multi(results)) => {
            let mut events = Vec::new();
            let mut failed = false;
            for (change, result) in changes.iter().zip(results) {
                let change = change.as_ref().filter(|c| c.operation != "setAcl");
                match (change, result) {
                    (_, MultiResult::Error(_)) => failed = true,
                    (Some(c), MultiResult::Create(path) | MultiResult::Create2(path, _)) => {
                        // ZooKeeper looks the mode up by the path asked for, so a sequential create's is lost.
                        let znode_type = c.znode_type.filter(|_| *path == c.path);
                        events.push(event("create", Some(path), znode_type, None, Outcome::Success));
                    }
                    (Some(c), MultiResult::Delete | MultiResult::SetData(_)) => {
                        events.push(event(c.operation, Some(&c.path), None, None, Outcome::Success));
                    }
                    _ => {}
                }
            }
            if failed {
                events.push(event("multiOperation", None, None, None, Outcome::Failure));
            }
            events
        }
        (AuditDraft::Multi(_), _) => vec![event("multiOperation", None, None, None, Outcome::Failure)],
        (AuditDraft::Reconfig, _) => {
            let znode = (err == ErrorCode::Ok).then_some("/zookeeper/config");
            vec![event("reconfig", znode, None, None, outcome)]
        }
    }
}

/// ZooKeeper's system user (`user.name`): who runs the server, looked up once.
fn server_user() -> Arc<str> {
    static USER: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
    USER.get_or_init(|| {
        // SAFETY: getpwuid returns a pointer to static storage or null; the name is copied out at once,
        // and this runs once, under the OnceLock.
        let name = unsafe {
            let entry = libc::getpwuid(libc::geteuid());
            (!entry.is_null()).then(|| std::ffi::CStr::from_ptr((*entry).pw_name).to_string_lossy().into_owned())
        };
        name.or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "unknown".into()).into()
    })
    .clone()
}

/// What the writer is sent: events, and a request to say when everything before it is in the file.
enum Entry {
    Event(AuditEvent),
    Flushed(Sender<()>),
}

/// The sending side, shared by the threads that produce events.
pub struct AuditLog {
    tx: Sender<Entry>,
    dropped: AtomicU64,
    path: PathBuf,
}

impl AuditLog {
    /// Opens (creating) the audit file and returns the log and the writer to run on its own thread.
    pub fn open(path: &Path) -> std::io::Result<(AuditLog, AuditWriter)> {
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        let (tx, rx) = bounded(QUEUE_MAX);
        let out = BufWriter::with_capacity(WRITE_BUFFER_BYTES, file);
        let writer = AuditWriter { rx, out, size, path: path.to_owned(), clock: Stamp::default() };
        Ok((AuditLog { tx, dropped: AtomicU64::new(0), path: path.to_owned() }, writer))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues `event` for the writer; when the queue is full it is dropped and counted, never waited for.
    pub fn record(&self, event: AuditEvent) {
        match self.tx.try_send(Entry::Event(event)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                let before = self.dropped.fetch_add(1, Ordering::Relaxed);
                if before.is_power_of_two() || before == 0 {
                    tracing::warn!("audit log queue full: {} audit events dropped so far", before + 1);
                }
            }
            // The writer is gone only while the process stops (its end stops the server).
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Events dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Queues `event` (waiting for room) and returns once it is in the file, or after `timeout`: for the
    /// server's stop, logged just before the process ends.
    pub fn record_and_wait(&self, event: AuditEvent, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let (done_tx, done_rx) = bounded(1);
        let sent = self.tx.send_deadline(Entry::Event(event), deadline).is_ok()
            && self.tx.send_deadline(Entry::Flushed(done_tx), deadline).is_ok();
        if sent {
            let _ = done_rx.recv_deadline(deadline);
        }
    }
}

/// Logs the server's stop when the process is told to stop (SIGTERM, SIGINT), as ZooKeeper's shutdown
/// hook does, then lets the signal end the process as it would have.
pub fn log_stop_on_signal(log: Arc<AuditLog>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])?;
    std::thread::Builder::new().name("fk-audit-stop".into()).spawn(move || {
        if let Some(signal) = signals.forever().next() {
            log.record_and_wait(AuditEvent::server("serverStop", Outcome::Invoked), Duration::from_secs(2));
            let _ = signal_hook::low_level::emulate_default_handler(signal);
        }
    })?;
    Ok(())
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// The writer thread's side: formats and appends, flushing whenever the queue runs dry.
pub struct AuditWriter {
    rx: Receiver<Entry>,
    out: BufWriter<File>,
    size: u64,
    path: PathBuf,
    clock: Stamp,
}

/// logback's ISO8601 date in local time, `2026-12-07 06:55:53,123`; the part down to the second is
/// formatted once a second (the time zone lookup behind it costs more than the rest of a line).
#[derive(Default)]
struct Stamp {
    second: Option<i64>,
    text: String,
}

impl Stamp {
    fn write(&mut self, out: &mut Vec<u8>) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let second = now.as_secs() as i64;
        if self.second != Some(second) {
            use chrono::TimeZone;
            let local = chrono::Local.timestamp_opt(second, 0).single();
            self.text = local.map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M:%S").to_string());
            self.second = Some(second);
        }
        let millis = now.subsec_millis();
        out.extend_from_slice(self.text.as_bytes());
        out.extend_from_slice(&[
            b',',
            b'0' + (millis / 100) as u8,
            b'0' + (millis / 10 % 10) as u8,
            b'0' + (millis % 10) as u8,
        ]);
    }
}

impl AuditWriter {
    /// Runs until every sender is gone. An I/O error ends it (and with it the server: an audit log that
    /// was asked for is not silently lost).
    pub fn run(mut self) -> std::io::Result<()> {
        let mut line = Vec::new();
        while let Ok(entry) = self.rx.recv() {
            let mut next = Some(entry);
            let mut waiting = Vec::new();
            while let Some(entry) = next {
                match entry {
                    Entry::Event(event) => self.write(&event, &mut line)?,
                    Entry::Flushed(done) => waiting.push(done),
                }
                next = self.rx.try_recv().ok();
            }
            self.out.flush()?;
            for done in waiting {
                let _ = done.send(());
            }
            std::thread::sleep(BATCH_PAUSE);
        }
        self.out.flush()
    }

    fn write(&mut self, event: &AuditEvent, line: &mut Vec<u8>) -> std::io::Result<()> {
        line.clear();
        let level = if event.outcome == Outcome::Failure { "ERROR" } else { "INFO" };
        self.clock.write(line);
        line.push(b' ');
        line.extend_from_slice(level.as_bytes());
        line.extend_from_slice(b" audit.Slf4jAuditLogger: ");
        event.write_to(line);
        line.push(b'\n');
        self.out.write_all(line)?;
        self.size += line.len() as u64;
        if self.size >= ROLL_AT_BYTES {
            self.roll()?;
        }
        Ok(())
    }

    /// logback's FixedWindowRollingPolicy: `.9` → `.10`, …, the file → `.1`, and a new file.
    fn roll(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        let backup = |i: u32| PathBuf::from(format!("{}.{i}", self.path.display()));
        for i in (1..BACKUPS_KEPT).rev() {
            if backup(i).exists() {
                std::fs::rename(backup(i), backup(i + 1))?;
            }
        }
        std::fs::rename(&self.path, backup(1))?;
        self.out = BufWriter::with_capacity(WRITE_BUFFER_BYTES, open_append(&self.path)?);
        self.size = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fk_net::client::{CreateRequest, DeleteRequest, Id, OpCode, SetAclRequest, SetDataRequest};

    fn alice() -> AuthIds {
        let mut auth = AuthIds::for_peer("10.1.2.3".parse().unwrap());
        auth.authenticate("digest", b"alice:secret", None).unwrap();
        auth
    }

    fn lines(draft: &AuditDraft, err: ErrorCode, response: &Response) -> Vec<String> {
        let auth = alice();
        let who = Requester { session: 0x0193_4473_0000, users: users(&auth), ip: "10.1.2.3".into() };
        events(draft, err, response, &who).iter().map(ToString::to_string).collect()
    }

    fn create(path: &str, flags: i32) -> WriteOp {
        WriteOp::Create {
            op: OpCode::Create,
            request: CreateRequest { path: path.into(), data: None, acl: vec![], flags },
        }
    }

    const WHO: &str = "session=0x19344730000\tuser=alice,10.1.2.3\tip=10.1.2.3";

    #[test]
    fn single_changes_read_as_zookeeper_writes_them() {
        let created = Response::Create(fk_net::client::CreateResponse { path: "/q0000000007".into() });
        let sequential = draft(&Request::Write(create("/q", 2))).unwrap();
        assert_eq!(
            lines(&sequential, ErrorCode::Ok, &created),
            [format!("{WHO}\toperation=create\tznode=/q0000000007\tznode_type=persistent_sequential\tresult=success")]
        );
        let exists = draft(&Request::Write(create("/a", 1))).unwrap();
        assert_eq!(
            lines(&exists, ErrorCode::NodeExists, &Response::Empty),
            [format!("{WHO}\toperation=create\tznode=/a\tznode_type=ephemeral\tresult=failure")]
        );
        let set =
            draft(&Request::Write(WriteOp::SetData(SetDataRequest { path: "/a".into(), data: None, version: -1 })));
        assert_eq!(
            lines(&set.unwrap(), ErrorCode::Ok, &Response::Empty),
            [format!("{WHO}\toperation=setData\tznode=/a\tresult=success")]
        );
        let acl = vec![
            Acl { perms: perms::ALL, id: Id::new("world", "anyone") },
            Acl { perms: perms::READ | perms::ADMIN, id: Id::new("ip", "10.0.0.0/8") },
        ];
        let set_acl = draft(&Request::Write(WriteOp::SetAcl(SetAclRequest { path: "/a".into(), acl, version: -1 })));
        assert_eq!(
            lines(&set_acl.unwrap(), ErrorCode::NoAuth, &Response::Empty),
            [format!("{WHO}\toperation=setAcl\tznode=/a\tacl=world:anyone:cdrwaip:10.0.0.0/8:ra\tresult=failure")]
        );
        assert_eq!(draft(&Request::Sync(fk_net::client::PathRequest { path: "/".into() })), None);
        assert_eq!(draft(&Request::Write(create("/bad", 9))), None, "ZooKeeper logs nothing for bad flags");
    }

    #[test]
    fn a_multi_logs_each_change_or_one_failure() {
        let ops = vec![
            create("/m", 0),
            create("/s", 2),
            WriteOp::Delete(DeleteRequest { path: "/old".into(), version: -1 }),
            WriteOp::Check(fk_net::client::CheckVersionRequest { path: "/m".into(), version: 0 }),
        ];
        let multi = draft(&Request::Multi(ops)).unwrap();
        let results = Response::Multi(vec![
            MultiResult::Create("/m".into()),
            MultiResult::Create("/s0000000001".into()),
            MultiResult::Delete,
            MultiResult::Check,
        ]);
        assert_eq!(
            lines(&multi, ErrorCode::Ok, &results),
            [
                format!("{WHO}\toperation=create\tznode=/m\tznode_type=persistent\tresult=success"),
                format!("{WHO}\toperation=create\tznode=/s0000000001\tresult=success"),
                format!("{WHO}\toperation=delete\tznode=/old\tresult=success"),
            ]
        );
        let failed = Response::Multi(vec![
            MultiResult::Error(0),
            MultiResult::Error(-110),
            MultiResult::Error(-2),
            MultiResult::Error(-2),
        ]);
        assert_eq!(
            lines(&multi, ErrorCode::NodeExists, &failed),
            [format!("{WHO}\toperation=multiOperation\tresult=failure")]
        );
    }

    #[test]
    fn server_events_and_users() {
        let stop = AuditEvent::server("serverStop", Outcome::Invoked).to_string();
        assert!(stop.starts_with("user=") && stop.ends_with("\toperation=serverStop\tresult=invoked"), "{stop}");
        let removed = AuditEvent::ephemeral_removed(0x10c0bcb0000, "/e").to_string();
        assert!(removed.starts_with("session=0x10c0bcb0000\tuser="), "{removed}");
        assert!(
            removed.ends_with("\toperation=ephemeralZNodeDeletionOnSessionCloseOrExpire\tznode=/e\tresult=success")
        );
        let mut auth = AuthIds::for_peer("127.0.0.1".parse().unwrap());
        assert_eq!(users(&auth).as_deref(), Some("127.0.0.1"));
        auth.authenticate("digest", b"alice:secret", None).unwrap();
        // As ZooKeeper 3.8 logged it for the same connection (its identities are a hash set).
        assert_eq!(users(&auth).as_deref(), Some("alice,127.0.0.1"));
        let mut admin = AuthIds::for_peer("127.0.0.1".parse().unwrap());
        admin.authenticate("digest", b"super:pw", Some(&crate::auth::digest_id("super:pw"))).unwrap();
        assert_eq!(admin.ids.len(), 3);
        let names = users(&admin).unwrap();
        assert_eq!(names.split(',').count(), 2, "the super identity has no name of its own: {names}");
    }

    #[test]
    fn session_ids_print_as_long_to_hex_string() {
        for (id, text) in [(0, "0x0"), (0x1f, "0x1f"), (-1, "0xffffffffffffffff"), (i64::MIN, "0x8000000000000000")] {
            assert_eq!(hex(id).as_bytes(), text.as_bytes());
        }
    }

    #[test]
    fn the_writer_appends_lines_and_rolls_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zookeeper_audit.log");
        let (log, mut writer) = AuditLog::open(&path).unwrap();
        writer.size = ROLL_AT_BYTES - 10;
        log.record(AuditEvent::server("serverStart", Outcome::Success));
        log.record(AuditEvent::ephemeral_removed(5, "/e"));
        drop(log);
        writer.run().unwrap();
        let first = std::fs::read_to_string(PathBuf::from(format!("{}.1", path.display()))).unwrap();
        assert!(first.contains(" INFO audit.Slf4jAuditLogger: user="), "{first}");
        assert!(first.ends_with("operation=serverStart\tresult=success\n"), "{first}");
        let current = std::fs::read_to_string(&path).unwrap();
        assert!(current.ends_with("znode=/e\tresult=success\n") && current.lines().count() == 1, "{current}");
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _writer) = AuditLog::open(&dir.path().join("audit.log")).unwrap();
        for _ in 0..QUEUE_MAX + 3 {
            log.record(AuditEvent::ephemeral_removed(1, "/x"));
        }
        assert_eq!(log.dropped(), 3);
    }
}
