//! The SQLite store: the source of truth for every event.
//!
//! One file (`DATA_DIR/events.db`) is shared by several processes: each
//! detector writes its events, the webserver writes `POST /api/events` and
//! reads for REST and catch-up. SQLite serialises writers, and `seq` is an
//! `AUTOINCREMENT` key assigned inside the writing transaction, so **`seq`
//! order is commit order** across all writers: when change `n` is visible,
//! every change below `n` that will ever exist is already visible too
//! (deletes aside). Every catch-up in Lookout relies on this.
//!
//! # Two tables: the change log and the events
//!
//! Every change of an event (`new`, `update`, `end`; see
//! [`Change`](crate::model::Change)) is a row of `changes`, keyed by its
//! `seq` and holding the event's canonical JSON right after the change:
//! what catch-ups replay ([`Store::after_seq`]). `events` holds each
//! event's current state, its `seq` being its latest change's: what REST
//! lists and gets. Both are written in the change's one transaction, so
//! they never disagree.
//!
//! # Durability
//!
//! The database runs in WAL mode with `synchronous = FULL`: [`Store::insert`]
//! returns only after the commit is fsynced, so a committed event survives a
//! crash of the process *and* of the machine. (`NORMAL` would survive process
//! crashes only; an fsync costs ~0.2 ms here, which the event rates of a
//! camera system easily afford.)
//!
//! # Concurrency
//!
//! A [`Store`] is one connection: `Send`, not `Sync`. Each process keeps one
//! writer (or a writer behind a mutex) plus any number of readers, in this or
//! other processes. A 5 s busy timeout absorbs other writers' transactions;
//! inserts take the write lock up front (`BEGIN IMMEDIATE`) so they never
//! deadlock upgrading a read lock.
//!
//! # Cluster mode
//!
//! With NATS (SPEC §10) a JetStream stream is the log across machines, and
//! [`cluster`] is the store's side of it: a detector's database is its
//! outbox (how far its changes reached the stream is kept with it), and a
//! webserver's database is a copy of the stream, written by
//! [`Store::apply`] at the stream's sequence instead of its own.
//!
//! # Schema
//!
//! `PRAGMA user_version` holds the schema version; [`MIGRATIONS`] upgrades an
//! older file in one transaction. A file from a newer Lookout is refused
//! rather than misread.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params};

use crate::model::{Change, ChangeKind, Event, EventState, NewEvent, Timestamp, new_event_id};

pub mod cluster;

/// How long a statement waits for another connection's lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes the write-ahead log is cut back to when it is reset.
pub const WAL_SIZE_LIMIT: i64 = 4 * 1024 * 1024;
/// Freed pages given back to the file system per transaction: short
/// enough that a commit waiting behind it hardly notices.
const VACUUM_PAGES: i64 = 512;

/// Most events one [`Store::list`] or [`Store::after_seq`] call returns.
pub const MAX_PAGE: usize = 1000;

/// One schema step: SQL, then (optionally) a Rust step for what SQL cannot
/// do alone, in the same transaction.
struct Migration {
    sql: &'static str,
    then: Option<MigrationStep>,
}

/// A migration's Rust step.
type MigrationStep = fn(&rusqlite::Transaction<'_>) -> Result<(), StoreError>;

/// Schema migrations, in order; entry `i` takes `user_version` from `i` to `i + 1`.
const MIGRATIONS: &[Migration] = &[
    Migration {
        sql: r#"
    CREATE TABLE events (
        seq               INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id          TEXT    NOT NULL UNIQUE,
        camera_id         TEXT    NOT NULL,
        timestamp         TEXT    NOT NULL,  -- fixed-width RFC 3339 UTC: text order = time order
        motion_confidence REAL    NOT NULL,
        detected_objects  TEXT    NOT NULL,  -- JSON array
        description       TEXT    NOT NULL,
        image_path        TEXT,
        metadata          TEXT    NOT NULL,  -- JSON object
        created_at        TEXT    NOT NULL
    ) STRICT;
    CREATE INDEX events_by_camera ON events (camera_id, seq);
    CREATE INDEX events_by_time ON events (timestamp);
"#,
        then: None,
    },
    Migration {
        sql: r#"
    -- Text search (`q`) through an index instead of a scan of every row:
    -- trigrams match any substring of 3+ characters, in any case. Commits
    -- do not feed it (an FTS5 insert costs ~50 µs more per one-event
    -- transaction): `Store::index_text` adds rows in batches, and a search
    -- scans only the rows above `text_index.indexed_seq`.
    CREATE VIRTUAL TABLE events_text USING fts5(
        description, camera_id, content = 'events', content_rowid = 'seq', tokenize = 'trigram'
    );
    CREATE TABLE text_index (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        indexed_seq INTEGER NOT NULL
    ) STRICT;
    INSERT INTO events_text (events_text) VALUES ('rebuild');
    INSERT INTO text_index (id, indexed_seq) VALUES (1, (SELECT COALESCE(MAX(seq), 0) FROM events));
    -- An indexed row leaves the index with its event.
    CREATE TRIGGER events_text_delete AFTER DELETE ON events
    WHEN old.seq <= (SELECT indexed_seq FROM text_index) BEGIN
        INSERT INTO events_text (events_text, rowid, description, camera_id)
            VALUES ('delete', old.seq, old.description, old.camera_id);
    END;
"#,
        then: None,
    },
    Migration {
        sql: r#"
    -- The event lifecycle (SPEC §7): every change is a row of its own,
    -- with the next seq; events keep the current state, at the seq of
    -- their latest change. Existing events were reported whole: ended,
    -- at their own time.
    ALTER TABLE events ADD COLUMN state TEXT NOT NULL DEFAULT 'ended' CHECK (state IN ('active', 'ended'));
    ALTER TABLE events ADD COLUMN end_time TEXT;
    ALTER TABLE events ADD COLUMN updated_at TEXT NOT NULL DEFAULT '';
    UPDATE events SET end_time = timestamp, updated_at = created_at;
    CREATE TABLE changes (
        seq      INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT    NOT NULL,
        kind     TEXT    NOT NULL CHECK (kind IN ('new', 'update', 'end')),
        event    TEXT    NOT NULL  -- the event's canonical JSON right after the change
    ) STRICT;
    CREATE INDEX changes_by_event ON changes (event_id, seq);
    CREATE INDEX events_active ON events (camera_id) WHERE state = 'active';
    -- A change moves its event to a new seq: an indexed row leaves the
    -- text index, and is indexed again above `indexed_seq`.
    CREATE TRIGGER events_text_update AFTER UPDATE OF seq, description, camera_id ON events
    WHEN old.seq <= (SELECT indexed_seq FROM text_index) BEGIN
        INSERT INTO events_text (events_text, rowid, description, camera_id)
            VALUES ('delete', old.seq, old.description, old.camera_id);
    END;
"#,
        then: Some(log_existing_events),
    },
    Migration {
        sql: r#"
    -- Retention (SPEC §11) deletes old events with their changes. What it
    -- deleted is remembered here, so a client resuming below it is told
    -- (`reset`) instead of silently missing history.
    CREATE TABLE retention (
        id              INTEGER PRIMARY KEY CHECK (id = 1),
        deleted_through INTEGER NOT NULL,  -- the highest seq of any deleted change
        deleted_events  INTEGER NOT NULL,
        deleted_bytes   INTEGER NOT NULL,  -- freed on disk: database, snapshots, logs
        last_sweep      TEXT
    ) STRICT;
    INSERT INTO retention (id, deleted_through, deleted_events, deleted_bytes) VALUES (1, 0, 0, 0);
"#,
        then: None,
    },
    Migration {
        sql: r#"
    -- Outputs (MQTT, webhooks; SPEC §9) deliver every change at least
    -- once, in order: each resumes after the last change its receiver
    -- acknowledged, which is kept here.
    CREATE TABLE output_cursors (
        name TEXT    PRIMARY KEY,
        seq  INTEGER NOT NULL
    ) STRICT;
"#,
        then: None,
    },
    Migration {
        sql: r#"
    -- Cluster mode (SPEC §10): this database as a detector's outbox. Per
    -- stream, the id its changes carry there (with their local seq, so a
    -- restart recognises its own messages) and the last change the stream
    -- acknowledged.
    CREATE TABLE stream_outbox (
        stream     TEXT    PRIMARY KEY,
        outbox_id  TEXT    NOT NULL,
        local_seq  INTEGER NOT NULL,
        stream_seq INTEGER NOT NULL
    ) STRICT;
"#,
        then: None,
    },
];

/// Migration 3: each existing event's `new` change, at the event's own `seq`.
fn log_existing_events(tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    let mut read = tx.prepare(&format!("SELECT {COLUMNS} FROM events ORDER BY seq"))?;
    let mut write = tx.prepare("INSERT INTO changes (seq, event_id, kind, event) VALUES (?1, ?2, 'new', ?3)")?;
    let rows = read.query_map([], RawRow::read)?;
    for row in rows {
        let event = row.map_err(StoreError::from).and_then(RawRow::into_event)?;
        write.execute(params![event.seq, event.event_id, event.to_json()])?;
    }
    Ok(())
}

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

const COLUMNS: &str = "seq, event_id, camera_id, timestamp, motion_confidence, \
                       detected_objects, description, image_path, metadata, created_at, \
                       state, end_time, updated_at";

/// Everything that can go wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {path}: {source}{}", hint(source))]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("database {path} has schema version {found}, newer than this build's {SCHEMA_VERSION}; upgrade Lookout")]
    SchemaTooNew { path: PathBuf, found: i64 },
    #[error("database is busy (locked by another process for more than {BUSY_TIMEOUT:?})")]
    Busy,
    #[error("stored event seq={seq} is unreadable: {reason}")]
    CorruptRow { seq: i64, reason: String },
    #[error("could not find a free event id after {0} attempts")]
    EventIdExhausted(u32),
    #[error("no event {0:?}")]
    NoSuchEvent(String),
    #[error("event {0:?} has already ended")]
    AlreadyEnded(String),
    #[error("event {0:?} exists already")]
    DuplicateEvent(String),
    #[error("change seq={seq} is not above the copy's head seq={head}")]
    OutOfOrder { seq: i64, head: i64 },
    #[error("change seq={seq} is unreadable: {reason}")]
    CorruptChange { seq: i64, reason: String },
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
}

impl StoreError {
    /// A change this store refuses for what it says (a `new` of an event
    /// it has, an `update` or `end` of one it lacks or that ended), not
    /// for a failure of the store: skipping it is the answer.
    pub fn is_refusal(&self) -> bool {
        matches!(self, StoreError::DuplicateEvent(_) | StoreError::NoSuchEvent(_) | StoreError::AlreadyEnded(_))
    }

    /// The file system has no room for the write (`SQLITE_FULL`).
    pub fn is_disk_full(&self) -> bool {
        let code = match self {
            StoreError::Sqlite(e) | StoreError::Open { source: e, .. } => e.sqlite_error_code(),
            _ => None,
        };
        code == Some(ErrorCode::DiskFull)
    }
}

/// What to check, for the open errors people actually meet.
fn hint(e: &rusqlite::Error) -> &'static str {
    match e.sqlite_error_code() {
        Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly | ErrorCode::PermissionDenied) => {
            " (is its directory writable? SQLite also creates the -wal and -shm files beside it)"
        }
        Some(ErrorCode::NotADatabase) => " (the file is not a Lookout database, or it is damaged; move it aside)",
        Some(ErrorCode::DiskFull) => " (the disk is full)",
        _ => "",
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy,
            _ => StoreError::Sqlite(e),
        }
    }
}

/// Filters for [`Store::list`]. All are optional and combine with AND.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    /// Only events of these cameras (all when empty).
    pub cameras: Vec<String>,
    /// Seen at or after this time.
    pub start: Option<Timestamp>,
    /// Seen at or before this time.
    pub end: Option<Timestamp>,
    /// Only events with a larger `seq`.
    pub after_seq: Option<i64>,
    /// Only events with a smaller `seq`: the paging cursor.
    pub before_seq: Option<i64>,
    /// Only events with a detected object of one of these labels (any
    /// label when empty)…
    pub labels: Vec<String>,
    /// … whose confidence is at least this.
    pub min_confidence: Option<f64>,
    /// Only events whose description or camera contains this text (any case).
    pub text: Option<String>,
}

/// One page of [`Store::list`], newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub events: Vec<Event>,
    /// Pass as `before_seq` to get the next (older) page; `None` on the last page.
    pub next_before_seq: Option<i64>,
}

/// What history the store keeps, from [`Store::history`].
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// The lowest `seq` of any kept change; `None` when there is none.
    pub oldest_seq: Option<i64>,
    /// When the oldest kept event started.
    pub oldest_time: Option<Timestamp>,
    /// The highest `seq` of any change retention deleted (0: none yet). A
    /// client that has not seen every change up to here may hold events
    /// that are gone, or lack changes it can no longer get.
    pub deleted_through: i64,
    pub deleted_events: u64,
    pub deleted_bytes: u64,
    pub last_sweep: Option<Timestamp>,
}

impl History {
    /// Whether a client that has seen every change up to `after_seq` must
    /// be told that history it may rely on was deleted.
    pub fn resets(&self, after_seq: i64) -> bool {
        after_seq < self.deleted_through
    }
}

/// One camera's totals, from [`Store::camera_summary`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CameraSummary {
    pub camera_id: String,
    pub events: u64,
    pub last_seq: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub last_timestamp: Timestamp,
    /// Its events in progress now.
    pub active: u64,
    /// Its events seen since the time asked for (`null` when none was).
    pub events_since: Option<u64>,
    /// Its latest event with a snapshot: the picture a camera tile shows.
    pub latest_image: Option<LatestImage>,
}

/// Which event's snapshot is a camera's latest, and at which change (the
/// URL `/api/events/{event_id}/image?v={seq}` names that very picture).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LatestImage {
    pub event_id: String,
    pub seq: i64,
}

/// The `seq` the next change takes: what `AUTOINCREMENT` would give (one
/// above the largest ever used), read under the write lock every change
/// holds, so the change row is written once, its JSON included.
const NEXT_SEQ: &str = "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0) + 1";
const INSERT_CHANGE: &str = "INSERT INTO changes (seq, event_id, kind, event) VALUES (?1, ?2, ?3, ?4)";
const INSERT_EVENT: &str = "INSERT INTO events (seq, event_id, camera_id, timestamp, motion_confidence, \
     detected_objects, description, image_path, metadata, created_at, state, end_time, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
const UPDATE_EVENT: &str = "UPDATE events SET seq = ?1, motion_confidence = ?2, detected_objects = ?3, \
     description = ?4, image_path = ?5, metadata = ?6, state = ?7, end_time = ?8, updated_at = ?9 \
     WHERE event_id = ?10";

/// One connection to the event database.
#[derive(Debug)]
pub struct Store {
    pub(crate) conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let open_err = |source| StoreError::Open { path: path.clone(), source };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(&path, flags).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        // Fail fast on a file that is not a database at all.
        conn.query_row("PRAGMA schema_version", [], |_| Ok(())).map_err(open_err)?;
        // Before the first table exists, so a new file gives freed pages
        // back to the file system (`Store::release_free_pages`); an older
        // file is converted once, below.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL").map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(open_err)?;
        // A write-ahead log that grew (a burst, a sweep) is cut back to this
        // when it is next reset, instead of keeping its high-water mark.
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT).map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", true).map_err(open_err)?;
        migrate(&mut conn, &path)?;
        convert_to_incremental_vacuum(&conn, &path)?;
        Ok(Self { conn, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Commits `new` as its `new` change, assigning `seq`, `created_at` and
    /// `updated_at`.
    ///
    /// If another event already has `new.event_id` (4 random hex digits can
    /// collide within a millisecond), a fresh suffix is drawn; the returned
    /// event carries the id actually stored.
    pub fn insert(&mut self, new: &NewEvent) -> Result<Change, StoreError> {
        const ATTEMPTS: u32 = 8;
        let mut new = new.clone();
        for _ in 0..ATTEMPTS {
            let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut event = new.clone().commit(0, Timestamp::now());
            let inserted = log_change(&tx, ChangeKind::New, &mut event).and_then(|()| insert_event_row(&tx, &event));
            match inserted {
                Ok(()) => {
                    tx.commit()?;
                    return Ok(Change { kind: ChangeKind::New, event });
                }
                Err(StoreError::Sqlite(e)) if is_unique_violation(&e) => {
                    drop(tx);
                    new.event_id = new_event_id(new.timestamp);
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::EventIdExhausted(ATTEMPTS))
    }

    /// Commits an `update` of the active event `event_id`: `edit` changes
    /// what it wants (labels, snapshot, description, confidence, metadata);
    /// the store keeps the identity, the state and the times.
    pub fn update(&mut self, event_id: &str, edit: impl FnOnce(&mut Event)) -> Result<Change, StoreError> {
        self.change(event_id, ChangeKind::Update, |event| {
            edit(event);
            (event.state, event.end_time) = (EventState::Active, None);
        })
    }

    /// Commits the `end` of the active event `event_id` at `at` (never
    /// before its start), with `reason` as `metadata.end_reason` when it did
    /// not end on its own; `edit` sets what the end brings, like an update
    /// (the final description, the best snapshot).
    pub fn end(
        &mut self,
        event_id: &str,
        at: Timestamp,
        reason: Option<&str>,
        edit: impl FnOnce(&mut Event),
    ) -> Result<Change, StoreError> {
        self.change(event_id, ChangeKind::End, |event| {
            edit(event);
            event.end_at(at, reason);
        })
    }

    /// An `update` or `end` of an active event, in one transaction.
    fn change(
        &mut self,
        event_id: &str,
        kind: ChangeKind,
        edit: impl FnOnce(&mut Event),
    ) -> Result<Change, StoreError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let sql = format!("SELECT {COLUMNS} FROM events WHERE event_id = ?1");
        let current = tx.prepare_cached(&sql)?.query_row([event_id], RawRow::read).optional()?;
        let mut event = current.ok_or_else(|| StoreError::NoSuchEvent(event_id.to_owned()))?.into_event()?;
        if event.state == EventState::Ended {
            return Err(StoreError::AlreadyEnded(event_id.to_owned()));
        }
        // What makes it the same event stays, whatever the edit did.
        let identity = (event.event_id.clone(), event.camera_id.clone(), event.timestamp, event.created_at);
        edit(&mut event);
        (event.event_id, event.camera_id, event.timestamp, event.created_at) = identity;
        event.updated_at = Timestamp::now();
        log_change(&tx, kind, &mut event)?;
        update_event_row(&tx, &event)?;
        tx.commit()?;
        Ok(Change { kind, event })
    }

    /// Events still active, oldest first: what a restarted producer ends.
    pub fn active_events(&self) -> Result<Vec<Event>, StoreError> {
        self.query_events(&format!("SELECT {COLUMNS} FROM events WHERE state = 'active' ORDER BY seq"), [])
    }

    /// The event with this id, if any.
    pub fn get(&self, event_id: &str) -> Result<Option<Event>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM events WHERE event_id = ?1");
        let row = self.conn.prepare_cached(&sql)?.query_row([event_id], RawRow::read).optional()?;
        row.map(RawRow::into_event).transpose()
    }

    /// Events matching `filter`, newest (highest `seq`) first, at most
    /// `limit` (clamped to 1..=[`MAX_PAGE`]).
    pub fn list(&self, filter: &EventFilter, limit: usize) -> Result<Page, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let mut clauses = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        // Each `?` of a clause takes the next value, in order.
        let mut bind = |clause: &str, bound: Vec<Value>| {
            let mut parts = clause.split('?');
            let mut numbered = parts.next().unwrap_or_default().to_owned();
            for (part, value) in parts.zip(bound) {
                values.push(value);
                numbered.push_str(&format!("?{}{part}", values.len()));
            }
            clauses.push(numbered);
        };
        if !filter.cameras.is_empty() {
            let marks = vec!["?"; filter.cameras.len()].join(", ");
            bind(&format!("camera_id IN ({marks})"), filter.cameras.iter().cloned().map(Value::Text).collect());
        }
        if let Some(start) = filter.start {
            bind("timestamp >= ?", vec![Value::Text(start.to_string())]);
        }
        if let Some(end) = filter.end {
            bind("timestamp <= ?", vec![Value::Text(end.to_string())]);
        }
        if let Some(after) = filter.after_seq {
            bind("seq > ?", vec![Value::Integer(after)]);
        }
        if let Some(before) = filter.before_seq {
            bind("seq < ?", vec![Value::Integer(before)]);
        }
        if !filter.labels.is_empty() || filter.min_confidence.is_some() {
            // One object must pass both: `label=person&min_confidence=0.8`
            // is a person seen at 0.8, not a person and anything at 0.8.
            let mut object = Vec::new();
            let mut bound = Vec::new();
            if !filter.labels.is_empty() {
                object.push(format!(
                    "json_extract(o.value, '$.label') IN ({})",
                    vec!["?"; filter.labels.len()].join(", ")
                ));
                bound.extend(filter.labels.iter().cloned().map(Value::Text));
            }
            if let Some(min) = filter.min_confidence {
                object.push("json_extract(o.value, '$.confidence') >= ?".to_owned());
                bound.push(Value::Real(min));
            }
            bind(
                &format!("EXISTS (SELECT 1 FROM json_each(events.detected_objects) o WHERE {})", object.join(" AND ")),
                bound,
            );
        }
        if let Some(text) = &filter.text {
            if text.chars().count() >= 3 {
                // The index up to `indexed_seq`, and a scan of the few rows
                // above it. A quoted phrase: the text is matched literally,
                // never as FTS query syntax.
                let phrase = format!("\"{}\"", text.replace('"', "\"\""));
                // One subquery (UNION ALL), not an OR of two: with an OR,
                // SQLite scans every event instead of looking up the hits.
                bind(
                    "seq IN (SELECT rowid FROM events_text WHERE events_text MATCH ? \
                     UNION ALL SELECT seq FROM events WHERE seq > (SELECT indexed_seq FROM text_index) \
                         AND instr(lower(description || ' ' || camera_id), lower(?)) > 0)",
                    vec![Value::Text(phrase), Value::Text(text.clone())],
                );
            } else {
                // Too short for trigrams: a scan, which the webserver bounds.
                bind("instr(lower(description || ' ' || camera_id), lower(?)) > 0", vec![Value::Text(text.clone())]);
            }
        }
        let where_sql = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
        // One extra row tells whether another page exists.
        let sql = format!("SELECT {COLUMNS} FROM events {where_sql} ORDER BY seq DESC LIMIT {}", limit + 1);
        let mut events = self.query_events(&sql, rusqlite::params_from_iter(values))?;
        let next_before_seq = if events.len() > limit {
            events.truncate(limit);
            events.last().map(|e| e.seq)
        } else {
            None
        };
        Ok(Page { events, next_before_seq })
    }

    /// How many changes with `after < seq <= through` are kept.
    pub fn count_changes(&self, after: i64, through: i64) -> Result<u64, StoreError> {
        let mut stmt = self.conn.prepare_cached("SELECT COUNT(*) FROM changes WHERE seq > ?1 AND seq <= ?2")?;
        Ok(stmt.query_row(params![after, through], |r| r.get::<_, i64>(0))?.max(0) as u64)
    }

    /// Changes with `seq > after`, oldest first, at most `limit` (clamped to
    /// 1..=[`MAX_PAGE`]): the catch-up read.
    pub fn after_seq(&self, after: i64, limit: usize) -> Result<Vec<Change>, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE) as i64;
        let mut stmt =
            self.conn.prepare_cached("SELECT seq, kind, event FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
        let rows = stmt.query_map(params![after, limit], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
        })?;
        rows.map(|row| {
            let (seq, kind, json) = row?;
            change_from_row(seq, &kind, &json)
        })
        .collect()
    }

    /// Adds up to `limit` events not yet in the text index to it, oldest
    /// first, in one short write transaction; returns how many. Call until
    /// it returns less than `limit` to bring the index up to date.
    pub fn index_text(&mut self, limit: usize) -> Result<usize, StoreError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let from: i64 = tx.query_row("SELECT indexed_seq FROM text_index", [], |r| r.get(0))?;
        let upto: Option<i64> = tx.query_row(
            "SELECT MAX(seq) FROM (SELECT seq FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2)",
            params![from, limit as i64],
            |r| r.get(0),
        )?;
        let Some(upto) = upto else { return Ok(0) };
        let added = tx.execute(
            "INSERT INTO events_text (rowid, description, camera_id) \
             SELECT seq, description, camera_id FROM events WHERE seq > ?1 AND seq <= ?2",
            params![from, upto],
        )?;
        tx.execute("UPDATE text_index SET indexed_seq = ?1", [upto])?;
        tx.commit()?;
        Ok(added)
    }

    /// The `event_id` of the change at `seq`, if any: a point read, for
    /// checking an announcement against the database.
    pub fn event_id_at(&self, seq: i64) -> Result<Option<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached("SELECT event_id FROM changes WHERE seq = ?1")?;
        Ok(stmt.query_row([seq], |r| r.get(0)).optional()?)
    }

    /// Commits of this connection no longer wait for the disk flush
    /// (`synchronous = NORMAL`): for writing what can be rebuilt, like the
    /// text index. In WAL mode they stay atomic, and the next full commit of
    /// any connection makes them durable too.
    pub fn without_flush(&self) -> Result<(), StoreError> {
        Ok(self.conn.pragma_update(None, "synchronous", "NORMAL")?)
    }

    /// How many events the text index has not reached yet.
    pub fn text_index_lag(&self) -> Result<i64, StoreError> {
        Ok(self.conn.query_row(
            "SELECT COALESCE((SELECT MAX(seq) FROM events), 0) - indexed_seq FROM text_index",
            [],
            |r| r.get(0),
        )?)
    }

    /// Replaces the [`BUSY_TIMEOUT`] of this connection (e.g. shorter, for a
    /// caller that must not wait and has a slower path to fall back on).
    pub fn set_busy_timeout(&self, timeout: Duration) -> Result<(), StoreError> {
        Ok(self.conn.busy_timeout(timeout)?)
    }

    /// The highest committed `seq` (of any change), or 0 for an empty store.
    pub fn head_seq(&self) -> Result<i64, StoreError> {
        Ok(self.conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM changes", [], |r| r.get(0))?)
    }

    /// Per camera: how many events are stored, the latest one's `seq` and
    /// time, how many are in progress, how many were seen since `since`
    /// (when given), and its latest snapshot. Ordered by camera id.
    pub fn camera_summary(&self, since: Option<Timestamp>) -> Result<Vec<CameraSummary>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT camera_id, COUNT(*), MAX(seq), MAX(timestamp), SUM(state = 'active'), SUM(timestamp >= ?1) \
             FROM events GROUP BY camera_id ORDER BY camera_id",
        )?;
        // Without `since`, the text of no timestamp: every row compares below it.
        let since_text = since.map_or_else(|| "~".to_owned(), |t| t.to_string());
        let rows = stmt.query_map([&since_text], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })?;
        let mut latest = self.conn.prepare_cached(
            "SELECT event_id, seq FROM events WHERE camera_id = ?1 AND image_path IS NOT NULL ORDER BY seq DESC LIMIT 1",
        )?;
        let mut summaries = Vec::new();
        for row in rows {
            let (camera_id, events, last_seq, last, active, seen_since) = row?;
            let last_timestamp = last
                .parse()
                .map_err(|e| StoreError::CorruptRow { seq: last_seq, reason: format!("timestamp: {e}") })?;
            let latest_image = latest
                .query_row([&camera_id], |r| Ok(LatestImage { event_id: r.get(0)?, seq: r.get(1)? }))
                .optional()?;
            summaries.push(CameraSummary {
                camera_id,
                events: events.max(0) as u64,
                last_seq,
                last_timestamp,
                active: active.max(0) as u64,
                events_since: since.map(|_| seen_since.max(0) as u64),
                latest_image,
            });
        }
        Ok(summaries)
    }

    /// Every kept change of `event_id`, oldest first (at most
    /// [`MAX_PAGE`]): the event's history, for its detail view.
    pub fn changes_of(&self, event_id: &str) -> Result<Vec<Change>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT seq, kind, event FROM changes WHERE event_id = ?1 ORDER BY seq LIMIT {MAX_PAGE}"
        ))?;
        let rows =
            stmt.query_map([event_id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?;
        rows.map(|row| {
            let (seq, kind, json) = row?;
            change_from_row(seq, &kind, &json)
        })
        .collect()
    }

    /// How many events are stored.
    pub fn count(&self) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    /// Ended events that started before `cutoff`, oldest first, at most
    /// `limit`, after the `(timestamp, seq)` of the last one of the previous
    /// page: what retention looks at. Active events are never listed.
    pub fn ended_before(
        &self,
        cutoff: Timestamp,
        after: Option<(Timestamp, i64)>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let (after_time, after_seq) = after.map(|(t, seq)| (t.to_string(), seq)).unwrap_or_default();
        self.query_events(
            &format!(
                "SELECT {COLUMNS} FROM events WHERE state = 'ended' AND timestamp < ?1 \
                 AND (timestamp, seq) > (?2, ?3) ORDER BY timestamp, seq LIMIT ?4"
            ),
            params![cutoff.to_string(), after_time, after_seq, limit as i64],
        )
    }

    /// Deletes these events with all their changes, in one transaction, and
    /// records what went in the `retention` row. An id that is active (or
    /// gone) is skipped: retention never deletes an event still going on.
    /// Returns how many events were deleted.
    pub fn delete_events(&mut self, event_ids: &[String]) -> Result<usize, StoreError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut deleted = 0;
        let mut through: i64 = 0;
        {
            let mut last_change = tx.prepare_cached(
                "SELECT MAX(c.seq) FROM changes c JOIN events e ON e.event_id = c.event_id \
                 WHERE c.event_id = ?1 AND e.state = 'ended'",
            )?;
            let mut drop_changes = tx.prepare_cached("DELETE FROM changes WHERE event_id = ?1")?;
            let mut drop_event = tx.prepare_cached("DELETE FROM events WHERE event_id = ?1 AND state = 'ended'")?;
            for id in event_ids {
                let Some(last) = last_change.query_row([id], |r| r.get::<_, Option<i64>>(0))? else { continue };
                drop_changes.execute([id])?;
                deleted += drop_event.execute([id])?;
                through = through.max(last);
            }
        }
        tx.execute(
            "UPDATE retention SET deleted_through = MAX(deleted_through, ?1), deleted_events = deleted_events + ?2",
            params![through, deleted as i64],
        )?;
        tx.commit()?;
        Ok(deleted)
    }

    /// The event as it was before change `seq`: its previous change, if
    /// that is still kept (`None` for a `new`, or when retention deleted it).
    pub fn event_before(&self, event_id: &str, seq: i64) -> Result<Option<Event>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, event FROM changes WHERE event_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT 1",
        )?;
        let row =
            stmt.query_row(params![event_id, seq], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))).optional()?;
        row.map(|(seq, json)| {
            serde_json::from_str(&json).map_err(|e| StoreError::CorruptChange { seq, reason: format!("event: {e}") })
        })
        .transpose()
    }

    /// Every camera a detector (not the API) made a kept event for, in
    /// order: the cameras the detectors' settings name, or once named.
    pub fn detector_cameras(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.camera_id FROM (SELECT DISTINCT camera_id FROM events) c WHERE EXISTS \
             (SELECT 1 FROM events e WHERE e.camera_id = c.camera_id \
              AND json_extract(e.metadata, '$.source') IS NOT 'api') ORDER BY 1",
        )?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every `(camera, label)` of a kept event's objects: the MQTT output's
    /// count topics and Home Assistant sensors start from these.
    pub fn labels_by_camera(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT DISTINCT e.camera_id, json_extract(o.value, '$.label') FROM events e, \
             json_each(e.detected_objects) o WHERE json_extract(o.value, '$.label') IS NOT NULL ORDER BY 1, 2",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Where output `name` resumes: the last change its receiver
    /// acknowledged; `None` for an output never run on this database.
    pub fn output_cursor(&self, name: &str) -> Result<Option<i64>, StoreError> {
        let mut stmt = self.conn.prepare_cached("SELECT seq FROM output_cursors WHERE name = ?1")?;
        Ok(stmt.query_row(params![name], |r| r.get(0)).optional()?)
    }

    /// Moves output `name`'s cursor to `seq`; never backwards.
    pub fn set_output_cursor(&self, name: &str, seq: i64) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO output_cursors (name, seq) VALUES (?1, ?2) \
             ON CONFLICT (name) DO UPDATE SET seq = MAX(seq, excluded.seq)",
        )?;
        stmt.execute(params![name, seq])?;
        Ok(())
    }

    /// Records a finished sweep: when, and how many bytes it freed.
    pub fn record_sweep(&self, at: Timestamp, freed_bytes: u64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE retention SET last_sweep = ?1, deleted_bytes = deleted_bytes + ?2",
            params![at.to_string(), freed_bytes.min(i64::MAX as u64) as i64],
        )?;
        Ok(())
    }

    /// Gives the pages freed by deletions back to the file system
    /// (incremental vacuum, a few hundred pages per transaction), then
    /// checkpoints the write-ahead log without waiting for anyone, and
    /// truncates it if no other connection is using it at that moment. No
    /// step waits on, or holds up for long, another connection's commit.
    pub fn release_free_pages(&self) -> Result<(), StoreError> {
        loop {
            let free: i64 = self.conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
            if free == 0 {
                break;
            }
            // Each step frees one page; stepping once (as `execute` would) is not enough.
            let mut vacuum = self.conn.prepare(&format!("PRAGMA incremental_vacuum({VACUUM_PAGES})"))?;
            let mut steps = vacuum.raw_query();
            while steps.next()?.is_some() {}
        }
        self.conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        // TRUNCATE waits for readers and blocks writers while it waits: with
        // no busy wait it only truncates when that costs nobody anything.
        self.conn.busy_timeout(Duration::ZERO)?;
        let truncated = self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
        match truncated.map_err(StoreError::from) {
            Ok(()) | Err(StoreError::Busy) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// What history is kept, and what retention has deleted so far.
    pub fn history(&self) -> Result<History, StoreError> {
        let row = self.conn.query_row(
            "SELECT (SELECT MIN(seq) FROM changes), (SELECT MIN(timestamp) FROM events), \
                    deleted_through, deleted_events, deleted_bytes, last_sweep FROM retention",
            [],
            |r| {
                Ok((
                    r.get::<_, Option<i64>>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, Option<String>>(5)?,
                ))
            },
        )?;
        let (oldest_seq, oldest_time, deleted_through, deleted_events, deleted_bytes, last_sweep) = row;
        let time = |text: Option<String>, what: &str| {
            text.map(|t| {
                t.parse::<Timestamp>().map_err(|e| StoreError::CorruptRow {
                    seq: oldest_seq.unwrap_or(0),
                    reason: format!("{what}: {e}"),
                })
            })
            .transpose()
        };
        Ok(History {
            oldest_seq,
            oldest_time: time(oldest_time, "timestamp")?,
            deleted_through,
            deleted_events: deleted_events.max(0) as u64,
            deleted_bytes: deleted_bytes.max(0) as u64,
            last_sweep: time(last_sweep, "last sweep")?,
        })
    }

    /// `PRAGMA integrity_check`: `Ok(())` or the problems SQLite reports.
    pub fn integrity_check(&self) -> Result<Result<(), String>, StoreError> {
        self.check("PRAGMA integrity_check")
    }

    /// `PRAGMA quick_check`: like [`Store::integrity_check`] without the
    /// index cross-checks, in time linear in the file size.
    pub fn quick_check(&self) -> Result<Result<(), String>, StoreError> {
        self.check("PRAGMA quick_check(20)")
    }

    fn check(&self, pragma: &str) -> Result<Result<(), String>, StoreError> {
        let mut stmt = self.conn.prepare(pragma)?;
        let lines: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        Ok(if lines == ["ok"] { Ok(()) } else { Err(lines.join("; ")) })
    }

    fn query_events(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Event>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params, RawRow::read)?;
        rows.map(|row| row.map_err(StoreError::from).and_then(RawRow::into_event)).collect()
    }
}

/// A change row (`seq`, `kind`, the event's JSON) read back, checked: a
/// kind this build does not know, JSON that does not parse or an event
/// at another `seq` is a corrupt row, never a wrong change.
fn change_from_row(seq: i64, kind: &str, json: &str) -> Result<Change, StoreError> {
    let corrupt = |reason: String| StoreError::CorruptChange { seq, reason };
    let kind = ChangeKind::parse(kind).ok_or_else(|| corrupt(format!("unknown kind {kind:?}")))?;
    let event: Event = serde_json::from_str(json).map_err(|e| corrupt(format!("event: {e}")))?;
    if event.seq != seq {
        return Err(corrupt(format!("holds the event at seq {}", event.seq)));
    }
    Ok(Change { kind, event })
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew { path: path.to_path_buf(), found });
    }
    for (version, migration) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        tx.execute_batch(migration.sql)?;
        if let Some(then) = migration.then {
            then(&tx)?;
        }
        tx.pragma_update(None, "user_version", version as i64 + 1)?;
    }
    tx.commit()?;
    Ok(())
}

/// `auto_vacuum` can only change on an empty file or through a `VACUUM`
/// (which rewrites the file, and needs as much free space again): done once
/// for a file made before retention existed, so deleted events can give
/// their space back.
fn convert_to_incremental_vacuum(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    const INCREMENTAL: i64 = 2;
    let mode: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
    if mode == INCREMENTAL {
        return Ok(());
    }
    tracing::info!(database = %path.display(), "converting the database to incremental vacuum (once; rewrites the file)");
    conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;")?;
    Ok(())
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Serialising plain structs of strings and numbers into a String cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

/// Appends `event`'s change of `kind` to the log, giving the event the
/// change's `seq`, and stores the event's JSON with it.
fn log_change(tx: &rusqlite::Transaction<'_>, kind: ChangeKind, event: &mut Event) -> Result<(), StoreError> {
    event.seq = tx.prepare_cached(NEXT_SEQ)?.query_row([], |r| r.get(0))?;
    tx.prepare_cached(INSERT_CHANGE)?.execute(params![event.seq, event.event_id, kind.as_str(), event.to_json()])?;
    Ok(())
}

/// Writes a new event's row.
fn insert_event_row(tx: &Connection, event: &Event) -> Result<(), StoreError> {
    let row = EventRow::of(event);
    // Cached: parsing the statement anew cost ~50 µs of every commit.
    tx.prepare_cached(INSERT_EVENT)?.execute(params![
        event.seq,
        event.event_id,
        event.camera_id,
        event.timestamp.to_string(),
        event.motion_confidence,
        row.objects,
        event.description,
        event.image_path,
        row.metadata,
        event.created_at.to_string(),
        event.state.as_str(),
        row.end_time,
        event.updated_at.to_string(),
    ])?;
    Ok(())
}

/// Moves an existing event's row to its latest change.
fn update_event_row(tx: &Connection, event: &Event) -> Result<(), StoreError> {
    let row = EventRow::of(event);
    tx.prepare_cached(UPDATE_EVENT)?.execute(params![
        event.seq,
        event.motion_confidence,
        row.objects,
        event.description,
        event.image_path,
        row.metadata,
        event.state.as_str(),
        row.end_time,
        event.updated_at.to_string(),
        event.event_id,
    ])?;
    Ok(())
}

/// The columns of an event that are stored as text of another form.
struct EventRow {
    objects: String,
    metadata: String,
    end_time: Option<String>,
}

impl EventRow {
    fn of(event: &Event) -> Self {
        Self {
            objects: to_json(&event.detected_objects),
            metadata: to_json(&event.metadata),
            end_time: event.end_time.map(|t| t.to_string()),
        }
    }
}

/// A row as SQLite holds it, before the JSON columns are parsed.
struct RawRow {
    seq: i64,
    event_id: String,
    camera_id: String,
    timestamp: String,
    motion_confidence: f64,
    detected_objects: String,
    description: String,
    image_path: Option<String>,
    metadata: String,
    created_at: String,
    state: String,
    end_time: Option<String>,
    updated_at: String,
}

impl RawRow {
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            seq: row.get(0)?,
            event_id: row.get(1)?,
            camera_id: row.get(2)?,
            timestamp: row.get(3)?,
            motion_confidence: row.get(4)?,
            detected_objects: row.get(5)?,
            description: row.get(6)?,
            image_path: row.get(7)?,
            metadata: row.get(8)?,
            created_at: row.get(9)?,
            state: row.get(10)?,
            end_time: row.get(11)?,
            updated_at: row.get(12)?,
        })
    }

    fn into_event(self) -> Result<Event, StoreError> {
        let seq = self.seq;
        let corrupt =
            |what: &str, e: &dyn std::fmt::Display| StoreError::CorruptRow { seq, reason: format!("{what}: {e}") };
        Ok(Event {
            seq,
            event_id: self.event_id,
            camera_id: self.camera_id,
            timestamp: self.timestamp.parse().map_err(|e| corrupt("timestamp", &e))?,
            state: EventState::parse(&self.state).ok_or_else(|| corrupt("state", &self.state))?,
            end_time: self.end_time.map(|t| t.parse()).transpose().map_err(|e| corrupt("end_time", &e))?,
            motion_confidence: self.motion_confidence,
            detected_objects: serde_json::from_str(&self.detected_objects)
                .map_err(|e| corrupt("detected_objects", &e))?,
            description: self.description,
            image_path: self.image_path,
            metadata: serde_json::from_str(&self.metadata).map_err(|e| corrupt("metadata", &e))?,
            created_at: self.created_at.parse().map_err(|e| corrupt("created_at", &e))?,
            updated_at: self.updated_at.parse().map_err(|e| corrupt("updated_at", &e))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EventSource;
    use crate::model::tests::arb_new_event;
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;

    fn new_events(n: usize) -> Vec<NewEvent> {
        let mut runner = TestRunner::deterministic();
        let strategy = arb_new_event();
        (0..n).map(|_| strategy.new_tree(&mut runner).expect("generate").current()).collect()
    }

    fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path().join("events.db")).expect("open");
        (dir, store)
    }

    #[test]
    fn insert_assigns_consecutive_seq_and_get_returns_it() {
        let (_dir, mut store) = temp_store();
        assert_eq!(store.head_seq().expect("head"), 0);
        for (i, new) in new_events(10).iter().enumerate() {
            let change = store.insert(new).expect("insert");
            assert_eq!(change.kind, ChangeKind::New);
            let event = change.event;
            assert_eq!(event.seq, i as i64 + 1);
            assert_eq!(event.event_id, new.event_id);
            assert_eq!(store.get(&event.event_id).expect("get"), Some(event));
        }
        assert_eq!(store.head_seq().expect("head"), 10);
        assert_eq!(store.count().expect("count"), 10);
        assert_eq!(store.get("evt_1_0000").expect("get"), None);
    }

    #[test]
    fn colliding_event_id_gets_a_fresh_suffix() {
        let (_dir, mut store) = temp_store();
        let new = &new_events(1)[0];
        let first = store.insert(new).expect("first").event;
        let second = store.insert(new).expect("second").event;
        assert_ne!(first.event_id, second.event_id);
        assert_eq!(second.seq, first.seq + 1);
        assert!(crate::model::is_valid_event_id(&second.event_id));
    }

    #[test]
    fn after_seq_is_ascending_and_bounded() {
        let (_dir, mut store) = temp_store();
        for new in new_events(25) {
            store.insert(&new).expect("insert");
        }
        let seqs: Vec<i64> = store.after_seq(20, 100).expect("after").iter().map(Change::seq).collect();
        assert_eq!(seqs, vec![21, 22, 23, 24, 25]);
        let seqs: Vec<i64> = store.after_seq(0, 3).expect("after").iter().map(Change::seq).collect();
        assert_eq!(seqs, vec![1, 2, 3]);
        assert!(store.after_seq(25, 10).expect("after").is_empty());
    }

    #[test]
    fn list_filters_and_pages_newest_first() {
        let (_dir, mut store) = temp_store();
        let mut news = new_events(30);
        for (i, new) in news.iter_mut().enumerate() {
            new.camera_id = if i % 3 == 0 { "yard".into() } else { "door".into() };
            new.timestamp = Timestamp::from_unix_ms(1_000_000 + i as i64 * 1000);
            store.insert(new).expect("insert");
        }
        // Paging through everything visits each event once, newest first.
        let mut seen = Vec::new();
        let mut filter = EventFilter::default();
        loop {
            let page = store.list(&filter, 7).expect("list");
            seen.extend(page.events.iter().map(|e| e.seq));
            match page.next_before_seq {
                Some(cursor) => filter.before_seq = Some(cursor),
                None => break,
            }
        }
        assert_eq!(seen, (1..=30).rev().collect::<Vec<_>>());

        let yard = EventFilter { cameras: vec!["yard".into()], ..Default::default() };
        let page = store.list(&yard, 100).expect("list");
        assert_eq!(page.events.len(), 10);
        assert!(page.events.iter().all(|e| e.camera_id == "yard"));
        assert_eq!(page.next_before_seq, None);

        let window = EventFilter {
            start: Some(Timestamp::from_unix_ms(1_005_000)),
            end: Some(Timestamp::from_unix_ms(1_009_000)),
            after_seq: Some(6),
            ..Default::default()
        };
        let seqs: Vec<i64> = store.list(&window, 100).expect("list").events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![10, 9, 8, 7]);
    }

    #[test]
    fn list_filters_by_label_and_text() {
        let (_dir, mut store) = temp_store();
        let mut news = new_events(3);
        news[0].detected_objects = vec![object("cat")];
        news[0].description = "A cat on the WALL".into();
        news[1].detected_objects = vec![object("car"), object("person")];
        news[1].description = "Visitors".into();
        news[2].detected_objects = vec![];
        news[2].description = "Wind?".into();
        for new in &news {
            store.insert(new).expect("insert");
        }
        let seqs = |filter: EventFilter| -> Vec<i64> {
            store.list(&filter, 10).expect("list").events.iter().map(|e| e.seq).collect()
        };
        let labels = |labels: &[&str]| labels.iter().map(|l| (*l).to_owned()).collect::<Vec<_>>();
        assert_eq!(seqs(EventFilter { labels: labels(&["person"]), ..Default::default() }), vec![2]);
        assert_eq!(seqs(EventFilter { labels: labels(&["ca"]), ..Default::default() }), Vec::<i64>::new());
        assert_eq!(seqs(EventFilter { labels: labels(&["cat", "person"]), ..Default::default() }), vec![2, 1]);
        // The score is the named label's: no person at 0.95, a cat at 0.9.
        let at =
            |labels: Vec<String>, min: f64| EventFilter { labels, min_confidence: Some(min), ..Default::default() };
        assert_eq!(seqs(at(labels(&["person"]), 0.95)), Vec::<i64>::new());
        assert_eq!(seqs(at(labels(&["person"]), 0.5)), vec![2]);
        assert_eq!(seqs(at(Vec::new(), 0.5)), vec![2, 1], "any object at 0.5; the event without one is out");
        assert_eq!(seqs(EventFilter { text: Some("wall".into()), ..Default::default() }), vec![1]);
        // '%' and '_' are plain characters, not patterns.
        assert_eq!(seqs(EventFilter { text: Some("%".into()), ..Default::default() }), Vec::<i64>::new());
    }

    #[test]
    fn text_search_gives_the_same_answers_before_and_after_indexing() {
        let (_dir, mut store) = temp_store();
        let mut news = new_events(3);
        news[0].description = "A cat on the WALL".into();
        news[1].description = "Visitors".into();
        news[2].description = "Wind?".into();
        for new in &news {
            store.insert(new).expect("insert");
        }
        // Any substring of 3+ characters, any case; FTS syntax in the text
        // is taken literally.
        let cases: &[(&str, &[i64])] = &[
            ("CAT ON", &[1]),
            ("isit", &[2]),
            ("wind?", &[3]),
            ("\"wall", &[]),
            ("wall OR wind", &[]),
            ("NEAR(a b)", &[]),
            ("*cat*", &[]),
            ("c:a", &[]),
        ];
        let check = |store: &Store, stage: &str| {
            for (text, expected) in cases {
                let filter = EventFilter { text: Some((*text).into()), ..Default::default() };
                let found: Vec<i64> = store.list(&filter, 10).expect("list").events.iter().map(|e| e.seq).collect();
                assert_eq!(found, *expected, "{text:?} {stage}");
            }
        };
        check(&store, "before indexing (a scan above indexed_seq)");
        assert_eq!(store.index_text(2).expect("index"), 2, "a batch is bounded");
        check(&store, "half indexed");
        assert_eq!(store.index_text(2).expect("index"), 1);
        assert_eq!(store.index_text(2).expect("index"), 0, "up to date");
        check(&store, "indexed");
    }

    #[test]
    fn a_version_1_database_gains_the_text_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.db");
        {
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(MIGRATIONS[0].sql).expect("v1 schema");
            conn.execute_batch(
                "INSERT INTO events (event_id, camera_id, timestamp, motion_confidence, detected_objects, \
                 description, image_path, metadata, created_at) VALUES ('evt_1_abcd', 'door', \
                 '2026-11-25T17:03:16.123Z', 0.5, '[]', 'A parcel was left', NULL, \
                 '{\"source\":\"api\",\"inference_ms\":null,\"frame_number\":null,\"producer\":null}', \
                 '2026-11-25T17:03:16.200Z'); PRAGMA user_version = 1;",
            )
            .expect("an old row");
        }
        let store = Store::open(&path).expect("migrates");
        let found = store.list(&EventFilter { text: Some("parcel".into()), ..Default::default() }, 10).expect("list");
        assert_eq!(found.events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1]);
        let mode: i64 = store.conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0)).expect("auto_vacuum");
        assert_eq!(mode, 2, "an older file is converted to incremental vacuum, for retention");
        assert_eq!(store.history().expect("history").deleted_through, 0);
    }

    #[test]
    fn camera_summary_counts_per_camera() {
        let (_dir, mut store) = temp_store();
        let mut news = new_events(5);
        for (i, new) in news.iter_mut().enumerate() {
            new.camera_id = if i < 3 { "b_cam".into() } else { "a_cam".into() };
            new.timestamp = Timestamp::from_unix_ms(1_000_000 + i as i64);
            (new.state, new.end_time) =
                if i == 0 { (EventState::Active, None) } else { (EventState::Ended, Some(new.timestamp)) };
            new.image_path = [1, 4]
                .contains(&i)
                .then(|| crate::config::DataDir::snapshot_relative_path(new.timestamp, &new.event_id));
            store.insert(new).expect("insert");
        }
        let summary = store.camera_summary(None).expect("summary");
        let counts: Vec<(&str, u64, i64, u64)> =
            summary.iter().map(|c| (c.camera_id.as_str(), c.events, c.last_seq, c.active)).collect();
        assert_eq!(counts, vec![("a_cam", 2, 5, 0), ("b_cam", 3, 3, 1)]);
        assert_eq!(summary[0].last_timestamp, Timestamp::from_unix_ms(1_000_004));
        let latest: Vec<Option<i64>> = summary.iter().map(|c| c.latest_image.as_ref().map(|i| i.seq)).collect();
        assert_eq!(latest, vec![Some(5), Some(2)], "each camera's latest event with a picture");
        assert_eq!(summary[1].latest_image.as_ref().map(|i| i.event_id.as_str()), Some(news[1].event_id.as_str()));
        assert!(summary.iter().all(|c| c.events_since.is_none()), "nothing asked");

        let since = store.camera_summary(Some(Timestamp::from_unix_ms(1_000_002))).expect("summary");
        assert_eq!(since.iter().map(|c| c.events_since).collect::<Vec<_>>(), vec![Some(2), Some(1)]);
    }

    #[test]
    fn an_events_changes_are_its_history_in_order() {
        let (_dir, mut store) = temp_store();
        let mut news = new_events(2);
        (news[0].state, news[0].end_time) = (EventState::Active, None);
        let id = store.insert(&news[0]).expect("insert").event.event_id;
        store.insert(&news[1]).expect("another event between");
        store.update(&id, |e| e.description = "A cat, then a dog".into()).expect("update");
        store.end(&id, Timestamp::now(), None, |_| {}).expect("end");
        let history: Vec<(ChangeKind, i64)> =
            store.changes_of(&id).expect("history").iter().map(|c| (c.kind, c.seq())).collect();
        assert_eq!(history, vec![(ChangeKind::New, 1), (ChangeKind::Update, 3), (ChangeKind::End, 4)]);
        assert!(store.changes_of("evt_1_0000").expect("none").is_empty());
    }

    fn object(label: &str) -> crate::model::DetectedObject {
        crate::model::DetectedObject {
            label: label.into(),
            confidence: 0.9,
            bbox: crate::model::BoundingBox { x: 0.0, y: 0.0, width: 1.0, height: 1.0 },
        }
    }

    #[test]
    fn reopening_keeps_events_and_schema() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.db");
        let event = Store::open(&path).expect("open").insert(&new_events(1)[0]).expect("insert").event;
        let store = Store::open(&path).expect("reopen");
        assert_eq!(store.get(&event.event_id).expect("get"), Some(event));
        assert_eq!(store.integrity_check().expect("check"), Ok(()));
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.db");
        drop(Store::open(&path).expect("open"));
        let conn = Connection::open(&path).expect("raw open");
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1).expect("bump");
        drop(conn);
        let err = Store::open(&path).expect_err("newer schema");
        assert!(matches!(err, StoreError::SchemaTooNew { .. }), "{err}");
    }

    #[test]
    fn garbage_file_is_a_clear_open_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.db");
        std::fs::write(&path, vec![0x42u8; 8192]).expect("write garbage");
        let err = Store::open(&path).expect_err("not a database");
        assert!(matches!(err, StoreError::Open { .. }), "{err}");
        assert!(err.to_string().contains("events.db"), "{err}");
    }

    #[test]
    fn two_connections_see_each_others_commits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.db");
        let mut a = Store::open(&path).expect("a");
        let mut b = Store::open(&path).expect("b");
        let news = new_events(4);
        a.insert(&news[0]).expect("a1");
        b.insert(&news[1]).expect("b1");
        a.insert(&news[2]).expect("a2");
        let seqs: Vec<i64> = b.after_seq(0, 10).expect("after").iter().map(Change::seq).collect();
        assert_eq!(seqs, vec![1, 2, 3]);
    }

    fn active(mut new: NewEvent) -> NewEvent {
        new.state = EventState::Active;
        new.end_time = None;
        new
    }

    #[test]
    fn every_change_takes_the_next_seq_and_the_event_follows_its_latest() {
        let (_dir, mut store) = temp_store();
        let news = new_events(2);
        let door = store.insert(&active(news[0].clone())).expect("new").event;
        let other = store.insert(&news[1]).expect("another event").event;
        assert_eq!((door.seq, door.state, door.end_time), (1, EventState::Active, None));

        let updated = store
            .update(&door.event_id, |e| {
                e.detected_objects = vec![object("person")];
                e.description = "A person at the door".into();
                e.state = EventState::Ended; // not the edit's to decide
            })
            .expect("update");
        assert_eq!((updated.kind, updated.event.seq, updated.event.state), (ChangeKind::Update, 3, EventState::Active));
        assert_eq!(updated.event.created_at, door.created_at);
        assert!(updated.event.updated_at >= door.updated_at);

        let end_at = Timestamp::from_unix_ms(door.timestamp.unix_ms() + 8_000);
        let ended = store.end(&door.event_id, end_at, Some("shutdown"), |_| {}).expect("end");
        assert_eq!((ended.kind, ended.event.seq, ended.event.state), (ChangeKind::End, 4, EventState::Ended));
        assert_eq!(ended.event.end_time, Some(end_at));
        assert_eq!(ended.event.metadata.end_reason.as_deref(), Some("shutdown"));
        assert_eq!(ended.event.detected_objects, vec![object("person")], "an end keeps what the update set");

        // The current state, at the latest change's seq; the log, in order.
        assert_eq!(store.get(&door.event_id).expect("get"), Some(ended.event.clone()));
        let log = store.after_seq(0, 10).expect("log");
        let kinds: Vec<(i64, ChangeKind, &str)> =
            log.iter().map(|c| (c.seq(), c.kind, c.event.event_id.as_str())).collect();
        assert_eq!(
            kinds,
            vec![
                (1, ChangeKind::New, door.event_id.as_str()),
                (2, ChangeKind::New, other.event_id.as_str()),
                (3, ChangeKind::Update, door.event_id.as_str()),
                (4, ChangeKind::End, door.event_id.as_str()),
            ]
        );
        assert_eq!(log[2].event, updated.event, "each change keeps the event as it was then");
        assert_eq!(store.head_seq().expect("head"), 4);
        assert_eq!(store.count().expect("count"), 2, "two events, four changes");
        let newest: Vec<i64> =
            store.list(&EventFilter::default(), 10).expect("list").events.iter().map(|e| e.seq).collect();
        assert_eq!(newest, vec![4, 2], "listed by their latest change");
        assert_eq!(store.event_id_at(3).expect("point read"), Some(door.event_id.clone()));
    }

    #[test]
    fn the_event_before_a_change_is_its_previous_change() {
        let (_dir, mut store) = temp_store();
        let news = new_events(2);
        let door = store.insert(&active(news[0].clone())).expect("new").event;
        store.insert(&news[1]).expect("another event");
        let updated = store
            .update(&door.event_id, |e| e.detected_objects = vec![object("person"), object("person")])
            .expect("update")
            .event;
        let ended = store.end(&door.event_id, updated.timestamp, None, |_| {}).expect("end").event;
        let (id, camera) = (door.event_id.clone(), door.camera_id.clone());
        assert_eq!(store.event_before(&id, door.seq).expect("read"), None, "a new has no before");
        assert_eq!(store.event_before(&id, updated.seq).expect("read"), Some(door));
        assert_eq!(store.event_before(&id, ended.seq).expect("read"), Some(updated));
        let labels = store.labels_by_camera().expect("labels");
        assert!(labels.contains(&(camera.clone(), "person".to_owned())), "{labels:?}");
        assert_eq!(labels.iter().filter(|(c, l)| *c == camera && l == "person").count(), 1, "once each");
        let mut expected: Vec<String> =
            news.iter().filter(|n| n.metadata.source != EventSource::Api).map(|n| n.camera_id.clone()).collect();
        expected.sort();
        expected.dedup();
        let mut posted = new_events(3).pop().expect("an event");
        (posted.camera_id, posted.metadata.source) = ("zz_api_only".into(), EventSource::Api);
        store.insert(&posted).expect("an API event");
        let detector_made = store.detector_cameras().expect("cameras");
        assert_eq!(detector_made, expected, "each once, in order, none only the API named");
    }

    #[test]
    fn output_cursors_start_unset_and_only_move_forward() {
        let (dir, store) = temp_store();
        assert_eq!(store.output_cursor("mqtt").expect("read"), None);
        store.set_output_cursor("mqtt", 7).expect("set");
        store.set_output_cursor("mqtt", 3).expect("set");
        store.set_output_cursor("webhook-1", 2).expect("set");
        let reopened = Store::open(dir.path().join("events.db")).expect("reopen");
        assert!(reopened.labels_by_camera().expect("labels").is_empty());
        assert!(reopened.detector_cameras().expect("cameras").is_empty());
        assert_eq!(reopened.output_cursor("mqtt").expect("read"), Some(7), "kept, never moved back");
        assert_eq!(reopened.output_cursor("webhook-1").expect("read"), Some(2), "one cursor per output");
    }

    #[test]
    fn ending_twice_or_an_unknown_event_is_refused_and_changes_nothing() {
        let (_dir, mut store) = temp_store();
        let mut new = new_events(1)[0].clone();
        (new.state, new.end_time) = (EventState::Ended, Some(new.timestamp));
        let whole = store.insert(&new).expect("reported whole").event;
        assert_eq!(whole.state, EventState::Ended);
        let err = store.end(&whole.event_id, Timestamp::now(), None, |_| {}).expect_err("already ended");
        assert!(matches!(err, StoreError::AlreadyEnded(_)), "{err}");
        let err = store.update(&whole.event_id, |_| {}).expect_err("no updates after the end");
        assert!(matches!(err, StoreError::AlreadyEnded(_)), "{err}");
        let err = store.end("evt_1_0000", Timestamp::now(), None, |_| {}).expect_err("unknown");
        assert!(matches!(err, StoreError::NoSuchEvent(_)), "{err}");
        assert_eq!(store.head_seq().expect("head"), 1, "no change was logged");
        assert_eq!(store.active_events().expect("active"), Vec::<Event>::new());
    }

    #[test]
    fn an_end_is_never_before_the_start_and_active_events_are_listed() {
        let (_dir, mut store) = temp_store();
        let news = new_events(2);
        let a = store.insert(&active(news[0].clone())).expect("a").event;
        let b = store.insert(&active(news[1].clone())).expect("b").event;
        let ids: Vec<String> = store.active_events().expect("active").into_iter().map(|e| e.event_id).collect();
        assert_eq!(ids, vec![a.event_id.clone(), b.event_id.clone()]);
        let early = Timestamp::from_unix_ms(a.timestamp.unix_ms() - 60_000);
        assert_eq!(store.end(&a.event_id, early, None, |_| {}).expect("end").event.end_time, Some(a.timestamp));
        assert_eq!(store.active_events().expect("active").len(), 1);
    }

    #[test]
    fn text_search_follows_an_event_to_its_new_seq() {
        let (_dir, mut store) = temp_store();
        let mut new = active(new_events(1)[0].clone());
        new.description = "A parcel at the door".into();
        let event = store.insert(&new).expect("new").event;
        store.index_text(10).expect("index");
        let found = |store: &Store, text: &str| -> Vec<i64> {
            let filter = EventFilter { text: Some(text.into()), ..Default::default() };
            store.list(&filter, 10).expect("list").events.iter().map(|e| e.seq).collect()
        };
        assert_eq!(found(&store, "parcel"), vec![1]);
        store.update(&event.event_id, |e| e.description = "A person took the box".into()).expect("update");
        assert_eq!(found(&store, "parcel"), Vec::<i64>::new(), "the old text left the index");
        assert_eq!(found(&store, "took the"), vec![2], "found above the index");
        store.index_text(10).expect("index again");
        assert_eq!(found(&store, "took the"), vec![2], "and in it");
        assert_eq!(store.quick_check().expect("check"), Ok(()));
    }

    /// A file made by the previous schema (version 2, before the change
    /// log), written with its own SQL, not this build's.
    #[test]
    fn a_version_2_database_migrates_each_event_to_an_ended_event_whose_new_change_keeps_its_seq() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.db");
        {
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(MIGRATIONS[0].sql).expect("v1 schema");
            conn.execute_batch(MIGRATIONS[1].sql).expect("v2 schema");
            for (seq, camera) in [(1, "door"), (2, "yard"), (5, "door")] {
                conn.execute(
                    "INSERT INTO events (seq, event_id, camera_id, timestamp, motion_confidence, detected_objects, \
                     description, image_path, metadata, created_at) VALUES (?1, ?2, ?3, \
                     '2026-11-25T17:03:16.123Z', 0.5, '[{\"label\":\"cat\",\"confidence\":0.9,\"bbox\":{\"x\":1.0,\"y\":2.0,\"width\":3.0,\"height\":4.0}}]', \
                     'A cat on the wall', NULL, \
                     '{\"source\":\"detector\",\"inference_ms\":12.5,\"frame_number\":7,\"producer\":null}', \
                     '2026-11-25T17:03:16.200Z')",
                    params![seq, format!("evt_1_000{seq}"), camera],
                )
                .expect("an old row");
            }
            conn.pragma_update(None, "user_version", 2).expect("version 2");
        }
        let mut store = Store::open(&path).expect("migrates");
        let log = store.after_seq(0, 10).expect("log");
        assert_eq!(
            log.iter().map(|c| (c.seq(), c.kind)).collect::<Vec<_>>(),
            vec![(1, ChangeKind::New), (2, ChangeKind::New), (5, ChangeKind::New)]
        );
        for change in &log {
            let event = &change.event;
            assert_eq!(store.get(&event.event_id).expect("get").as_ref(), Some(event));
            assert_eq!((event.state, event.end_time), (EventState::Ended, Some(event.timestamp)));
            assert_eq!(event.updated_at, event.created_at);
            assert_eq!(event.metadata.end_reason, None);
            assert_eq!(
                event.detected_objects,
                vec![crate::model::DetectedObject {
                    bbox: crate::model::BoundingBox { x: 1.0, y: 2.0, width: 3.0, height: 4.0 },
                    ..object("cat")
                }]
            );
        }
        // New changes continue above the old seqs, and search still works.
        let next = store.insert(&new_events(1)[0]).expect("a new event").event;
        assert_eq!(next.seq, 6);
        let found = store.list(&EventFilter { text: Some("cat on".into()), ..Default::default() }, 10).expect("list");
        assert_eq!(found.events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![5, 2, 1]);
        assert_eq!(store.integrity_check().expect("check"), Ok(()));
    }
}
