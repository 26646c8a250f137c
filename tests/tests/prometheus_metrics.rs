//! `/metrics` as ZooKeeper's PrometheusMetricsProvider serves it, scraped over real HTTP and read by a
//! Prometheus text-format parser: ZooKeeper's names with their types are there, and they move with the
//! load a real client (`zookeeper-client`) puts on a standalone server and on a three-member ensemble.

use std::collections::HashMap;
use std::time::Duration;

use fk_tests::TestServer;
use fk_tests::ensemble::{EnsembleSpec, Implementation, TestEnsemble};
use fk_tests::zk;
use prometheus_parse::{Scrape, Value};

const PROVIDER: &str = "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
                        metricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort=0";

/// The address the server says it serves `/metrics` at (it was given port 0).
fn metrics_address(log: &str) -> String {
    let at = log.split("serving Prometheus metrics at http://").nth(1).expect("the endpoint is logged");
    at.split('/').next().expect("host:port").to_owned()
}

/// The samples of one scrape by name (labelled ones as `name{labels}`), typed as declared.
struct Metrics {
    values: HashMap<String, Value>,
}

impl Metrics {
    fn scrape(address: &str) -> Metrics {
        let fk_tests::HttpResponse { status, content_type, body } = fk_tests::http_request(address, "GET", "/metrics");
        assert_eq!(status, 200);
        assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
        let scrape = Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text format");
        for (name, help) in &scrape.docs {
            assert_eq!(help, name, "HELP is the name, as ZooKeeper writes it");
        }
        let values = scrape
            .samples
            .into_iter()
            .map(|s| {
                let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let name = if labels.is_empty() { s.metric } else { format!("{}{{{}}}", s.metric, labels.join(",")) };
                (name, s.value)
            })
            .collect();
        Metrics { values }
    }

    fn gauge(&self, name: &str) -> f64 {
        match self.values.get(name) {
            Some(Value::Gauge(v)) => *v,
            other => panic!("{name} is not a gauge: {other:?}"),
        }
    }

    fn counter(&self, name: &str) -> f64 {
        match self.values.get(name) {
            Some(Value::Counter(v)) => *v,
            other => panic!("{name} is not a counter: {other:?}"),
        }
    }

    /// A summary's (count, quantiles).
    fn summary(&self, name: &str) -> (f64, Vec<f64>) {
        let Some(Value::Summary(quantiles)) = self.values.get(name) else {
            panic!("{name} is not a summary: {:?}", self.values.get(name))
        };
        let Some(Value::Untyped(count)) = self.values.get(&format!("{name}_count")) else {
            panic!("{name}_count is missing")
        };
        assert!(self.values.contains_key(&format!("{name}_sum")), "{name}_sum is missing");
        (*count, quantiles.iter().map(|q| q.quantile).collect())
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

async fn connect(address: &str) -> zk::Client {
    zk::Client::connector().with_session_timeout(Duration::from_secs(10)).connect(address).await.expect("connect")
}

#[test]
fn a_standalone_server_serves_zookeepers_metrics_and_they_move_with_load() {
    let server = TestServer::with_config(PROVIDER);
    let address = metrics_address(&server.log_text());
    let before = Metrics::scrape(&address);
    assert_eq!(before.gauge("znode_count"), 5.0);
    for gauge in [
        "num_alive_connections",
        "outstanding_requests",
        "watch_count",
        "ephemerals_count",
        "approximate_data_size",
        "global_sessions",
        "open_file_descriptor_count",
        "max_file_descriptor_count",
        "packets_received",
        "avg_latency",
        "uptime",
    ] {
        before.gauge(gauge);
    }
    for counter in
        ["snap_count", "diff_count", "proposal_count", "commit_count", "looking_count", "digest_mismatches_count"]
    {
        before.counter(counter);
    }
    for (summary, quantiles) in [
        ("readlatency", vec![0.5, 0.9, 0.99]),
        ("updatelatency", vec![0.5, 0.9, 0.99]),
        ("fsynctime", vec![0.5]),
        ("sync_processor_batch_size", vec![0.5]),
        ("snapshottime", vec![0.5]),
        ("election_time", vec![0.5]),
        ("quorum_ack_latency", vec![0.5]),
    ] {
        assert_eq!(before.summary(summary).1, quantiles, "{summary}");
    }
    assert!(
        !before.values.contains_key("version") && !before.values.contains_key("server_state"),
        "text is mntr's only"
    );
    assert!(!before.values.contains_key("quorum_size"), "a standalone server has no quorum");
    // Ours, beside ZooKeeper's: the log device, each shard's backlog, reply bytes waiting.
    assert!([0.0, 1.0].contains(&before.gauge("fk_txn_log_io_uring")));
    assert!(before.gauge("fk_shard_queue_depth{key=shard0}") >= 0.0);
    assert!(before.gauge("fk_reply_bytes_queued") >= 0.0);

    runtime().block_on(async {
        let c = connect(&server.address()).await;
        c.create("/load", b"", &zk::persistent()).await.unwrap();
        for i in 0..50 {
            c.create(&format!("/load/n{i}"), b"data", &zk::persistent()).await.unwrap();
            c.get_data(&format!("/load/n{i}")).await.unwrap();
        }
        let after = Metrics::scrape(&address);
        assert_eq!(after.gauge("znode_count"), 5.0 + 51.0);
        assert_eq!(after.gauge("global_sessions"), 1.0);
        assert_eq!(after.gauge("num_alive_connections"), 1.0);
        assert!(after.summary("updatelatency").0 >= before.summary("updatelatency").0 + 51.0);
        assert!(after.summary("readlatency").0 >= before.summary("readlatency").0 + 50.0);
        assert!(after.summary("fsynctime").0 > before.summary("fsynctime").0);
        assert!(after.gauge("approximate_data_size") > before.gauge("approximate_data_size"));
    });

    // ZooKeeper's Jetty context serves /metrics only.
    assert_eq!(fk_tests::http_request(&address, "GET", "/").status, 404);
}

#[test]
fn ensemble_members_serve_the_quorum_figures() {
    let spec = EnsembleSpec::uniform(Implementation::Ferrokeeper, 3, 0).with_ticks(200, 10, 5).with_extra(PROVIDER);
    let mut ensemble = TestEnsemble::start(spec).unwrap_or_else(|e| panic!("cannot start the ensemble: {e}"));
    let leader = ensemble.wait_for_leader(Duration::from_secs(60));
    let follower = (leader + 1) % 3;
    let address = |ensemble: &TestEnsemble, i: usize| metrics_address(&ensemble.log_text(i));
    runtime().block_on(async {
        let c = connect(&ensemble.client_address(follower).to_string()).await;
        for i in 0..20 {
            c.create(&format!("/e{i}"), b"x", &zk::persistent()).await.unwrap();
        }
    });
    let at_leader = Metrics::scrape(&address(&ensemble, leader));
    assert_eq!(at_leader.gauge("quorum_size"), 3.0);
    assert_eq!(at_leader.gauge("learners"), 2.0);
    assert_eq!(at_leader.gauge("synced_followers"), 2.0);
    assert!(at_leader.gauge("leader_uptime") > 0.0);
    assert!(at_leader.counter("proposal_count") >= 20.0 && at_leader.counter("commit_count") >= 20.0);
    assert_eq!(at_leader.counter("diff_count") + at_leader.counter("snap_count"), 2.0, "two learners synchronised");
    assert!(at_leader.counter("looking_count") >= 1.0);
    assert!(at_leader.summary("election_time").0 >= 1.0);
    assert!(at_leader.summary("quorum_ack_latency").0 >= 20.0, "every txn proposed was acked by a quorum");
    let at_follower = Metrics::scrape(&address(&ensemble, follower));
    assert_eq!(at_follower.gauge("quorum_size"), 3.0);
    assert!(!at_follower.values.contains_key("learners"), "leader gauges are the leader's");
    assert!(at_follower.summary("fsynctime").0 >= 1.0, "followers log the txns too");

    // A follower restarted behind the leader is synchronised again; the leader counts it.
    let synced_before = at_leader.counter("diff_count") + at_leader.counter("snap_count");
    ensemble.kill(follower);
    runtime().block_on(async {
        let c = connect(&ensemble.client_address(leader).to_string()).await;
        c.create("/while-away", b"x", &zk::persistent()).await.unwrap();
    });
    ensemble.restart(follower);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = Metrics::scrape(&address(&ensemble, leader));
        if now.counter("diff_count") + now.counter("snap_count") > synced_before && now.gauge("synced_followers") == 2.0
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the returning follower was not counted as synchronised");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The endpoint's port taken: start-up stops naming the keys.
#[test]
fn a_port_in_use_stops_start_up_naming_the_keys() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let config = PROVIDER.replace("httpPort=0", &format!("httpPort={port}"));
    let (code, log) = TestServer::expect_start_failure(|_| {}, &config);
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains(&format!(
            "cannot serve /metrics on metricsProvider.httpHost=127.0.0.1 metricsProvider.httpPort={port}"
        )),
        "{log}"
    );
    drop(taken);
}
