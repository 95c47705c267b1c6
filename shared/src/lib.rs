//! Lookout's shared library: what the detector and the webserver agree on.
//!
//! Lookout is two processes. The `detector` watches cameras (or simulates
//! them), commits each event to SQLite and publishes it on a local socket; the
//! `webserver` subscribes to that socket and fans events out to browsers.
//! Everything both sides must agree on lives here, and nothing else does:
//!
//! * [`model`] — the event and its changes (`new`, `update`, `end`), their
//!   validation, and their two encodings (JSON for people and browsers,
//!   postcard for the socket).
//! * [`store`] — the SQLite store: the change log and each event's current
//!   state. `seq` (one per change) is the cursor every catch-up resumes
//!   from; `seq` order is commit order across all writers.
//! * [`wire`] — the socket protocol: pure framing, the async connection, the
//!   endpoint naming and the subscriber client.
//! * [`stats`] — sample windows and percentiles, as both binaries report them.
//! * [`config`] — the defaults that let both binaries find the same data
//!   directory, database and socket with no flags at all.
//!
//! * [`redact`] — camera credentials masked wherever a source or an
//!   ffmpeg line is shown.
//! * [`eventlog`] — `events.jsonl` and `events.log`, appended by every
//!   process that commits events.
//! * [`retention`] — how long events are kept and how much disk they may
//!   take; the sweep that deletes what is due.
//! * [`durable`] — files and directories that survive a power cut.
//! * [`process`] — logging setup and shutdown signals for the binaries.
//! * [`settings`] — `lookout.toml`: each key stands for one flag of the
//!   binary owning its section; read, checked and merged under the command
//!   line.
//!
//! This crate knows nothing of HTTP, WebSockets or cameras, and no flag of
//! either binary: their command lines are theirs ([`settings`] only walks a
//! schema each binary gives it).

pub mod config;
pub mod durable;
pub mod eventlog;
pub mod model;
pub mod process;
pub mod redact;
pub mod retention;
pub mod settings;
pub mod stats;
pub mod store;
pub mod wire;

pub use model::{Change, ChangeKind, Event, EventState, NewEvent, Timestamp};
pub use store::Store;
