//! The detector socket's wire protocol.
//!
//! A detector publishes every committed event, and a heartbeat every few
//! seconds, to any number of subscribers over a local socket. The protocol is
//! deliberately small:
//!
//! * [`frame`] — the frame types and the pure byte-level codec:
//!   length-prefixed postcard, a 1 MiB ceiling, an explicit "incomplete"
//!   result, and a version-checked `Hello`. No I/O.
//! * [`connection`] — frames over any async byte stream: a buffered reader,
//!   a writer for pre-encoded frames, and the handshake.
//! * [`key`] — the data directory's wire key and the handshake's proofs:
//!   only a process that can read the data directory can take either end.
//! * [`endpoint`] — socket naming (file on Unix, pipe on Windows) and the
//!   subscriber's side of a connection.
//!
//! The detector's socket *server* (accept loop, per-subscriber queues) lives
//! in the `detector` crate: it is the only publisher.

pub mod connection;
pub mod endpoint;
pub mod frame;
pub mod key;

pub use connection::{FrameReader, FrameWriter, WireError, handshake};
pub use endpoint::{Subscription, Trust};
pub use frame::{CameraState, CameraStatus, DetectorStats, Frame, Hello, OutboxStatus, Percentiles, Role, StageTimes};
pub use key::WireKey;
