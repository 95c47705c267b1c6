//! The loop every output runs: changes after its cursor, in order, to its
//! [`Sink`], until the receiver acknowledged them.
//!
//! * **Source.** From the database after the cursor, a page at a time,
//!   until a page comes back short; then from the sequencer's live feed,
//!   whatever is waiting taken as one batch. When the feed says it lagged
//!   (the output fell more than its capacity behind), back to the
//!   database. The feed is subscribed before the first read, so no change
//!   falls between the two.
//! * **Acknowledged, then counted.** A batch counts as delivered only when
//!   [`Sink::deliver`] returns `Ok` (MQTT: every PUBACK; HTTP: a 2xx for
//!   each). The cursor then moves past it, and is written to the database
//!   every [`SAVE_EVERY`] or [`SAVE_AFTER`] changes, and at shutdown: a
//!   crash re-sends at most that much, which "at least once" allows.
//! * **Retries** back off from [`FIRST_RETRY`] doubling to [`MAX_RETRY`],
//!   each wait a random 50–100 % of that so that outputs that failed
//!   together do not retry together. A receiver that refuses a change for
//!   good (HTTP 4xx) is given [`MAX_REFUSALS`] tries, then that change is
//!   skipped and counted as a give-up, so one bad change cannot stop an
//!   output forever.
//! * **Late.** Before each attempt every change is marked `late` if it was
//!   committed longer ago than the output's `late_after`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rand::Rng;
use shared::{Change, ChangeKind, Event, Timestamp};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio_util::sync::CancellationToken;

use super::{Delivery, Filter, OutputStatus};
use crate::db::Db;

/// Changes read from the database at a time while catching up.
const PAGE: usize = 256;
/// Most live changes handed to a sink at once.
const LIVE_BATCH: usize = 64;
/// How often a moved cursor is written to the database at most…
pub const SAVE_EVERY: Duration = Duration::from_millis(500);
/// …unless this many changes were delivered since it was.
pub const SAVE_AFTER: i64 = 256;
pub const FIRST_RETRY: Duration = Duration::from_millis(250);
pub const MAX_RETRY: Duration = Duration::from_secs(30);
/// Attempts at a change a receiver refuses for good before it is skipped.
pub const MAX_REFUSALS: u32 = 3;
/// How often [`Sink::tick`] runs while nothing is to be delivered.
const TICK: Duration = Duration::from_secs(1);

/// Where an output's changes go.
pub trait Sink: Send + 'static {
    /// Sends `batch` in order; `Ok` once the receiver acknowledged all of it.
    fn deliver(&mut self, batch: &[Delivery]) -> impl Future<Output = Result<(), Failure>> + Send;

    /// Runs about once a second between deliveries (MQTT: restores the
    /// retained topics after a reconnect, follows camera states).
    fn tick(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// At shutdown, after the last delivery (MQTT: says `offline`).
    fn close(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// Why [`Sink::deliver`] did not deliver all of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// How many changes at the front of the batch were acknowledged.
    pub delivered: usize,
    pub why: String,
    /// The receiver refused the next change itself (HTTP 4xx), rather than
    /// being unreachable or failing (which is always retried).
    pub refused: bool,
}

impl Failure {
    pub fn retry(delivered: usize, why: impl Into<String>) -> Self {
        Self { delivered, why: why.into(), refused: false }
    }

    pub fn refused(delivered: usize, why: impl Into<String>) -> Self {
        Self { delivered, why: why.into(), refused: true }
    }
}

/// One output: its sink and what it needs around it.
#[derive(Debug)]
pub struct Output<S> {
    pub sink: S,
    pub status: Arc<OutputStatus>,
    pub filter: Filter,
    /// Its own connections: catching up never queues behind other work.
    pub db: Db,
    pub late_after: Duration,
}

/// Runs `output` until `stop`: see the module docs.
pub async fn run<S: Sink>(mut output: Output<S>, mut live: broadcast::Receiver<Change>, stop: CancellationToken) {
    let name = output.status.name.clone();
    let Some(mut cursor) = start_cursor(&output.status, &output.db, &stop).await else { return };
    output.status.cursor.store(cursor, Ordering::Relaxed);
    tracing::info!(output = %name, target = %output.status.target, cursor, "output started");
    let mut saved = (cursor, Instant::now());
    let mut caught_up = false;
    let mut known = Known::default();
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let changes = if caught_up {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = ticker.tick() => {
                    output.sink.tick().await;
                    save_cursor(&output.status, &output.db, cursor, &mut saved, false).await;
                    continue;
                }
                next = live.recv() => match next {
                    Ok(first) => {
                        let (batch, lagged) = take_waiting(first, &mut live);
                        caught_up = !lagged;
                        batch
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::debug!(output = %name, missed, "output fell behind the live feed; reading the database");
                        caught_up = false;
                        continue;
                    }
                    Err(RecvError::Closed) => break,
                },
            }
        } else {
            let after = cursor;
            match output.db.read(move |s| s.after_seq(after, PAGE)).await {
                Ok(page) => {
                    caught_up = page.len() < PAGE;
                    page
                }
                Err(e) => {
                    output.status.failed(&format!("cannot read the database: {e}"));
                    if sleep_or_stop(FIRST_RETRY * 4, &stop).await {
                        break;
                    }
                    continue;
                }
            }
        };
        let changes: Vec<Change> = changes.into_iter().filter(|c| c.seq() > cursor).collect();
        let Some(last) = changes.last().map(Change::seq) else { continue };
        let mut batch = Vec::with_capacity(changes.len());
        for change in changes {
            let wanted = output.filter.wants(&change);
            let before = known.before(&change, &output.db).await;
            if wanted {
                batch.push(Delivery { kind: change.kind, before, after: change.event, late: false });
            }
        }
        if !batch.is_empty() && !deliver(&mut output, &mut batch, &stop).await {
            break; // stopped mid-batch: it goes out again after the restart
        }
        cursor = last;
        output.status.cursor.store(cursor, Ordering::Relaxed);
        save_cursor(&output.status, &output.db, cursor, &mut saved, false).await;
    }
    save_cursor(&output.status, &output.db, cursor, &mut saved, true).await;
    output.sink.close().await;
    tracing::info!(output = %name, cursor, "output stopped");
}

/// The output's cursor, or the head for one never run here; `None` if
/// stopped before the database answered.
async fn start_cursor(status: &OutputStatus, db: &Db, stop: &CancellationToken) -> Option<i64> {
    loop {
        let name = status.name.clone();
        let found = db
            .write(move |s| {
                if let Some(seq) = s.output_cursor(&name)? {
                    return Ok(seq);
                }
                let head = s.head_seq()?;
                s.set_output_cursor(&name, head)?;
                Ok(head)
            })
            .await;
        match found {
            Ok(seq) => return Some(seq),
            Err(e) => {
                status.failed(&format!("cannot read its cursor: {e}"));
                tracing::warn!(output = %status.name, error = %e, "cannot read the output's cursor; retrying");
                if sleep_or_stop(FIRST_RETRY * 4, stop).await {
                    return None;
                }
            }
        }
    }
}

/// `first` and whatever else waits in the feed, up to [`LIVE_BATCH`]; and
/// whether the feed lagged meanwhile.
fn take_waiting(first: Change, live: &mut broadcast::Receiver<Change>) -> (Vec<Change>, bool) {
    let mut batch = vec![first];
    while batch.len() < LIVE_BATCH {
        match live.try_recv() {
            Ok(change) => batch.push(change),
            Err(TryRecvError::Lagged(_)) => return (batch, true),
            Err(_) => break,
        }
    }
    (batch, false)
}

/// Delivers all of `batch`, retrying as the module docs say. False if
/// stopped first.
async fn deliver<S: Sink>(output: &mut Output<S>, batch: &mut [Delivery], stop: &CancellationToken) -> bool {
    let status = output.status.clone();
    let mut start = 0;
    let mut attempt = 0;
    let mut refusals = 0;
    while start < batch.len() {
        let now = Timestamp::now();
        for delivery in &mut batch[start..] {
            delivery.late = is_late(&delivery.after, now, output.late_after);
        }
        let result = tokio::select! {
            _ = stop.cancelled() => return false,
            result = output.sink.deliver(&batch[start..]) => result,
        };
        let (delivered, failure) = match result {
            Ok(()) => (batch.len() - start, None),
            Err(failure) => (failure.delivered.min(batch.len() - start), Some(failure)),
        };
        let late = batch[start..start + delivered].iter().filter(|d| d.late).count();
        status.delivered.fetch_add(delivered as u64, Ordering::Relaxed);
        status.late.fetch_add(late as u64, Ordering::Relaxed);
        start += delivered;
        let Some(failure) = failure else {
            status.succeeded();
            return true;
        };
        if delivered > 0 {
            (attempt, refusals) = (0, 0);
        }
        status.failed(&failure.why);
        status.retries.fetch_add(1, Ordering::Relaxed);
        if failure.refused {
            refusals += 1;
            if refusals >= MAX_REFUSALS {
                status.give_ups.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    output = %status.name, seq = batch[start].seq(), why = %failure.why,
                    "the receiver refused this change {MAX_REFUSALS} times; skipping it"
                );
                (start, attempt, refusals) = (start + 1, 0, 0);
                continue;
            }
        }
        let wait = backoff(attempt);
        attempt += 1;
        tracing::debug!(output = %status.name, why = %failure.why, ?wait, "delivery failed; retrying");
        if attempt == 1 {
            tracing::warn!(output = %status.name, why = %failure.why, "delivery failed; retrying with back-off");
        }
        if sleep_or_stop(wait, stop).await {
            return false;
        }
    }
    status.succeeded();
    true
}

fn is_late(event: &Event, now: Timestamp, late_after: Duration) -> bool {
    let age_ms = now.unix_ms() - event.updated_at.unix_ms();
    age_ms > i64::try_from(late_after.as_millis()).unwrap_or(i64::MAX)
}

/// The wait before retry `attempt` (0 first): doubling from
/// [`FIRST_RETRY`] to [`MAX_RETRY`], a random 50–100 % of that.
pub fn backoff(attempt: u32) -> Duration {
    let full = FIRST_RETRY.saturating_mul(1 << attempt.min(16)).min(MAX_RETRY);
    full.mul_f64(rand::rng().random_range(0.5..=1.0))
}

/// Writes `cursor` if it moved and is due (or `now`).
async fn save_cursor(status: &OutputStatus, db: &Db, cursor: i64, saved: &mut (i64, Instant), now: bool) {
    let (last, at) = *saved;
    let due = now || cursor - last >= SAVE_AFTER || at.elapsed() >= SAVE_EVERY;
    if cursor == last || !due {
        return;
    }
    let name = status.name.clone();
    match db.write(move |s| s.set_output_cursor(&name, cursor)).await {
        Ok(()) => *saved = (cursor, Instant::now()),
        // Kept in memory; written at the next chance. A crash before then
        // re-sends from the older cursor.
        Err(e) => tracing::warn!(output = %status.name, error = %e, "cannot save the output's cursor"),
    }
}

/// True if stopped before `wait` passed.
async fn sleep_or_stop(wait: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep(wait) => false,
    }
}

/// The latest state of each active event seen, for `before`.
#[derive(Debug, Default)]
struct Known {
    active: HashMap<String, Event>,
}

impl Known {
    /// The event before `change`, then remembers it as `change` left it.
    async fn before(&mut self, change: &Change, db: &Db) -> Option<Event> {
        let event = &change.event;
        let before = match (change.kind, self.active.remove(&event.event_id)) {
            (ChangeKind::New, _) => None,
            (_, Some(known)) => Some(known),
            (_, None) => {
                let (id, seq) = (event.event_id.clone(), event.seq);
                db.read(move |s| s.event_before(&id, seq)).await.ok().flatten()
            }
        };
        if change.kind != ChangeKind::End {
            self.active.insert(event.event_id.clone(), event.clone());
        }
        before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_to_its_cap_with_jitter() {
        for attempt in 0..40 {
            let full = FIRST_RETRY.saturating_mul(1 << attempt.min(16)).min(MAX_RETRY);
            let wait = backoff(attempt);
            assert!(wait <= full && wait >= full / 2, "attempt {attempt}: {wait:?} of {full:?}");
        }
        assert!(backoff(30) <= MAX_RETRY);
        let waits: std::collections::HashSet<Duration> = (0..20).map(|_| backoff(5)).collect();
        assert!(waits.len() > 1, "jittered");
    }
}
