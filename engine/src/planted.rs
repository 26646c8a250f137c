//! Deliberate bugs, planted behind a switch so that the simulators' own tests can prove their checkers
//! catch them (tests/tests/sim.rs). Compiled only with the `planted-bugs` feature (the simulators'
//! crate turns it on, through the server's feature of the same name); even then each is off unless a
//! test turns it on for its own thread — the server's threads never do. Without the feature,
//! [`is_planted`] is a constant `false` and the checks vanish.

/// One deliberate bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PlantedBug {
    /// The log stage reports txns durable as soon as they are written (the simulator's log stage).
    AckBeforeFsync,
    /// A leader counts a txn committed on its own ACK alone.
    CommitOnMinority,
    /// A learner told to TRUNC keeps its log, and later applies txns nobody committed.
    KeepTxnsOnTrunc,
    /// A learner answers its clients' syncs from its own state, without asking the leader.
    SyncAnsweredEarly,
    /// A leader counts a txn proposed during a reconfiguration (the reconfig itself included) committed
    /// on a quorum of the new configuration alone, and activates it so.
    NewQuorumOnly,
    /// A member found damaged at start-up votes with what it kept, before a leader synchronised it.
    DamagedVotes,
    /// The txn log, told a batch's fsync failed, syncs again and trusts the batch once that succeeds
    /// (the pages the failed writeback dropped are gone: the second sync has nothing to write).
    TrustFailedFsync,
    /// The log reader takes damage with valid records after it for a torn tail, and recovery cuts it.
    FlipAsTornTail,
}

impl PlantedBug {
    pub const ALL: [PlantedBug; 8] = [
        PlantedBug::AckBeforeFsync,
        PlantedBug::CommitOnMinority,
        PlantedBug::KeepTxnsOnTrunc,
        PlantedBug::SyncAnsweredEarly,
        PlantedBug::NewQuorumOnly,
        PlantedBug::DamagedVotes,
        PlantedBug::TrustFailedFsync,
        PlantedBug::FlipAsTornTail,
    ];
}

#[cfg(feature = "planted-bugs")]
thread_local! {
    static PLANTED: std::cell::Cell<Option<PlantedBug>> = const { std::cell::Cell::new(None) };
}

/// Turns `bug` on (or every bug off) for this thread.
#[cfg(feature = "planted-bugs")]
pub fn plant(bug: Option<PlantedBug>) {
    PLANTED.with(|planted| planted.set(bug));
}

/// Whether `bug` is on for this thread.
#[inline]
pub fn is_planted(bug: PlantedBug) -> bool {
    #[cfg(feature = "planted-bugs")]
    {
        PLANTED.with(|planted| planted.get() == Some(bug))
    }
    #[cfg(not(feature = "planted-bugs"))]
    {
        let _ = bug;
        false
    }
}
