//! The event: Lookout's one data model.
//!
//! Every layer speaks these types: the store persists them, the detector
//! publishes them in socket frames (postcard), the webserver returns them from
//! REST and pushes them over WebSocket (JSON). Keeping one model is what makes
//! the WebSocket `data` byte-for-byte equal to `GET /api/events/{event_id}`.
//!
//! Two shapes exist:
//!
//! * [`NewEvent`] — what a producer (the detector, `POST /api/events`) knows
//!   before the event is committed: no `seq`, no `created_at`.
//! * [`Event`] — a committed event, as the store returns it; `seq` and
//!   `created_at` are assigned by the store at commit.
//! * [`Change`] — one step of an event's life (SPEC §7): `new`, `update` or
//!   `end`, with the event as it was right after it. Every change takes the
//!   next `seq`, and an event's `seq` is that of its latest change, so "every
//!   change after `seq` N" is the one cursor for catch-ups.
//!
//! An event is `active` from its `new` until its `end`, which sets
//! `end_time`; an event reported whole (a finished episode, an external
//! trigger) is born `ended`.
//!
//! # Serialization rules
//!
//! Postcard is not self-describing, so nothing here may use
//! `serde_json::Value`, `#[serde(flatten)]`, untagged enums or
//! `skip_serializing_if`. Optional fields are plain `Option`s (JSON `null`).
//! Timestamps are [`Timestamp`]s: UTC, millisecond precision, always written
//! as `2026-11-25T17:03:16.123Z`, so that text order is time order and a JSON
//! round trip is lossless.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest accepted camera id; see [`validate_camera_id`].
pub const MAX_CAMERA_ID_LEN: usize = 64;
/// Longest accepted description, in bytes.
pub const MAX_DESCRIPTION_LEN: usize = 1024;
/// Most detected objects one event may carry.
pub const MAX_DETECTED_OBJECTS: usize = 256;
/// Longest accepted object label or image path, in bytes.
pub const MAX_LABEL_LEN: usize = 64;
/// Longest accepted image path, in bytes.
pub const MAX_IMAGE_PATH_LEN: usize = 512;
/// Longest accepted `metadata.end_reason`, in bytes.
pub const MAX_END_REASON_LEN: usize = 200;

/// A committed event. Field order is the JSON field order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    /// Store-assigned, strictly increasing; the resume cursor everywhere.
    pub seq: i64,
    pub event_id: String,
    pub camera_id: String,
    /// When the camera saw it start.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime, example = "2026-11-25T17:03:16.123Z"))]
    pub timestamp: Timestamp,
    /// `active` until its `end` change.
    pub state: EventState,
    /// When it ended; null while active.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub end_time: Option<Timestamp>,
    /// Fraction/strength of motion, 0–1.
    pub motion_confidence: f64,
    pub detected_objects: Vec<DetectedObject>,
    pub description: String,
    /// Snapshot path relative to the data directory.
    pub image_path: Option<String>,
    pub metadata: EventMetadata,
    /// When its `new` change was committed.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime, example = "2026-11-25T17:03:16.123Z"))]
    pub created_at: Timestamp,
    /// When its latest change was committed.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime, example = "2026-11-25T17:03:16.123Z"))]
    pub updated_at: Timestamp,
}

/// Whether an event is still going on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum EventState {
    Active,
    Ended,
}

impl EventState {
    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Active => "active",
            EventState::Ended => "ended",
        }
    }

    /// The inverse of [`EventState::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "active" => Some(EventState::Active),
            "ended" => Some(EventState::Ended),
            _ => None,
        }
    }
}

/// What one change did to its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// The event exists (active, or already ended when reported whole).
    New,
    /// Something a person would care about changed: labels, snapshot, region.
    Update,
    /// It ended.
    End,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::New => "new",
            ChangeKind::Update => "update",
            ChangeKind::End => "end",
        }
    }

    /// The inverse of [`ChangeKind::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "new" => Some(ChangeKind::New),
            "update" => Some(ChangeKind::Update),
            "end" => Some(ChangeKind::End),
            _ => None,
        }
    }
}

/// One committed change: what it did, and the event right after it (whose
/// `seq` is this change's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub kind: ChangeKind,
    pub event: Event,
}

impl Change {
    /// The change's place in the log.
    pub fn seq(&self) -> i64 {
        self.event.seq
    }
}

impl Event {
    /// The rules of [`NewEvent::validate`], for an event that arrives
    /// already committed elsewhere (a cluster stream's message).
    pub fn validate(&self) -> Result<(), ValidationError> {
        NewEvent {
            event_id: self.event_id.clone(),
            camera_id: self.camera_id.clone(),
            timestamp: self.timestamp,
            state: self.state,
            end_time: self.end_time,
            motion_confidence: self.motion_confidence,
            detected_objects: self.detected_objects.clone(),
            description: self.description.clone(),
            image_path: self.image_path.clone(),
            metadata: self.metadata.clone(),
        }
        .validate()
    }

    /// What every `end` change does to its event: ended at `at` (never
    /// before its start), with `reason` as `metadata.end_reason` when it did
    /// not end on its own.
    pub fn end_at(&mut self, at: Timestamp, reason: Option<&str>) {
        self.state = EventState::Ended;
        self.end_time = Some(at.max(self.timestamp));
        if let Some(reason) = reason {
            self.metadata.end_reason = Some(reason.to_owned());
        }
    }

    /// The canonical JSON of an event: REST bodies, WebSocket `data` and
    /// `events.jsonl` lines are all exactly this, so they agree byte for byte.
    pub fn to_json(&self) -> String {
        // A struct of strings, numbers and options always serialises.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

/// An event before commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewEvent {
    pub event_id: String,
    pub camera_id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime, example = "2026-11-25T17:03:16.123Z"))]
    pub timestamp: Timestamp,
    /// `active` (an `end` change follows) or `ended` (reported whole).
    pub state: EventState,
    /// Set exactly when `state` is `ended`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub end_time: Option<Timestamp>,
    pub motion_confidence: f64,
    pub detected_objects: Vec<DetectedObject>,
    pub description: String,
    pub image_path: Option<String>,
    pub metadata: EventMetadata,
}

impl NewEvent {
    /// The committed form of this event.
    pub fn commit(self, seq: i64, created_at: Timestamp) -> Event {
        Event {
            seq,
            event_id: self.event_id,
            camera_id: self.camera_id,
            timestamp: self.timestamp,
            state: self.state,
            end_time: self.end_time,
            motion_confidence: self.motion_confidence,
            detected_objects: self.detected_objects,
            description: self.description,
            image_path: self.image_path,
            metadata: self.metadata,
            created_at,
            updated_at: created_at,
        }
    }

    /// Checks every field against the model's rules, naming the first field
    /// that breaks one. Producers call this before committing.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if !is_valid_event_id(&self.event_id) {
            return Err(ValidationError::new("event_id", "must look like evt_<unix-ms>_<4 hex digits>"));
        }
        validate_camera_id(&self.camera_id)?;
        match (self.state, self.end_time) {
            (EventState::Active, None) => {}
            (EventState::Active, Some(_)) => {
                return Err(ValidationError::new("end_time", "must be null while the event is active"));
            }
            (EventState::Ended, None) => {
                return Err(ValidationError::new("end_time", "an ended event needs its end time"));
            }
            (EventState::Ended, Some(end)) if end < self.timestamp => {
                return Err(ValidationError::new("end_time", "must not be before the event's timestamp"));
            }
            (EventState::Ended, Some(_)) => {}
        }
        check_unit_interval("motion_confidence", self.motion_confidence)?;
        if self.detected_objects.len() > MAX_DETECTED_OBJECTS {
            return Err(ValidationError::new("detected_objects", format!("at most {MAX_DETECTED_OBJECTS} objects")));
        }
        for (i, object) in self.detected_objects.iter().enumerate() {
            object.validate().map_err(|e| e.within(&format!("detected_objects[{i}]")))?;
        }
        check_text("description", &self.description, MAX_DESCRIPTION_LEN)?;
        if let Some(path) = &self.image_path {
            check_text("image_path", path, MAX_IMAGE_PATH_LEN)?;
            if path.starts_with('/') || path.split(['/', '\\']).any(|part| part == "..") {
                return Err(ValidationError::new("image_path", "must be relative to the data directory, without '..'"));
            }
        }
        self.metadata.validate()
    }
}

/// Largest box coordinate or size, in pixels: beyond any camera's frame.
pub const MAX_COORDINATE: f64 = 100_000.0;
/// Longest inference time taken seriously (an hour).
pub const MAX_INFERENCE_MS: f64 = 3_600_000.0;

/// One thing seen in the frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DetectedObject {
    pub label: String,
    pub confidence: f64,
    pub bbox: BoundingBox,
}

impl DetectedObject {
    fn validate(&self) -> Result<(), ValidationError> {
        if self.label.is_empty() {
            return Err(ValidationError::new("label", "must not be empty"));
        }
        check_text("label", &self.label, MAX_LABEL_LEN)?;
        check_unit_interval("confidence", self.confidence)?;
        let b = &self.bbox;
        for (field, value) in [("bbox.x", b.x), ("bbox.y", b.y), ("bbox.width", b.width), ("bbox.height", b.height)] {
            if !(0.0..=MAX_COORDINATE).contains(&value) || value.is_sign_negative() {
                return Err(ValidationError::new(
                    field,
                    format!("must be a number of pixels from 0 to {MAX_COORDINATE}"),
                ));
            }
        }
        Ok(())
    }
}

/// A box in frame pixels (at the detection size).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BoundingBox {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

/// Facts about how the event was produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventMetadata {
    /// Which kind of producer created it.
    pub source: EventSource,
    /// Time spent in detection for this event, in milliseconds.
    pub inference_ms: Option<f64>,
    /// Frame counter of the camera stream at the key frame.
    pub frame_number: Option<u64>,
    /// Which producer instance (e.g. `detector@host:pid`), when known.
    pub producer: Option<String>,
    /// Why the event ended, when not on its own: `shutdown`, `detector
    /// restarted`, or what `PUT /api/events/{id}/end` gave.
    pub end_reason: Option<String>,
}

impl EventMetadata {
    fn validate(&self) -> Result<(), ValidationError> {
        if let Some(ms) = self.inference_ms
            && (!(0.0..=MAX_INFERENCE_MS).contains(&ms) || ms.is_sign_negative())
        {
            return Err(ValidationError::new(
                "metadata.inference_ms",
                format!("must be a number of milliseconds from 0 to {MAX_INFERENCE_MS}"),
            ));
        }
        if let Some(producer) = &self.producer {
            check_text("metadata.producer", producer, MAX_LABEL_LEN * 2)?;
        }
        if let Some(reason) = &self.end_reason {
            check_text("metadata.end_reason", reason, MAX_END_REASON_LEN)?;
        }
        Ok(())
    }
}

/// Where an event came from. Honest about simulation: dry-run events say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum EventSource {
    Detector,
    DryRun,
    Api,
}

impl EventSource {
    pub fn as_str(self) -> &'static str {
        match self {
            EventSource::Detector => "detector",
            EventSource::DryRun => "dry-run",
            EventSource::Api => "api",
        }
    }
}

/// A UTC instant with millisecond precision, written as RFC 3339 with
/// exactly three fractional digits and a `Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// 9999-12-31T23:59:59.999Z, after any real event: its fixed-width text
    /// still sorts as a time.
    pub const END_OF_TIME: Timestamp = Timestamp(DateTime::<Utc>::from_naive_utc_and_offset(
        match chrono::NaiveDate::from_ymd_opt(9999, 12, 31) {
            Some(d) => match d.and_hms_milli_opt(23, 59, 59, 999) {
                Some(t) => t,
                None => chrono::NaiveDateTime::MIN,
            },
            None => chrono::NaiveDateTime::MIN,
        },
        Utc,
    ));

    /// Now, truncated to the millisecond.
    pub fn now() -> Self {
        Self::from_unix_ms(Utc::now().timestamp_millis())
    }

    /// The instant `ms` milliseconds after the Unix epoch (clamped to the
    /// representable range).
    pub fn from_unix_ms(ms: i64) -> Self {
        let dt = Utc.timestamp_millis_opt(ms).single().unwrap_or(DateTime::<Utc>::MIN_UTC);
        Timestamp(dt)
    }

    pub fn unix_ms(self) -> i64 {
        self.0.timestamp_millis()
    }

    pub fn as_datetime(self) -> DateTime<Utc> {
        self.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

impl FromStr for Timestamp {
    type Err = ValidationError;

    /// Accepts any RFC 3339 time (any offset); keeps millisecond precision.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DateTime::parse_from_rfc3339(s)
            .map(|dt| Timestamp::from_unix_ms(dt.timestamp_millis()))
            .map_err(|e| ValidationError::new("timestamp", format!("not an RFC 3339 time ({e}): {s:?}")))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A new event id: `evt_<unix-ms>_<4 hex>`.
pub fn new_event_id(at: Timestamp) -> String {
    let suffix: u16 = rand::rng().random();
    format!("evt_{}_{suffix:04x}", at.unix_ms())
}

/// Whether `id` has the `evt_<unix-ms>_<4 hex>` shape.
pub fn is_valid_event_id(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("evt_") else {
        return false;
    };
    let Some((ms, hex)) = rest.split_once('_') else {
        return false;
    };
    !ms.is_empty()
        && ms.len() <= 16
        && ms.bytes().all(|b| b.is_ascii_digit())
        && hex.len() == 4
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Camera ids are 1–64 characters of `[A-Za-z0-9_-]`.
pub fn validate_camera_id(id: &str) -> Result<(), ValidationError> {
    if id.is_empty() || id.len() > MAX_CAMERA_ID_LEN {
        return Err(ValidationError::new("camera_id", format!("must be 1–{MAX_CAMERA_ID_LEN} characters long")));
    }
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(ValidationError::new("camera_id", "may contain only letters, digits, '_' and '-'"));
    }
    Ok(())
}

fn check_unit_interval(field: &str, value: f64) -> Result<(), ValidationError> {
    // -0.0 is "in" [0, 1] for IEEE comparison, but no meaningful value.
    if (0.0..=1.0).contains(&value) && value.is_sign_positive() {
        Ok(())
    } else {
        Err(ValidationError::new(field, "must be a number between 0 and 1"))
    }
}

fn check_text(field: &str, value: &str, max_len: usize) -> Result<(), ValidationError> {
    if value.len() > max_len {
        return Err(ValidationError::new(field, format!("must be at most {max_len} bytes")));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(ValidationError::new(field, "must not contain control characters"));
    }
    Ok(())
}

/// A field that breaks the model's rules, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    pub field: String,
    pub reason: String,
}

impl ValidationError {
    pub fn new(field: &str, reason: impl Into<String>) -> Self {
        Self { field: field.to_owned(), reason: reason.into() }
    }

    /// Prefixes the field with its container, e.g. `detected_objects[2].label`.
    fn within(mut self, container: &str) -> Self {
        self.field = format!("{container}.{}", self.field);
        self
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text(max: usize) -> impl Strategy<Value = String> {
        proptest::string::string_regex(&format!("[ -~]{{0,{max}}}")).expect("valid regex")
    }

    pub(crate) fn arb_new_event() -> impl Strategy<Value = NewEvent> {
        let object = ("[a-z]{1,12}", 0.0..=1.0f64, (0.0..4000.0f64, 0.0..4000.0f64, 0.0..4000.0f64, 0.0..4000.0f64))
            .prop_map(|(label, confidence, (x, y, width, height))| DetectedObject {
                label,
                confidence,
                bbox: BoundingBox { x, y, width, height },
            });
        let metadata = (
            prop_oneof![Just(EventSource::Detector), Just(EventSource::DryRun), Just(EventSource::Api)],
            proptest::option::of(0.0..10_000.0f64),
            proptest::option::of(any::<u64>()),
            proptest::option::of("[a-z@:0-9]{1,20}"),
            proptest::option::of("[a-z ]{1,20}"),
        )
            .prop_map(|(source, inference_ms, frame_number, producer, end_reason)| EventMetadata {
                source,
                inference_ms,
                frame_number,
                producer,
                end_reason,
            });
        (
            0i64..4_102_444_800_000,
            "[A-Za-z0-9_-]{1,64}",
            0.0..=1.0f64,
            proptest::collection::vec(object, 0..6),
            text(200),
            proptest::option::of("snapshots/[a-z0-9_]{1,30}\\.jpg"),
            (metadata, proptest::option::of(0i64..86_400_000)),
        )
            .prop_map(
                |(ms, camera_id, motion_confidence, detected_objects, description, image_path, (metadata, lasted))| {
                    let timestamp = Timestamp::from_unix_ms(ms);
                    NewEvent {
                        event_id: new_event_id(timestamp),
                        camera_id,
                        timestamp,
                        state: if lasted.is_some() { EventState::Ended } else { EventState::Active },
                        end_time: lasted.map(|d| Timestamp::from_unix_ms(ms + d)),
                        motion_confidence,
                        detected_objects,
                        description,
                        image_path,
                        metadata,
                    }
                },
            )
    }

    pub(crate) fn arb_event() -> impl Strategy<Value = Event> {
        (arb_new_event(), 1i64..i64::MAX, 0i64..4_102_444_800_000)
            .prop_map(|(new, seq, ms)| new.commit(seq, Timestamp::from_unix_ms(ms)))
    }

    proptest! {
        #[test]
        fn json_round_trip(event in arb_event()) {
            let json = serde_json::to_string(&event).expect("serialize");
            let back: Event = serde_json::from_str(&json).expect("deserialize");
            prop_assert_eq!(&back, &event);
            // Re-serialising gives the same bytes: what makes WS == REST.
            prop_assert_eq!(serde_json::to_string(&back).expect("serialize"), json);
        }

        #[test]
        fn postcard_round_trip(event in arb_event()) {
            let bytes = postcard::to_stdvec(&event).expect("serialize");
            let back: Event = postcard::from_bytes(&bytes).expect("deserialize");
            prop_assert_eq!(back, event);
        }

        #[test]
        fn generated_events_are_valid(new in arb_new_event()) {
            prop_assert_eq!(new.validate(), Ok(()));
        }
    }

    #[test]
    fn timestamp_format_is_fixed() {
        let ts = Timestamp::from_unix_ms(1_795_626_196_123);
        assert_eq!(ts.to_string(), "2026-11-25T17:03:16.123Z");
        let whole = Timestamp::from_unix_ms(1_795_626_196_000);
        assert_eq!(whole.to_string(), "2026-11-25T17:03:16.000Z");
        assert_eq!("2026-11-25T18:03:16.123+01:00".parse::<Timestamp>(), Ok(ts));
        assert!("yesterday".parse::<Timestamp>().is_err());
    }

    #[test]
    fn event_ids() {
        let id = new_event_id(Timestamp::from_unix_ms(1_795_626_196_123));
        assert!(id.starts_with("evt_1795626196123_"), "{id}");
        assert!(is_valid_event_id(&id));
        for bad in ["", "evt_", "evt_12_abc", "evt_12_abcg", "evt__abcd", "x_12_abcd", "evt_1a_abcd"] {
            assert!(!is_valid_event_id(bad), "{bad}");
        }
    }

    #[test]
    fn camera_ids() {
        assert!(validate_camera_id("front_door-2").is_ok());
        assert!(validate_camera_id(&"a".repeat(64)).is_ok());
        for bad in ["", "has space", "slash/", "ünï", &"a".repeat(65)] {
            let err = validate_camera_id(bad).expect_err(bad);
            assert_eq!(err.field, "camera_id");
        }
    }

    #[test]
    fn validation_names_nested_fields() {
        let now = Timestamp::now();
        let mut event = NewEvent {
            event_id: new_event_id(now),
            camera_id: "cam".into(),
            timestamp: now,
            state: EventState::Ended,
            end_time: Some(now),
            motion_confidence: 0.5,
            detected_objects: vec![DetectedObject {
                label: "person".into(),
                confidence: 1.5,
                bbox: BoundingBox { x: 0.0, y: 0.0, width: 1.0, height: 1.0 },
            }],
            description: "x".into(),
            image_path: None,
            metadata: EventMetadata {
                source: EventSource::Api,
                inference_ms: None,
                frame_number: None,
                producer: None,
                end_reason: None,
            },
        };
        let err = event.validate().expect_err("confidence out of range");
        assert_eq!(err.field, "detected_objects[0].confidence");
        event.detected_objects.clear();
        event.image_path = Some("../etc/passwd".into());
        assert_eq!(event.validate().expect_err("escaping path").field, "image_path");
        event.image_path = None;
        event.motion_confidence = f64::NAN;
        assert_eq!(event.validate().expect_err("NaN").field, "motion_confidence");
        event.motion_confidence = -0.0;
        assert_eq!(event.validate().expect_err("negative zero").field, "motion_confidence");
        event.motion_confidence = 0.0;
        event.validate().expect("zero is fine");
        let object = |x: f64| DetectedObject {
            label: "person".into(),
            confidence: 0.5,
            bbox: BoundingBox { x, y: 0.0, width: 1.0, height: 1.0 },
        };
        for (x, ok) in [(1e308, false), (100_001.0, false), (-0.0, false), (100_000.0, true), (0.0, true)] {
            event.detected_objects = vec![object(x)];
            assert_eq!(event.validate().is_ok(), ok, "x = {x}");
        }
        event.detected_objects.clear();
        // The state and the end time agree.
        event.end_time = None;
        assert_eq!(event.validate().expect_err("ended without an end").field, "end_time");
        event.state = EventState::Active;
        event.validate().expect("active without an end");
        event.end_time = Some(now);
        assert_eq!(event.validate().expect_err("active with an end").field, "end_time");
        event.state = EventState::Ended;
        event.end_time = Some(Timestamp::from_unix_ms(now.unix_ms() - 1));
        assert_eq!(event.validate().expect_err("ended before it began").field, "end_time");
    }

    #[test]
    fn change_kinds_and_states_have_fixed_names() {
        for kind in [ChangeKind::New, ChangeKind::Update, ChangeKind::End] {
            assert_eq!(ChangeKind::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_string(&kind).expect("json"), format!("\"{}\"", kind.as_str()));
        }
        for state in [EventState::Active, EventState::Ended] {
            assert_eq!(EventState::parse(state.as_str()), Some(state));
            assert_eq!(serde_json::to_string(&state).expect("json"), format!("\"{}\"", state.as_str()));
        }
        assert_eq!(ChangeKind::parse("delete"), None);
        assert_eq!(EventState::parse("Active"), None);
    }
}
