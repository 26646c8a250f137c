//! ZooKeeper's AdminServer: the 4-letter words' information as JSON over HTTP, at
//! `http://<admin.serverAddress>:<admin.serverPort><admin.commandURL>/<command>` (0.0.0.0, 8080,
//! `/commands`; on unless `admin.enableServer=false`, as in ZooKeeper 3.8).
//!
//! Every ZooKeeper 3.8 command answers under each of its names (`server_stats` and `srvr`, ...) with
//! ZooKeeper's JSON keys (`tests/fixtures/zk38-admin-commands.json` holds the keys of a real 3.8 run),
//! plus `command` (the primary name) and `error` (null, or why it failed). As in 3.8, a command that
//! needs a serving server — `ruok` among them — answers `error: "This ZooKeeper instance is not
//! currently serving requests"` on a member that is not serving, so `ruok` is true only while the
//! member serves; `monitor`, `environment`, `system_properties`, `get_trace_mask`, `set_trace_mask` and
//! `zabstate` always answer. Arguments come as query parameters (`set_trace_mask?traceMask=N`). The
//! listing at the command URL itself links every primary name, as ZooKeeper's does.
//!
//! ZooKeeper 3.9's `snapshot` and `restore`, which need authentication and move whole databases, are in
//! [`super::admin_data`].
//!
//! Where ferrokeeper has no such figure the answer says so in ZooKeeper's own terms: no JVM (`n/a` in
//! `environment`), no TLS connections (`secure_connections: []`), no response-size tracking (-1, the
//! value ZooKeeper reports before its first response).

use std::collections::BTreeMap;
use std::time::UNIX_EPOCH;

use serde_json::{Map, Value, json};

use super::admin_data::DataCommands;
use super::figures::{ConnectionFigures, Figures};
use super::fourlw::{dir_size, environment_pairs, epoch_ms, version, zookeeper_node_count};
use super::http::{Method, Reply, Request};
use super::metrics::{self, MntrValue};
use crate::config::{PeerRole, ServerSpec};

pub const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

/// What a command adds to its response, given the figures and the request's arguments.
type Run = fn(&dyn Figures, Args<'_>, Out<'_>);

/// One command: its names (the primary first), whether it needs a serving server, and what it adds.
struct Command {
    names: &'static [&'static str],
    server_required: bool,
    run: Run,
}

const COMMANDS: &[Command] = &[
    Command { names: &["connection_stat_reset", "crst"], server_required: true, run: connection_stat_reset },
    Command { names: &["configuration", "conf", "config"], server_required: true, run: configuration },
    Command { names: &["connections", "cons"], server_required: true, run: connections },
    Command { names: &["hash"], server_required: true, run: hash },
    Command { names: &["dirs"], server_required: true, run: dirs },
    Command { names: &["dump"], server_required: true, run: dump },
    Command { names: &["environment", "env", "envi"], server_required: false, run: environment },
    Command { names: &["get_trace_mask", "gtmk"], server_required: false, run: get_trace_mask },
    Command { names: &["initial_configuration", "icfg"], server_required: true, run: initial_configuration },
    Command { names: &["is_read_only", "isro"], server_required: true, run: is_read_only },
    Command { names: &["last_snapshot", "lsnp"], server_required: true, run: last_snapshot },
    Command { names: &["leader", "lead"], server_required: true, run: leader },
    Command { names: &["monitor", "mntr"], server_required: false, run: monitor },
    Command { names: &["observer_connection_stat_reset", "orst"], server_required: true, run: nothing },
    Command { names: &["ruok"], server_required: true, run: nothing },
    Command { names: &["set_trace_mask", "stmk"], server_required: false, run: set_trace_mask },
    Command { names: &["server_stats", "srvr"], server_required: true, run: server_stats },
    Command { names: &["stats", "stat"], server_required: true, run: stats },
    Command { names: &["stat_reset", "srst"], server_required: true, run: stat_reset },
    Command { names: &["observers", "obsr"], server_required: true, run: observers },
    Command { names: &["system_properties", "sysp"], server_required: false, run: system_properties },
    Command { names: &["voting_view"], server_required: true, run: voting_view },
    Command { names: &["watches", "wchc"], server_required: true, run: watches },
    Command { names: &["watches_by_path", "wchp"], server_required: true, run: watches_by_path },
    Command { names: &["watch_summary", "wchs"], server_required: true, run: watch_summary },
    Command { names: &["zabstate"], server_required: false, run: zabstate },
];

/// Answers a request under `command_url` (`/commands`): GET only, as Jetty's servlet; the listing at the
/// URL itself, a command's JSON below it.
pub fn handle(figures: &dyn Figures, command_url: &str, data: &DataCommands, request: Request<'_>) -> Reply {
    let command_url = command_url.trim_end_matches('/');
    if let Some(name) = request.path.strip_prefix(command_url).and_then(|rest| rest.strip_prefix('/'))
        && DataCommands::serves(name)
    {
        return data.handle(figures, name, request);
    }
    match request.path.strip_prefix(command_url) {
        Some(_) if request.method != Method::Get => Reply::method_not_allowed(),
        Some("" | "/") => Reply::ok("text/html", listing(command_url)),
        Some(rest) if rest.starts_with('/') => {
            let response = run_command(figures, &rest[1..], &parse_query(request.query));
            Reply::ok("application/json", super::jackson::to_string(&response))
        }
        _ => Reply::not_found(),
    }
}

/// Every primary name, linked, in ZooKeeper's order (sorted).
fn listing(command_url: &str) -> String {
    let mut names: Vec<&str> = COMMANDS.iter().map(|c| c.names[0]).collect();
    names.extend([super::admin_data::SNAPSHOT[0], super::admin_data::RESTORE[0]]);
    names.sort_unstable();
    names.iter().map(|n| format!("<a href=\"{command_url}/{n}\">{n}</a>\n<br/>\n")).collect()
}

fn parse_query(query: &str) -> BTreeMap<String, String> {
    query.split('&').filter_map(|pair| pair.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

/// ZooKeeper's `Commands.runCommand`: the response of `name`, or why there is none.
pub fn run_command(figures: &dyn Figures, name: &str, args: &BTreeMap<String, String>) -> Value {
    let mut response = Map::new();
    let Some(command) = COMMANDS.iter().find(|c| c.names.contains(&name)) else {
        response.insert("command".into(), json!(name));
        response.insert("error".into(), json!(format!("Unknown command: {name}")));
        return Value::Object(response);
    };
    if command.server_required && !figures.mode().1 {
        response.insert("command".into(), json!(name));
        response.insert("error".into(), json!(NOT_SERVING));
        return Value::Object(response);
    }
    response.insert("command".into(), json!(command.names[0]));
    response.insert("error".into(), Value::Null);
    (command.run)(figures, args, &mut response);
    Value::Object(response)
}

type Args<'a> = &'a BTreeMap<String, String>;
type Out<'a> = &'a mut Map<String, Value>;

fn put(out: Out<'_>, key: &str, value: Value) {
    out.insert(key.to_owned(), value);
}

fn nothing(_: &dyn Figures, _: Args<'_>, _: Out<'_>) {}

fn connection_stat_reset(figures: &dyn Figures, _: Args<'_>, _: Out<'_>) {
    figures.reset_connection_stats();
}

fn stat_reset(figures: &dyn Figures, _: Args<'_>, _: Out<'_>) {
    figures.stats().reset();
}

fn configuration(figures: &dyn Figures, _: Args<'_>, out: Out<'_>) {
    let c = figures.config();
    put(out, "client_port", json!(figures.client_port()));
    put(out, "data_dir", json!(c.data_dir.join("version-2").display().to_string()));
    put(out, "data_log_dir", json!(c.data_log_dir().join("version-2").display().to_string()));
    put(out, "tick_time", json!(c.tick_time_ms));
    put(out, "max_client_cnxns", json!(c.max_client_cnxns));
    put(out, "min_session_timeout", json!(c.min_session_timeout_ms));
    put(out, "max_session_timeout", json!(c.max_session_timeout_ms));
    put(out, "server_id", json!(if c.is_standalone() { 0 } else { c.my_id.unwrap_or(0) }));
    put(out, "client_port_listen_backlog", json!(-1));
}

/// ZooKeeper's `ServerCnxn.getConnectionInfo`: brief for `stats`, full (with the session's figures)
/// for `connections`.
fn connection(c: &ConnectionFigures, brief: bool) -> Value {
    let s = &c.stats;
    let mut info = Map::new();
    info.insert("remote_socket_address".into(), json!(c.peer.to_string()));
    // Java NIO's OP_READ: the connection is read from.
    info.insert("interest_ops".into(), json!(1));
    info.insert("outstanding_requests".into(), json!(c.queued));
    info.insert("packets_received".into(), json!(s.received));
    info.insert("packets_sent".into(), json!(s.sent));
    if !brief {
        let (session_id, timeout) = c.session.unwrap_or((0, 0));
        info.insert("session_id".into(), json!(session_id));
        info.insert("last_operation".into(), json!(s.last_op));
        info.insert("established".into(), json!(epoch_ms(s.established) as u64));
        info.insert("session_timeout".into(), json!(timeout));
        info.insert("last_cxid".into(), json!(s.last_cxid));
        info.insert("last_zxid".into(), json!(s.last_zxid));
        info.insert("last_response_time".into(), json!(s.last_response.map_or(0, |t| epoch_ms(t) as u64)));
        info.insert("last_latency".into(), json!(s.last_latency_ms));
        info.insert("min_latency".into(), json!(s.min_latency()));
        info.insert("avg_latency".into(), json!(s.avg_latency()));
        info.insert("max_latency".into(), json!(s.max_latency_ms));
    }
    Value::Object(info)
}

fn connections(figures: &dyn Figures, _: Args<'_>, out: Out<'_>) {
    let list: Vec<Value> = figures.connections().iter().map(|c| connection(c, false)).collect();
    put(out, "connections", json!(list));
    put(out, "secure_connections", json!([]));
}

/// The digests of recent txns, which ZooKeeper keeps only with `digest.enabled`; the 4-letter `hash`
/// prints none here either.
fn hash(_: &dyn Figures, _: Args<'_>, out: Out<'_>) {
    put(out, "digests", json!([]));
}

fn dirs(figures: &dyn Figures, _: Args<'_>, out: Out<'_>) {
    let c = figures.config();
    put(out, "datadir_size", json!(dir_size(&c.data_dir.join("version-2"))));
    put(out, "logdir_size", json!(dir_size(&c.data_log_dir().join("version-2"))));
}

fn dump(figures: &dyn Figures, _: Args<'_>, out: Out<'_>) {
    let mut expiry = Map::new();
    if let Some(sessions) = figures.sessions() {
        for (at, ids) in sessions.expiry_buckets {
            expiry.insert(at.to_string(), json!(ids));
        }
    }
    let ephemerals: Map<String, Value> = figures
        .tree()
        .all_ephemerals()
        .map(|(id, paths)| (id.to_string(), json!(paths.iter().map(|p| p.to_string()).collect::<Vec<_>>())))
        .collect();
    put(out, "expiry_time_to_session_ids", Value::Object(expiry));
    put(out, "session_id_to_ephemeral_paths", Value::Object(ephemerals));
}

fn environment(_: &dyn Figures, _: Args<'_>, out: Out<'_>) {
    for (key, value) in environment_pairs() {
        put(out, key, json!(value));
    }
}

fn get_trace_mask(figures: &dyn Figures, _: Args<'_>, out: Out<'_>) {
    put(out, "tracemask", json!(figures.stats().trace_mask()));
}

fn set_trace_mask(figures: &dyn Figures, args: Args<'_>, out: Out<'_>) {
    let Some(text) = args.get("traceMask") else {
        put(out, "error", json!("setTraceMask requires long traceMask argument"));
        return;
    };
    match text.parse::<i64>() {
        Ok(mask) => {
            figures.stats().set_trace_mask(mask);
            put(out, "tracemask", json!(mask));
        }
        Err(_) => put(out, "error", json!(format!("setTraceMask requires long traceMask argument, got {text}"))),
    }
}

fn initial_configuration(figures: &dyn Figures, _: Args<'_>, out: Out<'_>) {
    put(out, "initial_configuration", json!(figures.config().initial_text.clone().unwrap_or_default()));
}

fn is_read_only(figures: &dyn Figures, _: Args<'_>, out: Out<'_>) {
    put(out, "read_only", json!(figures.read_only()));
}

/// The newest snapshot: its zxid in hex (no `0x`, as `Long.toHexString`) and its modification time in
/// seconds; `ffffffffffffffff` and -1 when there is none.
fn last_snapshot(figures: &dyn Figures, _: Args<'_>, out: Out<'_>) {
    let dir = figures.config().data_dir.join(fk_engine::files::VERSION_DIR);
    let newest = fk_engine::files::list(&dir, fk_engine::files::SNAPSHOT_PREFIX).ok().and_then(|l| l.last().cloned());
    let (zxid, timestamp) = match newest {
        Some((zxid, path)) => {
            let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
            let secs = modified.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(-1, |d| d.as_secs() as i64);
            (zxid, secs)
        }
        None => (-1, -1),
    };
    put(out, "zxid", json!(format!("{:x}", zxid as u64)));
    put(out, "timestamp", json!(timestamp));
}

fn leader(figures: &dyn Figures, _: Args<'_>, out: Out<'_>) {
    let c = figures.config();
    if c.is_standalone() {
        put(out, "error", json!("server is not initialized"));
        return;
    }
    let leader = figures.leader_id();
    put(out, "is_leader", json!(figures.mode().0 == "leader"));
    put(out, "leader_id", json!(leader.map_or(-1, |id| id as i64)));
    let host = leader.and_then(|id| c.peer(id)).map(|p| p.host.clone()).unwrap_or_default();
    put(out, "leader_ip", json!(host));
}

fn monitor(figures: &dyn Figures, _: Args<'_>, out: Out<'_>) {
    for (name, value) in metrics::mntr_entries(&metrics::collect(figures)) {
        let value = match value {
            MntrValue::Long(v) => json!(v),
            MntrValue::Double(v) => json!(v),
            MntrValue::Text(t) => json!(t),
        };
        put(out, name.strip_prefix("zk_").unwrap_or(&name), value);
    }
}

/// ZooKeeper's `ServerStats` object: the figures `srvr` prints, and the ones it has no line for.
fn server_stats_object(figures: &dyn Figures) -> Value {
    let stats = figures.stats();
    let latency = stats.latency();
    let c = figures.config();
    let tree = figures.tree();
    json!({
        "packets_sent": stats.packets_sent(),
        "packets_received": stats.packets_received(),
        "fsync_threshold_exceed_count": stats.fsync_threshold_exceeded(),
        "client_response_stats": client_response(),
        "data_dir_size": dir_size(&c.data_dir.join("version-2")),
        "log_dir_size": dir_size(&c.data_log_dir().join("version-2")),
        "provider_null": false,
        "server_state": figures.mode().0,
        "last_processed_zxid": figures.zxid(tree.last_processed_zxid()),
        "outstanding_requests": stats.outstanding(),
        "avg_latency": latency.avg_ms,
        "max_latency": latency.max_ms,
        "min_latency": latency.min_ms,
        "num_alive_client_connections": stats.connections.load(std::sync::atomic::Ordering::Relaxed),
        "auth_failed_count": 0,
        "non_mtlsremote_conn_count": 0,
        "non_mtlslocal_conn_count": 0,
        "uptime": stats.started.elapsed().as_millis() as u64,
    })
}

/// Response sizes are not tracked: -1 is what ZooKeeper reports before its first response.
fn client_response() -> Value {
    json!({ "last_buffer_size": -1, "min_buffer_size": -1, "max_buffer_size": -1 })
}

fn server_stats(figures: &dyn Figures, _: Args<'_>, out: Out<'_>) {
    put(out, "version", json!(version()));
    put(out, "read_only", json!(figures.read_only()));
    put(out, "server_stats", server_stats_object(figures));
    put(out, "client_response", client_response());
    put(out, "node_count", json!(zookeeper_node_count(&figures.tree())));
}

fn stats(figures: &dyn Figures, args: Args<'_>, out: Out<'_>) {
    server_stats(figures, args, out);
    let list: Vec<Value> = figures.connections().iter().map(|c| connection(c, true)).collect();
    put(out, "connections", json!(list));
    put(out, "secure_connections", json!([]));
}

/// Observers connected to this leader; their per-link details are not gathered yet, so the list is
/// empty and the count is the one `mntr` reports.
fn observers(figures: &dyn Figures, _: Args<'_>, out: Out<'_>) {
    let synced = if figures.mode().0 == "leader" {
        figures.stats().leader.synced_observers.load(std::sync::atomic::Ordering::Relaxed)
    } else {
        0
    };
    put(out, "synced_observers", json!(synced));
    put(out, "observers", json!([]));
}

/// No JVM: the process's own properties, under the names Java gives them.
fn system_properties(_: &dyn Figures, _: Args<'_>, out: Out<'_>) {
    for (key, value) in environment_pairs() {
        if !value.is_empty() && value != "n/a" {
            put(out, key, json!(value));
        }
    }
    put(out, "file.separator", json!("/"));
    put(out, "line.separator", json!("\n"));
    put(out, "path.separator", json!(":"));
}

fn voting_view(figures: &dyn Figures, _: Args<'_>, out: Out<'_>) {
    let c = figures.config();
    let mut view = Map::new();
    if !c.is_standalone() {
        for id in c.voter_ids() {
            let Some(member) = c.peer(id) else { continue };
            view.insert(
                id.to_string(),
                json!({
                    "serverAddresses": [format!("{}:{}", member.host, member.quorum_port)],
                    "electionAddresses": [format!("{}:{}", member.host, member.election_port)],
                    "clientAddress": client_address(member),
                    "learnerType": "participant",
                }),
            );
        }
    }
    put(out, "current_config", Value::Object(view));
}

/// A server line's client address as ZooKeeper prints it (`""` when the line has none).
fn client_address(member: &ServerSpec) -> String {
    match &member.client_addr {
        Some((host, port)) => format!("{}:{port}", host.as_deref().unwrap_or("0.0.0.0")),
        None => String::new(),
    }
}

fn watches(figures: &dyn Figures, _: Args<'_>, out: Out<'_>) {
    let mut by_session: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (session, path) in figures.watches().data_watches {
        by_session.entry(session.to_string()).or_default().push(path);
    }
    by_session.values_mut().for_each(|paths| paths.sort());
    put(out, "session_id_to_watched_paths", json!(by_session));
}

fn watches_by_path(figures: &dyn Figures, _: Args<'_>, out: Out<'_>) {
    let mut by_path: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (session, path) in figures.watches().data_watches {
        by_path.entry(path).or_default().push(session);
    }
    by_path.values_mut().for_each(|ids| ids.sort_unstable());
    put(out, "path_to_session_ids", json!(by_path));
}

fn watch_summary(figures: &dyn Figures, _: Args<'_>, out: Out<'_>) {
    let (sessions, paths, watches) = figures.watches().summary();
    put(out, "num_connections", json!(sessions));
    put(out, "num_paths", json!(paths));
    put(out, "num_total_watches", json!(watches));
}

/// ZooKeeper's ZAB phase: `election` while looking, `broadcast` while serving; between the two this
/// member does not tell discovery from synchronization and says `synchronization`.
fn zabstate(figures: &dyn Figures, _: Args<'_>, out: Out<'_>) {
    let c = figures.config();
    let Some(me) = c.me().filter(|_| !c.is_standalone()) else {
        put(out, "voting", json!(false));
        put(out, "zabstate", json!(""));
        return;
    };
    let (mode, serving) = figures.mode();
    let zxid = figures.tree().last_processed_zxid();
    put(out, "myid", json!(me.id));
    put(out, "is_leader", json!(mode == "leader"));
    put(out, "quorum_address", json!(format!("{}:{}", me.host, me.quorum_port)));
    put(out, "election_address", json!(format!("{}:{}", me.host, me.election_port)));
    let client = c.client_address().map(|a| format!("{}:{}", a.host, a.port)).unwrap_or_default();
    put(out, "client_address", json!(client));
    put(out, "voting", json!(me.role == PeerRole::Participant));
    put(out, "last_zxid", json!(format!("0x{zxid:x}")));
    put(out, "zab_epoch", json!(zxid >> 32));
    put(out, "zab_counter", json!(zxid & 0xffff_ffff));
    let state = match (mode, serving) {
        ("looking", _) => "election",
        (_, true) => "broadcast",
        (_, false) => "synchronization",
    };
    put(out, "zabstate", json!(state));
}
