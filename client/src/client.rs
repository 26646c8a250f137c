//! The blocking client: one method per ZooKeeper operation, each a request/reply round trip through the
//! session's I/O thread.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Receiver;
use fk_net::client::watch::{AddWatchMode, WatcherType};
use fk_net::client::*;
use fk_net::jute::Jute;

use crate::connect_string::ConnectString;
use crate::create_mode::CreateMode;
use crate::error::{Error, Result};
use crate::session::{self, Phase, Shared};
use crate::watches::{WatchKind, WatchedEvent};

/// Where getConfig reads the ensemble's configuration; never under the chroot (Java's `getConfig`).
pub const CONFIG_NODE: &str = "/zookeeper/config";

#[derive(Debug, Clone)]
pub struct Options {
    /// The session timeout asked for; the server clamps it to its min/max.
    pub session_timeout: Duration,
    /// How long `connect` waits for the first session, and the longest an operation waits for a
    /// connection (it fails sooner, with ConnectionLoss, when a round over every host found no server).
    pub connect_wait: Duration,
    /// SASL (DIGEST-MD5 or Kerberos), authenticated on every connection before anything else is sent,
    /// as the Java client does with its JAAS `Client` section.
    pub sasl: Option<crate::sasl::Sasl>,
    /// Connect over TLS (the Java client's `zookeeper.client.secure=true`) with this configuration
    /// (see `fk_tls::client_config`).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for Options {
    /// zkCli's defaults: a 30 s session.
    fn default() -> Options {
        Options {
            session_timeout: Duration::from_secs(30),
            connect_wait: Duration::from_secs(30),
            sasl: None,
            tls: None,
        }
    }
}

pub struct Client {
    shared: Arc<Shared>,
    events: Receiver<WatchedEvent>,
    io_thread: Option<JoinHandle<()>>,
    connect_wait: Duration,
}

impl Client {
    /// Connects to one of the hosts of `connect` and establishes a session, waiting at most
    /// `options.connect_wait`.
    pub fn connect(connect: &str, options: Options) -> Result<Client> {
        let client = Self::start(connect, options)?;
        client.shared.wait_connected(client.connect_wait, false)?;
        Ok(client)
    }

    /// Starts the I/O thread without waiting for the first session (zkCli connects in the background
    /// and reports the outcome as a watch event).
    pub fn start(connect: &str, options: Options) -> Result<Client> {
        let connect = ConnectString::parse(connect)?;
        // Unbounded: the I/O thread must never block on a caller that reads events slowly, or pings
        // stop and the session dies (the Java client's event queue is unbounded for the same reason).
        let (events_tx, events) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared::new(connect, options.session_timeout, events_tx, options.sasl, options.tls));
        let io_shared = Arc::clone(&shared);
        let io_thread = std::thread::Builder::new()
            .name("fk-client-io".into())
            .spawn(move || session::run(io_shared))
            .expect("spawn the client I/O thread");
        Ok(Client { shared, events, io_thread: Some(io_thread), connect_wait: options.connect_wait })
    }

    /// Watch and connection-state events, in the order the server sent them.
    pub fn events(&self) -> &Receiver<WatchedEvent> {
        &self.events
    }

    pub fn session_id(&self) -> i64 {
        self.shared.state().session_id
    }

    pub fn session_password(&self) -> Vec<u8> {
        self.shared.state().passwd.clone()
    }

    /// The session timeout the server granted, in milliseconds.
    pub fn session_timeout_ms(&self) -> i32 {
        self.shared.state().timeout_ms
    }

    pub fn is_connected(&self) -> bool {
        self.shared.state().phase == Phase::Connected
    }

    /// False once the session expired or the client was closed.
    pub fn is_alive(&self) -> bool {
        matches!(self.shared.state().phase, Phase::Connected | Phase::Connecting)
    }

    /// Blocks until the session is connected (after a disconnect) or `limit` passes.
    pub fn wait_connected(&self, limit: Duration) -> Result<()> {
        self.shared.wait_connected(limit, false)
    }

    /// Like [`Client::wait_connected`], but gives up (ConnectionLoss) as soon as a round of attempts
    /// over every host has failed.
    pub fn wait_connected_once(&self, limit: Duration) -> Result<()> {
        self.shared.wait_connected(limit, true)
    }

    /// The chroot of the connect string, if any.
    pub fn chroot(&self) -> Option<&str> {
        self.shared.connect.chroot.as_deref()
    }

    pub fn create(&self, path: &str, data: Option<&[u8]>, acl: &[Acl], mode: CreateMode) -> Result<(String, Stat)> {
        let sequential = matches!(
            mode,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl(_)
        );
        // Java validates a sequential node's path with a digit appended: the server adds the suffix.
        validate(if sequential { format!("{path}1") } else { path.to_owned() }.as_str(), path)?;
        let request = self.create_op(path, data, acl, mode);
        let body = self.call(Request::Write(request), path, None)?;
        let created: Create2Response = decode(&body, "create")?;
        Ok((self.shared.connect.to_client(&created.path), created.stat))
    }

    /// The write op a create is sent as (alone, or inside a multi), with the server path.
    pub fn create_op(&self, path: &str, data: Option<&[u8]>, acl: &[Acl], mode: CreateMode) -> WriteOp {
        let path = self.shared.connect.to_server(path);
        let data = data.map(<[u8]>::to_vec);
        let acl = acl.to_vec();
        match mode.ttl() {
            Some(ttl) => WriteOp::CreateTtl(CreateTtlRequest { path, data, acl, flags: mode.flags(), ttl }),
            None => {
                WriteOp::Create { op: mode.op_code(), request: CreateRequest { path, data, acl, flags: mode.flags() } }
            }
        }
    }

    pub fn delete(&self, path: &str, version: i32) -> Result<()> {
        validate(path, path)?;
        let request = DeleteRequest { path: self.server_path(path), version };
        self.call(Request::Write(WriteOp::Delete(request)), path, None).map(drop)
    }

    /// The node's Stat, or `None` if it does not exist; `watch` leaves a data watch on an existing node
    /// and an exist watch (fires on creation) on a missing one.
    pub fn exists(&self, path: &str, watch: bool) -> Result<Option<Stat>> {
        validate(path, path)?;
        let request = Request::Exists(PathWatchRequest { path: self.server_path(path), watch });
        match self.call(request, path, watch.then_some(WatchKind::Exist)) {
            Ok(body) => decode(&body, "exists").map(Some),
            Err(Error::Server { code: ErrorCode::NoNode, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn get_data(&self, path: &str, watch: bool) -> Result<(Option<Vec<u8>>, Stat)> {
        validate(path, path)?;
        let request = Request::GetData(PathWatchRequest { path: self.server_path(path), watch });
        let body = self.call(request, path, watch.then_some(WatchKind::Data))?;
        let reply: GetDataResponse = decode(&body, "getData")?;
        Ok((reply.data, reply.stat))
    }

    pub fn set_data(&self, path: &str, data: Option<&[u8]>, version: i32) -> Result<Stat> {
        validate(path, path)?;
        let request = SetDataRequest { path: self.server_path(path), data: data.map(<[u8]>::to_vec), version };
        let body = self.call(Request::Write(WriteOp::SetData(request)), path, None)?;
        decode(&body, "setData")
    }

    pub fn get_children(&self, path: &str, watch: bool) -> Result<Vec<String>> {
        Ok(self.get_children2(path, watch)?.0)
    }

    /// getChildren2: the children and the parent's Stat in one reply.
    pub fn get_children2(&self, path: &str, watch: bool) -> Result<(Vec<String>, Stat)> {
        validate(path, path)?;
        let request = Request::GetChildren2(PathWatchRequest { path: self.server_path(path), watch });
        let body = self.call(request, path, watch.then_some(WatchKind::Child))?;
        let reply: GetChildren2Response = decode(&body, "getChildren2")?;
        Ok((reply.children, reply.stat))
    }

    /// The number of descendants of `path` (not counting itself).
    pub fn get_all_children_number(&self, path: &str) -> Result<i32> {
        validate(path, path)?;
        let request = Request::GetAllChildrenNumber(PathRequest { path: self.server_path(path) });
        let body = self.call(request, path, None)?;
        Ok(decode::<GetAllChildrenNumberResponse>(&body, "getAllChildrenNumber")?.total_number)
    }

    /// This session's ephemeral nodes whose paths start with `prefix` ("/" for all).
    pub fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>> {
        let request = Request::GetEphemerals(PathRequest { path: self.server_path(prefix) });
        let body = self.call(request, prefix, None)?;
        let reply: GetEphemeralsResponse = decode(&body, "getEphemerals")?;
        Ok(reply.ephemerals.iter().map(|p| self.shared.connect.to_client(p)).collect())
    }

    pub fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat)> {
        validate(path, path)?;
        let body = self.call(Request::GetAcl(PathRequest { path: self.server_path(path) }), path, None)?;
        let reply: GetAclResponse = decode(&body, "getACL")?;
        Ok((reply.acl, reply.stat))
    }

    pub fn set_acl(&self, path: &str, acl: &[Acl], version: i32) -> Result<Stat> {
        validate(path, path)?;
        let request = SetAclRequest { path: self.server_path(path), acl: acl.to_vec(), version };
        let body = self.call(Request::Write(WriteOp::SetAcl(request)), path, None)?;
        decode(&body, "setACL")
    }

    /// Runs `ops` atomically. Ops carry server paths: build them with [`Client::create_op`] or
    /// [`Client::server_path`]. A failed multi is `Ok` with the per-op results (ZooKeeper answers
    /// result code 0 and an error result in place of each op).
    pub fn multi(&self, ops: Vec<WriteOp>) -> Result<Vec<MultiResult>> {
        let body = self.call(Request::Multi(ops), "/", None)?;
        match Response::decode(OpCode::Multi, &body) {
            Ok(Response::Multi(results)) => Ok(results),
            Ok(_) => unreachable!("Response::decode(Multi) gives Multi"),
            Err(source) => Err(Error::Decode { op: "multi", source }),
        }
    }

    /// Waits until the server this session is on has caught up with the leader.
    pub fn sync(&self, path: &str) -> Result<()> {
        validate(path, path)?;
        self.call(Request::Sync(PathRequest { path: self.server_path(path) }), path, None).map(drop)
    }

    /// Adds an identity to the session (`digest` with `user:password`, …); kept and sent again after a
    /// reconnect. Fails with AuthFailed if the server refuses it (it then closes the connection).
    pub fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<()> {
        let packet = AuthPacket { auth_type: 0, scheme: scheme.to_owned(), auth: Some(auth.to_vec()) };
        self.call(Request::Auth(packet.clone()), scheme, None)?;
        self.shared.state().auth.push(packet);
        Ok(())
    }

    /// The identities the server knows this session by.
    pub fn who_am_i(&self) -> Result<Vec<ClientInfo>> {
        let body = self.call(Request::WhoAmI, "/", None)?;
        Ok(decode::<WhoAmIResponse>(&body, "whoAmI")?.client_info)
    }

    /// A persistent (optionally recursive) watch: it stays after firing, until removed.
    pub fn add_watch(&self, path: &str, mode: AddWatchMode) -> Result<()> {
        validate(path, path)?;
        let request = Request::AddWatch(AddWatchRequest { path: self.server_path(path), mode: mode.as_i32() });
        let kind = match mode {
            AddWatchMode::Persistent => WatchKind::Persistent,
            AddWatchMode::PersistentRecursive => WatchKind::PersistentRecursive,
        };
        self.call(request, path, Some(kind)).map(drop)
    }

    /// Removes this session's watches of `watcher_type` on `path`. `local` removes them on the client
    /// only (used when the server is unreachable), as Java's `removeAllWatches(.., local)`.
    pub fn remove_watches(&self, path: &str, watcher_type: WatcherType, local: bool) -> Result<()> {
        validate(path, path)?;
        let server_path = self.server_path(path);
        let held = self.shared.state().watches.remove(&server_path, watcher_type);
        if local {
            return if held { Ok(()) } else { Err(Error::Server { code: ErrorCode::NoWatcher, path: path.into() }) };
        }
        let request =
            Request::RemoveWatches(WatchTypeRequest { path: server_path, watcher_type: watcher_type.as_i32() });
        self.call(request, path, None).map(drop)
    }

    /// The ensemble configuration (`/zookeeper/config`), outside any chroot.
    pub fn get_config(&self, watch: bool) -> Result<(Option<Vec<u8>>, Stat)> {
        let request = Request::GetData(PathWatchRequest { path: CONFIG_NODE.into(), watch });
        let body = self.call(request, CONFIG_NODE, watch.then_some(WatchKind::Data))?;
        let reply: GetDataResponse = decode(&body, "getConfig")?;
        Ok((reply.data, reply.stat))
    }

    /// Dynamic reconfiguration; answers the new configuration. `from_config` -1 means any.
    pub fn reconfig(
        &self,
        joining: &str,
        leaving: &str,
        new_members: &str,
        from_config: i64,
    ) -> Result<(Option<Vec<u8>>, Stat)> {
        let request = Request::Reconfig(ReconfigRequest {
            joining_servers: joining.to_owned(),
            leaving_servers: leaving.to_owned(),
            new_members: new_members.to_owned(),
            cur_config_id: from_config,
        });
        // Java's reconfig reports its error without a path ("KeeperErrorCode = Reconfig is disabled").
        let body = self.call(request, "", None)?;
        let reply: GetDataResponse = decode(&body, "reconfig")?;
        Ok((reply.data, reply.stat))
    }

    /// The server-side path of a client path (the chroot prepended).
    pub fn server_path(&self, path: &str) -> String {
        self.shared.connect.to_server(path)
    }

    /// Closes the session (its ephemerals go at once) and stops the I/O thread.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.io_thread.take() else { return };
        session::close(&self.shared);
        let _ = thread.join();
    }

    /// One round trip: waits for a connection, sends, waits for the reply (the I/O thread answers
    /// every pending request, with ConnectionLoss if the connection breaks first).
    fn call(&self, request: Request, path: &str, watch: Option<WatchKind>) -> Result<Vec<u8>> {
        // A request made while disconnected waits for the connection attempt under way (Java queues
        // it and fails it with ConnectionLoss if that attempt fails).
        self.shared.wait_connected(self.connect_wait, true).map_err(|e| e.at(path))?;
        let (tx, rx) = crossbeam_channel::bounded(1);
        let watch = watch.map(|kind| (kind, self.server_path_for(&request, path)));
        self.shared.send(&request, watch, tx).map_err(|e| e.at(path))?;
        let (err, body) = rx.recv().map_err(|_| Error::connection_loss())?.map_err(|e| e.at(path))?;
        if err != 0 {
            return Err(Error::from_code(err, path));
        }
        Ok(body)
    }

    fn server_path_for(&self, request: &Request, path: &str) -> String {
        match request {
            Request::GetData(r) if r.path == CONFIG_NODE => r.path.clone(),
            _ => self.server_path(path),
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Refuses a path the server would refuse, before sending (Java throws IllegalArgumentException).
fn validate(checked: &str, path: &str) -> Result<()> {
    fk_net::path::validate_path(checked).map_err(|reason| Error::InvalidPath { path: path.to_owned(), reason })
}

fn decode<T: Jute>(body: &[u8], op: &'static str) -> Result<T> {
    T::decode_exact(body).map_err(|source| Error::Decode { op, source })
}
