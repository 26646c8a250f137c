//! ConnectRequests that arrived while this member was between roles, waiting a short while for it to
//! serve again.
//!
//! ZooKeeper closes such a connection at once, and the client pays for it with its reconnection delay:
//! the Java client sleeps up to a second before its next attempt, the Rust `zookeeper-client` 100 ms per
//! host once it has tried every host. Most of the time the member is serving again within tens of
//! milliseconds (a follower that just left its role because the leader handed over, or a learner
//! synchronising with a new leader), so holding the request until then turns a reconnection into a
//! slightly slower connect. Requests are held only during a short window after this member's role
//! ended or it started (a tick, at most half a second: [`hold_for`]), and only while the membership in
//! force lists it: a client of a member that stays without a quorum (cut off by a partition, or removed
//! by a reconfig) is closed at once as on ZooKeeper, or at the end of that window.

use std::time::{Duration, Instant};

use fk_net::client::ConnectRequest;

use crate::watch::ConnId;

/// How long after a role ends ConnectRequests may be held: a tick, at most half a second. A tick is ZooKeeper's unit of
/// "soon" (an election between reachable members takes a few), and half a second is about what a
/// refusal costs a Java client on average before it tries again.
pub fn hold_for(tick_time_ms: u32) -> Duration {
    Duration::from_millis(u64::from(tick_time_ms).min(500))
}

/// Held requests in arrival order.
#[derive(Default)]
pub struct HeldConnects {
    held: Vec<(ConnId, ConnectRequest, Instant)>,
}

impl HeldConnects {
    /// Holds `request` of connection `conn` until `until`.
    pub fn hold(&mut self, conn: ConnId, request: ConnectRequest, until: Instant) {
        self.held.push((conn, request, until));
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// When the first held request is given up on.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.held.iter().map(|(_, _, until)| *until).min()
    }

    /// The connections whose hold ran out by `now`, in arrival order.
    pub fn expired(&mut self, now: Instant) -> Vec<ConnId> {
        let (expired, kept) = std::mem::take(&mut self.held).into_iter().partition(|(_, _, until)| *until <= now);
        self.held = kept;
        expired.into_iter().map(|(conn, _, _)| conn).collect()
    }

    /// Every held request, in arrival order (the member serves again).
    pub fn release(&mut self) -> Vec<(ConnId, ConnectRequest)> {
        self.held.drain(..).map(|(conn, request, _)| (conn, request)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(session_id: i64) -> ConnectRequest {
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 4000,
            session_id,
            passwd: vec![0; 16],
            read_only: None,
        }
    }

    #[test]
    fn a_hold_lasts_a_tick_but_never_more_than_half_a_second() {
        assert_eq!(hold_for(200), Duration::from_millis(200));
        assert_eq!(hold_for(2000), Duration::from_millis(500));
    }

    #[test]
    fn held_requests_expire_in_time_and_are_released_in_arrival_order() {
        let start = Instant::now();
        let mut held = HeldConnects::default();
        assert_eq!(held.next_expiry(), None);
        held.hold(1, request(11), start + Duration::from_millis(10));
        held.hold(2, request(12), start + Duration::from_millis(20));
        held.hold(4, request(14), start + Duration::from_millis(40));
        held.hold(3, request(13), start + Duration::from_millis(30));
        assert_eq!(held.next_expiry(), Some(start + Duration::from_millis(10)));
        assert_eq!(held.expired(start + Duration::from_millis(5)), Vec::<ConnId>::new());
        assert_eq!(held.expired(start + Duration::from_millis(20)), vec![1, 2]);
        assert_eq!(held.next_expiry(), Some(start + Duration::from_millis(30)));
        let released: Vec<(ConnId, i64)> = held.release().into_iter().map(|(c, r)| (c, r.session_id)).collect();
        assert_eq!(released, vec![(4, 14), (3, 13)]);
        assert!(held.is_empty());
    }
}
