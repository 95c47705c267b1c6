//! Small statistics both binaries report: a window of recent samples and its
//! percentiles (detector inference times, webserver broadcast latency).

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
}
