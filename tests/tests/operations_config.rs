//! Fail closed on operational features not provided yet: the real binary refuses a zoo.cfg that turns on
//! a custom audit logger or a custom metrics provider, naming the file, line and key, and never
//! serves.

use fk_tests::TestServer;

#[test]
fn operational_features_asked_for_stop_start_up_naming_file_line_and_key() {
    let cases = [
        (
            "audit.impl.class=com.example.KafkaAuditLogger",
            "audit.impl.class: a custom audit logger class cannot be loaded here",
        ),
        (
            "metricsProvider.className=com.example.StatsdMetricsProvider",
            "metricsProvider.className: this metrics provider is not available",
        ),
    ];
    for (line, expected) in cases {
        TestServer::assert_start_refused(line, expected);
    }
}

#[test]
fn off_switches_start() {
    let server = TestServer::with_config(
        "readonlymode.enabled=false\naudit.enable=false\n\
         metricsProvider.className=org.apache.zookeeper.metrics.impl.DefaultMetricsProvider",
    );
    assert_eq!(server.four_letter("ruok"), "imok");
}
