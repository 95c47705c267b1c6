//! Cluster mode on NATS JetStream (SPEC §10): what a detector and a
//! webserver on different hosts agree on.
//!
//! One machine needs none of this: the detector's SQLite file is the log and
//! its local socket the notification. When Lookout spans machines, a
//! JetStream **stream** is the log instead, and its stream sequence is the
//! global `seq`:
//!
//! ```text
//!  detector (host A) ─ SQLite = outbox ─► lookout.changes.A.<camera> ─┐
//!  detector (host B) ─ SQLite = outbox ─► lookout.changes.B.<camera> ─┼─► stream LOOKOUT ─► webserver 1, 2, 3 …
//!  webserver POST    ──────────────────► lookout.changes.N.api.<cam> ─┘    (seq = stream     (each applies it to
//!                                                                           sequence)         its own SQLite copy)
//!  heartbeats        ──────────────────► lookout.heartbeat.<node>  (core NATS, not stored)
//!  snapshots         ─ put before the change naming them ─► bucket LOOKOUT_snapshots ─► webservers' image cache
//! ```
//!
//! * [`options`] — `NatsArgs`, the flags both binaries take (`--nats`,
//!   `--node-id`, the stream's name and replicas, credentials and TLS), the
//!   `[nats]` section of `lookout.toml`, and `connect`.
//! * [`subjects`] — every subject name, built in one place.
//! * [`message`] — the change message: its headers (schema version, the
//!   outbox's identity and local `seq`, the dedup id) and JSON body, and
//!   the decoder that refuses what it does not understand with a reason.
//! * [`stream`] — the stream's configuration, created when absent and
//!   checked when present: a stream made with other settings is a clear
//!   error at start, not a surprise later; its limits come from the
//!   detectors' retention.
//! * [`snapshots`] — the object store bucket beside the stream that holds
//!   every snapshot a change names, put before the change is published.
//!
//! Only this crate knows NATS. It does no SQLite and no HTTP: the detector's
//! outbox publisher and the webserver's consumer (in those binaries) do the
//! work, with these pieces.

pub mod message;
pub mod options;
pub mod snapshots;
pub mod stream;
pub mod subjects;

pub use message::{Decoded, MessageError, SCHEMA_VERSION};
pub use options::{NATS_SECTION, NatsArgs};
pub use snapshots::Snapshots;
pub use stream::{ClusterError, Limits, StreamSettings};
