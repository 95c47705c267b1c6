//! Small statistics both binaries report about times (detector inference
//! and commit times, pipeline stages, webserver broadcast latency), kept
//! two ways for two readers:
//!
//! * [`SampleWindow`] → [`Percentiles`]: the recent past, in milliseconds,
//!   for people (`/api/metrics`, the dashboard, the exit summary);
//! * [`Histogram`]: every sample since start in fixed buckets, in seconds,
//!   for Prometheus, which computes quantiles itself and can add
//!   histograms from several detectors (percentiles cannot be added).
//!
//! [`Timings`] keeps both from one stream of samples.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// A latency summary in milliseconds; all zero when nothing was measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of the finite values in `samples`.
    pub fn of(samples: impl Iterator<Item = f64>) -> Self {
        let mut sorted: Vec<f64> = samples.filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return Self::default();
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let rank = |q: f64| sorted[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
        Self { count: n as u64, p50: rank(0.50), p95: rank(0.95), p99: rank(0.99), max: sorted[n - 1] }
    }
}

/// The most recent `capacity` samples.
#[derive(Debug, Clone)]
pub struct SampleWindow {
    samples: VecDeque<f64>,
    capacity: usize,
}

impl SampleWindow {
    pub fn new(capacity: usize) -> Self {
        Self { samples: VecDeque::with_capacity(capacity), capacity: capacity.max(1) }
    }

    pub fn push(&mut self, sample: f64) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    pub fn percentiles(&self) -> Percentiles {
        Percentiles::of(self.samples.iter().copied())
    }
}

/// Upper bounds of the [`Histogram`] buckets, in seconds: 0.1 ms to 10 s,
/// about 2.5× apart, covering an fsync, a frame's analysis and a network
/// hiccup alike. Fixed, so histograms from any process can be added.
pub const BUCKET_BOUNDS_SECONDS: [f64; 16] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Every sample since start, counted in the buckets of
/// [`BUCKET_BOUNDS_SECONDS`]: a Prometheus histogram's data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Samples per bucket (not cumulative); the last entry counts those
    /// above every bound. Empty until the first sample.
    pub counts: Vec<u64>,
    /// The sum of every sample, in seconds.
    pub sum_seconds: f64,
}

impl Histogram {
    /// Counts one sample of `ms` milliseconds; negative or non-finite
    /// samples are not times and are ignored.
    pub fn observe_ms(&mut self, ms: f64) {
        if !ms.is_finite() || ms < 0.0 {
            return;
        }
        let seconds = ms / 1000.0;
        self.counts.resize(BUCKET_BOUNDS_SECONDS.len() + 1, 0);
        let bucket = BUCKET_BOUNDS_SECONDS.partition_point(|&bound| bound < seconds);
        self.counts[bucket] += 1;
        self.sum_seconds += seconds;
    }

    /// How many samples were counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// `(upper bound, samples at or below it)` per bucket, `+Inf` last, as
    /// Prometheus writes them. `None` for counts that do not fit the
    /// bounds (a peer of another build): reported as nothing, not as
    /// wrong buckets.
    pub fn cumulative(&self) -> Option<Vec<(f64, u64)>> {
        let counts: &[u64] = if self.counts.is_empty() { &[0; BUCKET_BOUNDS_SECONDS.len() + 1] } else { &self.counts };
        if counts.len() != BUCKET_BOUNDS_SECONDS.len() + 1 {
            return None;
        }
        let bounds = BUCKET_BOUNDS_SECONDS.iter().copied().chain([f64::INFINITY]);
        let mut total = 0u64;
        Some(
            bounds
                .zip(counts)
                .map(|(bound, n)| {
                    total = total.saturating_add(*n);
                    (bound, total)
                })
                .collect(),
        )
    }
}

/// One stream of times kept both ways: the recent window and the histogram
/// since start.
#[derive(Debug, Clone)]
pub struct Timings {
    window: SampleWindow,
    histogram: Histogram,
}

impl Timings {
    /// Percentiles over the latest `window` samples.
    pub fn new(window: usize) -> Self {
        Self { window: SampleWindow::new(window), histogram: Histogram::default() }
    }

    pub fn push_ms(&mut self, ms: f64) {
        self.window.push(ms);
        self.histogram.observe_ms(ms);
    }

    pub fn percentiles(&self) -> Percentiles {
        self.window.percentiles()
    }

    pub fn histogram(&self) -> Histogram {
        self.histogram.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let p = Percentiles::of((1..=100).map(f64::from));
        assert_eq!((p.count, p.p50, p.p95, p.p99, p.max), (100, 50.0, 95.0, 99.0, 100.0));
        assert_eq!(Percentiles::of(std::iter::empty()), Percentiles::default());
        assert_eq!(Percentiles::of([7.0, f64::NAN].into_iter()).p99, 7.0);
    }

    #[test]
    fn window_keeps_only_the_latest() {
        let mut w = SampleWindow::new(3);
        for v in [100.0, 1.0, 2.0, 3.0] {
            w.push(v);
        }
        assert_eq!(w.percentiles().max, 3.0);
        assert_eq!(w.percentiles().count, 3);
    }

    #[test]
    fn histogram_buckets_are_cumulative_with_inf_last() {
        let mut h = Histogram::default();
        assert_eq!(h.cumulative().map(|b| b.last().copied()), Some(Some((f64::INFINITY, 0))));
        for ms in [0.05, 0.1, 3.0, 20_000.0, f64::NAN, -1.0] {
            h.observe_ms(ms);
        }
        assert_eq!(h.count(), 4);
        let buckets = h.cumulative().expect("fits");
        assert_eq!(buckets.len(), BUCKET_BOUNDS_SECONDS.len() + 1);
        assert_eq!(buckets[0], (0.0001, 2), "0.05 ms and exactly 0.1 ms are in the first bucket");
        assert_eq!(buckets[5], (0.005, 3), "3 ms is at or below 5 ms");
        assert_eq!(buckets[15], (10.0, 3));
        assert_eq!(buckets[16], (f64::INFINITY, 4), "20 s is above every bound");
        assert!((h.sum_seconds - 20.00315).abs() < 1e-9);
        let foreign = Histogram { counts: vec![1, 2, 3], sum_seconds: 1.0 };
        assert_eq!(foreign.cumulative(), None);
    }

    #[test]
    fn timings_keep_the_window_and_the_histogram() {
        let mut t = Timings::new(2);
        for ms in [1.0, 2.0, 3.0] {
            t.push_ms(ms);
        }
        assert_eq!(t.percentiles().count, 2, "the window forgets");
        assert_eq!(t.histogram().count(), 3, "the histogram does not");
    }
}
