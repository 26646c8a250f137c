//! The simulated operator: it keeps a session open on a member (as an operator's zkCli.sh stays
//! connected), and from time to time reads the membership there and asks for a reconfiguration — a
//! member added (as participant or observer), one removed (the leader among them), one re-roled, failing
//! voters replaced or removed, or a whole new membership — as `zkCli.sh reconfig` would, with
//! `curConfigId` mostly the version it read, sometimes -1 or a stale one. Its txns are not client
//! operations of the history (they touch only `/zookeeper/config`), but the committed log holds them and
//! the configuration checker follows them.

use std::collections::BTreeMap;

use ferrokeeper::config::PeerRole;
use ferrokeeper::membership::Membership;
use fk_net::client::{ConnectRequest, ErrorCode, ReconfigRequest, Request};

use super::member::{ConnId, FromClient, ToClient};
use super::rng::Rng;

/// How long the operator waits for a session or an answer.
const PATIENCE_MS: u64 = 3_000;

/// The operator's session timeout; it acts (or pings) far more often.
const SESSION_TIMEOUT_MS: i32 = 4_000;

/// A `server.N` value for slot `sid`: addresses distinct per member (the simulator routes by sid).
pub fn server_value(sid: u64, role: PeerRole) -> String {
    let port = 20_000 + 10 * sid as u16;
    let role = if role == PeerRole::Observer { "observer" } else { "participant" };
    format!("127.0.0.1:{port}:{}:{role};127.0.0.1:{}", port + 1, port + 2)
}

/// What the operator sees of the ensemble besides `/zookeeper/config` (as `srvr` on each member shows it).
pub struct EnsembleView {
    /// Every member id the run has.
    pub slots: u64,
    /// The member leading now, if any.
    pub leader: Option<u64>,
    /// Members down or cut off from the leader: the ones an operator replaces.
    pub unhealthy: Vec<u64>,
}

/// The operator's connection.
#[derive(Debug, Clone, Copy)]
enum Phase {
    Disconnected,
    Connecting { since: u64 },
    Ready,
    Asked { xid: i32, since: u64 },
}

/// What the operator asks the world to do.
pub enum AdminOut {
    Connect { member: usize, conn: ConnId, request: ConnectRequest },
    Send { member: usize, conn: ConnId, msg: FromClient },
}

pub struct Reconfigurer {
    phase: Phase,
    /// The member and connection it talks to, and its session once it has one.
    conn: Option<(usize, ConnId)>,
    session: Option<i64>,
    next_xid: i32,
    /// Answers by code name ("Ok", "BadVersion", "NewConfigNoQuorum", ..., "no answer").
    pub outcomes: BTreeMap<String, u64>,
}

impl Default for Reconfigurer {
    fn default() -> Self {
        Reconfigurer { phase: Phase::Disconnected, conn: None, session: None, next_xid: 1, outcomes: BTreeMap::new() }
    }
}

impl Reconfigurer {
    /// The member the operator is connected to, if any.
    pub fn member(&self) -> Option<usize> {
        self.conn.map(|(member, _)| member)
    }

    /// The world's tick for the operator: connect (to `member`) when it has no connection, ask for a
    /// reconfiguration when connected and idle (its member's `/zookeeper/config` says `membership`), or
    /// give up on a connection or an answer that takes too long.
    pub fn act(
        &mut self,
        now: u64,
        rng: &mut Rng,
        member: usize,
        membership: Option<Membership>,
        ensemble: &EnsembleView,
        next_conn: &mut ConnId,
    ) -> Vec<AdminOut> {
        match (self.phase, self.conn) {
            (Phase::Disconnected, _) => {
                *next_conn += 1;
                self.conn = Some((member, *next_conn));
                self.phase = Phase::Connecting { since: now };
                let (session_id, passwd) = match self.session {
                    Some(id) => (id, ferrokeeper::session::session_password(id).to_vec()),
                    None => (0, vec![0; 16]),
                };
                let request = ConnectRequest {
                    protocol_version: 0,
                    last_zxid_seen: 0,
                    timeout_ms: SESSION_TIMEOUT_MS,
                    session_id,
                    passwd,
                    read_only: Some(false),
                };
                vec![AdminOut::Connect { member, conn: *next_conn, request }]
            }
            (Phase::Connecting { since } | Phase::Asked { since, .. }, Some((member, conn)))
                if now >= since + PATIENCE_MS =>
            {
                if matches!(self.phase, Phase::Asked { .. }) {
                    self.answered("no answer");
                }
                self.disconnect();
                vec![AdminOut::Send { member, conn, msg: FromClient::Close }]
            }
            (Phase::Ready, Some((member, conn))) => {
                let Some(membership) = membership else {
                    return vec![AdminOut::Send { member, conn, msg: FromClient::Ping }];
                };
                let request = ask(rng, &membership, ensemble);
                tracing::info!(
                    member,
                    joining = request.joining_servers,
                    leaving = request.leaving_servers,
                    members = request.new_members,
                    version = format!("{:#x}", request.cur_config_id),
                    unhealthy = ?ensemble.unhealthy,
                    "operator: reconfig"
                );
                let xid = self.next_xid;
                self.next_xid += 1;
                self.phase = Phase::Asked { xid, since: now };
                let msg = FromClient::Request { xid, request: Request::Reconfig(request) };
                vec![AdminOut::Send { member, conn, msg }]
            }
            (Phase::Connecting { .. } | Phase::Asked { .. }, Some((member, conn))) => {
                vec![AdminOut::Send { member, conn, msg: FromClient::Ping }]
            }
            _ => Vec::new(),
        }
    }

    /// A message on connection `conn`.
    pub fn receive(&mut self, conn: ConnId, msg: ToClient) {
        if self.conn.map(|(_, c)| c) != Some(conn) {
            return;
        }
        match (self.phase, msg) {
            (Phase::Connecting { .. }, ToClient::Connected { session_id, .. }) => {
                self.session = Some(session_id);
                self.phase = Phase::Ready;
            }
            (Phase::Asked { xid, .. }, ToClient::Reply { header, .. }) if header.xid == xid => {
                let code = ErrorCode::from_i32(header.err).map_or_else(|| header.err.to_string(), |c| c.name().into());
                self.answered(&code);
                self.phase = Phase::Ready;
            }
            (phase, msg @ (ToClient::Closed | ToClient::Expired)) => {
                if matches!(phase, Phase::Asked { .. }) {
                    self.answered("no answer");
                }
                if matches!(msg, ToClient::Expired) {
                    self.session = None;
                }
                self.disconnect();
            }
            _ => {}
        }
    }

    fn disconnect(&mut self) {
        self.conn = None;
        self.phase = Phase::Disconnected;
    }

    fn answered(&mut self, outcome: &str) {
        tracing::info!(outcome, "operator: reconfig answered");
        *self.outcomes.entry(outcome.to_owned()).or_default() += 1;
    }
}

/// One reconfiguration, drawn: add, remove (the leader a third of the time), re-role, replace up to two
/// voters (the unhealthy ones first) by members from outside at once (a whole new membership, as a
/// migration off failed hosts asks), or a membership drawn at random — or, when voters seem to fail, half
/// the time replace them or remove them all (which only a quorum of the old membership may allow);
/// `curConfigId` the version read, or -1, or a stale one.
fn ask(rng: &mut Rng, membership: &Membership, ensemble: &EnsembleView) -> ReconfigRequest {
    let (slots, leader) = (ensemble.slots, ensemble.leader);
    let members: Vec<u64> = membership.servers().map(|s| s.id).collect();
    let outside: Vec<u64> = (1..=slots).filter(|id| !members.contains(id)).collect();
    let role = |rng: &mut Rng| if rng.chance(0.25) { PeerRole::Observer } else { PeerRole::Participant };
    let line = |id: u64, role: PeerRole| format!("server.{id}={}", server_value(id, role));
    let mut request = ReconfigRequest {
        joining_servers: String::new(),
        leaving_servers: String::new(),
        new_members: String::new(),
        cur_config_id: match rng.below(10) {
            0 => -1,
            1 => membership.version - 1,
            _ => membership.version,
        },
    };
    // An operator who sees voters down or cut off replaces them, or removes them all, half the time.
    let failing: Vec<u64> =
        membership.voters().into_iter().map(|v| v as u64).filter(|v| ensemble.unhealthy.contains(v)).collect();
    let action = match !failing.is_empty() && rng.chance(0.5) {
        true if rng.chance(0.5) => 14,
        true => {
            request.leaving_servers = failing.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
            return request;
        }
        false => rng.below(20),
    };
    match action {
        0..=5 if !outside.is_empty() => request.joining_servers = line(*rng.pick(&outside), role(rng)),
        0..=10 => {
            let id = match leader {
                Some(leader) if rng.chance(0.33) => leader,
                _ => *rng.pick(&members),
            };
            request.leaving_servers = id.to_string();
        }
        11..=13 => {
            let server = membership.server(*rng.pick(&members)).expect("a member");
            let other = if server.role == PeerRole::Observer { PeerRole::Participant } else { PeerRole::Observer };
            request.joining_servers = line(server.id, other);
        }
        14..=17 if !outside.is_empty() => {
            let mut voters: Vec<u64> = membership.voters().into_iter().map(|v| v as u64).collect();
            let mut outside = outside;
            let mut lines: Vec<String> = Vec::new();
            for _ in 0..2 {
                if voters.len() < 2 || outside.is_empty() {
                    break;
                }
                let unhealthy = voters.iter().position(|v| ensemble.unhealthy.contains(v));
                voters.remove(unhealthy.unwrap_or_else(|| rng.below(voters.len() as u64) as usize));
                lines.push(line(outside.remove(rng.below(outside.len() as u64) as usize), PeerRole::Participant));
            }
            lines.extend(voters.into_iter().map(|id| line(id, PeerRole::Participant)));
            request.new_members = lines.join(",");
        }
        _ => {
            let chosen: Vec<u64> = (1..=slots).filter(|_| rng.chance(0.6)).collect();
            let lines: Vec<String> = chosen.into_iter().map(|id| line(id, role(rng))).collect();
            request.new_members = lines.join(",");
        }
    }
    request
}
