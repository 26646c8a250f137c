//! The result of a run: a human table, a stable JSON document, and an optional SVG chart.
//!
//! JSON schema (version 1; fields are only ever added):
//! `{schema, fkbench_version, server, workload, params{…}, ops, errors, elapsed_s, throughput_ops_s,
//!   latency_us{min, mean, p50, p90, p99, p999, max}, series_ops_per_s[…],
//!   client_cpu{user_s, system_s, per_op_us}, extra{…}}`

use std::collections::BTreeMap;
use std::path::Path;

use hdrhistogram::Histogram;
use plotters::prelude::*;
use serde::Serialize;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct Params {
    pub connections: usize,
    pub threads: usize,
    pub depth: usize,
    pub rate: Option<f64>,
    pub value_size: usize,
    pub keys: usize,
    pub read_ratio: f64,
    pub warmup_s: f64,
    pub duration_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub min: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Latency {
        Latency {
            min: h.min(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Cpu {
    pub user_s: f64,
    pub system_s: f64,
    pub per_op_us: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: u32,
    pub fkbench_version: String,
    pub server: String,
    pub workload: String,
    pub params: Params,
    pub ops: u64,
    pub errors: u64,
    pub elapsed_s: f64,
    pub throughput_ops_s: f64,
    pub latency_us: Latency,
    pub series_ops_per_s: Vec<u64>,
    pub client_cpu: Cpu,
    pub extra: BTreeMap<String, f64>,
}

impl Report {
    pub fn table(&self) -> String {
        let l = &self.latency_us;
        let mut out = format!(
            "workload      {}\nserver        {}\nops           {} ({} errors) in {:.2} s\nthroughput    {:.0} ops/s\nlatency (µs)  p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  mean {:.1}\nclient cpu    {:.2} s user + {:.2} s sys = {:.2} µs/op\n",
            self.workload,
            self.server,
            self.ops,
            self.errors,
            self.elapsed_s,
            self.throughput_ops_s,
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            l.mean,
            self.client_cpu.user_s,
            self.client_cpu.system_s,
            self.client_cpu.per_op_us,
        );
        for (k, v) in &self.extra {
            out.push_str(&format!("{k:<14}{v:.2}\n"));
        }
        out
    }
}

/// Throughput over time (top) and the latency distribution by percentile (bottom).
pub fn chart(report: &Report, histogram: &Histogram<u64>, path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (900, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(350);
    let max_ops = report.series_ops_per_s.iter().copied().max().unwrap_or(1).max(1);
    let seconds = report.series_ops_per_s.len().max(1);
    let mut throughput = ChartBuilder::on(&top)
        .caption(format!("{} — throughput (ops/s)", report.workload), ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0..seconds, 0..max_ops + max_ops / 10)?;
    throughput.configure_mesh().x_desc("second").draw()?;
    throughput.draw_series(LineSeries::new(report.series_ops_per_s.iter().enumerate().map(|(i, n)| (i, *n)), &BLUE))?;
    let quantiles = [0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 0.9999, 1.0];
    let values: Vec<u64> = quantiles.iter().map(|q| histogram.value_at_quantile(*q)).collect();
    let max_latency = values.iter().copied().max().unwrap_or(1).max(1);
    let mut latency = ChartBuilder::on(&bottom)
        .caption("latency by percentile (µs)", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0..quantiles.len(), 0..max_latency + max_latency / 10)?;
    let labels = ["p50", "p75", "p90", "p95", "p99", "p99.9", "p99.99", "max"];
    latency
        .configure_mesh()
        .x_labels(quantiles.len())
        .x_label_formatter(&|i| labels.get(*i).unwrap_or(&"").to_string())
        .draw()?;
    latency.draw_series(LineSeries::new(values.iter().enumerate().map(|(i, v)| (i, *v)), &RED))?;
    root.present()?;
    Ok(())
}

/// CPU time this process has used so far: (user, system) seconds.
pub fn cpu_time() -> (f64, f64) {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we pass.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(usage.ru_utime), secs(usage.ru_stime))
}
