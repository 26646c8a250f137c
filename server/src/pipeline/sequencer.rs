//! The sequencer thread (standalone): drives the pure [`crate::sequencer::Sequencer`] with what the
//! shards send and the clocks, holding the tree's read lock for each step, and hands proposals to the
//! log stage and notices to the shards. An ensemble's leader drives the same [`Sequencing`] inside its
//! member core ([`crate::member`]).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use fk_net::txn::Txn;

use super::Shared;
use super::messages::*;
use crate::ops::figures::SessionFigures;
use crate::sequencer::handoff::Sequencing;
use crate::sequencer::{Notice, Now, Sequencer, SequencerInput, SequencerSettings};
use crate::storage::Dirs;

/// Messages taken per batch: enough to amortise the tree lock and the hand-off, small enough to keep
/// latency low under a flood.
pub const BATCH_MAX: usize = 4096;

/// The clocks a step is given.
#[derive(Clone, Copy)]
pub struct Clock {
    /// The monotonic clock's zero.
    origin: Instant,
}

impl Clock {
    pub fn start() -> Clock {
        Clock { origin: Instant::now() }
    }

    pub fn now(&self) -> Now {
        let wall_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        Now { mono_ms: self.origin.elapsed().as_millis() as u64, wall_ms }
    }

    pub fn instant_at(&self, mono_ms: u64) -> Instant {
        self.origin + Duration::from_millis(mono_ms)
    }
}

/// The sessions `core` tracks, for the 4lw `dump` and `mntr` (none where no core prepares txns: a
/// learner, or between roles); `now` turns its monotonic expiry times into dates.
pub fn session_figures(core: Option<&Sequencer>, now: Now) -> Option<SessionFigures> {
    let core = core?;
    let wall_ms_at = |mono_ms: u64| now.wall_ms + mono_ms as i64 - now.mono_ms as i64;
    let expiry_buckets = core.tracker.buckets().map(|(at, ids)| (wall_ms_at(at), ids)).collect();
    Some(SessionFigures { count: core.tracker.len(), expiry_buckets })
}

/// The sequencer's settings from the configuration.
pub fn settings(config: &crate::config::Config) -> SequencerSettings {
    SequencerSettings {
        prep: crate::prep::PrepSettings {
            extended_types: config.extended_types_enabled,
            skip_acl: config.skip_acl,
            reconfig_enabled: config.reconfig_enabled,
            enforce_quota: config.enforce_quota,
            acl_schemes: crate::auth::AclSchemes { sasl: config.sasl.provider, x509: config.x509_provider },
        },
        server_id: config.my_id.map_or(1, |id| id as u8),
        tick_ms: config.tick_time_ms as u64,
        min_session_timeout_ms: config.min_session_timeout_ms,
        max_session_timeout_ms: config.max_session_timeout_ms,
        container_check_interval_ms: config.container_check_interval_ms,
        container_max_per_minute: config.container_max_per_minute,
    }
}

/// Where a step's results go: routes and wake-ups to the applier, txns to the log stage, notices to
/// the shards. Routes go before txns, so that each is waiting when its txn is committed.
pub struct Outlets {
    pub log: Sender<LogMsg>,
    pub routes: Sender<Vec<PendingRoute>>,
    pub applier: Sender<ApplierMsg>,
}

impl Outlets {
    pub fn routes(&self, routes: Vec<PendingRoute>) {
        if !routes.is_empty() {
            self.routes.send(routes).expect("applier thread is gone");
        }
    }

    pub fn wake_applier(&self) {
        self.applier.send(ApplierMsg::Wake).expect("applier thread is gone");
    }

    pub fn log(&self, txns: Vec<Txn>) {
        if !txns.is_empty() {
            self.log.send(LogMsg::Txns(txns)).expect("log thread is gone");
        }
    }
}

/// Tells a shard what the sequencer decided about one of its connections.
pub fn notify_shard(shared: &Shared, notice: Notice) {
    let (shard, msg) = shard_message(notice);
    shared.shards[shard].send(msg);
}

pub struct SequencerThread {
    sequencing: Sequencing,
    outlets: Outlets,
    clock: Clock,
    shared: Arc<Shared>,
    rx: Receiver<SequencerMsg>,
    dirs: Dirs,
    /// A restore asked for, run after the step of the inputs that came before it.
    restore: Option<RestoreRequest>,
}

impl SequencerThread {
    pub fn new(shared: Arc<Shared>, rx: Receiver<SequencerMsg>, outlets: Outlets, dirs: Dirs) -> Self {
        let clock = Clock::start();
        let sequencing = Self::sequencing(&shared, clock);
        SequencerThread { sequencing, outlets, clock, shared, rx, dirs, restore: None }
    }

    /// The sequencer's state for the tree as it is (sessions, zxids, containers).
    fn sequencing(shared: &Shared, clock: Clock) -> Sequencing {
        let tree = shared.tree.read();
        Sequencing::new(Sequencer::new(settings(&shared.config), &tree, clock.now()), &tree)
    }

    /// Runs a restore ([`super::restore`]) and starts over from the restored tree; every client is
    /// disconnected (its session belonged to the replaced state).
    fn run_restore(&mut self, request: RestoreRequest) {
        let restored = super::restore::restore(
            &self.shared,
            &self.dirs,
            &request.upload,
            &self.outlets.log,
            &self.outlets.applier,
        );
        let _ = std::fs::remove_file(&request.upload);
        if restored.is_ok() {
            self.sequencing = Self::sequencing(&self.shared, self.clock);
            for shard in &self.shared.shards {
                shard.send(ShardMsg::CloseClients { reason: "the database was restored from a snapshot" });
            }
        }
        let _ = request.answer.send(restored.map_err(|e| format!("{e:#}")));
    }

    pub fn run(mut self) {
        let mut inputs = Vec::with_capacity(BATCH_MAX);
        loop {
            let deadline = self.clock.instant_at(self.sequencing.core.next_deadline_ms());
            match self.rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(msg) => self.take(msg, &mut inputs),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            while inputs.len() < BATCH_MAX {
                match self.rx.try_recv() {
                    Ok(msg) => self.take(msg, &mut inputs),
                    Err(_) => break,
                }
            }
            let tree = self.shared.tree.read();
            let handoff = self.sequencing.step(self.clock.now(), inputs.drain(..), &tree);
            // Let go of the tree first: the applier may need it to make room in these channels.
            drop(tree);
            debug_assert!(handoff.learner_syncs.is_empty() && handoff.revalidated.is_empty());
            for notice in handoff.notices {
                notify_shard(&self.shared, notice);
            }
            self.outlets.routes(handoff.routes);
            if handoff.wake_applier {
                self.outlets.wake_applier();
            }
            self.outlets.log(handoff.txns);
            if let Some(request) = self.restore.take() {
                self.run_restore(request);
            }
        }
    }

    /// Queues an input; an inspection runs at once, on the state as of the last step.
    fn take(&mut self, msg: SequencerMsg, inputs: &mut Vec<SequencerInput>) {
        match msg {
            SequencerMsg::Input(input) => inputs.push(input),
            SequencerMsg::Sessions(answer) => {
                let _ = answer.send(session_figures(Some(&self.sequencing.core), self.clock.now()));
            }
            SequencerMsg::Quorum(_) => {
                unreachable!("a standalone server has no quorum")
            }
            SequencerMsg::Restore(request) => {
                if let Some(earlier) = self.restore.replace(request) {
                    let _ = earlier.answer.send(Err("another restore came right after it".into()));
                }
            }
        }
    }
}

pub fn shard_message(notice: Notice) -> (usize, ShardMsg) {
    match notice {
        Notice::Reattached { origin, session_id, timeout_ms } => {
            (origin.shard, ShardMsg::Reattached { conn: origin.conn, session_id, timeout_ms })
        }
        Notice::Refused { origin } => (origin.shard, ShardMsg::ConnectRefused { conn: origin.conn }),
        Notice::Close { origin, reason } => (origin.shard, ShardMsg::Close { conn: origin.conn, reason }),
        Notice::Revalidated { .. } => unreachable!("answered to the learner, not a shard"),
    }
}
