//! The store's side of cluster mode (SPEC §10).
//!
//! * A detector's database is its **outbox**: every change is committed here
//!   first, then published. [`Store::outbox`] gives the id its changes carry
//!   in a stream and how far the stream has acknowledged them;
//!   [`Store::record_published`] moves that mark forward.
//! * A webserver's database is a **copy** of the stream: [`Store::apply`]
//!   writes each change at the stream's sequence. It enforces what the
//!   local writers' transactions enforce (a `new` event is new, an `update`
//!   or `end` finds its event active), so every copy that applies the same
//!   stream in the same order refuses the same changes and ends up the same.

use rand::Rng;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{COLUMNS, INSERT_CHANGE, NEXT_SEQ, RawRow, StoreError, insert_event_row, update_event_row};
use crate::model::{Change, ChangeKind, EventState};
use crate::store::Store;

/// How far a detector's changes reached one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRecord {
    /// Names this database's changes in the stream (random, made once).
    pub outbox_id: String,
    /// The highest local `seq` the stream acknowledged (0: none yet).
    pub local_seq: i64,
    /// The stream sequence it got.
    pub stream_seq: u64,
}

impl Store {
    /// This database's outbox for `stream`, made the first time it is asked for.
    pub fn outbox(&self, stream: &str) -> Result<OutboxRecord, StoreError> {
        let fresh: String = format!("{:016x}", rand::rng().random::<u64>());
        self.conn.execute(
            "INSERT OR IGNORE INTO stream_outbox (stream, outbox_id, local_seq, stream_seq) VALUES (?1, ?2, 0, 0)",
            params![stream, fresh],
        )?;
        let (outbox_id, local_seq, stream_seq): (String, i64, i64) = self.conn.query_row(
            "SELECT outbox_id, local_seq, stream_seq FROM stream_outbox WHERE stream = ?1",
            [stream],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        Ok(OutboxRecord { outbox_id, local_seq, stream_seq: stream_seq.max(0) as u64 })
    }

    /// Records that `stream` acknowledged every change through `local_seq`,
    /// the last at `stream_seq`. The mark never moves back.
    pub fn record_published(&self, stream: &str, local_seq: i64, stream_seq: u64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE stream_outbox SET local_seq = ?2, stream_seq = ?3 WHERE stream = ?1 AND local_seq < ?2",
            params![stream, local_seq, i64::try_from(stream_seq).unwrap_or(i64::MAX)],
        )?;
        Ok(())
    }

    /// Ended events whose latest change is below `seq`, oldest first, at
    /// most `limit`. In a copy whose stream now starts at `seq`, these are
    /// the events none of whose changes the stream still holds: what
    /// [`retention::trim_copy`](crate::retention::trim_copy) deletes.
    pub fn ended_below(&self, seq: i64, limit: usize) -> Result<Vec<crate::model::Event>, StoreError> {
        self.query_events(
            &format!("SELECT {COLUMNS} FROM events WHERE seq < ?1 AND state = 'ended' ORDER BY seq LIMIT ?2"),
            params![seq, limit as i64],
        )
    }

    /// Records that every change through `seq` is missing from this copy
    /// (the stream's limits removed them before it read them), so a client
    /// resuming below is told `reset`, as after retention.
    pub fn mark_missing_through(&self, seq: i64) -> Result<(), StoreError> {
        self.conn.execute("UPDATE retention SET deleted_through = MAX(deleted_through, ?1)", [seq])?;
        Ok(())
    }

    /// Applies `change`, read from a stream at sequence `seq`, in one
    /// transaction; the change returned is the one stored (its `seq` is
    /// `seq`). `seq` must be above every change already here
    /// ([`StoreError::OutOfOrder`]); a `new` of an existing event
    /// ([`StoreError::DuplicateEvent`]), an `update` or `end` of an unknown
    /// or ended one are refused and leave nothing behind.
    pub fn apply(&mut self, seq: i64, change: &Change) -> Result<Change, StoreError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let change = apply_in(&tx, seq, change)?;
        tx.commit()?;
        Ok(change)
    }

    /// Applies `changes` (stream sequence, change), in order, in one
    /// transaction: one commit for all that a stream delivered at once. Each
    /// gets what [`Store::apply`] would give; a refused one leaves nothing
    /// behind and the others go on. Anything else (a change out of order, a
    /// failing disk) applies none of them.
    pub fn apply_all(&mut self, changes: &[(i64, Change)]) -> Result<Vec<Result<Change, StoreError>>, StoreError> {
        let mut tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut results = Vec::with_capacity(changes.len());
        for (seq, change) in changes {
            let savepoint = tx.savepoint()?;
            match apply_in(&savepoint, *seq, change) {
                Ok(change) => {
                    savepoint.commit()?;
                    results.push(Ok(change));
                }
                // Dropping the savepoint rolls it back.
                Err(refused) if refused.is_refusal() => results.push(Err(refused)),
                Err(e) => return Err(e),
            }
        }
        tx.commit()?;
        Ok(results)
    }
}

/// The checks and writes of [`Store::apply`], inside the caller's
/// transaction.
fn apply_in(conn: &Connection, seq: i64, change: &Change) -> Result<Change, StoreError> {
    let next: i64 = conn.prepare_cached(NEXT_SEQ)?.query_row([], |r| r.get(0))?;
    if seq < next {
        return Err(StoreError::OutOfOrder { seq, head: next - 1 });
    }
    let mut event = change.event.clone();
    event.seq = seq;
    let sql = format!("SELECT {COLUMNS} FROM events WHERE event_id = ?1");
    let current = conn.prepare_cached(&sql)?.query_row([&event.event_id], RawRow::read).optional()?;
    match (change.kind, current) {
        (ChangeKind::New, Some(_)) => return Err(StoreError::DuplicateEvent(event.event_id)),
        (ChangeKind::New, None) => insert_event_row(conn, &event)?,
        (ChangeKind::Update | ChangeKind::End, None) => return Err(StoreError::NoSuchEvent(event.event_id)),
        (kind, Some(current)) => {
            let current = current.into_event()?;
            if current.state == EventState::Ended {
                return Err(StoreError::AlreadyEnded(event.event_id));
            }
            // What makes it the same event is the stored one's, and
            // the kind says the state, whatever the message says.
            (event.camera_id, event.timestamp, event.created_at) =
                (current.camera_id, current.timestamp, current.created_at);
            if kind == ChangeKind::End {
                event.state = EventState::Ended;
                event.end_time = Some(event.end_time.unwrap_or(event.updated_at).max(event.timestamp));
            } else {
                (event.state, event.end_time) = (EventState::Active, None);
            }
            update_event_row(conn, &event)?;
        }
    }
    conn.prepare_cached(INSERT_CHANGE)?.execute(params![
        event.seq,
        event.event_id,
        change.kind.as_str(),
        event.to_json()
    ])?;
    Ok(Change { kind: change.kind, event })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;
    use crate::model::{EventMetadata, EventSource, NewEvent};

    fn new_change(id: &str) -> Change {
        let at = Timestamp::from_unix_ms(1_764_000_000_000);
        let new = NewEvent {
            event_id: id.into(),
            camera_id: "door".into(),
            timestamp: at,
            state: EventState::Active,
            end_time: None,
            motion_confidence: 0.4,
            detected_objects: Vec::new(),
            description: "Motion".into(),
            image_path: None,
            metadata: EventMetadata {
                source: EventSource::Detector,
                inference_ms: None,
                frame_number: None,
                producer: None,
                end_reason: None,
            },
        };
        Change { kind: ChangeKind::New, event: new.commit(3, at) }
    }

    fn end_of(change: &Change) -> Change {
        let mut event = change.event.clone();
        event.state = EventState::Ended;
        event.end_time = Some(Timestamp::from_unix_ms(event.timestamp.unix_ms() + 5_000));
        Change { kind: ChangeKind::End, event }
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path().join("events.db")).expect("open");
        (dir, store)
    }

    #[test]
    fn applied_changes_keep_the_streams_sequence_gaps_included() {
        let (_dir, mut store) = store();
        let new = new_change("evt_1764000000000_0001");
        assert_eq!(store.apply(5, &new).expect("new").seq(), 5);
        let end = store.apply(9, &end_of(&new)).expect("end");
        assert_eq!((end.seq(), end.event.state), (9, EventState::Ended));
        let log: Vec<(i64, ChangeKind)> =
            store.after_seq(0, 10).expect("log").iter().map(|c| (c.seq(), c.kind)).collect();
        assert_eq!(log, [(5, ChangeKind::New), (9, ChangeKind::End)]);
        assert_eq!(store.get(&new.event.event_id).expect("get").map(|e| e.seq), Some(9));
        assert_eq!(store.head_seq().expect("head"), 9);
    }

    #[test]
    fn what_a_local_writer_would_refuse_is_refused_and_leaves_nothing() {
        let (_dir, mut store) = store();
        let new = new_change("evt_1764000000000_0002");
        store.apply(1, &new).expect("new");
        assert!(matches!(store.apply(1, &new), Err(StoreError::OutOfOrder { seq: 1, head: 1 })));
        assert!(matches!(store.apply(2, &new), Err(StoreError::DuplicateEvent(_))));
        let stranger = end_of(&new_change("evt_1764000000000_0003"));
        assert!(matches!(store.apply(3, &stranger), Err(StoreError::NoSuchEvent(_))));
        store.apply(4, &end_of(&new)).expect("end");
        assert!(matches!(store.apply(5, &end_of(&new)), Err(StoreError::AlreadyEnded(_))));
        assert_eq!(store.after_seq(0, 10).expect("log").len(), 2);
    }

    #[test]
    fn a_batch_applies_in_one_transaction_and_skips_only_what_is_refused() {
        let (_dir, mut store) = store();
        let (a, b) = (new_change("evt_1764000000000_0004"), new_change("evt_1764000000000_0005"));
        let batch = [(1, a.clone()), (2, a.clone()), (3, end_of(&a)), (5, b.clone())];
        let results = store.apply_all(&batch).expect("batch");
        let seqs: Vec<Option<i64>> = results.iter().map(|r| r.as_ref().ok().map(Change::seq)).collect();
        assert_eq!(seqs, [Some(1), None, Some(3), Some(5)]);
        assert!(matches!(results[1], Err(StoreError::DuplicateEvent(_))));
        assert_eq!(store.head_seq().expect("head"), 5);

        // Out of order in the middle: none of the batch is applied.
        let c = new_change("evt_1764000000000_0006");
        let batch = [(6, c.clone()), (4, end_of(&b)), (7, end_of(&c))];
        assert!(matches!(store.apply_all(&batch), Err(StoreError::OutOfOrder { seq: 4, head: 6 })));
        assert_eq!(store.head_seq().expect("head"), 5);
        assert_eq!(store.get(&c.event.event_id).expect("get"), None);
    }

    #[test]
    fn the_outbox_mark_is_made_once_and_only_moves_forward() {
        let (_dir, store) = store();
        let first = store.outbox("LOOKOUT").expect("outbox");
        assert_eq!((first.local_seq, first.stream_seq), (0, 0));
        store.record_published("LOOKOUT", 7, 40).expect("record");
        store.record_published("LOOKOUT", 6, 39).expect("record");
        let again = store.outbox("LOOKOUT").expect("outbox");
        assert_eq!(again, OutboxRecord { outbox_id: first.outbox_id.clone(), local_seq: 7, stream_seq: 40 });
        assert_ne!(store.outbox("OTHER").expect("outbox").outbox_id, first.outbox_id);
    }
}
