//! What the webserver measures, for `/api/metrics` and `/metrics`.
//!
//! Hot-path counters are atomics. Broadcast latency is sampled once per event
//! (commit time → handed to every client's queue), not once per client.
//! Process CPU and memory come from `/proc/self` on Linux, sampled by a
//! background task so a metrics request never waits.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shared::Timestamp;
use shared::stats::{Histogram, Percentiles, Timings};

/// Window over which events per second are computed.
const RATE_WINDOW: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct Metrics {
    pub started: Instant,
    /// `started` as wall-clock time, for `process_start_time_seconds`.
    started_at: Timestamp,
    pub messages_sent: AtomicU64,
    pub events_broadcast: AtomicU64,
    /// Socket announcements the database contradicted (forged, or another
    /// data directory's detector): never broadcast.
    pub rejected_announcements: AtomicU64,
    broadcast_latency: Mutex<Timings>,
    recent_broadcasts: Mutex<VecDeque<Instant>>,
    /// CPU % of one core × 100 (fixed point), and resident bytes.
    cpu_centi_percent: AtomicU64,
    rss_bytes: AtomicU64,
    /// The data directory's bytes and retention state, sampled (walking the
    /// snapshots is too slow for every scrape); `None` until the first.
    storage: Mutex<Option<StorageMetrics>>,
}

/// What the data directory holds and what retention has deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct StorageMetrics {
    pub database_bytes: u64,
    pub snapshots_bytes: u64,
    pub logs_bytes: u64,
    /// The lowest kept `seq`; 0 when nothing is kept.
    pub oldest_seq: i64,
    /// When the oldest kept event started (Unix seconds); 0 when none.
    pub oldest_event_unix_seconds: f64,
    pub deleted_events: u64,
    pub deleted_bytes: u64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            started_at: Timestamp::now(),
            messages_sent: AtomicU64::new(0),
            events_broadcast: AtomicU64::new(0),
            rejected_announcements: AtomicU64::new(0),
            broadcast_latency: Mutex::new(Timings::new(4096)),
            recent_broadcasts: Mutex::new(VecDeque::new()),
            storage: Mutex::new(None),
            cpu_centi_percent: AtomicU64::new(0),
            rss_bytes: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Records one change handed to every client, committed at `committed_at`.
    pub fn record_broadcast(&self, committed_at: Timestamp) {
        self.events_broadcast.fetch_add(1, Ordering::Relaxed);
        let latency = (Timestamp::now().unix_ms() - committed_at.unix_ms()).max(0) as f64;
        if let Ok(mut timings) = self.broadcast_latency.lock() {
            timings.push_ms(latency);
        }
        if let Ok(mut recent) = self.recent_broadcasts.lock() {
            let now = Instant::now();
            recent.push_back(now);
            while recent.front().is_some_and(|t| now.duration_since(*t) > RATE_WINDOW) {
                recent.pop_front();
            }
        }
    }

    /// Over recent events, in milliseconds.
    pub fn broadcast_latency(&self) -> Percentiles {
        self.broadcast_latency.lock().map(|t| t.percentiles()).unwrap_or_default()
    }

    /// Every event since start, in seconds.
    pub fn broadcast_latency_histogram(&self) -> Histogram {
        self.broadcast_latency.lock().map(|t| t.histogram()).unwrap_or_default()
    }

    /// Events broadcast per second over the last ten seconds.
    pub fn events_per_second(&self) -> f64 {
        let Ok(recent) = self.recent_broadcasts.lock() else {
            return 0.0;
        };
        let now = Instant::now();
        let n = recent.iter().filter(|t| now.duration_since(**t) <= RATE_WINDOW).count();
        n as f64 / RATE_WINDOW.as_secs_f64()
    }

    pub fn started_unix_seconds(&self) -> f64 {
        self.started_at.unix_ms() as f64 / 1000.0
    }

    pub fn cpu_percent(&self) -> f64 {
        self.cpu_centi_percent.load(Ordering::Relaxed) as f64 / 100.0
    }

    pub fn rss_bytes(&self) -> u64 {
        self.rss_bytes.load(Ordering::Relaxed)
    }

    /// The latest storage sample, if any.
    pub fn storage(&self) -> Option<StorageMetrics> {
        self.storage.lock().ok().and_then(|s| *s)
    }

    /// Samples the data directory's bytes and retention state through `db`
    /// every `every` — or less often where the walk of the snapshots is
    /// slow (see [`next_storage_sample`]) — until the task is dropped; a
    /// failed sample keeps the previous one and is logged.
    pub async fn sample_storage(&self, db: crate::db::Db, data_dir: shared::config::DataDir, every: Duration) {
        let mut wait = Duration::ZERO;
        loop {
            tokio::time::sleep(wait).await;
            let dir = data_dir.clone();
            let started = Instant::now();
            let usage = tokio::task::spawn_blocking(move || shared::retention::usage(&dir)).await;
            wait = next_storage_sample(every, started.elapsed());
            let history = db.read(|s| s.history()).await;
            match (usage, history) {
                (Ok(Ok(usage)), Ok(history)) => {
                    let sample = StorageMetrics {
                        database_bytes: usage.database,
                        snapshots_bytes: usage.snapshots,
                        logs_bytes: usage.logs,
                        oldest_seq: history.oldest_seq.unwrap_or(0),
                        oldest_event_unix_seconds: history.oldest_time.map_or(0.0, |t| t.unix_ms() as f64 / 1000.0),
                        deleted_events: history.deleted_events,
                        deleted_bytes: history.deleted_bytes,
                    };
                    if let Ok(mut storage) = self.storage.lock() {
                        *storage = Some(sample);
                    }
                }
                (Ok(Err(e)), _) => tracing::warn!(error = %e, "cannot measure the data directory"),
                (_, Err(e)) => tracing::warn!(error = %e, "cannot read the retention state"),
                (Err(e), _) => tracing::warn!(error = %e, "storage sampler task failed"),
            }
        }
    }

    /// Samples process CPU and RSS every `every` until the task is dropped.
    pub async fn sample_process(&self, every: Duration) {
        let mut last: Option<(Instant, f64)> = None;
        let mut ticker = tokio::time::interval(every);
        loop {
            ticker.tick().await;
            let Some(sample) = read_proc_self() else {
                continue;
            };
            let now = Instant::now();
            if let Some((then, cpu_then)) = last {
                let wall = now.duration_since(then).as_secs_f64();
                if wall > 0.0 {
                    let percent = ((sample.cpu_seconds - cpu_then) / wall * 100.0).max(0.0);
                    self.cpu_centi_percent.store((percent * 100.0) as u64, Ordering::Relaxed);
                }
            }
            self.rss_bytes.store(sample.rss_bytes, Ordering::Relaxed);
            last = Some((now, sample.cpu_seconds));
        }
    }
}

/// This process as `/proc/self` tells it.
#[derive(Debug, Clone, Copy)]
pub struct ProcessSample {
    /// User and system CPU time since start.
    pub cpu_seconds: f64,
    pub rss_bytes: u64,
    pub open_fds: u64,
}

/// This process now, read at once (`/metrics` reports totals, not the
/// sampler's rates); `None` where `/proc` is not there.
pub fn process_sample() -> Option<ProcessSample> {
    let sample = read_proc_self()?;
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    Some(ProcessSample { cpu_seconds: sample.cpu_seconds, rss_bytes: sample.rss_bytes, open_fds })
}

/// The soft limit of open files, when the platform has one.
pub fn max_open_files() -> Option<u64> {
    #[cfg(unix)]
    {
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).ok().map(|(soft, _)| soft)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

struct ProcSample {
    cpu_seconds: f64,
    rss_bytes: u64,
}

/// User + system CPU time and resident memory of this process.
fn read_proc_self() -> Option<ProcSample> {
    // /proc reports CPU time in USER_HZ ticks, fixed at 100 on Linux.
    const USER_HZ: f64 = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields overall, i.e. the 12th and 13th after it.
    let after_name = stat.rsplit_once(')')?.1;
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    Some(ProcSample { cpu_seconds: (utime + stime) / USER_HZ, rss_bytes: rss_kib * 1024 })
}

/// A walk of the snapshots (months of them: a million files) may cost
/// seconds of a core: the next sample waits at least this many times as
/// long as the last walk took, so sampling never costs more than ~1 % of
/// a core; the sizes it reports move slowly (retention sweeps hourly).
const STORAGE_SAMPLE_COST: u32 = 100;
/// …but never waits longer than this.
const STORAGE_SAMPLE_MAX: Duration = Duration::from_secs(600);

/// When to sample the storage next, after a walk that took `took`.
pub fn next_storage_sample(every: Duration, took: Duration) -> Duration {
    took.saturating_mul(STORAGE_SAMPLE_COST).clamp(every, STORAGE_SAMPLE_MAX.max(every))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_storage_walk_is_repeated_less_often() {
        let every = Duration::from_secs(30);
        assert_eq!(next_storage_sample(every, Duration::from_millis(20)), every, "a small tree: every 30 s");
        assert_eq!(next_storage_sample(every, Duration::from_secs(2)), Duration::from_secs(200), "1 % of a core");
        assert_eq!(next_storage_sample(every, Duration::from_secs(60)), STORAGE_SAMPLE_MAX, "capped");
        let often = Duration::from_millis(100);
        assert_eq!(next_storage_sample(often, Duration::ZERO), often, "a test's short interval stays");
        let rare = Duration::from_secs(3600);
        assert_eq!(next_storage_sample(rare, Duration::from_secs(1)), rare, "never more often than asked");
    }

    #[test]
    fn reads_own_process() {
        let sample = read_proc_self().expect("/proc/self is readable on Linux");
        assert!(sample.rss_bytes > 1024 * 1024, "a test process uses more than 1 MiB");
        assert!(sample.cpu_seconds >= 0.0);
    }

    #[test]
    fn broadcast_rate_and_latency() {
        let m = Metrics::default();
        for _ in 0..20 {
            m.record_broadcast(Timestamp::now());
        }
        assert_eq!(m.events_broadcast.load(Ordering::Relaxed), 20);
        assert!((m.events_per_second() - 2.0).abs() < 1e-9);
        assert_eq!(m.broadcast_latency().count, 20);
    }
}
