//! The 4-letter words (reference/client-wire.md §15): a connection whose first four bytes name a command
//! gets a plain-text report and is closed. They run on their own thread, which gathers what it needs
//! from the shards and the sequencer through inspection closures, so no shard ever blocks on one.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::Receiver;
use tracing::debug;

use super::figures::{ConnectionFigures, Figures};
use super::metrics::java_double;
use crate::config::FOUR_LETTER_WORDS;
use crate::sequencer::Origin;

pub fn is_command(bytes: &[u8; 4]) -> bool {
    FOUR_LETTER_WORDS.iter().any(|c| c.as_bytes() == bytes)
}

/// The one command followed by an argument: stmk's 8-byte trace mask.
pub const SET_TRACE_MASK: &[u8; 4] = b"stmk";

/// A command a shard received: the answer goes back to that shard, which writes it without blocking.
pub struct FourLetterJob {
    pub origin: Origin,
    pub peer: SocketAddr,
    pub command: [u8; 4],
    /// stmk's mask, when the command is stmk and it is allowed.
    pub mask: Option<i64>,
}

/// Answers each job from gathered figures and hands the text to `answer`. It never touches a socket, so
/// a peer that is slow to send or to read delays nobody.
pub fn run(figures: &dyn Figures, rx: Receiver<FourLetterJob>, answer: impl Fn(Origin, String)) {
    while let Ok(job) = rx.recv() {
        let command = String::from_utf8_lossy(&job.command).into_owned();
        debug!(peer = %job.peer, command, "4-letter word");
        let text = if !figures.config().four_letter_words.allows(&command) {
            format!("{command} is not executed because it is not in the whitelist.\n")
        } else if let Some(mask) = job.mask {
            figures.stats().set_trace_mask(mask);
            mask.to_string()
        } else {
            report(figures, &command)
        };
        answer(job.origin, text);
    }
}

/// What ZooKeeper answers most 4-letter words with while it is not serving (an ensemble member
/// between roles, or still looking for a leader).
const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests\n";

fn report(shared: &dyn Figures, command: &str) -> String {
    let needs_server = !matches!(command, "ruok" | "conf" | "envi" | "gtmk" | "isro" | "dirs");
    if needs_server && !shared.mode().1 {
        // ZooKeeper's line, then why, when this member knows (its log cannot be written).
        return match shared.stats().log_failure() {
            Some(reason) => format!("{NOT_SERVING}{reason}; retrying\n"),
            None => NOT_SERVING.to_owned(),
        };
    }
    match command {
        "ruok" => "imok".to_owned(),
        "srvr" => server_stats(shared, false),
        "stat" => server_stats(shared, true),
        "conf" => conf(shared),
        "cons" => connections(shared).into_iter().map(|c| c.line + "\n").collect::<String>() + "\n",
        "crst" => {
            shared.reset_connection_stats();
            "Connection stats reset.\n".to_owned()
        }
        "srst" => {
            shared.stats().reset();
            "Server stats reset.\n".to_owned()
        }
        "dump" => dump(shared),
        "envi" => environment(),
        "mntr" => monitor(shared),
        "wchs" | "wchc" | "wchp" => watches(shared, command),
        "dirs" => dirs(shared),
        "isro" => if shared.read_only() { "ro" } else { "rw" }.to_owned(),
        "gtmk" => shared.stats().trace_mask().to_string(),
        "hash" => String::new(),
        _ => unreachable!("{command} passed is_command"),
    }
}

pub fn version() -> String {
    format!("3.8.0-ferrokeeper-{}, built on unknown", env!("CARGO_PKG_VERSION"))
}

/// One connection as `cons` and `stat` print it.
struct ConnReport {
    session_id: Option<i64>,
    peer: SocketAddr,
    line: String,
}

pub(super) fn epoch_ms(at: Instant) -> u128 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (now.saturating_sub(at.elapsed())).as_millis()
}

fn conn_report(c: &ConnectionFigures, full: bool) -> ConnReport {
    let s = &c.stats;
    let mut line = format!(" /{}[1](queued={},recved={},sent={}", c.peer, c.queued, s.received, s.sent);
    if full && let Some((session_id, timeout_ms)) = c.session {
        let (avg, min) = (s.avg_latency(), s.min_latency());
        line.push_str(&format!(
            ",sid=0x{session_id:x},lop={},est={},to={timeout_ms},lcxid=0x{:x},lzxid=0x{:x},lresp={},llat={},minlat={min},avglat={avg},maxlat={}",
            s.last_op,
            epoch_ms(s.established),
            s.last_cxid,
            s.last_zxid,
            s.last_response.map_or(0, epoch_ms),
            s.last_latency_ms,
            s.max_latency_ms,
        ));
    }
    line.push(')');
    ConnReport { session_id: c.session.map(|(id, _)| id), peer: c.peer, line }
}

fn connections(shared: &dyn Figures) -> Vec<ConnReport> {
    shared.connections().iter().map(|c| conn_report(c, true)).collect()
}

fn server_stats(shared: &dyn Figures, with_clients: bool) -> String {
    let mut out = format!("Zookeeper version: {}\n", version());
    if with_clients {
        out.push_str("Clients:\n");
        for c in shared.connections() {
            out.push_str(&conn_report(&c, false).line);
            out.push('\n');
        }
        out.push('\n');
    }
    let stats = shared.stats();
    let latency = stats.latency();
    let tree = shared.tree();
    out.push_str(&format!(
        "Latency min/avg/max: {}/{}/{}\nReceived: {}\nSent: {}\nConnections: {}\nOutstanding: {}\nZxid: 0x{:x}\nMode: {}\nNode count: {}\n",
        latency.min_ms,
        java_double(latency.avg_ms),
        latency.max_ms,
        stats.packets_received(),
        stats.packets_sent(),
        stats.connections.load(std::sync::atomic::Ordering::Relaxed),
        stats.outstanding(),
        shared.zxid(tree.last_processed_zxid()),
        shared.mode().0,
        zookeeper_node_count(&tree),
    ));
    if shared.mode().0 == "leader" {
        let (last, min, max) = stats.leader.proposal_sizes();
        out.push_str(&format!("Proposal sizes last/min/max: {last}/{min}/{max}\n"));
    }
    if let Some(what) = shared.damaged() {
        // Ours, only while it holds: a damaged member recovering from its ensemble.
        out.push_str(&format!("Recovering from ensemble: not voting until a leader synchronises it ({what})\n"));
    }
    out
}

/// ZooKeeper's node map holds the root under both "" and "/", and its reports count both.
pub(super) fn zookeeper_node_count(tree: &fk_engine::tree::DataTree) -> usize {
    tree.node_count() + 1
}

fn conf(shared: &dyn Figures) -> String {
    let c = shared.config();
    let data_dir = c.data_dir.join("version-2");
    let log_dir = c.data_log_dir().join("version-2");
    format!(
        "clientPort={}\nsecureClientPort=-1\ndataDir={}\ndataDirSize={}\ndataLogDir={}\ndataLogSize={}\ntickTime={}\nmaxClientCnxns={}\nminSessionTimeout={}\nmaxSessionTimeout={}\nclientPortListenBacklog=-1\nserverId={}\n{}",
        shared.client_port(),
        data_dir.display(),
        dir_size(&data_dir),
        log_dir.display(),
        dir_size(&log_dir),
        c.tick_time_ms,
        c.max_client_cnxns,
        c.min_session_timeout_ms,
        c.max_session_timeout_ms,
        if c.is_standalone() { 0 } else { c.my_id.unwrap_or(0) },
        quorum_conf(c),
    )
}

/// The quorum part of `conf` on an ensemble member, as ZooKeeper 3.8 prints it (`membership: ` with its
/// trailing space, and the config text without a final newline).
fn quorum_conf(c: &crate::config::Config) -> String {
    let Some(me) = c.me().filter(|_| !c.is_standalone()) else { return String::new() };
    let peer_type = if c.is_observer() { 1 } else { 0 };
    format!(
        "initLimit={}\nsyncLimit={}\nelectionAlg=3\nelectionPort={}\nquorumPort={}\npeerType={peer_type}\nmembership: \n{}",
        c.init_limit,
        c.sync_limit,
        me.election_port,
        me.quorum_port,
        c.quorum_config_text(),
    )
}

pub(super) fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries.flatten().filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum()
        })
        .unwrap_or(0)
}

fn dirs(shared: &dyn Figures) -> String {
    let c = shared.config();
    format!(
        "datadir_size: {}\nlogdir_size: {}\n",
        dir_size(&c.data_dir.join("version-2")),
        dir_size(&c.data_log_dir().join("version-2"))
    )
}

fn dump(shared: &dyn Figures) -> String {
    let mut out = String::from("SessionTracker dump:\n");
    if let Some(sessions) = shared.sessions() {
        out.push_str(&format!("Session Sets ({})/({}):\n", sessions.expiry_buckets.len(), sessions.count));
        for (at, ids) in sessions.expiry_buckets {
            out.push_str(&format!("{} expire at {}:\n", ids.len(), java_date(at)));
            for id in ids {
                out.push_str(&format!("\t0x{id:x}\n"));
            }
        }
    }
    out.push_str("ephemeral nodes dump:\n");
    {
        let tree = shared.tree();
        let owners: BTreeMap<i64, Vec<String>> =
            tree.all_ephemerals().map(|(id, paths)| (id, paths.iter().map(|p| p.to_string()).collect())).collect();
        out.push_str(&format!("Sessions with Ephemerals ({}):\n", owners.len()));
        for (id, paths) in owners {
            out.push_str(&format!("0x{id:x}:\n"));
            for path in paths {
                out.push_str(&format!("\t{path}\n"));
            }
        }
    }
    // ZooKeeper groups connections by its idle-connection expiry, which we do not have; we list them in
    // one set, in the same per-connection format.
    out.push_str("Connections dump:\n");
    let conns = connections(shared);
    out.push_str(&format!("Connections Sets (1)/({}):\n", conns.len()));
    for c in conns {
        out.push_str(&format!("\tip: /{} sessionId: 0x{:x}\n", c.peer, c.session_id.unwrap_or(0)));
    }
    out
}

/// A date as Java's `Date.toString` prints it, in UTC.
fn java_date(epoch_ms: i64) -> String {
    let secs = epoch_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let (h, m, s) = (secs.rem_euclid(86_400) / 3600, secs.rem_euclid(3600) / 60, secs.rem_euclid(60));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let weekday = WEEKDAYS[days.rem_euclid(7) as usize];
    format!("{weekday} {} {day:02} {h:02}:{m:02}:{s:02} UTC {year}", MONTHS[(month - 1) as usize])
}

fn environment() -> String {
    let lines: String = environment_pairs().into_iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    format!("Environment:\n{lines}")
}

/// `envi`'s entries: ZooKeeper's keys, the JVM's marked `n/a` (there is none) and the rest of the process.
pub(super) fn environment_pairs() -> Vec<(&'static str, String)> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default();
    let uname =
        |f: &str| std::fs::read_to_string(format!("/proc/sys/kernel/{f}")).unwrap_or_default().trim().to_owned();
    let na = || "n/a".to_owned();
    vec![
        ("zookeeper.version", version()),
        ("host.name", host.trim().to_owned()),
        ("java.version", na()),
        ("java.vendor", na()),
        ("java.home", na()),
        ("java.class.path", na()),
        ("java.library.path", na()),
        ("java.io.tmpdir", std::env::temp_dir().display().to_string()),
        ("java.compiler", "<NA>".to_owned()),
        ("os.name", uname("ostype")),
        ("os.arch", std::env::consts::ARCH.to_owned()),
        ("os.version", uname("osrelease")),
        ("user.name", std::env::var("USER").unwrap_or_default()),
        ("user.home", std::env::var("HOME").unwrap_or_default()),
        ("user.dir", cwd),
        ("os.memory.free", na()),
        ("os.memory.max", na()),
        ("os.memory.total", na()),
    ]
}

fn monitor(shared: &dyn Figures) -> String {
    super::metrics::render_mntr(&super::metrics::collect(shared))
}

fn watches(shared: &dyn Figures, command: &str) -> String {
    let figures = shared.watches();
    match command {
        "wchs" => {
            let (sessions, paths, watches) = figures.summary();
            format!("{sessions} connections watching {paths} paths\nTotal watches:{watches}\n")
        }
        "wchc" => grouped(figures.data_watches.into_iter().map(|(s, p)| (format!("0x{s:x}"), p))),
        _ => grouped(figures.data_watches.into_iter().map(|(s, p)| (p, format!("0x{s:x}")))),
    }
}

/// `key`, then each of its values on a tab-indented line, keys and values sorted; a blank line ends it.
fn grouped(pairs: impl Iterator<Item = (String, String)>) -> String {
    let mut groups: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (key, value) in pairs {
        groups.entry(key).or_default().insert(value);
    }
    let mut out = String::new();
    for (key, values) in groups {
        out.push_str(&key);
        out.push('\n');
        for value in values {
            out.push('\t');
            out.push_str(&value);
            out.push('\n');
        }
    }
    out + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_print_like_java() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(1_795_401_292_051), "Mon Nov 23 02:34:52 UTC 2026");
    }

    #[test]
    fn known_commands() {
        assert!(is_command(b"ruok"));
        assert!(!is_command(b"abcd"));
    }
}
