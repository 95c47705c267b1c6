//! The REST API for events: list, one, its snapshot, create, end; the
//! change log; per-camera totals.
//!
//! Events are listed and read in their current state; `/api/changes` pages
//! the change log (`new`, `update`, `end`) that `/ws/events` streams.
//!
//! Event bodies are [`Event::to_json`] verbatim — the same bytes a
//! WebSocket client receives in `data` — so REST and the stream can never
//! disagree about an event.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shared::model::{DetectedObject, EventMetadata, EventSource, EventState, NewEvent, new_event_id};
use shared::store::{EventFilter, History, MAX_PAGE};
use shared::{Change, ChangeKind, Event, Timestamp};

use super::error::ApiError;
use super::json_response;
use super::snapshot::{Snapshot, SnapshotError};
use crate::state::AppState;
use crate::stream::cluster::{Cluster, ClusterApiError};
use crate::stream::messages::reset_notice;

/// Default page size of `GET /api/events`.
pub const DEFAULT_LIMIT: usize = 100;

/// Filters and paging for `GET /api/events`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only these cameras, comma-separated (`door,yard`).
    pub camera_id: Option<String>,
    /// Seen at or after this RFC 3339 time.
    pub start: Option<String>,
    /// Seen at or before this RFC 3339 time.
    pub end: Option<String>,
    /// Only events with a larger `seq`.
    pub after_seq: Option<i64>,
    /// Only events with a smaller `seq`: pass the previous page's `next_before_seq`.
    pub before_seq: Option<i64>,
    /// Only events with a detected object of one of these labels,
    /// comma-separated (`person,dog`).
    pub label: Option<String>,
    /// Only events with a detected object (of one of `label`, if given)
    /// scored at least this, 0–1.
    pub min_confidence: Option<f64>,
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
    /// Present when `after_seq` is below history retention deleted.
    pub reset: Option<ResetNotice>,
}

/// Retention deleted changes a client resuming at `after_seq` may rely on:
/// kept history starts at `oldest_seq`; drop what you hold and reload.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResetNotice {
    pub oldest_seq: i64,
    pub reason: String,
}

/// List stored events, newest first, with filters and keyset paging.
#[utoipa::path(
    get,
    path = "/api/events",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of events", body = EventPage),
        (status = 400, description = "Bad parameter", body = crate::http::error::ErrorBody),
        (status = 503, description = "Too many costly searches at once; retry after `Retry-After` seconds", body = crate::http::error::ErrorBody),
    ),
    tag = "events"
)]
pub async fn list_events(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = page_size(q.limit)?;
    let cameras = list_param(q.camera_id.as_deref(), |camera| {
        shared::model::validate_camera_id(camera).map_err(|e| ApiError::BadRequest(e.to_string()))
    })?;
    let labels = list_param(q.label.as_deref(), |label| {
        if label.len() > shared::model::MAX_LABEL_LEN {
            return Err(ApiError::BadRequest(format!("label must be at most {} bytes", shared::model::MAX_LABEL_LEN)));
        }
        Ok(())
    })?;
    if let Some(min) = q.min_confidence
        && !(0.0..=1.0).contains(&min)
    {
        return Err(ApiError::BadRequest("min_confidence must be a number from 0 to 1".into()));
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
        cameras,
        start: time("start", &q.start)?,
        end: time("end", &q.end)?,
        after_seq: q.after_seq,
        before_seq: q.before_seq,
        labels,
        min_confidence: q.min_confidence,
        text: text("q", &q.q, 200)?,
    };
    let costly = filter.text.is_some() || !filter.labels.is_empty() || filter.min_confidence.is_some();
    let _permit = if costly { Some(heavy_permit(&state)?) } else { None };
    let after = q.after_seq;
    let (page, history) =
        state.db.read(move |s| Ok((s.list(&filter, limit)?, after.map(|_| s.history()).transpose()?))).await?;
    // Built by hand so each event is exactly its canonical JSON.
    let events: Vec<String> = page.events.iter().map(Event::to_json).collect();
    let next = page.next_before_seq.map_or("null".to_owned(), |n| n.to_string());
    let reset = history.map(|h| reset_field(&h, after)).unwrap_or_default();
    let body = format!(r#"{{"events":[{}],"next_before_seq":{next}{reset}}}"#, events.join(","));
    Ok(json_response(StatusCode::OK, body))
}

/// A comma-separated list parameter: its items, trimmed, empty ones
/// dropped, each checked by `check`; at most [`MAX_LIST_ITEMS`].
fn list_param(value: Option<&str>, check: impl Fn(&str) -> Result<(), ApiError>) -> Result<Vec<String>, ApiError> {
    let items: Vec<String> =
        value.unwrap_or_default().split(',').map(str::trim).filter(|i| !i.is_empty()).map(str::to_owned).collect();
    if items.len() > MAX_LIST_ITEMS {
        return Err(ApiError::BadRequest(format!("at most {MAX_LIST_ITEMS} comma-separated values per filter")));
    }
    items.iter().try_for_each(|i| check(i))?;
    Ok(items)
}

/// The most values one list filter takes (cameras, labels): far more than
/// a person picks, and a bound on the query they make.
const MAX_LIST_ITEMS: usize = 64;

/// One event by id.
#[utoipa::path(
    get,
    path = "/api/events/{event_id}",
    params(("event_id" = String, Path, description = "e.g. evt_1795628188939_59f2")),
    responses(
        (status = 200, description = "The event", body = Event),
        (status = 404, description = "No such event", body = crate::http::error::ErrorBody),
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

/// An ended event's snapshot never changes: browsers may keep it for a
/// year.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// An active event may get a better snapshot (a new file, named by its next
/// update): browsers ask again each time. Clients that add `?v=<seq>` get a
/// new URL with each change anyway.
const REVALIDATE: &str = "no-cache";

/// An event's snapshot: the key frame, with its motion boxes drawn.
#[utoipa::path(
    get,
    path = "/api/events/{event_id}/image",
    params(("event_id" = String, Path, description = "e.g. evt_1795628188939_59f2")),
    responses(
        (status = 200, description = "The JPEG snapshot", content_type = "image/jpeg", body = Vec<u8>),
        (status = 404, description = "No such event, or it has no snapshot", body = crate::http::error::ErrorBody),
    ),
    tag = "events"
)]
pub async fn event_image(State(state): State<AppState>, Path(event_id): Path<String>) -> Result<Response, ApiError> {
    let event = find_event(&state, &event_id).await?;
    let no_snapshot = || ApiError::NotFound(format!("event {event_id:?} has no snapshot"));
    let cache = if event.state == EventState::Ended { IMMUTABLE } else { REVALIDATE };
    let image_path = event.image_path.ok_or_else(no_snapshot)?;
    let jpeg = |len: u64, body: Body| {
        let len = len.to_string();
        ([(CONTENT_TYPE, "image/jpeg"), (CACHE_CONTROL, cache), (CONTENT_LENGTH, len.as_str())], body).into_response()
    };
    // This host's detector wrote it, or this webserver fetched it before.
    let mut roots = vec![state.config.data_dir.root()];
    roots.extend(state.snapshot_cache.as_ref().map(|c| c.root()));
    let mut refused = None;
    for root in roots {
        match Snapshot::open(root, &image_path).await {
            Ok(snapshot) => return Ok(jpeg(snapshot.len, snapshot.into_body())),
            Err(SnapshotError::Open(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => refused = Some(e),
        }
    }
    if let Some(e) = refused {
        tracing::warn!(event_id, image_path, error = %e, "refusing to serve a snapshot");
        return Err(no_snapshot());
    }
    // Cluster mode: another host took it; the bucket has it.
    let (Some(cluster), Some(cache)) = (&state.cluster, &state.snapshot_cache) else {
        tracing::warn!(event_id, image_path, "snapshot file missing");
        return Err(no_snapshot());
    };
    let bytes = match cluster.fetch_snapshot(&image_path).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            tracing::warn!(event_id, image_path, bucket = %cluster.status().snapshot_bucket, "snapshot not in the bucket");
            return Err(no_snapshot());
        }
        Err(e) => {
            tracing::warn!(event_id, image_path, error = %e, "cannot fetch a snapshot from the cluster");
            return Err(ApiError::Unavailable(
                "the snapshot is in the cluster's bucket, which is not reachable now".into(),
            ));
        }
    };
    if let Err(e) = cache.store(&image_path, bytes.clone()).await {
        tracing::warn!(image_path, error = %e, "cannot keep a snapshot in the cache; served anyway");
    }
    Ok(jpeg(bytes.len() as u64, Body::from(bytes)))
}

/// What `GET /api/cameras` may be asked.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CamerasQuery {
    /// Also count each camera's events seen since this RFC 3339 time
    /// (`events_since`): the dashboard asks for its local midnight.
    pub since: Option<String>,
}

/// Per-camera totals from the database: events, the latest, those in
/// progress, those since a time, and the latest snapshot.
#[utoipa::path(
    get,
    path = "/api/cameras",
    params(CamerasQuery),
    responses(
        (status = 200, description = "One entry per camera that has events", body = Vec<shared::store::CameraSummary>),
        (status = 400, description = "Bad parameter", body = crate::http::error::ErrorBody),
    ),
    tag = "events"
)]
pub async fn cameras(
    State(state): State<AppState>,
    query: Result<Query<CamerasQuery>, QueryRejection>,
) -> Result<Json<Vec<shared::store::CameraSummary>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let since = q
        .since
        .as_deref()
        .map(|v| {
            v.parse::<Timestamp>().map_err(|_| {
                ApiError::BadRequest("since must be an RFC 3339 time, e.g. 2026-11-25T00:00:00Z".to_owned())
            })
        })
        .transpose()?;
    let _permit = heavy_permit(&state)?;
    Ok(Json(state.db.read(move |s| s.camera_summary(since)).await?))
}

/// An event's history: each of its kept changes, oldest first.
#[utoipa::path(
    get,
    path = "/api/events/{event_id}/changes",
    params(("event_id" = String, Path, description = "e.g. evt_1795628188939_59f2")),
    responses(
        (status = 200, description = "The event's changes, oldest first (`next_after_seq` is always null)", body = ChangePage),
        (status = 404, description = "No such event", body = crate::http::error::ErrorBody),
    ),
    tag = "events"
)]
pub async fn event_changes(State(state): State<AppState>, Path(event_id): Path<String>) -> Result<Response, ApiError> {
    find_event(&state, &event_id).await?;
    let changes = state.db.read(move |s| s.changes_of(&event_id)).await?;
    Ok(json_response(StatusCode::OK, format!(r#"{{"changes":[{}],"next_after_seq":null}}"#, change_items(&changes))))
}

/// A permit for a costly query, or 503 now: a flood of searches must not
/// tie up the REST connections, let alone the live path.
fn heavy_permit(state: &AppState) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
    state.heavy_queries.try_acquire().map_err(|_| {
        ApiError::Busy(format!("{} searches are already running; retry in a second", crate::state::HEAVY_QUERIES))
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
    /// 0–1; default 0: an external trigger (a doorbell, a script) measures
    /// no motion.
    #[serde(default)]
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
    /// `ended` (default: reported whole, ending at its `timestamp`) or
    /// `active`: it stays open until `PUT /api/events/{event_id}/end` (a
    /// doorbell press, an alarm panel).
    #[serde(default = "ended")]
    #[schema(value_type = Option<EventState>)]
    pub state: EventState,
}

fn ended() -> EventState {
    EventState::Ended
}

/// How far a `POST`ed timestamp may be from now without `backfill`.
const TIMESTAMP_SLACK_MS: i64 = 24 * 3600 * 1000;

/// Create an event (`metadata.source = "api"`): its `new` change is stored,
/// logged and broadcast like a detector's.
#[utoipa::path(
    post,
    path = "/api/events",
    request_body = CreateEvent,
    responses(
        (status = 201, description = "Created", body = Event),
        (status = 422, description = "Invalid body; the message names the field", body = crate::http::error::ErrorBody),
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
            ApiError::PayloadTooLarge(format!("request bodies are limited to {} bytes", super::MAX_BODY))
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
        state: body.state,
        end_time: (body.state == EventState::Ended).then_some(timestamp),
        motion_confidence: body.motion_confidence,
        detected_objects: body.detected_objects,
        description: body.description,
        image_path: body.image_path,
        metadata: EventMetadata {
            source: EventSource::Api,
            inference_ms: body.inference_ms,
            frame_number: body.frame_number,
            producer: Some(format!("webserver:{}", std::process::id())),
            end_reason: None,
        },
    };
    new.validate().map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let change = match &state.cluster {
        Some(cluster) => {
            let change = Change { kind: ChangeKind::New, event: new.commit(0, Timestamp::now()) };
            let msg_id = format!("api-{}-new", change.event.event_id);
            publish(cluster, change, &msg_id).await?
        }
        None => commit(&state, move |s| s.insert(&new)).await?,
    };
    let event = &change.event;
    tracing::info!(seq = event.seq, event_id = %event.event_id, camera = %event.camera_id, state = event.state.as_str(), "event created via API");
    let location = format!("/api/events/{}", event.event_id);
    let mut response = json_response(StatusCode::CREATED, event.to_json());
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, value);
    }
    if state.cluster.is_none() {
        state.sequencer.offer(change).await;
    }
    Ok(response)
}

/// Cluster mode's commit: the change goes to the stream, and the answer
/// waits until this webserver's copy has applied it (the stream's consumer
/// offers it to the sequencer, as every other change).
async fn publish(cluster: &Cluster, change: Change, msg_id: &str) -> Result<Change, ApiError> {
    match cluster.publish(&change, msg_id).await {
        Ok(Some(stored)) => Ok(stored),
        Ok(None) => Err(ApiError::Conflict(format!(
            "event {:?} was changed by another request first; read it again",
            change.event.event_id
        ))),
        Err(e @ ClusterApiError::NotApplied(_)) => Err(ApiError::Unavailable(e.to_string())),
        Err(ClusterApiError::Unreachable(why)) => {
            // NATS's own words stay in the server log.
            tracing::warn!(error = %why, "cannot publish an API change to the cluster stream");
            Err(ApiError::Unavailable(
                "the cluster stream is not reachable; retry shortly, or see the server log".into(),
            ))
        }
    }
}

/// Commits one change through the REST writer and, like a detector, appends
/// it to both logs after the commit. The caller offers it to the sequencer.
async fn commit(
    state: &AppState,
    change: impl FnOnce(&mut shared::Store) -> Result<Change, shared::store::StoreError> + Send + 'static,
) -> Result<Change, ApiError> {
    let logs = state.logs.clone();
    Ok(state
        .db
        .write(move |s| {
            let change = change(s)?;
            if let Ok(mut logs) = logs.lock() {
                for e in logs.append(&change) {
                    tracing::error!(error = %e.source, seq = change.seq(), file = e.file, "cannot append to log (the change is safe in the database)");
                }
            }
            Ok(change)
        })
        .await?)
}

/// The body of `PUT /api/events/{event_id}/end`; optional.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndEvent {
    /// Why it ended, kept as `metadata.end_reason` (e.g. `door closed`).
    #[serde(default)]
    pub reason: Option<String>,
}

/// End an active event now: its `end` change is stored, logged and
/// broadcast.
#[utoipa::path(
    put,
    path = "/api/events/{event_id}/end",
    params(("event_id" = String, Path, description = "e.g. evt_1795628188939_59f2")),
    request_body(content = Option<EndEvent>, description = "Optional: why it ended"),
    responses(
        (status = 200, description = "The ended event", body = Event),
        (status = 404, description = "No such event", body = crate::http::error::ErrorBody),
        (status = 409, description = "The event has already ended", body = crate::http::error::ErrorBody),
        (status = 422, description = "Invalid body", body = crate::http::error::ErrorBody),
    ),
    tag = "events"
)]
pub async fn end_event(
    State(state): State<AppState>,
    Path(event_id): Path<String>,
    body: Result<Json<EndEvent>, JsonRejection>,
) -> Result<Response, ApiError> {
    let body = match body {
        Ok(Json(body)) => body,
        // No body at all is fine: nothing to say about why.
        Err(JsonRejection::MissingJsonContentType(_)) => EndEvent::default(),
        Err(other) => return Err(ApiError::Unprocessable(other.body_text())),
    };
    let max = shared::model::MAX_END_REASON_LEN;
    if let Some(reason) = &body.reason
        && (reason.len() > max || reason.chars().any(char::is_control))
    {
        return Err(ApiError::Unprocessable(format!("reason: at most {max} bytes, no control characters")));
    }
    if !shared::model::is_valid_event_id(&event_id) {
        return Err(ApiError::NotFound(format!("no event {event_id:?} (ids look like evt_<unix-ms>_<4 hex>)")));
    }
    let change = match &state.cluster {
        Some(cluster) => {
            let id = event_id.clone();
            let mut event = state
                .db
                .read(move |s| s.get(&id))
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("no event {event_id:?}")))?;
            if event.state == EventState::Ended {
                return Err(ApiError::Conflict(format!("event {event_id:?} has already ended")));
            }
            let now = Timestamp::now();
            event.end_at(now, body.reason.as_deref());
            event.updated_at = now;
            // One end per event: two webservers ending it at once publish
            // one change (the stream drops the second by its id) and both
            // answer with it; one whose copy already holds the end says 409,
            // as a single machine does.
            let msg_id = format!("api-{event_id}-end");
            publish(cluster, Change { kind: ChangeKind::End, event }, &msg_id).await?
        }
        None => {
            let id = event_id.clone();
            let change = commit(&state, move |s| s.end(&id, Timestamp::now(), body.reason.as_deref(), |_| {})).await?;
            state.sequencer.offer(change.clone()).await;
            change
        }
    };
    tracing::info!(seq = change.seq(), event_id, "event ended via API");
    Ok(json_response(StatusCode::OK, change.event.to_json()))
}

/// Paging of `GET /api/changes`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// Only changes with a larger `seq` (default 0: from the start).
    pub after_seq: Option<i64>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<i64>,
}

/// One page of the change log, oldest first. (Its body is written by hand
/// around each event's canonical JSON; these types describe it.)
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChangePage {
    pub changes: Vec<ChangeItem>,
    /// `after_seq` for the next page: the last change's `seq` when the page
    /// is full (the next may be empty), null when it reached the end.
    pub next_after_seq: Option<i64>,
    /// Present when `after_seq` is below history retention deleted.
    pub reset: Option<ResetNotice>,
}

/// One change: what it did, and the event right after it (`data.seq` is
/// the change's `seq`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChangeItem {
    pub change: ChangeKind,
    pub data: Event,
}

/// The change log (`new`, `update`, `end`) in `seq` order, as `/ws/events`
/// streams it: for tools that poll instead of holding a WebSocket.
#[utoipa::path(
    get,
    path = "/api/changes",
    params(ChangesQuery),
    responses(
        (status = 200, description = "A page of changes, oldest first", body = ChangePage),
        (status = 400, description = "Bad parameter", body = crate::http::error::ErrorBody),
    ),
    tag = "events"
)]
pub async fn list_changes(
    State(state): State<AppState>,
    query: Result<Query<ChangesQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = page_size(q.limit)?;
    let after = q.after_seq.unwrap_or(0);
    let (changes, history) = state.db.read(move |s| Ok((s.after_seq(after, limit)?, s.history()?))).await?;
    let next = if changes.len() == limit { changes.last().map(|c| c.seq().to_string()) } else { None };
    let reset = reset_field(&history, Some(after));
    let body = format!(
        r#"{{"changes":[{}],"next_after_seq":{}{reset}}}"#,
        change_items(&changes),
        next.as_deref().unwrap_or("null")
    );
    Ok(json_response(StatusCode::OK, body))
}

/// `,"reset":{…}` when a page resumed at `after_seq` lacks history that
/// retention deleted (the WebSocket's `reset` message, SPEC §11), else "".
fn reset_field(history: &History, after_seq: Option<i64>) -> String {
    after_seq
        .and_then(|after| reset_notice(history, after))
        .map_or_else(String::new, |notice| format!(r#","reset":{notice}"#))
}

/// A `limit` parameter: 1–[`MAX_PAGE`], default [`DEFAULT_LIMIT`].
/// Changes as the items of a change page, comma-separated; built by hand
/// so each event is exactly its canonical JSON.
fn change_items(changes: &[Change]) -> String {
    let items: Vec<String> =
        changes.iter().map(|c| format!(r#"{{"change":"{}","data":{}}}"#, c.kind.as_str(), c.event.to_json())).collect();
    items.join(",")
}

fn page_size(limit: Option<i64>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_PAGE as i64).contains(&n) => Ok(n as usize),
        Some(n) => Err(ApiError::BadRequest(format!("limit must be between 1 and {MAX_PAGE}, not {n}"))),
    }
}
