//! The figures `mntr` reports and `/metrics` exports, as one list: ZooKeeper 3.8's metric names (the
//! `ServerMetrics` and the gauges its servers register), kinds and labels, so that a dashboard built on
//! either of ZooKeeper's outputs reads ours. `mntr` prints each as `zk_<name>\t<value>` (a labelled one
//! as `zk_<label>_<name>`, a summary as its avg/min/max/cnt/sum lines); the Prometheus text format (see
//! [`super::prometheus`]) prints the same names with their types, leaving out the text-valued ones.

use super::figures::Figures;
use super::stats::RequestKind;
use super::summary::SummaryFigures;

/// What a metric measures, as ZooKeeper's metrics providers type it.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A value sampled when reported.
    Gauge(f64),
    /// A count that only grows (until `srst` or a restart).
    Counter(f64),
    /// A distribution: count, sum, extremes and quantiles of what was observed.
    Summary(SummaryFigures),
    /// Text (the version, the server state): `mntr` only.
    Text(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// ZooKeeper's name, without `mntr`'s `zk_` prefix (ours start with `fk_` and keep it there too).
    pub name: String,
    /// A per-namespace metric's label (ZooKeeper's `key`): the top-level znode it is about.
    pub key: Option<String>,
    pub kind: Kind,
}

impl Metric {
    fn new(name: &str, kind: Kind) -> Metric {
        Metric { name: name.to_owned(), key: None, kind }
    }

    pub fn gauge(name: &str, value: impl Into<f64>) -> Metric {
        Metric::new(name, Kind::Gauge(value.into()))
    }

    pub fn counter(name: &str, value: impl Into<f64>) -> Metric {
        Metric::new(name, Kind::Counter(value.into()))
    }

    pub fn text(name: &str, value: impl Into<String>) -> Metric {
        Metric::new(name, Kind::Text(value.into()))
    }

    pub fn summary(name: &str, figures: SummaryFigures) -> Metric {
        Metric::new(name, Kind::Summary(figures))
    }

    fn keyed(mut self, key: &str) -> Metric {
        self.key = Some(key.to_owned());
        self
    }
}

/// Every metric a server reports now, in `mntr`'s order.
pub fn collect(shared: &dyn Figures) -> Vec<Metric> {
    let stats = shared.stats();
    let latency = stats.latency();
    let watches = shared.watches();
    let sessions = shared.sessions().map_or(0, |s| s.count);
    let tree = shared.tree();
    let (mode, _) = shared.mode();
    let leader = &stats.leader;
    let count = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed) as f64;
    let mut metrics = vec![
        Metric::text("version", super::fourlw::version()),
        Metric::text("server_state", mode),
        Metric::gauge("avg_latency", latency.avg_ms),
        Metric::gauge("max_latency", latency.max_ms as f64),
        Metric::gauge("min_latency", latency.min_ms as f64),
        Metric::gauge("packets_received", stats.packets_received() as f64),
        Metric::gauge("packets_sent", stats.packets_sent() as f64),
        Metric::gauge("num_alive_connections", stats.connections.load(std::sync::atomic::Ordering::Relaxed) as f64),
        Metric::gauge("outstanding_requests", stats.outstanding() as f64),
        Metric::gauge("znode_count", super::fourlw::zookeeper_node_count(&tree) as f64),
        Metric::gauge("watch_count", watches.entries as f64),
        Metric::gauge("watched_paths", watches.paths as f64),
        Metric::gauge("ephemerals_count", tree.ephemeral_count() as f64),
        Metric::gauge("approximate_data_size", tree.approximate_data_size() as f64),
        Metric::gauge("open_file_descriptor_count", open_file_descriptors() as f64),
        Metric::gauge("max_file_descriptor_count", max_file_descriptors() as f64),
        Metric::gauge("global_sessions", sessions as f64),
        Metric::gauge("local_sessions", 0),
        Metric::gauge("uptime", stats.started.elapsed().as_millis() as f64),
        Metric::gauge("last_processed_zxid", tree.last_processed_zxid() as f64),
        Metric::summary("readlatency", stats.request_latency(RequestKind::Read)),
        Metric::summary("updatelatency", stats.request_latency(RequestKind::Update)),
        Metric::summary("fsynctime", stats.fsync_time()),
        Metric::summary("sync_processor_batch_size", stats.log_batch_size()),
        Metric::summary("snapshottime", stats.snapshot_time()),
        Metric::summary("election_time", stats.election_time()),
        Metric::summary("quorum_ack_latency", stats.quorum_ack_latency()),
        Metric::counter("looking_count", stats.looking_count() as f64),
        Metric::counter("snap_count", count(&leader.snap_syncs)),
        Metric::counter("diff_count", count(&leader.diff_syncs)),
        Metric::counter("proposal_count", count(&leader.proposals)),
        Metric::counter("commit_count", count(&leader.commits)),
        Metric::counter("digest_mismatches_count", stats.digest_mismatches() as f64),
        // Ours: appends to the txn log that failed (a full disk, EIO) since start.
        Metric::counter("fk_txn_log_write_failures", stats.log_write_failures() as f64),
    ];
    // Ours: whether the txn log goes through io_uring (1) or pwrite (0); each shard's channel backlog;
    // reply and watch-event bytes waiting to be sent, over every client connection.
    if let Some(device) = stats.txn_log_device() {
        metrics.push(Metric::gauge("fk_txn_log_io_uring", if device.starts_with("io_uring") { 1 } else { 0 }));
    }
    for (shard, depth) in shared.shard_queue_depths().into_iter().enumerate() {
        metrics.push(Metric::gauge("fk_shard_queue_depth", depth as f64).keyed(&format!("shard{shard}")));
    }
    let queued: usize = shared.connections().iter().map(|c| c.output_bytes).sum();
    metrics.push(Metric::gauge("fk_reply_bytes_queued", queued as f64));
    if let Some(dropped) = shared.audit_events_dropped() {
        // Ours: audit events the writer could not keep up with (audit.enable=true only).
        metrics.push(Metric::counter("fk_audit_events_dropped", dropped as f64));
    }
    if !shared.config().is_standalone() {
        metrics.push(Metric::gauge("quorum_size", shared.config().voter_ids().len() as f64));
        // Ours: 1 while this member, found damaged at start-up, waits for a leader to synchronise it (it
        // does not vote meanwhile; fk_engine::damage).
        metrics.push(Metric::gauge("fk_recovering_from_ensemble", u8::from(shared.damaged().is_some())));
    }
    if mode == "leader" {
        let (last, min, max) = leader.proposal_sizes();
        metrics.extend([
            Metric::gauge("leader_uptime", leader.uptime_ms() as f64),
            // followers is the 3.4 name of learners; monitoring scripts still ask for it.
            Metric::gauge("followers", count(&leader.learners)),
            Metric::gauge("learners", count(&leader.learners)),
            Metric::gauge("synced_followers", count(&leader.synced_followers)),
            Metric::gauge("synced_non_voting_followers", 0),
            Metric::gauge("synced_observers", count(&leader.synced_observers)),
            Metric::gauge("pending_syncs", count(&leader.pending_syncs)),
            Metric::gauge("last_proposal_size", last as f64),
            Metric::gauge("max_proposal_size", max as f64),
            Metric::gauge("min_proposal_size", min as f64),
        ]);
    }
    metrics.extend(quota_metrics(&tree));
    metrics
}

/// ZooKeeper 3.8's quota gauges (`QuotaMetricsUtils`), one per top-level namespace that has a quota
/// node; and the writes refused for a hard limit, per namespace that had one refused.
fn quota_metrics(tree: &fk_engine::tree::DataTree) -> Vec<Metric> {
    let quotas = tree.quota_metrics();
    type Pick = fn(&fk_engine::tree::quota::NamespaceQuota) -> Option<i64>;
    let figures: [(&str, Pick); 4] = [
        ("quota_count_limit_per_namespace", |q| q.count_limit),
        ("quota_bytes_limit_per_namespace", |q| q.bytes_limit),
        ("quota_count_usage_per_namespace", |q| q.count_usage),
        ("quota_bytes_usage_per_namespace", |q| q.bytes_usage),
    ];
    let mut metrics = Vec::new();
    for (name, pick) in figures {
        for (namespace, quota) in &quotas {
            if let Some(value) = pick(quota) {
                metrics.push(Metric::gauge(name, value as f64).keyed(namespace));
            }
        }
    }
    for (namespace, refused) in tree.quota_exceeded_counts() {
        metrics.push(Metric::counter("quota_exceeded_error_per_namespace", refused as f64).keyed(&namespace));
    }
    metrics
}

/// A value as `mntr` reports it: ZooKeeper's longs, doubles and strings.
#[derive(Debug, Clone, PartialEq)]
pub enum MntrValue {
    Long(i64),
    Double(f64),
    Text(String),
}

/// The `mntr` entries: `zk_<name>` (a labelled metric `zk_<label>_<name>`; ours keep their `fk_`), a
/// summary as its `avg_`, `min_`, `max_`, `cnt_` and `sum_` entries.
pub fn mntr_entries(metrics: &[Metric]) -> Vec<(String, MntrValue)> {
    let mut out = Vec::new();
    for metric in metrics {
        let name = |prefix: &str| {
            if metric.name.starts_with("fk_") {
                return metric.key.as_ref().map_or_else(|| metric.name.clone(), |k| format!("{}_{k}", metric.name));
            }
            let label = metric.key.as_ref().map(|k| format!("{k}_")).unwrap_or_default();
            format!("zk_{prefix}{label}{}", metric.name)
        };
        match &metric.kind {
            Kind::Text(text) => out.push((name(""), MntrValue::Text(text.clone()))),
            // avg_latency is a double in ZooKeeper; every other gauge and counter is a long.
            Kind::Gauge(v) if metric.name == "avg_latency" => out.push((name(""), MntrValue::Double(*v))),
            Kind::Gauge(v) | Kind::Counter(v) => out.push((name(""), MntrValue::Long(*v as i64))),
            Kind::Summary(s) => out.extend(
                [
                    (name("avg_"), MntrValue::Double(s.avg())),
                    (name("min_"), MntrValue::Long(s.min as i64)),
                    (name("max_"), MntrValue::Long(s.max as i64)),
                    (name("cnt_"), MntrValue::Long(s.count as i64)),
                    (name("sum_"), MntrValue::Long(s.sum as i64)),
                ]
                .into_iter()
                .chain(s.percentiles.iter().map(|(p, v)| (name(&format!("{p}_")), MntrValue::Long(*v as i64)))),
            ),
        }
    }
    out
}

/// The `mntr` answer: `<entry>\t<value>` per line, numbers as ZooKeeper prints them (doubles with a
/// decimal point).
pub fn render_mntr(metrics: &[Metric]) -> String {
    let mut out = String::new();
    for (name, value) in mntr_entries(metrics) {
        let value = match value {
            MntrValue::Long(v) => v.to_string(),
            MntrValue::Double(v) => java_double(v),
            MntrValue::Text(t) => t,
        };
        out.push_str(&format!("{name}\t{value}\n"));
    }
    out
}

/// Formats like Java's `Double.toString` for the values we print (always a decimal point).
pub fn java_double(value: f64) -> String {
    if value.fract() == 0.0 { format!("{value:.1}") } else { format!("{value}") }
}

fn open_file_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn max_file_descriptors() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we pass and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 { limit.rlim_cur } else { 0 }
}
