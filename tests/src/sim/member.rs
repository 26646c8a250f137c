//! One simulated ensemble member: the production [`MemberCore`] (election, ZAB roles, sequencer) and
//! [`ApplyCore`] over a production [`DataTree`], with a simulated disk, network links and client
//! connections in place of the pipeline's threads. Everything the production member thread does with
//! the core's effects is done here in memory, in the same order; what the real pipeline does between
//! threads (the log stage's group commit, the applier) happens here as events of the one simulated
//! clock.
//!
//! The disk: a log of txns made durable by fsyncs (group commit: an fsync covers what was written when
//! it started), epoch files written durably at once, and a snapshot (the txns it holds, with the zxid
//! it is named by). A crash keeps the durable part and any prefix of what was written but not fsynced
//! (a torn tail that recovery cuts); a restart rebuilds the tree from the disk as recovery does.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use ferrokeeper::apply::replies::{Delivery, ShardReply, in_delivery_order};
use ferrokeeper::apply::{Applied, ApplyCore};
use ferrokeeper::auth::AuthIds;
use ferrokeeper::config::refresh_config_node;
use ferrokeeper::member::drive::{EffectDriver, drive};
use ferrokeeper::member::{DiskFacts, Effect, MemberCore, MemberSettings};
use ferrokeeper::membership::{Membership, adoption, logged_newer};
use ferrokeeper::planted::{self, PlantedBug};
use ferrokeeper::read::Reader;
use ferrokeeper::sequencer::{Notice, Now, Origin, Sequenced, SequencerInput, WriteRequest};
use ferrokeeper::watch::WatchTable;
use ferrokeeper::zab::config_text::version_of;
use ferrokeeper::zab::{LinkId, Sid, epoch_of};
use fk_engine::epoch::{EpochFiles, decide_epochs};
use fk_engine::tree::{DataTree, HashSeed, TreeOptions};
use fk_net::client::{ConnectRequest, ErrorCode, ReplyHeader, Request, Response};
use fk_net::quorum::{Notification, PacketType, QuorumPacket, ServerState};
use fk_net::txn::Txn;

use super::rng::Rng;

/// A client connection's id, unique over the whole run.
pub type ConnId = u64;

/// What one member sends another.
#[derive(Debug, Clone)]
pub enum PeerMsg {
    Notify(Notification),
    /// A learner opens a quorum connection; `link` is its own id for it.
    QuorumConnect {
        link: LinkId,
    },
    /// The leader took it: `link` is the learner's id, `peer_link` the leader's.
    QuorumAccepted {
        link: LinkId,
        peer_link: LinkId,
    },
    /// Nobody listens there (the member is down or not leading).
    QuorumRefused {
        link: LinkId,
    },
    /// `link` is the receiver's id of the connection, `from_link` the sender's.
    Packet {
        link: LinkId,
        from_link: LinkId,
        packet: QuorumPacket,
    },
    /// SNAP at `zxid` with the snapshot's contents (the txns through it).
    Snapshot {
        link: LinkId,
        from_link: LinkId,
        zxid: i64,
        txns: Arc<Vec<Txn>>,
    },
    QuorumClosed {
        link: LinkId,
    },
}

/// What a client sends a member.
#[derive(Debug, Clone)]
pub enum FromClient {
    Connect(ConnectRequest),
    Request { xid: i32, request: Request },
    Ping,
    Close,
}

/// What a member sends a client.
#[derive(Debug, Clone)]
pub enum ToClient {
    Connected {
        session_id: i64,
        timeout_ms: u32,
    },
    /// The session is gone (expired, or a wrong password): the client must start a new one.
    Expired,
    Reply {
        header: ReplyHeader,
        body: Option<Response>,
    },
    /// A watch fired.
    Event {
        event_type: i32,
        path: String,
    },
    Closed,
}

/// What a member step asks of the world.
#[derive(Debug)]
pub enum Out {
    Peer {
        to: usize,
        msg: PeerMsg,
    },
    Client {
        conn: ConnId,
        msg: ToClient,
    },
    /// Start an fsync of what is written now (void if the log's `generation` changes meanwhile).
    Fsync {
        generation: u64,
    },
    /// This member established `epoch` as its leader.
    Established {
        epoch: i64,
    },
}

/// The step's world: the time, and where the step's messages go.
pub struct Ctx<'a> {
    pub now: Now,
    pub out: &'a mut Vec<Out>,
}

#[derive(Debug, Clone, Default)]
pub struct Disk {
    /// The snapshot: its txns, oldest first, and the zxid it is named by.
    pub snapshot: Arc<Vec<Txn>>,
    pub snapshot_zxid: i64,
    /// The log, oldest first.
    pub log: Vec<Txn>,
    pub accepted_epoch: Option<i64>,
    pub current_epoch: Option<i64>,
    /// ZooKeeper's `updatingEpoch` mark.
    pub updating_epoch: bool,
    /// The newest membership activated (`zoo.cfg.dynamic.<version>`, zoo.cfg pointing at it), written
    /// durably at activation; `None`: the one the member was configured with.
    pub membership: Option<String>,
    /// The damage mark (fk_engine::damage): start-up found damage, and no leader has synchronised the
    /// member since.
    pub damaged: bool,
}

impl Disk {
    /// Every txn the disk holds, in order: the snapshot's, then the log's after it.
    pub fn history(&self) -> Vec<Txn> {
        let after = self.log.iter().filter(|t| t.header.zxid > self.snapshot_zxid);
        self.snapshot.iter().chain(after).cloned().collect()
    }

    /// The log after the snapshot: what recovery replays (the new core's DIFF history).
    fn replayed(&self) -> Vec<Txn> {
        self.log.iter().filter(|t| t.header.zxid > self.snapshot_zxid).cloned().collect()
    }

    /// Damage found at start-up, as production recovery handles it in an ensemble: the mark first, then
    /// only the first `kept` txns of the history stay (the damaged log cut, later files set aside).
    pub fn damage(&mut self, kept: usize) {
        self.damaged = true;
        let history = self.history();
        let zxid = if kept == 0 { 0 } else { history[kept.min(history.len()) - 1].header.zxid };
        self.truncate_after(zxid);
    }

    /// ZooKeeper's TRUNC: nothing after `zxid` stays, in the log or in the snapshot.
    fn truncate_after(&mut self, zxid: i64) {
        self.log.retain(|t| t.header.zxid <= zxid);
        if self.snapshot_zxid > zxid {
            let kept: Vec<Txn> = self.snapshot.iter().filter(|t| t.header.zxid <= zxid).cloned().collect();
            self.snapshot = Arc::new(kept);
            self.snapshot_zxid = zxid;
        }
    }
}

/// A quorum connection as one end sees it.
struct PeerLink {
    peer: usize,
    /// The other end's id for it (a learner learns it when the leader takes the connection).
    peer_link: Option<LinkId>,
    /// Taken by the core (a learner's connection to a member not yet leading is held unread).
    adopted: bool,
    held: Vec<QuorumPacket>,
    /// Outgoing, in order; a snapshot waits until this member applied through its zxid.
    queue: VecDeque<Outgoing>,
}

enum Outgoing {
    Packet(QuorumPacket),
    Snapshot(i64),
}

struct Conn {
    session_id: Option<i64>,
}

/// What lives while the process runs.
struct Live {
    core: MemberCore,
    tree: DataTree,
    apply: ApplyCore,
    /// Written, not yet durable.
    written: Vec<Txn>,
    /// Bumped when the log is settled or rewritten: an fsync started before is void.
    generation: u64,
    fsync_running: bool,
    links: BTreeMap<LinkId, PeerLink>,
    /// Snapshots received on a link, waiting for the core's ReceiveSnapshot.
    received: BTreeMap<LinkId, (i64, Arc<Vec<Txn>>)>,
    conns: BTreeMap<ConnId, Conn>,
    inputs: Vec<SequencerInput>,
    touched: BTreeSet<i64>,
    /// The watches this member's clients left (a shard's table).
    watches: WatchTable,
    serving: bool,
    effects: Vec<Effect>,
    /// The membership in force.
    in_force: Membership,
}

pub struct SimMember {
    pub index: usize,
    pub sid: Sid,
    settings: MemberSettings,
    /// reconfigEnabled.
    reconfig: bool,
    /// Every membership this member activated, in order (version, text): the configuration checker's.
    pub activations: Vec<(i64, String)>,
    tree_seed: HashSeed,
    pub disk: Disk,
    live: Option<Live>,
    /// Bumped at each crash: messages for an earlier incarnation are lost with it.
    pub incarnation: u64,
    /// Problems found in this member (checked by the world).
    pub failures: Vec<String>,
    /// The peers this member's election links reach now (the world's to say, before each event).
    pub connected: Vec<Sid>,
    /// Times a leader synchronised this member after damage (the core's [`Effect::Healed`]).
    pub healed: u64,
}

/// The tree as recovery loads it from the disk; with reconfigEnabled, `/zookeeper/config` as the
/// production member leaves it ([`refresh_config_node`]).
fn rebuild(disk: &Disk, seed: HashSeed, in_force: Option<&Membership>) -> DataTree {
    let mut tree = DataTree::new(TreeOptions { extended_types: true, hash_seed: seed });
    let mut triggers = Vec::new();
    for txn in disk.history() {
        fk_engine::txn::apply(&mut tree, &txn, &mut triggers);
        triggers.clear();
    }
    if let Some(membership) = in_force {
        refresh_config_node(&mut tree, membership.text().as_bytes(), membership.version, true);
    }
    tree
}

impl SimMember {
    pub fn new(index: usize, settings: MemberSettings, reconfig: bool, rng: &mut Rng) -> SimMember {
        let tree_seed = HashSeed([rng.next_u64(), rng.next_u64(), rng.next_u64(), rng.next_u64()]);
        SimMember {
            index,
            sid: settings.election.my_id,
            settings,
            reconfig,
            activations: Vec::new(),
            tree_seed,
            disk: Disk::default(),
            live: None,
            incarnation: 0,
            failures: Vec::new(),
            connected: Vec::new(),
            healed: 0,
        }
    }

    pub fn is_up(&self) -> bool {
        self.live.is_some()
    }

    pub fn is_serving(&self) -> bool {
        self.live.as_ref().is_some_and(|l| l.serving)
    }

    pub fn state(&self) -> Option<ServerState> {
        self.live.as_ref().map(|l| l.core.state())
    }

    /// The applied tree's digest and last zxid.
    pub fn tree_summary(&self) -> Option<(u64, i64)> {
        self.live.as_ref().map(|l| (l.tree.digest(), l.tree.last_processed_zxid()))
    }

    pub fn next_deadline_ms(&self) -> Option<u64> {
        self.live.as_ref().and_then(|l| l.core.next_deadline_ms())
    }

    /// The membership `/zookeeper/config` holds here, if the member is up and it holds one.
    pub fn config_node(&self) -> Option<Membership> {
        let node = self.live.as_ref()?.tree.get(fk_engine::tree::CONFIG_PATH)?;
        Membership::parse(&String::from_utf8_lossy(node.data.as_deref()?)).ok()
    }

    /// The membership in force here (while up).
    pub fn in_force(&self) -> Option<&Membership> {
        self.live.as_ref().map(|l| &l.in_force)
    }

    /// Starts the process: recovery from the disk (the membership included: the newest dynamic file,
    /// else the configured one), then an election.
    pub fn start(&mut self, cx: &mut Ctx<'_>) {
        assert!(self.live.is_none(), "member {} started twice", self.sid);
        let configured = String::from_utf8_lossy(&self.settings.election.config).into_owned();
        let text = self.disk.membership.as_deref().unwrap_or(&configured);
        let in_force = Membership::parse(text).expect("the simulator's memberships read back");
        let tree = rebuild(&self.disk, self.tree_seed, self.reconfig.then_some(&in_force));
        let last_zxid = tree.last_processed_zxid();
        let mut core = MemberCore::new(self.settings.clone(), &self.disk.replayed(), self.disk.damaged);
        if self.disk.membership.is_some() {
            core.activate(&in_force);
        }
        self.live = Some(Live {
            in_force,
            core,
            apply: ApplyCore::new(1, last_zxid),
            tree,
            written: Vec::new(),
            generation: 0,
            fsync_running: false,
            links: BTreeMap::new(),
            received: BTreeMap::new(),
            conns: BTreeMap::new(),
            inputs: Vec::new(),
            touched: BTreeSet::new(),
            watches: WatchTable::new(self.tree_seed),
            serving: false,
            effects: Vec::new(),
        });
        self.look(cx);
        self.finish_step(cx);
    }

    /// SIGKILL: what was written but not fsynced survives only as far as `torn_keep` says (a prefix,
    /// as a torn tail that recovery cuts leaves it). Returns the connections that broke.
    pub fn crash(&mut self, torn_keep: usize) -> (Vec<ConnId>, Vec<(usize, LinkId)>) {
        let Some(live) = self.live.take() else { return (Vec::new(), Vec::new()) };
        let kept = torn_keep.min(live.written.len());
        self.disk.log.extend(live.written.into_iter().take(kept));
        self.incarnation += 1;
        let links = live.links.values().filter_map(|l| l.peer_link.map(|p| (l.peer, p))).collect();
        (live.conns.into_keys().collect(), links)
    }

    /// The production start-up rules for the epoch files (`fk_engine::epoch::decide_epochs`) on the
    /// simulated disk; a member they would refuse to start is a failure of the run.
    fn facts(&mut self) -> Option<DiskFacts> {
        let live = self.live.as_ref()?;
        let last_zxid = live.tree.last_processed_zxid();
        let files = EpochFiles {
            current: self.disk.current_epoch,
            current_tmp: None,
            accepted: self.disk.accepted_epoch,
            updating: self.disk.updating_epoch,
        };
        let decision = match decide_epochs(&files, last_zxid, std::path::Path::new("version-2")) {
            Ok(decision) => decision,
            Err(e) => {
                self.failures.push(format!("member {}: it would refuse to start: {e}", self.sid));
                return None;
            }
        };
        let epochs = decision.epochs;
        self.disk.current_epoch = Some(epochs.current);
        self.disk.accepted_epoch = Some(epochs.accepted);
        if decision.clear_updating {
            self.disk.updating_epoch = false;
        }
        Some(DiskFacts { last_zxid, accepted_epoch: epochs.accepted, current_epoch: epochs.current })
    }

    fn look(&mut self, cx: &mut Ctx<'_>) {
        let Some(facts) = self.facts() else { return };
        let live = self.live.as_mut().expect("facts came from it");
        if self.reconfig {
            let node = live.tree.get(fk_engine::tree::CONFIG_PATH).and_then(|n| n.data.as_deref());
            live.core.note_logged_config(logged_newer(node, live.in_force.version));
        }
        live.core.look(cx.now, facts, &self.connected, &mut live.effects);
    }

    pub fn on_peer(&mut self, cx: &mut Ctx<'_>, from: usize, from_sid: Sid, msg: PeerMsg) {
        let Some(live) = self.live.as_mut() else { return };
        let now = cx.now;
        match msg {
            PeerMsg::Notify(notification) => {
                live.core.notification(now, from_sid, notification, &self.connected, &mut live.effects)
            }
            PeerMsg::QuorumConnect { link: their_link } => {
                let link = live.core.learner_connected(now.mono_ms, &mut live.effects);
                let peer_link = PeerLink {
                    peer: from,
                    peer_link: Some(their_link),
                    adopted: false,
                    held: Vec::new(),
                    queue: VecDeque::new(),
                };
                live.links.insert(link, peer_link);
                cx.out.push(Out::Peer { to: from, msg: PeerMsg::QuorumAccepted { link: their_link, peer_link: link } });
            }
            PeerMsg::QuorumAccepted { link, peer_link } => match live.links.get_mut(&link) {
                Some(ours) => {
                    ours.peer_link = Some(peer_link);
                    live.core.linked(now.mono_ms, link, &mut live.effects);
                }
                // Our end is gone already: tell theirs.
                None => cx.out.push(Out::Peer { to: from, msg: PeerMsg::QuorumClosed { link: peer_link } }),
            },
            PeerMsg::QuorumRefused { link } | PeerMsg::QuorumClosed { link } => {
                if live.links.remove(&link).is_some() {
                    live.received.remove(&link);
                    live.core.link_closed(now.mono_ms, link, "the connection broke", &mut live.effects);
                }
            }
            PeerMsg::Packet { link, packet, .. } => self.packets(now, link, vec![packet]),
            PeerMsg::Snapshot { link, zxid, txns, .. } => {
                if live.links.contains_key(&link) {
                    live.received.insert(link, (zxid, txns));
                    self.packets(now, link, vec![QuorumPacket::new(PacketType::Snap, zxid, None)]);
                }
            }
        }
        self.finish_step(cx);
    }

    fn packets(&mut self, now: Now, link: LinkId, packets: Vec<QuorumPacket>) {
        let Some(live) = self.live.as_mut() else { return };
        let Some(ours) = live.links.get_mut(&link) else { return };
        if !ours.adopted {
            ours.held.extend(packets);
            return;
        }
        live.core.packets(now, link, packets, &live.tree, &mut live.effects);
    }

    pub fn on_client(&mut self, cx: &mut Ctx<'_>, conn: ConnId, msg: FromClient) {
        let Some(live) = self.live.as_mut() else {
            return;
        };
        match msg {
            FromClient::Connect(request) => {
                if !live.serving {
                    cx.out.push(Out::Client { conn, msg: ToClient::Closed });
                    return;
                }
                live.conns.insert(conn, Conn { session_id: None });
                live.inputs.push(SequencerInput::Connect { origin: origin(conn), request });
            }
            FromClient::Request { xid, request } => {
                let Some(session_id) = live.conns.get(&conn).and_then(|c| c.session_id) else {
                    cx.out.push(Out::Client { conn, msg: ToClient::Closed });
                    live.conns.remove(&conn);
                    return;
                };
                live.touched.insert(session_id);
                match request {
                    Request::Write(_)
                    | Request::Multi(_)
                    | Request::Sync(_)
                    | Request::CloseSession
                    | Request::Reconfig(_) => {
                        live.inputs.push(SequencerInput::Write(WriteRequest {
                            origin: origin(conn),
                            session_id,
                            xid,
                            work: Sequenced::Request(request),
                            auth: Arc::new(client_identity()),
                        }));
                    }
                    read => {
                        let auth = client_identity();
                        let reader = Reader { tree: &live.tree, auth: &auth, session_id, skip_acl: false };
                        let reply = ferrokeeper::read::answer(&reader, conn, &mut live.watches, xid, &read);
                        assert!(reply.events.is_empty(), "the simulated clients send no SetWatches");
                        let (zxid, err) = (live.tree.last_processed_zxid(), reply.err.as_i32());
                        let header = ReplyHeader { xid: reply.xid, zxid, err };
                        let body = (reply.err == ErrorCode::Ok).then_some(reply.response);
                        cx.out.push(Out::Client { conn, msg: ToClient::Reply { header, body } });
                    }
                }
            }
            FromClient::Ping => {
                if let Some(session_id) = live.conns.get(&conn).and_then(|c| c.session_id) {
                    live.touched.insert(session_id);
                }
            }
            FromClient::Close => {
                live.watches.remove_connection(conn);
                if let Some(Conn { session_id: Some(session_id) }) = live.conns.remove(&conn) {
                    live.inputs.push(SequencerInput::Disconnected { origin: origin(conn), session_id });
                }
            }
        }
        self.finish_step(cx);
    }

    /// An fsync finished: what was written when it started is durable.
    pub fn on_fsync(&mut self, cx: &mut Ctx<'_>, generation: u64, count: usize) {
        let Some(live) = self.live.as_mut() else { return };
        live.fsync_running = false;
        if generation == live.generation {
            let durable: Vec<Txn> = live.written.drain(..count.min(live.written.len())).collect();
            if let Some(last) = durable.last().map(|t| t.header.zxid) {
                self.disk.log.extend(durable.iter().cloned());
                if !planted::is_planted(PlantedBug::AckBeforeFsync) {
                    live.apply.persisted(durable);
                    live.core.persisted(cx.now.mono_ms, last, &mut live.effects);
                }
            }
        }
        if !live.written.is_empty() {
            live.fsync_running = true;
            cx.out.push(Out::Fsync { generation: live.generation });
        }
        self.finish_step(cx);
    }

    /// How many written txns an fsync starting now covers.
    pub fn fsync_size(&self) -> usize {
        self.live.as_ref().map_or(0, |l| l.written.len())
    }

    /// A timer: the core's deadline.
    pub fn on_wake(&mut self, cx: &mut Ctx<'_>) {
        self.finish_step(cx);
    }

    /// The end of every step, as the member thread's loop ends each turn: the gathered client
    /// inputs and due timers, the effects carried out, the applier run.
    fn finish_step(&mut self, cx: &mut Ctx<'_>) {
        let Some(live) = self.live.as_mut() else { return };
        if !live.touched.is_empty() {
            let touched = std::mem::take(&mut live.touched).into_iter().collect();
            live.inputs.push(SequencerInput::Touch(touched));
        }
        let mut inputs = std::mem::take(&mut live.inputs);
        live.core.turn(cx.now, &mut inputs, &live.tree, &mut live.effects);
        self.carry_out(cx);
    }

    /// The production effect loop ([`drive`]) over this member's simulated disk, links and clients.
    fn carry_out(&mut self, cx: &mut Ctx<'_>) {
        drive(&mut Driving { member: self, cx });
        self.run_applier(cx);
        self.flush_links(cx);
    }

    fn carry_out_one(&mut self, cx: &mut Ctx<'_>, effect: Effect) {
        let effect = match effect {
            Effect::Truncate(zxid) => return self.truncate(cx, zxid),
            Effect::ReceiveSnapshot(zxid) => return self.load_received_snapshot(cx, zxid),
            Effect::PersistAcceptedEpoch(epoch) => return self.disk.accepted_epoch = Some(epoch),
            Effect::MarkEpochUpdate => return self.disk.updating_epoch = true,
            Effect::Healed => {
                self.healed += 1;
                return self.disk.damaged = false;
            }
            Effect::PersistCurrentEpoch(epoch) => {
                self.disk.current_epoch = Some(epoch);
                self.disk.updating_epoch = false;
                return;
            }
            effect => effect,
        };
        let live = self.live.as_mut().expect("effects come from a live core");
        match effect {
            Effect::Notify { to, notification } => {
                cx.out.push(Out::Peer { to: (to - 1) as usize, msg: PeerMsg::Notify(notification) })
            }
            Effect::ConnectToLeader { link, leader } => {
                let to = (leader - 1) as usize;
                let ours =
                    PeerLink { peer: to, peer_link: None, adopted: true, held: Vec::new(), queue: VecDeque::new() };
                live.links.insert(link, ours);
                cx.out.push(Out::Peer { to, msg: PeerMsg::QuorumConnect { link } });
            }
            Effect::AdoptLearner(link) => {
                if let Some(ours) = live.links.get_mut(&link) {
                    ours.adopted = true;
                    let held = std::mem::take(&mut ours.held);
                    if !held.is_empty() {
                        live.core.packets(cx.now, link, held, &live.tree, &mut live.effects);
                    }
                }
            }
            Effect::Send(link, packet) => {
                if let Some(ours) = live.links.get_mut(&link) {
                    ours.queue.push_back(Outgoing::Packet(packet));
                }
            }
            Effect::SendSnapshot(link, zxid) => {
                if let Some(ours) = live.links.get_mut(&link) {
                    ours.queue.push_back(Outgoing::Snapshot(zxid));
                }
            }
            Effect::Close(link) => {
                live.received.remove(&link);
                if let Some(PeerLink { peer, peer_link: Some(theirs), .. }) = live.links.remove(&link) {
                    cx.out.push(Out::Peer { to: peer, msg: PeerMsg::QuorumClosed { link: theirs } });
                }
            }
            Effect::Log(txns) if planted::is_planted(PlantedBug::AckBeforeFsync) => {
                // The planted bug: reported durable as soon as it is written (but still only written).
                if let Some(last) = txns.last().map(|t| t.header.zxid) {
                    live.apply.persisted(txns.iter().cloned());
                    live.written.extend(txns);
                    live.core.persisted(cx.now.mono_ms, last, &mut live.effects);
                }
                if !live.fsync_running {
                    live.fsync_running = true;
                    cx.out.push(Out::Fsync { generation: live.generation });
                }
            }
            Effect::Log(txns) => {
                live.written.extend(txns);
                if !live.fsync_running {
                    live.fsync_running = true;
                    cx.out.push(Out::Fsync { generation: live.generation });
                }
            }
            Effect::Routes(routes) => live.apply.add_routes(routes),
            // Counted for operators; nothing to simulate.
            Effect::WakeApplier | Effect::Tally(_) => {}
            // As the driver does: nothing without reconfigEnabled.
            Effect::AdoptConfig(_) | Effect::Activate(_) if !self.reconfig => {}
            Effect::AdoptConfig(text) => {
                let startup = &self.settings.election.config;
                if let Some(adoption) = adoption(&text, live.in_force.version, startup) {
                    if adoption.set_config_node {
                        let version = version_of(&text).expect("adoption read it");
                        ferrokeeper::config::set_config_node(&mut live.tree, &text, version);
                    }
                    self.activate(&text);
                }
            }
            Effect::Activate(text) => self.activate(&text),
            Effect::CommitThrough(zxid) => live.apply.commit_through(zxid),
            Effect::Notice(notice) => notice_to_client(cx, live, notice),
            Effect::Status { state: _, serving } => live.serving = serving,
            Effect::EpochStart(zxid) => cx.out.push(Out::Established { epoch: epoch_of(zxid) }),
            Effect::Truncate(_)
            | Effect::ReceiveSnapshot(_)
            | Effect::PersistAcceptedEpoch(_)
            | Effect::PersistCurrentEpoch(_)
            | Effect::MarkEpochUpdate
            | Effect::Healed
            | Effect::RoleEnded(_) => unreachable!("handled above"),
        }
    }

    /// A membership activated, as the driver does it (the election's links need no addresses here): in
    /// force, and on disk.
    fn activate(&mut self, text: &[u8]) {
        let text = String::from_utf8_lossy(text).into_owned();
        let membership = Membership::parse(&text)
            .unwrap_or_else(|e| panic!("member {}: an activated membership is unreadable: {e}: {text}", self.sid));
        let live = self.live.as_mut().expect("up");
        live.core.activate(&membership);
        live.in_force = membership.clone();
        self.activations.push((membership.version, membership.text()));
        self.disk.membership = Some(text);
    }

    /// TRUNC: the log (and a newer snapshot) cut after `zxid`, the tree rebuilt from the disk.
    fn truncate(&mut self, cx: &mut Ctx<'_>, zxid: i64) {
        self.settle(cx);
        self.disk.truncate_after(zxid);
        self.reload();
    }

    /// SNAP: the snapshot received on the link replaces the disk's; what this member logged after its
    /// point is not the leader's history and goes.
    fn load_received_snapshot(&mut self, cx: &mut Ctx<'_>, zxid: i64) {
        self.settle(cx);
        let live = self.live.as_mut().expect("up");
        let link = live.received.iter().find(|(_, (z, _))| *z == zxid).map(|(link, _)| *link);
        let Some((_, txns)) = link.and_then(|link| live.received.remove(&link)) else {
            self.failures.push(format!("member {}: told to load a snapshot at {zxid:#x} it never got", self.sid));
            return;
        };
        self.disk.log.retain(|t| t.header.zxid <= zxid);
        self.disk.snapshot = txns;
        self.disk.snapshot_zxid = zxid;
        self.reload();
    }

    /// The log stage flushes (everything written becomes durable) and the applier resets (what was
    /// logged is applied, nobody waits any more), as the production `settle` does.
    fn settle(&mut self, cx: &mut Ctx<'_>) {
        let live = self.live.as_mut().expect("up");
        live.generation += 1;
        let written: Vec<Txn> = live.written.drain(..).collect();
        self.disk.log.extend(written.iter().cloned());
        if !planted::is_planted(PlantedBug::AckBeforeFsync) {
            live.apply.persisted(written);
        }
        // As the applier's reset: what it applies is delivered like any batch (digests checked; no route
        // waits any more and no watch fires for these txns: ApplyCore::reset).
        let applied = live.apply.reset(&mut live.tree);
        self.deliver(cx, applied);
    }

    /// The tree rebuilt from the disk, as recovery builds it.
    fn reload(&mut self) {
        let live = self.live.as_mut().expect("up");
        live.tree = rebuild(&self.disk, self.tree_seed, self.reconfig.then_some(&live.in_force));
    }

    /// The role ended, as the member thread's `look(true)`: its links close, the pipeline settles, the
    /// clients are closed, the core looks again.
    fn between_roles(&mut self, cx: &mut Ctx<'_>) {
        let live = self.live.as_mut().expect("up");
        for (_, link) in std::mem::take(&mut live.links) {
            if let (peer, Some(theirs)) = (link.peer, link.peer_link) {
                cx.out.push(Out::Peer { to: peer, msg: PeerMsg::QuorumClosed { link: theirs } });
            }
        }
        live.received.clear();
        self.settle(cx);
        let live = self.live.as_mut().expect("up");
        for conn in std::mem::take(&mut live.conns).into_keys() {
            cx.out.push(Out::Client { conn, msg: ToClient::Closed });
        }
        live.watches = WatchTable::new(self.tree_seed);
        live.inputs.clear();
        live.serving = false;
        self.look(cx);
    }

    /// Applies what is durable and committed, and sends the replies it releases.
    fn run_applier(&mut self, cx: &mut Ctx<'_>) {
        let Some(live) = self.live.as_mut() else { return };
        let applied = live.apply.flush(&mut live.tree, Vec::new());
        self.deliver(cx, applied);
    }

    /// What the applier applied goes to the clients, as a shard delivers it.
    fn deliver(&mut self, cx: &mut Ctx<'_>, applied: Applied) {
        let live = self.live.as_mut().expect("up");
        for (zxid, prepared, tree) in applied.digest_mismatches {
            self.failures.push(format!(
                "member {}: digest mismatch after {zxid:#x}: prepared {prepared:#x}, tree {tree:#x}",
                self.sid
            ));
        }
        let mut fired = Vec::new();
        in_delivery_order(&applied.triggers, applied.replies.into_iter().flatten(), |delivery| match delivery {
            Delivery::Reply(reply) => reply_to_client(cx, live, reply),
            Delivery::Trigger(trigger) => {
                live.watches.trigger(trigger, &mut fired);
                // The table's order is a hash's; the run's must not depend on it.
                fired.sort_by_key(|(conn, _, _)| *conn);
                for (conn, event, path) in fired.drain(..) {
                    if live.conns.contains_key(&conn) {
                        let msg = ToClient::Event { event_type: event.as_i32(), path };
                        cx.out.push(Out::Client { conn, msg });
                    }
                }
            }
        });
    }

    /// Sends what each link has queued, a snapshot once this member applied through its zxid.
    fn flush_links(&mut self, cx: &mut Ctx<'_>) {
        let Some(live) = self.live.as_mut() else { return };
        let applied = live.tree.last_processed_zxid();
        for (&from_link, ours) in live.links.iter_mut() {
            let Some(theirs) = ours.peer_link else { continue };
            while let Some(next) = ours.queue.front() {
                let msg = match next {
                    Outgoing::Packet(packet) => PeerMsg::Packet { link: theirs, from_link, packet: packet.clone() },
                    Outgoing::Snapshot(zxid) if *zxid <= applied => {
                        let txns = self.disk.history().into_iter().filter(|t| t.header.zxid <= *zxid).collect();
                        PeerMsg::Snapshot { link: theirs, from_link, zxid: *zxid, txns: Arc::new(txns) }
                    }
                    Outgoing::Snapshot(_) => break,
                };
                ours.queue.pop_front();
                cx.out.push(Out::Peer { to: ours.peer, msg });
            }
        }
    }
}

/// Every simulated client connects from loopback (ZooKeeper's `ip` identity).
fn client_identity() -> AuthIds {
    AuthIds::for_peer(std::net::IpAddr::from([127, 0, 0, 1]))
}

fn origin(conn: ConnId) -> Origin {
    Origin { shard: 0, conn }
}

fn notice_to_client(cx: &mut Ctx<'_>, live: &mut Live, notice: Notice) {
    match notice {
        Notice::Reattached { origin, session_id, timeout_ms } => {
            if let Some(conn) = live.conns.get_mut(&origin.conn) {
                conn.session_id = Some(session_id);
                cx.out.push(Out::Client { conn: origin.conn, msg: ToClient::Connected { session_id, timeout_ms } });
            }
        }
        Notice::Refused { origin } => {
            live.conns.remove(&origin.conn);
            cx.out.push(Out::Client { conn: origin.conn, msg: ToClient::Expired });
        }
        Notice::Close { origin, .. } => {
            live.conns.remove(&origin.conn);
            cx.out.push(Out::Client { conn: origin.conn, msg: ToClient::Closed });
        }
        Notice::Revalidated { .. } => unreachable!("answered to a learner, not a client"),
    }
}

fn reply_to_client(cx: &mut Ctx<'_>, live: &mut Live, reply: ShardReply) {
    match reply {
        ShardReply::Response { conn, xid, zxid, err, response, close_after } => {
            if !live.conns.contains_key(&conn) {
                return;
            }
            let header = ReplyHeader { xid, zxid, err: err.as_i32() };
            let body = (err == ErrorCode::Ok).then_some(response);
            cx.out.push(Out::Client { conn, msg: ToClient::Reply { header, body } });
            if close_after {
                live.conns.remove(&conn);
                cx.out.push(Out::Client { conn, msg: ToClient::Closed });
            }
        }
        ShardReply::Connected { conn, session_id, timeout_ms } => {
            if let Some(c) = live.conns.get_mut(&conn) {
                c.session_id = Some(session_id);
                cx.out.push(Out::Client { conn, msg: ToClient::Connected { session_id, timeout_ms } });
            }
        }
        ShardReply::Close { conn, .. } => {
            if live.conns.remove(&conn).is_some() {
                cx.out.push(Out::Client { conn, msg: ToClient::Closed });
            }
        }
        ShardReply::EndSession { session_id } => {
            let ended: Vec<ConnId> =
                live.conns.iter().filter(|(_, c)| c.session_id == Some(session_id)).map(|(id, _)| *id).collect();
            for conn in ended {
                live.conns.remove(&conn);
                cx.out.push(Out::Client { conn, msg: ToClient::Closed });
            }
        }
    }
}

/// A simulated member as the effect loop's driver.
struct Driving<'m, 'c, 'x> {
    member: &'m mut SimMember,
    cx: &'c mut Ctx<'x>,
}

impl EffectDriver for Driving<'_, '_, '_> {
    fn core_and_effects(&mut self) -> Option<(&mut MemberCore, &mut Vec<Effect>)> {
        self.member.live.as_mut().map(|live| (&mut live.core, &mut live.effects))
    }

    /// Nothing here fails at once: a simulated leader that is down or cut off fails the connection
    /// later, as a closed link.
    fn carry_out_one(&mut self, effect: Effect) -> Result<(), String> {
        self.member.carry_out_one(self.cx, effect);
        Ok(())
    }

    fn after_batch(&mut self) {
        self.member.run_applier(self.cx);
        self.member.flush_links(self.cx);
    }

    fn between_roles(&mut self) {
        self.member.between_roles(self.cx);
    }
}
