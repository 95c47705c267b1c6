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

    pub fn jsonl_log(&self) -> PathBuf {
        self.root.join(JSONL_FILE)
    }

    pub fn text_log(&self) -> PathBuf {
        self.root.join(TEXT_LOG_FILE)
    }

    pub fn default_socket(&self) -> PathBuf {
        self.root.join(SOCKET_FILE)
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
        assert_eq!(dir.default_socket(), Path::new("/srv/lookout/detector.sock"));
        assert_eq!(DataDir::default().root(), Path::new("data"));
    }
}
