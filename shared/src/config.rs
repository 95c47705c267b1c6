//! Defaults both binaries agree on, so one machine needs no configuration.
//!
//! The detector and the webserver each default to the same data directory
//! (`./data`, or `$LOOKOUT_DATA_DIR`), and derive every other path from it:
//! the database, the two logs, the snapshots and the detector socket. Flags
//! override each one; nothing here reads flags — the binaries do.

use std::io;
use std::path::{Path, PathBuf};

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
/// Snapshot directory inside the data directory.
pub const SNAPSHOT_DIR: &str = "snapshots";

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

    pub fn snapshots(&self) -> PathBuf {
        self.root.join(SNAPSHOT_DIR)
    }
}

impl Default for DataDir {
    fn default() -> Self {
        Self::new(DEFAULT_DATA_DIR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_derive_from_the_root() {
        let dir = DataDir::new("/srv/lookout");
        assert_eq!(dir.database(), Path::new("/srv/lookout/events.db"));
        assert_eq!(dir.default_socket(), Path::new("/srv/lookout/detector.sock"));
        assert_eq!(DataDir::default().root(), Path::new("data"));
    }
}
