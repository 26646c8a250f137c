//! `/metrics` over HTTP, as ZooKeeper's `PrometheusMetricsProvider` serves it (`metricsProvider.httpHost`,
//! `metricsProvider.httpPort`): the Prometheus text format (version 0.0.4), every metric under
//! ZooKeeper's name with `# HELP` (the name, as ZooKeeper writes it) and `# TYPE`; per-namespace
//! metrics labelled `key`; summaries as `name{quantile="…"}`, `name_count` and `name_sum`.
//!
//! The figures are gathered when scraped, from the same counters `mntr` reads ([`super::metrics`]), so
//! serving them costs the request path nothing; [`super::http`] serves the requests.

use std::fmt::Write as _;

use super::figures::Figures;
use super::http::{Method, Reply, Request};
use super::metrics::{Kind, Metric};

/// The content type of the text format Prometheus scrapes.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics` with the figures gathered now; anything else 404 (ZooKeeper's Jetty context serves
/// nothing else).
pub fn handle(figures: &dyn Figures, request: Request<'_>) -> Reply {
    if request.method == Method::Get && request.path == "/metrics" {
        Reply::ok(CONTENT_TYPE, render(&super::metrics::collect(figures)))
    } else {
        Reply::not_found()
    }
}

/// The text format: a `# HELP`/`# TYPE` header per metric name, then its samples.
pub fn render(metrics: &[Metric]) -> String {
    let mut out = String::new();
    let mut previous: Option<&str> = None;
    for metric in metrics {
        let kind = match &metric.kind {
            Kind::Text(_) => continue,
            Kind::Gauge(_) => "gauge",
            Kind::Counter(_) => "counter",
            Kind::Summary(_) => "summary",
        };
        let name = metric.name.as_str();
        if previous != Some(name) {
            let _ = writeln!(out, "# HELP {name} {name}\n# TYPE {name} {kind}");
            previous = Some(name);
        }
        let key = metric.key.as_deref().map(|k| format!("key=\"{}\"", escape(k)));
        match &metric.kind {
            Kind::Gauge(v) | Kind::Counter(v) => sample(&mut out, name, "", key.as_deref(), *v),
            Kind::Summary(s) => {
                for (q, v) in &s.quantiles {
                    let labels = [key.clone(), Some(format!("quantile=\"{q}\""))];
                    let labels: Vec<String> = labels.into_iter().flatten().collect();
                    sample(&mut out, name, "", Some(&labels.join(",")), *v);
                }
                sample(&mut out, name, "_count", key.as_deref(), s.count as f64);
                sample(&mut out, name, "_sum", key.as_deref(), s.sum);
            }
            Kind::Text(_) => unreachable!("skipped above"),
        }
    }
    out
}

fn sample(out: &mut String, name: &str, suffix: &str, labels: Option<&str>, value: f64) {
    let labels = labels.map(|l| format!("{{{l}}}")).unwrap_or_default();
    let _ = writeln!(out, "{name}{suffix}{labels} {}", number(value));
}

/// A sample value as the format spells it (Go's float syntax).
fn number(value: f64) -> String {
    match value {
        v if v.is_nan() => "NaN".into(),
        v if v == f64::INFINITY => "+Inf".into(),
        v if v == f64::NEG_INFINITY => "-Inf".into(),
        v => v.to_string(),
    }
}

/// A label value: backslash, double quote and line feed escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::summary::SummaryFigures;

    #[test]
    fn the_text_format_with_zookeepers_names_types_and_labels() {
        let metrics = vec![
            Metric::text("version", "3.8.4-ferrokeeper"),
            Metric::gauge("znode_count", 5),
            Metric::counter("snap_count", 2),
            Metric::summary(
                "fsynctime",
                SummaryFigures {
                    count: 3,
                    sum: 1.5,
                    min: 0.25,
                    max: 1.0,
                    quantiles: vec![(0.5, 0.25)],
                    percentiles: vec![],
                },
            ),
            Metric::summary(
                "sync_processor_batch_size",
                SummaryFigures { quantiles: vec![(0.5, f64::NAN)], ..Default::default() },
            ),
        ];
        let mut metrics = metrics;
        for (key, value) in [("app", 10.0), ("we\"ird", 2.0)] {
            let mut gauge = Metric::gauge("quota_count_limit_per_namespace", value);
            gauge.key = Some(key.into());
            metrics.push(gauge);
        }
        let expected = "\
# HELP znode_count znode_count
# TYPE znode_count gauge
znode_count 5
# HELP snap_count snap_count
# TYPE snap_count counter
snap_count 2
# HELP fsynctime fsynctime
# TYPE fsynctime summary
fsynctime{quantile=\"0.5\"} 0.25
fsynctime_count 3
fsynctime_sum 1.5
# HELP sync_processor_batch_size sync_processor_batch_size
# TYPE sync_processor_batch_size summary
sync_processor_batch_size{quantile=\"0.5\"} NaN
sync_processor_batch_size_count 0
sync_processor_batch_size_sum 0
# HELP quota_count_limit_per_namespace quota_count_limit_per_namespace
# TYPE quota_count_limit_per_namespace gauge
quota_count_limit_per_namespace{key=\"app\"} 10
quota_count_limit_per_namespace{key=\"we\\\"ird\"} 2
";
        assert_eq!(render(&metrics), expected);
    }
}
