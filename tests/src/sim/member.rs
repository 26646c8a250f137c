//! One simulated ensemble member: the production [`MemberCore`] (election, ZAB roles, sequencer) and
//! [`ApplyCore`] over a production [`DataTree`], with a simulated disk, network links and client
//! connections in place of the pipeline's threads. Everything the production member thread does with
//! the core's effects is done here in memory, in the same order; what the real pipeline does between
//! threads (the log stage's group commit, the applier) happens here as events of the one simulated
//! clock.
//!
//! The disk is the production storage engine on a simulated filesystem ([`SimFs`]): the txn log writer
//! appends each group commit (an fsync covers what was queued when it started), snapshots are written
//! every few hundred txns and received from leaders, TRUNC and SNAP rewrite the directory as the member
//! thread does (`ferrokeeper::storage`), the epoch files and the damage mark are files, and a start runs
//! the server's start-up recovery (`ferrokeeper::storage::recover_at_start`: a damaged member keeps what
//! precedes the damage and is marked). A killed process loses what it had queued but not yet written;
//! with storage faults an fsync fails (EIO: the role ends, as the log stage makes it) or the machine
//! dies inside one (its unsynced sectors lost or torn), and bits flip at rest.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;
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
use ferrokeeper::requests::{Local, RequestQueue, Routing, SessionRules, answer_local, route};
use ferrokeeper::sequencer::{Notice, Now, Origin, SequencerInput, WriteRequest};
use ferrokeeper::storage::{
    Dirs, ONLY_VOTER, Recovering, StartSnapshot, adopt_received_snapshot, check_rewritten, recover_at_start,
    start_snapshot, truncate_after,
};
use ferrokeeper::watch::WatchTable;
use ferrokeeper::zab::config_text::version_of;
use ferrokeeper::zab::{LinkId, Sid, epoch_of};
use fk_engine::damage::read_mark;
use fk_engine::epoch::{
    ACCEPTED_EPOCH, CURRENT_EPOCH, clear_epoch_update, load_epochs, mark_epoch_update, write_epoch,
};
use fk_engine::files::{LOG_PREFIX, SNAPSHOT_PREFIX, list_in};
use fk_engine::log::{LogWriter, PwriteDevice, read_log_in};

use fk_engine::snap::{Compression, WriteOptions, write_snapshot_in};
use fk_engine::tree::{DataTree, HashSeed, TreeOptions};
use fk_net::client::{ConnectRequest, ErrorCode, ReplyHeader, Request, Response};
use fk_net::quorum::{Notification, PacketType, QuorumPacket, ServerState};
use fk_net::txn::Txn;

use super::fs::{FsFaults, Held, SimFs, disk_trouble};
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
    /// The process died (its machine died in an fsync, or its disk failed it where the server stops):
    /// nothing it sends after this leaves; the world crashes it and starts it again later.
    Died,
}

/// The step's world: the time, and where the step's messages go.
pub struct Ctx<'a> {
    pub now: Now,
    pub out: &'a mut Vec<Out>,
}

/// A member's data directory (snapshots, logs, epoch files and the damage mark together).
const DATA_DIR: &str = "/data/version-2";

fn dirs() -> Dirs {
    Dirs { snap: DATA_DIR.into(), log: DATA_DIR.into() }
}

/// A member's disk: its own simulated filesystem, which outlives the process.
pub struct Disk {
    pub fs: SimFs,
    /// The txns each snapshot written holds, by its zxid: a snapshot holds a tree, and the checkers
    /// compare histories. In shared pieces, oldest first: a snapshot's are an older one's and the txns
    /// logged since.
    snapshot_txns: BTreeMap<i64, Vec<Arc<Vec<Txn>>>>,
    /// The newest membership activated (`zoo.cfg.dynamic.<version>`, zoo.cfg pointing at it), written
    /// durably at activation; `None`: the one the member was configured with.
    pub membership: Option<String>,
    /// A bit was flipped since the member last started: damage it may yet find.
    pub flip_unfound: bool,
    /// Starts that found damage (and marked the member).
    pub found_damaged: u64,
    /// Bits flipped in the epoch files.
    pub epoch_flips: u64,
}

impl Disk {
    fn new(fs: SimFs) -> Disk {
        Disk {
            fs,
            snapshot_txns: BTreeMap::new(),
            membership: None,
            flip_unfound: false,
            found_damaged: 0,
            epoch_flips: 0,
        }
    }

    /// Every txn the disk holds, in order, as recovery reads it: the newest snapshot's, then the logs'
    /// after it (each log up to its end or torn tail).
    pub fn history(&self) -> Vec<Txn> {
        let (zxid, pieces) = self.newest_snapshot();
        let mut history: Vec<Txn> = pieces.iter().flat_map(|piece| piece.iter().cloned()).collect();
        history.extend(self.logged_after(zxid));
        history
    }

    /// The newest snapshot on disk this run wrote: its zxid and txns (none: zxid 0, no txns).
    fn newest_snapshot(&self) -> (i64, Vec<Arc<Vec<Txn>>>) {
        let snapshots = list_in(&self.fs.inspector(), Path::new(DATA_DIR), SNAPSHOT_PREFIX).unwrap_or_default();
        let newest = snapshots.iter().rev().find_map(|(zxid, _)| Some((*zxid, self.snapshot_txns.get(zxid)?)));
        newest.map_or((0, Vec::new()), |(zxid, pieces)| (zxid, pieces.clone()))
    }

    /// The logs' txns after `after`, in order (each readable log up to its end or torn tail). Every log
    /// is read: a name says where a log started, not where it ends (a log cut back by a TRUNC or by damage
    /// set aside goes on at the next zxid, under an older name than a later log's set aside).
    fn logged_after(&self, after: i64) -> Vec<Txn> {
        let fs = self.fs.inspector();
        let logs = list_in(&fs, Path::new(DATA_DIR), LOG_PREFIX).unwrap_or_default();
        let mut last = after;
        let mut txns = Vec::new();
        for (_, path) in &logs {
            // One recovery has no need of (an old log under a newer snapshot) may be damaged.
            let Ok(log) = read_log_in(&fs, path) else { continue };
            for record in log.records {
                if record.txn.header.zxid > last {
                    last = record.txn.header.zxid;
                    txns.push(record.txn);
                }
            }
        }
        txns
    }

    /// The damage mark is there: start-up found damage, and no leader has synchronised the member since.
    pub fn damaged(&self) -> bool {
        read_mark(&self.fs.inspector(), Path::new(DATA_DIR)).ok().flatten().is_some()
    }

    /// Writes a snapshot of `tree`, whose txns are `txns` (by default: the disk's through its zxid);
    /// an I/O error leaves none (the snapshotter logs it and goes on).
    fn snapshot(
        &mut self,
        tree: &DataTree,
        txns: Option<Arc<Vec<Txn>>>,
        compression: Compression,
    ) -> std::io::Result<()> {
        let zxid = tree.last_processed_zxid();
        let pieces = match txns {
            Some(txns) => vec![txns],
            None => {
                let (base, mut pieces) = self.newest_snapshot();
                if base > zxid {
                    let history = pieces.iter().flat_map(|piece| piece.iter());
                    pieces = vec![Arc::new(history.filter(|t| t.header.zxid <= zxid).cloned().collect())];
                }
                let logged: Vec<Txn> =
                    self.logged_after(base).into_iter().take_while(|t| t.header.zxid <= zxid).collect();
                if !logged.is_empty() {
                    pieces.push(Arc::new(logged));
                }
                pieces
            }
        };
        self.snapshot_txns.insert(zxid, pieces);
        let options = WriteOptions { force_sync: true, compression, last_zxid_trailer: false };
        write_snapshot_in(&self.fs, &Held(tree), Path::new(DATA_DIR), options).map(drop)
    }

    /// A bit flipped at rest in a log or snapshot: most often in the newest log (the txns a quorum of
    /// two may hold, so that losing them matters), never in the newest record of all (a flip there
    /// cannot be told from a torn write, for us as for ZooKeeper). Sometimes in an epoch file instead,
    /// where it turns a digit into a letter: a flip to another digit leaves a number ZooKeeper's format
    /// (no checksum) cannot show wrong, for us as for ZooKeeper. Returns where.
    pub fn flip_a_bit(&mut self, rng: &mut Rng) -> Option<(std::path::PathBuf, usize)> {
        let (dir, fs) = (Path::new(DATA_DIR), self.fs.inspector());
        if rng.chance(0.15) {
            let name = rng.pick(&[CURRENT_EPOCH, ACCEPTED_EPOCH]);
            let path = dir.join(name);
            if let Some(len) = fs.len(&path).filter(|&len| len > 0) {
                let offset = rng.below(len as u64) as usize;
                self.fs.flip_bit(&path, offset, 6);
                self.flip_unfound = true;
                self.epoch_flips += 1;
                return Some((path, offset));
            }
        }
        let logs = list_in(&fs, dir, LOG_PREFIX).ok()?;
        let newest = logs.iter().rev().find_map(|(_, path)| {
            let log = read_log_in(&fs, path).ok()?;
            log.records.last().map(|r| (path.clone(), r.offset as usize))
        });
        let snapshots = list_in(&fs, dir, SNAPSHOT_PREFIX).ok()?;
        let files: Vec<_> = logs.into_iter().chain(snapshots).map(|(_, path)| path).collect();
        let path = match &newest {
            Some((path, _)) if rng.chance(0.8) => path.clone(),
            _ if files.is_empty() => return None,
            _ => rng.pick(&files).clone(),
        };
        let limit = match &newest {
            Some((newest_path, offset)) if *newest_path == path => *offset,
            _ => self.fs.len(&path)?,
        };
        if limit == 0 {
            return None;
        }
        // In the newest log, most often near its end.
        let offset = if newest.as_ref().is_some_and(|(p, _)| *p == path) && rng.chance(0.8) {
            limit - 1 - rng.below(limit.min(4_096) as u64) as usize
        } else {
            rng.below(limit as u64) as usize
        };
        self.fs.flip_bit(&path, offset, rng.below(8) as u8);
        self.flip_unfound = true;
        Some((path, offset))
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
    /// The session's requests waiting for their reply (the shard's per-session core).
    requests: RequestQueue<(), Local>,
}

/// The simulated members' sessions: no read-only mode, no required authentication, no SASL provider.
const SESSION_RULES: SessionRules<'static> = SessionRules { read_only: false, required_schemes: None, sasl: false };

/// What lives while the process runs.
struct Live {
    core: MemberCore,
    tree: DataTree,
    apply: ApplyCore,
    writer: LogWriter,
    /// Txns made durable since the last snapshot.
    since_snapshot: u64,
    /// Queued for the log stage, not yet written.
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
    /// A snapshot after this many durable txns (the log stage's snapCount, drawn per member).
    snap_every: u64,
    live: Option<Live>,
    /// The process died in this step ([`Out::Died`]): it does nothing more until the world crashes it.
    dead: bool,
    /// Bumped at each crash: messages for an earlier incarnation are lost with it.
    pub incarnation: u64,
    /// Problems found in this member (checked by the world).
    pub failures: Vec<String>,
    /// The peers this member's election links reach now (the world's to say, before each event).
    pub connected: Vec<Sid>,
    /// Times a leader synchronised this member after damage (the core's [`Effect::Healed`]).
    pub healed: u64,
}

/// With reconfigEnabled, `/zookeeper/config` as the production member leaves it after recovery
/// ([`refresh_config_node`]).
fn with_config_node(mut tree: DataTree, in_force: Option<&Membership>) -> DataTree {
    if let Some(membership) = in_force {
        refresh_config_node(&mut tree, membership.text().as_bytes(), membership.version, true);
    }
    tree
}

/// The production log stage's file preallocation, scaled down to the simulation's small logs.
const PREALLOC_BYTES: u64 = 16 * 1024;

impl SimMember {
    pub fn new(index: usize, settings: MemberSettings, reconfig: bool, faults: FsFaults, rng: &mut Rng) -> SimMember {
        let tree_seed = HashSeed([rng.next_u64(), rng.next_u64(), rng.next_u64(), rng.next_u64()]);
        let disk = Disk::new(SimFs::new(rng.fork(), faults));
        let snap_every = rng.between(100, 600);
        SimMember {
            index,
            sid: settings.election.my_id,
            settings,
            reconfig,
            activations: Vec::new(),
            tree_seed,
            disk,
            snap_every,
            live: None,
            dead: false,
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

    /// What this member may do about damage, as the server's configuration says it
    /// (`ferrokeeper::storage::recovering`): an ensemble member, unless it is the only voter.
    fn recovering(&self, in_force: &Membership) -> Recovering {
        let voters =
            if self.reconfig { in_force.voters() } else { self.settings.election.voters.iter().copied().collect() };
        let only_voter = voters.into_iter().all(|id| id == self.sid);
        Recovering { standalone: false, cannot_recover_from_ensemble: only_voter.then_some(ONLY_VOTER) }
    }

    fn tree_options(&self) -> TreeOptions {
        TreeOptions { extended_types: true, hash_seed: self.tree_seed }
    }

    fn writer(&self, last_zxid: i64) -> LogWriter {
        let fs: Arc<dyn fk_engine::fs::Fs> = Arc::new(self.disk.fs.clone());
        LogWriter::on(fs, Path::new(DATA_DIR), Box::new(PwriteDevice), PREALLOC_BYTES, true, last_zxid)
    }

    /// Storage faults strike from now on as `faults` says.
    pub fn set_storage_faults(&self, faults: FsFaults) {
        self.disk.fs.set_faults(faults);
    }

    /// Starts the process: the server's start-up recovery on the disk (a damaged member keeps what
    /// precedes the damage, marked), the membership (the newest dynamic file, else the configured one),
    /// then an election.
    pub fn start(&mut self, cx: &mut Ctx<'_>) {
        assert!(self.live.is_none(), "member {} started twice", self.sid);
        self.disk.fs.power_on();
        self.dead = false;
        let configured = String::from_utf8_lossy(&self.settings.election.config).into_owned();
        let text = self.disk.membership.as_deref().unwrap_or(&configured);
        let in_force = Membership::parse(text).expect("the simulator's memberships read back");
        let marked_before = self.disk.damaged();
        let recovering = self.recovering(&in_force);
        let (recovered, damaged) = match recover_at_start(&self.disk.fs, &dirs(), self.tree_options(), &recovering) {
            Ok(found) => found,
            Err(e) => return self.die(cx, format!("it would refuse to start: {e:#}")),
        };
        self.disk.flip_unfound = false;
        if damaged.is_some() && !marked_before {
            self.disk.found_damaged += 1;
        }
        self.check_recovered(&recovered.tree, "start-up");
        let owed = start_snapshot(&recovered);
        let tree = with_config_node(recovered.tree, self.reconfig.then_some(&in_force));
        let last_zxid = tree.last_processed_zxid();
        let mut core = MemberCore::new(self.settings.clone(), &recovered.recent, damaged.is_some());
        if self.disk.membership.is_some() {
            core.activate(&in_force);
        }
        self.live = Some(Live {
            in_force,
            core,
            apply: ApplyCore::new(1, last_zxid),
            tree,
            writer: self.writer(last_zxid),
            since_snapshot: 0,
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
        // The snapshot start-up owes: the first one before anything is logged (its failure stops start-up),
        // a later one in the background (here at once; its failure only logged).
        match owed {
            StartSnapshot::Now => {
                let tree = &self.live.as_ref().expect("just started").tree;
                if let Err(e) = self.disk.snapshot(tree, None, Compression::None) {
                    return self.die(cx, format!("cannot write the first snapshot: {e}"));
                }
            }
            StartSnapshot::Soon => self.snapshot(cx),
            StartSnapshot::None => {}
        }
        self.look(cx);
        self.finish_step(cx);
    }

    /// The tree recovery built is the one the disk's history makes (the files hold what this run wrote
    /// to them, and recovery read them right).
    fn check_recovered(&mut self, tree: &DataTree, when: &str) {
        let mut model = DataTree::new(self.tree_options());
        let mut triggers = Vec::new();
        let history = self.disk.history();
        for txn in history.iter().take_while(|t| t.header.zxid <= tree.last_processed_zxid()) {
            fk_engine::txn::apply(&mut model, txn, &mut triggers);
            triggers.clear();
        }
        if model.digest() != tree.digest() {
            self.failures.push(format!(
                "member {}: at {when}, recovery built a tree at 0x{:x} that its {} txns of history do not make",
                self.sid,
                tree.last_processed_zxid(),
                history.len()
            ));
        }
    }

    /// The process stops, as the server stops on `reason`: a failed disk or a dead machine is the
    /// disk's doing, and the operator's supervisor starts it again; anything else would stop a real
    /// server for good, and fails the run.
    fn die(&mut self, cx: &mut Ctx<'_>, reason: String) {
        if self.dead {
            return;
        }
        self.dead = true;
        if !self.disk.fs.is_down() && !disk_trouble(&reason) {
            self.failures.push(format!("member {}: {reason}", self.sid));
        }
        cx.out.push(Out::Died);
    }

    /// A disk operation failed: the machine died under it (the process stops), or the error fails
    /// the effect, which ends the role as the member thread's does.
    fn disk_failed(&mut self, cx: &mut Ctx<'_>, what: String) -> Result<(), String> {
        if self.disk.fs.is_down() {
            self.die(cx, what);
            return Ok(());
        }
        Err(what)
    }

    /// SIGKILL: what was queued for the log stage but not yet written dies with the process (the
    /// machine's page cache keeps what was written). Returns the connections that broke.
    pub fn crash(&mut self) -> (Vec<ConnId>, Vec<(usize, LinkId)>) {
        let Some(live) = self.live.take() else { return (Vec::new(), Vec::new()) };
        self.incarnation += 1;
        let links = live.links.values().filter_map(|l| l.peer_link.map(|p| (l.peer, p))).collect();
        (live.conns.into_keys().collect(), links)
    }

    /// The production start-up rules for the epoch files (`fk_engine::epoch::load_epochs`: read, decide,
    /// write) on this member's disk; a member they refuse stops, as the member thread does.
    fn facts(&mut self, cx: &mut Ctx<'_>) -> Option<DiskFacts> {
        let last_zxid = self.live.as_ref()?.tree.last_processed_zxid();
        match load_epochs(&self.disk.fs, Path::new(DATA_DIR), last_zxid) {
            Ok((epochs, _)) => {
                Some(DiskFacts { last_zxid, accepted_epoch: epochs.accepted, current_epoch: epochs.current })
            }
            Err(e) => {
                self.die(cx, format!("cannot read its epochs: {e}"));
                None
            }
        }
    }

    fn look(&mut self, cx: &mut Ctx<'_>) {
        if self.dead {
            return;
        }
        let Some(facts) = self.facts(cx) else { return };
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
                live.conns.insert(conn, Conn { session_id: None, requests: RequestQueue::default() });
                live.inputs.push(SequencerInput::Connect { origin: origin(conn), request });
            }
            FromClient::Request { xid, request } => {
                let Some(session_id) = live.conns.get(&conn).and_then(|c| c.session_id) else {
                    cx.out.push(Out::Client { conn, msg: ToClient::Closed });
                    live.conns.remove(&conn);
                    return;
                };
                live.touched.insert(session_id);
                let requests = &mut live.conns.get_mut(&conn).expect("looked up above").requests;
                match route(request, &SESSION_RULES) {
                    Routing::Sequence { op, work } => {
                        requests.write(xid, op, ());
                        let auth = Arc::new(client_identity());
                        let write = WriteRequest { origin: origin(conn), session_id, xid, work, auth };
                        live.inputs.push(SequencerInput::Write(write));
                    }
                    Routing::Local(local) => {
                        requests.local(xid, local);
                        answer_ready(cx, live, conn);
                    }
                    other => self.failures.push(format!(
                        "member {}: a simulated client's request became {other:?}; they send no auth or SASL",
                        self.sid
                    )),
                }
            }
            FromClient::Ping => {
                if let Some(session_id) = live.conns.get(&conn).and_then(|c| c.session_id) {
                    live.touched.insert(session_id);
                }
            }
            FromClient::Close => {
                live.watches.remove_connection(conn);
                if let Some(Conn { session_id: Some(session_id), .. }) = live.conns.remove(&conn) {
                    live.inputs.push(SequencerInput::Disconnected { origin: origin(conn), session_id });
                }
            }
        }
        self.finish_step(cx);
    }

    /// An fsync finished: what was queued when it started is written and durable (the log stage's
    /// group commit), or the append failed.
    pub fn on_fsync(&mut self, cx: &mut Ctx<'_>, generation: u64, count: usize) {
        let Some(live) = self.live.as_mut() else { return };
        live.fsync_running = false;
        if generation == live.generation {
            let durable: Vec<Txn> = live.written.drain(..count.min(live.written.len())).collect();
            if let Some(last) = durable.last().map(|t| t.header.zxid) {
                if let Err(e) = live.writer.append(&durable) {
                    return self.log_failed(cx, e);
                }
                live.since_snapshot += durable.len() as u64;
                if !planted::is_planted(PlantedBug::AckBeforeFsync) {
                    live.apply.persisted(durable);
                    live.core.persisted(cx.now.mono_ms, last, &mut live.effects);
                }
            }
        }
        if live.since_snapshot >= self.snap_every {
            self.snapshot(cx);
        }
        let Some(live) = self.live.as_mut().filter(|_| !self.dead) else { return };
        if !live.written.is_empty() {
            live.fsync_running = true;
            cx.out.push(Out::Fsync { generation: live.generation });
        }
        self.finish_step(cx);
    }

    /// An append failed, as the log stage handles it for a member: nothing of the batch is acknowledged,
    /// the log is cut back to its last durable batch, what the role queued after it is dropped, and the
    /// role ends (the member rejoins by synchronisation). A machine that died, or a log that cannot be
    /// cut back, stops the process.
    fn log_failed(&mut self, cx: &mut Ctx<'_>, error: std::io::Error) {
        let reason = format!("cannot write or sync the txn log: {error}");
        let live = self.live.as_mut().expect("up");
        if self.disk.fs.is_down() {
            return self.die(cx, reason);
        }
        if let Err(cut) = live.writer.rewind() {
            return self.die(cx, format!("{reason}; cannot cut the log back to its last durable batch: {cut}"));
        }
        live.written.clear();
        live.generation += 1;
        live.core.role_failed(reason, &mut live.effects);
        self.finish_step(cx);
    }

    /// The log stage's snapshot: the log rolls, and the tree as applied now is written (an I/O error
    /// leaves no snapshot, as the snapshotter logs and goes on).
    fn snapshot(&mut self, cx: &mut Ctx<'_>) {
        let live = self.live.as_mut().expect("up");
        live.since_snapshot = 0;
        live.writer.roll();
        let compression = [Compression::None, Compression::Gzip, Compression::Snappy][self.index % 3];
        if let Err(e) = self.disk.snapshot(&live.tree, None, compression)
            && self.disk.fs.is_down()
        {
            self.die(cx, format!("the machine died writing a snapshot: {e}"));
        }
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
        let Some(live) = self.live.as_mut().filter(|_| !self.dead) else { return };
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

    fn carry_out_one(&mut self, cx: &mut Ctx<'_>, effect: Effect) -> Result<(), String> {
        if self.dead {
            return Ok(());
        }
        let (fs, dir) = (&self.disk.fs, Path::new(DATA_DIR));
        let done = match effect {
            Effect::Truncate(zxid) => return self.truncate(cx, zxid),
            Effect::ReceiveSnapshot(zxid) => return self.load_received_snapshot(cx, zxid),
            Effect::PersistAcceptedEpoch(epoch) => {
                write_epoch(fs, dir, ACCEPTED_EPOCH, epoch).map_err(|e| e.to_string())
            }
            Effect::MarkEpochUpdate => mark_epoch_update(fs, dir).map_err(|e| e.to_string()),
            Effect::Healed => {
                self.healed += 1;
                fk_engine::damage::clear_mark(fs, dir).map_err(|e| e.to_string())
            }
            Effect::PersistCurrentEpoch(epoch) => write_epoch(fs, dir, CURRENT_EPOCH, epoch)
                .and_then(|()| clear_epoch_update(fs, dir))
                .map_err(|e| e.to_string()),
            effect => {
                self.carry_out_in_memory(cx, effect);
                return Ok(());
            }
        };
        match done {
            Ok(()) => Ok(()),
            Err(e) => self.disk_failed(cx, e),
        }
    }

    fn carry_out_in_memory(&mut self, cx: &mut Ctx<'_>, effect: Effect) {
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

    /// TRUNC, as the member thread rewrites its disk: the pipeline settles, the logs (and a newer
    /// snapshot) are cut after `zxid` (`ferrokeeper::storage::truncate_after`), the tree is recovered
    /// again.
    fn truncate(&mut self, cx: &mut Ctx<'_>, zxid: i64) -> Result<(), String> {
        self.settle(cx);
        if self.dead {
            return Ok(());
        }
        if let Err(e) = truncate_after(&self.disk.fs, &dirs(), zxid) {
            return self.disk_failed(cx, format!("{e:#}"));
        }
        self.reload(cx, zxid)
    }

    /// SNAP: the snapshot received on the link is written durably (as the quorum link writes what it
    /// receives), what this member logged after its point goes
    /// (`ferrokeeper::storage::adopt_received_snapshot`), and the tree is recovered again.
    fn load_received_snapshot(&mut self, cx: &mut Ctx<'_>, zxid: i64) -> Result<(), String> {
        self.settle(cx);
        if self.dead {
            return Ok(());
        }
        let options = self.tree_options();
        let live = self.live.as_mut().expect("up");
        let link = live.received.iter().find(|(_, (z, _))| *z == zxid).map(|(link, _)| *link);
        let Some((_, txns)) = link.and_then(|link| live.received.remove(&link)) else {
            self.failures.push(format!("member {}: told to load a snapshot at {zxid:#x} it never got", self.sid));
            return Ok(());
        };
        let mut tree = DataTree::new(options);
        let mut triggers = Vec::new();
        for txn in txns.iter() {
            fk_engine::txn::apply(&mut tree, txn, &mut triggers);
            triggers.clear();
        }
        // Named by the leader's zxid, which may be past its last txn (an epoch's start).
        tree.set_last_processed_zxid(zxid);
        let written = self.disk.snapshot(&tree, Some(txns), Compression::None).map_err(|e| e.to_string());
        if let Err(e) =
            written.and_then(|()| adopt_received_snapshot(&self.disk.fs, &dirs(), zxid).map_err(|e| format!("{e:#}")))
        {
            return self.disk_failed(cx, e);
        }
        self.reload(cx, zxid)
    }

    /// The log stage flushes (everything queued is written and durable) and the applier resets (what
    /// was logged is applied, nobody waits any more), as the production `settle` does. A failed write
    /// here is the log stage's failed batch: cut back and dropped (the role is ending anyway).
    fn settle(&mut self, cx: &mut Ctx<'_>) {
        let live = self.live.as_mut().expect("up");
        live.generation += 1;
        let written: Vec<Txn> = live.written.drain(..).collect();
        if !written.is_empty() {
            if let Err(e) = live.writer.append(&written) {
                let reason = format!("cannot write or sync the txn log: {e}");
                if self.disk.fs.is_down() {
                    return self.die(cx, reason);
                }
                if let Err(cut) = live.writer.rewind() {
                    return self.die(cx, format!("{reason}; cannot cut the log back: {cut}"));
                }
            } else if !planted::is_planted(PlantedBug::AckBeforeFsync) {
                live.since_snapshot += written.len() as u64;
                live.apply.persisted(written);
            }
        }
        // As the applier's reset: what it applies is delivered like any batch (digests checked; no route
        // waits any more and no watch fires for these txns: ApplyCore::reset).
        let applied = live.apply.reset(&mut live.tree);
        self.deliver(cx, applied);
    }

    /// The tree recovered from the disk again and the log restarted after it, as the member thread's
    /// `reload_tree` does; it must reach `zxid` ([`check_rewritten`]).
    fn reload(&mut self, cx: &mut Ctx<'_>, zxid: i64) -> Result<(), String> {
        let options = self.tree_options();
        let recovering = self.recovering(&self.live.as_ref().expect("up").in_force);
        let marked_before = self.disk.damaged();
        let (recovered, damaged) = match recover_at_start(&self.disk.fs, &dirs(), options, &recovering) {
            Ok(found) => found,
            Err(e) => return self.disk_failed(cx, format!("{e:#}")),
        };
        if damaged.is_some() && !marked_before {
            self.disk.found_damaged += 1;
            self.disk.flip_unfound = false;
        }
        self.check_recovered(&recovered.tree, "a rewrite");
        let live = self.live.as_mut().expect("up");
        if damaged.is_some() && !live.core.is_damaged() {
            live.core.found_damaged();
        }
        live.tree = with_config_node(recovered.tree, self.reconfig.then_some(&live.in_force));
        live.writer.restart(live.tree.last_processed_zxid());
        check_rewritten(zxid, live.tree.last_processed_zxid())
    }

    /// Between roles (member::drive::between_roles): the role's links close.
    fn close_links(&mut self, cx: &mut Ctx<'_>) {
        let Some(live) = self.live.as_mut().filter(|_| !self.dead) else { return };
        for (_, link) in std::mem::take(&mut live.links) {
            if let (peer, Some(theirs)) = (link.peer, link.peer_link) {
                cx.out.push(Out::Peer { to: peer, msg: PeerMsg::QuorumClosed { link: theirs } });
            }
        }
        live.received.clear();
    }

    /// Between roles: the clients are closed, and what they had set or queued goes with them.
    fn close_clients(&mut self, cx: &mut Ctx<'_>) {
        let Some(live) = self.live.as_mut().filter(|_| !self.dead) else { return };
        for conn in std::mem::take(&mut live.conns).into_keys() {
            cx.out.push(Out::Client { conn, msg: ToClient::Closed });
        }
        live.watches = WatchTable::new(self.tree_seed);
        live.inputs.clear();
        live.serving = false;
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
        let mut out_of_order = Vec::new();
        in_delivery_order(&applied.triggers, applied.replies.into_iter().flatten(), |delivery| match delivery {
            Delivery::Reply(reply) => {
                if let Err(e) = reply_to_client(cx, live, reply) {
                    out_of_order.push(format!("member {}: {e}", self.sid));
                }
            }
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
        self.failures.extend(out_of_order);
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

/// A reply the applier released, to its connection; a write's reply must be for the session's oldest
/// waiting request (the check a shard makes).
fn reply_to_client(cx: &mut Ctx<'_>, live: &mut Live, reply: ShardReply) -> Result<(), String> {
    match reply {
        ShardReply::Response { conn, xid, zxid, err, response, close_after } => {
            let Some(c) = live.conns.get_mut(&conn) else { return Ok(()) };
            c.requests.write_answered(xid).map_err(|e| format!("connection {conn}: {e}"))?;
            let header = ReplyHeader { xid, zxid, err: err.as_i32() };
            let body = (err == ErrorCode::Ok).then_some(response);
            cx.out.push(Out::Client { conn, msg: ToClient::Reply { header, body } });
            if close_after {
                live.conns.remove(&conn);
                cx.out.push(Out::Client { conn, msg: ToClient::Closed });
            } else {
                answer_ready(cx, live, conn);
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
    Ok(())
}

/// Answers the locally answered requests of `conn` whose turn has come, as a shard does.
fn answer_ready(cx: &mut Ctx<'_>, live: &mut Live, conn: ConnId) {
    let Live { conns, tree, watches, .. } = live;
    let Some(c) = conns.get_mut(&conn) else { return };
    let auth = client_identity();
    let reader = Reader { tree, auth: &auth, session_id: c.session_id.unwrap_or(0), skip_acl: false };
    while let Some((xid, local)) = c.requests.next_local() {
        let reply = answer_local(&reader, conn, watches, xid, &local);
        for (event, path) in reply.events {
            cx.out.push(Out::Client { conn, msg: ToClient::Event { event_type: event.as_i32(), path } });
        }
        let header = ReplyHeader { xid: reply.xid, zxid: reply.zxid, err: reply.err.as_i32() };
        let body = (reply.err == ErrorCode::Ok).then_some(reply.response);
        cx.out.push(Out::Client { conn, msg: ToClient::Reply { header, body } });
        if reply.close.is_some() {
            conns.remove(&conn);
            cx.out.push(Out::Client { conn, msg: ToClient::Closed });
            return;
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

    /// A disk effect fails as the member thread's does (an I/O error); a simulated leader that is
    /// down or cut off fails the connection later, as a closed link.
    fn carry_out_one(&mut self, effect: Effect) -> Result<(), String> {
        self.member.carry_out_one(self.cx, effect)
    }

    fn after_batch(&mut self) {
        self.member.run_applier(self.cx);
        self.member.flush_links(self.cx);
    }

    fn close_links(&mut self) {
        self.member.close_links(self.cx);
    }

    fn settle(&mut self) {
        if self.member.live.is_some() && !self.member.dead {
            self.member.settle(self.cx);
        }
    }

    fn close_clients(&mut self) {
        self.member.close_clients(self.cx);
    }

    fn look(&mut self) {
        if self.member.live.is_some() {
            self.member.look(self.cx);
        }
    }
}
