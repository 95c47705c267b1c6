//! What every request handler and stream task shares: [`AppState`].
//!
//! Both halves of the webserver read it — the HTTP surface (`http`) for
//! the database, metrics and links, the stream (`stream`) for the fan-out,
//! the catch-up database and the sequencer — so it lives beside them, not
//! in either. It is built once by `main.rs` (or a test) and cloned into
//! each handler as an `Arc`.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use crate::db::Db;
use crate::http::host::HostRule;
use crate::http::serve::ListenerStats;
use crate::metrics::Metrics;
use crate::stream::bridge::Links;
use crate::stream::fanout::Fanout;
use crate::stream::sequencer::Sequencer;

/// WebSocket catch-up reads in flight at once.
pub const CATCH_UP_READS: usize = 4;

/// Costly REST queries allowed at once.
pub const HEAVY_QUERIES: usize = 2;

/// Settings fixed at start.
#[derive(Debug, Clone)]
pub struct Config {
    pub heartbeat: Duration,
    /// Normalised extra origins allowed on `/ws/events`.
    pub allowed_origins: Vec<String>,
    /// When set, required on everything but the page, its assets and docs.
    pub token: Option<String>,
    /// Where event snapshots (`image_path`) are found.
    pub data_dir: shared::config::DataDir,
    /// Which `Host` names are served.
    pub hosts: HostRule,
}

/// Where the process is in its life, for `/readyz`: ready once it serves,
/// not ready again from the first moment of shutdown, so a load balancer
/// stops sending before connections close.
#[derive(Debug, Default)]
pub struct Readiness {
    serving: std::sync::atomic::AtomicBool,
    stopping: std::sync::atomic::AtomicBool,
}

impl Readiness {
    pub fn serving(&self) {
        self.serving.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn stopping(&self) {
        self.stopping.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// `starting`, `ready` or `stopping`.
    pub fn phase(&self) -> &'static str {
        use std::sync::atomic::Ordering::Relaxed;
        match (self.serving.load(Relaxed), self.stopping.load(Relaxed)) {
            (_, true) => "stopping",
            (true, false) => "ready",
            (false, false) => "starting",
        }
    }
}

/// Everything request handlers share. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

#[derive(Debug)]
pub struct Shared {
    /// REST reads and `POST /api/events`.
    pub db: Db,
    /// WebSocket catch-up reads only: REST can never queue in front of them.
    pub replay_db: Db,
    pub fanout: Arc<Fanout>,
    pub sequencer: Sequencer,
    pub metrics: Arc<Metrics>,
    pub links: Arc<Links>,
    pub listener: Arc<ListenerStats>,
    /// Permits for costly REST queries (text and label search, per-camera
    /// totals): beyond them a request gets 503 at once instead of queueing.
    pub heavy_queries: tokio::sync::Semaphore,
    /// Permits for WebSocket catch-up reads: a flood of `after_seq=0`
    /// upgrades waits its turn instead of piling up pages in memory.
    pub catch_up_reads: tokio::sync::Semaphore,
    /// `events.jsonl` and `events.log`, for API-created events.
    pub logs: Arc<std::sync::Mutex<shared::eventlog::EventLogs>>,
    /// The result of the `quick_check` run at start: `None` while it runs.
    pub integrity: std::sync::Mutex<Option<Result<(), String>>>,
    pub readiness: Readiness,
    pub config: Config,
    /// MQTT and webhooks, for health and metrics.
    pub outputs: Vec<Arc<crate::outputs::OutputStatus>>,
    /// Cluster mode's link to the stream; `None` on one machine.
    pub cluster: Option<Arc<crate::stream::cluster::Cluster>>,
    /// Cluster mode: snapshots fetched from the stream's bucket.
    pub snapshot_cache: Option<crate::http::snapshot::SnapshotCache>,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}
