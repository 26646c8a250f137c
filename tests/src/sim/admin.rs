//! The simulated operator: from time to time it reads the membership where it connects and asks for a
//! reconfiguration — a member added (as participant or observer), one removed (the leader among them),
//! one re-roled, or a whole new membership — as `zkCli.sh reconfig` would, with `curConfigId` mostly the
//! version it read, sometimes -1 or a stale one. One session per request; its txns are not client
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

/// What the operator has under way.
enum Phase {
    Idle,
    Connecting { member: usize, conn: ConnId, request: ReconfigRequest, since: u64 },
    Asked { member: usize, conn: ConnId, since: u64 },
}

/// What a reconfiguration action asks the world to do.
pub enum AdminOut {
    Connect { member: usize, conn: ConnId, request: ConnectRequest },
    Send { member: usize, conn: ConnId, msg: FromClient },
}

pub struct Reconfigurer {
    phase: Phase,
    /// Answers by code name ("Ok", "BadVersion", "NewConfigNoQuorum", ..., "no answer").
    pub outcomes: BTreeMap<String, u64>,
}

impl Default for Reconfigurer {
    fn default() -> Self {
        Reconfigurer { phase: Phase::Idle, outcomes: BTreeMap::new() }
    }
}

impl Reconfigurer {
    /// The world's tick for the operator: start a reconfiguration through `member` (whose
    /// `/zookeeper/config` says `membership`) when idle, or give up on one that takes too long.
    pub fn act(
        &mut self,
        now: u64,
        rng: &mut Rng,
        member: usize,
        membership: Option<Membership>,
        ensemble: &EnsembleView,
        next_conn: &mut ConnId,
    ) -> Vec<AdminOut> {
        match self.phase {
            Phase::Idle => {
                let Some(membership) = membership else { return Vec::new() };
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
                *next_conn += 1;
                let conn = *next_conn;
                self.phase = Phase::Connecting { member, conn, request, since: now };
                let request = ConnectRequest {
                    protocol_version: 0,
                    last_zxid_seen: 0,
                    timeout_ms: 4_000,
                    session_id: 0,
                    passwd: vec![0; 16],
                    read_only: Some(false),
                };
                vec![AdminOut::Connect { member, conn, request }]
            }
            Phase::Connecting { member, conn, since, .. } | Phase::Asked { member, conn, since }
                if now >= since + PATIENCE_MS =>
            {
                self.done("no answer");
                vec![AdminOut::Send { member, conn, msg: FromClient::Close }]
            }
            _ => Vec::new(),
        }
    }

    /// A message on the operator's connection.
    pub fn receive(&mut self, now: u64, conn: ConnId, msg: ToClient) -> Vec<AdminOut> {
        let ours = match &self.phase {
            Phase::Connecting { conn: c, .. } | Phase::Asked { conn: c, .. } => *c == conn,
            Phase::Idle => false,
        };
        if !ours {
            return Vec::new();
        }
        match (std::mem::replace(&mut self.phase, Phase::Idle), msg) {
            (Phase::Connecting { member, conn, request, .. }, ToClient::Connected { .. }) => {
                self.phase = Phase::Asked { member, conn, since: now };
                let msg = FromClient::Request { xid: 1, request: Request::Reconfig(request) };
                vec![AdminOut::Send { member, conn, msg }]
            }
            (Phase::Asked { member, conn, .. }, ToClient::Reply { header, .. }) => {
                let code = ErrorCode::from_i32(header.err).map_or_else(|| header.err.to_string(), |c| c.name().into());
                self.done(&code);
                vec![AdminOut::Send { member, conn, msg: FromClient::Close }]
            }
            (_, ToClient::Closed | ToClient::Expired) => {
                self.done("no answer");
                Vec::new()
            }
            (phase, _) => {
                self.phase = phase;
                Vec::new()
            }
        }
    }

    fn done(&mut self, outcome: &str) {
        self.phase = Phase::Idle;
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
