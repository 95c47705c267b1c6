//! Lookout's webserver: the browser side of the event stream.
//!
//! The detector commits events and announces them on its socket; this crate
//! turns those announcements into WebSocket messages for any number of
//! browsers, and serves the REST API, metrics, API docs and the dashboard.
//!
//! ```text
//!  detector socket(s) ─► bridge ─┐
//!  POST /api/events ─────────────┼─► sequencer ─► fanout ─► one shared ring ─► ws writers
//!  database poll ────────────────┘   (seq order,   (one send,
//!                                     no gaps)      never waits)
//! ```
//!
//! * [`bridge`] — one task per detector socket: reconnect with back-off,
//!   catch up after each reconnect, forward frames, keep link status.
//! * [`sequencer`] — the one ordering point: strictly increasing `seq`, each
//!   event once, gaps filled from the database.
//! * [`fanout`] — the connection manager: the shared live feed, kicks.
//! * [`ws`] — `/ws/events`: origin check, catch-up, writer and reader halves.
//! * [`messages`] — the WebSocket message formats.
//! * [`rest`] — events, health and metrics endpoints; [`error`] — their one
//!   error type.
//! * [`snapshot`] — opening snapshot files without following links or
//!   blocking on odd files, and streaming them.
//! * [`dashboard`] — the embedded page and its assets.
//! * [`auth`] — the optional access token; [`host`] — the `Host` rule
//!   against DNS rebinding.
//! * [`serve`] — the HTTP listener: header timeout, per-address and global
//!   connection caps, accept back-off, graceful stop.
//! * [`origin`], [`metrics`], [`db`], [`cli`] — small supporting pieces.
//!
//! [`app`] builds the whole HTTP surface from an [`AppState`], so tests can
//! drive it without a port; `main.rs` adds the listener, signals and tasks.

pub mod auth;
pub mod bridge;
pub mod cli;
pub mod dashboard;
pub mod db;
pub mod error;
pub mod fanout;
pub mod host;
pub mod messages;
pub mod metrics;
pub mod origin;
pub mod rest;
pub mod sequencer;
pub mod serve;
pub mod snapshot;
pub mod ws;

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Request, header};
use axum::routing::get;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::bridge::Link;
use crate::db::Db;
use crate::fanout::Fanout;
use crate::metrics::Metrics;
use crate::sequencer::Sequencer;

/// Largest accepted request body (REST).
pub const MAX_BODY: usize = 64 * 1024;

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
    pub hosts: host::HostRule,
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
    pub links: Vec<Arc<Link>>,
    pub listener: Arc<serve::ListenerStats>,
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
    pub config: Config,
}

/// WebSocket catch-up reads in flight at once.
pub const CATCH_UP_READS: usize = 4;

/// Costly REST queries allowed at once.
pub const HEAVY_QUERIES: usize = 2;

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

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Lookout API",
        description = "Camera events: REST history and live streaming. The WebSocket \
                       messages of /ws/events are described in /api/asyncapi.json. On a \
                       loopback bind, a request whose Host is not a loopback name (or an \
                       --allowed-host) gets 421 misdirected_request."
    ),
    paths(
        rest::list_events,
        rest::get_event,
        rest::event_image,
        rest::cameras,
        rest::create_event,
        rest::health,
        rest::metrics_json,
        rest::metrics_prometheus,
        ws::ws_events
    ),
    components(schemas(shared::Event, error::ErrorBody)),
    tags(
        (name = "events", description = "Stored events"),
        (name = "stream", description = "Live events over WebSocket"),
        (name = "system", description = "Health and metrics")
    )
)]
pub struct ApiDoc;

/// The whole HTTP surface.
pub fn app(state: AppState) -> Router {
    let hosts = axum::middleware::from_fn_with_state(state.clone(), host::check_host);
    let api = Router::new()
        .route("/", get(dashboard::index))
        .route("/static/{name}", get(dashboard::asset))
        .route("/ws/events", get(ws::ws_events))
        .route("/api/events", get(rest::list_events).post(rest::create_event))
        .route("/api/events/{event_id}", get(rest::get_event))
        .route("/api/events/{event_id}/image", get(rest::event_image))
        .route("/api/cameras", get(rest::cameras))
        .route("/api/health", get(rest::health))
        .route("/api/metrics", get(rest::metrics_json))
        .route("/metrics", get(rest::metrics_prometheus))
        .route("/api/asyncapi.json", get(rest::asyncapi))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_token))
        .with_state(state);
    let request_id = HeaderName::from_static("x-request-id");
    api.merge(SwaggerUi::new("/docs").url("/api/openapi.json", ApiDoc::openapi()))
        .fallback(|| async { error::ApiError::NotFound("no such endpoint".into()) })
        .layer(hosts)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req.extensions().get::<RequestId>().and_then(|id| id.header_value().to_str().ok()).unwrap_or("-");
            // The path only: a query may carry the access token.
            tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = id)
        }))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, Counter::default()))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
}

/// Request ids: a process-unique counter, cheaper than random ids and easy
/// to follow in a log.
#[derive(Debug, Clone, Default)]
struct Counter(Arc<AtomicU64>);

impl MakeRequestId for Counter {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        HeaderValue::from_str(&n.to_string()).ok().map(RequestId::new)
    }
}
