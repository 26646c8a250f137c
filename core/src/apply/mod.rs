//! The applier's decisions as a pure state machine: which txns are applied when (standalone: as they
//! become durable; in an ensemble: once durable and committed), in zxid order, and which waiting routes
//! each releases, with the replies they get. The pipeline's applier thread (`ferrokeeper::pipeline::applier`)
//! drives it under the tree's write lock and hands the results to the shards; the simulator drives the
//! same code.
//!
//! Replies come from the route table, not from the txns: the replicated record (a committed txn) says
//! nothing about who asked for it. Each route waits here, in order, for the txn it belongs to — or, for
//! a barrier (sync, a check that passed), for the last txn proposed before it — to be applied. A
//! learner's routes wait for their request's (session, xid) instead: it learns the zxid only when the
//! txn comes back committed.
//!
//! # Layout
//! - [`replies`]: the reply a route gets (ZooKeeper's `FinalRequestProcessor`).

pub mod replies;

use std::collections::{HashMap, VecDeque};

use fk_engine::recovery::Fuzziness;
use fk_engine::tree::{DataTree, WatchTrigger};
use fk_engine::txn::{TxnResult, apply};
use fk_net::txn::{Txn, TxnBody};

use crate::sequencer::{PendingRoute, Route, Wait};
use replies::{Replies, ShardReply, route as reply_to};

/// What applying a batch produced, for the shards: the watch triggers (shared by all shards) and each
/// shard's replies, both tagged with the position of their txn in the batch so they interleave.
#[derive(Default)]
pub struct Applied {
    pub triggers: Vec<(u32, WatchTrigger)>,
    pub replies: Replies,
    /// Txns whose digest, as prep computed it, is not the tree's after applying: prep and apply
    /// disagree about what the txn does (ZooKeeper logs and counts these): (zxid, prepared, applied).
    pub digest_mismatches: Vec<(i64, u64, u64)>,
}

pub struct ApplyCore {
    shards: usize,
    /// Routes not yet released, in proposal order.
    routes: VecDeque<PendingRoute>,
    /// A learner's routes, by the request they answer.
    by_request: HashMap<(i64, i32), Route>,
    /// Durable txns waiting for the commit point (ensembles).
    uncommitted: VecDeque<Txn>,
    commit_point: i64,
    /// Whether the tree may hold changes of txns not applied yet (a fuzzy snapshot just loaded): logged
    /// digests are compared only once it is exact.
    fuzziness: Fuzziness,
    scratch: Vec<WatchTrigger>,
}

impl ApplyCore {
    /// Replies go to `shards` shards; everything through `commit_point` (the tree's last zxid) is applied.
    pub fn new(shards: usize, commit_point: i64) -> ApplyCore {
        ApplyCore {
            shards,
            routes: VecDeque::new(),
            by_request: HashMap::new(),
            uncommitted: VecDeque::new(),
            commit_point,
            fuzziness: Fuzziness::Exact,
            scratch: Vec::new(),
        }
    }

    /// The tree was (re)loaded, as `fuzziness` says.
    pub fn tree_loaded(&mut self, fuzziness: Fuzziness) {
        self.fuzziness = fuzziness;
    }

    /// Whether the digest logged with `txn` (just applied) is not that of `tree`.
    fn digest_differs(&mut self, tree: &DataTree, txn: &Txn) -> bool {
        let Some(logged) = &txn.digest else { return false };
        let matches = logged.tree_digest as u64 == tree.digest();
        match self.fuzziness {
            Fuzziness::Through(zxid) if txn.header.zxid <= zxid => return false,
            Fuzziness::Unknown if !matches => return false,
            Fuzziness::Through(_) | Fuzziness::Unknown => self.fuzziness = Fuzziness::Exact,
            Fuzziness::Exact => {}
        }
        !matches
    }

    /// Routes sent before their txns (or requests) left: they wait here.
    pub fn add_routes(&mut self, routes: impl IntoIterator<Item = PendingRoute>) {
        for pending in routes {
            match pending.wait {
                Wait::Request { session_id, cxid } => {
                    self.by_request.insert((session_id, cxid), pending.route);
                }
                Wait::Zxid(_) => self.routes.push_back(pending),
            }
        }
    }

    /// Durable txns of an ensemble, applied once committed.
    pub fn persisted(&mut self, txns: impl IntoIterator<Item = Txn>) {
        self.uncommitted.extend(txns);
    }

    /// Everything through `zxid` is committed.
    pub fn commit_through(&mut self, zxid: i64) {
        self.commit_point = self.commit_point.max(zxid);
    }

    /// Applies `batch` (committed and durable, standalone) and whatever durable txns the commit point
    /// now covers; with nothing to apply, answers the barriers already due.
    pub fn flush(&mut self, tree: &mut DataTree, mut batch: Vec<Txn>) -> Applied {
        self.take_ready(&mut batch);
        if batch.is_empty() {
            return Applied { replies: self.release_due_barriers(tree), ..Applied::default() };
        }
        self.apply(tree, batch)
    }

    /// Moves the durable txns the commit point covers to `batch`.
    pub fn take_ready(&mut self, batch: &mut Vec<Txn>) {
        let ready = self.uncommitted.iter().take_while(|t| t.header.zxid <= self.commit_point).count();
        batch.extend(self.uncommitted.drain(..ready));
    }

    /// A role ended: nobody waits any more (their connections are closed), and what was logged but not
    /// yet known to be committed is applied, so that the tree holds exactly the log. Its watches fire
    /// for nobody: the quorum may never commit these txns (a new leader can truncate them), and a
    /// client must not hear of a change that did not happen. Clients are closed and set their watches
    /// again on their next member, which fires them for whatever did commit (ZooKeeper closes its
    /// clients before it fast-forwards its database).
    pub fn reset(&mut self, tree: &mut DataTree) -> Applied {
        self.routes.clear();
        self.by_request.clear();
        let logged: Vec<Txn> = self.uncommitted.drain(..).collect();
        let mut applied = if logged.is_empty() { Applied::default() } else { self.apply(tree, logged) };
        applied.triggers.clear();
        self.commit_point = tree.last_processed_zxid();
        applied
    }

    fn empty_replies(&self) -> Replies {
        (0..self.shards).map(|_| Vec::new()).collect()
    }

    /// Barriers whose txns were all applied before they arrived (a learner's sync answered by the
    /// leader after its txns came back, a sync behind applied writes) are answered now rather than with
    /// the next txn.
    pub fn release_due_barriers(&mut self, tree: &DataTree) -> Replies {
        let applied = tree.last_processed_zxid();
        let mut replies = self.empty_replies();
        while let Some(PendingRoute { wait: Wait::Zxid(waits_for), route }) = self.routes.front()
            && *waits_for <= applied
            && route.is_barrier()
        {
            let pending = self.routes.pop_front().expect("front exists");
            reply_to(pending.route, None, applied, 0, tree, &mut replies);
        }
        replies
    }

    /// Applies `batch` (committed and durable, in zxid order) and releases the routes it answers.
    pub fn apply(&mut self, tree: &mut DataTree, batch: Vec<Txn>) -> Applied {
        let mut applied = Applied { replies: self.empty_replies(), ..Applied::default() };
        for (seq, txn) in batch.iter().enumerate() {
            let seq = seq as u32;
            let result = apply(tree, txn, &mut self.scratch);
            applied.triggers.extend(self.scratch.drain(..).map(|t| (seq, t)));
            if self.digest_differs(tree, txn) {
                let logged = txn.digest.as_ref().expect("a digest differs only if logged").tree_digest as u64;
                applied.digest_mismatches.push((txn.header.zxid, logged, tree.digest()));
            }
            self.release(tree, txn, &result, seq, &mut applied.replies);
        }
        applied
    }

    /// Releases the routes at the head of the table that waited for `txn` (just applied, with its
    /// result): its own route and the barriers proposed after it.
    fn release(&mut self, tree: &DataTree, txn: &Txn, result: &TxnResult, seq: u32, replies: &mut Replies) {
        let zxid = txn.header.zxid;
        let mut answered = false;
        if let Some(own) = self.by_request.remove(&(txn.header.client_id, txn.header.cxid)) {
            answered = true;
            reply_to(own, Some((&txn.body, result)), zxid, seq, tree, replies);
        }
        if let Some(PendingRoute { wait: Wait::Zxid(waits_for), route }) = self.routes.front() {
            answered |= *waits_for == zxid && !route.is_barrier();
        }
        // A session ended with nobody here waiting for it (expired by the leader, or closed through
        // another member): whichever shard holds a connection of it closes that.
        if !answered && matches!(txn.body, TxnBody::CloseSession { .. }) {
            for shard in replies.iter_mut() {
                shard.push((seq, ShardReply::EndSession { session_id: txn.header.client_id }));
            }
        }
        while let Some(PendingRoute { wait: Wait::Zxid(waits_for), .. }) = self.routes.front()
            && *waits_for <= zxid
        {
            let waits_for = *waits_for;
            let pending = self.routes.pop_front().expect("front exists");
            let applied = if pending.route.is_barrier() {
                None
            } else {
                assert_eq!(waits_for, zxid, "the route of zxid 0x{waits_for:x} was not released with its txn");
                Some((&txn.body, result))
            };
            reply_to(pending.route, applied, zxid, seq, tree, replies);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fk_engine::tree::TreeOptions;
    use fk_net::client::{Acl, OpCode, perms};
    use fk_net::txn::{CreateTxn, TxnDigest, TxnHeader};

    /// The digest of a tree holding `/n1 .. /n<zxid>`: what a leader logs with txn `zxid`.
    fn digest_through(zxid: i64) -> i64 {
        let mut reference = DataTree::new(TreeOptions::fixed_seed(true));
        for z in 1..=zxid {
            apply(&mut reference, &create(z, 0), &mut Vec::new());
        }
        reference.digest() as i64
    }

    fn create(zxid: i64, tree_digest: i64) -> Txn {
        let header = TxnHeader { client_id: 1, cxid: zxid as i32, zxid, time: 0, txn_type: OpCode::Create.as_i32() };
        let acl = vec![Acl::new(perms::ALL, "world", "anyone")];
        let txn = CreateTxn { path: format!("/n{zxid}"), data: None, acl, ephemeral: false, parent_cversion: 1 };
        Txn {
            header,
            body: TxnBody::Create { op: OpCode::Create, txn },
            digest: Some(TxnDigest { version: 2, tree_digest }),
        }
    }

    /// Txns applied because they were logged when a role ended fire no watches (they may never be
    /// committed); committed ones do.
    #[test]
    fn txns_applied_at_a_role_end_fire_no_watch() {
        let mut tree = DataTree::new(TreeOptions::fixed_seed(true));
        let mut core = ApplyCore::new(1, 0);
        core.persisted([create(1, 0), create(2, 0)]);
        core.commit_through(1);
        let applied = core.flush(&mut tree, Vec::new());
        assert!(!applied.triggers.is_empty(), "the committed create fires its parent's child watch");
        let applied = core.reset(&mut tree);
        assert!(tree.get("/n2").is_some(), "the tree holds the whole log");
        assert!(applied.triggers.is_empty(), "{:?}", applied.triggers.len());
    }

    /// A learner that loaded a fuzzy snapshot applies again txns whose changes the snapshot may already
    /// hold: their logged digests describe the leader's tree right after each, not this one.
    #[test]
    fn digests_are_compared_only_once_the_tree_is_exact() {
        // A "fuzzy" tree: it holds /n1 and /n2 and /n3 while txns 1 and 2 are still to be applied.
        let fuzzy = || {
            let mut tree = DataTree::new(TreeOptions::fixed_seed(true));
            for z in 1..=3 {
                apply(&mut tree, &create(z, 0), &mut Vec::new());
            }
            tree
        };
        let right = |z| create(z, digest_through(z));
        // (how the tree was loaded, txns applied with the leader's digests, mismatches reported)
        let cases = [
            (Fuzziness::Exact, 2, 2),
            (Fuzziness::Through(3), 4, 0),
            (Fuzziness::Through(2), 4, 0),
            (Fuzziness::Unknown, 4, 0),
        ];
        for (fuzziness, through, expected) in cases {
            let mut tree = fuzzy();
            let mut core = ApplyCore::new(1, 0);
            core.tree_loaded(fuzziness);
            let applied = core.apply(&mut tree, (1..=through).map(right).collect());
            assert_eq!(applied.digest_mismatches.len(), expected, "{fuzziness:?}: {:?}", applied.digest_mismatches);
            if fuzziness != Fuzziness::Exact {
                // Exact from here: a wrong digest is caught.
                let applied = core.apply(&mut tree, vec![create(through + 1, 7)]);
                assert_eq!(applied.digest_mismatches.len(), 1, "{fuzziness:?}");
            }
        }
    }
}
