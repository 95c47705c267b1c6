//! The retention sweeper: applies the [`Policy`] at start and then every
//! interval, on its own thread with its own database connection, so a long
//! sweep never holds up a commit for more than one short batch (see
//! [`shared::retention`] for what a sweep does). With `max_disk` it also
//! looks every [`retention::SIZE_CHECK_EVERY`] whether the directory passed
//! [`retention::HIGH_WATER`] of it, and sweeps then: at 50 events/s the
//! directory grows by more between two regular sweeps than a small limit
//! leaves room for.
//!
//! The detector runs it because it owns what a sweep deletes besides rows:
//! the snapshots its cameras wrote and the logs it rotates. A sweep can also
//! be asked for at once ([`DiskFull::make_room`]): the event manager does
//! when the disk is full, before it refuses a commit. The sweeper also keeps
//! the disk reserve ([`Reserve`]) in place.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use shared::config::DataDir;
use shared::retention::{self, Pace, Policy, Reserve, SweepReport};
use shared::{Store, Timestamp};

enum Request {
    /// The disk is full: sweep now to make room, and say when done.
    Full(SyncSender<()>),
    Stop,
}

/// The running sweeper; stops (after the sweep in hand) when dropped.
pub struct Sweeper {
    requests: SyncSender<Request>,
    /// Set at shutdown: a sweep in progress stops after its batch.
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Sweeper {
    /// Starts the thread; the first sweep runs at once.
    pub fn start(data_dir: DataDir, policy: Policy, every: Duration) -> std::io::Result<Self> {
        let (requests, inbox) = mpsc::sync_channel(4);
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new().name("retention".into()).spawn(move || {
            let mut store = None;
            let mut waiting: Option<SyncSender<()>> = None;
            let reserve = Reserve::new(&data_dir);
            let wake = if policy.max_disk.is_some() { every.min(retention::SIZE_CHECK_EVERY) } else { every };
            let mut snapshots = 0;
            loop {
                let emergency = waiting.is_some().then(|| retention::emergency(&policy, &data_dir).ok()).flatten();
                let pace = if waiting.is_some() { Pace::Urgent } else { Pace::Gentle };
                let swept_at = Instant::now();
                if let Some(report) =
                    sweep_once(&mut store, &data_dir, emergency.as_ref().unwrap_or(&policy), pace, &stopped)
                {
                    snapshots = report.after.snapshots;
                }
                if let Some(reply) = waiting.take() {
                    let _ = reply.send(());
                }
                match reserve.fill() {
                    Ok(true) => tracing::info!(bytes = retention::RESERVE_BYTES, "disk reserve in place"),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "no room for the disk reserve yet"),
                }
                loop {
                    match inbox.recv_timeout(wake) {
                        Ok(Request::Full(reply)) => waiting = Some(reply),
                        Ok(Request::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                        Err(RecvTimeoutError::Timeout)
                            if swept_at.elapsed() < every && !near_limit(&policy, &data_dir, snapshots) =>
                        {
                            continue;
                        }
                        Err(RecvTimeoutError::Timeout) => {}
                    }
                    break;
                }
            }
        })?;
        Ok(Self { requests, stop, thread: Some(thread) })
    }

    /// A handle for the event manager.
    pub fn disk_full_handle(&self, data_dir: &DataDir) -> DiskFull {
        DiskFull { requests: self.requests.clone(), reserve: Reserve::new(data_dir) }
    }
}

/// What the event manager does when a commit finds the disk full.
#[derive(Clone)]
pub struct DiskFull {
    requests: SyncSender<Request>,
    reserve: Reserve,
}

impl DiskFull {
    /// Gives back the reserve (so the next commits and `pending.jsonl` have
    /// room) and runs a sweep that deletes the oldest ended events, waiting
    /// at most `timeout` for it.
    pub fn make_room(&self, timeout: Duration) {
        let released = self.reserve.release();
        tracing::warn!(reserve_released = released, "disk full: sweeping the oldest ended events to make room");
        let (reply, done) = mpsc::sync_channel(1);
        if self.requests.try_send(Request::Full(reply)).is_ok() {
            let _ = done.recv_timeout(timeout);
        }
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.requests.send(Request::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One sweep, logged; opens the connection on first use (and again after
/// an error, so a damaged connection does not stick).
fn sweep_once(
    store: &mut Option<Store>,
    data_dir: &DataDir,
    policy: &Policy,
    pace: Pace,
    stop: &AtomicBool,
) -> Option<SweepReport> {
    if store.is_none() {
        match Store::open(data_dir.database()) {
            Ok(opened) => *store = Some(opened),
            Err(e) => {
                tracing::error!(error = %e, "retention: cannot open the database; will retry");
                return None;
            }
        }
    }
    let conn = store.as_mut()?;
    match retention::sweep(conn, data_dir, policy, Timestamp::now(), pace, stop) {
        Ok(report) => {
            let level_info = report.events_deleted > 0 || report.logs_deleted > 0;
            if level_info {
                tracing::info!(
                    events = report.events_deleted,
                    snapshots = report.snapshots_deleted,
                    logs = report.logs_deleted,
                    freed_bytes = report.freed(),
                    used_bytes = report.after.total(),
                    ms = report.elapsed.as_millis() as u64,
                    stopped_for_shutdown = report.stopped,
                    "retention sweep"
                );
            } else {
                tracing::debug!(used_bytes = report.after.total(), "retention sweep: nothing due");
            }
            if let Some(max) = policy.max_disk.filter(|&max| report.after.total() > max && !report.stopped) {
                tracing::warn!(
                    used_bytes = report.after.total(),
                    max_disk = max,
                    "retention: still over max_disk with no ended event left to delete"
                );
            }
            Some(report)
        }
        Err(e) => {
            tracing::error!(error = %e, "retention sweep failed; will retry");
            *store = None;
            None
        }
    }
}

/// Whether the directory is past [`retention::HIGH_WATER`] of `max_disk`
/// (see [`retention::past_high_water`]), the snapshots counted as
/// `snapshots` bytes (their tree is walked by sweeps only).
fn near_limit(policy: &Policy, data_dir: &DataDir, snapshots: u64) -> bool {
    let Some(max) = policy.max_disk else { return false };
    retention::usage_with_snapshots(data_dir, snapshots).is_ok_and(|usage| retention::past_high_water(&usage, max))
}
