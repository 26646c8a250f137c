//! The ZAB machines driven by hand-written packet sequences, and wired to each other in memory.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use fk_net::quorum::packet::{ForwardedRequest, SessionTouch, decode_int_body, int_body};
use fk_net::quorum::{LearnerInfo, PacketType, QuorumPacket};

use super::history::History;
use super::leader::{Leader, LeaderCount, LeaderInput, LeaderOutput, LeaderSettings, LeaderStart};
use super::learner::{Learner, LearnerInput, LearnerOutput, LearnerSettings, LearnerStart};
use super::sync::{SyncStep, plan};
use super::*;

const LIMITS: Limits = Limits { tick_ms: 100, init_limit_ticks: 10, sync_limit_ticks: 5 };

fn entry(zxid: i64) -> Entry {
    Entry { zxid, bytes: Arc::from(zxid.to_be_bytes().to_vec()) }
}

fn z(epoch: i64, counter: i64) -> i64 {
    epoch_start(epoch) | counter
}

fn history(zxids: &[i64]) -> History {
    let committed = zxids.last().copied().unwrap_or(0);
    History::new(committed, zxids.iter().map(|&x| entry(x)).collect(), 500)
}

/// Abbreviates a plan: D/T/S with a zxid, P/C with a counter.
fn shape(steps: &[SyncStep]) -> Vec<String> {
    steps
        .iter()
        .map(|s| match s {
            SyncStep::Diff(x) => format!("DIFF {x:#x}"),
            SyncStep::Trunc(x) => format!("TRUNC {x:#x}"),
            SyncStep::Snap(x) => format!("SNAP {x:#x}"),
            SyncStep::Proposal(e) => format!("P {:#x}", e.zxid),
            SyncStep::Commit(x) => format!("C {x:#x}"),
        })
        .collect()
}

#[test]
fn the_sync_plan_follows_zookeepers_decision_table() {
    let h = history(&[z(1, 1), z(1, 2), z(1, 3), z(2, 1), z(2, 2)]);
    /// (learner's last zxid, plan)
    type Case = (i64, &'static [&'static str]);
    let cases: [Case; 8] = [
        (z(2, 2), &["DIFF 0x200000002"]),
        (z(2, 7), &["TRUNC 0x200000002"]),
        (
            z(1, 2),
            &[
                "DIFF 0x200000002",
                "P 0x100000003",
                "C 0x100000003",
                "P 0x200000001",
                "C 0x200000001",
                "P 0x200000002",
                "C 0x200000002",
            ],
        ),
        (z(2, 1), &["DIFF 0x200000002", "P 0x200000002", "C 0x200000002"]),
        // The learner's epoch-2 start is not a txn: DIFF from there.
        (z(2, 0), &["DIFF 0x200000002", "P 0x200000001", "C 0x200000001", "P 0x200000002", "C 0x200000002"]),
        // It has 1/4, which we never saw; the next txn we have is in epoch 2, so a TRUNC would cross an
        // epoch: snapshot.
        (z(1, 4), &["SNAP 0x200000002"]),
        // Older than the history: snapshot.
        (z(0, 9), &["SNAP 0x200000002"]),
        (-1, &["SNAP 0x200000002"]),
    ];
    for (peer, expected) in cases {
        assert_eq!(shape(&plan(peer, &h).steps), expected, "peer {peer:#x}");
    }
    // A learner that led epoch 1 further than we saw, with our history continuing in epoch 1: TRUNC to
    // the txn before its divergence, then what it lacks.
    let h = history(&[z(1, 1), z(1, 2), z(1, 4), z(1, 5)]);
    assert_eq!(
        shape(&plan(z(1, 3), &h).steps),
        ["TRUNC 0x100000002", "P 0x100000004", "C 0x100000004", "P 0x100000005", "C 0x100000005"]
    );
    // An empty history: only equality or a snapshot.
    let empty = History::new(z(3, 0), vec![], 500);
    assert_eq!(shape(&plan(z(3, 0), &empty).steps), ["DIFF 0x300000000"]);
    assert_eq!(shape(&plan(z(3, 5), &empty).steps), ["TRUNC 0x300000000"]);
    assert_eq!(shape(&plan(z(2, 9), &empty).steps), ["SNAP 0x300000000"]);
}

#[test]
fn history_keeps_the_newest_committed_and_every_outstanding_entry() {
    let mut h = History::new(z(1, 3), vec![entry(z(1, 1)), entry(z(1, 2)), entry(z(1, 3))], 2);
    assert_eq!(h.committed_range(), (z(1, 2), z(1, 3)), "trimmed to 2 committed");
    h.propose(entry(z(2, 1)));
    h.propose(entry(z(2, 2)));
    assert_eq!(h.last_proposed(), z(2, 2));
    assert_eq!(h.outstanding().count(), 2);
    let newly: Vec<i64> = h.commit_through(z(2, 1)).iter().map(|e| e.zxid).collect();
    assert_eq!(newly, [z(2, 1)]);
    assert_eq!(h.committed_range(), (z(1, 3), z(2, 1)));
    assert!(h.commit_through(z(1, 1)).is_empty(), "never back");
}

fn leader_settings(voters: &[Sid]) -> LeaderSettings {
    LeaderSettings {
        my_id: 3,
        voters: voters.iter().copied().collect(),
        limits: LIMITS,
        config: b"cfg".to_vec(),
        version_initial_config: false,
        logged_config: None,
    }
}

fn info(kind: PacketType, sid: Sid, accepted_epoch: i64) -> QuorumPacket {
    let data = LearnerInfo { sid, protocol_version: 0x10000, config_version: 0 }.to_bytes();
    QuorumPacket::new(kind, epoch_start(accepted_epoch), Some(data))
}

fn sent(outputs: &[LeaderOutput]) -> Vec<(LinkId, PacketType, i64)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            LeaderOutput::Send(link, p) => Some((*link, p.kind, p.zxid)),
            _ => None,
        })
        .collect()
}

#[test]
fn discovery_waits_for_a_quorum_then_proposes_one_past_every_accepted_epoch() {
    let start = LeaderStart { accepted_epoch: 4, current_epoch: 4, history: history(&[z(4, 1), z(4, 2)]) };
    let mut leader = Leader::new(leader_settings(&[1, 2, 3, 4, 5]), start, 0);
    leader.step(0, LeaderInput::Linked(10));
    let out = leader.step(1, LeaderInput::Packet(10, info(PacketType::FollowerInfo, 1, 6)));
    assert!(out.is_empty(), "two of five: no quorum yet, {out:?}");
    leader.step(2, LeaderInput::Linked(11));
    leader.step(2, LeaderInput::Linked(12));
    let out = leader.step(3, LeaderInput::Packet(12, info(PacketType::ObserverInfo, 9, 0)));
    assert!(out.is_empty(), "an observer does not count");
    let out = leader.step(4, LeaderInput::Packet(11, info(PacketType::FollowerInfo, 2, 5)));
    assert_eq!(out[0], LeaderOutput::PersistAcceptedEpoch(7), "max(4, 6, 5) + 1");
    assert_eq!(
        sent(&out),
        [
            (10, PacketType::LeaderInfo, z(7, 0)),
            (11, PacketType::LeaderInfo, z(7, 0)),
            (12, PacketType::LeaderInfo, z(7, 0))
        ]
    );
    assert_eq!(leader.epoch(), Some(7));
}

/// A leader (sid 3) of voters 1, 2, 3 with followers 1 and 2 linked as 10 and 11, synchronised and
/// established; returns it with the outputs of the last step.
fn established_leader() -> (Leader, Vec<LeaderOutput>) {
    established_leader_with(leader_settings(&[1, 2, 3]))
}

fn established_leader_with(settings: LeaderSettings) -> (Leader, Vec<LeaderOutput>) {
    let start = LeaderStart { accepted_epoch: 1, current_epoch: 1, history: history(&[z(1, 1), z(1, 2)]) };
    let mut leader = Leader::new(settings, start, 0);
    for (link, sid) in [(10, 1), (11, 2)] {
        leader.step(0, LeaderInput::Linked(link));
        leader.step(0, LeaderInput::Packet(link, info(PacketType::FollowerInfo, sid, 1)));
    }
    let ack_epoch = |zxid, epoch| QuorumPacket::new(PacketType::AckEpoch, zxid, Some(int_body(epoch)));
    let out = leader.step(1, LeaderInput::Packet(10, ack_epoch(z(1, 1), 1)));
    assert_eq!(out[0], LeaderOutput::PersistCurrentEpoch(2), "a quorum (3 and 1) acked epoch 2");
    assert_eq!(
        sent(&out),
        [
            (10, PacketType::Diff, z(1, 2)),
            (10, PacketType::Proposal, z(1, 2)),
            (10, PacketType::Commit, z(1, 2)),
            (10, PacketType::NewLeader, z(2, 0))
        ]
    );
    let out = leader.step(1, LeaderInput::Packet(11, ack_epoch(z(1, 2), 1)));
    assert_eq!(sent(&out), [(11, PacketType::Diff, z(1, 2)), (11, PacketType::NewLeader, z(2, 0))]);
    let out = leader.step(2, LeaderInput::Packet(11, QuorumPacket::new(PacketType::Ack, z(2, 0), None)));
    assert_eq!(out[0], LeaderOutput::Established { epoch: 2 });
    assert_eq!(sent(&out), [(11, PacketType::UpToDate, -1)]);
    let out = leader.step(3, LeaderInput::Packet(10, QuorumPacket::new(PacketType::Ack, z(2, 0), None)));
    assert_eq!(sent(&out), [(10, PacketType::UpToDate, -1)], "a late NEWLEADER ACK is brought up to date at once");
    (leader, out)
}

#[test]
fn synchronisation_then_a_quorum_of_newleader_acks_establishes_the_leader() {
    let (leader, _) = established_leader();
    assert!(leader.is_established());
    assert_eq!(leader.synced_followers(), 2);
}

/// ZOOKEEPER-1783 with reconfigEnabled: an initial configuration (version 0) goes out with NEWLEADER
/// versioned by the new epoch, and becomes the leader's own once a quorum acknowledged it; a configured
/// version, or reconfig off, is sent as it is.
#[test]
fn an_initial_configuration_takes_the_new_epoch_as_its_version() {
    let config = b"server.1=a:1:2:participant\nversion=0".to_vec();
    let settings =
        LeaderSettings { config: config.clone(), version_initial_config: true, ..leader_settings(&[1, 2, 3]) };
    let (mut leader, _) = established_leader_with(settings);
    let versioned = b"server.1=a:1:2:participant\nversion=200000000".to_vec();
    leader.step(4, LeaderInput::Linked(12));
    leader.step(4, LeaderInput::Packet(12, info(PacketType::FollowerInfo, 1, 1)));
    let out =
        leader.step(5, LeaderInput::Packet(12, QuorumPacket::new(PacketType::AckEpoch, z(1, 2), Some(int_body(1)))));
    let newleader = out.iter().find_map(|o| match o {
        LeaderOutput::Send(12, p) if p.kind == PacketType::NewLeader => p.data.clone(),
        _ => None,
    });
    assert_eq!(newleader, Some(versioned.clone()), "a later learner gets the established version");
    for (config, version_initial_config) in [(b"server.1=a\nversion=5".to_vec(), true), (config, false)] {
        let settings = LeaderSettings { config: config.clone(), version_initial_config, ..leader_settings(&[1, 2, 3]) };
        let start = LeaderStart { accepted_epoch: 1, current_epoch: 1, history: history(&[z(1, 1)]) };
        let mut leader = Leader::new(settings, start, 0);
        leader.step(0, LeaderInput::Linked(10));
        leader.step(0, LeaderInput::Packet(10, info(PacketType::FollowerInfo, 1, 1)));
        let out = leader
            .step(1, LeaderInput::Packet(10, QuorumPacket::new(PacketType::AckEpoch, z(1, 1), Some(int_body(1)))));
        let sent_config = out.iter().find_map(|o| match o {
            LeaderOutput::Send(_, p) if p.kind == PacketType::NewLeader => p.data.clone(),
            _ => None,
        });
        assert_eq!(sent_config, Some(config));
    }
}

#[test]
fn a_proposal_commits_on_a_quorum_of_durable_copies_in_order() {
    let (mut leader, _) = established_leader();
    let out = leader.step(10, LeaderInput::Propose(vec![entry(z(2, 1)), entry(z(2, 2))]));
    assert_eq!(
        sent(&out),
        [
            (10, PacketType::Proposal, z(2, 1)),
            (11, PacketType::Proposal, z(2, 1)),
            (10, PacketType::Proposal, z(2, 2)),
            (11, PacketType::Proposal, z(2, 2))
        ]
    );
    let ack = |zxid| QuorumPacket::new(PacketType::Ack, zxid, None);
    assert!(leader.step(11, LeaderInput::Packet(10, ack(z(2, 2)))).is_empty(), "one of three");
    let out = leader.step(12, LeaderInput::Persisted(z(2, 1)));
    assert_eq!(sent(&out), [(10, PacketType::Commit, z(2, 1)), (11, PacketType::Commit, z(2, 1))]);
    assert_eq!(out.last(), Some(&LeaderOutput::Committed(z(2, 1))));
    let acked = |out: &[LeaderOutput]| {
        out.iter().find_map(|o| match o {
            LeaderOutput::Counted(LeaderCount::QuorumAcked { latency_ms, txns }) => Some((*latency_ms, *txns)),
            _ => None,
        })
    };
    assert_eq!(acked(&out), None, "the batch is not all committed yet");
    let out = leader.step(13, LeaderInput::Packet(11, ack(z(2, 2))));
    assert_eq!(out.last(), Some(&LeaderOutput::Committed(z(2, 2))));
    assert_eq!(acked(&out), Some((3, 2)), "quorum_ack_latency: proposed at 10, committed at 13");
    assert!(leader.step(14, LeaderInput::Packet(11, ack(z(1, 1)))).is_empty(), "old acks change nothing");
}

#[test]
fn a_follower_ahead_of_the_leader_is_refused() {
    let start = LeaderStart { accepted_epoch: 1, current_epoch: 1, history: history(&[z(1, 1)]) };
    let mut leader = Leader::new(leader_settings(&[1, 2, 3]), start, 0);
    leader.step(0, LeaderInput::Linked(10));
    leader.step(0, LeaderInput::Packet(10, info(PacketType::FollowerInfo, 1, 1)));
    let ahead = QuorumPacket::new(PacketType::AckEpoch, z(1, 5), Some(int_body(1)));
    let out = leader.step(1, LeaderInput::Packet(10, ahead));
    assert!(matches!(&out[..], [LeaderOutput::Close(10, why)] if why.contains("ahead of the leader")), "{out:?}");
}

/// A member no membership counts (removed by a reconfig with txns the voters never acknowledged) may be
/// ahead: those txns were never committed, and it is truncated rather than refused for ever.
#[test]
fn a_non_voter_ahead_of_the_leader_is_truncated() {
    let start = LeaderStart { accepted_epoch: 1, current_epoch: 1, history: history(&[z(1, 1)]) };
    let mut leader = Leader::new(leader_settings(&[1, 2, 3]), start, 0);
    for (link, sid) in [(10, 1), (11, 9)] {
        leader.step(0, LeaderInput::Linked(link));
        leader.step(0, LeaderInput::Packet(link, info(PacketType::FollowerInfo, sid, 1)));
    }
    let ahead = QuorumPacket::new(PacketType::AckEpoch, z(1, 5), Some(int_body(1)));
    let out = leader.step(1, LeaderInput::Packet(11, ahead));
    assert!(!out.iter().any(|o| matches!(o, LeaderOutput::Close(..))), "{out:?}");
    let out =
        leader.step(1, LeaderInput::Packet(10, QuorumPacket::new(PacketType::AckEpoch, z(1, 1), Some(int_body(1)))));
    assert!(sent(&out).contains(&(11, PacketType::Trunc, z(1, 1))), "{out:?}");
}

#[test]
fn the_leader_abandons_when_discovery_or_its_quorum_times_out() {
    let start = LeaderStart { accepted_epoch: 1, current_epoch: 1, history: history(&[]) };
    let mut leader = Leader::new(leader_settings(&[1, 2, 3]), start, 0);
    assert!(leader.step(LIMITS.init_ms(), LeaderInput::Tick).is_empty());
    let out = leader.step(LIMITS.init_ms() + 1, LeaderInput::Tick);
    assert_eq!(out, [LeaderOutput::Abandon("Timeout while waiting for epoch from quorum".into())]);

    let (mut leader, _) = established_leader();
    let out = leader.step(100, LeaderInput::Tick);
    assert_eq!(sent(&out), [(10, PacketType::Ping, z(1, 2)), (11, PacketType::Ping, z(1, 2))]);
    leader.step(400, LeaderInput::Packet(11, QuorumPacket::new(PacketType::Ping, z(1, 2), Some(vec![]))));
    // Follower 1 silent beyond syncLimit (500 ms): dropped; 2 and 3 still a quorum.
    let out = leader.step(600, LeaderInput::Tick);
    assert!(matches!(&out[0], LeaderOutput::Close(10, _)), "{out:?}");
    assert!(!out.iter().any(|o| matches!(o, LeaderOutput::Abandon(_))));
    let out = leader.step(1000, LeaderInput::Tick);
    assert!(
        matches!(out.last(), Some(LeaderOutput::Abandon(why)) if why == "Not sufficient followers synced, only synced with sids: [ 3 ]"),
        "{out:?}"
    );
}

#[test]
fn requests_touches_syncs_and_revalidation_pass_through_the_leader() {
    let (mut leader, _) = established_leader();
    let request = ForwardedRequest { session_id: 7, cxid: 1, op: 5, body: vec![1, 2] };
    let mut packet = QuorumPacket::new(PacketType::Request, -1, Some(request.to_bytes()));
    packet.auth = Some(vec![]);
    let out = leader.step(5, LeaderInput::Packet(10, packet));
    assert_eq!(out, [LeaderOutput::Request { link: 10, sid: 1, request, auth: vec![] }]);
    let touches = vec![SessionTouch { session_id: 7, timeout_ms: 4000 }];
    let ping = QuorumPacket::new(PacketType::Ping, 0, Some(SessionTouch::list_to_bytes(&touches)));
    assert_eq!(leader.step(6, LeaderInput::Packet(10, ping)), [LeaderOutput::Touches(touches)]);
    leader.step(7, LeaderInput::Propose(vec![entry(z(2, 1))]));
    assert!(sent(&leader.step(8, LeaderInput::SyncBarrier { link: 11, after: z(2, 1) })).is_empty());
    leader.step(9, LeaderInput::Persisted(z(2, 1)));
    let out = leader.step(9, LeaderInput::Packet(10, QuorumPacket::new(PacketType::Ack, z(2, 1), None)));
    assert!(sent(&out).contains(&(11, PacketType::Sync, 0)), "answered once committed: {out:?}");
}

fn learner_start() -> LearnerStart {
    LearnerStart { accepted_epoch: 1, current_epoch: 1, last_logged_zxid: z(1, 1) }
}

fn learner_sent(outputs: &[LearnerOutput]) -> Vec<(PacketType, i64)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            LearnerOutput::Send(p) => Some((p.kind, p.zxid)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_follower_acks_newleader_only_once_its_synchronisation_is_durable() {
    let settings = LearnerSettings { my_id: 1, observer: false, limits: LIMITS, config_version: 0 };
    let mut learner = Learner::connect(settings, learner_start(), 0);
    assert_eq!(learner_sent(&learner.take_outputs()), [(PacketType::FollowerInfo, z(1, 0))]);
    let out = learner
        .step(1, LearnerInput::Packet(QuorumPacket::new(PacketType::LeaderInfo, z(2, 0), Some(int_body(0x10000)))));
    assert_eq!(out[0], LearnerOutput::PersistAcceptedEpoch(2));
    let LearnerOutput::Send(ack_epoch) = &out[1] else { panic!("{out:?}") };
    assert_eq!((ack_epoch.kind, ack_epoch.zxid), (PacketType::AckEpoch, z(1, 1)));
    assert_eq!(decode_int_body(ack_epoch.data.as_deref().unwrap()).unwrap(), 1, "our current epoch");
    let packet = |kind, zxid| LearnerInput::Packet(QuorumPacket::new(kind, zxid, None));
    let proposal = |zxid| LearnerInput::Packet(QuorumPacket::new(PacketType::Proposal, zxid, Some(vec![9])));
    // A synchronisation into a newer epoch is marked before anything of it is logged: the log may get
    // ahead of the current epoch, which is written only once the synchronisation is durable.
    assert_eq!(learner.step(2, packet(PacketType::Diff, z(1, 2))), [LearnerOutput::MarkEpochUpdate]);
    assert!(matches!(&learner.step(2, proposal(z(1, 2)))[..], [LearnerOutput::Append(e)] if e[0].zxid == z(1, 2)));
    assert_eq!(learner.step(2, packet(PacketType::Commit, z(1, 2))), [LearnerOutput::Commit(z(1, 2))]);
    let out = learner.step(3, packet(PacketType::NewLeader, z(2, 0)));
    assert!(out.is_empty(), "neither the epoch nor an ACK before z(1, 2) is durable: {out:?}");
    let out = learner.step(4, LearnerInput::Persisted(z(1, 2)));
    assert_eq!(out[0], LearnerOutput::PersistCurrentEpoch(2), "the epoch first, then the ACK");
    assert_eq!(learner_sent(&out), [(PacketType::Ack, z(2, 0)), (PacketType::Ack, z(1, 2))]);
    let out = learner.step(5, packet(PacketType::UpToDate, -1));
    assert_eq!(out[0], LearnerOutput::Serve);
    assert!(learner.is_serving());
    learner.step(6, proposal(z(2, 1)));
    assert!(learner_sent(&learner.step(6, proposal(z(2, 2)))).is_empty());
    let out = learner.step(7, LearnerInput::Persisted(z(2, 2)));
    assert_eq!(learner_sent(&out), [(PacketType::Ack, z(2, 1)), (PacketType::Ack, z(2, 2))]);
    assert!(matches!(&learner.step(8, proposal(z(2, 2)))[..], [LearnerOutput::Abandon(_)]), "a replayed zxid");
}

#[test]
fn a_learner_truncates_or_loads_a_snapshot_and_refuses_an_older_epoch() {
    let settings = LearnerSettings { my_id: 1, observer: true, limits: LIMITS, config_version: 0 };
    let mut learner = Learner::connect(settings.clone(), learner_start(), 0);
    assert_eq!(learner_sent(&learner.take_outputs()), [(PacketType::ObserverInfo, z(1, 0))]);
    let leader_info =
        |epoch| LearnerInput::Packet(QuorumPacket::new(PacketType::LeaderInfo, z(epoch, 0), Some(int_body(0x10000))));
    let out = learner.step(0, leader_info(1));
    let LearnerOutput::Send(p) = &out[0] else { panic!() };
    assert_eq!(decode_int_body(p.data.as_deref().unwrap()).unwrap(), -1, "epoch already accepted");
    assert_eq!(
        learner.step(0, LearnerInput::Packet(QuorumPacket::new(PacketType::Trunc, z(1, 0), None))),
        [LearnerOutput::Truncate(z(1, 0))]
    );

    let mut learner = Learner::connect(settings.clone(), learner_start(), 0);
    learner.step(0, leader_info(3));
    assert_eq!(
        learner.step(0, LearnerInput::Packet(QuorumPacket::new(PacketType::Snap, z(2, 9), None))),
        [LearnerOutput::MarkEpochUpdate, LearnerOutput::ReceiveSnapshot(z(2, 9))]
    );
    learner.step(0, LearnerInput::Packet(QuorumPacket::new(PacketType::NewLeader, z(3, 0), None)));
    // Observers are informed of committed txns and never ack them.
    learner.step(0, LearnerInput::Packet(QuorumPacket::new(PacketType::UpToDate, -1, None)));
    let out = learner.step(0, LearnerInput::Packet(QuorumPacket::new(PacketType::Inform, z(3, 1), Some(vec![1]))));
    assert!(matches!(&out[..], [LearnerOutput::Append(_), LearnerOutput::Commit(c)] if *c == z(3, 1)), "{out:?}");
    assert!(learner_sent(&learner.step(0, LearnerInput::Persisted(z(3, 1)))).is_empty());

    let mut learner = Learner::connect(LearnerSettings { observer: false, ..settings }, learner_start(), 0);
    learner.take_outputs();
    let out = learner.step(0, leader_info(0));
    assert!(matches!(&out[..], [LearnerOutput::Abandon(why)] if why.contains("less than accepted epoch")));
}

/// A learner with a log that is durable at once, as a test member.
struct Member {
    learner: Learner,
    log: Vec<i64>,
    committed: i64,
}

impl Member {
    /// Feeds one input and everything it causes locally; returns the packets for the leader.
    fn deliver(&mut self, now_ms: u64, input: LearnerInput) -> Vec<QuorumPacket> {
        let mut to_leader = Vec::new();
        let mut inputs = vec![input];
        while let Some(input) = inputs.pop() {
            for output in self.learner.step(now_ms, input) {
                match output {
                    LearnerOutput::Send(p) => to_leader.push(p),
                    LearnerOutput::Append(entries) => {
                        self.log.extend(entries.iter().map(|e| e.zxid));
                        inputs.push(LearnerInput::Persisted(entries.last().expect("not empty").zxid));
                    }
                    LearnerOutput::Commit(zxid) => self.committed = zxid,
                    _ => {}
                }
            }
        }
        to_leader
    }
}

/// A leader and two followers wired in memory, each log durable at once: every proposal commits on
/// every member, in order.
#[test]
fn leader_and_followers_in_memory_replicate_and_commit_everything() {
    let voters: BTreeSet<Sid> = [1, 2, 3].into();
    let settings = LeaderSettings {
        my_id: 3,
        voters,
        limits: LIMITS,
        config: vec![],
        version_initial_config: false,
        logged_config: None,
    };
    let start = LeaderStart { accepted_epoch: 0, current_epoch: 0, history: history(&[]) };
    let mut leader = Leader::new(settings, start, 0);
    let mut members: BTreeMap<LinkId, Member> = BTreeMap::new();
    let mut to_leader: Vec<(LinkId, QuorumPacket)> = Vec::new();
    for sid in [1, 2] {
        let settings = LearnerSettings { my_id: sid, observer: false, limits: LIMITS, config_version: 0 };
        let start = LearnerStart { accepted_epoch: 0, current_epoch: 0, last_logged_zxid: 0 };
        let mut learner = Learner::connect(settings, start, 0);
        leader.step(0, LeaderInput::Linked(sid as LinkId));
        for o in learner.take_outputs() {
            if let LearnerOutput::Send(p) = o {
                to_leader.push((sid as LinkId, p));
            }
        }
        members.insert(sid as LinkId, Member { learner, log: Vec::new(), committed: 0 });
    }
    let mut committed_on_leader = 0;
    let mut next = 1;
    for now in 0..40 {
        let mut leader_out: Vec<LeaderOutput> = Vec::new();
        for (link, p) in to_leader.drain(..) {
            leader_out.extend(leader.step(now, LeaderInput::Packet(link, p)));
        }
        if leader.is_established() && next <= 10 {
            let e = entry(z(1, next));
            next += 1;
            leader_out.extend(leader.step(now, LeaderInput::Propose(vec![e.clone()])));
            leader_out.extend(leader.step(now, LeaderInput::Persisted(e.zxid)));
        }
        for output in leader_out {
            match output {
                LeaderOutput::Send(link, p) => {
                    let replies = members.get_mut(&link).unwrap().deliver(now, LearnerInput::Packet(p));
                    to_leader.extend(replies.into_iter().map(|r| (link, r)));
                }
                LeaderOutput::Committed(c) => committed_on_leader = c,
                _ => {}
            }
        }
    }
    assert_eq!(committed_on_leader, z(1, 10));
    for member in members.values() {
        assert!(member.learner.is_serving());
        assert_eq!(member.log, (1..=10).map(|c| z(1, c)).collect::<Vec<_>>());
        assert_eq!(member.committed, z(1, 10));
    }
}

#[test]
fn a_learner_that_never_finishes_its_synchronisation_is_dropped_after_init_limit() {
    let (mut leader, _) = established_leader();
    let at = 100;
    leader.step(at, LeaderInput::Linked(20));
    leader.step(at, LeaderInput::Linked(21));
    leader.step(at, LeaderInput::Packet(21, info(PacketType::ObserverInfo, 9, 1)));
    let keep_active = |leader: &mut Leader, now| {
        for link in [10, 11] {
            leader.step(now, LeaderInput::Packet(link, QuorumPacket::new(PacketType::Ping, z(1, 2), Some(vec![]))));
        }
    };
    keep_active(&mut leader, at + LIMITS.init_ms());
    let out = leader.step(at + LIMITS.init_ms(), LeaderInput::Tick);
    assert!(!out.iter().any(|o| matches!(o, LeaderOutput::Close(..))), "within initLimit: {out:?}");
    keep_active(&mut leader, at + LIMITS.init_ms() + 1);
    let out = leader.step(at + LIMITS.init_ms() + 1, LeaderInput::Tick);
    let closed: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            LeaderOutput::Close(link, why) => Some((*link, why.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(closed, [(20, "not synchronised within initLimit"), (21, "not synchronised within initLimit")]);
    assert!(!out.iter().any(|o| matches!(o, LeaderOutput::Abandon(_))), "{out:?}");
}

#[test]
fn a_member_connecting_again_replaces_its_older_link() {
    let (mut leader, _) = established_leader();
    leader.step(50, LeaderInput::Linked(30));
    let out = leader.step(50, LeaderInput::Packet(30, info(PacketType::FollowerInfo, 1, 2)));
    assert!(
        matches!(&out[..], [LeaderOutput::Close(10, why), ..] if why == "replaced by a newer connection from 1"),
        "{out:?}"
    );
    assert_eq!(sent(&out), [(30, PacketType::LeaderInfo, z(2, 0))]);
    assert_eq!(leader.learners(), 2, "links 11 and 30");
}

#[test]
fn live_proposals_after_newleader_do_not_hold_its_ack_back() {
    let settings = LearnerSettings { my_id: 1, observer: false, limits: LIMITS, config_version: 0 };
    let mut learner = Learner::connect(settings, learner_start(), 0);
    learner.take_outputs();
    learner.step(1, LearnerInput::Packet(QuorumPacket::new(PacketType::LeaderInfo, z(2, 0), Some(int_body(0x10000)))));
    let packet = |kind, zxid| LearnerInput::Packet(QuorumPacket::new(kind, zxid, None));
    let proposal = |zxid| LearnerInput::Packet(QuorumPacket::new(PacketType::Proposal, zxid, Some(vec![9])));
    learner.step(2, packet(PacketType::Diff, z(1, 2)));
    learner.step(2, proposal(z(1, 2)));
    learner.step(2, packet(PacketType::Commit, z(1, 2)));
    learner.step(3, packet(PacketType::NewLeader, z(2, 0)));
    // A steady load: live proposals keep arriving faster than they become durable.
    learner.step(3, proposal(z(2, 1)));
    learner.step(3, proposal(z(2, 2)));
    let out = learner.step(4, LearnerInput::Persisted(z(2, 1)));
    assert_eq!(out[0], LearnerOutput::PersistCurrentEpoch(2), "{out:?}");
    assert_eq!(
        learner_sent(&out),
        [(PacketType::Ack, z(2, 0)), (PacketType::Ack, z(1, 2)), (PacketType::Ack, z(2, 1))]
    );
    let out = learner.step(5, LearnerInput::Persisted(z(2, 2)));
    assert_eq!(learner_sent(&out), [(PacketType::Ack, z(2, 2))]);
}

/// A new leader whose log holds a reconfiguration that was never activated (its leader failed between
/// commit and COMMITANDACTIVATE): NEWLEADER carries that membership, a quorum of the old ({1, 2, 3}) and
/// of the new ({3, 4, 5, 6, 7}) must acknowledge it, and then it is in force.
#[test]
fn a_logged_reconfiguration_is_established_with_both_quorums_then_activated() {
    let newer = "server.3=h:1:2:participant;3\nserver.4=h:3:4:participant;5\nserver.5=h:5:6:participant;7\n\
                 server.6=h:7:8:participant;9\nserver.7=h:9:10:participant;11\nversion=100000002";
    let settings = LeaderSettings { logged_config: Some(newer.as_bytes().to_vec()), ..leader_settings(&[1, 2, 3]) };
    let start = LeaderStart { accepted_epoch: 1, current_epoch: 1, history: history(&[z(1, 1), z(1, 2)]) };
    let mut leader = Leader::new(settings, start, 0);
    let ack_epoch = |zxid| QuorumPacket::new(PacketType::AckEpoch, zxid, Some(int_body(1)));
    let newleader_ack = QuorumPacket::new(PacketType::Ack, z(2, 0), None);
    for (link, sid) in [(10, 1), (11, 4)] {
        leader.step(0, LeaderInput::Linked(link));
        leader.step(0, LeaderInput::Packet(link, info(PacketType::FollowerInfo, sid, 1)));
    }
    // {3, 1} is a quorum of the old membership, {3, 4} is not one of the new (5 voters): no epoch yet.
    assert_eq!(leader.epoch(), None);
    leader.step(0, LeaderInput::Linked(12));
    leader.step(0, LeaderInput::Packet(12, info(PacketType::FollowerInfo, 5, 1)));
    assert_eq!(leader.epoch(), Some(2), "3, 4 and 5 make the new quorum, 3 and 1 the old");
    for link in [10, 11, 12] {
        let out = leader.step(1, LeaderInput::Packet(link, ack_epoch(z(1, 2))));
        for output in &out {
            if let LeaderOutput::Send(_, p) = output
                && p.kind == PacketType::NewLeader
            {
                assert_eq!(p.data.as_deref(), Some(newer.as_bytes()), "NEWLEADER carries the logged membership");
            }
        }
    }
    let out = leader.step(2, LeaderInput::Packet(11, newleader_ack.clone()));
    assert!(!out.iter().any(|o| matches!(o, LeaderOutput::Established { .. })), "3 and 4: not the old quorum");
    let out = leader.step(2, LeaderInput::Packet(10, newleader_ack.clone()));
    assert!(!out.iter().any(|o| matches!(o, LeaderOutput::Established { .. })), "3, 4, 1: not the new quorum");
    let out = leader.step(2, LeaderInput::Packet(12, newleader_ack));
    assert!(out.contains(&LeaderOutput::Established { epoch: 2 }), "{out:?}");
    assert!(out.contains(&LeaderOutput::Activate(newer.as_bytes().to_vec())), "{out:?}");
    assert_eq!(leader.synced_members(), BTreeSet::from([1, 3, 4, 5]));
}

/// A new leader (3) whose log holds a reconfiguration leaving it out (voters 1, 2, 4): it establishes
/// that membership with a quorum of both, as ZooKeeper's `startZkServer` does, and then commits nothing
/// (`allowedToCommit`): the new voters elect their own leader.
#[test]
fn a_leader_left_out_by_its_logged_membership_establishes_it_and_commits_nothing() {
    let newer = "server.1=h:1:2:participant;3\nserver.2=h:3:4:participant;5\nserver.4=h:5:6:participant;7\n\
                 version=100000002";
    let settings = LeaderSettings { logged_config: Some(newer.as_bytes().to_vec()), ..leader_settings(&[1, 2, 3]) };
    let start = LeaderStart { accepted_epoch: 1, current_epoch: 1, history: history(&[z(1, 1), z(1, 2)]) };
    let mut leader = Leader::new(settings, start, 0);
    for (link, sid) in [(10, 1), (11, 2)] {
        leader.step(0, LeaderInput::Linked(link));
        leader.step(0, LeaderInput::Packet(link, info(PacketType::FollowerInfo, sid, 1)));
    }
    for link in [10, 11] {
        leader.step(1, LeaderInput::Packet(link, QuorumPacket::new(PacketType::AckEpoch, z(1, 2), Some(int_body(1)))));
    }
    let newleader_ack = QuorumPacket::new(PacketType::Ack, z(2, 0), None);
    leader.step(2, LeaderInput::Packet(10, newleader_ack.clone()));
    let out = leader.step(2, LeaderInput::Packet(11, newleader_ack));
    assert!(out.contains(&LeaderOutput::Established { epoch: 2 }), "1 and 2: a quorum of both: {out:?}");
    assert!(out.contains(&LeaderOutput::Activate(newer.as_bytes().to_vec())), "{out:?}");
    leader.step(3, LeaderInput::Propose(vec![entry(z(2, 1))]));
    let ack = QuorumPacket::new(PacketType::Ack, z(2, 1), None);
    let mut out = leader.step(4, LeaderInput::Persisted(z(2, 1)));
    out.extend(leader.step(4, LeaderInput::Packet(10, ack.clone())));
    out.extend(leader.step(4, LeaderInput::Packet(11, ack)));
    assert!(!sent(&out).iter().any(|(_, kind, _)| *kind == PacketType::Commit), "{out:?}");
    assert!(!out.iter().any(|o| matches!(o, LeaderOutput::Committed(_))), "{out:?}");
    assert_eq!(leader.committed(), z(1, 2));
}

/// A follower the membership in force lists as an observer (a reconfig re-roled it; it is leaving to
/// come back as an observer) is not counted among the synchronised voters, so a reconfiguration cannot
/// count on it.
#[test]
fn a_follower_the_membership_makes_an_observer_does_not_count_as_synchronised() {
    let config = "server.1=h:1:2:participant;3\nserver.2=h:3:4:observer;5\nserver.3=h:5:6:participant;7\n\
                  version=100000001";
    let settings = LeaderSettings { config: config.as_bytes().to_vec(), ..leader_settings(&[1, 3]) };
    let start = LeaderStart { accepted_epoch: 1, current_epoch: 1, history: history(&[z(1, 1)]) };
    let mut leader = Leader::new(settings, start, 0);
    for (link, sid) in [(10, 1), (11, 2)] {
        leader.step(0, LeaderInput::Linked(link));
        leader.step(0, LeaderInput::Packet(link, info(PacketType::FollowerInfo, sid, 1)));
        leader.step(1, LeaderInput::Packet(link, QuorumPacket::new(PacketType::AckEpoch, z(1, 1), Some(int_body(1)))));
    }
    for link in [11, 10] {
        leader.step(2, LeaderInput::Packet(link, QuorumPacket::new(PacketType::Ack, z(2, 0), None)));
    }
    assert!(leader.is_established());
    assert_eq!(leader.synced_members(), BTreeSet::from([1, 3]), "2 is linked and synchronised, but an observer now");
}
