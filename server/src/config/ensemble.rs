//! The ensemble side of zoo.cfg: the membership checks ZooKeeper 3.8's `QuorumPeerConfig` makes
//! (`parseDynamicConfig`, `setupClientPort`, `setupPeerType`, `checkValidity`) and `QuorumPeer.start`
//! makes (`My id N not in the peer list`), and what the ensemble code asks of the configuration.
//!
//! Hierarchical quorums (`group.G`/`weight.N`) are refused at parse time (see `mod.rs`), so every
//! configuration here is majority-based (`QuorumMaj`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::members::{
    HostPort, Resolve, ServerLine, is_wildcard, java_host_string, role_name, same_host, server_spec, server_text,
    wildcard_for,
};
use super::{Config, ConfigError, PeerRole, ServerSpec};
use crate::java_order::{long_hash_map_order, properties_order};

/// One `server.N` line as read, before duplicates are resolved.
#[derive(Debug, Clone)]
pub(super) struct ServerEntry {
    pub line: usize,
    pub key: String,
    pub id: u64,
    pub spec: ServerLine,
}

impl Config {
    /// Resolves the `server.N` lines into `servers` (by id) and ZooKeeper's listing order, as Java does:
    /// the same key twice keeps the last value; two keys for one id (`server.1`, `server.01`) keep the
    /// one the properties table yields last. Then the checks ZooKeeper makes on the membership alone.
    pub(super) fn resolve_members(
        &mut self,
        keys_in_file_order: &[&str],
        entries: Vec<ServerEntry>,
    ) -> Result<(), ConfigError> {
        let mut last_by_key: BTreeMap<&str, &ServerEntry> = BTreeMap::new();
        for entry in &entries {
            last_by_key.insert(entry.key.as_str(), entry);
        }
        let mut chosen: BTreeMap<u64, &ServerEntry> = BTreeMap::new();
        let mut insertion = Vec::new();
        for key in properties_order(keys_in_file_order) {
            if let Some(entry) = last_by_key.get(key) {
                chosen.insert(entry.id, entry);
                insertion.push(entry.id as i64);
            }
        }
        for (id, entry) in &chosen {
            let lines: Vec<String> = entries.iter().filter(|e| e.id == *id).map(|e| e.line.to_string()).collect();
            if lines.len() > 1 {
                self.warnings.push(format!(
                    "{}: server.{id} is given on lines {}; line {} is used, as ZooKeeper does",
                    self.members_origin,
                    lines.join(", "),
                    entry.line
                ));
            }
        }
        self.member_order = long_hash_map_order(&insertion).into_iter().map(|id| id as u64).collect();
        self.server_lines = chosen.iter().map(|(id, e)| (*id, e.line)).collect();
        self.servers = chosen.values().map(|e| server_spec(e.id, &e.spec)).collect();
        self.check_membership()?;
        self.warn_shared_addresses();
        Ok(())
    }

    /// `QuorumPeerConfig.parseDynamicConfig`: how many voters make an ensemble, and what ZooKeeper warns.
    fn check_membership(&mut self) -> Result<(), ConfigError> {
        let voters = self.voter_ids().len();
        let observers = self.observer_ids().len();
        let invalid =
            |reason: &str| ConfigError::Invalid { origin: self.members_origin.clone(), reason: reason.into() };
        if voters == 0 {
            if !self.standalone_enabled {
                return Err(invalid("standaloneEnabled=false needs at least one participant server.N line"));
            }
            if observers > 0 {
                return Err(invalid("observers without participants is not a valid configuration"));
            }
        } else if voters == 1 && self.standalone_enabled {
            if observers > 0 {
                return Err(invalid(
                    "observers without a quorum is not a valid configuration (one participant, and \
                     standaloneEnabled is true)",
                ));
            }
            // HBase-style single server line: ZooKeeper logs this and runs standalone.
            self.warnings.push(format!(
                "{}: invalid configuration, only one server specified (ignoring): running standalone",
                self.members_origin
            ));
        } else if voters <= 2 {
            self.warnings.push(format!(
                "{}: No server failure will be tolerated. You need at least 3 servers.",
                self.members_origin
            ));
        } else if voters.is_multiple_of(2) {
            self.warnings.push(format!(
                "{}: Non-optimal configuration, consider an odd number of servers.",
                self.members_origin
            ));
        }
        Ok(())
    }

    /// ZooKeeper accepts two members on one address (it checks only on reconfig, and even then not for
    /// loopback or wildcard hosts), and port 0; both leave a member unreachable, so we say so.
    fn warn_shared_addresses(&mut self) {
        let mut seen: BTreeMap<(String, u16), String> = BTreeMap::new();
        let mut warnings = Vec::new();
        for server in &self.servers {
            let line = self.server_lines[&server.id];
            let mut addresses = vec![("quorum", server.host.clone(), server.quorum_port)];
            addresses.push(("election", server.host.clone(), server.election_port));
            if let Some((host, port)) = &server.client_addr {
                // A bare client port listens on every address of the member's own host.
                addresses.push(("client", host.clone().unwrap_or_else(|| server.host.clone()), *port));
            }
            for (what, host, port) in addresses {
                if port == 0 && what != "client" {
                    warnings.push(format!(
                        "{}:{line}: server.{}: {what} port 0 cannot be reached",
                        self.members_origin, server.id
                    ));
                    continue;
                }
                let name = format!("the {what} address of server.{}", server.id);
                let key = (java_host_string(&host), port);
                match seen.get(&key) {
                    Some(other) => warnings.push(format!(
                        "{}:{line}: server.{}: {what} address {} is also {other}",
                        self.members_origin,
                        server.id,
                        HostPort::new(host, port)
                    )),
                    None => {
                        seen.insert(key, name);
                    }
                }
            }
        }
        self.warnings.extend(warnings);
    }

    /// Makes this configuration the one of member `my_id` (read from `myid_path`; `None` when that file
    /// is missing), with the checks ZooKeeper makes once it knows its id. Needed for every ensemble
    /// (non-standalone) configuration; `Config::from_file` calls it.
    pub fn join_ensemble(&mut self, my_id: Option<i64>, myid_path: &Path) -> Result<(), ConfigError> {
        self.check_limit("initLimit", self.init_limit)?;
        self.check_limit("syncLimit", self.sync_limit)?;
        let myid_origin = myid_path.display().to_string();
        let invalid = |reason: String| ConfigError::Invalid { origin: myid_origin.clone(), reason };
        let id = my_id.ok_or_else(|| invalid("myid file is missing; an ensemble member needs it".into()))?;
        let id = u64::try_from(id).map_err(|_| invalid(format!("server id {id} is negative")))?;
        let me = self.peer(id).cloned().ok_or_else(|| {
            let ids: Vec<String> = self.servers.iter().map(|s| format!("server.{}", s.id)).collect();
            invalid(format!("server id {id} is not in {}'s server list ({})", self.members_origin, ids.join(", ")))
        })?;
        self.check_client_address(&me)?;
        if me.role != self.peer_type {
            // ZooKeeper's setupPeerType: the server list wins.
            self.warnings.push(format!(
                "{}: Peer type from servers list ({}) doesn't match peerType ({}). Defaulting to servers list.",
                self.members_origin,
                role_name(me.role),
                role_name(self.peer_type)
            ));
            self.peer_type = me.role;
        }
        self.my_id = Some(id);
        Ok(())
    }

    /// ZooKeeper refuses a missing or zero initLimit/syncLimit for an ensemble. It starts with a negative
    /// one, but then every wait on it fails (Java refuses a negative timeout); we refuse it up front.
    fn check_limit(&self, key: &str, ticks: i32) -> Result<(), ConfigError> {
        let reason = match ticks {
            0 => "is not set (or 0); an ensemble needs it, as in ZooKeeper",
            t if t < 0 => "is negative; an ensemble member cannot wait a negative time",
            _ => return Ok(()),
        };
        Err(match self.key_lines.get(key) {
            Some(line) => ConfigError::BadValue {
                origin: self.members_origin.clone(),
                line: *line,
                key: key.into(),
                reason: format!("{ticks} {reason}"),
            },
            None => ConfigError::Invalid { origin: self.members_origin.clone(), reason: format!("{key} {reason}") },
        })
    }

    /// ZooKeeper's setupClientPort: a client address in the member's own server line wins over
    /// clientPort/clientPortAddress; they conflict when the static address is specific and differs, or
    /// is the wildcard and its port differs.
    fn check_client_address(&self, me: &ServerSpec) -> Result<(), ConfigError> {
        let (Some(stat), Some((line_host, line_port))) = (self.static_client_address(), &me.client_addr) else {
            return Ok(());
        };
        let line_host = line_host.clone().unwrap_or_else(|| "0.0.0.0".into());
        let conflict = if is_wildcard(&stat.host) {
            stat.port != *line_port
        } else {
            stat.port != *line_port || !same_host(&stat.host, &line_host)
        };
        if !conflict {
            return Ok(());
        }
        Err(ConfigError::BadValue {
            origin: self.members_origin.clone(),
            line: self.server_lines[&me.id],
            key: format!("server.{}", me.id),
            reason: format!(
                "this member's client address {} differs from clientPort/clientPortAddress ({stat}); ZooKeeper \
                 refuses this",
                HostPort::new(line_host, *line_port)
            ),
        })
    }

    /// `clientPortAddress:clientPort` (the wildcard when no address), if clientPort is set; 0 is unset, as
    /// in ZooKeeper.
    /// ZooKeeper's `setupClientPort` on a server that runs standalone on a single `server.N` line (the
    /// official container image's default is `server.1=localhost:2888:3888;2181` and no `clientPort`):
    /// when `myid` names that line, its client address is where clients connect.
    pub(super) fn take_client_address_from_server_line(&mut self, my_id: Option<i64>) -> Result<(), ConfigError> {
        let Some(line) = my_id.and_then(|id| u64::try_from(id).ok()).and_then(|id| self.peer(id)) else {
            return Ok(());
        };
        let Some((host, port)) = line.client_addr.clone() else { return Ok(()) };
        if let Some(host) = host {
            let address = HostPort::new(host.clone(), port).to_socket_addr().map_err(|e| ConfigError::Invalid {
                origin: self.members_origin.clone(),
                reason: format!("server.{}: client address {host}: {e}", line.id),
            })?;
            self.client_port_address = Some(address.ip());
        }
        self.client_port = Some(port);
        Ok(())
    }

    fn static_client_address(&self) -> Option<HostPort> {
        let port = self.client_port.filter(|p| *p != 0)?;
        let host = self.client_port_address.map_or_else(|| "0.0.0.0".to_owned(), |ip| ip.to_string());
        Some(HostPort::new(host, port))
    }

    /// This member's own server line (after `join_ensemble`).
    pub fn me(&self) -> Option<&ServerSpec> {
        self.peer(self.my_id?)
    }

    /// The server line of member `id`.
    pub fn peer(&self, id: u64) -> Option<&ServerSpec> {
        self.servers.binary_search_by_key(&id, |s| s.id).ok().map(|i| &self.servers[i])
    }

    /// Ids of the voting members (participants), ascending.
    pub fn voter_ids(&self) -> Vec<u64> {
        self.servers.iter().filter(|s| s.role == PeerRole::Participant).map(|s| s.id).collect()
    }

    /// Ids of the observers, ascending.
    pub fn observer_ids(&self) -> Vec<u64> {
        self.servers.iter().filter(|s| s.role == PeerRole::Observer).map(|s| s.id).collect()
    }

    /// Whether this member observes (its server line says `:observer`; peerType gives way to it).
    pub fn is_observer(&self) -> bool {
        self.me().is_some_and(|me| me.role == PeerRole::Observer)
    }

    /// `QuorumMaj.containsQuorum`: more than half of the voters are among `ids` (non-voters ignored).
    pub fn is_quorum<'a>(&self, ids: impl IntoIterator<Item = &'a u64>) -> bool {
        let voters: BTreeSet<u64> = self.voter_ids().into_iter().collect();
        let present: BTreeSet<u64> = ids.into_iter().copied().filter(|id| voters.contains(id)).collect();
        present.len() > voters.len() / 2
    }

    /// Where this server serves clients: a standalone server's clientPortAddress:clientPort; a member's
    /// client address from its own server line, else clientPortAddress:clientPort. `None`: no client port
    /// (ZooKeeper runs such a member without one).
    pub fn client_address(&self) -> Option<HostPort> {
        if self.is_standalone() {
            let host = self.client_port_address.map_or_else(|| "0.0.0.0".to_owned(), |ip| ip.to_string());
            return self.client_port.map(|port| HostPort::new(host, port));
        }
        match &self.me()?.client_addr {
            Some((host, port)) => Some(HostPort::new(host.clone().unwrap_or_else(|| "0.0.0.0".into()), *port)),
            None => self.static_client_address(),
        }
    }

    /// The address to listen on for ZAB (learners connecting): this member's quorum address, or the
    /// wildcard on its port with quorumListenOnAllIPs (ZooKeeper's Leader does the same).
    pub fn quorum_bind_address(&self) -> Option<HostPort> {
        let me = self.me()?;
        Some(self.bind_address(&me.host, me.quorum_port))
    }

    /// The address to listen on for election connections, likewise.
    pub fn election_bind_address(&self) -> Option<HostPort> {
        let me = self.me()?;
        Some(self.bind_address(&me.host, me.election_port))
    }

    fn bind_address(&self, host: &str, port: u16) -> HostPort {
        match self.quorum_listen_on_all_ips {
            true => HostPort::new(wildcard_for(host), port),
            false => HostPort::new(host, port),
        }
    }

    /// `initLimit` ticks in milliseconds: how long learners have to connect and sync to a leader.
    pub fn init_limit_ms(&self) -> u64 {
        self.tick_time_ms as u64 * self.init_limit.max(0) as u64
    }

    /// `syncLimit` ticks in milliseconds: how far a learner may fall behind the leader.
    pub fn sync_limit_ms(&self) -> u64 {
        self.tick_time_ms as u64 * self.sync_limit.max(0) as u64
    }

    /// Writes the membership into `/zookeeper/config` as ZooKeeper's `ZKDatabase.initConfigInZKDatabase`
    /// does whenever a member's database is (re)loaded, where the disk's is stale
    /// ([`refresh_config_node`]): the text of [`Self::quorum_config_text`], data version -1, mzxid the
    /// configuration's version, mtime now. A standalone server has no membership and leaves the node
    /// empty, as ZooKeeper's does. (The node is outside the tree's digest.)
    pub fn write_config_node(&self, tree: &mut fk_engine::tree::DataTree) {
        if self.is_standalone() {
            return;
        }
        let text = self.quorum_config_text();
        refresh_config_node(tree, text.as_bytes(), self.config_version as i64, self.reconfig_enabled);
    }

    /// Whether this member's server line gives its client address (ZooKeeper then keeps `clientPort` and
    /// `clientPortAddress` out of a rewritten static file).
    pub fn client_address_in_server_line(&self) -> bool {
        self.me().is_some_and(|me| me.client_addr.is_some())
    }

    /// The membership as ZooKeeper 3.8's `QuorumMaj.toString()` writes it for this zoo.cfg — what a Java
    /// member puts in its election notifications and NEWLEADER: one
    /// `server.N=host:quorumPort:electionPort:role[;clientHost:clientPort]` line per member in Java's
    /// hash-table order, hosts as Java prints them, then `version=<hex>` without a newline. A client
    /// address appears only where a server line gives one (one taken from clientPort is not printed).
    pub fn quorum_config_text(&self) -> String {
        let mut text = String::new();
        for id in &self.member_order {
            let server = self.peer(*id).expect("member_order lists configured members");
            text.push_str(&format!("server.{id}={}\n", server_text(server)));
        }
        text.push_str(&format!("version={:x}", self.config_version));
        text
    }
}

/// `/zookeeper/config` as ZooKeeper sets it for a membership: its text, data version -1, and the
/// membership's version as mzxid.
pub fn set_config_node(tree: &mut fk_engine::tree::DataTree, text: &[u8], version: i64) {
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    tree.set_data(fk_engine::tree::CONFIG_PATH, Some(text), -1, version, now_ms)
        .expect("every tree has /zookeeper/config");
}

/// `/zookeeper/config` of a tree loaded from disk, set to the membership in force (`text` at `version`)
/// where [`crate::membership::config_node_is_stale`] says the disk's is stale.
pub fn refresh_config_node(tree: &mut fk_engine::tree::DataTree, text: &[u8], version: i64, reconfig_enabled: bool) {
    let node = tree.get(fk_engine::tree::CONFIG_PATH).and_then(|n| n.data.as_deref());
    if crate::membership::config_node_is_stale(node, version, reconfig_enabled) {
        set_config_node(tree, text, version);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir=/d\nclientPort=2181\n";
    const THREE: &str = "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\nserver.3=127.0.0.1:2890:3890\n";

    /// `dynamicConfigFile`: the membership comes from it, the version from its name; what ZooKeeper
    /// refuses in it is refused, naming it.
    #[test]
    fn a_dynamic_file_holds_the_membership() {
        let dir = tempfile::tempdir().unwrap();
        let dynamic = dir.path().join("zoo.cfg.dynamic.100000000");
        std::fs::write(&dynamic, THREE.replace("3890", "3890:observer")).unwrap();
        let text = format!("{HEAD}dynamicConfigFile={}\nreconfigEnabled=true\n", dynamic.display());
        let config = member(&text, Some(2)).unwrap();
        assert_eq!(config.config_version, 0x1_0000_0000);
        assert_eq!(config.voter_ids(), vec![1, 2]);
        assert!(config.quorum_config_text().ends_with("server.3=127.0.0.1:2890:3890:observer\nversion=100000000"));
        let unversioned = dir.path().join("members");
        std::fs::write(&unversioned, THREE).unwrap();
        let config = member(&format!("{HEAD}dynamicConfigFile={}\n", unversioned.display()), Some(1)).unwrap();
        assert_eq!(config.config_version, 0, "no version in the name: 0");
        for (content, expected) in [
            (format!("{THREE}version=100000000\n"), "version: dynamic file shouldn't have version inside"),
            (format!("{THREE}tickTime=2000\n"), "tickTime: Unrecognised parameter: tickTime"),
            (THREE.replace("2889:3889", "2889:x"), "server.2: 'x' is not a port number"),
        ] {
            std::fs::write(&dynamic, content).unwrap();
            let error = member(&text, Some(2)).unwrap_err().to_string();
            assert!(error.starts_with(&format!("{}:", dynamic.display())) && error.contains(expected), "{error}");
        }
    }

    /// zoo.cfg text and a myid (`None`: no myid file) as ZooKeeper's QuorumPeerMain reads them.
    fn member(text: &str, my_id: Option<i64>) -> Result<Config, ConfigError> {
        let mut config = Config::parse(text, "zoo.cfg")?;
        if !config.is_standalone() {
            config.join_ensemble(my_id, Path::new("/d/myid"))?;
        }
        Ok(config)
    }

    enum Outcome {
        /// Starts; the check holds; a warning containing this text is given (`None`: no warning).
        Starts(fn(&Config) -> bool, Option<&'static str>),
        /// Refused with an error containing this text.
        Refused(&'static str),
    }
    use Outcome::*;

    /// Each row was run through ZooKeeper 3.8.0's QuorumPeerConfig (and QuorumPeer.start for "not in
    /// the peer list") with the same lines; the comment says what ZooKeeper did where we word it
    /// differently or diverge.
    #[test]
    fn ensembles_as_zookeeper_reads_them() {
        let rows: Vec<(&str, Option<i64>, String, Outcome)> = vec![
            (
                "three members",
                Some(1),
                format!("{HEAD}{THREE}"),
                Starts(|c| c.voter_ids() == [1, 2, 3] && !c.is_standalone(), None),
            ),
            // ZK: "initLimit is not set" for 0 or missing; negative starts there but cannot work.
            (
                "initLimit missing",
                Some(1),
                format!("dataDir=/d\nclientPort=1\nsyncLimit=2\n{THREE}"),
                Refused("zoo.cfg: initLimit is not set"),
            ),
            (
                "initLimit 0",
                Some(1),
                format!("{HEAD}initLimit=0\n{THREE}"),
                Refused("zoo.cfg:6: initLimit: 0 is not set"),
            ),
            (
                "syncLimit 0",
                Some(1),
                format!("{HEAD}syncLimit=0\n{THREE}"),
                Refused("zoo.cfg:6: syncLimit: 0 is not set"),
            ),
            (
                "initLimit negative",
                Some(1),
                format!("{HEAD}initLimit=-1\n{THREE}"),
                Refused("zoo.cfg:6: initLimit: -1 is negative"),
            ),
            (
                "standalone ignores limits",
                None,
                "dataDir=/d\nclientPort=1\ninitLimit=0\n".into(),
                Starts(|c| c.is_standalone(), None),
            ),
            // ZK: Properties keep the last value of a key.
            (
                "duplicate id",
                Some(1),
                format!("{HEAD}{THREE}server.2=127.0.0.1:2899:3899\n"),
                Starts(
                    |c| c.peer(2).unwrap().quorum_port == 2899 && c.servers.len() == 3,
                    Some("server.2 is given on lines 7, 9; line 9 is used"),
                ),
            ),
            (
                "server.01 and server.1",
                Some(1),
                format!(
                    "{HEAD}server.1=127.0.0.1:2888:3888\nserver.01=127.0.0.1:2899:3899\nserver.2=127.0.0.1:2889:3889\nserver.3=127.0.0.1:2890:3890\n"
                ),
                Starts(|c| c.peer(1).unwrap().quorum_port == 2899, Some("line 7 is used")),
            ),
            // ZK: "Client and election port must be different! ..."
            (
                "quorum port = election port",
                Some(1),
                format!("{HEAD}server.1=127.0.0.1:2888:2888\n"),
                Refused("zoo.cfg:6: server.1: the quorum and election ports must differ"),
            ),
            // ZK accepts both; we warn.
            (
                "two members, one address",
                Some(1),
                format!(
                    "{HEAD}server.1=10.1.1.1:2888:3888\nserver.2=10.1.1.1:2888:3888\nserver.3=127.0.0.1:2890:3890\n"
                ),
                Starts(
                    |c| c.servers.len() == 3,
                    Some("zoo.cfg:7: server.2: quorum address 10.1.1.1:2888 is also the quorum address of server.1"),
                ),
            ),
            (
                "port 0",
                Some(1),
                format!(
                    "{HEAD}server.1=127.0.0.1:0:3888\nserver.2=127.0.0.1:2889:3889\nserver.3=127.0.0.1:2890:3890\n"
                ),
                Starts(|c| c.me().unwrap().quorum_port == 0, Some("server.1: quorum port 0 cannot be reached")),
            ),
            (
                "two voters",
                Some(1),
                format!("{HEAD}server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\n"),
                Starts(
                    |c| !c.is_standalone(),
                    Some("No server failure will be tolerated. You need at least 3 servers."),
                ),
            ),
            (
                "four voters",
                Some(1),
                format!("{HEAD}{THREE}server.4=127.0.0.1:2891:3891\n"),
                Starts(
                    |c| c.voter_ids().len() == 4,
                    Some("Non-optimal configuration, consider an odd number of servers."),
                ),
            ),
            (
                "one server line",
                None,
                format!("{HEAD}server.1=127.0.0.1:2888:3888\n"),
                Starts(|c| c.is_standalone(), Some("only one server specified (ignoring)")),
            ),
            (
                "standaloneEnabled=false, one server",
                Some(1),
                format!("{HEAD}standaloneEnabled=false\nserver.1=127.0.0.1:2888:3888\n"),
                Starts(|c| !c.is_standalone() && c.my_id == Some(1), Some("No server failure will be tolerated")),
            ),
            (
                "standaloneEnabled=false, no server",
                None,
                format!("{HEAD}standaloneEnabled=false\n"),
                Refused("standaloneEnabled=false needs at least one participant"),
            ),
            (
                "one participant and an observer",
                None,
                format!("{HEAD}server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889:observer\n"),
                Refused("observers without a quorum"),
            ),
            (
                "observers only",
                None,
                format!("{HEAD}server.1=127.0.0.1:2888:3888:observer\nserver.2=127.0.0.1:2889:3889:observer\n"),
                Refused("observers without participants"),
            ),
            ("no myid", None, format!("{HEAD}{THREE}"), Refused("/d/myid: myid file is missing")),
            (
                "myid not listed",
                Some(4),
                format!("{HEAD}{THREE}"),
                Refused("/d/myid: server id 4 is not in zoo.cfg's server list (server.1, server.2, server.3)"),
            ),
            // ZK takes negative ids; ferrokeeper does not.
            ("myid negative", Some(-3), format!("{HEAD}{THREE}"), Refused("/d/myid: server id -3 is negative")),
            (
                "server id negative",
                Some(1),
                format!("{HEAD}server.-3=127.0.0.1:2890:3890\n"),
                Refused("zoo.cfg:6: server.-3: server id -3 is negative"),
            ),
            (
                "observer line, peerType participant",
                Some(3),
                format!(
                    "{HEAD}server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\nserver.3=127.0.0.1:2890:3890:observer\n"
                ),
                Starts(
                    |c| c.is_observer() && c.voter_ids() == [1, 2],
                    Some(
                        "Peer type from servers list (OBSERVER) doesn't match peerType (PARTICIPANT). Defaulting to servers list.",
                    ),
                ),
            ),
            (
                "peerType observer, participant line",
                Some(3),
                format!("{HEAD}peerType=observer\n{THREE}"),
                Starts(
                    |c| !c.is_observer() && c.peer_type == PeerRole::Participant,
                    Some("Peer type from servers list (PARTICIPANT) doesn't match peerType (OBSERVER)"),
                ),
            ),
            (
                "observer both ways",
                Some(3),
                format!(
                    "{HEAD}peerType=Observer\nserver.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\nserver.3=127.0.0.1:2890:3890:OBSERVER\n"
                ),
                Starts(|c| c.is_observer(), Some("No server failure will be tolerated")),
            ),
            (
                "peerType unknown",
                Some(1),
                format!("{HEAD}peerType=boss\n{THREE}"),
                Refused("zoo.cfg:6: peerType: unrecognised peer type 'boss'"),
            ),
            // ZK: the member's own line wins when the ports agree.
            (
                "client port in both, same",
                Some(1),
                format!(
                    "{HEAD}server.1=127.0.0.1:2888:3888;2181\nserver.2=127.0.0.1:2889:3889;2182\nserver.3=127.0.0.1:2890:3890\n"
                ),
                Starts(|c| c.client_address() == Some(HostPort::new("0.0.0.0", 2181)), None),
            ),
            (
                "client port in both, different",
                Some(1),
                format!(
                    "{HEAD}server.1=127.0.0.1:2888:3888;2100\nserver.2=127.0.0.1:2889:3889\nserver.3=127.0.0.1:2890:3890\n"
                ),
                Refused(
                    "zoo.cfg:6: server.1: this member's client address 0.0.0.0:2100 differs from clientPort/clientPortAddress (0.0.0.0:2181)",
                ),
            ),
            (
                "clientPortAddress specific, line wildcard",
                Some(1),
                format!(
                    "{HEAD}clientPortAddress=127.0.0.1\nserver.1=127.0.0.1:2888:3888;0.0.0.0:2181\nserver.2=127.0.0.1:2889:3889\nserver.3=127.0.0.1:2890:3890\n"
                ),
                Refused("differs from clientPort/clientPortAddress (127.0.0.1:2181)"),
            ),
            (
                "wildcard static, specific line",
                Some(1),
                format!(
                    "{HEAD}server.1=127.0.0.1:2888:3888;127.0.0.1:2181\nserver.2=127.0.0.1:2889:3889\nserver.3=127.0.0.1:2890:3890\n"
                ),
                Starts(|c| c.client_address() == Some(HostPort::new("127.0.0.1", 2181)), None),
            ),
            (
                "client port only in the line",
                Some(1),
                "tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir=/d\nserver.1=127.0.0.1:2888:3888;127.0.0.1:2181\n\
                 server.2=127.0.0.1:2889:3889;2182\nserver.3=127.0.0.1:2890:3890\n"
                    .to_string(),
                Starts(|c| c.client_address() == Some(HostPort::new("127.0.0.1", 2181)), None),
            ),
            (
                "another member's client port",
                Some(2),
                format!(
                    "{HEAD}server.1=127.0.0.1:2888:3888;2181\nserver.2=127.0.0.1:2889:3889\nserver.3=127.0.0.1:2890:3890\n"
                ),
                Starts(|c| c.client_address() == Some(HostPort::new("0.0.0.0", 2181)), None),
            ),
            // ZK runs such a member without a client port.
            (
                "no client port at all",
                Some(1),
                format!("tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir=/d\n{THREE}"),
                Starts(|c| c.client_address().is_none(), None),
            ),
            (
                "IPv6",
                Some(1),
                format!(
                    "{HEAD}server.1=[::1]:2888:3888;[::1]:2181\nserver.2=[::1]:2889:3889\nserver.3=[::1]:2890:3890\n"
                ),
                Starts(|c| c.election_bind_address() == Some(HostPort::new("::1", 3888)), None),
            ),
            (
                "IPv6 without brackets",
                Some(1),
                format!("{HEAD}server.1=::1:2888:3888\n"),
                Refused("zoo.cfg:6: server.1: '::1:2888:3888' is not host:quorumPort"),
            ),
            // ZK 3.8 reads the multi-address switch from a JVM property only, not from zoo.cfg.
            (
                "multi-address",
                Some(1),
                format!("{HEAD}multiAddress.enabled=true\nserver.1=127.0.0.1:2888:3888|127.0.0.2:2888:3888\n"),
                Refused("zoo.cfg:7: server.1: multiple addresses were given for sid 1"),
            ),
            (
                "hierarchical",
                Some(1),
                format!("{HEAD}{THREE}group.1=1:2:3\n"),
                Refused("zoo.cfg:9: group.1: hierarchical quorums"),
            ),
            (
                "weight alone",
                Some(1),
                format!("{HEAD}{THREE}weight.1=2\n"),
                Refused("zoo.cfg:9: weight.1: hierarchical quorums"),
            ),
            (
                "quorumListenOnAllIPs",
                Some(1),
                format!("{HEAD}quorumListenOnAllIPs=TRUE\n{THREE}"),
                Starts(
                    |c| {
                        c.quorum_bind_address() == Some(HostPort::new("0.0.0.0", 2888))
                            && c.election_bind_address() == Some(HostPort::new("0.0.0.0", 3888))
                    },
                    None,
                ),
            ),
            (
                "quorumListenOnAllIPs not boolean",
                Some(1),
                format!("{HEAD}quorumListenOnAllIPs=yes\n{THREE}"),
                Refused("zoo.cfg:6: quorumListenOnAllIPs: 'yes' is not true or false"),
            ),
            (
                "electionAlg",
                Some(1),
                format!("{HEAD}electionAlg=1\n{THREE}"),
                Refused("zoo.cfg:6: electionAlg: '1' is not supported"),
            ),
            (
                "election bind retry and cnxTimeout",
                Some(1),
                format!("{HEAD}electionPortBindRetry=0\ncnxTimeout=100\n{THREE}"),
                Starts(|c| c.election_port_bind_retry == 0 && c.cnx_timeout_ms == 100, None),
            ),
            (
                "election bind retry lenient",
                Some(1),
                format!("{HEAD}electionPortBindRetry=-1\n{THREE}"),
                Starts(|c| c.election_port_bind_retry == 3, Some("-1 is negative; using the default 3")),
            ),
            (
                "cnxTimeout bad",
                Some(1),
                format!("{HEAD}cnxTimeout=abc\n{THREE}"),
                Refused("zoo.cfg:6: cnxTimeout: 'abc' is not a valid integer"),
            ),
            (
                "version",
                Some(1),
                format!("{HEAD}version=100000000\n{THREE}"),
                Starts(|c| c.config_version == 0x1_0000_0000, None),
            ),
            (
                "version bad",
                Some(1),
                format!("{HEAD}version=xyz\n{THREE}"),
                Refused("zoo.cfg:6: version: 'xyz' is not a hexadecimal"),
            ),
            (
                "server lines beside a dynamic file",
                Some(1),
                format!("{HEAD}dynamicConfigFile=/d/zoo.cfg.dynamic\n{THREE}"),
                Refused("zoo.cfg:7: server.1: parameter: server.1 must be in a separate dynamic config file"),
            ),
            (
                "a dynamic file that is not there",
                Some(1),
                format!("{HEAD}dynamicConfigFile=/nonexistent/zoo.cfg.dynamic\n"),
                Refused("cannot read /nonexistent/zoo.cfg.dynamic (dynamicConfigFile)"),
            ),
            // ZK reads server.N raw: a trailing blank spoils the port.
            (
                "trailing blank",
                Some(1),
                format!("{HEAD}server.1=127.0.0.1:2888:3888 \n"),
                Refused("zoo.cfg:6: server.1: '3888 ' is not a port number"),
            ),
        ];
        for (name, my_id, text, outcome) in rows {
            let result = member(&text, my_id);
            match (result, outcome) {
                (Ok(config), Starts(holds, warning)) => {
                    assert!(holds(&config), "{name}: {config:?}");
                    match warning {
                        Some(w) => {
                            assert!(config.warnings.iter().any(|x| x.contains(w)), "{name}: {:?}", config.warnings)
                        }
                        None => assert!(config.warnings.is_empty(), "{name}: {:?}", config.warnings),
                    }
                }
                (Err(err), Refused(text)) => assert!(err.to_string().contains(text), "{name}: {err}"),
                (Ok(config), Refused(text)) => panic!("{name}: started, expected '{text}': {config:?}"),
                (Err(err), Starts(..)) => panic!("{name}: refused: {err}"),
            }
        }
    }

    /// Texts printed by ZooKeeper 3.8.0's QuorumVerifier.toString() for the same zoo.cfg and myid.
    #[test]
    fn quorum_config_text_matches_zookeeper() {
        let cases = [
            (
                format!("{HEAD}{THREE}"),
                1,
                "server.1=127.0.0.1:2888:3888:participant\nserver.2=127.0.0.1:2889:3889:participant\n\
                 server.3=127.0.0.1:2890:3890:participant\nversion=0",
            ),
            (
                format!(
                    "{HEAD}server.1=127.0.0.1:2888:3888;2181\nserver.2=127.0.0.1:2889:3889;2182\nserver.3=127.0.0.1:2890:3890;2183\n"
                ),
                1,
                "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\nserver.2=127.0.0.1:2889:3889:participant;0.0.0.0:2182\n\
                 server.3=127.0.0.1:2890:3890:participant;0.0.0.0:2183\nversion=0",
            ),
            (
                format!(
                    "{HEAD}server.1=[::1]:2888:3888;[::1]:2181\nserver.2=[0:0:0:0:0:0:0:1]:2889:3889\nserver.3=127.1:2890:3890: Observer \nversion=100000000\n"
                ),
                1,
                "server.1=[0:0:0:0:0:0:0:1]:2888:3888:participant;[0:0:0:0:0:0:0:1]:2181\n\
                 server.2=[0:0:0:0:0:0:0:1]:2889:3889:participant\nserver.3=127.0.0.1:2890:3890:observer\nversion=100000000",
            ),
            (
                format!(
                    "{HEAD}server.1=localhost:2888:3888\nserver.2=no-such-host.invalid:2889:3889\nserver.3=:2890:3890;[::]:2181\n"
                ),
                1,
                "server.1=localhost:2888:3888:participant\nserver.2=no-such-host.invalid:2889:3889:participant\n\
                 server.3=localhost:2890:3890:participant;[0:0:0:0:0:0:0:0]:2181\nversion=0",
            ),
            (
                format!(
                    "{HEAD}server.1=127.0.0.1:2888:3888\nserver.17=127.0.0.1:2889:3889\nserver.33=127.0.0.1:2890:3890\nserver.2=127.0.0.1:2891:3891\nserver.100=127.0.0.1:2892:3892\n"
                ),
                17,
                "server.33=127.0.0.1:2890:3890:participant\nserver.1=127.0.0.1:2888:3888:participant\n\
                 server.17=127.0.0.1:2889:3889:participant\nserver.2=127.0.0.1:2891:3891:participant\n\
                 server.100=127.0.0.1:2892:3892:participant\nversion=0",
            ),
        ];
        for (text, my_id, expected) in cases {
            let config = member(&text, Some(my_id)).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(config.quorum_config_text(), expected, "{text}");
        }
    }

    #[test]
    fn member_figures() {
        let c = member(&format!("{HEAD}{THREE}server.4=127.0.0.1:2891:3891:observer\n"), Some(2)).unwrap();
        assert_eq!((c.init_limit_ms(), c.sync_limit_ms()), (10_000, 4_000));
        assert_eq!((c.voter_ids(), c.observer_ids()), (vec![1, 2, 3], vec![4]));
        assert_eq!(c.me().map(|m| m.id), Some(2));
        assert_eq!(c.quorum_bind_address(), Some(HostPort::new("127.0.0.1", 2889)));
        assert_eq!(c.election_bind_address(), Some(HostPort::new("127.0.0.1", 3889)));
        // Majority of the three voters; the observer never counts.
        let quorum =
            [(vec![1, 2], true), (vec![1], false), (vec![3, 4], false), (vec![1, 1], false), (vec![1, 2, 3, 4], true)];
        for (ids, expected) in quorum {
            assert_eq!(c.is_quorum(&ids), expected, "{ids:?}");
        }
    }
}
