//! Serving snapshot files without trusting the file system.
//!
//! `image_path` comes from a database row and the file from a directory
//! other processes write to, so neither is trusted: a symlink in
//! `snapshots/` could point at `/etc/passwd` or the database, `/dev/zero`
//! would never end, and a FIFO named `.jpg` would block a thread forever.
//! So a snapshot is opened component by component below the data directory
//! with `O_NOFOLLOW` (no symlink anywhere under it), non-blocking (a FIFO
//! or device cannot hang the open), then must be a regular file with one
//! link, at most [`MAX_SNAPSHOT`] bytes, and is streamed, never read whole.
//!
//! In cluster mode a snapshot may have been taken on another host: it is
//! fetched from the stream's bucket once and kept in a [`SnapshotCache`],
//! a directory laid out like a detector's, so the same checks serve it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;

pub use shared::config::MAX_SNAPSHOT_BYTES as MAX_SNAPSHOT;

/// Why a snapshot is not served; each is logged, and the client gets 404.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("image_path {0:?} is not inside the snapshots directory")]
    OutsideSnapshots(String),
    #[error("a path component is a symbolic link or missing: {0}")]
    Open(std::io::Error),
    #[error("not a regular file")]
    NotAFile,
    #[error("has {0} hard links (a snapshot has one)")]
    Linked(u64),
    #[error("{0} bytes, over the {MAX_SNAPSHOT}-byte limit")]
    TooLarge(u64),
    #[error("open worker failed: {0}")]
    Worker(String),
}

/// An open snapshot, ready to stream.
#[derive(Debug)]
pub struct Snapshot {
    pub len: u64,
    file: tokio::fs::File,
}

impl Snapshot {
    /// Opens the snapshot `image_path` (relative, as stored) under `root`.
    pub async fn open(root: &Path, image_path: &str) -> Result<Self, SnapshotError> {
        let relative = shared::config::DataDir::new("")
            .resolve_snapshot(image_path)
            .ok_or_else(|| SnapshotError::OutsideSnapshots(image_path.to_owned()))?;
        let root = root.to_path_buf();
        let (file, len) = tokio::task::spawn_blocking(move || open_beneath(&root, &relative))
            .await
            .map_err(|e| SnapshotError::Worker(e.to_string()))??;
        Ok(Self { len, file: tokio::fs::File::from_std(file) })
    }

    /// The file as a streamed body.
    pub fn into_body(self) -> Body {
        Body::from_stream(tokio_util::io::ReaderStream::new(self.file))
    }
}

/// Opens `root/relative`, refusing symlinks in every component of
/// `relative`, and checks what was opened.
#[cfg(unix)]
fn open_beneath(root: &Path, relative: &Path) -> Result<(std::fs::File, u64), SnapshotError> {
    use nix::fcntl::{OFlag, openat};
    use nix::sys::stat::Mode;
    let io = |e: nix::Error| SnapshotError::Open(e.into());
    let parts: Vec<_> = relative.components().collect();
    let Some((file, dirs)) = parts.split_last() else {
        return Err(SnapshotError::NotAFile);
    };
    let directory = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mut dir = std::fs::File::open(root).map_err(SnapshotError::Open)?.into();
    for part in dirs {
        dir = openat(&dir, part.as_os_str(), directory | OFlag::O_NOFOLLOW, Mode::empty()).map_err(io)?;
    }
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    checked(openat(&dir, file.as_os_str(), flags, Mode::empty()).map_err(io)?.into())
}

#[cfg(not(unix))]
fn open_beneath(root: &Path, relative: &Path) -> Result<(std::fs::File, u64), SnapshotError> {
    checked(std::fs::File::open(root.join(relative)).map_err(SnapshotError::Open)?)
}

/// `file` with its length, if it is a regular file, singly linked (on
/// Unix) and not too large.
fn checked(file: std::fs::File) -> Result<(std::fs::File, u64), SnapshotError> {
    let meta = file.metadata().map_err(SnapshotError::Open)?;
    if !meta.is_file() {
        return Err(SnapshotError::NotAFile);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if meta.nlink() != 1 {
            return Err(SnapshotError::Linked(meta.nlink()));
        }
    }
    if meta.len() > MAX_SNAPSHOT {
        return Err(SnapshotError::TooLarge(meta.len()));
    }
    Ok((file, meta.len()))
}

/// Snapshots fetched from the cluster's bucket, on local disk (SPEC §10):
/// `<root>/snapshots/<day>/<file>.jpg`, as in a detector's data directory,
/// so [`Snapshot::open`] serves them with every check above.
///
/// An object never changes once put (each new picture of an event is a
/// new file), so a cached file is never stale. When the cache passes its
/// size it drops whole days, oldest first, down to three quarters, but
/// never the newest day: reviewing last night keeps working however small
/// the budget.
#[derive(Debug)]
pub struct SnapshotCache {
    root: PathBuf,
    max_bytes: u64,
    /// Bytes held, as last counted plus what was written since; `u64::MAX`
    /// until the first count (the first write counts).
    used: AtomicU64,
    trimming: tokio::sync::Mutex<()>,
}

impl SnapshotCache {
    pub fn new(root: PathBuf, max_bytes: u64) -> Self {
        Self { root, max_bytes, used: AtomicU64::new(u64::MAX), trimming: tokio::sync::Mutex::new(()) }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Keeps `bytes` as `image_path`: written beside and renamed, so a
    /// reader never sees half a file; then trimmed if over budget. Each
    /// write has a partial file of its own: two requests for one picture
    /// may store it at once, and a shared name would let one rename the
    /// other's half-written bytes into place, cached for good.
    pub async fn store(&self, image_path: &str, bytes: Vec<u8>) -> std::io::Result<()> {
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let invalid = || std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a snapshot path");
        let path = shared::config::DataDir::new(&self.root).resolve_snapshot(image_path).ok_or_else(invalid)?;
        let len = bytes.len() as u64;
        let partial = path.with_extension(format!("jpg.{}.part", WRITES.fetch_add(1, Ordering::Relaxed)));
        tokio::task::spawn_blocking(move || {
            let dir = path.parent().ok_or_else(invalid)?;
            std::fs::create_dir_all(dir)?;
            let kept = std::fs::write(&partial, &bytes).and_then(|()| std::fs::rename(&partial, &path));
            if kept.is_err() {
                let _ = std::fs::remove_file(&partial);
            }
            kept
        })
        .await
        .map_err(std::io::Error::other)??;
        let used = self.used.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| u.checked_add(len)).ok();
        if used.is_none_or(|u| u + len > self.max_bytes) {
            self.trim().await;
        }
        Ok(())
    }

    async fn trim(&self) {
        let Ok(_one_at_a_time) = self.trimming.try_lock() else { return };
        let (dir, max) = (self.root.join(shared::config::SNAPSHOTS_DIR), self.max_bytes);
        match tokio::task::spawn_blocking(move || trim_days(&dir, max / 4 * 3)).await {
            Ok(Ok(left)) => self.used.store(left, Ordering::Relaxed),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot trim the snapshot cache"),
            Err(e) => tracing::warn!(error = %e, "snapshot cache trim failed"),
        }
    }
}

/// Removes day directories under `dir`, oldest first, until the rest
/// hold at most `target` bytes or only the newest day is left; returns
/// the bytes left.
fn trim_days(dir: &Path, target: u64) -> std::io::Result<u64> {
    let mut days: Vec<(String, PathBuf, u64)> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let mut bytes = 0;
        for file in std::fs::read_dir(entry.path())? {
            bytes += file?.metadata().map(|m| m.len()).unwrap_or(0);
        }
        days.push((entry.file_name().to_string_lossy().into_owned(), entry.path(), bytes));
    }
    // Day names are `YYYY-MM-DD`: in name order is in time order.
    days.sort();
    let mut total: u64 = days.iter().map(|d| d.2).sum();
    for (day, path, bytes) in days.iter().take(days.len().saturating_sub(1)) {
        if total <= target {
            break;
        }
        std::fs::remove_dir_all(path)?;
        tracing::info!(day, bytes, "snapshot cache: dropped a day");
        total -= bytes;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_cache_drops_the_oldest_days_first_and_never_the_newest() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = SnapshotCache::new(dir.path().to_path_buf(), 4000);
        for (day, n) in [("2026-12-01", 1), ("2026-12-02", 2), ("2026-12-03", 3)] {
            let path = format!("snapshots/{day}/evt_{n}.jpg");
            cache.store(&path, vec![0; 1500]).await.expect("stored");
        }
        let left: Vec<String> = std::fs::read_dir(dir.path().join("snapshots"))
            .expect("listed")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!left.contains(&"2026-12-01".to_owned()), "oldest day kept: {left:?}");
        assert!(left.contains(&"2026-12-03".to_owned()), "newest day dropped: {left:?}");
        let newest = Snapshot::open(dir.path(), "snapshots/2026-12-03/evt_3.jpg").await.expect("served from the cache");
        assert_eq!(newest.len, 1500);

        // One day over the whole budget stays: it is the newest.
        let small = SnapshotCache::new(dir.path().to_path_buf(), 100);
        small.store("snapshots/2026-12-03/evt_4.jpg", vec![0; 1500]).await.expect("stored");
        assert!(dir.path().join("snapshots/2026-12-03/evt_4.jpg").exists());
        assert!(small.store("../evt_5.jpg", vec![0; 10]).await.is_err(), "a path outside the cache is refused");
    }
}
