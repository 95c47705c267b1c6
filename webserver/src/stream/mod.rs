//! The stream half: how a committed event reaches every browser.
//!
//! ```text
//!  detector socket(s) ─► bridge ─┐
//!  (or the NATS stream ─► cluster)
//!  POST /api/events ─────────────┼─► sequencer ─► fanout ─► one shared ring ─► ws writers
//!  database poll (1 s) ──────────┘   (seq order,   (one send,   (each reads at
//!                                     no gaps)      never waits)  its own cursor)
//! ```
//!
//! * [`bridge`] — one task per detector socket: reconnect with back-off,
//!   catch up after each reconnect, forward frames, keep link status.
//! * [`cluster`] — cluster mode instead of sockets: the JetStream stream
//!   applied to this webserver's copy of the database, detector heartbeats
//!   from NATS, and the API's changes published to the stream.
//! * [`sequencer`] — the one ordering point: strictly increasing `seq`, each
//!   event once, gaps filled from the database.
//! * [`cursor`] — [`SeqCursor`](cursor::SeqCursor), the ordering rule itself
//!   (next expected `seq`, duplicate, gap), shared by the sequencer and
//!   every WebSocket writer.
//! * [`fanout`] — the connection manager: the shared live feed, kicks,
//!   the stuck-writer sweep.
//! * [`ws`] — `/ws/events`: checks before the upgrade, catch-up, the writer
//!   and reader halves.
//! * [`messages`] — the WebSocket message formats.
//!
//! Nothing here answers HTTP requests other than the upgrade in [`ws`];
//! the REST surface is in `crate::http`.

pub mod bridge;
pub mod cluster;
pub mod cursor;
pub mod fanout;
pub mod messages;
pub mod sequencer;
pub mod ws;
