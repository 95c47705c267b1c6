//! Lookout's webserver: the browser side of the event stream.
//!
//! The detector commits events and announces them on its socket; this crate
//! turns those announcements into WebSocket messages for any number of
//! browsers, and serves the REST API, metrics, API docs and the dashboard.
//! Its two halves are two folders:
//!
//! * [`stream`] — from detector sockets to browsers: bridge, sequencer,
//!   fan-out, the `/ws/events` writer and reader, message formats. The live
//!   path: no REST query ever runs on its tasks, connections or threads.
//! * [`http`] — the HTTP surface: [`app`] (every route), REST handlers,
//!   health and metrics, auth, host and origin rules, the dashboard, the
//!   listener.
//!
//! Beside them, fed by the stream's sequencer and the database:
//!
//! * [`outputs`] — MQTT (with Home Assistant discovery) and webhooks: each
//!   change at least once, in order, from a cursor kept in the database.
//!
//! Between them, each used by both:
//!
//! * [`state`] — [`AppState`], what every handler and stream task shares;
//! * [`db`] — [`Db`](db::Db), database connections on threads of their own;
//! * [`metrics`] — counters, the latency window and histogram, the
//!   `/proc/self` sampler;
//! * [`cli`] — the command line.
//!
//! `main.rs` opens the databases, starts the tasks, serves [`app`] and owns
//! the shutdown order.

pub mod cli;
pub mod db;
pub mod http;
pub mod metrics;
pub mod outputs;
pub mod state;
pub mod stream;

pub use http::app;
pub use state::AppState;
