//! Making sure the socket path is ours to bind.
//!
//! A detector that crashed leaves its socket file behind; the next one must
//! replace it. A socket file with a *live* detector behind it must not be
//! touched: two detectors would each think they own the path. A path that is
//! not a socket at all (a regular file, a symlink) is never deleted. And the
//! socket only goes in a directory this user owns, and never replaces another
//! user's socket: otherwise someone else could sit between the detector and
//! its subscribers.

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
    #[error(
        "{0} belongs to another user; the detector socket must be in a directory you own (choose another --socket)"
    )]
    ForeignDirectory(String),
    #[error("{0} is another user's socket; refusing to replace it (choose another --socket)")]
    ForeignSocket(String),
    #[error("cannot prepare socket path {path}: {source}")]
    Io { path: String, source: io::Error },
}

/// Removes a stale socket file at `path`; refuses a live, foreign or
/// symlinked one. Returns whether a stale file was removed.
#[cfg(unix)]
pub fn prepare(path: &Path) -> Result<bool, SocketPathError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let shown = path.display().to_string();
    let io_err = |source| SocketPathError::Io { path: shown.clone(), source };
    let me = nix::unistd::geteuid().as_raw();
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io_err)?;
    if std::fs::metadata(parent).map_err(io_err)?.uid() != me {
        return Err(SocketPathError::ForeignDirectory(parent.display().to_string()));
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
    if meta.uid() != me {
        return Err(SocketPathError::ForeignSocket(shown));
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

    /// Ownership checks need a second user: as root, hand files to `nobody`.
    fn give_to_nobody(path: &Path) -> bool {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping the foreign-owner case: it needs root to chown");
            return false;
        }
        nix::unistd::chown(path, Some(nix::unistd::Uid::from_raw(65534)), None).expect("chown");
        true
    }

    #[test]
    fn another_users_directory_or_socket_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let foreign = dir.path().join("theirs");
        std::fs::create_dir(&foreign).expect("mkdir");
        if !give_to_nobody(&foreign) {
            return;
        }
        assert!(matches!(prepare(&foreign.join("d.sock")), Err(SocketPathError::ForeignDirectory(_))));

        let socket = dir.path().join("their.sock");
        drop(std::os::unix::net::UnixListener::bind(&socket).expect("bind"));
        give_to_nobody(&socket);
        assert!(matches!(prepare(&socket), Err(SocketPathError::ForeignSocket(_))));
        assert!(socket.exists(), "another user's socket is left alone");
    }

    #[test]
    fn regular_files_and_symlinks_are_never_touched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("notes.txt");
        std::fs::write(&file, "keep me").expect("write");
        assert!(matches!(prepare(&file), Err(SocketPathError::NotASocket(_))));
        let link = dir.path().join("link.sock");
        std::os::unix::fs::symlink(&file, &link).expect("symlink");
        assert!(matches!(prepare(&link), Err(SocketPathError::Symlink(_))));
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "keep me");
    }
}
