//! The sequencer: the one place that decides what clients see next.
//!
//! Events reach the webserver from several places — each detector socket,
//! `POST /api/events`, and the database itself — and may arrive out of order
//! (two detectors committing 10 then 11 may announce 11 first). Clients
//! resume from the highest `seq` they saw, so broadcasting 11 before 10 would
//! lose 10 for good. The sequencer prevents that:
//!
//! * **The database is the truth.** An announced event (socket frame,
//!   `POST`) is broadcast only if the database holds it at its `seq`: the
//!   stored `event_id` there is checked first. One whose `seq` holds
//!   another event or none (a forgery, or a detector writing another data
//!   directory's database) is counted and logged and never reaches a
//!   client, and what is stored is read and broadcast instead, so a
//!   forgery cannot make the real event of its `seq` look like a
//!   duplicate. (Frames reach the sequencer only from a publisher that
//!   proved it holds the data directory's key, see `shared::wire::key`.)
//! * It broadcasts strictly in `seq` order, each event once (the rule is
//!   [`SeqCursor`]'s): everything
//!   stored after `last`, in order; an announcement at or below `last` is a
//!   duplicate. Because `seq` order is commit order, when event `n` exists
//!   every event below it is already readable.
//! * After a detector (re)connects, and every [`POLL_INTERVAL`], it also
//!   reads anything newer than `last`: events committed while a detector
//!   was unreachable, or by a writer with no socket at all.
//!
//! It is a task on the runtime, so the broadcast wakes the writers from a
//! worker thread (into its local run queue, in a batch). The id check is a
//! point read on a connection of its own, made inline: about 10 µs, within
//! what a task may spend between awaits, and with a short busy timeout; if
//! it cannot answer at once, the announcement takes the slow path. Page
//! reads (gaps, polls, that slow path) go to a [`Db`] of its own, one
//! connection on one thread, so no other database work (REST, catch-up)
//! can queue in front of the live path.
//!
//! It starts at the database's head, so a fresh webserver does not replay
//! history to live clients (they ask for it with `?after_seq=`).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use shared::store::MAX_PAGE;
use shared::{Change, Store};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::cursor::{Next, SeqCursor};
use crate::db::{Db, DbError};
use crate::metrics::Metrics;
use crate::stream::fanout::{Fanout, Outgoing};
use crate::stream::messages;

/// How often the database is checked for events no socket announced.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Changes the live feed to outputs holds for a receiver that is behind;
/// one further behind reads the database instead.
const LIVE_FEED: usize = 1024;

/// How long the inline id check may wait for a lock before the
/// announcement takes the slow path.
const CHECK_BUSY_TIMEOUT: Duration = Duration::from_millis(5);

#[expect(clippy::large_enum_variant, reason = "events are nearly every offer: boxing would cost an allocation each")]
enum Offer {
    /// Someone says this change was committed.
    Announced(Change),
    CatchUp,
}

impl std::fmt::Debug for Offer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Offer::Announced(c) => write!(f, "Announced(seq={})", c.seq()),
            Offer::CatchUp => f.write_str("CatchUp"),
        }
    }
}

/// A handle for offering events to the sequencer task, and for following
/// what it broadcasts.
#[derive(Debug, Clone)]
pub struct Sequencer {
    offers: mpsc::Sender<Offer>,
    live: broadcast::Sender<Change>,
    head: Arc<AtomicI64>,
}

impl Sequencer {
    /// Starts the sequencer task at the database's current head, with its
    /// own connections to `database`.
    pub async fn start(
        database: &Path,
        fanout: Arc<Fanout>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Result<Self, DbError> {
        let check = Store::open(database)?;
        check.set_busy_timeout(CHECK_BUSY_TIMEOUT)?;
        let db = Db::open(database, "sequencer", 1, false)?;
        let head = db.read(|s| s.head_seq()).await?;
        let (offers, rx) = mpsc::channel(1024);
        let live = broadcast::Sender::new(LIVE_FEED);
        let head_seq = Arc::new(AtomicI64::new(head));
        let task = Task {
            check,
            db,
            fanout,
            metrics,
            cursor: SeqCursor::at(head),
            live: live.clone(),
            head: head_seq.clone(),
        };
        tokio::spawn(task.run(rx, shutdown));
        tracing::info!(head_seq = head, "sequencer started at the database head");
        Ok(Self { offers, live, head: head_seq })
    }

    /// Every change broadcast from now on, in order, for an output; a
    /// receiver that falls [`LIVE_FEED`] behind gets `Lagged` and reads the
    /// database. Nothing waits for it.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.live.subscribe()
    }

    /// The highest `seq` broadcast so far.
    pub fn head(&self) -> i64 {
        self.head.load(Ordering::Relaxed)
    }

    /// Announces a committed change. Waits only if the sequencer is backed
    /// up, which pushes back on the socket reader (and so on the detector,
    /// which drops us as slow; we then catch up from the database).
    pub async fn offer(&self, change: Change) {
        let _ = self.offers.send(Offer::Announced(change)).await;
    }

    /// Asks for a catch-up from the database (after a detector reconnects).
    pub fn catch_up(&self) {
        let _ = self.offers.try_send(Offer::CatchUp);
    }
}

struct Task {
    /// For the inline id check only.
    check: Store,
    db: Db,
    fanout: Arc<Fanout>,
    metrics: Arc<Metrics>,
    /// The highest `seq` broadcast so far.
    cursor: SeqCursor,
    /// To the outputs (MQTT, webhooks), when there are any.
    live: broadcast::Sender<Change>,
    head: Arc<AtomicI64>,
}

impl Task {
    async fn run(mut self, mut offers: mpsc::Receiver<Offer>, shutdown: CancellationToken) {
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                offer = offers.recv() => match offer {
                    Some(Offer::Announced(change)) => self.on_announced(change).await,
                    Some(Offer::CatchUp) => { self.fill_from_db(None).await; }
                    None => return,
                },
                _ = poll.tick() => { self.fill_from_db(None).await; }
            }
        }
    }

    async fn on_announced(&mut self, change: Change) {
        let event = &change.event;
        match self.cursor.next(event.seq) {
            Next::Duplicate => return, // already broadcast (read from the database first)
            Next::InOrder => match self.check.event_id_at(event.seq) {
                // The common case: the next event, as stored.
                Ok(Some(stored)) if stored == event.event_id => {
                    self.broadcast(&change);
                    return;
                }
                Ok(_) => {} // contradicted: the slow path says how, and sends what is stored
                Err(e) => {
                    tracing::debug!(error = %e, seq = event.seq, "inline check unavailable; reading the database")
                }
            },
            Next::Gap { after, .. } => {
                tracing::debug!(last = after, seq = event.seq, "gap before this event; reading it from the database");
            }
        }
        // On a database error nothing is skipped: the next poll retries.
        let (seq, event_id) = (event.seq, event.event_id.as_str());
        if self.fill_from_db(Some((seq, event_id))).await && self.cursor.next(seq) != Next::Duplicate {
            self.metrics.rejected_announcements.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                seq,
                event_id,
                head = self.cursor.read_after(),
                "an announced event is not in the database; not broadcast (a forged frame, or a detector using another --data-dir)"
            );
        }
    }

    /// Broadcasts every stored event after the cursor, in order; checks the row
    /// of an announced `seq` against its announced id. False if the
    /// database could not be read.
    async fn fill_from_db(&mut self, announced: Option<(i64, &str)>) -> bool {
        loop {
            let after = self.cursor.read_after();
            let page = match self.db.read(move |s| s.after_seq(after, MAX_PAGE)).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read new events from the database; will retry");
                    return false;
                }
            };
            let full = page.len() == MAX_PAGE;
            for change in &page {
                let event = &change.event;
                if let Some((seq, id)) = announced
                    && seq == event.seq
                    && id != event.event_id
                {
                    self.metrics.rejected_announcements.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        seq,
                        announced = id,
                        stored = %event.event_id,
                        "an announced event differs from the stored one; broadcasting the stored one"
                    );
                }
                self.broadcast(change);
            }
            if !full {
                return true;
            }
        }
    }

    fn broadcast(&mut self, change: &Change) {
        let event = &change.event;
        let text = messages::change_envelope(change);
        let delivered = self.fanout.broadcast(&Outgoing { seq: event.seq, text: text.into() });
        self.metrics.record_broadcast(event.updated_at);
        self.cursor.advance(event.seq);
        self.head.store(event.seq, Ordering::Relaxed);
        if self.live.receiver_count() > 0 {
            let _ = self.live.send(change.clone());
        }
        tracing::debug!(seq = event.seq, event_id = %event.event_id, clients = delivered, "broadcast");
    }
}
