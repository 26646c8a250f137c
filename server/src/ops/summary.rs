//! A distribution of observations, as ZooKeeper's `Summary` metrics report one: count, sum, minimum and
//! maximum since start (what `mntr` prints), and quantiles over a sliding window (what its Prometheus
//! provider exports).
//!
//! The window is the Prometheus Java client's default, which ZooKeeper's provider keeps: the last ten
//! minutes, in five age buckets of two minutes. An observation goes into the bucket of its two minutes;
//! a report merges the buckets still in the window, so it covers between eight and ten minutes, as the
//! client's does. Quantiles come from HDR histograms (two significant digits: within 1 % of the true
//! value) rather than the client's CKMS stream, which allows 5 % rank error.
//!
//! Recording takes a mutex that only a report ever competes for: per-request summaries are kept one
//! per shard ([`figures_of`] merges them), so no two request threads share one.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// How much a summary reports, as ZooKeeper's `DetailLevel`: the quantiles its Prometheus provider
/// exports, and the percentiles its default provider prints in `mntr` (`zk_p50_<name>`, ...).
pub struct Detail {
    pub quantiles: &'static [f64],
    pub percentiles: &'static [(&'static str, f64)],
}

pub const BASIC: Detail = Detail { quantiles: &[0.5], percentiles: &[] };
pub const ADVANCED: Detail = Detail {
    quantiles: &[0.5, 0.9, 0.99],
    percentiles: &[("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999)],
};

const AGE_BUCKETS: usize = 5;
const BUCKET_AGE: Duration = Duration::from_secs(120);
/// The largest value a histogram tells apart from larger ones (an hour, in microseconds).
const HIGHEST_TRACKABLE: u64 = 3_600_000_000;

/// What a summary reports, in its unit.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SummaryFigures {
    pub count: u64,
    pub sum: f64,
    /// 0 before the first observation (as ZooKeeper's mntr prints it).
    pub min: f64,
    pub max: f64,
    /// (quantile, value) over the window; a value is NaN while the window is empty (as the Prometheus
    /// client exports it).
    pub quantiles: Vec<(f64, f64)>,
    /// `mntr`'s (name, value) percentiles over the window, for ADVANCED summaries; 0 while it is empty.
    pub percentiles: Vec<(&'static str, f64)>,
}

impl SummaryFigures {
    pub fn avg(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.sum / self.count as f64 }
    }
}

pub struct Summary {
    /// Reported values are recorded values times this (µs recorded, ms reported: 0.001).
    scale: f64,
    detail: &'static Detail,
    inner: parking_lot::Mutex<Inner>,
}

struct Inner {
    count: u64,
    sum: u64,
    min: u64,
    max: u64,
    /// One histogram per age bucket, used as a ring.
    window: Vec<Histogram<u64>>,
    /// The bucket of the current two minutes, and when they began.
    current: usize,
    current_since: Instant,
}

impl std::fmt::Debug for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Summary").field("figures", &self.figures()).finish()
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_TRACKABLE, 2).expect("valid histogram bounds")
}

impl Summary {
    pub fn new(scale: f64, detail: &'static Detail) -> Summary {
        Summary {
            scale,
            detail,
            inner: parking_lot::Mutex::new(Inner {
                count: 0,
                sum: 0,
                min: u64::MAX,
                max: 0,
                window: (0..AGE_BUCKETS).map(|_| histogram()).collect(),
                current: 0,
                current_since: Instant::now(),
            }),
        }
    }

    pub fn observe(&self, value: u64) {
        self.observe_many(value, 1, Instant::now());
    }

    /// Records `value`, observed at `now` (a caller that has the time saves reading the clock again).
    pub fn observe_at(&self, value: u64, now: Instant) {
        self.observe_many(value, 1, now);
    }

    /// Records `value` `times` times at once (a batch of txns that took as long), observed at `now`.
    pub fn observe_many(&self, value: u64, times: u64, now: Instant) {
        if times == 0 {
            return;
        }
        let mut inner = self.inner.lock();
        inner.rotate(now);
        inner.count += times;
        inner.sum = inner.sum.saturating_add(value.saturating_mul(times));
        inner.min = inner.min.min(value);
        inner.max = inner.max.max(value);
        let current = inner.current;
        inner.window[current].saturating_record_n(value, times);
    }

    pub fn figures(&self) -> SummaryFigures {
        figures_of(&[self], Instant::now())
    }
}

/// The figures of several summaries of one quantity (one per shard) taken together, as of `now`.
pub fn figures_of(parts: &[&Summary], now: Instant) -> SummaryFigures {
    let Some(first) = parts.first() else { return SummaryFigures::default() };
    let (mut count, mut sum, mut min, mut max) = (0u64, 0u64, u64::MAX, 0u64);
    let mut merged = histogram();
    for part in parts {
        let mut inner = part.inner.lock();
        inner.rotate(now);
        count += inner.count;
        sum = sum.saturating_add(inner.sum);
        min = min.min(inner.min);
        max = max.max(inner.max);
        for bucket in &inner.window {
            merged.add(bucket).expect("histograms of the same bounds merge");
        }
    }
    let scale = first.scale;
    let at = |q: f64| merged.value_at_quantile(q) as f64 * scale;
    let quantiles =
        first.detail.quantiles.iter().map(|&q| (q, if merged.is_empty() { f64::NAN } else { at(q) })).collect();
    let percentiles = first.detail.percentiles.iter().map(|&(name, q)| (name, at(q))).collect();
    SummaryFigures {
        count,
        sum: sum as f64 * scale,
        min: if count == 0 { 0.0 } else { min as f64 * scale },
        max: max as f64 * scale,
        quantiles,
        percentiles,
    }
}

impl Inner {
    /// Moves to the bucket of `now`'s two minutes, clearing each bucket it moves into (it held the
    /// observations of ten minutes ago).
    fn rotate(&mut self, now: Instant) {
        let mut moved = 0;
        while now.duration_since(self.current_since) >= BUCKET_AGE {
            self.current_since += BUCKET_AGE;
            moved += 1;
            if moved <= AGE_BUCKETS {
                self.current = (self.current + 1) % AGE_BUCKETS;
                let current = self.current;
                self.window[current].reset();
            } else {
                // Idle for longer than the window: every bucket is clear; catch up with the clock.
                let behind = now.duration_since(self.current_since).as_secs() / BUCKET_AGE.as_secs();
                self.current_since += BUCKET_AGE * behind as u32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_extremes_and_quantiles_in_the_reported_unit() {
        let summary = Summary::new(0.001, &ADVANCED);
        assert_eq!(summary.figures().count, 0);
        assert!(summary.figures().quantiles.iter().all(|(_, v)| v.is_nan()));
        for us in 1..=1000 {
            summary.observe(us * 1000);
        }
        let f = summary.figures();
        assert_eq!((f.count, f.min, f.max), (1000, 1.0, 1000.0));
        assert!((f.sum - 500_500.0).abs() < 1e-6 && (f.avg() - 500.5).abs() < 1e-9);
        for ((q, value), expected) in f.quantiles.iter().zip([500.0, 900.0, 990.0]) {
            assert!((value - expected).abs() <= expected * 0.01, "q{q}: {value}, expected {expected}");
        }
        let names: Vec<&str> = f.percentiles.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, ["p50", "p95", "p99", "p999"]);
        for ((name, value), expected) in f.percentiles.iter().zip([500.0, 950.0, 990.0, 999.0]) {
            assert!((value - expected).abs() <= expected * 0.01, "{name}: {value}, expected {expected}");
        }
        assert!(Summary::new(1.0, &BASIC).figures().percentiles.is_empty(), "mntr percentiles are ADVANCED only");
    }

    #[test]
    fn quantiles_cover_the_last_eight_to_ten_minutes() {
        let summary = Summary::new(1.0, &BASIC);
        let start = Instant::now();
        let at = |minutes: u64| start + Duration::from_secs(minutes * 60);
        summary.observe_at(100, at(0));
        summary.observe_at(100, at(0));
        summary.observe_at(5, at(7));
        let report = |minutes| figures_of(&[&summary], at(minutes));
        assert_eq!(report(9).quantiles, vec![(0.5, 100.0)], "all three are in the window");
        // Past ten minutes the first two have left; the count and extremes stay.
        let f = report(11);
        assert_eq!((f.quantiles, f.count, f.max), (vec![(0.5, 5.0)], 3, 100.0));
        assert!(report(60).quantiles[0].1.is_nan(), "an idle window is empty");
        summary.observe_at(7, at(61));
        assert_eq!(report(62).quantiles, vec![(0.5, 7.0)]);
    }

    #[test]
    fn parts_report_together() {
        let parts = [Summary::new(1.0, &BASIC), Summary::new(1.0, &BASIC)];
        for v in [1, 2, 3] {
            parts[0].observe(v);
        }
        for v in [100, 200] {
            parts[1].observe(v);
        }
        let f = figures_of(&[&parts[0], &parts[1]], Instant::now());
        assert_eq!((f.count, f.sum, f.min, f.max, f.quantiles), (5, 306.0, 1.0, 200.0, vec![(0.5, 3.0)]));
    }
}
