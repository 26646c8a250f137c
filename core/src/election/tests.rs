//! Hand-written notification sequences against one machine.

use std::collections::BTreeSet;

use super::*;

const CONFIG: &[u8] = b"server.1=a:2888:3888:participant\nversion=0";

fn settings(my_id: i64, voters: &[i64]) -> ElectionSettings {
    ElectionSettings {
        my_id,
        voters: voters.iter().copied().collect(),
        observer: false,
        finalize_wait_ms: FINALIZE_WAIT_MS,
        max_notification_interval_ms: MAX_NOTIFICATION_INTERVAL_MS,
        config: CONFIG.to_vec(),
    }
}

fn facts(current_epoch: i64, last_zxid: i64) -> MyFacts {
    MyFacts { last_zxid, current_epoch }
}

fn vote(leader: i64, zxid: i64, peer_epoch: i64) -> Vote {
    Vote { leader, zxid, peer_epoch }
}

fn note(state: ServerState, vote: Vote, election_epoch: i64) -> Notification {
    Notification { state, vote, election_epoch, version: NOTIFICATION_VERSION, config: CONFIG.to_vec() }
}

fn looking(vote: Vote, election_epoch: i64) -> Notification {
    note(ServerState::Looking, vote, election_epoch)
}

/// The sends in `out`, as (to, state, vote, round), in order.
fn sends(out: &[Output]) -> Vec<(i64, ServerState, Vote, i64)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { to, notification: n } => Some((*to, n.state, n.vote, n.election_epoch)),
            Output::Decided(_) => None,
        })
        .collect()
}

fn decision(out: &[Output]) -> Option<Decision> {
    out.iter().find_map(|o| match o {
        Output::Decided(d) => Some(*d),
        Output::Send { .. } => None,
    })
}

/// Server 1 of {1,2,3} with (epoch 1, zxid 0x1_0000_0005), after `look` at time 0.
fn member_one_of_three() -> Election {
    let mut e = Election::new(settings(1, &[1, 2, 3]));
    e.look(0, facts(1, 0x1_0000_0005));
    e
}

#[test]
fn settings_that_cannot_elect_are_refused() {
    let mut observer_voting = settings(1, &[1, 2, 3]);
    observer_voting.observer = true;
    let mut no_voters = settings(1, &[]);
    no_voters.voters = BTreeSet::new();
    let mut zero_wait = settings(1, &[1]);
    zero_wait.finalize_wait_ms = 0;
    let mut low_ceiling = settings(1, &[1]);
    low_ceiling.max_notification_interval_ms = 100;
    let table = [
        (settings(1, &[1, 2, 3]), Ok(())),
        (observer_voting, Err(SettingsError::ObserverVotes(1))),
        (no_voters, Err(SettingsError::NoVoters)),
        (zero_wait, Err(SettingsError::ZeroFinalizeWait)),
        (low_ceiling, Err(SettingsError::IntervalBelowFinalizeWait { max_ms: 100, finalize_ms: 200 })),
    ];
    for (settings, expected) in table {
        assert_eq!(settings.validate(), expected);
    }
}

#[test]
fn look_proposes_myself_to_every_other_voter_in_a_new_round() {
    let mut e = Election::new(settings(2, &[1, 2, 3]));
    assert_eq!((e.state(), e.logical_clock(), e.next_deadline_ms()), (ServerState::Looking, 0, None));
    let out = e.look(1_000, facts(4, 0x4_0000_0009));
    let mine = vote(2, 0x4_0000_0009, 4);
    assert_eq!(sends(&out), [(1, ServerState::Looking, mine, 1), (3, ServerState::Looking, mine, 1)]);
    let Output::Send { notification, .. } = &out[0] else { unreachable!() };
    assert_eq!((notification.version, notification.config.as_slice()), (2, CONFIG));
    assert_eq!((e.logical_clock(), e.proposal(), e.current_vote()), (1, mine, mine));
    assert_eq!(e.next_deadline_ms(), Some(1_200), "first notification timeout is the finalize wait");
}

#[test]
fn a_better_vote_is_adopted_and_rebroadcast_and_a_worse_one_is_not() {
    // (incoming vote from server 2 in round 1, my proposal afterwards, rebroadcast?)
    let mine = vote(1, 0x1_0000_0005, 1);
    let table = [
        (vote(2, 0x1_0000_0005, 1), vote(2, 0x1_0000_0005, 1), true), // higher sid
        (vote(2, 0x1_0000_0004, 1), mine, false),                     // older zxid
        (vote(2, 0x0_0000_0009, 0), mine, false),                     // older epoch
        (vote(2, 0x2_0000_0001, 2), vote(2, 0x2_0000_0001, 2), true), // newer epoch
    ];
    for (incoming, proposal, rebroadcast) in table {
        let mut e = member_one_of_three();
        let out = e.receive(10, 2, looking(incoming, 1));
        assert_eq!(e.proposal(), proposal, "{incoming:?}");
        let expected: Vec<_> = if rebroadcast {
            vec![(2, ServerState::Looking, proposal, 1), (3, ServerState::Looking, proposal, 1)]
        } else {
            vec![]
        };
        assert_eq!(sends(&out), expected, "{incoming:?}");
    }
}

#[test]
fn a_newer_zxid_beats_a_higher_sid_and_wins_after_the_finalize_wait() {
    // Server 3 of three; server 1 has the newest zxid. 3 adopts 1, hears 2 vote for 1 too: a quorum.
    let mut e = Election::new(settings(3, &[1, 2, 3]));
    e.look(0, facts(1, 0x1_0000_0003));
    let best = vote(1, 0x1_0000_0007, 1);
    let out = e.receive(5, 1, looking(best, 1));
    assert_eq!(e.proposal(), best);
    assert_eq!(sends(&out).len(), 2, "adopting a better vote tells both others");
    assert_eq!(e.next_deadline_ms(), Some(205), "1's vote and my own (delivered to myself): a quorum for 1");
    // 2 agrees as well: every voter has voted for 1, so the wait has nothing left to wait for (ZooKeeper
    // would wait out the 200 ms; see the module doc).
    let out = e.receive(8, 2, looking(best, 1));
    let expected = Decision { state: ServerState::Following, vote: best, election_epoch: 1 };
    assert_eq!(decision(&out), Some(expected));
    assert_eq!((e.state(), e.current_vote(), e.next_deadline_ms()), (ServerState::Following, best, None));
}

#[test]
fn an_equal_vote_restarts_the_finalize_wait_while_a_voter_is_still_silent() {
    let mut e = Election::new(settings(3, &[1, 2, 3, 4, 5]));
    e.look(0, facts(1, 0x1_0000_0003));
    let best = vote(1, 0x1_0000_0007, 1);
    e.receive(5, 1, looking(best, 1));
    assert_eq!(e.next_deadline_ms(), Some(5 + FINALIZE_WAIT_MS), "still no quorum: polling");
    assert_eq!(decision(&e.receive(6, 2, looking(best, 1))), None, "1, 2 and 3: a quorum of five");
    assert_eq!(e.next_deadline_ms(), Some(6 + FINALIZE_WAIT_MS));
    assert!(e.receive(8, 4, looking(best, 1)).is_empty(), "5 is still silent");
    assert_eq!(e.next_deadline_ms(), Some(8 + FINALIZE_WAIT_MS), "an equal vote is no better: the wait starts over");
    let out = e.tick(8 + FINALIZE_WAIT_MS);
    assert_eq!(decision(&out).map(|d| d.vote), Some(best));
}

#[test]
fn the_finalize_wait_is_cut_short_only_by_a_better_vote() {
    // Five voters; 1, 2 and 3 agree on 3 (a quorum), then 5 speaks up inside the window.
    let three = vote(3, 0x1_0000_0005, 1);
    let five = vote(5, 0x1_0000_0005, 1);
    let start = |e: &mut Election| {
        e.look(0, facts(1, 0x1_0000_0005));
        e.receive(1, 3, looking(three, 1));
        e.receive(2, 2, looking(three, 1));
        assert_eq!(e.next_deadline_ms(), Some(202), "quorum for 3: deciding at 202 unless...");
    };

    // A vote that is not better than 3 is dropped and restarts the wait.
    let mut e = Election::new(settings(1, &[1, 2, 3, 4, 5]));
    start(&mut e);
    let out = e.receive(100, 4, looking(vote(2, 0x1_0000_0005, 1), 1));
    assert!(out.is_empty());
    assert_eq!(e.next_deadline_ms(), Some(300), "each poll of the finalize loop waits afresh");
    assert_eq!(decision(&e.tick(300)).map(|d| d.vote), Some(three));

    // A better vote in the window is taken up: no decision at the old deadline.
    let mut e = Election::new(settings(1, &[1, 2, 3, 4, 5]));
    start(&mut e);
    let out = e.receive(100, 5, looking(five, 1));
    assert_eq!(e.proposal(), five);
    assert_eq!(sends(&out).len(), 4, "the new proposal goes to every other voter");
    assert!(e.tick(202).is_empty());
    assert_eq!(e.state(), ServerState::Looking);
    assert_eq!(e.next_deadline_ms(), Some(300), "back to polling with the notification timeout");
    // 1 (itself) and 5, then 3 switches to 5: a new quorum, a new wait; 4's equal vote restarts it.
    e.receive(110, 3, looking(five, 1));
    assert_eq!(e.next_deadline_ms(), Some(310));
    e.receive(120, 4, looking(five, 1));
    assert_eq!(e.next_deadline_ms(), Some(320));
    let d = decision(&e.tick(320)).expect("decided");
    assert_eq!((d.state, d.vote, d.election_epoch), (ServerState::Following, five, 1));
}

/// Server 1 of five, finalizing for 3 since time 2 (deadline 202).
fn finalizing_for_three() -> Election {
    let three = vote(3, 0x1_0000_0005, 1);
    let mut e = Election::new(settings(1, &[1, 2, 3, 4, 5]));
    e.look(0, facts(1, 0x1_0000_0005));
    e.receive(1, 3, looking(three, 1));
    e.receive(2, 2, looking(three, 1));
    assert_eq!(e.next_deadline_ms(), Some(202));
    e
}

#[test]
fn during_the_finalize_wait_only_the_vote_is_compared() {
    // ZooKeeper's finalize loop looks at nothing but totalOrderPredicate: what is not better is
    // dropped unexamined (even a higher round or a leader's word); what is better leaves the wait
    // even if the loop then ignores it.
    let three = vote(3, 0x1_0000_0005, 1);
    let worse = vote(2, 0x1_0000_0001, 1);
    // (sender, notification at 100, decided for 3 in round 1 at 300?)
    let table = [
        (2, looking(worse, 9), true),                      // a higher round is not joined
        (2, note(ServerState::Leading, worse, 9), true),   // a sitting leader's word is not heard
        (4, looking(vote(9, 0x9_0000_0000, 9), 1), false), // candidate 9 is no voter, but it is "better"
    ];
    for (from, n, decides) in table {
        let mut e = finalizing_for_three();
        let replies = e.receive(100, from, n.clone());
        assert!(replies.is_empty(), "{n:?}");
        assert_eq!(e.next_deadline_ms(), Some(300), "{n:?}");
        let out = e.tick(300);
        let expected = decides.then_some(Decision { state: ServerState::Following, vote: three, election_epoch: 1 });
        assert_eq!(decision(&out), expected, "{n:?}");
        assert_eq!(e.logical_clock(), 1, "{n:?}");
        assert_eq!(sends(&out).is_empty(), decides, "undecided: the notification timeout resent instead");
    }
}

#[test]
fn a_quorum_for_myself_makes_me_lead() {
    let mut e = Election::new(settings(3, &[1, 2, 3]));
    e.look(0, facts(1, 0x1_0000_0005));
    e.receive(3, 1, looking(vote(3, 0x1_0000_0005, 1), 1));
    let d = decision(&e.tick(203)).expect("decided");
    assert_eq!((d.state, d.vote.leader, d.election_epoch), (ServerState::Leading, 3, 1));
}

#[test]
fn a_higher_round_resets_mine() {
    let mut e = member_one_of_three();
    let mine = vote(1, 0x1_0000_0005, 1);
    let worse = vote(2, 0x1_0000_0001, 1);
    // Round 4 from server 2, with a worse candidate than me: I join round 4 proposing myself.
    let out = e.receive(10, 2, looking(worse, 4));
    assert_eq!((e.logical_clock(), e.proposal()), (4, mine));
    assert_eq!(sends(&out), [(2, ServerState::Looking, mine, 4), (3, ServerState::Looking, mine, 4)]);
    assert_eq!(e.next_deadline_ms(), Some(210), "only my own vote and 2's: no quorum for 1");

    // A higher round with a better candidate: adopted straight away, earlier votes forgotten.
    let mut e = member_one_of_three();
    let better = vote(3, 0x1_0000_0005, 1);
    e.receive(10, 3, looking(better, 1));
    assert_eq!(e.next_deadline_ms(), Some(210), "1 and 3 for 3 in round 1: finalizing");
    let out = e.receive(20, 2, looking(vote(2, 0x1_0000_0006, 1), 7));
    assert_eq!((e.logical_clock(), e.proposal().leader), (7, 2));
    assert_eq!(sends(&out).len(), 2);
    // Round 1's votes are gone: 3's old vote does not help, and only {1,2} for 2 — a quorum, fresh wait.
    assert_eq!(e.next_deadline_ms(), Some(220));
}

#[test]
fn a_stale_round_is_ignored_and_its_sender_told_my_round() {
    let mut e = member_one_of_three();
    e.receive(5, 2, looking(vote(2, 0x1_0000_0001, 1), 3)); // now in round 3, proposing myself
    let before = (e.logical_clock(), e.proposal(), e.next_deadline_ms());
    let far_better = vote(3, 0x9_0000_0009, 9);
    let out = e.receive(6, 3, looking(far_better, 1));
    assert_eq!(sends(&out), [(3, ServerState::Looking, vote(1, 0x1_0000_0005, 1), 3)]);
    assert_eq!((e.logical_clock(), e.proposal()), (before.0, before.1), "not adopted");
    assert_eq!(e.next_deadline_ms(), Some(206), "the poll still restarted");
}

#[test]
fn unknown_zxids_and_non_voting_candidates_are_not_counted() {
    // (my zxid, incoming vote from 3 in round 1) -> proposal unchanged
    let table = [
        (0x1_0000_0005, vote(3, -1, 1)),            // the sender knows no zxid
        (-1, vote(3, 0x1_0000_0005, 1)),            // I know no zxid
        (0x1_0000_0005, vote(9, 0x9_0000_0000, 9)), // candidate 9 is no voter
    ];
    for (my_zxid, incoming) in table {
        let mut e = Election::new(settings(1, &[1, 2, 3]));
        e.look(0, facts(1, my_zxid));
        let proposal = e.proposal();
        let out = e.receive(5, 3, looking(incoming, 1));
        assert!(out.is_empty(), "{incoming:?}");
        assert_eq!(e.proposal(), proposal);
        assert_eq!(e.next_deadline_ms(), Some(205), "no quorum, no finalize wait");
    }
}

#[test]
fn a_late_joiner_follows_a_sitting_leader_only_once_it_says_it_leads() {
    let sitting = vote(3, 0x1_0000_0000, 2);
    // Five voters; 2, 4 and 5 follow 3 (round 6), a quorum — but 3 has not spoken.
    let mut e = Election::new(settings(1, &[1, 2, 3, 4, 5]));
    e.look(0, facts(1, 0x1_0000_0005));
    for (t, sid) in [(1, 2), (2, 4), (3, 5)] {
        let out = e.receive(t, sid, note(ServerState::Following, sitting, 6));
        assert!(decision(&out).is_none(), "no LEADING from 3 yet");
    }
    assert_eq!(e.state(), ServerState::Looking);
    let out = e.receive(4, 3, note(ServerState::Leading, sitting, 6));
    let expected = Decision { state: ServerState::Following, vote: sitting, election_epoch: 6 };
    assert_eq!(decision(&out), Some(expected));
    assert_eq!(e.logical_clock(), 6, "joined the leader's round");

    // With the leader's word but without a quorum behind it: still looking.
    let mut e = Election::new(settings(1, &[1, 2, 3, 4, 5]));
    e.look(0, facts(1, 0x1_0000_0005));
    e.receive(1, 3, note(ServerState::Leading, sitting, 6));
    e.receive(2, 2, note(ServerState::Following, sitting, 6));
    assert_eq!(e.state(), ServerState::Looking, "3 and 2 are two of five");
    // A follower still on the previous epoch's vote does not agree (leader and peer epoch compared).
    e.receive(3, 4, note(ServerState::Following, vote(3, 0x1_0000_0000, 1), 6));
    assert_eq!(e.state(), ServerState::Looking);
    let out = e.receive(4, 5, note(ServerState::Following, vote(3, 0x1_0000_0777, 2), 5));
    assert_eq!(decision(&out).map(|d| d.state), Some(ServerState::Following), "zxid and round are not compared");
}

#[test]
fn followers_of_my_round_can_make_me_leader() {
    // In my own round a quorum of followers naming me is enough (checkLeader: the round must be mine).
    let me = vote(1, 0x1_0000_0005, 1);
    let mut e = member_one_of_three();
    // My own LOOKING vote in this round agrees with 2's FOLLOWING one (a LOOKING side compares leader,
    // zxid, round and peer epoch): two of three.
    let out = e.receive(5, 2, note(ServerState::Following, me, 1));
    let expected = Decision { state: ServerState::Leading, vote: me, election_epoch: 1 };
    assert_eq!(decision(&out), Some(expected));

    // From another round, no.
    let mut e = member_one_of_three();
    e.receive(5, 2, note(ServerState::Following, me, 4));
    let out = e.receive(6, 3, note(ServerState::Following, me, 4));
    assert!(decision(&out).is_none());
}

fn observer_settings() -> ElectionSettings {
    ElectionSettings { observer: true, ..settings(4, &[1, 2, 3]) }
}

#[test]
fn an_observer_learns_the_leader_without_voting() {
    let mut e = Election::new(observer_settings());
    let out = e.look(0, facts(1, 0x1_0000_0005));
    let nobody = NON_VOTER_VOTE;
    assert_eq!(
        sends(&out),
        [
            (1, ServerState::Looking, nobody, 1),
            (2, ServerState::Looking, nobody, 1),
            (3, ServerState::Looking, nobody, 1)
        ],
        "it proposes nobody, to the voters only"
    );
    let leader = vote(3, 0x1_0000_0000, 1);
    assert!(decision(&e.receive(5, 1, note(ServerState::Following, leader, 1))).is_none());
    let out = e.receive(6, 3, note(ServerState::Leading, leader, 1));
    let expected = Decision { state: ServerState::Observing, vote: leader, election_epoch: 1 };
    assert_eq!(decision(&out), Some(expected));
}

#[test]
fn a_voter_answers_an_observer_at_once_and_does_not_count_it() {
    let mut e = member_one_of_three();
    let out = e.receive(5, 4, looking(NON_VOTER_VOTE, 1));
    let mine = vote(1, 0x1_0000_0005, 1);
    assert_eq!(sends(&out), [(4, ServerState::Looking, mine, 1)]);
    // Even a "vote" for me from a non-voter makes no quorum with my own.
    e.receive(6, 4, looking(mine, 1));
    assert_eq!(e.next_deadline_ms(), Some(200), "the loop never saw either: still the first poll");
}

#[test]
fn once_decided_looking_members_and_looking_non_voters_get_my_vote() {
    let mut e = Election::new(settings(3, &[1, 2, 3]));
    e.look(0, facts(1, 0x1_0000_0005));
    e.receive(3, 1, looking(vote(3, 0x1_0000_0005, 1), 1));
    e.tick(203);
    assert_eq!(e.state(), ServerState::Leading);
    e.update_election_vote(2);
    let shown = vote(3, 0x1_0000_0005, 2);
    // (sender, its notification, expected reply)
    let table = [
        (1, looking(vote(1, 0, 0), 9), vec![(1, ServerState::Leading, shown, 1)]),
        (2, note(ServerState::Following, shown, 1), vec![]),
        (5, note(ServerState::Looking, NON_VOTER_VOTE, 1), vec![(5, ServerState::Leading, shown, 1)]),
        // An observer already observing needs no answer (ZooKeeper answers, and the two never stop).
        (5, note(ServerState::Observing, shown, 1), vec![]),
    ];
    for (from, n, expected) in table {
        let out = e.receive(500, from, n);
        assert_eq!(sends(&out), expected, "from {from}");
        assert!(decision(&out).is_none());
    }
    assert_eq!((e.state(), e.next_deadline_ms()), (ServerState::Leading, None), "replies do not reopen the round");
}

#[test]
fn the_notification_timeout_resends_and_doubles_up_to_the_ceiling() {
    let mut e = Election::new(ElectionSettings { max_notification_interval_ms: 1_000, ..settings(1, &[1, 2, 3]) });
    e.look(0, facts(1, 5));
    let mine = vote(1, 5, 1);
    // (tick at, resent?, next deadline)
    let table = [
        (199, false, 200),
        (200, true, 600), // 200 -> 400
        (600, true, 1_400),
        (1_400, true, 2_400), // 800 -> capped at 1000
        (2_400, true, 3_400),
    ];
    for (at, resent, next) in table {
        let out = e.tick(at);
        let expected: Vec<_> =
            if resent { vec![(2, ServerState::Looking, mine, 1), (3, ServerState::Looking, mine, 1)] } else { vec![] };
        assert_eq!(sends(&out), expected, "tick at {at}");
        assert_eq!(e.next_deadline_ms(), Some(next), "tick at {at}");
    }
    // A notification restarts the poll with the current (not the first) timeout.
    e.receive(3_000, 2, looking(vote(1, 4, 1), 1));
    assert_eq!(e.next_deadline_ms(), Some(4_000));
}

#[test]
fn a_new_round_after_a_role_ends_carries_the_clock_on() {
    let mut e = member_one_of_three();
    let leader = vote(3, 0x1_0000_0005, 1);
    e.receive(1, 3, looking(leader, 1));
    e.tick(201);
    assert_eq!(e.state(), ServerState::Following);
    let out = e.look(5_000, facts(2, 0x2_0000_0010));
    assert_eq!((e.state(), e.logical_clock()), (ServerState::Looking, 2));
    assert_eq!(e.current_vote(), leader, "the shown vote stays the last decision while looking");
    assert_eq!(e.proposal(), vote(1, 0x2_0000_0010, 2));
    assert_eq!(sends(&out).len(), 2);
    assert_eq!(e.next_deadline_ms(), Some(5_200), "the timeout starts again from the minimum");
}

#[test]
fn the_finalize_wait_ends_early_once_every_connected_voter_agrees() {
    // 3 is gone (no election connection): 2's vote completes everything 1 can hear.
    let mut e = Election::new(settings(1, &[1, 2, 3]));
    e.set_connected([2]);
    e.look(0, facts(1, 0x1_0000_0005));
    let out = e.receive(10, 2, looking(vote(2, 0x1_0000_0005, 1), 1));
    assert_eq!(decision(&out).map(|d| (d.state, d.vote.leader)), Some((ServerState::Following, 2)), "{out:?}");

    // With 3 connected but silent, the wait runs its course.
    let mut e = Election::new(settings(1, &[1, 2, 3]));
    e.set_connected([2, 3]);
    e.look(0, facts(1, 0x1_0000_0005));
    assert_eq!(decision(&e.receive(10, 2, looking(vote(2, 0x1_0000_0005, 1), 1))), None);
    assert_eq!(e.next_deadline_ms(), Some(10 + FINALIZE_WAIT_MS));
    assert_eq!(decision(&e.tick(10 + FINALIZE_WAIT_MS)).map(|d| d.vote.leader), Some(2));
}

#[test]
fn an_agreeing_vote_during_the_finalize_wait_can_end_it() {
    // 3's vote for itself makes a quorum with mine (the wait starts); 2, the last voter, agrees too.
    let mut e = Election::new(settings(1, &[1, 2, 3]));
    e.look(0, facts(1, 0x1_0000_0005));
    assert_eq!(decision(&e.receive(10, 3, looking(vote(3, 0x1_0000_0005, 1), 1))), None);
    assert_eq!(e.next_deadline_ms(), Some(10 + FINALIZE_WAIT_MS));
    let out = e.receive(20, 2, looking(vote(3, 0x1_0000_0005, 1), 1));
    assert_eq!(decision(&out).map(|d| d.vote.leader), Some(3), "every voter agrees: {out:?}");
}

#[test]
fn a_member_with_unknown_facts_never_counts_and_only_joins_a_sitting_leader() {
    // Member 1, found damaged: its votes and everyone's LOOKING votes are ignored both ways.
    let mut e = Election::new(settings(1, &[1, 2, 3]));
    let out = e.look(0, MyFacts::UNKNOWN);
    assert!(sends(&out).iter().all(|(_, _, v, _)| v.zxid == -1), "offers nothing to count: {out:?}");
    let candidate = vote(2, 0x1_0000_0005, 1);
    for (t, sid) in [(1, 2), (2, 3)] {
        assert!(decision(&e.receive(t, sid, looking(candidate, 1))).is_none(), "LOOKING votes do not elect it");
    }
    assert_eq!(e.proposal().leader, 1, "it never adopts another candidate, so no tally includes it");
    // The others elect 2 and tell it so: it follows.
    e.receive(3, 3, note(ServerState::Following, candidate, 1));
    let out = e.receive(4, 2, note(ServerState::Leading, candidate, 1));
    assert_eq!(decision(&out).map(|d| (d.state, d.vote.leader)), Some((ServerState::Following, 2)));

    // A leader restarting damaged before its followers noticed: they still follow it in its old round,
    // which is its new one too; it does not take the leadership back.
    let mut e = Election::new(settings(1, &[1, 2, 3]));
    e.look(0, MyFacts::UNKNOWN);
    let me = vote(1, 0x1_0000_0005, 1);
    assert!(decision(&e.receive(1, 2, note(ServerState::Following, me, 1))).is_none());
    assert!(decision(&e.receive(2, 3, note(ServerState::Following, me, 1))).is_none());
    assert_eq!(e.state(), ServerState::Looking);

    // A reconfiguration's designation of itself is not taken: a round starts instead.
    let mut e = Election::new(settings(1, &[1, 2, 3]));
    e.designate(1);
    let out = e.look(0, MyFacts::UNKNOWN);
    assert!(decision(&out).is_none());
    assert_eq!(e.state(), ServerState::Looking);
    // Another member designated is followed as usual.
    let mut e = Election::new(settings(1, &[1, 2, 3]));
    e.designate(2);
    assert_eq!(decision(&e.look(0, MyFacts::UNKNOWN)).map(|d| d.state), Some(ServerState::Following));
}
