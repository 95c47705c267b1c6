//! The REST API: events, health and metrics.
//!
//! Event bodies are [`Event::to_json`] verbatim — the same bytes a
//! WebSocket client receives in `data` — so REST and the stream can never
//! disagree about an event.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shared::model::{DetectedObject, EventMetadata, EventSource, NewEvent, new_event_id};
use shared::store::{EventFilter, MAX_PAGE};
use shared::{Event, Timestamp};

use crate::AppState;
use crate::bridge::LinkStatus;
use crate::error::ApiError;
use crate::fanout::FanoutStats;
use crate::snapshot::Snapshot;

/// How long a failed database call keeps `/api/health` degraded.
const RECENT_DB_ERROR: Duration = Duration::from_secs(30);

/// Default page size of `GET /api/events`.
pub const DEFAULT_LIMIT: usize = 100;

/// Filters and paging for `GET /api/events`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this camera.
    pub camera_id: Option<String>,
    /// Seen at or after this RFC 3339 time.
    pub start: Option<String>,
    /// Seen at or before this RFC 3339 time.
    pub end: Option<String>,
    /// Only events with a larger `seq`.
    pub after_seq: Option<i64>,
    /// Only events with a smaller `seq`: pass the previous page's `next_before_seq`.
    pub before_seq: Option<i64>,
    /// Only events with a detected object of this label, e.g. `person`.
    pub label: Option<String>,
    /// Only events whose description or camera contains this text (any case).
    pub q: Option<String>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<i64>,
}

/// One page of events, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventPage {
    pub events: Vec<Event>,
    /// `before_seq` for the next (older) page; null on the last page.
    pub next_before_seq: Option<i64>,
}

/// List stored events, newest first, with filters and keyset paging.
#[utoipa::path(
    get,
    path = "/api/events",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of events", body = EventPage),
        (status = 400, description = "Bad parameter", body = crate::error::ErrorBody),
        (status = 503, description = "Too many costly searches at once; retry after `Retry-After` seconds", body = crate::error::ErrorBody),
    ),
    tag = "events"
)]
pub async fn list_events(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = match q.limit {
        None => DEFAULT_LIMIT,
        Some(n) if (1..=MAX_PAGE as i64).contains(&n) => n as usize,
        Some(n) => {
            return Err(ApiError::BadRequest(format!("limit must be between 1 and {MAX_PAGE}, not {n}")));
        }
    };
    if let Some(camera) = &q.camera_id {
        shared::model::validate_camera_id(camera).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    }
    let time = |name: &str, value: &Option<String>| -> Result<Option<Timestamp>, ApiError> {
        value
            .as_deref()
            .map(|v| {
                v.parse::<Timestamp>().map_err(|_| {
                    ApiError::BadRequest(format!("{name} must be an RFC 3339 time, e.g. 2026-11-25T17:03:16Z"))
                })
            })
            .transpose()
    };
    let text = |name: &str, value: &Option<String>, max: usize| -> Result<Option<String>, ApiError> {
        match value.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) if v.len() > max => Err(ApiError::BadRequest(format!("{name} must be at most {max} bytes"))),
            Some(v) => Ok(Some(v.to_owned())),
        }
    };
    let filter = EventFilter {
        camera_id: q.camera_id.clone(),
        start: time("start", &q.start)?,
        end: time("end", &q.end)?,
        after_seq: q.after_seq,
        before_seq: q.before_seq,
        label: text("label", &q.label, shared::model::MAX_LABEL_LEN)?,
        text: text("q", &q.q, 200)?,
    };
    let _permit = if filter.text.is_some() || filter.label.is_some() { Some(heavy_permit(&state)?) } else { None };
    let page = state.db.read(move |s| s.list(&filter, limit)).await?;
    // Built by hand so each event is exactly its canonical JSON.
    let events: Vec<String> = page.events.iter().map(Event::to_json).collect();
    let next = page.next_before_seq.map_or("null".to_owned(), |n| n.to_string());
    let body = format!(r#"{{"events":[{}],"next_before_seq":{next}}}"#, events.join(","));
    Ok(json_response(StatusCode::OK, body))
}

/// One event by id.
#[utoipa::path(
    get,
    path = "/api/events/{event_id}",
    params(("event_id" = String, Path, description = "e.g. evt_1795628188939_59f2")),
    responses(
        (status = 200, description = "The event", body = Event),
        (status = 404, description = "No such event", body = crate::error::ErrorBody),
    ),
    tag = "events"
)]
pub async fn get_event(State(state): State<AppState>, Path(event_id): Path<String>) -> Result<Response, ApiError> {
    Ok(json_response(StatusCode::OK, find_event(&state, &event_id).await?.to_json()))
}

/// The stored event `event_id`, or a 404 saying why there is none.
async fn find_event(state: &AppState, event_id: &str) -> Result<Event, ApiError> {
    if !shared::model::is_valid_event_id(event_id) {
        return Err(ApiError::NotFound(format!("no event {event_id:?} (ids look like evt_<unix-ms>_<4 hex>)")));
    }
    let id = event_id.to_owned();
    state.db.read(move |s| s.get(&id)).await?.ok_or_else(|| ApiError::NotFound(format!("no event {event_id:?}")))
}

/// Snapshots never change once written (a new snapshot is a new event):
/// browsers may keep them for a year.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// An event's snapshot: the key frame, with its motion boxes drawn.
#[utoipa::path(
    get,
    path = "/api/events/{event_id}/image",
    params(("event_id" = String, Path, description = "e.g. evt_1795628188939_59f2")),
    responses(
        (status = 200, description = "The JPEG snapshot", content_type = "image/jpeg", body = Vec<u8>),
        (status = 404, description = "No such event, or it has no snapshot", body = crate::error::ErrorBody),
    ),
    tag = "events"
)]
pub async fn event_image(State(state): State<AppState>, Path(event_id): Path<String>) -> Result<Response, ApiError> {
    let event = find_event(&state, &event_id).await?;
    let no_snapshot = || ApiError::NotFound(format!("event {event_id:?} has no snapshot"));
    let image_path = event.image_path.ok_or_else(no_snapshot)?;
    match Snapshot::open(state.config.data_dir.root(), &image_path).await {
        Ok(snapshot) => {
            let len = snapshot.len.to_string();
            Ok((
                [(CONTENT_TYPE, "image/jpeg"), (CACHE_CONTROL, IMMUTABLE), (CONTENT_LENGTH, len.as_str())],
                snapshot.into_body(),
            )
                .into_response())
        }
        Err(e) => {
            tracing::warn!(event_id, image_path, error = %e, "refusing to serve a snapshot");
            Err(no_snapshot())
        }
    }
}

/// Per-camera totals from the database.
#[utoipa::path(
    get,
    path = "/api/cameras",
    responses((status = 200, description = "One entry per camera that has events", body = Vec<shared::store::CameraSummary>)),
    tag = "events"
)]
pub async fn cameras(State(state): State<AppState>) -> Result<Json<Vec<shared::store::CameraSummary>>, ApiError> {
    let _permit = heavy_permit(&state)?;
    Ok(Json(state.db.read(|s| s.camera_summary()).await?))
}

/// A permit for a costly query, or 503 now: a flood of searches must not
/// tie up the REST connections, let alone the live path.
fn heavy_permit(state: &AppState) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
    state.heavy_queries.try_acquire().map_err(|_| {
        ApiError::Busy(format!("{} searches are already running; retry in a second", crate::HEAVY_QUERIES))
    })
}

/// The body of `POST /api/events`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEvent {
    /// 1–64 characters of `[A-Za-z0-9_-]`.
    pub camera_id: String,
    /// When it was seen (RFC 3339); default: now.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub timestamp: Option<Timestamp>,
    /// 0–1.
    pub motion_confidence: f64,
    #[serde(default)]
    pub detected_objects: Vec<DetectedObject>,
    /// One human sentence.
    pub description: String,
    /// Snapshot path relative to the data directory.
    #[serde(default)]
    pub image_path: Option<String>,
    #[serde(default)]
    pub inference_ms: Option<f64>,
    #[serde(default)]
    pub frame_number: Option<u64>,
    /// Allow a `timestamp` more than a day from now (importing history).
    #[serde(default)]
    pub backfill: bool,
}

/// How far a `POST`ed timestamp may be from now without `backfill`.
const TIMESTAMP_SLACK_MS: i64 = 24 * 3600 * 1000;

/// Create an event (`metadata.source = "api"`); it is stored and broadcast
/// like a detector's.
#[utoipa::path(
    post,
    path = "/api/events",
    request_body = CreateEvent,
    responses(
        (status = 201, description = "Created", body = Event),
        (status = 422, description = "Invalid body; the message names the field", body = crate::error::ErrorBody),
    ),
    tag = "events"
)]
pub async fn create_event(
    State(state): State<AppState>,
    body: Result<Json<CreateEvent>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(|e| match e {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::UnsupportedMediaType("send the event as JSON with Content-Type: application/json".into())
        }
        too_big if too_big.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge(format!("request bodies are limited to {} bytes", crate::MAX_BODY))
        }
        other => ApiError::Unprocessable(other.body_text()),
    })?;
    let now = Timestamp::now();
    let timestamp = body.timestamp.unwrap_or(now);
    if !body.backfill && (timestamp.unix_ms() - now.unix_ms()).abs() > TIMESTAMP_SLACK_MS {
        return Err(ApiError::Unprocessable(
            "timestamp: must be within a day of now; set \"backfill\": true to import older events".into(),
        ));
    }
    let new = NewEvent {
        event_id: new_event_id(timestamp),
        camera_id: body.camera_id,
        timestamp,
        motion_confidence: body.motion_confidence,
        detected_objects: body.detected_objects,
        description: body.description,
        image_path: body.image_path,
        metadata: EventMetadata {
            source: EventSource::Api,
            inference_ms: body.inference_ms,
            frame_number: body.frame_number,
            producer: Some(format!("webserver:{}", std::process::id())),
        },
    };
    new.validate().map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let logs = state.logs.clone();
    let event = state
        .db
        .write(move |s| {
            let event = s.insert(&new)?;
            // Like a detector's: a line in each log after the commit.
            if let Ok(mut logs) = logs.lock() {
                for e in logs.append(&event) {
                    tracing::error!(error = %e.source, seq = event.seq, file = e.file, "cannot append to log (event is safe in the database)");
                }
            }
            Ok(event)
        })
        .await?;
    tracing::info!(seq = event.seq, event_id = %event.event_id, camera = %event.camera_id, "event created via API");
    let json = event.to_json();
    let location = format!("/api/events/{}", event.event_id);
    state.sequencer.offer(event).await;
    let mut response = json_response(StatusCode::CREATED, json);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, value);
    }
    Ok(response)
}

/// `GET /api/health`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `healthy`, or `degraded` when the database or a detector is
    /// unreachable, a detector cannot commit, or a camera's source is down.
    pub status: &'static str,
    pub version: &'static str,
    pub uptime_seconds: f64,
    pub database: DatabaseHealth,
    pub detectors: Vec<LinkStatus>,
    pub websocket_clients: u64,
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
    let detectors: Vec<LinkStatus> = state.links.iter().filter_map(|l| l.status()).collect();
    // A detector holding events it cannot commit is as unhealthy as a lost
    // one; so is a camera whose source is down.
    let detectors_ok = detectors.iter().all(|d| {
        d.connected && d.stats.as_ref().is_none_or(|s| s.backlog == 0 && s.cameras.iter().all(|c| !c.state.is_down()))
    });
    let healthy = database.status == "ok" && detectors_ok;
    Json(Health {
        status: if healthy { "healthy" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.metrics.started.elapsed().as_secs_f64(),
        database,
        detectors,
        websocket_clients: state.fanout.len() as u64,
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
                .iter()
                .filter_map(|l| l.status())
                .map(|s| DetectorMetrics {
                    socket: s.socket,
                    connected: s.connected,
                    frames_processed: s.stats.as_ref().map_or(0, |d| d.frames_processed),
                    events_created: s.stats.as_ref().map_or(0, |d| d.events_created),
                    inference_ms: s.stats.as_ref().map(|d| d.inference_ms).unwrap_or_default(),
                    commit_ms: s.stats.as_ref().map(|d| d.commit_ms).unwrap_or_default(),
                    cameras: s.stats.map(|d| d.cameras).unwrap_or_default(),
                })
                .collect(),
        }
    }
}

/// Counters and latencies as JSON.
#[utoipa::path(get, path = "/api/metrics", responses((status = 200, body = MetricsReport)), tag = "system")]
pub async fn metrics_json(State(state): State<AppState>) -> Json<MetricsReport> {
    Json(MetricsReport::collect(&state))
}

/// The same numbers in Prometheus text format.
#[utoipa::path(get, path = "/metrics", responses((status = 200, content_type = "text/plain", body = String)), tag = "system")]
pub async fn metrics_prometheus(State(state): State<AppState>) -> Response {
    let body = prometheus_text(&MetricsReport::collect(&state));
    ([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

fn prometheus_text(r: &MetricsReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(out, "# HELP lookout_{name} {help}\n# TYPE lookout_{name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "lookout_{name}{labels} {value}");
        }
    };
    let one = |v: f64| vec![(String::new(), v)];
    let c = &r.websocket.connections;
    metric("uptime_seconds", "gauge", "Seconds since the webserver started.", &one(r.uptime_seconds));
    metric("websocket_connections", "gauge", "WebSocket clients connected now.", &one(c.current as f64));
    metric("websocket_connections_peak", "gauge", "Most WebSocket clients at once.", &one(c.peak as f64));
    metric("websocket_connections_total", "counter", "WebSocket clients accepted.", &one(c.total as f64));
    metric(
        "websocket_slow_consumer_closes_total",
        "counter",
        "Clients closed for not keeping up.",
        &one(c.slow_consumer_closes as f64),
    );
    metric(
        "websocket_heartbeat_timeouts_total",
        "counter",
        "Clients closed for silence.",
        &one(c.heartbeat_timeouts as f64),
    );
    metric(
        "websocket_refused_full_total",
        "counter",
        "Clients refused at the client limit.",
        &one(c.refused_full as f64),
    );
    metric(
        "websocket_messages_sent_total",
        "counter",
        "Messages written to WebSocket clients.",
        &one(r.websocket.messages_sent as f64),
    );
    metric(
        "http_connections_refused_total",
        "counter",
        "HTTP connections refused by the per-address or global cap.",
        &[("per_address", r.http.refused_per_address), ("full", r.http.refused_full)]
            .map(|(why, n)| (format!("{{reason=\"{why}\"}}"), n as f64)),
    );
    metric("http_accept_errors_total", "counter", "Failed accept calls.", &one(r.http.accept_errors as f64));
    metric("events_broadcast_total", "counter", "Events broadcast to clients.", &one(r.events.broadcast as f64));
    metric(
        "events_rejected_announcements_total",
        "counter",
        "Detector announcements the database contradicted; never broadcast.",
        &one(r.events.rejected_announcements as f64),
    );
    metric("events_per_second", "gauge", "Events broadcast per second over 10 s.", &one(r.events.per_second));
    let l = &r.events.broadcast_latency_ms;
    metric(
        "broadcast_latency_ms",
        "gauge",
        "Commit to hand-off latency over recent events.",
        &[("p50", l.p50), ("p95", l.p95), ("p99", l.p99), ("max", l.max)]
            .map(|(q, v)| (format!("{{quantile=\"{q}\"}}"), v)),
    );
    metric("process_cpu_percent", "gauge", "Process CPU, percent of one core.", &one(r.process.cpu_percent));
    metric("process_resident_memory_bytes", "gauge", "Process resident memory.", &one(r.process.rss_bytes as f64));
    let per_detector = |f: &dyn Fn(&DetectorMetrics) -> f64| -> Vec<(String, f64)> {
        r.detectors.iter().map(|d| (format!("{{socket=\"{}\"}}", label_value(&d.socket)), f(d))).collect()
    };
    metric(
        "detector_connected",
        "gauge",
        "1 when the detector link is up.",
        &per_detector(&|d| d.connected as u8 as f64),
    );
    metric(
        "detector_frames_processed_total",
        "counter",
        "Frames the detector examined.",
        &per_detector(&|d| d.frames_processed as f64),
    );
    metric(
        "detector_events_created_total",
        "counter",
        "Events the detector committed.",
        &per_detector(&|d| d.events_created as f64),
    );
    metric(
        "detector_inference_ms_p50",
        "gauge",
        "Detector inference time, median.",
        &per_detector(&|d| d.inference_ms.p50),
    );
    metric(
        "detector_inference_ms_p95",
        "gauge",
        "Detector inference time, 95th percentile.",
        &per_detector(&|d| d.inference_ms.p95),
    );
    metric(
        "detector_commit_ms_p50",
        "gauge",
        "Time to commit one event durably (fsync included), median.",
        &per_detector(&|d| d.commit_ms.p50),
    );
    metric(
        "detector_commit_ms_p99",
        "gauge",
        "Time to commit one event durably (fsync included), 99th percentile.",
        &per_detector(&|d| d.commit_ms.p99),
    );
    let cameras: Vec<(String, &shared::wire::CameraStatus)> =
        r.detectors.iter().flat_map(|d| d.cameras.iter().map(move |c| (label_value(&d.socket), c))).collect();
    let per_camera = |f: &dyn Fn(&shared::wire::CameraStatus) -> f64| -> Vec<(String, f64)> {
        cameras
            .iter()
            .map(|(socket, c)| (format!("{{socket=\"{socket}\",camera=\"{}\"}}", label_value(&c.camera_id)), f(c)))
            .collect()
    };
    metric(
        "camera_up",
        "gauge",
        "1 when the camera's source delivers frames (or its file ended normally).",
        &per_camera(&|c| u8::from(!c.state.is_down()) as f64),
    );
    metric("camera_frames_total", "counter", "Frames analysed.", &per_camera(&|c| c.frames as f64));
    metric("camera_motion_frames_total", "counter", "Frames with motion.", &per_camera(&|c| c.motion_frames as f64));
    metric("camera_events_total", "counter", "Events from this camera.", &per_camera(&|c| c.events as f64));
    metric("camera_restarts_total", "counter", "Source restarts.", &per_camera(&|c| c.restarts as f64));
    let stage_samples: Vec<(String, f64)> = cameras
        .iter()
        .flat_map(|(socket, c)| {
            c.stages.iter().flat_map(move |stage| {
                [("0.5", stage.ms.p50), ("0.95", stage.ms.p95)].map(|(q, v)| {
                    let labels = format!(
                        "{{socket=\"{socket}\",camera=\"{}\",stage=\"{}\",quantile=\"{q}\"}}",
                        label_value(&c.camera_id),
                        label_value(&stage.stage)
                    );
                    (labels, v)
                })
            })
        })
        .collect();
    metric(
        "camera_stage_ms",
        "gauge",
        "Time per camera pipeline stage (decode_wait, motion, snapshot), over recent frames.",
        &stage_samples,
    );
    out
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn label_value(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The AsyncAPI description of `/ws/events`.
pub async fn asyncapi() -> Response {
    json_response(StatusCode::OK, include_str!("../../docs/asyncapi.json").to_owned())
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(CONTENT_TYPE, "application/json")], body).into_response()
}
