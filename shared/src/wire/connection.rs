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
use super::key::WireKey;

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
    #[error("handshake not completed within {HANDSHAKE_TIMEOUT:?}")]
    HandshakeTimeout,
    #[error("peer has role {theirs:?}, expected {expected:?}")]
    WrongRole { theirs: Role, expected: Role },
    #[error("peer closed the connection: {0}")]
    PeerSaidBye(String),
    #[error(
        "the peer could not prove it holds this data directory's wire.key: it is another user's process, or uses another --data-dir"
    )]
    Unauthenticated,
    #[error("peer sent {0} where its key proof was due")]
    NoProof(&'static str),
    #[error("the socket's peer runs as uid {uid}, which is not allowed (this process's own uid, or --allowed-uid)")]
    ForeignPeer { uid: u32 },
    #[error("{0}")]
    UntrustedPath(String),
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

/// Sends `ours`, then waits (bounded) for the peer's `Hello` and checks it;
/// then each side proves it holds `key` ([`super::key`]) and checks the
/// other's proof.
///
/// On a refused `Hello` or proof the peer is told why with a `Bye` before
/// the error is returned, so a mismatched peer logs something useful too.
pub async fn handshake<R, W>(
    reader: &mut FrameReader<R>,
    writer: &mut FrameWriter<W>,
    ours: Hello,
    expect: Role,
    key: &WireKey,
) -> Result<Hello, WireError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (our_role, our_nonce) = (ours.role, ours.nonce);
    writer.write_frame(&Frame::Hello(ours)).await?;
    let payload = match next_payload(reader, writer).await? {
        Some(payload) => payload,
        None => return Err(WireError::ClosedDuringHandshake),
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
    let mac = key.proof(our_role, &theirs.nonce, &our_nonce);
    // A peer that hung up may still have said what it sent instead of a
    // proof; that says more than our failed write would.
    let sent = writer.write_frame(&Frame::Proof { mac }).await;
    let next = match next_payload(reader, writer).await {
        Ok(next) => next,
        Err(e) => return Err(sent.err().unwrap_or(e)),
    };
    let proof = match next.map(|p| frame::parse_payload(&p)) {
        None => return Err(sent.err().unwrap_or(WireError::ClosedDuringHandshake)),
        Some(Ok(Frame::Proof { mac })) => mac,
        Some(Ok(Frame::Bye { reason })) => return Err(WireError::PeerSaidBye(reason)),
        Some(Ok(other)) => {
            let e = WireError::NoProof(frame_kind(&other));
            writer.say_bye(&e.to_string()).await;
            return Err(e);
        }
        Some(Err(e)) => {
            writer.say_bye(&e.to_string()).await;
            return Err(e.into());
        }
    };
    if !key.verify(theirs.role, &our_nonce, &theirs.nonce, &proof) {
        writer.say_bye("authentication failed: wrong wire key").await;
        return Err(WireError::Unauthenticated);
    }
    Ok(theirs)
}

/// The next payload of the handshake, within [`HANDSHAKE_TIMEOUT`].
async fn next_payload<R, W>(
    reader: &mut FrameReader<R>,
    writer: &mut FrameWriter<W>,
) -> Result<Option<Bytes>, WireError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, reader.read_payload()).await {
        Err(_) => Err(WireError::HandshakeTimeout),
        Ok(Err(e)) => {
            if matches!(e, WireError::Frame(_)) {
                writer.say_bye(&e.to_string()).await;
            }
            Err(e)
        }
        Ok(Ok(payload)) => Ok(payload),
    }
}

/// A frame's kind, for messages.
pub fn frame_kind(frame: &Frame) -> &'static str {
    match frame {
        Frame::Hello(_) => "Hello",
        Frame::Change(_) => "Change",
        Frame::Heartbeat(_) => "Heartbeat",
        Frame::Bye { .. } => "Bye",
        Frame::Proof { .. } => "Proof",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frame::PROTOCOL_VERSION;

    fn key() -> WireKey {
        use std::sync::OnceLock;
        static KEY: OnceLock<WireKey> = OnceLock::new();
        KEY.get_or_init(WireKey::generate).clone()
    }

    #[tokio::test]
    async fn handshake_both_ways_then_frames_flow() {
        let (a, b) = tokio::io::duplex(64);
        let (ar, aw) = tokio::io::split(a);
        let (br, bw) = tokio::io::split(b);
        let (mut ar, mut aw) = (FrameReader::new(ar), FrameWriter::new(aw));
        let (mut br, mut bw) = (FrameReader::new(br), FrameWriter::new(bw));
        let server = tokio::spawn(async move {
            let peer = handshake(&mut ar, &mut aw, Hello::new(Role::Publisher, "pub"), Role::Subscriber, &key())
                .await
                .expect("server handshake");
            aw.write_frame(&Frame::Bye { reason: "done".into() }).await.expect("write");
            peer
        });
        let peer = handshake(&mut br, &mut bw, Hello::new(Role::Subscriber, "sub"), Role::Publisher, &key())
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
            handshake(&mut br, &mut bw, future, Role::Publisher, &key()).await
        });
        let (mut ar, mut aw) = (FrameReader::new(ar), FrameWriter::new(aw));
        let err = handshake(&mut ar, &mut aw, Hello::new(Role::Publisher, "pub"), Role::Subscriber, &key())
            .await
            .expect_err("version mismatch");
        assert!(matches!(err, WireError::Hello(HelloError::WrongVersion { .. })), "{err}");
        // The client got our Hello, then our Bye where our proof was due.
        let client_result = client.await.expect("join");
        assert!(matches!(client_result, Err(WireError::PeerSaidBye(_))), "{client_result:?}");
    }

    #[tokio::test]
    async fn garbage_instead_of_hello_is_refused() {
        let (a, b) = tokio::io::duplex(1024);
        let (ar, aw) = tokio::io::split(a);
        let (_br, mut bw) = tokio::io::split(b);
        bw.write_all(b"\x00\x00\x00\x05junk!").await.expect("write");
        let (mut ar, mut aw) = (FrameReader::new(ar), FrameWriter::new(aw));
        let err = handshake(&mut ar, &mut aw, Hello::new(Role::Publisher, "pub"), Role::Subscriber, &key())
            .await
            .expect_err("garbage");
        assert!(matches!(err, WireError::Hello(HelloError::NotHello)), "{err}");
    }

    #[tokio::test]
    async fn a_peer_with_another_key_is_refused_on_both_sides() {
        let (a, b) = tokio::io::duplex(1024);
        let (ar, aw) = tokio::io::split(a);
        let (br, bw) = tokio::io::split(b);
        let impostor = tokio::spawn(async move {
            let (mut br, mut bw) = (FrameReader::new(br), FrameWriter::new(bw));
            handshake(&mut br, &mut bw, Hello::new(Role::Publisher, "impostor"), Role::Subscriber, &WireKey::generate())
                .await
        });
        let (mut ar, mut aw) = (FrameReader::new(ar), FrameWriter::new(aw));
        let err = handshake(&mut ar, &mut aw, Hello::new(Role::Subscriber, "sub"), Role::Publisher, &key())
            .await
            .expect_err("wrong key");
        assert!(matches!(err, WireError::Unauthenticated), "{err}");
        let theirs = impostor.await.expect("join");
        assert!(matches!(theirs, Err(WireError::Unauthenticated | WireError::PeerSaidBye(_))), "{theirs:?}");
    }
}
