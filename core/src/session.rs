//! The session tracker: which sessions are alive and when each expires (ZooKeeper's `SessionTrackerImpl`
//! with its `ExpiryQueue`). Pure: the caller passes the time in, as milliseconds of a monotonic clock.
//!
//! Expiry is bucketed by tick: a touch at `now` moves the session to the bucket
//! `roundUp(now + timeout)`, rounded to the next multiple of tickTime, so one timer per tick expires
//! every session due, exactly as ZooKeeper does.

use std::collections::{BTreeMap, HashMap, HashSet};

use fk_net::client::PASSWORD_LEN;

#[derive(Debug, Clone)]
struct TrackedSession {
    timeout_ms: u32,
    expires_at_ms: u64,
    /// Set once a closeSession is under way: the session takes no more requests.
    closing: bool,
}

#[derive(Debug)]
pub struct SessionTracker {
    tick_ms: u64,
    sessions: HashMap<i64, TrackedSession>,
    buckets: BTreeMap<u64, HashSet<i64>>,
    next_session_id: i64,
}

/// ZooKeeper's `SessionTrackerImpl.initializeNextSessionId`: server id in the top byte, the low 40 bits of
/// the elapsed-time clock in the middle, a counter in the low 16 bits.
pub fn initial_session_id(server_id: u8, elapsed_ms: u64) -> i64 {
    let mut id = (((elapsed_ms as i64) << 24) as u64 >> 8) as i64;
    id |= (server_id as i64) << 56;
    if id == i64::MIN {
        id += 1;
    }
    id
}

/// The password of a session: `java.util.Random(sessionId ^ 0xB3415C00).nextBytes(16)`, as ZooKeeper
/// generates it, so a session moved between ZooKeeper and ferrokeeper keeps its password.
pub fn session_password(session_id: i64) -> [u8; PASSWORD_LEN] {
    const MULTIPLIER: i64 = 0x5DEECE66D;
    const MASK: i64 = (1 << 48) - 1;
    let mut seed = ((session_id ^ 0xB341_5C00) ^ MULTIPLIER) & MASK;
    let mut next_int = || {
        seed = (seed.wrapping_mul(MULTIPLIER).wrapping_add(0xB)) & MASK;
        (seed >> 16) as i32
    };
    let mut out = [0u8; PASSWORD_LEN];
    for chunk in out.chunks_mut(4) {
        let mut rnd = next_int();
        for byte in chunk {
            *byte = rnd as u8;
            rnd >>= 8;
        }
    }
    out
}

impl SessionTracker {
    pub fn new(server_id: u8, now_ms: u64, tick_ms: u64) -> SessionTracker {
        assert!(tick_ms > 0, "tickTime must be positive");
        SessionTracker {
            tick_ms,
            sessions: HashMap::new(),
            buckets: BTreeMap::new(),
            next_session_id: initial_session_id(server_id, now_ms),
        }
    }

    fn round_to_next_tick(&self, time_ms: u64) -> u64 {
        (time_ms / self.tick_ms + 1) * self.tick_ms
    }

    /// Starts tracking a new session and returns its id.
    pub fn create(&mut self, timeout_ms: u32, now_ms: u64) -> i64 {
        let id = self.next_session_id;
        self.next_session_id += 1;
        self.track(id, timeout_ms, now_ms);
        id
    }

    /// Tracks a session known from elsewhere (recovery, or a peer's createSession).
    pub fn track(&mut self, session_id: i64, timeout_ms: u32, now_ms: u64) {
        let expires_at_ms = self.round_to_next_tick(now_ms + timeout_ms as u64);
        if let Some(old) =
            self.sessions.insert(session_id, TrackedSession { timeout_ms, expires_at_ms, closing: false })
        {
            self.unbucket(session_id, old.expires_at_ms);
        }
        self.buckets.entry(expires_at_ms).or_default().insert(session_id);
    }

    fn unbucket(&mut self, session_id: i64, expires_at_ms: u64) {
        if let Some(bucket) = self.buckets.get_mut(&expires_at_ms) {
            bucket.remove(&session_id);
            if bucket.is_empty() {
                self.buckets.remove(&expires_at_ms);
            }
        }
    }

    /// Pushes a live session's expiry out; false if the session is unknown or closing.
    pub fn touch(&mut self, session_id: i64, now_ms: u64) -> bool {
        let Some(session) = self.sessions.get(&session_id) else { return false };
        if session.closing {
            return false;
        }
        let new_expiry = self.round_to_next_tick(now_ms + session.timeout_ms as u64);
        let old_expiry = session.expires_at_ms;
        if new_expiry != old_expiry {
            self.unbucket(session_id, old_expiry);
            self.buckets.entry(new_expiry).or_default().insert(session_id);
            self.sessions.get_mut(&session_id).expect("looked up").expires_at_ms = new_expiry;
        }
        true
    }

    pub fn is_live(&self, session_id: i64) -> bool {
        self.sessions.get(&session_id).is_some_and(|s| !s.closing)
    }

    pub fn timeout_ms(&self, session_id: i64) -> Option<u32> {
        self.sessions.get(&session_id).map(|s| s.timeout_ms)
    }

    /// Marks a session as closing; returns false if it was unknown or already closing.
    pub fn set_closing(&mut self, session_id: i64) -> bool {
        match self.sessions.get_mut(&session_id) {
            Some(s) if !s.closing => {
                s.closing = true;
                true
            }
            _ => false,
        }
    }

    pub fn remove(&mut self, session_id: i64) {
        if let Some(old) = self.sessions.remove(&session_id) {
            self.unbucket(session_id, old.expires_at_ms);
        }
    }

    /// Sessions whose bucket is due at `now_ms`, marked closing so they expire once.
    pub fn expire_due(&mut self, now_ms: u64) -> Vec<i64> {
        let mut expired = Vec::new();
        while let Some((&at, _)) = self.buckets.first_key_value() {
            if at > now_ms {
                break;
            }
            let bucket = self.buckets.remove(&at).expect("first key");
            for id in bucket {
                if self.set_closing(id) {
                    expired.push(id);
                }
            }
        }
        expired.sort_unstable();
        expired
    }

    /// When the next bucket falls due, for the driver's timer.
    pub fn next_expiry_ms(&self) -> Option<u64> {
        self.buckets.keys().next().copied()
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// (expiry time, sessions) per bucket, for the `dump` 4lw.
    pub fn buckets(&self) -> impl Iterator<Item = (u64, Vec<i64>)> + '_ {
        self.buckets.iter().map(|(at, ids)| {
            let mut ids: Vec<i64> = ids.iter().copied().collect();
            ids.sort_unstable();
            (*at, ids)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_have_zookeepers_layout() {
        let id = initial_session_id(1, 0x7c0b28);
        assert_eq!(id as u64 >> 56, 1);
        assert_eq!(id & 0xffff, 0);
        assert_eq!((id >> 16) & 0xff_ffff_ffff, 0x7c0b28, "elapsed ms in bits 16..56");
    }

    #[test]
    fn password_matches_java_random() {
        // java.util.Random(id ^ 0xB3415C00L).nextBytes(new byte[16]), computed with Java 17.
        let zero: [u8; 16] =
            [0xf2, 0x2a, 0xcd, 0x4a, 0x97, 0xe6, 0x9d, 0x6d, 0x20, 0xa4, 0x9b, 0xb6, 0x38, 0xea, 0xdb, 0x38];
        let fixture_b: [u8; 16] =
            [0x36, 0xd4, 0x49, 0x82, 0x14, 0x35, 0x99, 0xa6, 0x2e, 0xad, 0x3e, 0x46, 0xb1, 0x41, 0x6a, 0xb4];
        assert_eq!(session_password(0), zero);
        assert_eq!(session_password(0x0100_007e_a1af_0001), fixture_b);
    }

    #[test]
    fn sessions_expire_by_bucket_unless_touched() {
        let mut tracker = SessionTracker::new(1, 0, 2000);
        let a = tracker.create(4000, 1000); // due at roundUp(5000) = 6000
        let b = tracker.create(4000, 1000);
        assert_eq!(tracker.next_expiry_ms(), Some(6000));
        assert!(tracker.touch(b, 3000)); // due at 8000
        assert_eq!(tracker.expire_due(5999), Vec::<i64>::new());
        assert_eq!(tracker.expire_due(6000), vec![a]);
        assert!(!tracker.touch(a, 6001), "a closing session cannot be revived");
        assert_eq!(tracker.expire_due(8000), vec![b]);
        tracker.remove(a);
        assert!(!tracker.is_live(a));
    }
}
