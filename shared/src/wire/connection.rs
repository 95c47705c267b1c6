//! Frames over an async byte stream: buffering, reading, writing, handshake.
//!
//! [`FrameReader`] owns a read buffer and calls the pure decoder in
//! [`super::frame`] until a whole frame is there; [`FrameWriter`] writes
//! pre-encoded frames. They are separate halves so that one task can read
//! while another writes. [`handshake`] is the first exchange on every
//! connection, on both sides.

use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::frame::{self, Decoded, Frame, FrameError, Hello, HelloError, Role};

/// How long a peer has to send its `Hello`.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Initial read buffer size; it grows only for large frames.
const READ_BUFFER: usize = 8 * 1024;

/// Why a connection ended other than by a clean close.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("handshake refused: {0}")]
    Hello(#[from] HelloError),
    #[error("connection closed in the middle of a frame")]
    TruncatedFrame,
    #[error("connection closed before the handshake completed")]
    ClosedDuringHandshake,
    #[error("no Hello within {HANDSHAKE_TIMEOUT:?}")]
    HandshakeTimeout,
    #[error("peer has role {theirs:?}, expected {expected:?}")]
    WrongRole { theirs: Role, expected: Role },
    #[error("peer closed the connection: {0}")]
    PeerSaidBye(String),
}

/// The receiving half: buffers bytes and yields whole frames.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R) -> Self {
        Self { inner, buf: BytesMut::with_capacity(READ_BUFFER) }
    }

    /// The next frame, or `None` when the peer closed cleanly between frames.
    pub async fn read_frame(&mut self) -> Result<Option<Frame>, WireError> {
        match self.read_payload().await? {
            Some(payload) => Ok(Some(frame::parse_payload(&payload)?)),
            None => Ok(None),
        }
    }

    /// The next frame's raw payload, or `None` on a clean close.
    async fn read_payload(&mut self) -> Result<Option<Bytes>, WireError> {
        loop {
            match frame::split_payload(&self.buf)? {
                Decoded::Complete { frame: payload, consumed } => {
                    let payload_len = payload.len();
                    self.buf.advance(consumed - payload_len);
                    return Ok(Some(self.buf.split_to(payload_len).freeze()));
                }
                Decoded::Incomplete { needed } => {
                    self.buf.reserve(needed);
                    if self.inner.read_buf(&mut self.buf).await? == 0 {
                        return if self.buf.is_empty() { Ok(None) } else { Err(WireError::TruncatedFrame) };
                    }
                }
            }
        }
    }
}

/// The sending half.
#[derive(Debug)]
pub struct FrameWriter<W> {
    inner: W,
    scratch: BytesMut,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub fn new(inner: W) -> Self {
        Self { inner, scratch: BytesMut::new() }
    }

    /// Encodes and writes one frame.
    pub async fn write_frame(&mut self, frame: &Frame) -> Result<(), WireError> {
        self.scratch.clear();
        frame::encode_into(frame, &mut self.scratch)?;
        self.inner.write_all(&self.scratch).await?;
        self.inner.flush().await?;
        Ok(())
    }

    /// Writes bytes that are already one or more encoded frames (see
    /// [`frame::encode`]): the publish path encodes once for all peers.
    pub async fn write_encoded(&mut self, frames: &[u8]) -> Result<(), WireError> {
        self.inner.write_all(frames).await?;
        Ok(())
    }

    pub async fn flush(&mut self) -> Result<(), WireError> {
        self.inner.flush().await?;
        Ok(())
    }

    /// Best effort: tells the peer why we are closing, then shuts down.
    pub async fn say_bye(&mut self, reason: &str) {
        let _ = self.write_frame(&Frame::Bye { reason: reason.to_owned() }).await;
        let _ = self.inner.shutdown().await;
    }
}

/// Sends `ours`, then waits (bounded) for the peer's `Hello` and checks it.
///
/// On a refused `Hello` the peer is told why with a `Bye` before the error
/// is returned, so a mismatched peer logs something useful too.
pub async fn handshake<R, W>(
    reader: &mut FrameReader<R>,
    writer: &mut FrameWriter<W>,
    ours: Hello,
    expect: Role,
) -> Result<Hello, WireError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    writer.write_frame(&Frame::Hello(ours)).await?;
    let payload = match tokio::time::timeout(HANDSHAKE_TIMEOUT, reader.read_payload()).await {
        Err(_) => return Err(WireError::HandshakeTimeout),
        Ok(Err(e)) => {
            if matches!(e, WireError::Frame(_)) {
                writer.say_bye(&e.to_string()).await;
            }
            return Err(e);
        }
        Ok(Ok(None)) => return Err(WireError::ClosedDuringHandshake),
        Ok(Ok(Some(payload))) => payload,
    };
    let theirs = match frame::decode_hello(&payload) {
        Ok(hello) => hello,
        Err(e) => {
            // A peer that refused *us* says so in a Bye; report its reason.
            if let Ok(Frame::Bye { reason }) = frame::parse_payload(&payload) {
                return Err(WireError::PeerSaidBye(reason));
            }
            writer.say_bye(&e.to_string()).await;
            return Err(e.into());
        }
    };
    if theirs.role != expect {
        let e = WireError::WrongRole { theirs: theirs.role, expected: expect };
        writer.say_bye(&e.to_string()).await;
        return Err(e);
    }
    Ok(theirs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frame::PROTOCOL_VERSION;

    #[tokio::test]
    async fn handshake_both_ways_then_frames_flow() {
        let (a, b) = tokio::io::duplex(64);
        let (ar, aw) = tokio::io::split(a);
        let (br, bw) = tokio::io::split(b);
        let (mut ar, mut aw) = (FrameReader::new(ar), FrameWriter::new(aw));
        let (mut br, mut bw) = (FrameReader::new(br), FrameWriter::new(bw));
        let server = tokio::spawn(async move {
            let peer = handshake(&mut ar, &mut aw, Hello::new(Role::Publisher, "pub"), Role::Subscriber)
                .await
                .expect("server handshake");
            aw.write_frame(&Frame::Bye { reason: "done".into() }).await.expect("write");
            peer
        });
        let peer = handshake(&mut br, &mut bw, Hello::new(Role::Subscriber, "sub"), Role::Publisher)
            .await
            .expect("client handshake");
        assert_eq!(peer.name, "pub");
        assert_eq!(server.await.expect("join").name, "sub");
        assert_eq!(br.read_frame().await.expect("read"), Some(Frame::Bye { reason: "done".into() }));
        assert_eq!(br.read_frame().await.expect("clean close"), None);
    }

    #[tokio::test]
    async fn truncated_frame_is_an_error_not_a_clean_close() {
        let bytes = frame::encode(&Frame::Bye { reason: "hello there".into() }).expect("encode");
        let mut reader = FrameReader::new(&bytes[..bytes.len() - 3]);
        assert!(matches!(reader.read_frame().await, Err(WireError::TruncatedFrame)));
    }

    #[tokio::test]
    async fn wrong_version_is_refused_and_told() {
        let (a, b) = tokio::io::duplex(1024);
        let (ar, aw) = tokio::io::split(a);
        let (br, bw) = tokio::io::split(b);
        let mut future = Hello::new(Role::Subscriber, "future");
        future.protocol_version = PROTOCOL_VERSION + 7;
        let client = tokio::spawn(async move {
            let (mut br, mut bw) = (FrameReader::new(br), FrameWriter::new(bw));
            handshake(&mut br, &mut bw, future, Role::Publisher).await
        });
        let (mut ar, mut aw) = (FrameReader::new(ar), FrameWriter::new(aw));
        let err = handshake(&mut ar, &mut aw, Hello::new(Role::Publisher, "pub"), Role::Subscriber)
            .await
            .expect_err("version mismatch");
        assert!(matches!(err, WireError::Hello(HelloError::WrongVersion { .. })), "{err}");
        // The client got our Hello (same version as us → fine for it), then our Bye.
        let client_result = client.await.expect("join");
        assert!(client_result.is_ok(), "client accepted the publisher's hello");
    }

    #[tokio::test]
    async fn garbage_instead_of_hello_is_refused() {
        let (a, b) = tokio::io::duplex(1024);
        let (ar, aw) = tokio::io::split(a);
        let (_br, mut bw) = tokio::io::split(b);
        bw.write_all(b"\x00\x00\x00\x05junk!").await.expect("write");
        let (mut ar, mut aw) = (FrameReader::new(ar), FrameWriter::new(aw));
        let err = handshake(&mut ar, &mut aw, Hello::new(Role::Publisher, "pub"), Role::Subscriber)
            .await
            .expect_err("garbage");
        assert!(matches!(err, WireError::Hello(HelloError::NotHello)), "{err}");
    }
}
