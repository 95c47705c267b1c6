//! Outputs: every change, beyond the browser, to MQTT (and so Home
//! Assistant) and to webhooks (SPEC §9).
//!
//! ```text
//!  sequencer ─► live changes ─┐
//!                             ├─► one delivery task per output ─► sink ─► broker / endpoint
//!  database (after cursor) ───┘    (in seq order; cursor kept in      (acknowledged:
//!                                    the database after each ack)      PUBACK, 2xx)
//! ```
//!
//! Each output delivers **at least once, in `seq` order, from a cursor kept
//! in the database** (`output_cursors`). Its task reads the changes after
//! its cursor from the database until it has caught up, then takes them
//! from the sequencer's live feed (falling back to the database when it
//! lags). Changes are sent without waiting for the acknowledgements of
//! those before them, and the cursor moves only past changes the receiver
//! acknowledged, so a broker outage, a dead endpoint or a restart of the
//! webserver loses nothing: on return every change after the cursor goes
//! out again. A receiver may see a change twice (what "at least once"
//! allows), never a later one for the first time before an earlier one.
//!
//! Each output has its own task, database connections and retry clock, so
//! one that fails never delays another, the WebSocket feed or the API; the
//! sequencer's live feed never waits for a slow output (it lags, and reads
//! the database instead).
//!
//! * [`delivery`] — the loop every output runs: batches pipelined up to a
//!   window, the cursor, retries with capped, jittered back-off, give-ups,
//!   `late` marking.
//! * [`mqtt`] — the MQTT sink: `lookout/events`, retained state topics,
//!   availability as the last will; the broker connection in its own task.
//! * [`homeassistant`] — MQTT discovery configs for Home Assistant: pure
//!   functions from a camera to its entities' configs.
//! * [`webhook`] — HTTP POSTs, signed with HMAC-SHA256, plain JSON or
//!   ntfy's format.
//!
//! A new output starts at the database's head, not at the beginning of
//! history: configuring a webhook does not send it last month's events.

pub mod delivery;
pub mod homeassistant;
pub mod mqtt;
pub mod webhook;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Url;
use serde::Serialize;
use shared::config::DataDir;
use shared::{Change, ChangeKind, Event};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::db::Db;
use crate::stream::bridge::Links;
use crate::stream::sequencer::Sequencer;

/// Which outputs run, from the command line and `[outputs]`.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub mqtt: Option<mqtt::Settings>,
    pub webhooks: Vec<webhook::Spec>,
    /// The address people reach this server by, for links in notifications.
    pub public_url: Option<Url>,
    /// A change committed longer ago than this when it is delivered is
    /// marked late.
    pub late_after: Duration,
}

/// The running outputs: what health and metrics show, and their tasks.
#[derive(Debug, Default)]
pub struct Running {
    pub statuses: Vec<Arc<OutputStatus>>,
    pub tasks: Vec<JoinHandle<()>>,
}

/// Starts every output in `settings`, each with its own database
/// connections, until `stop`. Fails only on settings that cannot work (a
/// CA file that cannot be read): a receiver that is down is retried.
pub async fn start(
    settings: &Settings,
    database: &Path,
    data_dir: &DataDir,
    links: &Arc<Links>,
    sequencer: &Sequencer,
    stop: &CancellationToken,
) -> Result<Running, String> {
    let mut running = Running::default();
    let open = |name: &str| Db::open(database, &format!("out-{name}"), 1, true).map_err(|e| e.to_string());
    if let Some(mqtt_settings) = &settings.mqtt {
        let status = Arc::new(OutputStatus::new("mqtt", mqtt_settings.broker.to_string()));
        let db = open("mqtt")?;
        let seed = db
            .read(|s| {
                let cursor = s.output_cursor("mqtt")?.unwrap_or(i64::MAX);
                let active = s.active_events()?.into_iter().filter(|e| e.seq <= cursor).collect();
                Ok(mqtt::Seed { active, labels: s.labels_by_camera()?, cameras: s.detector_cameras()? })
            })
            .await
            .map_err(|e| format!("cannot read the MQTT output's start: {e}"))?;
        let sink = mqtt::Mqtt::new(mqtt_settings, data_dir.clone(), links.clone(), status.clone(), seed)?;
        running.spawn(sink, status, Filter::default(), db, settings.late_after, sequencer, stop);
    }
    for (i, spec) in settings.webhooks.iter().enumerate() {
        let name = format!("webhook-{}", i + 1);
        let status = Arc::new(OutputStatus::new(&name, spec.target()));
        let db = open(&name)?;
        let sink = webhook::Webhook::new(spec.clone(), settings.public_url.clone())?;
        running.spawn(sink, status, spec.filter.clone(), db, settings.late_after, sequencer, stop);
    }
    Ok(running)
}

impl Running {
    #[expect(clippy::too_many_arguments, reason = "one call site, each argument named by its type")]
    fn spawn<S: delivery::Sink>(
        &mut self,
        sink: S,
        status: Arc<OutputStatus>,
        filter: Filter,
        db: Db,
        late_after: Duration,
        sequencer: &Sequencer,
        stop: &CancellationToken,
    ) {
        let output = delivery::Output { sink, status: status.clone(), filter, db, late_after };
        self.tasks.push(tokio::spawn(delivery::run(output, sequencer.subscribe(), stop.clone())));
        self.statuses.push(status);
    }
}

/// One change as an output sends it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub kind: ChangeKind,
    /// The event right before this change (`None` for a `new`, or when
    /// retention deleted its earlier changes).
    pub before: Option<Event>,
    /// The event right after it; its `seq` is the change's.
    pub after: Event,
    /// Older than `--late-after-secs` by the time it could be delivered.
    pub late: bool,
}

impl Delivery {
    pub fn seq(&self) -> i64 {
        self.after.seq
    }

    /// `{"type","seq","before","after"}` (plus `"late":true` when late):
    /// the shape of `lookout/events`, after Frigate's `frigate/events`.
    pub fn message(&self) -> String {
        #[derive(Serialize)]
        struct Message<'a> {
            #[serde(rename = "type")]
            kind: ChangeKind,
            seq: i64,
            before: Option<&'a Event>,
            after: &'a Event,
            #[serde(skip_serializing_if = "std::ops::Not::not")]
            late: bool,
        }
        let message = Message {
            kind: self.kind,
            seq: self.seq(),
            before: self.before.as_ref(),
            after: &self.after,
            late: self.late,
        };
        // Strings, numbers and options always serialise.
        serde_json::to_string(&message).unwrap_or_default()
    }
}

/// Which changes an output wants; empty sets want everything. Changes it
/// does not want still move its cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub cameras: BTreeSet<String>,
    /// An event matches if any of its objects has one of these labels.
    pub labels: BTreeSet<String>,
    pub kinds: BTreeSet<ChangeKind>,
}

impl Filter {
    pub fn wants(&self, change: &Change) -> bool {
        let event = &change.event;
        (self.cameras.is_empty() || self.cameras.contains(&event.camera_id))
            && (self.kinds.is_empty() || self.kinds.contains(&change.kind))
            && (self.labels.is_empty() || event.detected_objects.iter().any(|o| self.labels.contains(&o.label)))
    }
}

/// What one output is doing, for `/api/health` and `/metrics`.
#[derive(Debug)]
pub struct OutputStatus {
    /// `mqtt` or `webhook-N`: also its cursor's name in the database.
    pub name: String,
    /// Where it delivers, credentials masked.
    pub target: String,
    connected: AtomicBool,
    cursor: AtomicI64,
    delivered: AtomicU64,
    retries: AtomicU64,
    give_ups: AtomicU64,
    late: AtomicU64,
    expired: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// A copy of [`OutputStatus`], as `/api/health` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OutputReport {
    pub name: String,
    pub target: String,
    /// Whether its last attempt reached the receiver (false before the
    /// first).
    pub connected: bool,
    /// The last change the receiver acknowledged.
    pub cursor: i64,
    /// Changes committed after the cursor.
    pub lag: i64,
    pub delivered: u64,
    pub retries: u64,
    /// Changes the receiver refused for good and that were skipped.
    pub give_ups: u64,
    /// Changes delivered later than `--late-after-secs`.
    pub late: u64,
    /// Changes retention deleted before the output could deliver them
    /// (it was behind by the whole retention period).
    pub expired: u64,
    pub last_error: Option<String>,
}

impl OutputStatus {
    pub fn new(name: impl Into<String>, target: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            target: target.into(),
            connected: AtomicBool::new(false),
            cursor: AtomicI64::new(0),
            delivered: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            give_ups: AtomicU64::new(0),
            late: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    /// Its state now, `head` being the highest `seq` committed.
    pub fn report(&self, head: i64) -> OutputReport {
        let cursor = self.cursor.load(Ordering::Relaxed);
        OutputReport {
            name: self.name.clone(),
            target: self.target.clone(),
            connected: self.connected.load(Ordering::Relaxed),
            cursor,
            lag: (head - cursor).max(0),
            delivered: self.delivered.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            give_ups: self.give_ups.load(Ordering::Relaxed),
            late: self.late.load(Ordering::Relaxed),
            expired: self.expired.load(Ordering::Relaxed),
            last_error: self.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }

    fn succeeded(&self) {
        self.connected.store(true, Ordering::Relaxed);
    }

    fn failed(&self, why: &str) {
        self.connected.store(false, Ordering::Relaxed);
        self.noted(why);
    }

    /// Something went wrong that is not the receiver's failing.
    fn noted(&self, why: &str) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(why.to_owned());
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use shared::model::{BoundingBox, DetectedObject};

    pub(crate) fn change(kind: ChangeKind, camera: &str, labels: &[&str]) -> Change {
        let json = serde_json::json!({
            "seq": 7, "event_id": "evt_1_0001", "camera_id": camera,
            "timestamp": "2026-12-01T10:00:00.000Z", "state": "active", "end_time": null,
            "motion_confidence": 0.5, "detected_objects": [], "description": "",
            "image_path": null, "metadata": {"source": "detector"},
            "created_at": "2026-12-01T10:00:00.000Z", "updated_at": "2026-12-01T10:00:00.000Z"
        });
        let mut event: Event = serde_json::from_value(json).expect("an event");
        event.detected_objects = labels
            .iter()
            .map(|l| DetectedObject {
                label: (*l).to_owned(),
                confidence: 0.9,
                bbox: BoundingBox { x: 0.0, y: 0.0, width: 1.0, height: 1.0 },
            })
            .collect();
        Change { kind, event }
    }

    #[test]
    fn an_empty_filter_wants_everything_and_each_set_narrows_it() {
        let person = change(ChangeKind::New, "door", &["person"]);
        let car_end = change(ChangeKind::End, "yard", &["car"]);
        assert!(Filter::default().wants(&person) && Filter::default().wants(&car_end));
        let people = Filter { labels: ["person".into()].into(), ..Filter::default() };
        assert!(people.wants(&person) && !people.wants(&car_end));
        let door = Filter { cameras: ["door".into()].into(), ..Filter::default() };
        assert!(door.wants(&person) && !door.wants(&car_end));
        let ends = Filter { kinds: [ChangeKind::End].into(), ..Filter::default() };
        assert!(!ends.wants(&person) && ends.wants(&car_end));
    }

    #[test]
    fn the_message_has_frigates_shape_and_says_late_only_when_late() {
        let new = change(ChangeKind::New, "door", &["person"]);
        let delivery = Delivery { kind: ChangeKind::New, before: None, after: new.event.clone(), late: false };
        let message: serde_json::Value = serde_json::from_str(&delivery.message()).expect("json");
        assert_eq!(message["type"], "new");
        assert_eq!(message["seq"], 7);
        assert!(message["before"].is_null());
        assert_eq!(message["after"]["camera_id"], "door");
        assert!(message.get("late").is_none());
        let late = Delivery { late: true, before: Some(new.event.clone()), kind: ChangeKind::Update, ..delivery };
        let message: serde_json::Value = serde_json::from_str(&late.message()).expect("json");
        assert_eq!((message["type"].as_str(), message["late"].as_bool()), (Some("update"), Some(true)));
        assert_eq!(message["before"]["event_id"], "evt_1_0001");
    }
}
