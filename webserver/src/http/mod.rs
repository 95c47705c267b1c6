//! The HTTP surface: every route, and the rules every request passes.
//!
//! [`app`] builds the whole surface from an [`AppState`] as an axum
//! `Router`, so tests drive it without a port (`tower::ServiceExt::oneshot`)
//! and `main.rs` only adds the listener ([`serve`]).
//!
//! * [`events`] — `/api/events` (list, one, its snapshot, create, end),
//!   `/api/changes` (the change log) and `/api/cameras`.
//! * [`system`] — `/api/health`, `/api/metrics` (JSON), `/metrics`
//!   (Prometheus, rendered by [`prometheus`]) and the AsyncAPI document.
//! * [`dashboard`] — the embedded page and its assets.
//! * [`error`] — [`ApiError`](error::ApiError), the one error type: JSON
//!   bodies that never leak internals.
//! * [`auth`] — the optional access token; [`host`] — the `Host` rule
//!   against DNS rebinding; [`origin`] — the WebSocket origin rule.
//! * [`snapshot`] — opening snapshot files without following links or
//!   blocking on odd files, and streaming them.
//! * [`serve`] — the listener: header timeout, per-address and global
//!   connection caps, accept back-off, graceful stop.
//!
//! The WebSocket route is here like every route, but its handler lives
//! with the rest of the stream, in `crate::stream::ws`.

pub mod auth;
pub mod dashboard;
pub mod error;
pub mod events;
pub mod host;
pub mod origin;
pub mod prometheus;
pub mod serve;
pub mod snapshot;
pub mod system;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::state::AppState;
use crate::stream::ws;

/// Largest accepted request body (REST).
pub const MAX_BODY: usize = 64 * 1024;

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
        events::list_events,
        events::get_event,
        events::event_image,
        events::cameras,
        events::create_event,
        events::end_event,
        events::list_changes,
        events::event_changes,
        system::health,
        system::metrics_json,
        system::metrics_prometheus,
        system::livez,
        system::readyz,
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
        .route("/api/events", get(events::list_events).post(events::create_event))
        .route("/api/events/{event_id}", get(events::get_event))
        .route("/api/events/{event_id}/image", get(events::event_image))
        .route("/api/events/{event_id}/changes", get(events::event_changes))
        .route("/api/events/{event_id}/end", axum::routing::put(events::end_event))
        .route("/api/changes", get(events::list_changes))
        .route("/api/cameras", get(events::cameras))
        .route("/api/health", get(system::health))
        .route("/api/metrics", get(system::metrics_json))
        .route("/metrics", get(system::metrics_prometheus))
        .route("/api/asyncapi.json", get(system::asyncapi))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_token))
        // Probes carry no token: after the token layer, so it does not apply.
        .route("/livez", get(system::livez))
        .route("/readyz", get(system::readyz))
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

/// A JSON body that is already serialised (events are their canonical
/// JSON, never re-encoded).
fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(CONTENT_TYPE, "application/json")], body).into_response()
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
