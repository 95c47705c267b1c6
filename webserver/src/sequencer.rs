//! The sequencer: the one place that decides what clients see next.
//!
//! Events reach the webserver from several places — each detector socket,
//! `POST /api/events`, and the database itself — and may arrive out of order
//! (two detectors committing 10 then 11 may announce 11 first). Clients
//! resume from the highest `seq` they saw, so broadcasting 11 before 10 would
//! lose 10 for good. The sequencer prevents that:
//!
//! * **The database is the truth; an announcement is only a wake-up.** What
//!   is broadcast is always the stored row, read after the announcement.
//!   A socket frame whose event is not the stored row of its `seq` (a
//!   forgery, or a detector writing another data directory's database) is
//!   counted and logged, and never reaches a client; nor can it make the
//!   real event of that `seq` look like a duplicate.
//! * It broadcasts strictly in `seq` order, each event once: everything
//!   stored after `last`, in order; an announcement at or below `last` is a
//!   duplicate. Because `seq` order is commit order, when event `n` exists
//!   every event below it is already readable.
//! * After a detector (re)connects, and every [`POLL_INTERVAL`], it also
//!   reads anything newer than `last`: events committed while a detector
//!   was unreachable, or by a writer with no socket at all.
//!
//! It runs on a thread of its own with a connection of its own, so no other
//! database work (REST, catch-up) can queue in front of the live path, and
//! a frame costs one indexed read on a warm connection.
//!
//! It starts at the database's head, so a fresh webserver does not replay
//! history to live clients (they ask for it with `?after_seq=`).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use shared::store::MAX_PAGE;
use shared::{Event, Store};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::db::DbError;
use crate::fanout::{Fanout, Outgoing};
use crate::messages;
use crate::metrics::Metrics;

/// How often the database is checked for events no socket announced.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long a failed read waits before the next try.
const RETRY: Duration = Duration::from_millis(200);

#[derive(Debug)]
enum Offer {
    /// Someone says this `seq` was committed with this id.
    Announced {
        seq: i64,
        event_id: String,
    },
    CatchUp,
    Stop,
}

/// A handle for offering events to the sequencer.
#[derive(Debug, Clone)]
pub struct Sequencer {
    offers: mpsc::Sender<Offer>,
}

impl Sequencer {
    /// Starts the sequencer thread, with its own connection to `database`,
    /// at the database's current head.
    pub async fn start(
        database: &Path,
        fanout: Arc<Fanout>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Result<Self, DbError> {
        let store = Store::open(database)?;
        let head = store.head_seq()?;
        let (offers, rx) = mpsc::channel(1024);
        let task = Task { store, fanout, metrics, last: head };
        std::thread::Builder::new().name("sequencer".into()).spawn(move || task.run(rx)).map_err(DbError::Thread)?;
        let ticker = offers.clone();
        tokio::spawn(async move {
            let mut poll = tokio::time::interval(POLL_INTERVAL);
            poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => {
                        let _ = ticker.send(Offer::Stop).await;
                        return;
                    }
                    _ = poll.tick() => { let _ = ticker.try_send(Offer::CatchUp); }
                }
            }
        });
        tracing::info!(head_seq = head, "sequencer started at the database head");
        Ok(Self { offers })
    }

    /// Announces a committed event. Waits only if the sequencer is backed
    /// up, which pushes back on the socket reader (and so on the detector,
    /// which drops us as slow; we then catch up from the database).
    pub async fn offer(&self, event: &Event) {
        let _ = self.offers.send(Offer::Announced { seq: event.seq, event_id: event.event_id.clone() }).await;
    }

    /// Asks for a catch-up from the database (after a detector reconnects).
    pub fn catch_up(&self) {
        let _ = self.offers.try_send(Offer::CatchUp);
    }
}

struct Task {
    store: Store,
    fanout: Arc<Fanout>,
    metrics: Arc<Metrics>,
    /// Highest `seq` broadcast so far.
    last: i64,
}

impl Task {
    fn run(mut self, mut offers: mpsc::Receiver<Offer>) {
        while let Some(offer) = offers.blocking_recv() {
            match offer {
                Offer::Announced { seq, event_id } => self.on_announced(seq, &event_id),
                Offer::CatchUp => {
                    self.fill_from_db(None);
                }
                Offer::Stop => return,
            }
        }
    }

    fn on_announced(&mut self, seq: i64, event_id: &str) {
        if seq <= self.last {
            return; // already broadcast (read from the database first)
        }
        if seq > self.last + 1 {
            tracing::debug!(last = self.last, seq, "gap before this event; reading it from the database");
        }
        // On a database error nothing is skipped: the next poll retries.
        if self.fill_from_db(Some((seq, event_id))) && self.last < seq {
            self.metrics.rejected_announcements.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                seq,
                event_id,
                head = self.last,
                "an announced event is not in the database; not broadcast (a forged frame, or a detector using another --data-dir)"
            );
        }
    }

    /// Broadcasts every stored event after `last`, in order; checks the row
    /// of an announced `seq` against its announced id. False if the
    /// database could not be read.
    fn fill_from_db(&mut self, announced: Option<(i64, &str)>) -> bool {
        loop {
            let page = match self.store.after_seq(self.last, MAX_PAGE) {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read new events from the database; will retry");
                    std::thread::sleep(RETRY);
                    return false;
                }
            };
            let full = page.len() == MAX_PAGE;
            for event in &page {
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
                self.broadcast(event);
            }
            if !full {
                return true;
            }
        }
    }

    fn broadcast(&mut self, event: &Event) {
        let text = messages::event_envelope(event);
        let delivered = self.fanout.broadcast(&Outgoing { seq: event.seq, text: text.into() });
        self.metrics.record_broadcast(event.created_at);
        self.last = event.seq;
        tracing::debug!(seq = event.seq, event_id = %event.event_id, clients = delivered, "broadcast");
    }
}
