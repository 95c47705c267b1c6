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

use std::path::Path;

use axum::body::Body;

/// Largest snapshot served. A JPEG at detection size is tens of KiB.
pub const MAX_SNAPSHOT: u64 = 10 * 1024 * 1024;

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
