//! `events.jsonl` and `events.log`: one line per committed change of an
//! event (`new`, `update`, `end`), for people and tools (the database stays
//! the truth).
//!
//! Every process that commits changes appends here, after the commit: the
//! detector for camera and dry-run events, the webserver for `POST
//! /api/events`. Each line is one `write` on a file opened `O_APPEND`, so
//! lines from two processes never interleave (the kernel places each append
//! at the end under the inode lock).
//!
//! One process owns the logs' tails ([`Role::Owner`], the detector); the
//! others are guests ([`Role::Guest`]):
//!
//! * A crash mid-write can leave a partial last line: the owner cuts it off
//!   at start; a guest, which may start while the owner is appending, must
//!   never truncate, so it only ends such a line with a newline before its
//!   own.
//! * **Daily rotation**: at its first append of a new UTC day the owner
//!   renames `events.jsonl` to `events-YYYY-MM-DD.jsonl` (the day it
//!   holds; `events-YYYY-MM-DD-2.jsonl` if that exists) and starts a new
//!   one. A guest notices the rename (the path names another file than the
//!   one it holds) and reopens; a line it appended just before lands in
//!   the rotated file, whole. Retention deletes rotated files
//!   ([`rotated_logs`]). Only one process renames, so rotations never race.
//!   The owner's days are those of its [`Calendar`]: UTC days, or the
//!   seconds-long days of a soak run, which the sweep then expires by.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, Utc};

use crate::config::{DataDir, JSONL_FILE, TEXT_LOG_FILE};
use crate::model::Change;

/// Who appends: see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Cuts a torn tail at open and rotates at each new day of its
    /// calendar (one process per data directory: the detector).
    Owner(Calendar),
    /// Ends a torn line with a newline and follows the owner's rotations.
    Guest,
}

/// A log that could not be opened or appended to.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {source}")]
pub struct LogError {
    pub file: &'static str,
    pub source: io::Error,
}

/// A rotated log: one day's lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotatedLog {
    pub path: PathBuf,
    pub day: NaiveDate,
}

/// The rotated logs of `data_dir`, in no particular order.
pub fn rotated_logs(data_dir: &DataDir) -> io::Result<Vec<RotatedLog>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(data_dir.root())?.flatten() {
        let name = entry.file_name();
        if let Some(day) = name.to_str().and_then(rotated_day) {
            found.push(RotatedLog { path: entry.path(), day });
        }
    }
    Ok(found)
}

/// Every log file of `data_dir`: the current two and the rotated ones.
pub fn all_logs(data_dir: &DataDir) -> io::Result<Vec<PathBuf>> {
    let mut logs: Vec<PathBuf> = rotated_logs(data_dir)?.into_iter().map(|r| r.path).collect();
    logs.extend([data_dir.jsonl_log(), data_dir.text_log()]);
    Ok(logs)
}

/// `events-2026-12-01.jsonl` or `events-2026-12-01-2.log` → the day.
fn rotated_day(file: &str) -> Option<NaiveDate> {
    [JSONL_FILE, TEXT_LOG_FILE].iter().find_map(|current| {
        let (stem, ext) = current.split_once('.')?;
        let rest = file.strip_prefix(stem)?.strip_prefix('-')?.strip_suffix(ext)?.strip_suffix('.')?;
        let (day, counter) = rest.split_at_checked(10)?;
        let counter_ok = counter.is_empty()
            || counter.strip_prefix('-').is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        counter_ok.then(|| NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()).flatten()
    })
}

/// Where `current` (`events.jsonl`) goes when rotated as `day`'s: the first
/// name not taken.
fn rotation_target(current: &Path, name: &str, day: NaiveDate) -> PathBuf {
    let (stem, ext) = name.split_once('.').unwrap_or((name, "log"));
    let dir = current.parent().unwrap_or(Path::new("."));
    let mut n = 1;
    loop {
        let counter = if n == 1 { String::new() } else { format!("-{n}") };
        let target = dir.join(format!("{stem}-{}{counter}.{ext}", day.format("%Y-%m-%d")));
        if !target.exists() {
            return target;
        }
        n += 1;
    }
}

/// The days logs rotate and expire by: UTC days, or — for soak runs that
/// live months in minutes (`--retention-day-secs`) — days of a given length
/// counted from a start time, dated from that time's UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Calendar {
    #[default]
    Utc,
    Scaled {
        day: std::time::Duration,
        origin: chrono::DateTime<Utc>,
    },
}

impl Calendar {
    /// Days of length `day`, the first starting now.
    pub fn scaled(day: std::time::Duration) -> Self {
        Self::Scaled { day, origin: Utc::now() }
    }

    /// The day `at` falls on.
    pub fn day_of(&self, at: chrono::DateTime<Utc>) -> NaiveDate {
        match *self {
            Self::Utc => at.date_naive(),
            Self::Scaled { day, origin } => {
                let elapsed = (at - origin).num_milliseconds() as f64;
                let days = (elapsed / day.as_millis().max(1) as f64).floor() as i64;
                origin.date_naive().checked_add_signed(chrono::TimeDelta::days(days)).unwrap_or(NaiveDate::MAX)
            }
        }
    }

    pub fn today(&self) -> NaiveDate {
        self.day_of(Utc::now())
    }
}

fn today_of(role: Role) -> NaiveDate {
    match role {
        Role::Owner(calendar) => calendar.today(),
        Role::Guest => Utc::now().date_naive(),
    }
}

/// Both logs of one data directory, open for appending.
#[derive(Debug)]
pub struct EventLogs {
    logs: [Log; 2],
}

#[derive(Debug)]
struct Log {
    file: File,
    path: PathBuf,
    name: &'static str,
    role: Role,
    /// The UTC day whose lines the open file holds (the owner's rotation).
    day: NaiveDate,
    /// A partial last line is waiting for its newline.
    needs_newline: bool,
}

impl EventLogs {
    pub fn open(data_dir: &DataDir, role: Role) -> Result<Self, LogError> {
        Ok(Self {
            logs: [
                Log::open(&data_dir.jsonl_log(), JSONL_FILE, role)?,
                Log::open(&data_dir.text_log(), TEXT_LOG_FILE, role)?,
            ],
        })
    }

    /// Appends `change` to both logs: `{"change":KIND,"data":EVENT}` with
    /// the event's canonical JSON, and its human line. Returns the failures
    /// (the change is safe in the database either way).
    pub fn append(&mut self, change: &Change) -> Vec<LogError> {
        let lines = [json_line(change), text_line(change)];
        let mut errors = Vec::new();
        for (log, line) in self.logs.iter_mut().zip(lines) {
            if let Err(source) = log.append(&line) {
                errors.push(LogError { file: log.name, source });
            }
        }
        errors
    }
}

impl Log {
    fn open(path: &Path, name: &'static str, role: Role) -> Result<Self, LogError> {
        let err = |source| LogError { file: name, source };
        let mut file = OpenOptions::new().create(true).read(true).append(true).open(path).map_err(err)?;
        let torn = torn_tail_len(&mut file).map_err(err)?;
        let mut needs_newline = false;
        if torn > 0 {
            match role {
                Role::Owner(_) => {
                    let len = file.metadata().map_err(err)?.len();
                    file.set_len(len - torn).map_err(err)?;
                    tracing::warn!(file = %path.display(), bytes = torn, "removed a partial last line left by a crash (the event is in the database)");
                }
                Role::Guest => needs_newline = true,
            }
        }
        // A file written on an earlier day holds that day's lines: the
        // owner's first append rotates it.
        let meta = file.metadata().map_err(err)?;
        let calendar = match role {
            Role::Owner(calendar) => calendar,
            Role::Guest => Calendar::Utc,
        };
        let written = meta.modified().ok().filter(|_| meta.len() > 0).map(|t| calendar.day_of(t.into()));
        let day = written.unwrap_or_else(|| today_of(role));
        Ok(Self { file, path: path.to_path_buf(), name, role, day, needs_newline })
    }

    /// One `write` per line: whole in the file or absent.
    fn append(&mut self, line: &str) -> io::Result<()> {
        match self.role {
            Role::Owner(calendar) => {
                let today = calendar.today();
                if today != self.day
                    && let Err(e) = self.rotate(today)
                {
                    tracing::warn!(file = %self.path.display(), error = %e, "could not rotate the log; appending to it as it is");
                }
            }
            Role::Guest => self.follow_rotation()?,
        }
        if self.needs_newline {
            self.file.write_all(format!("\n{line}").as_bytes())?;
            self.needs_newline = false;
            return Ok(());
        }
        self.file.write_all(line.as_bytes())
    }

    fn rotate(&mut self, today: NaiveDate) -> io::Result<()> {
        let target = rotation_target(&self.path, self.name, self.day);
        std::fs::rename(&self.path, &target)?;
        self.file = OpenOptions::new().create(true).read(true).append(true).open(&self.path)?;
        self.day = today;
        tracing::info!(rotated = %target.display(), "log rotated");
        Ok(())
    }

    /// Reopens the path when the owner has rotated the file away.
    fn follow_rotation(&mut self) -> io::Result<()> {
        if !self.was_rotated() {
            return Ok(());
        }
        self.file = OpenOptions::new().create(true).read(true).append(true).open(&self.path)?;
        self.needs_newline = torn_tail_len(&mut self.file)? > 0;
        Ok(())
    }

    #[cfg(unix)]
    fn was_rotated(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::metadata(&self.path), self.file.metadata()) {
            (Ok(at_path), Ok(held)) => (at_path.dev(), at_path.ino()) != (held.dev(), held.ino()),
            (Err(_), _) => true,
            _ => false,
        }
    }

    /// Without inode numbers a rotated file cannot be told apart cheaply;
    /// guests keep the file they hold until restarted.
    #[cfg(not(unix))]
    fn was_rotated(&self) -> bool {
        false
    }
}

/// Bytes after the last newline (0 when the file ends with one or is empty).
fn torn_tail_len(file: &mut File) -> io::Result<u64> {
    let len = file.metadata()?.len();
    let mut tail = Vec::new();
    let mut window = 4096u64;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start))?;
        tail.clear();
        file.read_to_end(&mut tail)?;
        if let Some(newline) = tail.iter().rposition(|&b| b == b'\n') {
            return Ok((tail.len() - newline - 1) as u64);
        }
        if start == 0 {
            return Ok(len); // no newline at all: everything is one torn line
        }
        window *= 4;
    }
}

/// The human line for `events.log`.
/// One `events.jsonl` line: `{"change":"new","data":{…the event…}}`.
pub fn json_line(change: &Change) -> String {
    format!("{{\"change\":\"{}\",\"data\":{}}}\n", change.kind.as_str(), change.event.to_json())
}

/// One `events.log` line: the event's start, `seq`, the change and the
/// state, then what a person reads.
pub fn text_line(change: &Change) -> String {
    let event = &change.event;
    let objects = if event.detected_objects.is_empty() {
        "no objects".to_owned()
    } else {
        event.detected_objects.iter().map(|o| format!("{} {:.2}", o.label, o.confidence)).collect::<Vec<_>>().join(", ")
    };
    let inference = event.metadata.inference_ms.map(|ms| format!(" inference={ms:.1}ms")).unwrap_or_default();
    format!(
        "{} seq={} {} {} state={} camera={} motion={:.2} [{}]{} source={} | {}\n",
        event.timestamp,
        event.seq,
        change.kind.as_str(),
        event.event_id,
        event.state.as_str(),
        event.camera_id,
        event.motion_confidence,
        objects,
        inference,
        event.metadata.source.as_str(),
        event.description.replace(['\n', '\r'], " "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn torn(content: &[u8]) -> u64 {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log");
        std::fs::write(&path, content).expect("write");
        let mut file = OpenOptions::new().read(true).append(true).open(&path).expect("open");
        torn_tail_len(&mut file).expect("scan")
    }

    #[test]
    fn finds_a_torn_last_line() {
        assert_eq!(torn(b""), 0);
        assert_eq!(torn(b"{\"a\":1}\n"), 0);
        assert_eq!(torn(b"{\"a\":1}\n{\"b\""), 4);
        assert_eq!(torn(b"no newline at all"), 17);
        let long = [vec![b'x'; 10_000], b"\n".to_vec(), vec![b'y'; 9_000]].concat();
        assert_eq!(torn(&long), 9_000, "a torn line longer than the first window");
    }

    #[test]
    fn a_torn_line_is_cut_by_the_owner_and_only_ended_by_others() {
        for (role, expected) in
            [(Role::Owner(Calendar::Utc), "line one\nline three\n"), (Role::Guest, "line one\nline tw\nline three\n")]
        {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("events.jsonl");
            std::fs::write(&path, "line one\nline tw").expect("write");
            let mut log = Log::open(&path, "events.jsonl", role).expect("open");
            log.day = today_of(role);
            log.append("line three\n").expect("append");
            assert_eq!(std::fs::read_to_string(&path).expect("read"), expected, "{role:?}");
        }
    }

    #[test]
    fn a_scaled_calendar_counts_days_of_its_length_from_its_origin() {
        let origin = chrono::DateTime::parse_from_rfc3339("2026-12-01T23:59:00Z").expect("time").to_utc();
        let calendar = Calendar::Scaled { day: std::time::Duration::from_secs(60), origin };
        let at = |secs: i64| calendar.day_of(origin + chrono::TimeDelta::seconds(secs));
        let day = |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").expect("date");
        assert_eq!(
            (at(0), at(59), at(60), at(150)),
            (day("2026-12-01"), day("2026-12-01"), day("2026-12-02"), day("2026-12-03"))
        );
        assert_eq!(at(-1), day("2026-11-30"), "before the origin counts back");
        assert_eq!(Calendar::Utc.day_of(origin), day("2026-12-01"));
    }

    #[test]
    fn the_owner_rotates_at_a_new_day_and_a_guest_follows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = DataDir::new(dir.path());
        let path = data_dir.jsonl_log();
        let mut owner = Log::open(&path, JSONL_FILE, Role::Owner(Calendar::Utc)).expect("owner");
        let mut guest = Log::open(&path, JSONL_FILE, Role::Guest).expect("guest");
        owner.append("monday\n").expect("append");
        guest.append("monday guest\n").expect("append");
        let monday = Calendar::Utc.today() - chrono::Days::new(1);
        owner.day = monday; // as if the lines above were written yesterday
        owner.append("tuesday\n").expect("append");
        guest.append("tuesday guest\n").expect("append");

        let rotated = dir.path().join(format!("events-{}.jsonl", monday.format("%Y-%m-%d")));
        assert_eq!(std::fs::read_to_string(&rotated).expect("rotated"), "monday\nmonday guest\n");
        assert_eq!(std::fs::read_to_string(&path).expect("current"), "tuesday\ntuesday guest\n");
        let found = rotated_logs(&data_dir).expect("list");
        assert_eq!(found, [RotatedLog { path: rotated.clone(), day: monday }]);

        // The same day again (a clock set back): a second file, nothing overwritten.
        owner.day = monday;
        owner.append("again\n").expect("append");
        let second = dir.path().join(format!("events-{}-2.jsonl", monday.format("%Y-%m-%d")));
        assert_eq!(std::fs::read_to_string(&second).expect("second"), "tuesday\ntuesday guest\n");
        assert_eq!(std::fs::read_to_string(&rotated).expect("rotated"), "monday\nmonday guest\n");
    }

    #[test]
    fn only_rotated_names_are_rotated_logs() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 1).expect("date");
        assert_eq!(rotated_day("events-2026-12-01.jsonl"), Some(day));
        assert_eq!(rotated_day("events-2026-12-01-3.log"), Some(day));
        for other in [
            "events.jsonl",
            "events-2026-13-01.jsonl",
            "events-2026-12-01.db",
            "events-2026-12-01-.log",
            "x-2026-12-01.log",
        ] {
            assert_eq!(rotated_day(other), None, "{other}");
        }
    }
}
