//! Health, metrics and the AsyncAPI document: what operators and the
//! dashboard's health panel read.
//!
//! `/api/metrics` (JSON, for the dashboard) and `/metrics` (Prometheus)
//! report the same [`MetricsReport`], collected once per request.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::json_response;
use crate::state::AppState;
use crate::stream::bridge::LinkStatus;
use crate::stream::fanout::FanoutStats;

/// Longest `/readyz` waits for the database.
const READY_DB_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /livez` and `GET /readyz`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Probe {
    /// `alive`; or `ready`, `starting`, `stopping`, `database unavailable`.
    pub status: &'static str,
}

/// Liveness: the process answers. No token, no database: a restart would
/// not cure a database problem.
#[utoipa::path(get, path = "/livez", responses((status = 200, body = Probe)), tag = "system")]
pub async fn livez() -> Json<Probe> {
    Json(Probe { status: "alive" })
}

/// Readiness: serving, not stopping, and the database answers a read.
/// 503 otherwise. No token.
#[utoipa::path(
    get,
    path = "/readyz",
    responses((status = 200, body = Probe), (status = 503, description = "Starting, stopping or database unavailable", body = Probe)),
    tag = "system"
)]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Probe>) {
    let phase = state.readiness.phase();
    if phase != "ready" {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(Probe { status: phase }));
    }
    match tokio::time::timeout(READY_DB_TIMEOUT, state.db.read(|s| s.head_seq())).await {
        Ok(Ok(_)) => (StatusCode::OK, Json(Probe { status: "ready" })),
        _ => (StatusCode::SERVICE_UNAVAILABLE, Json(Probe { status: "database unavailable" })),
    }
}

/// How long a failed database call keeps `/api/health` degraded.
const RECENT_DB_ERROR: Duration = Duration::from_secs(30);

/// `GET /api/health`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `healthy`, or `degraded` when the database or a detector is
    /// unreachable, a detector cannot commit, a camera's source is down,
    /// or (cluster mode) the stream cannot be reached.
    pub status: &'static str,
    pub version: &'static str,
    pub uptime_seconds: f64,
    pub database: DatabaseHealth,
    pub detectors: Vec<LinkStatus>,
    pub websocket_clients: u64,
    /// MQTT and webhooks: connected, cursor, lag, retries, give-ups.
    pub outputs: Vec<crate::outputs::OutputReport>,
    /// Cluster mode: the NATS link, stream head, consumer lag, peers.
    pub cluster: Option<crate::stream::cluster::ClusterStatus>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DatabaseHealth {
    /// `ok`, `degraded` (a call failed in the last 30 s, or the start-up
    /// check found damage) or `unavailable`.
    pub status: &'static str,
    /// The start-up `quick_check` of the whole file: `checking`, `ok` or
    /// `damaged`.
    pub integrity: &'static str,
    /// Highest committed `seq`.
    pub head_seq: Option<i64>,
    pub error: Option<String>,
}

/// Liveness and dependencies: database and detector links.
#[utoipa::path(get, path = "/api/health", responses((status = 200, body = Health)), tag = "system")]
pub async fn health(State(state): State<AppState>) -> Json<Health> {
    let head = tokio::time::timeout(Duration::from_secs(2), state.db.read(|s| s.head_seq())).await;
    let (integrity, damage) = match state.integrity.lock().ok().and_then(|i| i.clone()) {
        None => ("checking", None),
        Some(Ok(())) => ("ok", None),
        Some(Err(problems)) => ("damaged", Some(format!("quick_check: {problems}"))),
    };
    // Reads for catch-up go through connections of their own: their
    // failures count too.
    let recent = damage
        .or_else(|| state.db.recent_error(RECENT_DB_ERROR))
        .or_else(|| state.replay_db.recent_error(RECENT_DB_ERROR));
    let database = match head {
        Ok(Ok(head)) => match recent {
            Some(error) => DatabaseHealth { status: "degraded", integrity, head_seq: Some(head), error: Some(error) },
            None => DatabaseHealth { status: "ok", integrity, head_seq: Some(head), error: None },
        },
        Ok(Err(e)) => DatabaseHealth { status: "unavailable", integrity, head_seq: None, error: Some(e.to_string()) },
        Err(_) => DatabaseHealth { status: "unavailable", integrity, head_seq: None, error: Some("timed out".into()) },
    };
    let detectors: Vec<LinkStatus> = state.links.statuses();
    // A detector holding events it cannot commit is as unhealthy as a lost
    // one; so is a camera whose source is down, and (cluster mode) a
    // detector that cannot reach the stream.
    let detectors_ok = detectors.iter().all(|d| {
        d.connected
            && d.stats.as_ref().is_none_or(|s| {
                s.backlog == 0
                    && s.cameras.iter().all(|c| !c.state.is_down())
                    && s.outbox.as_ref().is_none_or(|o| o.connected)
            })
    });
    let cluster = state.cluster.as_ref().map(|c| c.status());
    let cluster_ok = cluster.as_ref().is_none_or(|c| c.connected && c.last_error.is_none());
    let outputs: Vec<_> = state.outputs.iter().map(|o| o.report(state.sequencer.head())).collect();
    // An output that cannot reach its receiver is falling behind; one that
    // has not tried yet (a webhook on a quiet night) is not failing.
    let outputs_ok = outputs.iter().all(|o| o.connected || o.last_error.is_none());
    let healthy = database.status == "ok" && detectors_ok && outputs_ok && cluster_ok;
    Json(Health {
        status: if healthy { "healthy" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.metrics.started.elapsed().as_secs_f64(),
        database,
        detectors,
        websocket_clients: state.fanout.len() as u64,
        outputs,
        cluster,
    })
}

/// `GET /api/metrics`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MetricsReport {
    pub uptime_seconds: f64,
    pub websocket: WebsocketMetrics,
    pub http: HttpMetrics,
    pub events: EventMetrics,
    pub process: ProcessMetrics,
    pub detectors: Vec<DetectorMetrics>,
    /// Bytes per kind and retention state, sampled every 30 s (null
    /// before the first sample).
    pub storage: Option<crate::metrics::StorageMetrics>,
    /// Per output (MQTT, webhooks).
    pub outputs: Vec<crate::outputs::OutputReport>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebsocketMetrics {
    pub connections: FanoutStats,
    pub max_clients: u64,
    pub messages_sent: u64,
}

/// Connections the listener refused (see `--max-connections-per-address`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HttpMetrics {
    pub refused_per_address: u64,
    pub refused_full: u64,
    pub accept_errors: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventMetrics {
    pub broadcast: u64,
    /// Detector announcements that did not match the database (forged, or
    /// a detector of another data directory); none of them was broadcast.
    pub rejected_announcements: u64,
    /// Over the last 10 s.
    pub per_second: f64,
    /// Commit → handed to every client's queue, in ms, over recent events.
    #[schema(value_type = Object)]
    pub broadcast_latency_ms: shared::stats::Percentiles,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProcessMetrics {
    /// Of one core; may exceed 100 on several cores.
    pub cpu_percent: f64,
    pub rss_bytes: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DetectorMetrics {
    pub socket: String,
    pub connected: bool,
    pub frames_processed: u64,
    pub events_created: u64,
    #[schema(value_type = Object)]
    pub inference_ms: shared::stats::Percentiles,
    /// Time the detector takes to commit one event durably (fsync included):
    /// the floor under the commit → client latency.
    #[schema(value_type = Object)]
    pub commit_ms: shared::stats::Percentiles,
    /// Events announced and not yet ended.
    pub active_events: u64,
    /// From an event's start (its first motion frame) to its `new` being
    /// committed by the detector.
    #[schema(value_type = Object)]
    pub announce_ms: shared::stats::Percentiles,
    /// Per camera: state, frames, motion frames, restarts and the time per
    /// pipeline stage (`decode_wait`, `motion`, `snapshot`).
    #[schema(value_type = Vec<Object>)]
    pub cameras: Vec<shared::wire::CameraStatus>,
}

impl MetricsReport {
    pub fn collect(state: &AppState) -> Self {
        let m = &state.metrics;
        Self {
            uptime_seconds: m.started.elapsed().as_secs_f64(),
            websocket: WebsocketMetrics {
                connections: state.fanout.stats(),
                max_clients: state.fanout.max_clients() as u64,
                messages_sent: m.messages_sent.load(std::sync::atomic::Ordering::Relaxed),
            },
            http: HttpMetrics {
                refused_per_address: state.listener.refused_per_address.load(std::sync::atomic::Ordering::Relaxed),
                refused_full: state.listener.refused_full.load(std::sync::atomic::Ordering::Relaxed),
                accept_errors: state.listener.accept_errors.load(std::sync::atomic::Ordering::Relaxed),
            },
            events: EventMetrics {
                broadcast: m.events_broadcast.load(std::sync::atomic::Ordering::Relaxed),
                rejected_announcements: m.rejected_announcements.load(std::sync::atomic::Ordering::Relaxed),
                per_second: m.events_per_second(),
                broadcast_latency_ms: m.broadcast_latency(),
            },
            process: ProcessMetrics { cpu_percent: m.cpu_percent(), rss_bytes: m.rss_bytes() },
            detectors: state
                .links
                .statuses()
                .into_iter()
                .map(|s| DetectorMetrics {
                    socket: s.socket,
                    connected: s.connected,
                    frames_processed: s.stats.as_ref().map_or(0, |d| d.frames_processed),
                    events_created: s.stats.as_ref().map_or(0, |d| d.events_created),
                    inference_ms: s.stats.as_ref().map(|d| d.inference_ms).unwrap_or_default(),
                    commit_ms: s.stats.as_ref().map(|d| d.commit_ms).unwrap_or_default(),
                    active_events: s.stats.as_ref().map_or(0, |d| d.active_events),
                    announce_ms: s.stats.as_ref().map(|d| d.announce_ms).unwrap_or_default(),
                    cameras: s.stats.map(|d| d.cameras).unwrap_or_default(),
                })
                .collect(),
            storage: m.storage(),
            outputs: state.outputs.iter().map(|o| o.report(state.sequencer.head())).collect(),
        }
    }
}

/// Counters and latencies as JSON.
#[utoipa::path(get, path = "/api/metrics", responses((status = 200, body = MetricsReport)), tag = "system")]
pub async fn metrics_json(State(state): State<AppState>) -> Json<MetricsReport> {
    Json(MetricsReport::collect(&state))
}

/// The same numbers for Prometheus, in the OpenMetrics text format.
#[utoipa::path(get, path = "/metrics", responses((status = 200, content_type = "application/openmetrics-text", body = String)), tag = "system")]
pub async fn metrics_prometheus(State(state): State<AppState>) -> Response {
    let body = super::prometheus::render(&state, MetricsReport::collect(&state));
    ([(CONTENT_TYPE, super::prometheus::CONTENT_TYPE)], body).into_response()
}

/// The AsyncAPI description of `/ws/events`.
pub async fn asyncapi() -> Response {
    json_response(StatusCode::OK, include_str!("../../../docs/asyncapi.json").to_owned())
}
