//! Retention: what keeps a data directory bounded when Lookout runs for
//! months (SPEC §11).
//!
//! A [`Policy`] says how long events are kept — `retain.days`, overridden
//! per camera and per label — and, optionally, how many bytes the data
//! directory may hold (`max_disk`: database, snapshots and logs together).
//! [`sweep`] applies it once:
//!
//! 1. **By age**: every ended event older than its rule is deleted with its
//!    changes and its snapshots (every `<event_id>*.jpg` version).
//! 2. **By size**: past [`HIGH_WATER`] of `max_disk`, the oldest ended
//!    events go first, whatever their rule, down to [`LOW_WATER`] of the
//!    limit so the next commit does not start another sweep at once. The
//!    write-ahead log counts at the size it grows back to
//!    ([`Usage::bound`]), not at the few bytes a sweep's checkpoint leaves.
//! 3. **Logs**: rotated daily logs (`events-YYYY-MM-DD.jsonl`, see
//!    [`eventlog`](crate::eventlog)) go once their day is older than the
//!    longest rule, or older than the oldest kept event under size pressure.
//!
//! An active event is never deleted: the store's delete skips it. Freed
//! database pages go back to the file system (incremental vacuum, then a
//! truncating WAL checkpoint).
//!
//! # Crash safety
//!
//! Each batch deletes the snapshot files first, then the events in one
//! transaction. A crash in between leaves events (all of them due for
//! deletion) without their pictures, which the next sweep finishes; it
//! never leaves a picture without its event, and never touches what is
//! kept. The database stays consistent because deleting is ordinary
//! transactions.
//!
//! # Which rule applies
//!
//! The most specific one: label rules first (an event with several labels
//! keeps the longest of theirs; the label [`MOTION_ONLY`] names events with
//! no detected object), then the camera's, then the default. Ages count
//! from the event's start.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::config::{DataDir, SNAPSHOTS_DIR};
use crate::eventlog::{self, Calendar};
use crate::model::{Event, Timestamp};
use crate::store::{Store, StoreError, WAL_SIZE_LIMIT};

/// The pseudo-label of a rule for events without any detected object.
pub const MOTION_ONLY: &str = "motion";
/// How long events are kept when nothing else is said.
pub const DEFAULT_DAYS: f64 = 30.0;
/// How often the detector sweeps.
pub const SWEEP_EVERY: Duration = Duration::from_secs(600);
/// A sweep for size stops below this share of `max_disk`.
pub const LOW_WATER: f64 = 0.9;
/// Above this share of `max_disk` a sweep deletes for size, and the
/// detector sweeps at once, whenever the next sweep was due: between two
/// regular sweeps the directory may grow by far more than the room left.
pub const HIGH_WATER: f64 = 0.95;
/// How often the detector looks whether it passed [`HIGH_WATER`]: a few
/// `stat`s, the snapshots taken as the last sweep found them.
pub const SIZE_CHECK_EVERY: Duration = Duration::from_secs(1);
/// Events deleted per transaction: short enough that commits waiting on
/// the write lock hardly notice.
const BATCH: usize = 200;
/// The fewest events a size batch deletes (see [`size_batch`]).
const MIN_SIZE_BATCH: usize = 25;
/// How much longer a gentle sweep rests after a batch than the batch took.
const REST_PER_WORK: u32 = 2;
/// The longest rest after one batch of a gentle sweep.
const MAX_REST: Duration = Duration::from_millis(200);

/// Later than any event (9999-12-31): "whatever its age".
const END_OF_TIME: Timestamp = Timestamp::END_OF_TIME;

const DAY: Duration = Duration::from_secs(86_400);

/// How long events are kept, and how much space they may take.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub default: Duration,
    pub cameras: BTreeMap<String, Duration>,
    pub labels: BTreeMap<String, Duration>,
    /// Bytes the database, snapshots and logs may hold together.
    pub max_disk: Option<u64>,
    /// The days rotated logs are dated by.
    pub calendar: Calendar,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            default: days(DEFAULT_DAYS),
            cameras: BTreeMap::new(),
            labels: BTreeMap::new(),
            max_disk: None,
            calendar: Calendar::Utc,
        }
    }
}

/// `n` days as a duration (fractions allowed).
pub fn days(n: f64) -> Duration {
    DAY.mul_f64(n)
}

impl Policy {
    /// How long `event` is kept (see the module docs for the precedence).
    pub fn keep_for(&self, event: &Event) -> Duration {
        let by_label = if event.detected_objects.is_empty() {
            self.labels.get(MOTION_ONLY).copied()
        } else {
            event.detected_objects.iter().filter_map(|o| self.labels.get(&o.label)).max().copied()
        };
        by_label.or_else(|| self.cameras.get(&event.camera_id).copied()).unwrap_or(self.default)
    }

    fn shortest(&self) -> Duration {
        self.cameras.values().chain(self.labels.values()).copied().fold(self.default, Duration::min)
    }

    /// The longest any event is kept.
    pub fn longest(&self) -> Duration {
        self.cameras.values().chain(self.labels.values()).copied().fold(self.default, Duration::max)
    }

    /// Days of length `day` instead of 24 hours, from now on: every rule
    /// scaled, and logs rotated and expired by a [`Calendar`] of such days
    /// (the soak test's "a month in half an hour").
    pub fn scaled(mut self, day: Duration) -> Self {
        let factor = day.as_secs_f64() / 86_400.0;
        self.calendar = Calendar::scaled(day);
        self.default = self.default.mul_f64(factor);
        for d in self.cameras.values_mut().chain(self.labels.values_mut()) {
            *d = d.mul_f64(factor);
        }
        self
    }
}

/// A retention setting that does not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    #[error("{0:?} is not a number of days (e.g. 30 or 0.5)")]
    Days(String),
    #[error("{0:?} is not a size (e.g. 500MB, 2GiB or a number of bytes)")]
    Size(String),
}

/// Parses a number of days: positive, fractions allowed.
pub fn parse_days(text: &str) -> Result<Duration, PolicyError> {
    let err = || PolicyError::Days(text.to_owned());
    let n: f64 = text.trim().parse().map_err(|_| err())?;
    if n.is_finite() && n > 0.0 && n <= 36_500.0 { Ok(days(n)) } else { Err(err()) }
}

/// Parses a size: bytes, or a number with `KB`/`MB`/`GB`/`TB` (powers of
/// 1000) or `KiB`/`MiB`/`GiB`/`TiB` (powers of 1024), any case.
pub fn parse_size(text: &str) -> Result<u64, PolicyError> {
    let err = || PolicyError::Size(text.to_owned());
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number.parse().map_err(|_| err())?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(err()),
    };
    let bytes = n * scale;
    if bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64 { Ok(bytes as u64) } else { Err(err()) }
}

/// Bytes the data directory holds, per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// `events.db` with its `-wal` and `-shm` files.
    pub database: u64,
    /// Of `database`, the write-ahead log (`-wal`).
    pub wal: u64,
    pub snapshots: u64,
    /// `events*.jsonl` and `events*.log`, current and rotated.
    pub logs: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.database + self.snapshots + self.logs
    }

    /// What the directory may soon hold under `max_disk` with nothing more
    /// stored: [`total`](Self::total) with the write-ahead log counted at
    /// the size it grows back to between checkpoints. A sweep truncates
    /// the log, and the next thousand commits bring it back to
    /// [`WAL_SIZE_LIMIT`]; measured at its current size it made the size
    /// pass stop 4 MiB short, and the directory went over the limit. A
    /// limit smaller than four logs reserves a quarter of itself, so it
    /// still keeps its newest events.
    pub fn bound(&self, max_disk: u64) -> u64 {
        let wal_room = WAL_SIZE_LIMIT.unsigned_abs().min(max_disk / 4);
        self.total() - self.wal + self.wal.max(wal_room)
    }
}

/// Whether `usage` is past [`HIGH_WATER`] of `max_disk` (counted as
/// [`Usage::bound`]): the size pass of a sweep deletes then, and the
/// detector's size check starts one.
pub fn past_high_water(usage: &Usage, max_disk: u64) -> bool {
    usage.bound(max_disk) as f64 > max_disk as f64 * HIGH_WATER
}

/// Measures what `data_dir` holds. Files that vanish while it looks (a
/// sweep in another process) count as empty.
pub fn usage(data_dir: &DataDir) -> io::Result<Usage> {
    usage_with_snapshots(data_dir, tree_len(&data_dir.root().join(SNAPSHOTS_DIR))?)
}

/// [`usage`] with the snapshots' bytes already known: the database and the
/// logs are a few files, the snapshots a tree worth walking only once.
pub fn usage_with_snapshots(data_dir: &DataDir, snapshots: u64) -> io::Result<Usage> {
    let database_file = |suffix: &str| {
        let mut name = data_dir.database().into_os_string();
        name.push(suffix);
        file_len(Path::new(&name))
    };
    let wal = database_file("-wal");
    let database = database_file("") + wal + database_file("-shm");
    let logs = eventlog::all_logs(data_dir)?.iter().map(|p| file_len(p)).sum();
    Ok(Usage { database, wal, snapshots, logs })
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn tree_len(dir: &Path) -> io::Result<u64> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut total = 0;
    for entry in entries.flatten() {
        match entry.file_type() {
            Ok(t) if t.is_dir() => total += tree_len(&entry.path())?,
            Ok(_) => total += entry.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => {}
        }
    }
    Ok(total)
}

/// The reserve file's name in the data directory.
pub const RESERVE_FILE: &str = "reserve.bin";
/// Its size: room for a backlog of events and `pending.jsonl` when the disk
/// is full (a commit takes a few KB of write-ahead log).
pub const RESERVE_BYTES: u64 = 8 * 1024 * 1024;

/// Space set aside in the data directory, given back when the disk fills
/// so the commits held in memory can still be written; made again once a
/// sweep has made room. Not counted in [`Usage`].
#[derive(Debug, Clone)]
pub struct Reserve {
    path: PathBuf,
}

impl Reserve {
    pub fn new(data_dir: &DataDir) -> Self {
        Self { path: data_dir.root().join(RESERVE_FILE) }
    }

    /// Makes the file if it is missing, written out (not sparse) so the
    /// space is really taken. A disk too full for it is no error: there is
    /// nothing to reserve.
    pub fn fill(&self) -> io::Result<bool> {
        if std::fs::metadata(&self.path).is_ok_and(|m| m.len() == RESERVE_BYTES) {
            return Ok(false);
        }
        // Writing it on a nearly full disk would itself fill the disk, and
        // make the next commit fail: only with ample room to spare.
        let dir = self.path.parent().unwrap_or(Path::new("."));
        if free_bytes(dir).is_none_or(|free| free < 4 * RESERVE_BYTES) {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "less than 4 times its size is free"));
        }
        let written = (|| {
            let mut file = std::fs::File::create(&self.path)?;
            let block = vec![0u8; 1024 * 1024];
            for _ in 0..RESERVE_BYTES / block.len() as u64 {
                io::Write::write_all(&mut file, &block)?;
            }
            file.sync_all()
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&self.path);
        }
        written.map(|()| true)
    }

    /// Deletes the file; whether there was one to give back.
    pub fn release(&self) -> bool {
        std::fs::remove_file(&self.path).is_ok()
    }
}

/// Bytes an unprivileged process may still write on `dir`'s file system.
#[cfg(unix)]
fn free_bytes(dir: &Path) -> Option<u64> {
    let stat = nix::sys::statvfs::statvfs(dir).ok()?;
    // The field types differ between platforms (u32 or u64).
    #[allow(clippy::useless_conversion)]
    let (blocks, size) = (u64::from(stat.blocks_available()), u64::from(stat.fragment_size()));
    Some(blocks.saturating_mul(size))
}

/// Unknown here: no reserve is made.
#[cfg(not(unix))]
fn free_bytes(_dir: &Path) -> Option<u64> {
    None
}

/// The policy for a sweep when the disk is full: as `policy`, with a size
/// limit below what the directory holds now, so the oldest ended events
/// make room even when no `max_disk` was set.
pub fn emergency(policy: &Policy, data_dir: &DataDir) -> io::Result<Policy> {
    let now = usage(data_dir)?.total();
    let relief = (now as f64 * 0.9) as u64;
    let max_disk = Some(policy.max_disk.map_or(relief, |m| m.min(relief)).max(1));
    Ok(Policy { max_disk, ..policy.clone() })
}

/// What one [`sweep`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SweepReport {
    pub events_deleted: usize,
    pub snapshots_deleted: usize,
    /// Bytes of the snapshot files deleted.
    pub snapshot_bytes: u64,
    pub logs_deleted: usize,
    pub before: Usage,
    pub after: Usage,
    pub elapsed: Duration,
    /// Cut short by shutdown; the next start goes on.
    pub stopped: bool,
}

impl SweepReport {
    pub fn freed(&self) -> u64 {
        self.before.total().saturating_sub(self.after.total())
    }
}

/// Why a sweep stopped.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SweepError + '_ {
    move |source| SweepError::Io { path: path.to_path_buf(), source }
}

/// How a sweep shares the machine with the live path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// After each batch, rest twice as long as it took: two thirds of the
    /// CPU and disk time a sweep could take are left to the commits and the
    /// fan-out (a sweep of 100,000 events at full speed raises the
    /// WebSocket p99 at 1,000 clients by half; see the README).
    Gentle,
    /// No rest: the disk is full and commits wait for the room.
    Urgent,
}

/// Applies `policy` once, as of `now` (see the module docs). Between
/// batches it rests as `pace` says and checks `stop` (shutdown): once set,
/// it finishes the batch in hand and returns what it did, `stopped` set.
pub fn sweep(
    store: &mut Store,
    data_dir: &DataDir,
    policy: &Policy,
    now: Timestamp,
    pace: Pace,
    stop: &AtomicBool,
) -> Result<SweepReport, SweepError> {
    let stopping = || stop.load(Ordering::Relaxed);
    let rest = |batch: Instant, pace: Pace| {
        if pace == Pace::Gentle && !stopping() {
            std::thread::sleep((batch.elapsed() * REST_PER_WORK).min(MAX_REST));
        }
    };
    let started = Instant::now();
    let root = data_dir.root();
    let before = usage(data_dir).map_err(io_err(root))?;
    let mut report = SweepReport { before, ..SweepReport::default() };

    // 1. By age: only events older than the shortest rule can be due.
    let cutoff = before_now(now, policy.shortest());
    let mut after = None;
    loop {
        let began = Instant::now();
        let page = store.ended_before(cutoff, after, BATCH)?;
        let Some(last) = page.last() else { break };
        after = Some((last.timestamp, last.seq));
        let due: Vec<&Event> = page.iter().filter(|e| e.timestamp < before_now(now, policy.keep_for(e))).collect();
        delete(store, data_dir, &due, &mut report)?;
        if page.len() < BATCH || stopping() {
            break;
        }
        rest(began, pace);
    }
    report.logs_deleted += delete_logs_before(data_dir, &policy.calendar, before_now(now, policy.longest()))?;
    store.release_free_pages()?;

    // 2. By size: oldest first, whatever the rule.
    if let Some(max) = policy.max_disk {
        let target = (max as f64 * LOW_WATER) as u64;
        let measured = usage(data_dir).map_err(io_err(root))?;
        let freed_before = report.snapshot_bytes;
        // Already past the limit itself: every rest is more time over it.
        let pace = if measured.total() > max { Pace::Urgent } else { pace };
        // Hysteresis: from the high-water mark down to the low one, so the
        // detector's size check finds room before the limit is reached.
        let mut over = past_high_water(&measured, max);
        let mut now_usage = measured;
        let mut events = store.count()?;
        while over && !stopping() {
            let began = Instant::now();
            let excess = now_usage.bound(max).saturating_sub(target);
            let oldest = store.ended_before(END_OF_TIME, None, size_batch(&now_usage, events, excess))?;
            if oldest.is_empty() {
                // Nothing left that may go but rotated logs.
                report.logs_deleted += delete_logs_before(data_dir, &policy.calendar, now)?;
                break;
            }
            let batch: Vec<&Event> = oldest.iter().collect();
            let deleted_before = report.events_deleted;
            delete(store, data_dir, &batch, &mut report)?;
            events = events.saturating_sub((report.events_deleted - deleted_before) as u64);
            store.release_free_pages()?;
            if let Some(kept) = store.history()?.oldest_time {
                report.logs_deleted += delete_logs_before(data_dir, &policy.calendar, kept)?;
            }
            let snapshots = measured.snapshots.saturating_sub(report.snapshot_bytes - freed_before);
            now_usage = usage_with_snapshots(data_dir, snapshots).map_err(io_err(root))?;
            over = now_usage.bound(max) > target;
            if over {
                rest(began, pace);
            }
        }
    }

    report.after = usage(data_dir).map_err(io_err(root))?;
    report.elapsed = started.elapsed();
    report.stopped = stopping();
    store.record_sweep(now, report.freed())?;
    Ok(report)
}

/// One step of keeping a webserver's copy of a cluster stream (SPEC §10)
/// no larger than the stream: deletes up to one batch of the ended events
/// whose every change the stream has dropped (by its limits, which the
/// detectors set from their retention), with their snapshots under
/// `snapshots` (the copy's cache of the stream's bucket). The copy then
/// holds what a copy rebuilt from the stream would, and a client resuming
/// below it is told `reset`. The caller rests between steps and, when a
/// step deletes nothing, gives the space back
/// ([`Store::release_free_pages`]).
pub fn trim_copy(store: &mut Store, snapshots: &DataDir, stream_first: i64) -> Result<SweepReport, SweepError> {
    let started = Instant::now();
    let mut report = SweepReport::default();
    let gone = store.ended_below(stream_first, BATCH)?;
    delete(store, snapshots, &gone.iter().collect::<Vec<_>>(), &mut report)?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// How many of the oldest events the size pass deletes next: as many as
/// free `excess` bytes at the average event's share of the database
/// (without its write-ahead log, which deleting events does not shrink)
/// and snapshots, from [`MIN_SIZE_BATCH`] to [`BATCH`]. A fixed batch
/// overshoots a small limit, where [`BATCH`] events may be most of what it
/// holds; a batch of a few events costs a checkpoint each and falls behind
/// a busy detector.
fn size_batch(usage: &Usage, events: u64, excess: u64) -> usize {
    let per_event = ((usage.database.saturating_sub(usage.wal) + usage.snapshots) / events.max(1)).max(1);
    usize::try_from(excess.div_ceil(per_event)).unwrap_or(BATCH).clamp(MIN_SIZE_BATCH, BATCH)
}

fn before_now(now: Timestamp, age: Duration) -> Timestamp {
    let ms = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
    Timestamp::from_unix_ms(now.unix_ms().saturating_sub(ms))
}

/// Deletes `events`: snapshot files first, then the rows (see "Crash
/// safety" above).
fn delete(
    store: &mut Store,
    data_dir: &DataDir,
    events: &[&Event],
    report: &mut SweepReport,
) -> Result<(), SweepError> {
    if events.is_empty() {
        return Ok(());
    }
    for event in events {
        let (files, bytes) = delete_snapshots(data_dir, event)?;
        report.snapshots_deleted += files;
        report.snapshot_bytes += bytes;
    }
    let ids: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
    report.events_deleted += store.delete_events(&ids)?;
    Ok(())
}

/// Deletes every snapshot version of `event` (`<id>.jpg`, then `<id>-2.jpg`
/// … `<id>-N.jpg`, the one its `image_path` names being the latest), and its
/// day directory once empty. Returns how many files went, and their bytes.
///
/// The names are derived, not searched for: a day directory can hold a
/// hundred thousand files, and listing it per event made a large sweep
/// quadratic. One version past the latest is tried too: a crash between
/// writing a new version and committing the update leaves that one behind.
fn delete_snapshots(data_dir: &DataDir, event: &Event) -> Result<(usize, u64), SweepError> {
    let Some(file) = event.image_path.as_deref().and_then(|p| data_dir.resolve_snapshot(p)) else { return Ok((0, 0)) };
    let Some(day) = file.parent() else { return Ok((0, 0)) };
    let latest = file.file_name().and_then(|n| n.to_str()).and_then(|n| version(n, &event.event_id)).unwrap_or(1);
    let (mut deleted, mut bytes) = (0, 0);
    for n in 1..=latest + 1 {
        let path =
            day.join(if n == 1 { format!("{}.jpg", event.event_id) } else { format!("{}-{n}.jpg", event.event_id) });
        let len = match std::fs::metadata(&path) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(&path)(e)),
        };
        match std::fs::remove_file(&path) {
            Ok(()) => (deleted, bytes) = (deleted + 1, bytes + len),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
    }
    // Fails while other snapshots remain, which is the point.
    let _ = std::fs::remove_dir(day);
    Ok((deleted, bytes))
}

/// Which version of `event_id`'s snapshot `file` is: 1 for `evt_1_ab.jpg`,
/// 3 for `evt_1_ab-3.jpg`; `None` for another event's (`evt_1_abc.jpg`).
fn version(file: &str, event_id: &str) -> Option<u64> {
    let rest = file.strip_prefix(event_id)?.strip_suffix(".jpg")?;
    if rest.is_empty() {
        return Some(1);
    }
    rest.strip_prefix('-').filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))?.parse().ok()
}

/// Deletes the rotated logs of days that ended before `cutoff`.
fn delete_logs_before(data_dir: &DataDir, calendar: &Calendar, cutoff: Timestamp) -> Result<usize, SweepError> {
    let cutoff_day = calendar.day_of(cutoff.as_datetime());
    let mut deleted = 0;
    for rotated in eventlog::rotated_logs(data_dir).map_err(io_err(data_dir.root()))? {
        if rotated.day < cutoff_day {
            match std::fs::remove_file(&rotated.path) {
                Ok(()) => deleted += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&rotated.path)(e)),
            }
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::arb_new_event;
    use crate::model::{BoundingBox, DetectedObject, EventState, NewEvent};
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;

    const NOW_MS: i64 = 1_795_626_196_123; // 2026-11-25T17:03:16.123Z

    fn new_event(camera: &str, labels: &[&str], age_days: f64, state: EventState) -> NewEvent {
        let mut runner = TestRunner::deterministic();
        let mut new = arb_new_event().new_tree(&mut runner).expect("generate").current();
        let at = before_now(Timestamp::from_unix_ms(NOW_MS), days(age_days));
        new.event_id = crate::model::new_event_id(at);
        new.camera_id = camera.to_owned();
        new.timestamp = at;
        new.state = state;
        new.end_time = (state == EventState::Ended).then_some(at);
        new.image_path = None;
        let bbox = BoundingBox { x: 0.0, y: 0.0, width: 0.1, height: 0.1 };
        new.detected_objects =
            labels.iter().map(|l| DetectedObject { label: (*l).to_owned(), confidence: 0.9, bbox }).collect();
        new
    }

    fn event(camera: &str, labels: &[&str]) -> Event {
        new_event(camera, labels, 1.0, EventState::Ended).commit(1, Timestamp::from_unix_ms(NOW_MS))
    }

    #[test]
    fn the_most_specific_rule_applies() {
        let policy = Policy {
            default: days(30.0),
            cameras: [("door".to_owned(), days(60.0))].into(),
            labels: [
                ("person".to_owned(), days(90.0)),
                ("cat".to_owned(), days(3.0)),
                (MOTION_ONLY.to_owned(), days(7.0)),
            ]
            .into(),
            max_disk: None,
            calendar: Calendar::Utc,
        };
        assert_eq!(policy.keep_for(&event("yard", &[])), days(7.0), "motion only");
        assert_eq!(policy.keep_for(&event("yard", &["car"])), days(30.0), "default");
        assert_eq!(policy.keep_for(&event("door", &["car"])), days(60.0), "camera");
        assert_eq!(policy.keep_for(&event("door", &["cat"])), days(3.0), "label over camera");
        assert_eq!(policy.keep_for(&event("yard", &["cat", "person"])), days(90.0), "the longest label");
        assert_eq!((policy.shortest(), policy.longest()), (days(3.0), days(90.0)));
    }

    #[test]
    fn sizes_and_days_parse_or_say_why() {
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("2GiB"), Ok(2 * 1024 * 1024 * 1024));
        assert_eq!(parse_size("1.5 kb"), Ok(1500));
        assert_eq!(parse_size("4096"), Ok(4096));
        for bad in ["", "MB", "-1MB", "2 parsecs", "0", "1e400"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_days("0.5"), Ok(Duration::from_secs(43_200)));
        for bad in ["0", "-3", "nan", "week", "100000"] {
            assert!(parse_days(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_reserve_is_made_once_and_given_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let reserve = Reserve::new(&DataDir::new(dir.path()));
        assert!(reserve.fill().expect("room for it"), "made");
        let path = dir.path().join(RESERVE_FILE);
        assert_eq!(std::fs::metadata(&path).expect("file").len(), RESERVE_BYTES);
        assert!(!reserve.fill().expect("already there"), "not made twice");
        assert!(reserve.release() && !path.exists());
        assert!(!reserve.release(), "nothing left to give back");
    }

    #[test]
    fn only_versions_of_the_event_match() {
        assert_eq!(version("evt_1_ab.jpg", "evt_1_ab"), Some(1));
        assert_eq!(version("evt_1_ab-12.jpg", "evt_1_ab"), Some(12));
        for other in ["evt_1_abc.jpg", "evt_1_ab-.jpg", "evt_1_ab-x.jpg", "evt_1_ab.png", "evt_1_a.jpg"] {
            assert_eq!(version(other, "evt_1_ab"), None, "{other}");
        }
    }

    /// Regression: the size pass counted the write-ahead log as the sweep's
    /// own checkpoint had left it (empty), stopped at 90 % of the limit, and
    /// the log growing back to its 4 MiB took the directory over it.
    #[test]
    fn a_size_sweep_leaves_room_for_the_write_ahead_log_to_grow_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = DataDir::new(dir.path());
        let mut store = Store::open(data_dir.database()).expect("open");
        for i in 0..400 {
            let mut new = new_event("yard", &["car"], 1.0 - f64::from(i) / 1000.0, EventState::Ended);
            new.description = "x".repeat(1500);
            commit_with_snapshots(&mut store, &data_dir, new);
        }
        store.release_free_pages().expect("checkpoint");
        let full = usage(&data_dir).expect("usage");
        assert_eq!(full.wal, 0, "the truncating checkpoint emptied the log");
        // Under the high-water mark as measured, past it once the log
        // has its room.
        let max = (full.total() as f64 / 0.93) as u64;
        assert!(full.total() as f64 <= max as f64 * HIGH_WATER && past_high_water(&full, max), "{full:?} {max}");
        let policy = Policy { max_disk: Some(max), ..Policy::default() };

        let report = sweep_now(&mut store, &data_dir, &policy);

        assert!(report.events_deleted > 0, "{report:?}");
        let after = usage(&data_dir).expect("usage");
        let wal_room = WAL_SIZE_LIMIT.unsigned_abs().min(max / 4);
        assert!(
            after.total() - after.wal + wal_room <= (max as f64 * LOW_WATER) as u64,
            "{after:?}: no room left under {max} for a {wal_room}-byte log"
        );
        assert_eq!(store.integrity_check().expect("check"), Ok(()));
    }

    /// Regression: a fixed batch of 200 took all 300 events of a limit
    /// half their size, where the newest ones fit.
    #[test]
    fn a_small_limit_keeps_the_newest_events_that_fit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = DataDir::new(dir.path());
        let mut store = Store::open(data_dir.database()).expect("open");
        let ids: Vec<String> = (0..300)
            .map(|i| {
                let new = new_event("yard", &["car"], 1.0 - f64::from(i) / 1000.0, EventState::Ended);
                commit_with_snapshots(&mut store, &data_dir, new)
            })
            .collect();
        store.release_free_pages().expect("checkpoint");
        let max = usage(&data_dir).expect("usage").total() / 2;
        let policy = Policy { max_disk: Some(max), ..Policy::default() };

        let report = sweep_now(&mut store, &data_dir, &policy);

        let after = usage(&data_dir).expect("usage");
        assert!(after.bound(max) <= (max as f64 * LOW_WATER) as u64, "{after:?} over {max}");
        let kept = store.count().expect("count");
        assert_eq!(kept + report.events_deleted as u64, 300);
        assert!(kept >= 60, "only {kept} of 300 kept under half their size");
        // The oldest went, the newest stayed.
        let (gone, stayed) = ids.split_at(report.events_deleted as usize);
        assert!(gone.iter().all(|id| store.get(id).expect("get").is_none()));
        assert!(stayed.iter().all(|id| store.get(id).expect("get").is_some()));
    }

    #[test]
    fn the_log_counts_at_its_limit_or_a_quarter_of_a_small_one() {
        let usage = Usage { database: 1_000_000, wal: 1000, snapshots: 2_000_000, logs: 500_000 };
        let limit = WAL_SIZE_LIMIT.unsigned_abs();
        assert_eq!(usage.bound(1_000_000_000), usage.total() - 1000 + limit);
        assert_eq!(usage.bound(8_000_000), usage.total() - 1000 + 2_000_000, "a quarter of a small limit");
        let grown = Usage { wal: limit + 1, database: 1_000_000 + limit, ..usage };
        assert_eq!(grown.bound(1_000_000_000), grown.total(), "a log past its limit counts as it is");
    }

    /// One sweep at `NOW_MS`, at full speed, never stopped.
    fn sweep_now(store: &mut Store, data_dir: &DataDir, policy: &Policy) -> SweepReport {
        sweep(store, data_dir, policy, Timestamp::from_unix_ms(NOW_MS), Pace::Urgent, &AtomicBool::new(false))
            .expect("sweep")
    }

    /// Commits `new` with snapshots as a camera leaves them — `<id>.jpg`,
    /// `<id>-2.jpg` (the latest, stored), and `<id>-3.jpg` written just
    /// before a crash — and returns its id.
    fn commit_with_snapshots(store: &mut Store, data_dir: &DataDir, mut new: NewEvent) -> String {
        let rel = DataDir::snapshot_relative_path(new.timestamp, &new.event_id);
        let file = data_dir.resolve_snapshot(&rel).expect("snapshot path");
        std::fs::create_dir_all(file.parent().expect("day")).expect("day dir");
        std::fs::write(&file, vec![0u8; 2000]).expect("snapshot");
        for n in [2, 3] {
            std::fs::write(file.with_file_name(format!("{}-{n}.jpg", new.event_id)), vec![0u8; 2000]).expect("version");
        }
        new.image_path = Some(rel.replace(".jpg", "-2.jpg"));
        store.insert(&new).expect("insert").event.event_id
    }

    fn snapshot_files(data_dir: &DataDir) -> Vec<String> {
        let mut names = Vec::new();
        for day in std::fs::read_dir(data_dir.root().join(SNAPSHOTS_DIR)).into_iter().flatten().flatten() {
            for file in std::fs::read_dir(day.path()).into_iter().flatten().flatten() {
                names.push(file.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        names
    }

    #[test]
    fn a_copy_drops_what_its_stream_dropped_with_its_snapshots_but_never_an_active_event() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = DataDir::new(dir.path());
        let mut store = Store::open(dir.path().join("copy.db")).expect("open");
        let ids: Vec<String> = (0..10)
            .map(|i| {
                let state = if i == 2 { EventState::Active } else { EventState::Ended };
                commit_with_snapshots(&mut store, &cache, new_event("yard", &["car"], 1.0, state))
            })
            .collect();
        assert_eq!(snapshot_files(&cache).len(), 30);

        // The stream now starts at seq 7: events 1–6 have no change left there.
        let report = trim_copy(&mut store, &cache, 7).expect("trim");

        assert_eq!(report.events_deleted, 5, "{report:?}");
        assert_eq!(report.snapshots_deleted, 15, "every version of each");
        let kept: Vec<&String> = ids.iter().filter(|id| store.get(id).expect("get").is_some()).collect();
        assert_eq!(kept, [&ids[2], &ids[6], &ids[7], &ids[8], &ids[9]], "the active one stays");
        assert_eq!(snapshot_files(&cache).len(), 15);
        assert_eq!(store.history().expect("history").deleted_through, 6, "a client resuming below is told reset");
        assert_eq!(trim_copy(&mut store, &cache, 7).expect("again").events_deleted, 0, "nothing more is due");
    }

    #[test]
    fn age_rules_delete_what_is_due_with_its_snapshots_and_never_an_active_event() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = DataDir::new(dir.path());
        let mut store = Store::open(data_dir.database()).expect("open");
        let policy = Policy {
            labels: [("person".to_owned(), days(90.0)), (MOTION_ONLY.to_owned(), days(7.0))].into(),
            ..Policy::default()
        };
        let ended = EventState::Ended;
        let old_motion = commit_with_snapshots(&mut store, &data_dir, new_event("yard", &[], 8.0, ended));
        let old_car = commit_with_snapshots(&mut store, &data_dir, new_event("yard", &["car"], 31.0, ended));
        let old_person = commit_with_snapshots(&mut store, &data_dir, new_event("yard", &["person"], 60.0, ended));
        let recent_motion = commit_with_snapshots(&mut store, &data_dir, new_event("yard", &[], 6.0, ended));
        let active = commit_with_snapshots(&mut store, &data_dir, new_event("yard", &[], 40.0, EventState::Active));
        let head = store.head_seq().expect("head");

        let report = sweep_now(&mut store, &data_dir, &policy);

        assert_eq!(report.events_deleted, 2);
        assert_eq!(report.snapshots_deleted, 6, "three versions each, the crash's leftover too");
        assert_eq!(report.snapshot_bytes, 6 * 2000, "their bytes, counted as they went");
        for gone in [&old_motion, &old_car] {
            assert_eq!(store.get(gone).expect("get"), None, "{gone}");
        }
        for kept in [&old_person, &recent_motion, &active] {
            assert!(store.get(kept).expect("get").is_some(), "{kept}");
        }
        let mut expected: Vec<String> = [&old_person, &recent_motion, &active]
            .iter()
            .flat_map(|id| [format!("{id}-2.jpg"), format!("{id}-3.jpg"), format!("{id}.jpg")])
            .collect();
        expected.sort();
        assert_eq!(snapshot_files(&data_dir), expected, "no snapshot without its event, none of a kept one lost");
        let history = store.history().expect("history");
        assert_eq!(history.deleted_events, 2);
        assert_eq!(history.deleted_through, 2, "the newest deleted change");
        assert!(history.resets(1) && !history.resets(2) && !history.resets(head));
        let replay: Vec<String> =
            store.after_seq(0, 100).expect("replay").into_iter().map(|c| c.event.event_id).collect();
        assert_eq!(replay, [old_person, recent_motion, active], "their changes went with them");
        assert_eq!(store.integrity_check().expect("check"), Ok(()));
    }

    #[test]
    fn a_size_limit_brings_the_directory_back_under_it_and_the_file_shrinks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = DataDir::new(dir.path());
        let mut store = Store::open(data_dir.database()).expect("open");
        for i in 0..600 {
            let mut new = new_event("yard", &["car"], 1.0 - f64::from(i) / 1000.0, EventState::Ended);
            new.description = "x".repeat(1500);
            commit_with_snapshots(&mut store, &data_dir, new);
        }
        let active = commit_with_snapshots(&mut store, &data_dir, new_event("yard", &[], 2.0, EventState::Active));
        store.release_free_pages().expect("checkpoint");
        let full = usage(&data_dir).expect("usage");
        let db_before = full.database;
        let max = full.total() / 3;
        let policy = Policy { max_disk: Some(max), ..Policy::default() };

        let report = sweep_now(&mut store, &data_dir, &policy);

        let after = usage(&data_dir).expect("usage");
        assert!(after.total() <= max, "{after:?} over {max}");
        assert!(after.database < db_before / 2, "the database file gave space back: {db_before} -> {}", after.database);
        assert!(store.get(&active).expect("get").is_some(), "the active event survives any size limit");
        let kept = store.count().expect("count") as usize;
        assert_eq!(kept + report.events_deleted, 601);
        // The oldest went first: what is left is the newest.
        let oldest_kept = store.history().expect("history").oldest_time.expect("some kept");
        let deleted_newest = store.ended_before(oldest_kept, None, 1000).expect("list");
        assert!(deleted_newest.iter().all(|e| e.event_id == active), "no older ended event was kept");
        assert_eq!(store.integrity_check().expect("check"), Ok(()));
    }
}
