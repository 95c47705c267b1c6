//! The event manager: the one place an event becomes real.
//!
//! For each event, strictly in this order:
//!
//! 1. **commit** to SQLite (the source of truth; assigns `seq`),
//! 2. **append** one JSON line to `events.jsonl` and one human line to
//!    `events.log`,
//! 3. **publish** to every [`Publisher`] (the socket hub).
//!
//! Publishing only ever follows a commit, so anything a subscriber receives
//! is already durable; a subscriber that misses it finds it in the database.
//! Log and publish failures are logged and counted but never undo or block
//! the commit. The manager runs on its own thread because SQLite calls block.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use shared::config::DataDir;
use shared::store::StoreError;
use shared::{Event, NewEvent, Store};
use tokio::sync::mpsc;

use crate::hub::Publisher;
use crate::stats::Stats;

/// Attempts at committing while the database is busy, and the first back-off.
const BUSY_ATTEMPTS: u32 = 5;
const BUSY_BACKOFF: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot open {path} for appending: {source}")]
    Log {
        path: String,
        source: std::io::Error,
    },
}

pub struct EventManager {
    store: Store,
    jsonl: File,
    text_log: File,
    publishers: Vec<Arc<dyn Publisher>>,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for EventManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventManager")
            .field("store", &self.store.path())
            .finish_non_exhaustive()
    }
}

impl EventManager {
    pub fn open(
        data_dir: &DataDir,
        store: Store,
        publishers: Vec<Arc<dyn Publisher>>,
        stats: Arc<Stats>,
    ) -> Result<Self, ManagerError> {
        let append = |path: std::path::PathBuf| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|source| ManagerError::Log {
                    path: path.display().to_string(),
                    source,
                })
        };
        Ok(Self {
            jsonl: append(data_dir.jsonl_log())?,
            text_log: append(data_dir.text_log())?,
            store,
            publishers,
            stats,
        })
    }

    /// Commits, logs and publishes one event.
    pub fn create(&mut self, new: &NewEvent) -> Result<Event, StoreError> {
        let event = self.commit(new)?;
        self.stats.record_event(&event.camera_id, event.seq);
        self.append_logs(&event);
        for publisher in &self.publishers {
            publisher.publish_event(&event);
        }
        tracing::debug!(seq = event.seq, event_id = %event.event_id, camera = %event.camera_id, "event committed and published");
        Ok(event)
    }

    /// Handles events from `events` until every sender is gone, so that an
    /// event handed over before shutdown is always finished.
    pub fn run(mut self, mut events: mpsc::Receiver<NewEvent>) {
        while let Some(new) = events.blocking_recv() {
            if let Err(e) = self.create(&new) {
                self.stats.store_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    error = %e,
                    event_id = %new.event_id,
                    camera = %new.camera_id,
                    "EVENT NOT STORED: the database refused it"
                );
            }
        }
    }

    fn commit(&mut self, new: &NewEvent) -> Result<Event, StoreError> {
        let mut backoff = BUSY_BACKOFF;
        for attempt in 1..=BUSY_ATTEMPTS {
            match self.store.insert(new) {
                Err(StoreError::Busy) if attempt < BUSY_ATTEMPTS => {
                    tracing::warn!(attempt, "database busy; retrying in {backoff:?}");
                    std::thread::sleep(backoff);
                    backoff *= 2;
                }
                other => return other,
            }
        }
        Err(StoreError::Busy)
    }

    fn append_logs(&mut self, event: &Event) {
        let json = event.to_json() + "\n";
        // One write per line: a line is either whole in the file or absent.
        for (file, line, name) in [
            (&mut self.jsonl, json, "events.jsonl"),
            (&mut self.text_log, text_line(event), "events.log"),
        ] {
            if let Err(e) = file.write_all(line.as_bytes()) {
                self.stats.log_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, seq = event.seq, file = name, "cannot append to log (event is safe in the database)");
            }
        }
    }
}

/// The human line for `events.log`.
pub fn text_line(event: &Event) -> String {
    let objects = if event.detected_objects.is_empty() {
        "no objects".to_owned()
    } else {
        event
            .detected_objects
            .iter()
            .map(|o| format!("{} {:.2}", o.label, o.confidence))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let inference = event
        .metadata
        .inference_ms
        .map(|ms| format!(" inference={ms:.1}ms"))
        .unwrap_or_default();
    format!(
        "{} seq={} {} camera={} motion={:.2} [{}]{} source={} | {}\n",
        event.timestamp,
        event.seq,
        event.event_id,
        event.camera_id,
        event.motion_confidence,
        objects,
        inference,
        event.metadata.source.as_str(),
        event.description.replace(['\n', '\r'], " "),
    )
}
