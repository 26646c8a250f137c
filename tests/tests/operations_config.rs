//! Fail closed on operational features not provided yet: the real binary refuses a zoo.cfg that turns on
//! read-only mode, the audit log or a custom metrics provider, naming the file, line and key, and never
//! serves;
//! an explicit `admin.enableServer=true` (in nearly every zoo.cfg) starts with a warning.

use fk_tests::TestServer;

#[test]
fn operational_features_asked_for_stop_start_up_naming_file_line_and_key() {
    let cases = [
        ("readonlymode.enabled=true", "readonlymode.enabled: read-only mode is not supported yet"),
        ("audit.enable=true", "audit.enable: the audit log is not supported yet"),
        (
            "metricsProvider.className=com.example.StatsdMetricsProvider",
            "metricsProvider.className: this metrics provider is not available",
        ),
    ];
    for (line, expected) in cases {
        let (code, log) = TestServer::expect_start_failure(|_| {}, line);
        assert_eq!(code, Some(1), "{line}: exit status\n{log}");
        assert!(log.contains("zoo.cfg:8: ") && log.contains(expected), "{line}: {log}");
        assert!(!log.contains("serving clients"), "{line}: it served\n{log}");
    }
}

#[test]
fn off_switches_start_and_the_admin_server_is_warned_about() {
    let server = TestServer::with_config(
        "readonlymode.enabled=false\naudit.enable=false\nadmin.enableServer=true\n\
         metricsProvider.className=org.apache.zookeeper.metrics.impl.DefaultMetricsProvider",
    );
    assert_eq!(server.four_letter("ruok"), "imok");
    let log = server.log_text();
    assert!(
        log.contains("admin.enableServer: the AdminServer (HTTP on admin.serverPort) is not supported yet"),
        "{log}"
    );
}
