//! Where the detector socket lives, and the subscriber side of it.
//!
//! On Unix the socket is a file (`DATA_DIR/detector.sock` by default); on
//! Windows the same path names a pipe in the pipe namespace. Both map through
//! [`socket_name`], so a path is all either side is ever configured with.
//!
//! A subscriber trusts a socket only after three checks, cheapest first:
//! the path is a socket (not a link) owned by an allowed user; the process
//! behind it runs as an allowed user (`SO_PEERCRED`); and it proves in the
//! handshake that it holds the data directory's wire key. An allowed user
//! is this process's own, plus any named with [`Trust::allow_uid`].

use std::io;
use std::path::Path;

use interprocess::local_socket::Name;
use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::tokio::prelude::*;
use tokio::io::{ReadHalf, WriteHalf};

use super::connection::{FrameReader, FrameWriter, WireError, handshake};
use super::frame::{Frame, Hello, Role};
use super::key::WireKey;

/// The local-socket name for a socket path.
#[cfg(unix)]
pub fn socket_name(path: &Path) -> io::Result<Name<'_>> {
    use interprocess::local_socket::GenericFilePath;
    path.to_fs_name::<GenericFilePath>()
}

/// The local-socket name for a socket path: a named pipe derived from it.
#[cfg(windows)]
pub fn socket_name(path: &Path) -> io::Result<Name<'static>> {
    use interprocess::local_socket::GenericNamespaced;
    let flat: String = path
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' })
        .collect();
    format!("lookout-{flat}").to_ns_name::<GenericNamespaced>().map(|n| n.into_owned())
}

/// Opens a raw connection to the socket at `path`.
pub async fn connect(path: &Path) -> io::Result<Stream> {
    Stream::connect(socket_name(path)?).await
}

/// Whom a subscriber accepts as its publisher.
#[derive(Debug, Clone)]
pub struct Trust {
    key: WireKey,
    /// Besides our own.
    allowed_uids: Vec<u32>,
}

impl Trust {
    /// Publishers of this process's own user that hold `key`.
    pub fn new(key: WireKey) -> Self {
        Self { key, allowed_uids: Vec::new() }
    }

    /// Also accepts publishers running as `uid` (e.g. a detector under its
    /// own service account).
    pub fn allow_uid(mut self, uid: u32) -> Self {
        self.allowed_uids.push(uid);
        self
    }

    pub fn key(&self) -> &WireKey {
        &self.key
    }

    #[cfg(unix)]
    fn allows(&self, uid: u32) -> bool {
        uid == nix::unistd::geteuid().as_raw() || self.allowed_uids.contains(&uid)
    }

    /// The socket file must be a socket, not a link, owned by an allowed user.
    #[cfg(unix)]
    fn check_path(&self, path: &Path) -> Result<(), WireError> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let meta = std::fs::symlink_metadata(path)?;
        let shown = path.display();
        if meta.file_type().is_symlink() {
            return Err(WireError::UntrustedPath(format!("{shown} is a symbolic link; refusing to follow it")));
        }
        if !meta.file_type().is_socket() {
            return Err(WireError::UntrustedPath(format!("{shown} is not a socket")));
        }
        if !self.allows(meta.uid()) {
            return Err(WireError::UntrustedPath(format!(
                "{shown} belongs to uid {}, not to this user (allow it with --allowed-uid)",
                meta.uid()
            )));
        }
        Ok(())
    }

    /// The process behind the connection must run as an allowed user.
    #[cfg(unix)]
    fn check_peer(&self, stream: &Stream) -> Result<(), WireError> {
        let Stream::UdSocket(socket) = stream;
        let uid = peer_uid(socket)?;
        if self.allows(uid) { Ok(()) } else { Err(WireError::ForeignPeer { uid }) }
    }
}

/// The user id of the process at the other end of a Unix socket.
#[cfg(target_os = "linux")]
fn peer_uid(socket: &impl std::os::fd::AsFd) -> io::Result<u32> {
    let creds = nix::sys::socket::getsockopt(socket, nix::sys::socket::sockopt::PeerCredentials)?;
    Ok(creds.uid())
}

#[cfg(all(unix, not(target_os = "linux")))]
fn peer_uid(socket: &impl std::os::fd::AsFd) -> io::Result<u32> {
    let (uid, _gid) = nix::unistd::getpeereid(socket)?;
    Ok(uid.as_raw())
}

/// A subscriber's connection to a detector, past the handshake.
#[derive(Debug)]
pub struct Subscription {
    reader: FrameReader<ReadHalf<Stream>>,
    /// Kept so the connection stays open; subscribers send nothing after `Hello`.
    _writer: FrameWriter<WriteHalf<Stream>>,
    peer: Hello,
}

impl Subscription {
    /// Connects to the detector at `path`, checks it is one `trust` allows,
    /// and completes the handshake, introducing ourselves as `name`.
    pub async fn connect(path: &Path, name: &str, trust: &Trust) -> Result<Self, WireError> {
        #[cfg(unix)]
        trust.check_path(path)?;
        let stream = connect(path).await?;
        #[cfg(unix)]
        trust.check_peer(&stream)?;
        let (read, write) = tokio::io::split(stream);
        let mut reader = FrameReader::new(read);
        let mut writer = FrameWriter::new(write);
        let peer =
            handshake(&mut reader, &mut writer, Hello::new(Role::Subscriber, name), Role::Publisher, trust.key())
                .await?;
        Ok(Self { reader, _writer: writer, peer })
    }

    /// The detector's `Hello`.
    pub fn peer(&self) -> &Hello {
        &self.peer
    }

    /// The next frame; `None` when the detector closed the connection.
    pub async fn next_frame(&mut self) -> Result<Option<Frame>, WireError> {
        self.reader.read_frame().await
    }
}
