//! fkbench against a real ferrokeeper: short runs give sane results in a stable JSON shape, and a server
//! that goes away is reported clearly with a non-zero exit.

use std::process::Command;

use fk_tests::TestServer;
use serde_json::Value;

fn fkbench(server: &TestServer, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fkbench"))
        .args(["--server", &server.address(), "--quiet", "--json", "--warmup", "0.2", "--duration", "1"])
        .args(args)
        .output()
        .expect("run fkbench")
}

fn json(output: &std::process::Output) -> Value {
    assert!(output.status.success(), "fkbench failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("fkbench --json prints JSON")
}

/// The fields and types every report has (schema 1).
fn assert_schema(report: &Value) {
    assert_eq!(report["schema"], 1);
    for key in ["fkbench_version", "server", "workload"] {
        assert!(report[key].is_string(), "{key}: {report}");
    }
    for key in ["ops", "errors"] {
        assert!(report[key].is_u64(), "{key}: {report}");
    }
    for key in ["elapsed_s", "throughput_ops_s"] {
        assert!(report[key].is_f64(), "{key}: {report}");
    }
    for key in ["min", "p50", "p90", "p99", "p999", "max"] {
        assert!(report["latency_us"][key].is_u64(), "latency_us.{key}: {report}");
    }
    for key in ["connections", "threads", "depth", "value_size", "keys", "duration_s"] {
        assert!(!report["params"][key].is_null(), "params.{key}: {report}");
    }
    for key in ["user_s", "system_s", "per_op_us"] {
        assert!(report["client_cpu"][key].is_f64(), "client_cpu.{key}: {report}");
    }
    assert!(report["series_ops_per_s"].is_array() && report["extra"].is_object());
}

#[test]
fn pipelined_workloads_report_sane_numbers() {
    let server = TestServer::start();
    for workload in ["get", "set", "mixed", "create-delete", "exists", "children", "multi"] {
        let report = json(&fkbench(
            &server,
            &["--workload", workload, "--connections", "4", "--depth", "4", "--keys", "50", "--children", "20"],
        ));
        assert_schema(&report);
        let ops = report["ops"].as_u64().unwrap();
        assert!(ops > 10, "{workload}: {report}");
        assert_eq!(report["errors"], 0, "{workload}: {report}");
        let l = &report["latency_us"];
        assert!(l["p50"].as_u64() <= l["p99"].as_u64() && l["p99"].as_u64() <= l["max"].as_u64(), "{l}");
        let series: u64 = report["series_ops_per_s"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).sum();
        assert_eq!(series, ops, "{workload}: the per-second series adds up to the total");
    }
}

#[test]
fn open_loop_holds_the_target_rate() {
    let server = TestServer::start();
    let report = json(&fkbench(
        &server,
        &["--workload", "get", "--rate", "500", "--connections", "2", "--depth", "100", "--keys", "10"],
    ));
    let throughput = report["throughput_ops_s"].as_f64().unwrap();
    assert!((350.0..=650.0).contains(&throughput), "asked for 500 ops/s, measured {throughput}");
}

#[test]
fn event_workloads_and_bulk_load() {
    let server = TestServer::start();
    let fanout = json(&fkbench(&server, &["--workload", "watch-fanout", "--watchers", "10"]));
    assert!(fanout["ops"].as_u64().unwrap() > 0 && fanout["extra"]["watchers"] == 10.0, "{fanout}");
    let lock = json(&fkbench(&server, &["--workload", "lock", "--connections", "3"]));
    let wakeups = lock["extra"]["wakeups_per_acquisition"].as_f64().unwrap();
    assert!(
        lock["ops"].as_u64().unwrap() > 0 && wakeups <= 1.5,
        "each waiter wakes once per acquisition (no herd): {lock}"
    );
    let storm = json(&fkbench(&server, &["--workload", "connect-storm", "--connections", "2"]));
    assert!(storm["ops"].as_u64().unwrap() > 0, "{storm}");
    let load = json(&fkbench(&server, &["--workload", "load", "--count", "500", "--connections", "3", "--depth", "8"]));
    assert_eq!(load["ops"], 500, "{load}");
    assert!(server.four_letter("mntr").contains("zk_znode_count\t"), "server still answers");
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("run.svg");
    let out = fkbench(&server, &["--workload", "get", "--connections", "1", "--chart", chart.to_str().unwrap()]);
    json(&out);
    assert!(std::fs::read_to_string(&chart).unwrap().starts_with("<svg"));
}

#[test]
fn a_connect_string_spreads_the_connections_over_its_servers() {
    let (a, b) = (TestServer::start(), TestServer::start());
    let received = |s: &TestServer| -> u64 {
        let srvr = s.four_letter("srvr");
        srvr.lines().find_map(|l| l.strip_prefix("Received: ")).and_then(|n| n.trim().parse().ok()).unwrap_or(0)
    };
    let before = (received(&a), received(&b));
    let out = Command::new(env!("CARGO_BIN_EXE_fkbench"))
        .args(["--server", &format!("{},{}", a.address(), b.address()), "--quiet", "--json"])
        .args(["--warmup", "0", "--duration", "0.5", "--workload", "exists", "--connections", "4", "--depth", "4"])
        .output()
        .unwrap();
    let report = json(&out);
    assert!(report["ops"].as_u64().unwrap() > 100, "{report}");
    let after = (received(&a), received(&b));
    assert!(after.0 > before.0 + 100 && after.1 > before.1 + 100, "both servers served: {before:?} -> {after:?}");
}

#[test]
fn a_vanished_server_is_reported_and_exits_non_zero() {
    let mut server = TestServer::start();
    let address = server.address();
    let child = Command::new(env!("CARGO_BIN_EXE_fkbench"))
        .args(["--server", &address, "--quiet", "--workload", "set", "--duration", "10", "--warmup", "0"])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    server.kill();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("fkbench: connection") && stderr.contains(&address), "{stderr}");
    let refused = Command::new(env!("CARGO_BIN_EXE_fkbench")).args(["--server", &address, "--quiet"]).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains(&format!("cannot connect to {address}")));
}

/// `--sasl-digest user:password`: every session authenticates with SASL DIGEST-MD5 first, so a server
/// that requires SASL (`sessionRequireClientSASLAuth=true`) serves the run; without it, it refuses.
#[test]
fn sasl_digest_sessions_against_a_server_that_requires_them() {
    let dir = tempfile::tempdir().unwrap();
    let jaas = dir.path().join("jaas.conf");
    std::fs::write(
        &jaas,
        "Server {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  user_bench=\"pw\";\n};\n",
    )
    .unwrap();
    let server = TestServer::with_config(&format!(
        "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n\
         java.security.auth.login.config={}\nsessionRequireClientSASLAuth=true",
        jaas.display()
    ));
    let report = json(&fkbench(&server, &["--workload", "set", "--connections", "2", "--sasl-digest", "bench:pw"]));
    assert_schema(&report);
    let refused = fkbench(&server, &["--workload", "set", "--connections", "2"]);
    assert!(!refused.status.success(), "an unauthenticated run is refused");
    let wrong = fkbench(&server, &["--workload", "set", "--connections", "2", "--sasl-digest", "bench:nope"]);
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("SASL with"), "{}", String::from_utf8_lossy(&wrong.stderr));
}

/// `--tls-ca` (and `--tls-cert` where the server asks for a certificate): the run goes over TLS, through
/// the same non-blocking engine, and through the blocking sessions of the event workloads; a run that
/// does not trust the server's CA is refused.
#[test]
fn tls_runs_against_a_tls_only_port() {
    let Some(pki) = fk_tests::pki::Pki::make() else { return };
    let secure = fk_tests::java::free_port();
    let server = TestServer::with_config(&pki.server_config(secure));
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_fkbench"))
            .args([
                "--server",
                &format!("127.0.0.1:{secure}"),
                "--quiet",
                "--json",
                "--warmup",
                "0.2",
                "--duration",
                "1",
            ])
            .args(args)
            .output()
            .expect("run fkbench")
    };
    let (ca, alice, other) = (pki.path("ca.pem"), pki.path("alice.pem"), pki.path("other-ca.pem"));
    let (ca, alice, other) = (ca.to_str().unwrap(), alice.to_str().unwrap(), other.to_str().unwrap());
    for workload in ["set", "lock"] {
        let report = json(&run(&["--workload", workload, "--connections", "4", "--tls-ca", ca, "--tls-cert", alice]));
        assert_schema(&report);
        assert!(report["ops"].as_u64().unwrap() > 0 && report["errors"] == 0, "{workload}: {report}");
    }
    let untrusted = run(&["--workload", "set", "--connections", "2", "--tls-ca", other, "--tls-cert", alice]);
    assert!(!untrusted.status.success(), "a server signed by an untrusted CA is refused");
    assert_eq!(server.four_letter("ruok"), "imok");
}
