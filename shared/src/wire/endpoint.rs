//! Where the detector socket lives, and the subscriber side of it.
//!
//! On Unix the socket is a file (`DATA_DIR/detector.sock` by default); on
//! Windows the same path names a pipe in the pipe namespace. Both map through
//! [`socket_name`], so a path is all either side is ever configured with.

use std::io;
use std::path::Path;

use interprocess::local_socket::Name;
use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::tokio::prelude::*;
use tokio::io::{ReadHalf, WriteHalf};

use super::connection::{FrameReader, FrameWriter, WireError, handshake};
use super::frame::{Frame, Hello, Role};

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

/// A subscriber's connection to a detector, past the handshake.
#[derive(Debug)]
pub struct Subscription {
    reader: FrameReader<ReadHalf<Stream>>,
    /// Kept so the connection stays open; subscribers send nothing after `Hello`.
    _writer: FrameWriter<WriteHalf<Stream>>,
    peer: Hello,
}

impl Subscription {
    /// Connects to the detector at `path` and completes the handshake,
    /// introducing ourselves as `name`.
    pub async fn connect(path: &Path, name: &str) -> Result<Self, WireError> {
        let (read, write) = tokio::io::split(connect(path).await?);
        let mut reader = FrameReader::new(read);
        let mut writer = FrameWriter::new(write);
        let peer = handshake(&mut reader, &mut writer, Hello::new(Role::Subscriber, name), Role::Publisher).await?;
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
