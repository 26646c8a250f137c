//! An ensemble's membership as ZooKeeper's `QuorumMaj` holds it — every member with its role and
//! addresses, and the configuration's version — read from and written as the text of `/zookeeper/config`,
//! and the next membership a `reconfig` request asks for (ZooKeeper 3.8's `PrepRequestProcessor`). Pure.

use std::collections::{BTreeMap, BTreeSet};

use fk_net::client::ErrorCode;

use crate::servers::{PeerRole, ServerSpec};

/// One membership, at one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    servers: BTreeMap<u64, ServerSpec>,
    /// The order ZooKeeper writes the members in (its `HashMap<Long, …>` iteration order).
    order: Vec<u64>,
    pub version: i64,
}

/// What a `reconfig` request asks (ZooKeeper's `ReconfigRequest`, absent fields as `None`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ReconfigAsk<'a> {
    /// Incremental: `server.N=host:quorumPort:electionPort[:role];[clientHost:]clientPort`, comma separated.
    pub joining: Option<&'a str>,
    /// Incremental: server ids, comma separated.
    pub leaving: Option<&'a str>,
    /// Non-incremental: the whole membership, `server.N=…` separated by commas or newlines.
    pub new_members: Option<&'a str>,
}

/// Why a reconfig is refused: ZooKeeper's error code and, for the log, what was wrong.
pub type Refusal = (ErrorCode, String);

impl Membership {
    /// Members in ZooKeeper's order of `insertion` (ids), at `version`.
    pub fn new(servers: impl IntoIterator<Item = ServerSpec>, version: i64) -> Membership {
        let servers: Vec<ServerSpec> = servers.into_iter().collect();
        let insertion: Vec<i64> = servers.iter().map(|s| s.id as i64).collect();
        let order = crate::java_order::long_hash_map_order(&insertion).into_iter().map(|id| id as u64).collect();
        Membership { servers: servers.into_iter().map(|s| (s.id, s)).collect(), order, version }
    }

    /// The text of `/zookeeper/config` (`server.N=…` lines, `version=<hex>`).
    pub fn parse(text: &str) -> Result<Membership, String> {
        let mut servers = Vec::new();
        let mut version = 0;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (key, value) = line.split_once('=').ok_or_else(|| format!("'{line}' is not key=value"))?;
            let key = key.trim();
            if key == "version" {
                version =
                    i64::from_str_radix(value.trim(), 16).map_err(|_| format!("'{value}' is not a hex version"))?;
            } else if let Some(id) = key.strip_prefix("server.") {
                servers.push(server(id, value)?);
            } else {
                return Err(format!("Unrecognised parameter: {key}"));
            }
        }
        Ok(Membership::new(servers, version))
    }

    /// As ZooKeeper's `QuorumMaj.toString` writes it.
    pub fn text(&self) -> String {
        let mut text = String::new();
        for id in &self.order {
            text.push_str(&format!("server.{id}={}\n", crate::servers::server_text(&self.servers[id])));
        }
        text.push_str(&format!("version={:x}", self.version));
        text
    }

    pub fn servers(&self) -> impl Iterator<Item = &ServerSpec> {
        self.order.iter().map(|id| &self.servers[id])
    }

    pub fn server(&self, id: u64) -> Option<&ServerSpec> {
        self.servers.get(&id)
    }

    /// The voting members' ids.
    pub fn voters(&self) -> BTreeSet<i64> {
        self.servers.values().filter(|s| s.role == PeerRole::Participant).map(|s| s.id as i64).collect()
    }

    /// Whether `sids` hold a majority of the voters.
    pub fn is_quorum(&self, sids: &BTreeSet<i64>) -> bool {
        let voters = self.voters();
        sids.iter().filter(|s| voters.contains(s)).count() > voters.len() / 2
    }

    /// The same members at another version.
    pub fn with_version(&self, version: i64) -> Membership {
        Membership { version, ..self.clone() }
    }

    /// The membership a `reconfig` asks for, from the last one seen, at `version` (the reconfig txn's
    /// zxid), with ZooKeeper's checks of what was asked: BadArguments for what it cannot read or accept,
    /// MarshallingError where ZooKeeper's parser fails with an unchecked exception.
    pub fn reconfigured(
        &self,
        ask: ReconfigAsk,
        version: i64,
        standalone_enabled: bool,
    ) -> Result<Membership, Refusal> {
        let bad = |why: String| (ErrorCode::BadArguments, why);
        let next = match ask.new_members.filter(|m| !m.is_empty()) {
            Some(members) => {
                // Commas or newlines separate the members; a Properties file otherwise.
                let mut servers: Vec<ServerSpec> = Vec::new();
                for line in members.replace(',', "\n").lines().map(str::trim).filter(|l| !l.is_empty()) {
                    let (key, value) = line.split_once('=').ok_or_else(|| bad(format!("'{line}' is not key=value")))?;
                    match key.trim() {
                        "version" => {}
                        key => {
                            let id = key
                                .strip_prefix("server.")
                                .ok_or_else(|| bad(format!("Unrecognised parameter: {key}")))?;
                            let spec = server(id, value).map_err(bad)?;
                            servers.retain(|s| s.id != spec.id);
                            servers.push(spec);
                        }
                    }
                }
                let voters = servers.iter().filter(|s| s.role == PeerRole::Participant).count();
                let observers = servers.len() - voters;
                // QuorumPeerConfig.parseDynamicConfig's IllegalArgumentExceptions.
                if observers > 0 && (voters == 0 || (voters == 1 && standalone_enabled)) {
                    return Err((ErrorCode::MarshallingError, "observers without a quorum".into()));
                }
                if voters == 0 && !standalone_enabled {
                    return Err((ErrorCode::MarshallingError, "no participants".into()));
                }
                Membership::new(servers, version)
            }
            None => {
                let mut next: Vec<ServerSpec> = self.servers().cloned().collect();
                for leaving in ask.leaving.unwrap_or_default().split(',').map(str::trim).filter(|l| !l.is_empty()) {
                    let id: u64 = leaving.parse().map_err(|_| bad(format!("'{leaving}' is not a server id")))?;
                    next.retain(|s| s.id != id);
                }
                for joiner in ask.joining.unwrap_or_default().split(',').map(str::trim).filter(|j| !j.is_empty()) {
                    let parts: Vec<&str> = joiner.split('=').filter(|p| !p.is_empty()).collect();
                    let [key, value] = parts.as_slice() else {
                        return Err(bad("Wrong format of server string".into()));
                    };
                    let id = key.rsplit('.').next().unwrap_or_default();
                    let joining = server(id, value).map_err(|_| bad("Reconfiguration failed".into()))?;
                    if joining.client_addr.is_none() {
                        return Err(bad(
                            "Wrong format of server string - each server should have 3 ports specified".into()
                        ));
                    }
                    if let Some(other) = next.iter().find(|s| s.id != joining.id && conflicts(&joining, s)) {
                        return Err(bad(format!("server.{} conflicts with server.{}", joining.id, other.id)));
                    }
                    next.retain(|s| s.id != joining.id);
                    next.push(joining);
                }
                Membership::new(next, version)
            }
        };
        let voters = next.voters().len();
        if standalone_enabled && voters < 2 {
            return Err(bad("Reconfig failed - new configuration must include at least 2 followers".into()));
        }
        if voters < 1 {
            return Err(bad("Reconfig failed - new configuration must include at least 1 follower".into()));
        }
        Ok(next)
    }
}

/// What a member does with a membership its quorum established without a reconfig of its own (an
/// initial configuration the first leader versioned, ZooKeeper's ZOOKEEPER-1783, or one a
/// synchronisation brought): nothing unless it is newer than the one in force; else it is activated, and
/// `/zookeeper/config` is set too when it is this member's own startup membership, versioned — that one
/// was never a txn, while another came with the reconfig txn that set the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adoption {
    pub set_config_node: bool,
}

/// See [`Adoption`]: `established` from the leader, `startup` the membership this member started with.
pub fn adoption(established: &[u8], in_force_version: i64, startup: &[u8]) -> Option<Adoption> {
    use crate::zab::config_text::{members_of, version_of};
    let version = version_of(established)?;
    (version > in_force_version).then(|| Adoption { set_config_node: members_of(startup) == members_of(established) })
}

/// `/zookeeper/config`'s text when it holds a membership newer than the one in force: a reconfig this
/// member logged (and applied) but never saw activated. Should this member lead next, it establishes it.
pub fn logged_newer(config_node: Option<&[u8]>, in_force_version: i64) -> Option<Vec<u8>> {
    let text = config_node?;
    let version = Membership::parse(&String::from_utf8_lossy(text)).ok()?.version;
    (version > in_force_version).then(|| text.to_vec())
}

/// Whether `/zookeeper/config`, as a tree loaded from disk holds it, is replaced by the membership in
/// force. Without reconfigEnabled always (ZooKeeper's ZOOKEEPER-2819: the local configuration wins over a
/// leader's snapshot); with it only when the node is older than the membership in force (a snapshot or
/// log from before it), so that a logged reconfig not yet activated stays visible to [`logged_newer`].
pub fn config_node_is_stale(config_node: Option<&[u8]>, in_force_version: i64, reconfig_enabled: bool) -> bool {
    let version = config_node.and_then(crate::zab::config_text::version_of);
    !reconfig_enabled || version.is_none_or(|v| v < in_force_version)
}

/// One `server.N` value, as ZooKeeper's `QuorumServer(sid, value)` reads it.
fn server(id: &str, value: &str) -> Result<ServerSpec, String> {
    let id: u64 = id.trim().parse().map_err(|_| format!("'server.{id}' has no valid server id"))?;
    let line = crate::servers::parse_server_line(id as i64, value)?;
    Ok(crate::servers::server_spec(id, &line))
}

/// ZooKeeper's `checkAddressDuplicate`: a joining member's quorum, election or client address is another
/// member's (wildcard client addresses aside).
fn conflicts(a: &ServerSpec, b: &ServerSpec) -> bool {
    let addresses = |s: &ServerSpec| {
        let mut list = vec![(s.host.clone(), s.quorum_port), (s.host.clone(), s.election_port)];
        if let Some((host, port)) = &s.client_addr {
            // A bare client port binds the wildcard address, which conflicts with nothing.
            if let Some(host) = host.as_ref().filter(|h| !crate::servers::is_wildcard(h)) {
                list.push((host.clone(), *port));
            }
        }
        list
    };
    let theirs = addresses(b);
    addresses(a).iter().any(|(host, port)| theirs.iter().any(|(h, p)| p == port && crate::servers::same_host(host, h)))
}

/// The membership text of the newest reconfiguration among `txns` (to be logged).
pub fn newest_reconfig(txns: &[fk_net::txn::Txn]) -> Option<&[u8]> {
    txns.iter().rev().find_map(|txn| match &txn.body {
        fk_net::txn::TxnBody::Reconfig(set) => set.data.as_deref(),
        _ => None,
    })
}

/// ZooKeeper's "major change" for a learner (processReconfig, and UPTODATE bringing a newer membership):
/// `membership` leaves its leader out of the voters, or gives this member another role than the one it
/// learns in (`observing`). The learner's role ends, and an election under the membership follows.
pub fn ends_learner_role(membership: &Membership, my_id: u64, observing: bool, leader: i64) -> bool {
    let role_changed = membership.server(my_id).is_some_and(|s| (s.role == PeerRole::Observer) != observing);
    role_changed || !membership.voters().contains(&leader)
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREE: &str = "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
                         server.2=127.0.0.1:2889:3889:participant;0.0.0.0:2182\n\
                         server.3=127.0.0.1:2890:3890:participant;0.0.0.0:2183\nversion=100000000";

    fn three() -> Membership {
        Membership::parse(THREE).unwrap()
    }

    #[test]
    fn a_learner_leaves_its_role_when_its_leader_or_its_own_role_goes() {
        let membership = three();
        assert!(!ends_learner_role(&membership, 2, false, 1), "the same leader, the same role");
        assert!(ends_learner_role(&membership, 2, false, 4), "the leader is no voter of it");
        assert!(ends_learner_role(&membership, 2, true, 1), "this observer is a participant now");
        let observer = "server.1=h:1:2:participant;3\nserver.2=h:3:4:observer;5\nversion=2";
        let membership = Membership::parse(observer).unwrap();
        assert!(ends_learner_role(&membership, 2, false, 1), "this follower is an observer now");
        assert!(!ends_learner_role(&membership, 2, true, 1));
        assert!(!ends_learner_role(&membership, 9, false, 1), "a member it does not list keeps its role");
    }

    #[test]
    fn the_config_node_text_reads_and_writes_back() {
        let membership = three();
        assert_eq!(membership.text(), THREE);
        assert_eq!(membership.version, 0x1_0000_0000);
        assert_eq!(membership.voters(), BTreeSet::from([1, 2, 3]));
        assert!(membership.is_quorum(&BTreeSet::from([1, 3])));
        assert!(!membership.is_quorum(&BTreeSet::from([3, 4, 5])));
    }

    /// What zkCli's `reconfig -add`, `-remove` and `-members` send, and the text ZooKeeper 3.8 writes for
    /// the result (QuorumMaj.toString, as in config::ensemble's tests).
    #[test]
    fn reconfigs_give_the_membership_zookeeper_gives() {
        let add = ReconfigAsk {
            joining: Some("server.4=127.0.0.1:2891:3891;2184,server.5=127.0.0.1:2892:3892:observer;127.0.0.1:2185"),
            ..Default::default()
        };
        let five = three().reconfigured(add, 0x1_0000_0005, true).unwrap();
        assert_eq!(
            five.text(),
            "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
             server.2=127.0.0.1:2889:3889:participant;0.0.0.0:2182\n\
             server.3=127.0.0.1:2890:3890:participant;0.0.0.0:2183\n\
             server.4=127.0.0.1:2891:3891:participant;0.0.0.0:2184\n\
             server.5=127.0.0.1:2892:3892:observer;127.0.0.1:2185\nversion=100000005"
        );
        let remove = ReconfigAsk { leaving: Some("1,5"), ..Default::default() };
        let three_again = five.reconfigured(remove, 0x1_0000_0006, true).unwrap();
        assert_eq!(three_again.voters(), BTreeSet::from([2, 3, 4]));
        let members = ReconfigAsk {
            new_members: Some("server.1=127.0.0.1:2888:3888;2181,server.2=127.0.0.1:2889:3889;2182"),
            ..Default::default()
        };
        let two = five.reconfigured(members, 7, true).unwrap();
        assert_eq!(
            two.text(),
            "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\nserver.2=127.0.0.1:2889:3889:participant;0.0.0.0:2182\nversion=7"
        );
    }

    #[test]
    fn what_zookeeper_refuses_is_refused_with_its_code() {
        let cases: &[(ReconfigAsk, ErrorCode)] = &[
            // A joiner without its client port.
            (
                ReconfigAsk { joining: Some("server.4=127.0.0.1:2891:3891"), ..Default::default() },
                ErrorCode::BadArguments,
            ),
            (ReconfigAsk { joining: Some("server.4"), ..Default::default() }, ErrorCode::BadArguments),
            // Another member's quorum port.
            (
                ReconfigAsk { joining: Some("server.4=127.0.0.1:2888:3891;2184"), ..Default::default() },
                ErrorCode::BadArguments,
            ),
            (ReconfigAsk { leaving: Some("x"), ..Default::default() }, ErrorCode::BadArguments),
            // Fewer than 2 voters left (standaloneEnabled).
            (ReconfigAsk { leaving: Some("1,2"), ..Default::default() }, ErrorCode::BadArguments),
            (ReconfigAsk { new_members: Some("group.1=1:2"), ..Default::default() }, ErrorCode::BadArguments),
            (
                ReconfigAsk {
                    new_members: Some("server.1=127.0.0.1:2888:3888;2181,server.9=127.0.0.1:1:2:observer;3"),
                    ..Default::default()
                },
                ErrorCode::MarshallingError,
            ),
        ];
        for (ask, code) in cases {
            let refused = three().reconfigured(*ask, 9, true).unwrap_err();
            assert_eq!(refused.0, *code, "{ask:?}: {}", refused.1);
        }
        // Without standaloneEnabled, one voter is enough.
        let one = three().reconfigured(ReconfigAsk { leaving: Some("1,2"), ..Default::default() }, 9, false);
        assert_eq!(one.unwrap().voters(), BTreeSet::from([3]));
    }
}
