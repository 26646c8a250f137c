//! `zoo.cfg` as ZooKeeper 3.8's `QuorumPeerConfig` reads it, and `myid`.
//!
//! The file is Java properties (`key=value`, `key: value` or `key value`; `#`/`!` comments; trailing
//! backslash continues a line). Keys ZooKeeper knows but we do not act on yet are kept in `extra`;
//! unknown keys are warned about, not fatal, as ZooKeeper (which turns them into system properties). A bad
//! value stops start-up with the file, the line and the reason.
//!
//! Layout:
//! - `mod.rs`: the keys, the properties syntax, standalone checks.
//! - [`members`]: `server.N` values and hosts as Java prints them.
//! - `ensemble`: membership checks, `myid`, and what the ensemble code asks of a configuration
//!   (`Config::me`, `voter_ids`, `client_address`, `quorum_config_text`, ...).
//! - [`security`]: the security keys, refused while they ask for what is not provided (fail closed).
//! - [`tls`]: the client port's TLS keys (secure port, port unification, stores, x509 authentication).
//! - `unprovided`: the same for operational features (custom audit loggers and metrics providers).

mod ensemble;
pub mod kerberos;
pub mod members;
pub mod rewrite;
pub mod security;
pub mod tls;
mod unprovided;

pub use ensemble::{refresh_config_node, set_config_node};
pub use fk_core::servers::{HostPort, PeerRole, ServerSpec, same_host, server_spec, server_text};

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use fk_engine::snap::Compression;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Unreadable { path: String, source: std::io::Error },
    #[error("{origin}:{line}: {key}: {reason}")]
    BadValue { origin: String, line: usize, key: String, reason: String },
    #[error("{origin}: {reason}")]
    Invalid { origin: String, reason: String },
}

/// Every 4-letter word ZooKeeper 3.8 knows (`4lw.commands.whitelist` names them; `ops::fourlw` answers them).
pub const FOUR_LETTER_WORDS: &[&str] = &[
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "hash", "isro", "mntr", "ruok", "srst", "srvr", "stat",
    "stmk", "wchc", "wchp", "wchs",
];

/// Which 4-letter words may run (`4lw.commands.whitelist`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FourLetterWhitelist {
    All,
    Only(BTreeSet<String>),
}

impl FourLetterWhitelist {
    pub fn allows(&self, command: &str) -> bool {
        match self {
            FourLetterWhitelist::All => true,
            FourLetterWhitelist::Only(set) => set.contains(command),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnLogDevice {
    /// io_uring if the kernel allows it, else pwrite.
    Auto,
    Pwrite,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The file read, `None` for built-in defaults.
    pub source: Option<PathBuf>,
    pub tick_time_ms: u32,
    /// In ticks. Any integer is accepted for a standalone server (which does not use them); an ensemble
    /// needs them positive (ZooKeeper refuses 0 or missing; a negative one cannot work). See
    /// `init_limit_ms`/`sync_limit_ms`.
    pub init_limit: i32,
    pub sync_limit: i32,
    pub client_port: Option<u16>,
    pub client_port_address: Option<IpAddr>,
    pub data_dir: PathBuf,
    pub data_log_dir: Option<PathBuf>,
    /// Connections per client address, as configured (`conf` shows it so); 0 or less = unlimited.
    pub max_client_cnxns: i32,
    pub min_session_timeout_ms: u32,
    pub max_session_timeout_ms: u32,
    pub four_letter_words: FourLetterWhitelist,
    pub extended_types_enabled: bool,
    pub jute_max_buffer: usize,
    pub container_check_interval_ms: u64,
    pub container_max_per_minute: u32,
    /// `super:<base64 sha1>`: digest auth with this identity bypasses every ACL.
    pub super_digest: Option<String>,
    pub skip_acl: bool,
    /// `zookeeper.enforceQuota`: hard quota limits refuse writes (QuotaExceeded); soft ones are logged.
    pub enforce_quota: bool,
    pub reconfig_enabled: bool,
    pub standalone_enabled: bool,
    pub snap_count: u64,
    pub snap_size_limit_kb: i64,
    /// Log preallocation step; 0 pads nothing (ZooKeeper's meaning of any value <= 0).
    pub pre_alloc_size_kb: u64,
    pub force_sync: bool,
    /// A sync slower than this is logged; negative logs every sync (as in ZooKeeper).
    pub fsync_warning_threshold_ms: i64,
    /// `snapshot.compression.method`: how snapshots are written (any kind is read).
    pub snapshot_compression: Compression,
    /// Where `/metrics` is served, when `metricsProvider.className` names ZooKeeper's Prometheus provider.
    pub prometheus: Option<PrometheusEndpoint>,
    /// ZooKeeper's AdminServer (`admin.enableServer`, on unless turned off, as in ZooKeeper).
    pub admin: Option<AdminEndpoint>,
    /// The text of the file read at start-up (the AdminServer's `initial_configuration`).
    pub initial_text: Option<String>,
    pub autopurge_snap_retain_count: u32,
    pub autopurge_purge_interval_hours: u32,
    /// How the txn log reaches the disk (`ferrokeeper.txnLogDevice`, our own key): io_uring where the
    /// kernel allows it (auto), or always pwrite.
    pub txn_log_device: TxnLogDevice,
    /// An ensemble member whose log or snapshots are found damaged at start-up keeps what precedes the
    /// damage and recovers the rest from its ensemble (`ferrokeeper.recoverFromEnsemble`, our own key,
    /// default true; fk_engine::damage). False: it refuses to start, as ZooKeeper does.
    pub recover_from_ensemble: bool,
    /// How long a connection may stay without a session (handshake or 4-letter word unfinished) before
    /// it is closed: ZooKeeper's `zookeeper.nio.sessionlessCnxnTimeout`.
    pub sessionless_cnxn_timeout_ms: u64,
    /// Bytes of replies and watch events queued for one client beyond which its connection is closed
    /// (`ferrokeeper.maxQueuedOutputBytes`, our own key): a client that stops reading cannot make the
    /// server hold an unbounded backlog for it.
    pub max_queued_output_bytes: usize,
    /// The audit log's file when `audit.enable=true` (ZooKeeper's `zookeeper.auditlog.file`, by default
    /// `zookeeper_audit.log`, under `zookeeper.log.dir` if set, else under dataDir).
    pub audit_log: Option<PathBuf>,
    /// `readonlymode.enabled`: a member cut off from its quorum serves read-only clients (ZooKeeper reads
    /// it from the JVM's `readonlymode.enabled` property only; here it is a zoo.cfg key too).
    pub read_only_mode: bool,
    /// SASL for clients (`authProvider.N=…SASLAuthenticationProvider`, the JAAS file and its options),
    /// as read; [`Config::load_sasl`] reads the JAAS file.
    pub sasl: SaslSettings,
    /// ZooKeeper's `enforce.auth.enabled` with `enforce.auth.schemes` (or `sessionRequireClientSASLAuth`,
    /// which means `sasl`): a connection must hold an identity of one of these schemes before any
    /// request but auth and SASL; checked by [`Config::load_sasl`].
    pub enforce_auth: EnforceAuth,
    /// The JAAS file's server section, once loaded: clients may authenticate with SASL.
    pub sasl_service: Option<SaslService>,
    /// SASL between members, once loaded (`quorum.auth.enableSasl`).
    pub quorum_sasl: Option<QuorumSasl>,
    /// The TLS keys (clients' and members') as read (zoo.cfg, then JVM flags), by name without the
    /// `zookeeper.` prefix.
    pub tls_keys: BTreeMap<String, tls::RawValue>,
    /// `authProvider.N=org.apache.zookeeper.server.auth.X509AuthenticationProvider`.
    pub x509_provider: bool,
    /// The client port's TLS, once [`Config::load_tls`] resolved the keys; `None`: plaintext only.
    pub client_tls: Option<tls::ClientTls>,
    /// TLS between members, once [`Config::load_tls`] resolved the keys; `None`: plaintext only.
    pub quorum_tls: Option<tls::QuorumTls>,
    /// Every `server.N` line (duplicates resolved as ZooKeeper does), ascending by id.
    pub servers: Vec<ServerSpec>,
    /// This member's id, set by `join_ensemble` (from `dataDir/myid`); `None` when standalone.
    pub my_id: Option<u64>,
    /// `peerType`; after `join_ensemble`, this member's role in the server list (which wins, as in
    /// ZooKeeper, with a warning when they differ).
    pub peer_type: PeerRole,
    /// Listen for quorum and election connections on the wildcard address (`quorumListenOnAllIPs`).
    pub quorum_listen_on_all_ips: bool,
    /// `multiAddress.enabled`: the election protocol version to speak. It does not allow `|` in server
    /// lines (ZooKeeper reads that switch from a JVM property only).
    pub multi_address_enabled: bool,
    /// Attempts to bind the election port before giving up, 0 = forever (`electionPortBindRetry`).
    pub election_port_bind_retry: u32,
    /// Connect timeout for election connections (`cnxTimeout`).
    pub cnx_timeout_ms: u32,
    /// The membership's version (`version`, hex), 0 for a static configuration.
    pub config_version: u64,
    /// Keys ZooKeeper knows that nothing here uses yet, raw.
    pub extra: BTreeMap<String, String>,
    /// Messages for the operator (unknown keys, adjusted values); the caller logs them.
    pub warnings: Vec<String>,
    /// How the file is named in messages.
    origin: String,
    /// The last line of each key read (canonical name), to name it in later checks.
    key_lines: BTreeMap<String, usize>,
    /// The line each member's `server.N` came from.
    server_lines: BTreeMap<u64, usize>,
    /// Member ids in the order ZooKeeper lists them (its `HashMap` order).
    member_order: Vec<u64>,
    /// The file the `server.N` lines came from: zoo.cfg, or its `dynamicConfigFile`.
    members_origin: String,
    /// `dynamicConfigFile`, when the membership came from one.
    pub dynamic_file: Option<String>,
}

/// `enforce.auth.*` and `sessionRequireClientSASLAuth`, as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnforceAuth {
    pub enabled: bool,
    pub schemes: Vec<String>,
    pub require_sasl: bool,
}

impl EnforceAuth {
    /// The schemes a connection must hold one of, if authentication is required
    /// (`sessionRequireClientSASLAuth=true` wins, as in ZooKeeper's AuthenticationHelper).
    pub fn required_schemes(&self) -> Option<Vec<String>> {
        if self.require_sasl {
            return Some(vec!["sasl".into()]);
        }
        self.enabled.then(|| self.schemes.clone())
    }
}

/// ZooKeeper's SASL authentication provider.
pub const SASL_PROVIDER: &str = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider";

/// SASL settings as ZooKeeper names them (zoo.cfg keys here; JVM properties there, which
/// `SERVER_JVMFLAGS`/`JVMFLAGS` and the `java.security.auth.login.config` environment variable may
/// also give: see [`Config::set_security_property`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaslSettings {
    /// `authProvider.N=org.apache.zookeeper.server.auth.SASLAuthenticationProvider`: `sasl` ACLs work.
    pub provider: bool,
    /// `java.security.auth.login.config`.
    pub jaas: Option<PathBuf>,
    /// `zookeeper.sasl.serverconfig`: the JAAS section (default `Server`).
    pub section: Option<String>,
    /// `zookeeper.superUser`: the SASL identity that bypasses every ACL.
    pub super_user: Option<String>,
    /// `zookeeper.SASLAuthenticationProvider.superPassword`: DIGEST-MD5 user `super`'s password.
    pub super_password: Option<String>,
    /// `quorum.auth.enableSasl`: members authenticate to each other with SASL when asked.
    pub quorum_enabled: bool,
    /// `quorum.auth.learnerRequireSasl`: this member authenticates when it dials another.
    pub quorum_learner_require: bool,
    /// `quorum.auth.serverRequireSasl`: members dialling this one must authenticate.
    pub quorum_server_require: bool,
    /// `quorum.auth.learner.saslLoginContext` (default `QuorumLearner`) and
    /// `quorum.auth.server.saslLoginContext` (default `QuorumServer`): the JAAS sections.
    pub quorum_learner_section: Option<String>,
    pub quorum_server_section: Option<String>,
    /// `kerberos.removeHostFromPrincipal`, `kerberos.removeRealmFromPrincipal`.
    pub kerberos_rules: fk_gssapi::IdentityRules,
    /// `quorum.auth.kerberos.servicePrincipal`: the principal a learner asks a ticket for (`_HOST` is the
    /// dialled member's host); ZooKeeper's default `zkquorum/localhost`.
    pub quorum_service_principal: Option<String>,
    /// `zookeeper.server.realm`: the realm of `quorum_service_principal` when it names none (else the
    /// learner's own realm).
    pub server_realm: Option<String>,
    /// `java.security.krb5.conf`: the Kerberos configuration file (else `KRB5_CONFIG`, else
    /// `/etc/krb5.conf`).
    pub krb5_conf: Option<PathBuf>,
}

/// How clients authenticate with SASL: DIGEST-MD5 against the server section's users, or Kerberos
/// (GSSAPI) with its service key.
#[derive(Debug, Clone)]
pub enum SaslService {
    Digest(std::sync::Arc<fk_net::sasl::jaas::DigestUsers>),
    Kerberos(std::sync::Arc<kerberos::KerberosService>),
}

impl SaslService {
    /// The server section `section` of the JAAS file `jaas`, made ready.
    fn load(jaas: &Path, section: &str, rules: fk_gssapi::IdentityRules) -> Result<SaslService, String> {
        match fk_net::sasl::jaas::server_login(jaas, section).map_err(|e| e.to_string())? {
            fk_net::sasl::jaas::ServerLogin::Digest(users) => Ok(SaslService::Digest(std::sync::Arc::new(users))),
            fk_net::sasl::jaas::ServerLogin::Kerberos(login) => kerberos::KerberosService::load(&login, rules)
                .map(|service| SaslService::Kerberos(std::sync::Arc::new(service)))
                .map_err(|e| format!("{}: section {section:?}: {e}", jaas.display())),
        }
    }
}

/// How this member proves itself when it dials another.
#[derive(Debug, Clone)]
pub enum LearnerLogin {
    Digest {
        user: String,
        password: String,
    },
    /// Kerberos, asking for a ticket to `service_principal` (`_HOST` still in it).
    Kerberos {
        identity: std::sync::Arc<kerberos::KerberosIdentity>,
        service_principal: String,
        server_realm: Option<String>,
    },
}

/// SASL between members, loaded: the JAAS file's server section (whom this member takes) and its learner
/// section (what it proves itself with).
#[derive(Debug, Clone)]
pub struct QuorumSasl {
    pub learner_require: bool,
    pub server_require: bool,
    pub server: SaslService,
    pub learner: LearnerLogin,
}

/// ZooKeeper's Prometheus metrics provider, whose `/metrics` endpoint ferrokeeper serves.
pub const PROMETHEUS_PROVIDER: &str = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";

/// `metricsProvider.httpHost` and `metricsProvider.httpPort`, with ZooKeeper's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrometheusEndpoint {
    /// A host name or address, as ZooKeeper's Jetty connector takes it.
    pub host: String,
    pub port: u16,
}

impl Default for PrometheusEndpoint {
    fn default() -> Self {
        PrometheusEndpoint { host: "0.0.0.0".into(), port: 7000 }
    }
}

/// `admin.serverAddress`, `admin.serverPort` and `admin.commandURL`, and ZooKeeper 3.9's switches for its
/// `snapshot` and `restore` commands, with ZooKeeper's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminEndpoint {
    pub host: String,
    pub port: u16,
    pub command_url: String,
    /// `admin.rateLimiterIntervalInMS`: at most one `snapshot` and one `restore` per interval.
    pub rate_limit_interval_ms: u64,
    /// `admin.snapshot.enabled`, `admin.restore.enabled`.
    pub snapshot_enabled: bool,
    pub restore_enabled: bool,
}

impl Default for AdminEndpoint {
    fn default() -> Self {
        AdminEndpoint {
            host: "0.0.0.0".into(),
            port: 8080,
            command_url: "/commands".into(),
            rate_limit_interval_ms: 300_000,
            snapshot_enabled: true,
            restore_enabled: true,
        }
    }
}

/// Keys accepted and kept raw: ZooKeeper options this server does not act on (yet).
const KNOWN_UNUSED: &[&str] = &[
    // Jetty's idle timeout for AdminServer connections; ours answers each request and closes.
    "admin.idleTimeout",
    "clientPortListenBacklog",
    "syncEnabled",
    "localSessionsEnabled",
    "localSessionsUpgradingEnabled",
    "leaderServes",
    // Which Java connection factory serves clients; ferrokeeper has its own (TLS is refused above).
    "serverCnxnFactory",
    "globalOutstandingLimit",
    "digest.enabled",
    "maxCnxns",
    "connectToLearnerMasterLimit",
    "snapshot.trust.empty",
    "closeSessionTxn.enabled",
    "txnLogSizeLimitInKb",
    "maxResponseCacheSize",
    "znode.container.maxNeverUsedIntervalMs",
];

/// System-property style keys, accepted with or without the `zookeeper.` prefix.
fn canonical_key(key: &str) -> &str {
    key.strip_prefix("zookeeper.").unwrap_or(key)
}

impl Config {
    /// Built-in defaults: standalone on port 2181 with data under ./data.
    pub fn default_standalone() -> Config {
        Config {
            source: None,
            tick_time_ms: 3000,
            init_limit: 10,
            sync_limit: 5,
            client_port: Some(2181),
            client_port_address: None,
            data_dir: PathBuf::from("./data"),
            data_log_dir: None,
            max_client_cnxns: 60,
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 60000,
            four_letter_words: FourLetterWhitelist::Only(BTreeSet::from(["srvr".to_owned()])),
            extended_types_enabled: false,
            jute_max_buffer: 0xfffff,
            container_check_interval_ms: 60_000,
            container_max_per_minute: 10_000,
            super_digest: None,
            skip_acl: false,
            enforce_quota: false,
            reconfig_enabled: false,
            standalone_enabled: true,
            snap_count: 100_000,
            snap_size_limit_kb: 4_194_304,
            pre_alloc_size_kb: 65_536,
            force_sync: true,
            fsync_warning_threshold_ms: 1000,
            snapshot_compression: Compression::None,
            prometheus: None,
            admin: Some(AdminEndpoint::default()),
            initial_text: None,
            autopurge_snap_retain_count: 3,
            autopurge_purge_interval_hours: 0,
            txn_log_device: TxnLogDevice::Auto,
            recover_from_ensemble: true,
            sessionless_cnxn_timeout_ms: 10_000,
            max_queued_output_bytes: 64 << 20,
            audit_log: None,
            read_only_mode: false,
            sasl: SaslSettings::default(),
            sasl_service: None,
            quorum_sasl: None,
            tls_keys: BTreeMap::new(),
            x509_provider: false,
            client_tls: None,
            quorum_tls: None,
            enforce_auth: EnforceAuth::default(),
            servers: Vec::new(),
            my_id: None,
            peer_type: PeerRole::Participant,
            quorum_listen_on_all_ips: false,
            multi_address_enabled: false,
            election_port_bind_retry: 3,
            cnx_timeout_ms: 5000,
            config_version: 0,
            extra: BTreeMap::new(),
            warnings: Vec::new(),
            origin: String::new(),
            key_lines: BTreeMap::new(),
            server_lines: BTreeMap::new(),
            member_order: Vec::new(),
            members_origin: String::new(),
            dynamic_file: None,
        }
    }

    /// Reads a zoo.cfg and `dataDir/myid`; an ensemble member then gets `join_ensemble`'s checks. As
    /// ZooKeeper, a myid file that is there must hold a number even for a standalone server (which
    /// ignores it).
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Unreadable { path: path.display().to_string(), source })?;
        let mut config = Config::parse(&text, &path.display().to_string())?;
        config.source = Some(path.to_owned());
        config.initial_text = Some(text);
        let myid_path = config.data_dir.join("myid");
        let my_id = read_my_id(&myid_path)?;
        if !config.is_standalone() {
            config.join_ensemble(my_id, &myid_path)?;
        } else {
            config.take_client_address_from_server_line(my_id)?;
        }
        Ok(config)
    }

    /// Whether the file set `key` (its name without the `zookeeper.` prefix).
    pub fn has_key(&self, key: &str) -> bool {
        self.key_lines.contains_key(key)
    }

    /// Takes a SASL, `enforce.auth`, x509 or client TLS setting (the key without its `zookeeper.` prefix);
    /// false if `key` is not one. `source` names where it came from, for messages.
    pub fn set_security_property(&mut self, key: &str, value: &str, source: &str) -> bool {
        let sasl = &mut self.sasl;
        match key {
            k if k.starts_with("authProvider.") && value.trim() == SASL_PROVIDER => sasl.provider = true,
            k if k.starts_with("authProvider.") && value.trim() == tls::X509_PROVIDER => self.x509_provider = true,
            "java.security.auth.login.config" => sasl.jaas = Some(PathBuf::from(value)),
            "sasl.serverconfig" => sasl.section = Some(value.to_owned()),
            "superUser" => sasl.super_user = Some(value.to_owned()),
            "SASLAuthenticationProvider.superPassword" => sasl.super_password = Some(value.to_owned()),
            // Boolean.parseBoolean, as QuorumPeerConfig reads them.
            "quorum.auth.enableSasl" => sasl.quorum_enabled = value.trim().eq_ignore_ascii_case("true"),
            "quorum.auth.learnerRequireSasl" => sasl.quorum_learner_require = value.trim().eq_ignore_ascii_case("true"),
            "quorum.auth.serverRequireSasl" => sasl.quorum_server_require = value.trim().eq_ignore_ascii_case("true"),
            "quorum.auth.learner.saslLoginContext" => sasl.quorum_learner_section = Some(value.trim().to_owned()),
            "quorum.auth.server.saslLoginContext" => sasl.quorum_server_section = Some(value.trim().to_owned()),
            "kerberos.removeHostFromPrincipal" => {
                sasl.kerberos_rules.remove_host = value.trim().eq_ignore_ascii_case("true")
            }
            "kerberos.removeRealmFromPrincipal" => {
                sasl.kerberos_rules.remove_realm = value.trim().eq_ignore_ascii_case("true")
            }
            "quorum.auth.kerberos.servicePrincipal" => sasl.quorum_service_principal = Some(value.trim().to_owned()),
            "server.realm" => sasl.server_realm = Some(value.trim().to_owned()),
            "java.security.krb5.conf" => sasl.krb5_conf = Some(PathBuf::from(value.trim())),
            // Boolean.parseBoolean; the schemes split on commas and trimmed.
            "sessionRequireClientSASLAuth" => {
                self.enforce_auth.require_sasl = value.trim().eq_ignore_ascii_case("true")
            }
            "enforce.auth.enabled" => self.enforce_auth.enabled = value.trim().eq_ignore_ascii_case("true"),
            "enforce.auth.schemes" => {
                self.enforce_auth.schemes = value.split(',').map(|s| s.trim().to_owned()).collect();
            }
            k if tls::KEYS.contains(&k) || tls::QUORUM_KEYS.contains(&k) => {
                let raw = tls::RawValue { value: value.to_owned(), source: source.to_owned() };
                self.tls_keys.insert(k.to_owned(), raw);
            }
            _ => return false,
        }
        true
    }

    /// Resolves the TLS keys (after zoo.cfg and the JVM flags are read). A bad value, or a key that
    /// needs a TLS port when none is configured, stops start-up; the stores themselves are read when
    /// the server starts.
    pub fn load_tls(&mut self) -> Result<(), ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid { origin: self.origin.clone(), reason };
        self.client_tls = tls::resolve(&self.tls_keys, self.x509_provider).map_err(invalid)?;
        self.quorum_tls = tls::resolve_quorum(&self.tls_keys).map_err(invalid)?;
        let client_keys = self.tls_keys.keys().any(|k| k.starts_with("ssl.") && !k.starts_with("ssl.quorum."));
        if self.client_tls.is_none() && client_keys {
            self.warnings.push(format!(
                "{}: ssl.* keys are set but no client port serves TLS (secureClientPort, \
                 client.portUnification=true): clients are served in plaintext only",
                self.origin
            ));
        }
        Ok(())
    }

    /// Reads the JAAS file's server section, if one is configured: its DIGEST-MD5 users (and `super`,
    /// given `SASLAuthenticationProvider.superPassword`). A file that cannot serve (unreadable, no
    /// such section, Kerberos) stops start-up; SASL settings without a JAAS file ask for SASL that
    /// could not work, and stop it too.
    pub fn load_sasl(&mut self) -> Result<(), ConfigError> {
        self.load_quorum_sasl()?;
        let invalid = |reason: String| ConfigError::Invalid { origin: self.origin.clone(), reason };
        // ZooKeeper's AuthenticationHelper refuses to start on these.
        if let Some(schemes) = self.enforce_auth.required_schemes() {
            if schemes.iter().all(|s| s.is_empty()) {
                return Err(invalid("enforce.auth.enabled is true: enforce.auth.schemes must be configured".into()));
            }
            let available = |scheme: &str| match scheme {
                "digest" | "ip" => true,
                "sasl" => self.sasl.provider,
                "x509" => self.x509_provider,
                _ => false,
            };
            if let Some(missing) = schemes.iter().find(|s| !available(s)) {
                return Err(invalid(format!(
                    "enforce.auth.schemes: authentication scheme {missing} is not available (sasl needs \
                     authProvider.N=org.apache.zookeeper.server.auth.SASLAuthenticationProvider, x509 needs \
                     authProvider.N=org.apache.zookeeper.server.auth.X509AuthenticationProvider)"
                )));
            }
        }
        let Some(jaas) = &self.sasl.jaas else {
            if self.sasl.provider {
                return Err(invalid(
                    "authProvider names org.apache.zookeeper.server.auth.SASLAuthenticationProvider but no JAAS \
                     file is given (java.security.auth.login.config): no client could authenticate with SASL"
                        .into(),
                ));
            }
            return Ok(());
        };
        let section = self.sasl.section.as_deref().unwrap_or("Server");
        // A JAAS file for members only (QuorumServer, QuorumLearner): no SASL for clients, as in ZooKeeper,
        // unless something asked for it.
        let members_only = !self.sasl.provider && self.sasl.section.is_none() && self.quorum_sasl.is_some();
        if members_only && fk_net::sasl::jaas::has_section(jaas, section).is_ok_and(|has| !has) {
            return Ok(());
        }
        let service = SaslService::load(jaas, section, self.sasl.kerberos_rules)
            .map_err(|e| invalid(format!("java.security.auth.login.config: {e}")))?;
        self.sasl_service = Some(match (service, &self.sasl.super_password) {
            (SaslService::Digest(users), Some(password)) => {
                SaslService::Digest(std::sync::Arc::new((*users).clone().with_user("super", password)))
            }
            (service, _) => service,
        });
        Ok(())
    }

    /// SASL between members (`quorum.auth.*`): ZooKeeper's consistency checks, then the JAAS file's
    /// `QuorumServer` users and `QuorumLearner` credentials (DIGEST-MD5), both needed once it is on.
    fn load_quorum_sasl(&mut self) -> Result<(), ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid { origin: self.origin.clone(), reason };
        let sasl = &self.sasl;
        let order = [
            (
                !sasl.quorum_enabled && sasl.quorum_server_require,
                "quorum.auth.enableSasl",
                "quorum.auth.serverRequireSasl",
            ),
            (
                !sasl.quorum_enabled && sasl.quorum_learner_require,
                "quorum.auth.enableSasl",
                "quorum.auth.learnerRequireSasl",
            ),
            // A member that takes only authenticated peers but does not authenticate itself could never
            // join the quorum it guards.
            (
                !sasl.quorum_learner_require && sasl.quorum_server_require,
                "quorum.auth.learnerRequireSasl",
                "quorum.auth.serverRequireSasl",
            ),
        ];
        if let Some((_, off, on)) = order.iter().find(|(wrong, _, _)| *wrong) {
            return Err(invalid(format!("{off} is disabled, so cannot enable {on}")));
        }
        if !sasl.quorum_enabled {
            return Ok(());
        }
        let Some(jaas) = &sasl.jaas else {
            return Err(invalid(
                "quorum.auth.enableSasl=true needs a JAAS file (java.security.auth.login.config) with the \
                 QuorumServer and QuorumLearner sections"
                    .into(),
            ));
        };
        let server = sasl.quorum_server_section.as_deref().unwrap_or("QuorumServer");
        let learner = sasl.quorum_learner_section.as_deref().unwrap_or("QuorumLearner");
        let server_service = SaslService::load(jaas, server, sasl.kerberos_rules).map_err(|e| {
            invalid(format!("java.security.auth.login.config (quorum.auth.server.saslLoginContext): {e}"))
        })?;
        let learner_context =
            |e: String| invalid(format!("java.security.auth.login.config (quorum.auth.learner.saslLoginContext): {e}"));
        let learner_login = match fk_net::sasl::jaas::client_login(jaas, learner)
            .map_err(|e| learner_context(e.to_string()))?
        {
            fk_net::sasl::jaas::ClientLogin::Digest { user, password } => LearnerLogin::Digest { user, password },
            fk_net::sasl::jaas::ClientLogin::Kerberos(login) => LearnerLogin::Kerberos {
                identity: std::sync::Arc::new(
                    kerberos::KerberosIdentity::load(&login)
                        .map_err(|e| learner_context(format!("{}: section {learner:?}: {e}", jaas.display())))?,
                ),
                service_principal: sasl.quorum_service_principal.clone().unwrap_or_else(|| "zkquorum/localhost".into()),
                server_realm: sasl.server_realm.clone(),
            },
        };
        self.quorum_sasl = Some(QuorumSasl {
            learner_require: sasl.quorum_learner_require,
            server_require: sasl.quorum_server_require,
            server: server_service,
            learner: learner_login,
        });
        Ok(())
    }

    /// Parses zoo.cfg text; `origin` names it in messages. Does not read `myid`.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let mut config = Config::default_standalone();
        config.client_port = None;
        // Unset, as in ZooKeeper: an ensemble must give them (join_ensemble checks).
        config.init_limit = 0;
        config.sync_limit = 0;
        config.origin = origin.to_owned();
        config.members_origin = origin.to_owned();
        let mut data_dir = None;
        let mut min_timeout: Option<i64> = None;
        let mut max_timeout: Option<i64> = None;
        let mut warnings = Vec::new();
        let (mut prometheus_host, mut prometheus_port) = (None, None);
        let (mut admin_enabled, mut admin) = (None, AdminEndpoint::default());
        let (mut audit_enabled, mut audit_file, mut log_dir) = (false, None, None);
        let entries = properties(text);
        let mut servers = Vec::new();
        let mut dynamic_file = None;
        for (line, key, raw_value) in &entries {
            let (line, key) = (*line, key.clone());
            // QuorumPeerConfig trims values; membership keys are read raw (below).
            let value = raw_value.trim().to_owned();
            let at = Location { origin, line, key: &key };
            let mut warn = |message: String| warnings.push(format!("{origin}:{line}: {message}"));
            config.key_lines.insert(canonical_key(&key).to_owned(), line);
            if let Some(reason) = security::refusal(canonical_key(&key), &value) {
                return Err(at.error(reason.into()));
            }
            if let Some(reason) = unprovided::refusal(canonical_key(&key), &value) {
                return Err(at.error(reason.into()));
            }
            // ZooKeeper looks for the exact key (a `zookeeper.` prefix would make it a system property).
            let dynamic = entries.iter().any(|(_, k, _)| k == "dynamicConfigFile");
            if dynamic && ["server.", "group", "weight"].iter().any(|p| key.starts_with(p)) {
                return Err(at.error(format!("parameter: {key} must be in a separate dynamic config file")));
            }
            if !(dynamic && key == "version") && config.membership_key(&at, raw_value, &mut servers)? {
                continue;
            }
            match canonical_key(&key) {
                // Keys ZooKeeper's QuorumPeerConfig parses itself: a bad value stops it, and us.
                "tickTime" => config.tick_time_ms = at.int(&value, 1, i32::MAX as i64)? as u32,
                "initLimit" => config.init_limit = at.int32(&value)?,
                "syncLimit" => config.sync_limit = at.int32(&value)?,
                "clientPort" => config.client_port = Some(at.int(&value, 0, 65535)? as u16),
                "clientPortAddress" => config.client_port_address = Some(at.parse_ip(&value)?),
                "dataDir" => data_dir = Some(at.path(&value)?),
                "dataLogDir" => config.data_log_dir = Some(at.path(&value)?),
                // 0 or negative: no limit (ZooKeeper limits only when the value is positive).
                "maxClientCnxns" => config.max_client_cnxns = at.int32(&value)?,
                "minSessionTimeout" => min_timeout = Some(at.int32(&value)?.into()),
                "maxSessionTimeout" => max_timeout = Some(at.int32(&value)?.into()),
                "reconfigEnabled" => config.reconfig_enabled = at.boolean(&value)?,
                "standaloneEnabled" => config.standalone_enabled = at.boolean(&value)?,
                "peerType" => config.peer_type = at.peer_type(&value)?,
                "quorumListenOnAllIPs" => config.quorum_listen_on_all_ips = at.boolean(&value)?,
                "multiAddress.enabled" => config.multi_address_enabled = at.boolean(&value)?,
                "electionAlg" => {
                    if at.int32(&value)? != 3 {
                        return Err(at.error(format!("'{value}' is not supported; only 3 (fast leader election) is")));
                    }
                }
                // Read leniently by ZooKeeper (Integer.getInteger); a negative count means the default.
                "electionPortBindRetry" => {
                    let retries = at.java_int(&value, 3, &mut warn);
                    if retries < 0 {
                        warn(format!("{key}: {retries} is negative; using the default 3"));
                    }
                    config.election_port_bind_retry = if retries < 0 { 3 } else { retries.min(u32::MAX as i64) as u32 };
                }
                // ZooKeeper parses it when election starts and dies on a bad value; refuse it here.
                "cnxTimeout" => config.cnx_timeout_ms = at.int(&value, 0, i32::MAX as i64)? as u32,
                "dynamicConfigFile" => dynamic_file = Some(value.clone()),
                // With a dynamic file, its name carries the version.
                "version" => {}
                "autopurge.snapRetainCount" => {
                    let count = at.int32(&value)?;
                    if count < 3 {
                        warn(format!("Invalid autopurge.snapRetainCount: {count}. Defaulting to 3"));
                    }
                    config.autopurge_snap_retain_count = count.max(3) as u32;
                }
                "autopurge.purgeInterval" => config.autopurge_purge_interval_hours = at.int32(&value)?.max(0) as u32,
                "4lw.commands.whitelist" => config.four_letter_words = whitelist(&value, &at, &mut warn),
                // Keys ZooKeeper turns into system properties and reads leniently: an unusable value
                // falls back to the default (ZooKeeper silently; we say so).
                "extendedTypesEnabled" => config.extended_types_enabled = at.java_boolean(&value, &mut warn),
                "jute.maxbuffer" => {
                    config.jute_max_buffer = at.positive_or_default(&value, 0xfffff, &mut warn) as usize
                }
                "znode.container.checkIntervalMs" => {
                    config.container_check_interval_ms = at.positive_or_default(&value, 60_000, &mut warn) as u64
                }
                "znode.container.maxPerMinute" => {
                    config.container_max_per_minute = at.positive_or_default(&value, 10_000, &mut warn) as u32
                }
                "nio.sessionlessCnxnTimeout" => {
                    config.sessionless_cnxn_timeout_ms = at.positive_or_default(&value, 10_000, &mut warn) as u64
                }
                "DigestAuthenticationProvider.superDigest" => config.super_digest = Some(at.super_digest(&value)?),
                // ZooKeeper skips ACLs only for exactly "yes".
                "skipACL" => config.skip_acl = at.exactly(&value, "yes", "no", &mut warn),
                "enforceQuota" => config.enforce_quota = at.java_boolean(&value, &mut warn),
                "snapCount" => {
                    let count = at.java_int(&value, 100_000, &mut warn);
                    if count < 2 {
                        warn(format!("SnapCount should be 2 or more. Now, snapCount is reset to 2 ({key}={value})"));
                    }
                    config.snap_count = count.max(2) as u64;
                }
                "snapSizeLimitInKb" => {
                    let limit = at.java_int(&value, 4_194_304, &mut warn);
                    if limit <= 0 {
                        warn(format!(
                            "zookeeper.snapSizeLimitInKb set to a non-positive value {limit}; disabling feature"
                        ));
                    }
                    config.snap_size_limit_kb = limit;
                }
                // ZooKeeper pads the log only for a positive size.
                "preAllocSize" => config.pre_alloc_size_kb = at.java_int(&value, 65_536, &mut warn).max(0) as u64,
                // Only exactly "no" turns syncing off in ZooKeeper.
                "forceSync" => config.force_sync = !at.exactly(&value, "no", "yes", &mut warn),
                "fsync.warningthresholdms" => config.fsync_warning_threshold_ms = at.java_int(&value, 1000, &mut warn),
                "metricsProvider.className" => {
                    // Anything but these two was refused above.
                    config.prometheus = (value == PROMETHEUS_PROVIDER).then(PrometheusEndpoint::default);
                }
                // The provider's own keys; read whichever line comes first (ZooKeeper reads them all at once).
                "metricsProvider.httpHost" => prometheus_host = Some(value.clone()),
                // Boolean.parseBoolean: only "true" (any case) turns it on.
                "admin.enableServer" => admin_enabled = Some(value.eq_ignore_ascii_case("true")),
                "admin.serverAddress" => admin.host = value.clone(),
                "admin.serverPort" => admin.port = at.int(&value, 0, 65535)? as u16,
                "admin.commandURL" => admin.command_url = value.clone(),
                "admin.rateLimiterIntervalInMS" => {
                    admin.rate_limit_interval_ms = at.int(&value, 0, i32::MAX as i64)? as u64
                }
                // Boolean.parseBoolean, as ZooKeeper reads them.
                "admin.snapshot.enabled" => admin.snapshot_enabled = value.eq_ignore_ascii_case("true"),
                "admin.restore.enabled" => admin.restore_enabled = value.eq_ignore_ascii_case("true"),
                "metricsProvider.httpPort" => prometheus_port = Some(at.int(&value, 0, 65535)? as u16),
                // ZooKeeper writes uncompressed snapshots for a method it does not know, without a word.
                "snapshot.compression.method" => {
                    config.snapshot_compression = Compression::from_method(&value).unwrap_or_else(|| {
                        warn(format!(
                            "snapshot.compression.method '{value}' is not gz, snappy or empty; snapshots are \
                             written uncompressed (as ZooKeeper does)"
                        ));
                        Compression::None
                    })
                }
                // Boolean.getBoolean, as ZooKeeper reads its system property.
                "readonlymode.enabled" => config.read_only_mode = value.eq_ignore_ascii_case("true"),
                k if config.set_security_property(k, &value, &format!("{origin}:{line}")) => {}
                "audit.enable" => audit_enabled = value.eq_ignore_ascii_case("true"),
                "auditlog.file" => audit_file = Some(at.path(&value)?),
                "log.dir" => log_dir = Some(at.path(&value)?),
                // The only logger there is; any other class was refused above.
                "audit.impl.class" => {}
                "ferrokeeper.txnLogDevice" => {
                    config.txn_log_device = match value.as_str() {
                        "auto" | "io_uring" => TxnLogDevice::Auto,
                        "pwrite" => TxnLogDevice::Pwrite,
                        other => return Err(at.error(format!("'{other}' is not auto, io_uring or pwrite"))),
                    }
                }
                "ferrokeeper.recoverFromEnsemble" => config.recover_from_ensemble = at.boolean(&value)?,
                "ferrokeeper.maxQueuedOutputBytes" => {
                    config.max_queued_output_bytes = at.int(&value, 1, i64::MAX)? as usize
                }
                k if KNOWN_UNUSED.contains(&k) => {
                    config.extra.insert(key.clone(), value);
                }
                // Security keys that got here ask for nothing (sslQuorum=false, a built-in provider).
                k if k.starts_with("metricsProvider.") || security::is_security_key(k) => {
                    config.extra.insert(key.clone(), value);
                }
                _ => warn(format!("unknown key '{key}' ignored")),
            }
        }
        if config.max_queued_output_bytes < 2 * config.jute_max_buffer {
            warnings.push(format!(
                "{origin}: ferrokeeper.maxQueuedOutputBytes={} is less than twice jute.maxbuffer ({}): a client that \
                 pipelines large reads may be disconnected",
                config.max_queued_output_bytes, config.jute_max_buffer
            ));
        }
        if let Some(endpoint) = &mut config.prometheus {
            endpoint.host = prometheus_host.unwrap_or(endpoint.host.clone());
            endpoint.port = prometheus_port.unwrap_or(endpoint.port);
        }
        config.admin = admin_enabled.unwrap_or(true).then_some(admin);
        config.warnings = warnings;
        config.data_dir = data_dir
            .ok_or_else(|| ConfigError::Invalid { origin: origin.into(), reason: "dataDir is not set".into() })?;
        config.apply_session_timeouts(origin, min_timeout, max_timeout)?;
        // ZooKeeper lets `isro` through whatever the whitelist says while read-only mode is on.
        if let (true, FourLetterWhitelist::Only(words)) = (config.read_only_mode, &mut config.four_letter_words) {
            words.insert("isro".into());
        }
        if audit_enabled {
            let file = audit_file.unwrap_or_else(|| PathBuf::from("zookeeper_audit.log"));
            config.audit_log = Some(log_dir.unwrap_or_else(|| config.data_dir.clone()).join(file));
        }
        let dynamic_entries = match &dynamic_file {
            Some(path) => config.read_dynamic_file(path, &mut servers)?,
            None => Vec::new(),
        };
        config.dynamic_file = dynamic_file.clone();
        let mut keys: Vec<&str> = Vec::new();
        let member_entries = if dynamic_file.is_some() { &dynamic_entries } else { &entries };
        for (_, key, _) in member_entries {
            if !keys.contains(&key.as_str()) {
                keys.push(key);
            }
        }
        config.resolve_members(&keys, servers)?;
        config.check_client_port(origin)?;
        Ok(config)
    }

    /// Defaults 2 and 20 ticks; -1 also means the default (ZooKeeper's convention).
    fn apply_session_timeouts(&mut self, origin: &str, min: Option<i64>, max: Option<i64>) -> Result<(), ConfigError> {
        let tick = self.tick_time_ms as i64;
        let min = min.filter(|m| *m != -1).unwrap_or(2 * tick);
        let max = max.filter(|m| *m != -1).unwrap_or(20 * tick);
        if min > max {
            return Err(ConfigError::Invalid {
                origin: origin.into(),
                reason: format!("minSessionTimeout {min} must not be larger than maxSessionTimeout {max}"),
            });
        }
        self.min_session_timeout_ms = min.clamp(0, u32::MAX as i64) as u32;
        self.max_session_timeout_ms = max.clamp(0, u32::MAX as i64) as u32;
        Ok(())
    }

    /// The membership keys ZooKeeper's `QuorumMaj` reads from the raw properties: `server.N` (collected
    /// for `resolve_members`), `version`; `group`/`weight` (hierarchical quorums) are refused. True when
    /// the key was one of them.
    fn membership_key(
        &mut self,
        at: &Location<'_>,
        raw_value: &str,
        servers: &mut Vec<ensemble::ServerEntry>,
    ) -> Result<bool, ConfigError> {
        let key = at.key;
        if let Some(id) = key.strip_prefix("server.") {
            let id: i64 = id.parse().map_err(|_| at.error(format!("'{id}' is not a valid server id")))?;
            let id = u64::try_from(id).map_err(|_| at.error(format!("server id {id} is negative")))?;
            let spec = members::parse_server_line(id as i64, raw_value).map_err(|reason| at.error(reason))?;
            servers.push(ensemble::ServerEntry { line: at.line, key: key.to_owned(), id, spec });
        } else if key.starts_with("group") || key.starts_with("weight") {
            // ZooKeeper switches to hierarchical quorums on any key starting so.
            return Err(at.error(
                "hierarchical quorums (group./weight. keys) are not supported yet; use majority quorums".into(),
            ));
        } else if key == "version" {
            let version = i64::from_str_radix(raw_value, 16)
                .map_err(|_| at.error(format!("'{raw_value}' is not a hexadecimal configuration version")))?;
            self.config_version = version as u64;
        } else {
            return Ok(false);
        }
        Ok(true)
    }

    /// `dynamicConfigFile`, as ZooKeeper reads it: the membership (`server.N` lines only), its version
    /// from the file name's last dot-separated part in hex (`zoo.cfg.dynamic.100000000`; 0 without one),
    /// never from a `version` key inside. Returns its entries, in order.
    fn read_dynamic_file(
        &mut self,
        path: &str,
        servers: &mut Vec<ensemble::ServerEntry>,
    ) -> Result<Vec<(usize, String, String)>, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Unreadable { path: format!("{path} (dynamicConfigFile)"), source })?;
        self.members_origin = path.to_owned();
        let entries = properties(&text);
        for (line, key, raw_value) in &entries {
            let at = Location { origin: path, line: *line, key };
            match key.as_str() {
                "version" => return Err(at.error("dynamic file shouldn't have version inside".into())),
                k if k.starts_with("server.") || k.starts_with("group") || k.starts_with("weight") => {
                    self.membership_key(&at, raw_value, servers)?;
                }
                other => return Err(at.error(format!("Unrecognised parameter: {other}"))),
            }
        }
        // ZooKeeper's getVersionFromFilename: Long.parseLong of what follows the last dot, base 16.
        let suffix = path.rsplit_once('.').map(|(_, s)| s);
        self.config_version = suffix.and_then(|s| i64::from_str_radix(s, 16).ok()).map_or(0, |v| v as u64);
        Ok(entries)
    }

    fn check_client_port(&self, origin: &str) -> Result<(), ConfigError> {
        // ZooKeeper serves on the secure port alone when only it is set.
        if self.servers.is_empty() && self.client_port.is_none() && !self.tls_keys.contains_key("secureClientPort") {
            return Err(ConfigError::Invalid { origin: origin.into(), reason: "clientPort is not set".into() });
        }
        Ok(())
    }

    /// Standalone when at most one participant is listed and `standaloneEnabled` (ZooKeeper's
    /// `isDistributed`, negated; observers beside a lone participant were refused by `parse`).
    pub fn is_standalone(&self) -> bool {
        self.standalone_enabled && self.voter_ids().len() <= 1
    }

    pub fn data_log_dir(&self) -> &Path {
        self.data_log_dir.as_deref().unwrap_or(&self.data_dir)
    }
}

/// ZooKeeper's setupMyId: `None` when there is no such file; otherwise its first line, untrimmed, as a
/// Java long (`" 1"` and an empty file are refused, as there).
fn read_my_id(path: &Path) -> Result<Option<i64>, ConfigError> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Unreadable { path: path.display().to_string(), source })?;
    let first = text.split('\n').next().unwrap_or_default();
    let first = first.strip_suffix('\r').unwrap_or(first);
    let invalid = |shown: &str| ConfigError::Invalid {
        origin: path.display().to_string(),
        reason: format!("server id {shown} is not a number"),
    };
    if text.is_empty() {
        return Err(invalid("(empty file)"));
    }
    first.parse().map(Some).map_err(|_| invalid(&format!("'{first}'")))
}

/// Splits Java-properties text into (line number, key, value), joining continued lines.
fn properties(text: &str) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, raw)) = lines.next() {
        let mut logical = raw.trim_start().to_owned();
        if logical.is_empty() || logical.starts_with('#') || logical.starts_with('!') {
            continue;
        }
        while logical.ends_with('\\') && !logical.ends_with("\\\\") {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        let separator = logical.find(['=', ':', ' ', '\t']).unwrap_or(logical.len());
        let key = logical[..separator].trim().to_owned();
        let rest = logical[separator..].trim_start();
        let rest = rest.strip_prefix(['=', ':']).unwrap_or(rest);
        // Java keeps a value's trailing blanks; ZooKeeper trims most values itself, not server.N's.
        out.push((index + 1, key, rest.trim_start().to_owned()));
    }
    out
}

fn whitelist(value: &str, at: &Location<'_>, warn: &mut impl FnMut(String)) -> FourLetterWhitelist {
    let mut set = BTreeSet::new();
    for word in value.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        if word == "*" {
            return FourLetterWhitelist::All;
        }
        if FOUR_LETTER_WORDS.contains(&word) {
            set.insert(word.to_owned());
        } else {
            warn(format!("{}: '{word}' is not a 4-letter word; ignored", at.key));
        }
    }
    FourLetterWhitelist::Only(set)
}

/// Java's `Long.decode`: an optional sign, then `0x`/`0X`/`#` hex, `0`-prefixed octal, or decimal.
fn java_decode(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) = if let Some(hex) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        (16, hex)
    } else if let Some(hex) = digits.strip_prefix('#') {
        (16, hex)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let magnitude = i64::from_str_radix(digits, radix).ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

/// Where a value came from, to build precise errors.
struct Location<'a> {
    origin: &'a str,
    line: usize,
    key: &'a str,
}

impl Location<'_> {
    fn error(&self, reason: String) -> ConfigError {
        ConfigError::BadValue { origin: self.origin.into(), line: self.line, key: self.key.into(), reason }
    }

    fn int(&self, value: &str, min: i64, max: i64) -> Result<i64, ConfigError> {
        let n: i64 = value.parse().map_err(|_| self.error(format!("'{value}' is not a valid integer")))?;
        if n < min || n > max {
            return Err(self.error(format!("{n} is out of range ({min}..={max})")));
        }
        Ok(n)
    }

    /// Java's `Integer.parseInt`, as ZooKeeper reads the keys it parses itself: any 32-bit integer.
    fn int32(&self, value: &str) -> Result<i32, ConfigError> {
        Ok(self.int(value, i32::MIN.into(), i32::MAX.into())? as i32)
    }

    /// A lenient number, as Java's `Integer.getInteger`/`Long.getLong` read a system property: decimal,
    /// `0x`/`#` hex or `0` octal; anything else is the default (ZooKeeper says nothing; we warn).
    fn java_int(&self, value: &str, default: i64, warn: &mut impl FnMut(String)) -> i64 {
        java_decode(value).unwrap_or_else(|| {
            warn(format!("{}: '{value}' is not a valid number; using the default {default}", self.key));
            default
        })
    }

    /// A lenient number that must be positive to mean anything; otherwise the default, with a warning.
    fn positive_or_default(&self, value: &str, default: i64, warn: &mut impl FnMut(String)) -> i64 {
        match self.java_int(value, default, warn) {
            n if n > 0 => n,
            n => {
                warn(format!("{}: {n} is not positive; using the default {default}", self.key));
                default
            }
        }
    }

    /// Java's `Boolean.getBoolean`: true only for "true" in any case.
    fn java_boolean(&self, value: &str, warn: &mut impl FnMut(String)) -> bool {
        if !value.eq_ignore_ascii_case("true") && !value.eq_ignore_ascii_case("false") {
            warn(format!("{}: '{value}' is not true or false; taken as false, as ZooKeeper does", self.key));
        }
        value.eq_ignore_ascii_case("true")
    }

    /// True for exactly `yes`; `other` is the value's other expected spelling. Anything else is taken as
    /// not-`yes`, as ZooKeeper compares these strings exactly.
    fn exactly(&self, value: &str, yes: &str, other: &str, warn: &mut impl FnMut(String)) -> bool {
        if value != yes && value != other {
            warn(format!(
                "{}: '{value}' is neither '{yes}' nor '{other}'; taken as '{other}', as ZooKeeper does",
                self.key
            ));
        }
        value == yes
    }

    /// ZooKeeper cannot start with an empty directory path either (it fails on it).
    fn path(&self, value: &str) -> Result<PathBuf, ConfigError> {
        if value.is_empty() {
            return Err(self.error("the directory path is empty".into()));
        }
        Ok(PathBuf::from(value))
    }

    fn boolean(&self, value: &str) -> Result<bool, ConfigError> {
        match value.to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(self.error(format!("'{value}' is not true or false"))),
        }
    }

    fn parse_ip(&self, value: &str) -> Result<IpAddr, ConfigError> {
        if value == "localhost" {
            return Ok(IpAddr::from([127, 0, 0, 1]));
        }
        value.parse().map_err(|_| self.error(format!("'{value}' is not an IP address")))
    }

    fn super_digest(&self, value: &str) -> Result<String, ConfigError> {
        match value.split_once(':') {
            Some((user, hash)) if !user.is_empty() && !hash.is_empty() => Ok(value.to_owned()),
            _ => Err(self.error(format!("'{value}' is not of the form user:base64-sha1"))),
        }
    }

    /// ZooKeeper's peerType: observer or participant in any case.
    fn peer_type(&self, value: &str) -> Result<PeerRole, ConfigError> {
        match value.to_lowercase().as_str() {
            "observer" => Ok(PeerRole::Observer),
            "participant" => Ok(PeerRole::Participant),
            _ => Err(self.error(format!("unrecognised peer type '{value}' (observer or participant)"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, "zoo.cfg")
    }

    #[test]
    fn zookeepers_sample_config_parses() {
        let c = parse("# sample\ntickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/var/lib/zookeeper\nclientPort=2181\n#maxClientCnxns=60\n").unwrap();
        assert_eq!((c.tick_time_ms, c.init_limit, c.sync_limit, c.client_port), (2000, 10, 5, Some(2181)));
        assert_eq!((c.min_session_timeout_ms, c.max_session_timeout_ms), (4000, 40000));
        assert!(c.is_standalone());
        assert!(c.warnings.is_empty());
        if let Ok(text) = std::fs::read_to_string("/etc/zookeeper/conf/zoo.cfg") {
            Config::parse(&text, "/etc/zookeeper/conf/zoo.cfg").expect("Debian's zoo.cfg");
        }
    }

    #[test]
    fn every_key_is_read() {
        let c = parse(
            "dataDir = /d\ndataLogDir: /l\nclientPort 2200\nclientPortAddress=127.0.0.1\nmaxClientCnxns=0\n\
             minSessionTimeout=1000\nmaxSessionTimeout=-1\n4lw.commands.whitelist=ruok, stat\n\
             zookeeper.extendedTypesEnabled=true\njute.maxbuffer=4096\nznode.container.checkIntervalMs=500\n\
             znode.container.maxPerMinute=60\nDigestAuthenticationProvider.superDigest=super:abc=\nskipACL=yes\n\
             reconfigEnabled=true\nsnapCount=10\npreAllocSize=64\nforceSync=no\nfsync.warningthresholdms=5\n\
             autopurge.snapRetainCount=1\nautopurge.purgeInterval=2\nadmin.enableServer=false\nfoo.bar=1\n\
             ferrokeeper.txnLogDevice=pwrite\n",
        )
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/d"));
        assert_eq!(c.data_log_dir(), Path::new("/l"));
        assert_eq!(c.client_port, Some(2200));
        assert_eq!(c.max_client_cnxns, 0);
        assert_eq!((c.min_session_timeout_ms, c.max_session_timeout_ms), (1000, 60000));
        assert!(c.four_letter_words.allows("ruok") && c.four_letter_words.allows("stat"));
        assert!(!c.four_letter_words.allows("srvr"));
        assert!(c.extended_types_enabled && c.skip_acl && c.reconfig_enabled && !c.force_sync);
        assert_eq!(c.sessionless_cnxn_timeout_ms, 10_000, "ZooKeeper's default");
        assert_eq!((c.jute_max_buffer, c.container_check_interval_ms, c.container_max_per_minute), (4096, 500, 60));
        assert_eq!(c.super_digest.as_deref(), Some("super:abc="));
        assert_eq!((c.snap_count, c.pre_alloc_size_kb, c.fsync_warning_threshold_ms), (10, 64, 5));
        assert_eq!((c.autopurge_snap_retain_count, c.autopurge_purge_interval_hours), (3, 2));
        assert_eq!(c.admin, None, "admin.enableServer=false");
        assert_eq!(c.txn_log_device, TxnLogDevice::Pwrite);
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        assert!(c.warnings[1].contains("zoo.cfg:23: unknown key 'foo.bar'"));
    }

    #[test]
    fn the_admin_server_is_on_unless_turned_off_as_in_zookeeper() {
        let parse =
            |extra: &str| Config::parse(&format!("dataDir=/d\nclientPort=2181\n{extra}"), "zoo.cfg").unwrap().admin;
        assert_eq!(parse(""), Some(AdminEndpoint::default()));
        assert_eq!(parse("admin.enableServer=yes"), None, "Boolean.parseBoolean: only true is true");
        let custom = parse(
            "admin.serverAddress=127.0.0.1\nadmin.serverPort=9090\nadmin.commandURL=/admin\n\
             zookeeper.admin.rateLimiterIntervalInMS=1000\nadmin.restore.enabled=false",
        );
        let expected = AdminEndpoint {
            host: "127.0.0.1".into(),
            port: 9090,
            command_url: "/admin".into(),
            rate_limit_interval_ms: 1000,
            snapshot_enabled: true,
            restore_enabled: false,
        };
        assert_eq!(custom, Some(expected));
        assert!(Config::parse("dataDir=/d\nclientPort=2181\nadmin.serverPort=x", "zoo.cfg").is_err());
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let cases = [
            ("dataDir=/d\nclientPort=2181\ntickTime=abc\n", "zoo.cfg:3: tickTime: 'abc' is not a valid integer"),
            ("dataDir=/d\nclientPort=70000\n", "zoo.cfg:2: clientPort: 70000 is out of range"),
            ("clientPort=2181\n", "zoo.cfg: dataDir is not set"),
            ("dataDir=/d\n", "zoo.cfg: clientPort is not set"),
            ("dataDir=/d\nclientPort=1\nminSessionTimeout=5000\nmaxSessionTimeout=10\n", "must not be larger"),
            (
                "dataDir=/d\nclientPort=1\nmaxClientCnxns=abc\n",
                "zoo.cfg:3: maxClientCnxns: 'abc' is not a valid integer",
            ),
            ("dataDir=/d\nclientPort=1\nsyncLimit=abc\n", "zoo.cfg:3: syncLimit: 'abc' is not a valid integer"),
            ("dataDir=/d\nclientPort=1\ntickTime=0\n", "zoo.cfg:3: tickTime: 0 is out of range"),
            ("dataDir=/d\nclientPort=1\ndataLogDir=\n", "zoo.cfg:3: dataLogDir: the directory path is empty"),
            (
                "dataDir=/d\nclientPort=1\nstandaloneEnabled=maybe\n",
                "zoo.cfg:3: standaloneEnabled: 'maybe' is not true or false",
            ),
            ("dataDir=/d\nserver.1=host:2888\n", "zoo.cfg:2: server.1: 'host:2888' is not"),
            ("dataDir=/d\nserver.1=h:2888:3888:boss\n", "unknown peer role 'boss'"),
            ("dataDir=/d\nserver.1=h:2888:x\n", "zoo.cfg:2: server.1: 'x' is not a port number"),
            ("dataDir=/d\nserver.x=h:1:2\n", "zoo.cfg:2: server.x: 'x' is not a valid server id"),
            ("dataDir=/d\nclientPortAddress=nowhere\nclientPort=1\n", "zoo.cfg:2: clientPortAddress: 'nowhere'"),
            // Fail closed: a security key that asks for what is not provided stops start-up.
            ("dataDir=/d\nclientPort=1\nssl.crl=true\n", "zoo.cfg:3: ssl.crl: this TLS setting is not supported"),
            (
                "dataDir=/d\nclientPort=1\nzookeeper.ssl.quorum.ocsp=true\n",
                "zoo.cfg:3: zookeeper.ssl.quorum.ocsp: this setting of TLS between members",
            ),
            (
                "dataDir=/d\nclientPort=1\nauthProvider.1=org.example.KerberosNameProvider\n",
                "zoo.cfg:3: authProvider.1: this authentication provider is not available",
            ),
            (
                "dataDir=/d\nclientPort=1\nsecurity.auth_to_local=RULE:[2:$1]\n",
                "zoo.cfg:3: security.auth_to_local: this part of SASL authentication is not supported",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    /// SASL between members: ZooKeeper's consistency checks, and a JAAS file must be there.
    #[test]
    fn quorum_sasl_settings_are_checked_as_zookeeper_checks_them() {
        let cases = [
            (
                "quorum.auth.serverRequireSasl=true",
                "quorum.auth.enableSasl is disabled, so cannot enable quorum.auth.serverRequireSasl",
            ),
            (
                "quorum.auth.learnerRequireSasl=true",
                "quorum.auth.enableSasl is disabled, so cannot enable quorum.auth.learnerRequireSasl",
            ),
            (
                "quorum.auth.enableSasl=true\nquorum.auth.serverRequireSasl=true",
                "quorum.auth.learnerRequireSasl is disabled, so cannot enable quorum.auth.serverRequireSasl",
            ),
            ("quorum.auth.enableSasl=true", "quorum.auth.enableSasl=true needs a JAAS file"),
        ];
        for (lines, expected) in cases {
            let mut config = parse(&format!("dataDir=/d\nclientPort=1\n{lines}\n")).unwrap();
            let error = config.load_sasl().unwrap_err().to_string();
            assert!(error.contains(expected), "{lines}: {error}");
        }
    }

    /// Values ZooKeeper 3.8 starts with (probed side by side), with the meaning it gives them.
    #[test]
    fn values_zookeeper_accepts_are_accepted_with_its_meaning() {
        // (lines, what must hold of the result, a warning it must give)
        type Case = (&'static str, fn(&Config) -> bool, Option<&'static str>);
        let cases: [Case; 24] = [
            ("snapshot.compression.method=GZ", |c| c.snapshot_compression == Compression::Gzip, None),
            ("zookeeper.snapshot.compression.method=snappy", |c| c.snapshot_compression == Compression::Snappy, None),
            (
                "snapshot.compression.method=lz4",
                |c| c.snapshot_compression == Compression::None,
                Some("'lz4' is not gz"),
            ),
            ("preAllocSize=0", |c| c.pre_alloc_size_kb == 0, None),
            ("preAllocSize=-5", |c| c.pre_alloc_size_kb == 0, None),
            ("preAllocSize=abc", |c| c.pre_alloc_size_kb == 65_536, Some("'abc' is not a valid number")),
            ("snapCount=1", |c| c.snap_count == 2, Some("SnapCount should be 2 or more")),
            ("snapCount=-1", |c| c.snap_count == 2, Some("snapCount is reset to 2")),
            ("snapCount=abc", |c| c.snap_count == 100_000, Some("using the default 100000")),
            ("maxClientCnxns=-1", |c| c.max_client_cnxns == -1, None),
            ("jute.maxbuffer=abc", |c| c.jute_max_buffer == 0xfffff, Some("using the default 1048575")),
            ("jute.maxbuffer=0x200000", |c| c.jute_max_buffer == 0x20_0000, None),
            ("jute.maxbuffer=-1", |c| c.jute_max_buffer == 0xfffff, Some("-1 is not positive")),
            ("forceSync=maybe", |c| c.force_sync, Some("taken as 'yes'")),
            ("forceSync=NO", |c| c.force_sync, Some("taken as 'yes'")),
            ("fsync.warningthresholdms=abc", |c| c.fsync_warning_threshold_ms == 1000, Some("not a valid number")),
            ("fsync.warningthresholdms=-1", |c| c.fsync_warning_threshold_ms == -1, None),
            ("snapSizeLimitInKb=-1", |c| c.snap_size_limit_kb == -1, Some("disabling feature")),
            ("initLimit=0\nsyncLimit=-3", |c| c.init_limit == 0 && c.sync_limit == -3, None),
            ("minSessionTimeout=0", |c| c.min_session_timeout_ms == 0, None),
            ("tickTime=2000   \nskipACL=YES", |c| c.tick_time_ms == 2000 && !c.skip_acl, Some("taken as 'no'")),
            ("zookeeper.enforceQuota=TRUE", |c| c.enforce_quota, None),
            ("enforceQuota=true", |c| c.enforce_quota, None),
            ("enforceQuota=yes", |c| !c.enforce_quota, Some("taken as false")),
        ];
        for (line, holds, warning) in cases {
            let c = parse(&format!("dataDir=/d\nclientPort=1\n{line}\n")).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert!(holds(&c), "{line}: {c:?}");
            match warning {
                Some(text) => assert!(
                    c.warnings.iter().any(|w| w.contains(text) && w.starts_with("zoo.cfg:")),
                    "{line}: {:?}",
                    c.warnings
                ),
                None => assert!(c.warnings.is_empty(), "{line}: {:?}", c.warnings),
            }
        }
        assert_eq!(java_decode("#1F"), Some(31));
        assert_eq!(java_decode("010"), Some(8));
        assert_eq!(java_decode("-0x10"), Some(-16));
        assert_eq!((java_decode("0x"), java_decode("--1"), java_decode("")), (None, None, None));
    }

    #[test]
    fn server_lines() {
        let c = parse("dataDir=/d\nserver.1=a:2888:3888\nserver.2=b:2888:3888:observer;2181\nserver.3=c:1:2:participant;0.0.0.0:2182\n").unwrap();
        assert_eq!(c.servers.len(), 3);
        assert_eq!(c.servers[1].role, PeerRole::Observer);
        assert_eq!(c.servers[1].client_addr, Some((None, 2181)));
        assert_eq!(c.servers[2].client_addr, Some((Some("0.0.0.0".into()), 2182)));
        assert!(!c.is_standalone());
        let single = parse("dataDir=/d\nserver.1=a:2888:3888;2181\n").unwrap();
        assert!(single.is_standalone(), "one participant with standaloneEnabled runs standalone");
    }

    /// myid files as ZooKeeper 3.8's setupMyId reads them (first line, untrimmed, a Java long).
    #[test]
    fn myid_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("myid");
        assert_eq!(read_my_id(&path).unwrap(), None, "no file: ZooKeeper's \"myid file is missing\" comes later");
        let cases = [
            ("1\n", Ok(1)),
            ("2", Ok(2)),
            ("3\r\n", Ok(3)),
            ("+4\nrest", Ok(4)),
            ("-3", Ok(-3)),
            // ZK: "serverid abc is not a number", "serverid  1  is not a number", "serverid null ...".
            ("abc", Err("server id 'abc' is not a number")),
            (" 1 ", Err("server id ' 1 ' is not a number")),
            ("", Err("server id (empty file) is not a number")),
            ("0x1", Err("server id '0x1' is not a number")),
        ];
        for (text, expected) in cases {
            std::fs::write(&path, text).unwrap();
            match (read_my_id(&path), expected) {
                (Ok(id), Ok(want)) => assert_eq!(id, Some(want), "{text:?}"),
                (Err(err), Err(want)) => {
                    assert_eq!(err.to_string(), format!("{}: {want}", path.display()), "{text:?}")
                }
                (got, want) => panic!("{text:?}: {got:?}, expected {want:?}"),
            }
        }
    }

    #[test]
    fn properties_syntax() {
        let props = properties("! comment\n  a = 1 \nb:2\nc 3\nd=x\\\n  y\n\ne=\n");
        let keys: Vec<_> = props.iter().map(|(l, k, v)| (*l, k.as_str(), v.as_str())).collect();
        // Trailing blanks stay, as in Java (ZooKeeper trims most values itself, not server.N's).
        assert_eq!(keys, vec![(2, "a", "1 "), (3, "b", "2"), (4, "c", "3"), (5, "d", "xy"), (8, "e", "")]);
        assert_eq!(
            parse("dataDir=/d\nclientPort=1\n4lw.commands.whitelist=\n").unwrap().four_letter_words,
            FourLetterWhitelist::Only(BTreeSet::new())
        );
    }
}
