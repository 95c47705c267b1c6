//! The sequencer: the one place that decides what clients see next.
//!
//! Events reach the webserver from several places — each detector socket,
//! `POST /api/events`, and the database itself — and may arrive out of order
//! (two detectors committing 10 then 11 may announce 11 first). Clients
//! resume from the highest `seq` they saw, so broadcasting 11 before 10 would
//! lose 10 for good. The sequencer prevents that:
//!
//! * It broadcasts strictly in `seq` order, each event once: `last + 1` goes
//!   out at once, anything at or below `last` is a duplicate and dropped.
//! * A gap (`seq > last + 1`) is filled from the database before going on.
//!   Because `seq` order is commit order, when event `n` exists every event
//!   below it is already readable.
//! * After a detector (re)connects, and every [`POLL_INTERVAL`], it also
//!   reads anything newer than `last` from the database: events committed
//!   while a detector was unreachable, or by a writer with no socket at all.
//!
//! It starts at the database's head, so a fresh webserver does not replay
//! history to live clients (they ask for it with `?after_seq=`).

use std::sync::Arc;
use std::time::Duration;

use shared::Event;
use shared::store::MAX_PAGE;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::db::Db;
use crate::fanout::{Fanout, Outgoing};
use crate::messages;
use crate::metrics::Metrics;

/// How often the database is checked for events no socket announced.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

#[expect(clippy::large_enum_variant, reason = "events are nearly every offer: boxing would cost an allocation each")]
enum Offer {
    Event(Event),
    CatchUp,
}

/// A handle for offering events to the sequencer task.
#[derive(Debug, Clone)]
pub struct Sequencer {
    offers: mpsc::Sender<Offer>,
}

impl std::fmt::Debug for Offer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Offer::Event(e) => write!(f, "Event(seq={})", e.seq),
            Offer::CatchUp => f.write_str("CatchUp"),
        }
    }
}

impl Sequencer {
    /// Starts the sequencer task at the database's current head.
    pub async fn start(
        db: Db,
        fanout: Arc<Fanout>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Result<Self, crate::db::DbError> {
        let head = db.read(|s| s.head_seq()).await?;
        let (offers, rx) = mpsc::channel(1024);
        let task = Task { db, fanout, metrics, last: head };
        tokio::spawn(task.run(rx, shutdown));
        tracing::info!(head_seq = head, "sequencer started at the database head");
        Ok(Self { offers })
    }

    /// Offers a committed event. Waits only if the sequencer is backed up,
    /// which pushes back on the socket reader (and so on the detector, which
    /// drops us as slow; we then catch up from the database).
    pub async fn offer(&self, event: Event) {
        let _ = self.offers.send(Offer::Event(event)).await;
    }

    /// Asks for a catch-up from the database (after a detector reconnects).
    pub fn catch_up(&self) {
        let _ = self.offers.try_send(Offer::CatchUp);
    }
}

struct Task {
    db: Db,
    fanout: Arc<Fanout>,
    metrics: Arc<Metrics>,
    /// Highest `seq` broadcast so far.
    last: i64,
}

impl Task {
    async fn run(mut self, mut offers: mpsc::Receiver<Offer>, shutdown: CancellationToken) {
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                offer = offers.recv() => match offer {
                    Some(Offer::Event(event)) => self.on_event(event).await,
                    Some(Offer::CatchUp) => self.fill_from_db().await,
                    None => return,
                },
                _ = poll.tick() => self.fill_from_db().await,
            }
        }
    }

    async fn on_event(&mut self, event: Event) {
        if event.seq <= self.last {
            return; // already broadcast (e.g. read from the database first)
        }
        if event.seq == self.last + 1 {
            self.broadcast(&event);
            return;
        }
        tracing::debug!(last = self.last, seq = event.seq, "gap before this event; reading it from the database");
        // On a database error the event is held back, not broadcast past the
        // gap: the next poll retries, and finds it in the database.
        self.fill_from_db().await;
    }

    /// Broadcasts every stored event after `last`, in order.
    async fn fill_from_db(&mut self) {
        loop {
            let after = self.last;
            let page = match self.db.read(move |s| s.after_seq(after, MAX_PAGE)).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read new events from the database; will retry");
                    return;
                }
            };
            let full = page.len() == MAX_PAGE;
            for event in &page {
                self.broadcast(event);
            }
            if !full {
                return;
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
