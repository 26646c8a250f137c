//! Fail closed on operational features ferrokeeper does not provide: a key that asks for one stops start-up
//! with the key and what to do, instead of starting a server that silently lacks it (no audit trail in the
//! form that was asked for, no metrics where alerts expect them). Keys are compared without the
//! `zookeeper.` prefix.
//!
//! Metrics providers: ZooKeeper's Prometheus provider is served ([`crate::ops::prometheus`]); a custom
//! provider class cannot be loaded here, and is refused.

/// ZooKeeper's metrics providers that are provided: two that export nothing, and Prometheus.
const PROVIDED_METRICS_PROVIDERS: &[&str] = &[
    "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider",
    "org.apache.zookeeper.metrics.impl.NullMetricsProvider",
    super::PROMETHEUS_PROVIDER,
];

/// ZooKeeper's audit logger, whose lines ferrokeeper writes ([`crate::ops::audit`]).
const AUDIT_LOGGER: &str = "org.apache.zookeeper.audit.Slf4jAuditLogger";

/// Why `key=value` cannot be honoured, if it cannot.
pub fn refusal(key: &str, value: &str) -> Option<&'static str> {
    match key {
        "audit.impl.class" if value.trim() != AUDIT_LOGGER => Some(
            "a custom audit logger class cannot be loaded here; ferrokeeper writes ZooKeeper's own audit lines \
             (org.apache.zookeeper.audit.Slf4jAuditLogger) to zookeeper.auditlog.file: remove the key",
        ),
        "metricsProvider.className" if !PROVIDED_METRICS_PROVIDERS.contains(&value.trim()) => Some(
            "this metrics provider is not available; ZooKeeper's PrometheusMetricsProvider is (its /metrics), \
             and the same figures are in the mntr 4-letter word",
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_asked_for_are_refused_and_off_switches_accepted() {
        let custom = "com.example.StatsdMetricsProvider";
        for (key, value) in [("audit.impl.class", "com.example.Kafka"), ("metricsProvider.className", custom)] {
            assert!(refusal(key, value).is_some(), "{key}={value}");
        }
        for (key, value) in [
            ("readonlymode.enabled", "true"),
            ("audit.enable", "true"),
            ("audit.impl.class", AUDIT_LOGGER),
            ("metricsProvider.className", "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider"),
            ("metricsProvider.className", super::super::PROMETHEUS_PROVIDER),
            ("metricsProvider.httpPort", "7000"),
        ] {
            assert_eq!(refusal(key, value), None, "{key}={value}");
        }
    }
}
