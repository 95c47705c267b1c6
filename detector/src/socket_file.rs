//! Making sure the socket path is ours to bind.
//!
//! A detector that crashed leaves its socket file behind; the next one must
//! replace it. A socket file with a *live* detector behind it must not be
//! touched: two detectors would each think they own the path. And a path that
//! is not a socket at all (a regular file, a symlink) is never deleted.

use std::io;
use std::path::Path;

/// Why the socket path cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SocketPathError {
    #[error(
        "another detector is already listening on {0}; stop it first, or give this one its own --socket or --data-dir"
    )]
    InUse(String),
    #[error("{0} exists and is not a socket; refusing to replace it (choose another --socket)")]
    NotASocket(String),
    #[error("{0} is a symbolic link; refusing to follow it for the detector socket")]
    Symlink(String),
    #[error("cannot prepare socket path {path}: {source}")]
    Io { path: String, source: io::Error },
}

/// Removes a stale socket file at `path`; refuses a live, foreign or
/// symlinked one. Returns whether a stale file was removed.
#[cfg(unix)]
pub fn prepare(path: &Path) -> Result<bool, SocketPathError> {
    use std::os::unix::fs::FileTypeExt;
    let shown = path.display().to_string();
    let io_err = |source| SocketPathError::Io {
        path: shown.clone(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io_err)?;
    }
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_err(e)),
    };
    if meta.file_type().is_symlink() {
        return Err(SocketPathError::Symlink(shown));
    }
    if !meta.file_type().is_socket() {
        return Err(SocketPathError::NotASocket(shown));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(SocketPathError::InUse(shown)),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            std::fs::remove_file(path).map_err(io_err)?;
            Ok(true)
        }
        Err(e) => Err(io_err(e)),
    }
}

/// Named pipes vanish with their server: there is never a stale one.
#[cfg(not(unix))]
pub fn prepare(_path: &Path) -> Result<bool, SocketPathError> {
    Ok(false)
}

/// Removes the socket file on exit, if it is still a socket.
pub fn remove(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
            && let Err(e) = std::fs::remove_file(path)
        {
            tracing::warn!(socket = %path.display(), error = %e, "could not remove the socket file");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn stale_socket_is_replaced_live_one_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("d.sock");
        assert!(!prepare(&path).expect("absent is fine"));

        let live = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        assert!(matches!(prepare(&path), Err(SocketPathError::InUse(_))));
        drop(live); // the file stays behind, like after a crash
        assert!(path.exists());
        assert!(prepare(&path).expect("stale is replaced"));
        assert!(!path.exists());
    }

    #[test]
    fn regular_files_and_symlinks_are_never_touched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("notes.txt");
        std::fs::write(&file, "keep me").expect("write");
        assert!(matches!(
            prepare(&file),
            Err(SocketPathError::NotASocket(_))
        ));
        let link = dir.path().join("link.sock");
        std::os::unix::fs::symlink(&file, &link).expect("symlink");
        assert!(matches!(prepare(&link), Err(SocketPathError::Symlink(_))));
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "keep me");
    }
}
