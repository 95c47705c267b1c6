//! Defaults both binaries agree on, so one machine needs no configuration.
//!
//! The detector and the webserver each default to the same data directory
//! (`./data`, or `$LOOKOUT_DATA_DIR`), and derive every other path from it:
//! the database, the two logs and the detector socket. Flags
//! override each one; nothing here reads flags — the binaries do.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "data";
/// Environment variable that overrides the default data directory.
pub const DATA_DIR_ENV: &str = "LOOKOUT_DATA_DIR";
/// Environment variable read for `--log-level` when the flag is absent.
pub const LOG_ENV: &str = "RUST_LOG";

/// SQLite database file name inside the data directory.
pub const DATABASE_FILE: &str = "events.db";
/// One JSON object per line, one line per committed event.
pub const JSONL_FILE: &str = "events.jsonl";
/// One human-readable line per committed event.
pub const TEXT_LOG_FILE: &str = "events.log";
/// Detector socket file name inside the data directory.
pub const SOCKET_FILE: &str = "detector.sock";
/// The data directory's wire key (see `wire::key`), mode 0600.
pub const WIRE_KEY_FILE: &str = "wire.key";
/// Directory of event snapshots inside the data directory, one
/// subdirectory per UTC day: `snapshots/YYYY-MM-DD/<event_id>.jpg`.
pub const SNAPSHOTS_DIR: &str = "snapshots";
/// Largest snapshot anyone serves or copies: a JPEG at detection size is
/// tens of KiB, so this only bounds what a hostile file or object costs.
pub const MAX_SNAPSHOT_BYTES: u64 = 10 * 1024 * 1024;

/// The paths derived from one data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Creates the directory (and parents) if it is missing.
    pub fn create(&self) -> io::Result<()> {
        std::fs::create_dir_all(&self.root)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn database(&self) -> PathBuf {
        self.root.join(DATABASE_FILE)
    }

    /// A webserver's copy of a cluster stream (SPEC §10): its own file, so
    /// a detector and a webserver on one host may share the directory (the
    /// webserver then serves that detector's snapshots) without the copy
    /// and the detector's outbox ever being one database.
    pub fn stream_copy(&self, stream: &str) -> PathBuf {
        self.root.join(format!("stream-{stream}.db"))
    }

    /// Where a webserver keeps the snapshots it fetched from a cluster
    /// stream's bucket: laid out like this directory (`snapshots/<day>/…`).
    pub fn snapshot_cache(&self, stream: &str) -> PathBuf {
        self.root.join(format!("stream-{stream}-snapshots"))
    }

    pub fn jsonl_log(&self) -> PathBuf {
        self.root.join(JSONL_FILE)
    }

    pub fn text_log(&self) -> PathBuf {
        self.root.join(TEXT_LOG_FILE)
    }

    pub fn default_socket(&self) -> PathBuf {
        self.root.join(SOCKET_FILE)
    }

    pub fn wire_key(&self) -> PathBuf {
        self.root.join(WIRE_KEY_FILE)
    }

    /// The snapshot of an event, as stored in its `image_path` (relative to
    /// the data directory, `/`-separated on every platform).
    pub fn snapshot_relative_path(seen: crate::Timestamp, event_id: &str) -> String {
        Self::snapshot_version_path(seen, event_id, 1)
    }

    /// Picture `n` of an event: `<event_id>.jpg` first, then
    /// `<event_id>-2.jpg`, … — a new name for each new picture, so a
    /// cached one is never a stale one (retention finds them by these names).
    pub fn snapshot_version_path(seen: crate::Timestamp, event_id: &str, n: u32) -> String {
        let day = seen.as_datetime().format("%Y-%m-%d");
        match n {
            0 | 1 => format!("{SNAPSHOTS_DIR}/{day}/{event_id}.jpg"),
            n => format!("{SNAPSHOTS_DIR}/{day}/{event_id}-{n}.jpg"),
        }
    }

    /// Where a stored `image_path` points, if it names a file inside the
    /// snapshots directory. Anything else (absolute, `..`, another
    /// directory, odd characters) is `None`: a row in the database must never
    /// make the webserver read an arbitrary file.
    pub fn resolve_snapshot(&self, image_path: &str) -> Option<PathBuf> {
        let mut parts = image_path.split('/');
        let (Some(SNAPSHOTS_DIR), Some(day), Some(file), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let plain = |part: &str| {
            !part.is_empty()
                && !part.starts_with('.')
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        (plain(day) && plain(file) && file.ends_with(".jpg"))
            .then(|| self.root.join(SNAPSHOTS_DIR).join(day).join(file))
    }
}

impl Default for DataDir {
    fn default() -> Self {
        Self::new(DEFAULT_DATA_DIR)
    }
}

/// Shortest and longest interval a "seconds" setting accepts (heartbeats,
/// timeouts): short enough for tests, long enough for anything real.
pub const MIN_SECS: f64 = 0.05;
pub const MAX_SECS: f64 = 3600.0;

/// Parses a number of seconds (fractions allowed) within
/// [`MIN_SECS`]..=[`MAX_SECS`], saying what is wrong otherwise.
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text.trim().parse().map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if secs.is_finite() && (MIN_SECS..=MAX_SECS).contains(&secs) {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(format!("must be between {MIN_SECS} and {MAX_SECS} seconds"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_paths_round_trip_and_nothing_else_resolves() {
        let dir = DataDir::new("/srv/lookout");
        // 2026-11-25T17:03:16.123Z
        let rel = DataDir::snapshot_relative_path(crate::Timestamp::from_unix_ms(1_795_626_196_123), "evt_1_abcd");
        assert_eq!(rel, "snapshots/2026-11-25/evt_1_abcd.jpg");
        assert_eq!(dir.resolve_snapshot(&rel), Some(PathBuf::from("/srv/lookout/snapshots/2026-11-25/evt_1_abcd.jpg")));
        for hostile in [
            "/etc/passwd",
            "snapshots/../events.db",
            "snapshots/2026-11-25/../../events.db",
            "snapshots/2026-11-25/.hidden.jpg",
            "snapshots/2026-11-25/evt.png",
            "snapshots/2026-11-25",
            "other/2026-11-25/evt.jpg",
            "snapshots/2026-11-25/a/evt.jpg",
            "snapshots//evt.jpg",
            "snapshots/2026-11-25/ev t.jpg",
            "snapshots\\..\\events.db",
        ] {
            assert_eq!(dir.resolve_snapshot(hostile), None, "{hostile}");
        }
    }

    #[test]
    fn seconds_are_bounded() {
        assert_eq!(parse_seconds("1"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_seconds("0.25"), Ok(Duration::from_millis(250)));
        for bad in ["0.01", "0", "-1", "nan", "inf", "ten", "3601"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_derive_from_the_root() {
        let dir = DataDir::new("/srv/lookout");
        assert_eq!(dir.database(), Path::new("/srv/lookout/events.db"));
        assert_eq!(dir.stream_copy("LOOKOUT"), Path::new("/srv/lookout/stream-LOOKOUT.db"));
        assert_eq!(dir.default_socket(), Path::new("/srv/lookout/detector.sock"));
        assert_eq!(DataDir::default().root(), Path::new("data"));
    }
}
