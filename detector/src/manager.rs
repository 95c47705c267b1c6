//! The event manager: the one place an event (and each change of it)
//! becomes real.
//!
//! Producers send [`Command`]s: a new event (active, or reported whole), an
//! update of an active one, its end. For each, strictly in this order:
//!
//! 1. **commit** the change to SQLite (the source of truth; assigns `seq`),
//! 2. **append** one JSON line to `events.jsonl` and one human line to
//!    `events.log`,
//! 3. **publish** to every [`Publisher`] (the socket hub).
//!
//! Producers name events by the id they chose; when the store had to draw
//! another (a collision within a millisecond), the manager keeps the
//! mapping until the event ends, so an update never reaches another event.
//! At start, [`EventManager::end_orphans`] ends the events a crash left
//! active (`metadata.end_reason = "detector restarted"`).
//!
//! Publishing only ever follows a commit, so anything a subscriber receives
//! is already durable; a subscriber that misses it finds it in the database.
//! Log and publish failures are logged and counted but never undo or block
//! the commit. The manager runs on its own thread because SQLite calls block.
//!
//! # When the database refuses writes
//!
//! (Locked beyond the busy timeout, disk full, read-only, I/O errors.) Events
//! wait in a **backlog**, in order, and the oldest is retried every
//! [`RETRY_INTERVAL`]; nothing later is committed before it, so `seq` order
//! stays creation order. The backlog holds at most [`MAX_BACKLOG`] events;
//! beyond that the manager stops taking events, which pauses their producers
//! (the simulator waits; it never drops one). On shutdown, events still
//! uncommitted are written to `DATA_DIR/pending.jsonl` and committed first on
//! the next start. Every state change is logged at WARN/ERROR and the backlog
//! size is in each heartbeat, which turns the webserver's health `degraded`.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shared::config::DataDir;
use shared::eventlog::{Calendar, EventLogs, Role};
use shared::model::DetectedObject;
use shared::store::StoreError;
use shared::{Change, Event, EventState, NewEvent, Store, Timestamp};
use tokio::sync::mpsc;

use crate::hub::Publisher;
use crate::stats::{Stats, elapsed_ms};
use crate::sweeper::DiskFull;

/// How often the oldest uncommitted event is retried.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// Most events held while the database refuses writes.
pub const MAX_BACKLOG: usize = 10_000;
/// Longest a commit waits for the disk-full sweep.
const MAKE_ROOM_TIMEOUT: Duration = Duration::from_secs(30);
/// Where uncommitted events wait across a restart.
pub const PENDING_FILE: &str = "pending.jsonl";

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot open {path}: {source}")]
    File { path: String, source: std::io::Error },
    #[error("{path} is unreadable at line {line}: {reason}")]
    Pending { path: String, line: usize, reason: String },
}

/// What a producer asks the manager to commit, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "lowercase")]
pub enum Command {
    /// A new event: active (an `End` follows), or reported whole.
    New(NewEvent),
    /// Something a person would care about changed in an active event.
    Update { event_id: String, edit: EventEdit },
    /// The active event ended at `at`; `reason` when not on its own.
    End { event_id: String, at: Timestamp, reason: Option<String>, edit: EventEdit },
}

impl From<NewEvent> for Command {
    fn from(new: NewEvent) -> Self {
        Command::New(new)
    }
}

impl Command {
    fn event_id(&self) -> &str {
        match self {
            Command::New(new) => &new.event_id,
            Command::Update { event_id, .. } | Command::End { event_id, .. } => event_id,
        }
    }
}

/// What an update or an end sets: the producer's latest view of the event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEdit {
    pub motion_confidence: f64,
    pub detected_objects: Vec<DetectedObject>,
    pub description: String,
    pub image_path: Option<String>,
    pub inference_ms: Option<f64>,
}

impl EventEdit {
    fn apply(self, event: &mut Event) {
        event.motion_confidence = self.motion_confidence;
        event.detected_objects = self.detected_objects;
        event.description = self.description;
        event.image_path = self.image_path;
        event.metadata.inference_ms = self.inference_ms;
    }
}

pub struct EventManager {
    store: Store,
    logs: EventLogs,
    pending_path: PathBuf,
    backlog: VecDeque<Command>,
    /// Producer's event id → the stored one, where the store drew another.
    renamed: HashMap<String, String>,
    publishers: Vec<Arc<dyn Publisher>>,
    stats: Arc<Stats>,
    disk_full: Option<DiskFull>,
    /// A disk-full sweep already ran for the current refusal: one per
    /// episode, so a disk filled by someone else cannot make Lookout delete
    /// its whole history.
    made_room: bool,
}

impl std::fmt::Debug for EventManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventManager").field("store", &self.store.path()).finish_non_exhaustive()
    }
}

impl EventManager {
    /// Opens both logs (repairing a line torn by a crash) and loads events
    /// left uncommitted by an earlier run.
    pub fn open(
        data_dir: &DataDir,
        calendar: Calendar,
        store: Store,
        publishers: Vec<Arc<dyn Publisher>>,
        stats: Arc<Stats>,
    ) -> Result<Self, ManagerError> {
        let pending_path = data_dir.root().join(PENDING_FILE);
        let backlog = load_pending(&pending_path)?;
        if !backlog.is_empty() {
            tracing::warn!(events = backlog.len(), "committing events left uncommitted by the last run first");
        }
        stats.backlog.store(backlog.len() as u64, Ordering::Relaxed);
        Ok(Self {
            logs: EventLogs::open(data_dir, Role::Owner(calendar))
                .map_err(|e| ManagerError::File { path: e.file.to_owned(), source: e.source })?,
            store,
            pending_path,
            backlog,
            renamed: HashMap::new(),
            publishers,
            stats,
            disk_full: None,
            made_room: false,
        })
    }

    /// What to do when a commit finds the disk full: without it, the
    /// manager only holds and retries.
    pub fn on_disk_full(&mut self, handle: DiskFull) {
        self.disk_full = Some(handle);
    }

    /// Commits, logs and publishes one change.
    pub fn apply(&mut self, command: &Command) -> Result<Change, StoreError> {
        let started = std::time::Instant::now();
        let stored_id = |id: &str, renamed: &HashMap<String, String>| renamed.get(id).cloned().unwrap_or(id.to_owned());
        let change = match command.clone() {
            Command::New(new) => {
                let change = self.store.insert(&new)?;
                if change.event.event_id != new.event_id && change.event.state == EventState::Active {
                    self.renamed.insert(new.event_id, change.event.event_id.clone());
                }
                change
            }
            Command::Update { event_id, edit } => {
                self.store.update(&stored_id(&event_id, &self.renamed), |e| edit.apply(e))?
            }
            Command::End { event_id, at, reason, edit } => {
                let change =
                    self.store.end(&stored_id(&event_id, &self.renamed), at, reason.as_deref(), |e| edit.apply(e))?;
                self.renamed.remove(&event_id);
                change
            }
        };
        let event = &change.event;
        self.stats.record_change(&change, elapsed_ms(started));
        self.append_logs(&change);
        for publisher in &self.publishers {
            publisher.publish_change(&change);
        }
        tracing::debug!(seq = event.seq, change = change.kind.as_str(), event_id = %event.event_id, camera = %event.camera_id, "change committed and published");
        Ok(change)
    }

    /// Ends the events of `cameras` that are still active in the database:
    /// a crash left them so (this detector is their only producer). Their
    /// end time is their last change's.
    pub fn end_orphans(&mut self, cameras: &[String]) -> Result<usize, StoreError> {
        let orphans: Vec<Event> = self
            .store
            .active_events()?
            .into_iter()
            .filter(|e| e.metadata.source != shared::model::EventSource::Api && cameras.contains(&e.camera_id))
            .collect();
        for event in &orphans {
            let end = Command::End {
                event_id: event.event_id.clone(),
                at: event.updated_at,
                reason: Some(ORPHAN_REASON.to_owned()),
                edit: EventEdit {
                    motion_confidence: event.motion_confidence,
                    detected_objects: event.detected_objects.clone(),
                    description: event.description.clone(),
                    image_path: event.image_path.clone(),
                    inference_ms: event.metadata.inference_ms,
                },
            };
            self.apply(&end)?;
            tracing::warn!(event_id = %event.event_id, camera = %event.camera_id, "ended an event the last run left active");
        }
        Ok(orphans.len())
    }

    /// Handles events from `events` until every sender is gone, so that an
    /// event handed over before shutdown is always finished (committed, or
    /// kept in `pending.jsonl` when the database refuses it).
    pub fn run(mut self, mut events: mpsc::Receiver<Command>) {
        let mut open = true;
        while open || !self.backlog.is_empty() {
            if self.backlog.is_empty() {
                match events.blocking_recv() {
                    Some(new) => self.backlog.push_back(new),
                    None => break,
                }
            }
            // Take what is waiting, up to the backlog limit.
            while self.backlog.len() < MAX_BACKLOG {
                match events.try_recv() {
                    Ok(new) => self.backlog.push_back(new),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
            if self.commit_backlog() {
                continue;
            }
            if !open {
                break; // shutting down with the database still refusing
            }
            if self.backlog.len() >= MAX_BACKLOG {
                tracing::error!(
                    waiting = self.backlog.len(),
                    "backlog full: no new events are taken until the database accepts writes"
                );
            }
            std::thread::sleep(RETRY_INTERVAL);
        }
        self.spill_backlog();
    }

    /// Commits the backlog in order; `false` when the database refused one.
    fn commit_backlog(&mut self) -> bool {
        let was_failing = self.stats.backlog.load(Ordering::Relaxed) > 0;
        while let Some(command) = self.backlog.pop_front() {
            match self.apply(&command) {
                Ok(_) => {}
                // It can never succeed (a producer's mistake, or its event
                // was ended as an orphan meanwhile): say so, go on.
                Err(e @ (StoreError::NoSuchEvent(_) | StoreError::AlreadyEnded(_))) => {
                    tracing::warn!(error = %e, event_id = command.event_id(), "change refused and dropped");
                }
                Err(e) if e.is_disk_full() && self.disk_full.is_some() && !self.made_room => {
                    self.backlog.push_front(command);
                    if let Some(handle) = &self.disk_full {
                        handle.make_room(MAKE_ROOM_TIMEOUT);
                    }
                    self.made_room = true;
                }
                Err(e) => {
                    self.backlog.push_front(command);
                    self.stats.store_errors.fetch_add(1, Ordering::Relaxed);
                    self.stats.backlog.store(self.backlog.len() as u64, Ordering::Relaxed);
                    tracing::error!(
                        error = %e,
                        waiting = self.backlog.len(),
                        "database refused the event; holding it and retrying every {RETRY_INTERVAL:?}"
                    );
                    return false;
                }
            }
        }
        self.stats.backlog.store(0, Ordering::Relaxed);
        self.made_room = false;
        if was_failing {
            tracing::warn!("database accepts writes again; backlog committed");
        }
        true
    }

    /// Writes still-uncommitted events to `pending.jsonl` (or says loudly
    /// that they could not be kept).
    fn spill_backlog(&mut self) {
        self.stats.backlog.store(self.backlog.len() as u64, Ordering::Relaxed);
        if self.backlog.is_empty() {
            let _ = std::fs::remove_file(&self.pending_path);
            return;
        }
        let mut text = String::new();
        for command in &self.backlog {
            text.push_str(&serde_json::to_string(command).unwrap_or_default());
            text.push('\n');
        }
        match std::fs::write(&self.pending_path, text).and_then(|_| File::open(&self.pending_path)?.sync_all()) {
            Ok(()) => tracing::warn!(
                events = self.backlog.len(),
                file = %self.pending_path.display(),
                "database still refusing writes at shutdown; events kept for the next start"
            ),
            Err(e) => tracing::error!(
                events = self.backlog.len(),
                file = %self.pending_path.display(),
                error = %e,
                "EVENTS NOT STORED: the database refused them and they could not be saved for later"
            ),
        }
    }

    fn append_logs(&mut self, change: &Change) {
        for e in self.logs.append(change) {
            self.stats.log_errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e.source, seq = change.seq(), file = e.file, "cannot append to log (the change is safe in the database)");
        }
    }
}

fn load_pending(path: &Path) -> Result<VecDeque<Command>, ManagerError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(VecDeque::new()),
        Err(source) => return Err(ManagerError::File { path: path.display().to_string(), source }),
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            pending_event(line).map_err(|reason| ManagerError::Pending {
                path: path.display().to_string(),
                line: i + 1,
                reason,
            })
        })
        .collect()
}

/// One line of `pending.jsonl`: a [`Command`]. A line kept by a build from
/// before the event lifecycle is a bare new event without `state`: it was
/// reported whole, so it is ended.
fn pending_event(line: &str) -> Result<Command, String> {
    let mut value: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    if value.get("command").is_some() {
        return serde_json::from_value(value).map_err(|e| e.to_string());
    }
    if let Some(fields) = value.as_object_mut()
        && !fields.contains_key("state")
    {
        let start = fields.get("timestamp").cloned().unwrap_or_default();
        fields.insert("state".into(), "ended".into());
        fields.insert("end_time".into(), start);
    }
    serde_json::from_value(value).map(Command::New).map_err(|e| e.to_string())
}

/// `metadata.end_reason` of an event a crash left active.
pub const ORPHAN_REASON: &str = "detector restarted";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_events_round_trip_and_bad_lines_are_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(PENDING_FILE);
        assert!(load_pending(&path).expect("absent is empty").is_empty());
        std::fs::write(&path, "{not json}\n").expect("write");
        let err = load_pending(&path).expect_err("garbage");
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn a_pending_event_kept_before_the_lifecycle_loads_as_ended() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(PENDING_FILE);
        let legacy = r#"{"event_id":"evt_1795626196123_abcd","camera_id":"door","timestamp":"2026-11-25T17:03:16.123Z","motion_confidence":0.5,"detected_objects":[],"description":"x","image_path":null,"metadata":{"source":"detector","inference_ms":null,"frame_number":null,"producer":null}}"#;
        std::fs::write(&path, format!("\n{legacy}\n")).expect("write");
        let commands = load_pending(&path).expect("loads");
        let Command::New(event) = &commands[0] else { panic!("a new event: {commands:?}") };
        assert_eq!((event.state, event.end_time), (EventState::Ended, Some(event.timestamp)));
        assert_eq!(event.validate(), Ok(()));
        std::fs::write(&path, format!("{legacy}\n\n{{bad\n")).expect("write");
        assert!(load_pending(&path).expect_err("bad line").to_string().contains("line 3"), "blank lines still count");
    }
}
