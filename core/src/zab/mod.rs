//! ZAB — ZooKeeper's atomic broadcast — as pure state machines (reference/quorum-wire.md §3–6).
//!
//! After an election, the leader and its learners run through three phases over the quorum port:
//! discovery (the leader gathers the learners' accepted epochs and proposes a new one), synchronisation
//! (each learner is brought to the leader's history by DIFF, TRUNC or SNAP, then acknowledges
//! NEWLEADER), and broadcast (PROPOSAL → ACK after the learner's fsync → COMMIT once a quorum has it).
//!
//! Neither machine touches a socket, a file or a clock. They take inputs (a packet, a tick, "the log has
//! persisted through zxid z") and return outputs in the order a driver must carry them out; an output
//! that persists something (an epoch file, a log append) must be done before the outputs after it.
//!
//! # With Apache ZooKeeper 3.8 in the same ensemble (observed, tests/tests/mixed_ensemble.rs)
//! What running mixed ensembles showed beyond reference/quorum-wire.md:
//! - A Java leader's last processed zxid is its new epoch's start as soon as it leads, so a learner with
//!   an empty history (zxid 0) is synchronised by SNAP of the (empty) tree at that zxid, where our leader
//!   sends an empty DIFF; both learners handle both.
//! - Java proposals carry the TxnDigest (version 2, the tree's digest after the txn), and so do ours;
//!   our learners check it after applying (a mismatch is logged and counted) and Java members report
//!   `zk_digest_mismatches_count 0` on our leader's proposals and INFORMs: the digests are the same
//!   function of the tree.
//! - Java learners acknowledge every proposal separately, NEWLEADER's ACK first, and send one more ACK
//!   carrying the epoch start after UPTODATE; ours do the same, and our leader's quorum watermark takes
//!   per-proposal ACKs as they come (an ACK never counts for a later zxid than its own).
//! - Sessions move between implementations with REVALIDATE in both directions (a session opened on a
//!   Java member lives through a rolling replacement of every member), and session touches travel in
//!   PING replies as `{long id; int timeout}` records, empty (not null) when there are none.
//! - A Java observer applies our INFORMs (the txn's log bytes); a ferrokeeper observer of a Java leader
//!   gets PROPOSAL+COMMIT pairs during synchronisation and INFORM afterwards.
//! - With `reconfigEnabled=false` the config version stays 0: NEWLEADER carries `version=0` text, which
//!   learners of either kind accept as is.
//!
//! # Layout
//! - [`history`]: the leader's recent proposals, what a learner is synchronised from.
//! - [`sync`]: how a learner is synchronised (ZooKeeper's `LearnerHandler.syncFollower`), pure function.
//! - [`leader`]: the leader.
//! - [`learner`]: a follower or an observer.

pub mod config_text;
pub mod history;
pub mod leader;
pub mod learner;
pub mod sync;

#[cfg(test)]
mod tests;

use std::sync::Arc;

/// A member's id (`myid`, ZooKeeper's sid).
pub type Sid = i64;

/// A learner connection as the leader's driver numbers them (a reconnecting learner gets a new one).
pub type LinkId = u64;

/// The epoch half of a zxid.
pub fn epoch_of(zxid: i64) -> i64 {
    zxid >> 32
}

/// The zxid that starts `epoch` (counter 0: no txn has it).
pub fn epoch_start(epoch: i64) -> i64 {
    epoch << 32
}

/// Whether `zxid` is the start of its epoch (counter 0).
pub fn is_epoch_start(zxid: i64) -> bool {
    zxid & 0xffff_ffff == 0
}

/// One txn as it travels: its zxid and its entry bytes (header, body, digest — the log record's payload
/// and a PROPOSAL's data). Shared, because the same bytes go to every learner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub zxid: i64,
    pub bytes: Arc<[u8]>,
}

impl Entry {
    /// A txn as a PROPOSAL carries it: the bytes of its log record's entry.
    pub fn of(txn: &fk_net::txn::Txn) -> Entry {
        let mut bytes = Vec::new();
        txn.encode(&mut bytes);
        Entry { zxid: txn.header.zxid, bytes: bytes.into() }
    }
}

/// Time limits, in the leader's and learners' ticks (`tickTime`, `initLimit`, `syncLimit`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub tick_ms: u64,
    /// How long discovery and synchronisation may take.
    pub init_limit_ticks: u64,
    /// How long a member may go without hearing from the other side once synchronised.
    pub sync_limit_ticks: u64,
}

impl Limits {
    pub fn init_ms(&self) -> u64 {
        self.tick_ms * self.init_limit_ticks
    }

    pub fn sync_ms(&self) -> u64 {
        self.tick_ms * self.sync_limit_ticks
    }
}
