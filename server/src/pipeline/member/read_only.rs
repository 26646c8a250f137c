//! When a member serves read-only clients (`readonlymode.enabled`). ZooKeeper's QuorumPeer starts its
//! ReadOnlyZooKeeperServer once it has been LOOKING for a grace period of max(2 s, tickTime) — so that a
//! short election does not flip clients into read-only sessions — and shuts it down as soon as the
//! election ends (before synchronising with the new leader). This is that rule, on the member thread's
//! clock; the shards serve the sessions.

/// ZooKeeper's lower bound on the grace period.
const GRACE_MIN_MS: u64 = 2000;

/// What the member thread must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOnlyChange {
    Start,
    End,
}

#[derive(Debug)]
pub struct ReadOnlyTimer {
    /// `None`: read-only mode is off.
    grace_ms: Option<u64>,
    looking_since_ms: Option<u64>,
    serving: bool,
}

impl ReadOnlyTimer {
    pub fn new(enabled: bool, tick_time_ms: u64) -> ReadOnlyTimer {
        let grace_ms = enabled.then_some(tick_time_ms.max(GRACE_MIN_MS));
        ReadOnlyTimer { grace_ms, looking_since_ms: None, serving: false }
    }

    /// The member is now looking, or not (it leads, follows or observes).
    pub fn looking(&mut self, now_ms: u64, looking: bool) -> Option<ReadOnlyChange> {
        if looking {
            self.looking_since_ms.get_or_insert(now_ms);
            return None;
        }
        self.looking_since_ms = None;
        std::mem::take(&mut self.serving).then_some(ReadOnlyChange::End)
    }

    /// When [`poll`](Self::poll) has something to do, if ever.
    pub fn deadline_ms(&self) -> Option<u64> {
        let grace = self.grace_ms?;
        (!self.serving).then_some(self.looking_since_ms? + grace)
    }

    pub fn poll(&mut self, now_ms: u64) -> Option<ReadOnlyChange> {
        let due = self.deadline_ms().is_some_and(|at| at <= now_ms);
        self.serving |= due;
        due.then_some(ReadOnlyChange::Start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_after_the_grace_period_of_looking_and_ends_with_the_election() {
        let mut timer = ReadOnlyTimer::new(true, 500);
        assert_eq!(timer.looking(1_000, true), None);
        assert_eq!(timer.looking(1_500, true), None, "still looking: the period runs from the first");
        assert_eq!(timer.deadline_ms(), Some(3_000), "at least 2 s");
        assert_eq!(timer.poll(2_999), None);
        assert_eq!(timer.poll(3_000), Some(ReadOnlyChange::Start));
        assert_eq!((timer.poll(9_000), timer.deadline_ms()), (None, None), "started once");
        assert_eq!(timer.looking(9_500, false), Some(ReadOnlyChange::End));
        assert_eq!(timer.looking(9_600, false), None);
        // A short election never starts it.
        assert_eq!(timer.looking(10_000, true), None);
        assert_eq!(timer.looking(11_000, false), None);
        assert_eq!((timer.poll(20_000), timer.deadline_ms()), (None, None));
        // A long tick lengthens the period.
        let mut slow = ReadOnlyTimer::new(true, 5_000);
        slow.looking(0, true);
        assert_eq!(slow.deadline_ms(), Some(5_000));
    }

    #[test]
    fn off_unless_enabled() {
        let mut timer = ReadOnlyTimer::new(false, 2_000);
        timer.looking(0, true);
        assert_eq!((timer.deadline_ms(), timer.poll(1_000_000)), (None, None));
    }
}
