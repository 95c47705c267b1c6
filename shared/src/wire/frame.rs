//! Frames: what travels on the detector socket, and how it is cut into bytes.
//!
//! This module is pure: it turns [`Frame`]s into bytes and bytes into frames
//! and never touches a socket. [`super::connection`] does the I/O.
//!
//! # Layout
//!
//! ```text
//! +----------------------+-----------------------------+
//! | length: u32, big-end | payload: postcard(Frame)    |
//! +----------------------+-----------------------------+
//!        4 bytes            1 ..= MAX_FRAME_LEN bytes
//! ```
//!
//! [`decode`] answers [`Decoded::Incomplete`] until a whole frame is
//! buffered, and rejects a length over [`MAX_FRAME_LEN`] as soon as the four
//! header bytes arrive — before anything is allocated for it.
//!
//! # Versioning
//!
//! Both sides send a [`Frame::Hello`] first. `Hello` is variant 0 and begins
//! with [`MAGIC`] and the protocol version; that prefix is frozen, so any
//! version can read any other's version number ([`decode_hello`]) and refuse
//! it clearly even when the rest of the frame no longer parses.

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::model::{Change, Timestamp};
pub use crate::stats::{Histogram, Percentiles};

/// Bumped on any incompatible change to [`Frame`].
pub const PROTOCOL_VERSION: u16 = 9;
/// First bytes of every `Hello`: tells a Lookout peer from anything else.
pub const MAGIC: [u8; 4] = *b"LKWP";
/// Largest payload accepted or sent (1 MiB).
pub const MAX_FRAME_LEN: usize = 1 << 20;
/// Size of the length prefix.
pub const HEADER_LEN: usize = 4;

/// Everything that can be said on the socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Frame {
    /// First frame from each side. Must stay variant 0.
    Hello(Hello),
    /// A committed change of an event (publisher → subscriber).
    Change(Change),
    /// Periodic detector health and statistics (publisher → subscriber).
    Heartbeat(DetectorStats),
    /// The sender is about to close the connection, and why.
    Bye { reason: String },
    /// Second frame from each side: proof that the sender holds the data
    /// directory's wire key (see [`super::key`]).
    Proof { mac: [u8; super::key::PROOF_LEN] },
}

/// The handshake frame. The first two fields are frozen across versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub magic: [u8; 4],
    pub protocol_version: u16,
    pub role: Role,
    /// Who is speaking, for logs: e.g. `detector@host:1234`.
    pub name: String,
    /// Fresh per connection: what the peer's [`Frame::Proof`] must cover.
    pub nonce: [u8; super::key::NONCE_LEN],
}

impl Hello {
    /// A `Hello` with a fresh nonce.
    pub fn new(role: Role, name: impl Into<String>) -> Self {
        Self { magic: MAGIC, protocol_version: PROTOCOL_VERSION, role, name: name.into(), nonce: super::key::nonce() }
    }
}

/// Which end of the socket a peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Serves events (a detector).
    Publisher,
    /// Receives events (the webserver, tests, tools).
    Subscriber,
}

/// A detector's view of itself, sent every few seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorStats {
    pub sent_at: Timestamp,
    pub started_at: Timestamp,
    /// Events committed since start.
    pub events_created: u64,
    /// Highest `seq` this detector committed, if any.
    pub last_seq: Option<i64>,
    /// Frames examined since start (simulated frames in dry-run).
    pub frames_processed: u64,
    /// Detection time per frame, over a recent window.
    pub inference_ms: Percentiles,
    /// Time to commit one event durably (the SQLite transaction, fsync
    /// included), over a recent window: what each event waits before it may
    /// be published.
    pub commit_ms: Percentiles,
    /// Every detection time since start, for Prometheus.
    pub inference_seconds: Histogram,
    /// Every commit time since start, for Prometheus.
    pub commit_seconds: Histogram,
    /// Events announced and not yet ended.
    pub active_events: u64,
    /// From an event's start (its first motion frame) to its `new` being
    /// committed, over a recent window: what real-time means here.
    pub announce_ms: Percentiles,
    /// The same, every event since start, for Prometheus.
    pub announce_seconds: Histogram,
    pub cameras: Vec<CameraStatus>,
    /// Subscribers connected now.
    pub subscribers: u32,
    /// Subscribers dropped for not keeping up, since start.
    pub slow_subscribers_dropped: u64,
    /// Failed commit attempts, since start.
    pub store_errors: u64,
    /// Events waiting now for the database to accept writes.
    pub backlog: u64,
    /// In cluster mode, how far its changes reached the stream.
    pub outbox: Option<OutboxStatus>,
}

/// A detector's outbox in cluster mode: committed changes on their way
/// to the JetStream stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutboxStatus {
    /// The node id its subjects carry.
    pub node: String,
    /// Whether the last attempt to reach the stream succeeded.
    pub connected: bool,
    /// The highest local `seq` the stream acknowledged.
    pub published_through: i64,
    /// Its stream sequence.
    pub stream_seq: u64,
    /// Committed changes not yet acknowledged.
    pub pending: u64,
    /// Changes the stream acknowledged, since start.
    pub published: u64,
    /// Why the stream was last unreachable, if it was.
    pub last_error: Option<String>,
}

/// One camera as its detector sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CameraStatus {
    pub camera_id: String,
    pub state: CameraState,
    pub events: u64,
    /// Frames analysed since start.
    pub frames: u64,
    /// Frames in which motion was found (the hit rate is this / `frames`).
    pub motion_frames: u64,
    /// Times the source was restarted after it failed or ended.
    pub restarts: u64,
    /// Why the source last failed, while it is not up.
    pub last_error: Option<String>,
    /// Time spent per pipeline stage, over a recent window.
    pub stages: Vec<StageTimes>,
    /// The object labels it reports (its wanted labels; a dry run's
    /// simulated ones): Home Assistant gets a count sensor for each.
    pub labels: Vec<String>,
    /// Taken out of the detector's settings by a reload: still listed
    /// (`ended`) until the detector restarts, but no longer its camera.
    pub removed: bool,
}

/// Milliseconds spent in one camera pipeline stage (`decode_wait`, `motion`,
/// `snapshot`), over a recent window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageTimes {
    pub stage: String,
    pub ms: Percentiles,
    /// Every time of this stage since start, for Prometheus.
    pub seconds: Histogram,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CameraState {
    Up,
    Reconnecting,
    Failed,
    Ended,
}

impl CameraState {
    /// The source should be delivering frames and is not (health turns
    /// `degraded`). A file that ended normally is not down.
    pub fn is_down(self) -> bool {
        matches!(self, Self::Reconnecting | Self::Failed)
    }
}

/// What [`decode`] found at the front of a buffer.
#[derive(Debug, PartialEq)]
pub enum Decoded<T> {
    /// A whole frame, which took `consumed` bytes of the buffer.
    Complete { frame: T, consumed: usize },
    /// Not enough bytes yet: at least `needed` more must arrive.
    Incomplete { needed: usize },
}

/// Bytes that cannot be a frame. Each one ends the connection it came from.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the {MAX_FRAME_LEN}-byte limit")]
    Oversize { len: usize },
    #[error("empty frame")]
    Empty,
    #[error("malformed frame: {0}")]
    Malformed(#[from] postcard::Error),
    #[error("malformed frame: {0} trailing bytes after the payload")]
    TrailingBytes(usize),
}

/// Why a handshake's first frame was refused.
#[derive(Debug, thiserror::Error)]
pub enum HelloError {
    #[error("peer is not a Lookout detector socket peer (bad magic)")]
    NotLookout,
    #[error("peer speaks protocol version {theirs}, this build speaks {PROTOCOL_VERSION}")]
    WrongVersion { theirs: u16 },
    #[error("expected Hello as the first frame")]
    NotHello,
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// Splits the first frame's payload off `buf` without parsing it.
pub fn split_payload(buf: &[u8]) -> Result<Decoded<&[u8]>, FrameError> {
    let Some(header) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(Decoded::Incomplete { needed: HEADER_LEN - buf.len() });
    };
    let len = u32::from_be_bytes(*header) as usize;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::Oversize { len });
    }
    if len == 0 {
        return Err(FrameError::Empty);
    }
    let total = HEADER_LEN + len;
    match buf.get(HEADER_LEN..total) {
        Some(payload) => Ok(Decoded::Complete { frame: payload, consumed: total }),
        None => Ok(Decoded::Incomplete { needed: total - buf.len() }),
    }
}

/// Parses one frame payload (without its length prefix).
pub fn parse_payload(payload: &[u8]) -> Result<Frame, FrameError> {
    let (frame, rest) = postcard::take_from_bytes::<Frame>(payload)?;
    if rest.is_empty() { Ok(frame) } else { Err(FrameError::TrailingBytes(rest.len())) }
}

/// Decodes the first frame in `buf`.
pub fn decode(buf: &[u8]) -> Result<Decoded<Frame>, FrameError> {
    Ok(match split_payload(buf)? {
        Decoded::Complete { frame: payload, consumed } => {
            Decoded::Complete { frame: parse_payload(payload)?, consumed }
        }
        Decoded::Incomplete { needed } => Decoded::Incomplete { needed },
    })
}

/// Parses a handshake payload, checking magic and version from the frozen
/// prefix before trusting the rest.
pub fn decode_hello(payload: &[u8]) -> Result<Hello, HelloError> {
    // Frozen prefix: variant index, magic, version.
    let ((variant, magic, version), _) =
        postcard::take_from_bytes::<(u32, [u8; 4], u16)>(payload).map_err(|_| HelloError::NotHello)?;
    if variant != 0 {
        return Err(HelloError::NotHello);
    }
    if magic != MAGIC {
        return Err(HelloError::NotLookout);
    }
    if version != PROTOCOL_VERSION {
        return Err(HelloError::WrongVersion { theirs: version });
    }
    match parse_payload(payload)? {
        Frame::Hello(hello) => Ok(hello),
        _ => Err(HelloError::NotHello),
    }
}

/// Appends `frame`, length-prefixed, to `dst`.
pub fn encode_into(frame: &Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
    let payload = postcard::to_stdvec(frame)?;
    let len = payload.len();
    if len > MAX_FRAME_LEN {
        return Err(FrameError::Oversize { len });
    }
    dst.reserve(HEADER_LEN + len);
    dst.put_u32(len as u32);
    dst.put_slice(&payload);
    Ok(())
}

/// Encodes `frame` once into a shareable buffer, for sending to many peers.
pub fn encode(frame: &Frame) -> Result<Bytes, FrameError> {
    let mut buf = BytesMut::new();
    encode_into(frame, &mut buf)?;
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ChangeKind;
    use crate::model::tests::arb_event;
    use proptest::prelude::*;

    fn hello() -> Frame {
        Frame::Hello(Hello::new(Role::Publisher, "detector@test:1"))
    }

    fn complete(buf: &[u8]) -> (Frame, usize) {
        match decode(buf).expect("decodes") {
            Decoded::Complete { frame, consumed } => (frame, consumed),
            other => panic!("expected a complete frame, got {other:?}"),
        }
    }

    fn sample_stats() -> DetectorStats {
        DetectorStats {
            sent_at: Timestamp::from_unix_ms(2),
            started_at: Timestamp::from_unix_ms(1),
            events_created: 3,
            last_seq: Some(3),
            frames_processed: 90,
            inference_ms: Percentiles { count: 90, p50: 12.5, p95: 20.0, p99: 31.0, max: 40.0 },
            commit_ms: Percentiles { count: 7, p50: 0.5, p95: 0.9, p99: 1.2, max: 1.2 },
            inference_seconds: Histogram { counts: vec![0, 1, 2], sum_seconds: 0.25 },
            commit_seconds: Histogram::default(),
            active_events: 2,
            announce_ms: Percentiles { count: 3, p50: 210.0, p95: 300.0, p99: 310.0, max: 310.0 },
            announce_seconds: Histogram { counts: vec![0, 0, 3], sum_seconds: 0.7 },
            cameras: vec![CameraStatus {
                camera_id: "door".into(),
                state: CameraState::Reconnecting,
                events: 3,
                frames: 90,
                motion_frames: 12,
                restarts: 1,
                last_error: Some("source ended".into()),
                stages: vec![StageTimes {
                    stage: "motion".into(),
                    ms: Percentiles { count: 90, ..Default::default() },
                    seconds: Histogram { counts: vec![90; 17], sum_seconds: 1.5 },
                }],
                labels: vec!["person".into(), "dog".into()],
                removed: false,
            }],
            subscribers: 1,
            slow_subscribers_dropped: 0,
            store_errors: 0,
            backlog: 0,
            outbox: Some(OutboxStatus {
                node: "barn".into(),
                connected: true,
                published_through: 3,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn round_trip_of_each_kind() {
        for frame in [
            hello(),
            Frame::Heartbeat(sample_stats()),
            Frame::Bye { reason: "shutdown".into() },
            Frame::Proof { mac: [7; 32] },
        ] {
            let bytes = encode(&frame).expect("encode");
            assert_eq!(complete(&bytes), (frame, bytes.len()));
        }
    }

    #[test]
    fn every_truncation_is_incomplete_never_an_error() {
        let bytes = encode(&hello()).expect("encode");
        for cut in 0..bytes.len() {
            match decode(&bytes[..cut]).expect("a prefix is not an error") {
                Decoded::Incomplete { needed } => {
                    assert!(needed >= 1 && cut + needed <= bytes.len())
                }
                other => panic!("prefix of {cut} bytes decoded as {other:?}"),
            }
        }
    }

    #[test]
    fn two_frames_back_to_back() {
        let mut buf = BytesMut::new();
        let hello = hello();
        encode_into(&hello, &mut buf).expect("encode");
        encode_into(&Frame::Bye { reason: "x".into() }, &mut buf).expect("encode");
        let (first, used) = complete(&buf);
        assert_eq!(first, hello);
        let (second, rest) = complete(&buf[used..]);
        assert_eq!(second, Frame::Bye { reason: "x".into() });
        assert_eq!(used + rest, buf.len());
    }

    #[test]
    fn oversize_length_is_rejected_from_the_header_alone() {
        // A 4 GiB length prefix, with no payload behind it.
        let err = decode(&[0xFF, 0xFF, 0xFF, 0xFF]).expect_err("oversize");
        assert!(matches!(err, FrameError::Oversize { len } if len == u32::MAX as usize));
        let just_over = ((MAX_FRAME_LEN + 1) as u32).to_be_bytes();
        assert!(matches!(decode(&just_over), Err(FrameError::Oversize { .. })));
    }

    #[test]
    fn oversize_frame_is_not_encoded() {
        let frame = Frame::Bye { reason: "x".repeat(MAX_FRAME_LEN) };
        let mut buf = BytesMut::from(&b"keep"[..]);
        assert!(matches!(encode_into(&frame, &mut buf), Err(FrameError::Oversize { .. })));
        assert_eq!(&buf[..], b"keep", "a failed encode leaves the buffer as it was");
    }

    #[test]
    fn garbage_and_empty_frames_are_errors() {
        assert!(matches!(decode(&[0, 0, 0, 0]), Err(FrameError::Empty)));
        // Variant 200 does not exist.
        assert!(matches!(decode(&[0, 0, 0, 2, 200, 1]), Err(FrameError::Malformed(_))));
        // A valid Bye followed by junk inside the same frame.
        let mut payload = postcard::to_stdvec(&Frame::Bye { reason: String::new() }).expect("encode");
        payload.extend_from_slice(b"junk");
        let mut buf = (payload.len() as u32).to_be_bytes().to_vec();
        buf.extend_from_slice(&payload);
        assert!(matches!(decode(&buf), Err(FrameError::TrailingBytes(4))));
    }

    #[test]
    fn hello_checks_magic_and_version_first() {
        let ok = postcard::to_stdvec(&hello()).expect("encode");
        assert!(decode_hello(&ok).is_ok());

        let mut wrong_version = Hello::new(Role::Subscriber, "future");
        wrong_version.protocol_version = PROTOCOL_VERSION + 1;
        let mut payload = postcard::to_stdvec(&Frame::Hello(wrong_version)).expect("encode");
        // A future Hello may carry fields this build cannot parse: the
        // version must still be reported, not a parse error.
        payload.extend_from_slice(&[0xFF; 16]);
        assert!(
            matches!(decode_hello(&payload), Err(HelloError::WrongVersion { theirs }) if theirs == PROTOCOL_VERSION + 1)
        );

        let mut stranger = Hello::new(Role::Subscriber, "x");
        stranger.magic = *b"HTTP";
        let payload = postcard::to_stdvec(&Frame::Hello(stranger)).expect("encode");
        assert!(matches!(decode_hello(&payload), Err(HelloError::NotLookout)));

        let bye = postcard::to_stdvec(&Frame::Bye { reason: "x".into() }).expect("encode");
        assert!(matches!(decode_hello(&bye), Err(HelloError::NotHello)));
        assert!(matches!(decode_hello(b"GET / HTTP/1.1\r\n"), Err(HelloError::NotHello)));
    }

    proptest! {
        #[test]
        fn change_frames_round_trip(event in arb_event(), kind in prop_oneof![Just(ChangeKind::New), Just(ChangeKind::Update), Just(ChangeKind::End)]) {
            let frame = Frame::Change(Change { kind, event });
            let bytes = encode(&frame).expect("encode");
            prop_assert_eq!(complete(&bytes), (frame, bytes.len()));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
            let _ = decode_hello(&bytes);
        }
    }

    /// Where the fuzz targets start: one frame of each kind, of this
    /// protocol version.
    fn seed_frames() -> Vec<Frame> {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let event = arb_event().new_tree(&mut runner).expect("generate").current();
        vec![
            hello(),
            Frame::Hello(Hello::new(Role::Subscriber, "webserver@test:2")),
            Frame::Proof { mac: [7; 32] },
            Frame::Change(Change { kind: ChangeKind::New, event: event.clone() }),
            Frame::Change(Change { kind: ChangeKind::End, event }),
            Frame::Heartbeat(sample_stats()),
            Frame::Bye { reason: "shutdown".into() },
        ]
    }

    /// The committed fuzz seeds are frames this build decodes: a seed of an
    /// older protocol only tests the decoder's first few bytes. After a
    /// protocol change, `LOOKOUT_WRITE_FUZZ_SEEDS=1 cargo test -p shared
    /// fuzz_seeds` writes them anew.
    #[test]
    fn the_fuzz_seeds_are_frames_of_this_protocol() {
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
        let targets = ["frame_decode", "frame_round_trip"];
        if std::env::var_os("LOOKOUT_WRITE_FUZZ_SEEDS").is_some() {
            for target in targets {
                for (i, frame) in seed_frames().iter().enumerate() {
                    let path = corpus.join(target).join(format!("seed-{i}"));
                    std::fs::write(&path, encode(frame).expect("encode")).expect("write a seed");
                }
            }
        }
        for target in targets {
            let mut kinds = std::collections::HashSet::new();
            for i in 0..seed_frames().len() {
                let path = corpus.join(target).join(format!("seed-{i}"));
                let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let stale = "of another protocol: rewrite with LOOKOUT_WRITE_FUZZ_SEEDS=1";
                let frame = match decode(&bytes) {
                    Ok(Decoded::Complete { frame, consumed }) if consumed == bytes.len() => frame,
                    other => panic!("{} is not one frame ({other:?}), {stale}", path.display()),
                };
                if let Frame::Hello(hello) = &frame {
                    assert_eq!(hello.protocol_version, PROTOCOL_VERSION, "{}: {stale}", path.display());
                }
                kinds.insert(std::mem::discriminant(&frame));
            }
            assert_eq!(kinds.len(), 5, "{target}: a seed of every kind of frame");
        }
    }
}
