//! The loop every output runs: changes after its cursor, in order, to its
//! [`Sink`], until the receiver acknowledged them.
//!
//! * **Source.** From the database after the cursor, a page at a time,
//!   until a page comes back short; then from the sequencer's live feed,
//!   whatever is waiting taken as one batch. When the feed says it lagged
//!   (the output fell more than its capacity behind), back to the
//!   database. The feed is subscribed before the first read, so no change
//!   falls between the two.
//! * **Pipelined.** A batch is [`Sink::send`]-ed without waiting for the
//!   batches before it to be acknowledged, up to the sink's
//!   [`Sink::window`] of changes in flight: a broker's acknowledgements
//!   trail its deliveries (MQTT PUBACKs can sit in the broker's send
//!   buffer for a delayed TCP ACK), and waiting for each would put that
//!   wait in front of every change that follows.
//! * **Acknowledged, then counted.** A change counts as delivered only when
//!   [`Sink::acknowledged`] says so (MQTT: every PUBACK of it; HTTP: a
//!   2xx), oldest first. The cursor then moves up to the oldest change
//!   still in flight, and is written to the database every [`SAVE_EVERY`]
//!   or [`SAVE_AFTER`] changes, and at shutdown: a crash re-sends at most
//!   that much and what was in flight, which "at least once" allows.
//! * **Retries.** A [`Failure`] says how many of the changes in flight were
//!   acknowledged before it; everything after them is sent again, in
//!   order. Retries back off from [`FIRST_RETRY`] doubling to
//!   [`MAX_RETRY`], each wait a random 50–100 % of that so that outputs
//!   that failed together do not retry together. A receiver that refuses a
//!   change for good (HTTP 4xx) is given [`MAX_REFUSALS`] tries, then that
//!   change is skipped and counted as a give-up, so one bad change cannot
//!   stop an output forever.
//! * **Late.** Before each send every change is marked `late` if it was
//!   committed longer ago than the output's `late_after`.
//! * **Expired.** An output behind by the whole retention period finds
//!   changes gone from the database: they cannot be sent, so they are
//!   counted (`expired`) and said, and delivery goes on with the next.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use rand::Rng;
use shared::{Change, ChangeKind, Event, EventState, Timestamp};
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
/// How often [`Sink::tick`] runs.
const TICK: Duration = Duration::from_secs(1);
/// How long shutdown waits for the changes in flight to be acknowledged.
const DRAIN: Duration = Duration::from_millis(400);

/// Where an output's changes go: see the module docs for how the delivery
/// loop drives it.
pub trait Sink: Send + 'static {
    /// How many changes may be in flight before the loop waits for their
    /// acknowledgements rather than sending more.
    fn window(&self) -> usize;

    /// Sends `batch`, in order, after the changes already in flight.
    /// Returns once sent; [`Sink::acknowledged`] tells when received.
    fn send(&mut self, batch: &[Delivery]) -> impl Future<Output = Result<(), Failure>> + Send;

    /// Waits until more of the changes sent were acknowledged and says how
    /// many (oldest first). Cancel-safe: a count not yet returned is kept
    /// for the next call.
    fn acknowledged(&mut self) -> impl Future<Output = Result<usize, Failure>> + Send;

    /// Runs about once a second (MQTT: reconnects and restores the
    /// retained topics, follows camera states).
    fn tick(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// At shutdown, after the last delivery (MQTT: says `offline`).
    fn close(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// Why the changes in flight were not all acknowledged. After one, the
/// sink holds nothing in flight: the rest is sent again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// How many changes in flight, oldest first, were acknowledged before
    /// the failure (and not yet counted by [`Sink::acknowledged`]).
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

/// What one output's loop keeps between batches.
struct Flight<S> {
    output: Output<S>,
    /// Sent and not yet acknowledged, oldest first.
    in_flight: VecDeque<Delivery>,
    /// The last change read (sent or filtered out).
    read_through: i64,
    /// Changes up to here that retention deleted unread were counted.
    expired_through: i64,
    /// Everything up to here was delivered or is not for this output.
    cursor: i64,
    saved: (i64, Instant),
    /// Failed attempts since the last acknowledgement, and how many of
    /// them refused the oldest change in flight.
    attempts: u32,
    refusals: u32,
}

/// Runs `output` until `stop`: see the module docs.
pub async fn run<S: Sink>(output: Output<S>, mut live: broadcast::Receiver<Change>, stop: CancellationToken) {
    let name = output.status.name.clone();
    let Some(cursor) = start_cursor(&output.status, &output.db, &stop).await else { return };
    output.status.cursor.store(cursor, Ordering::Relaxed);
    tracing::info!(output = %name, target = %output.status.target, cursor, "output started");
    let mut flight = Flight {
        output,
        in_flight: VecDeque::new(),
        read_through: cursor,
        expired_through: cursor,
        cursor,
        saved: (cursor, Instant::now()),
        attempts: 0,
        refusals: 0,
    };
    let mut caught_up = false;
    let mut known = Known::default();
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Acknowledgements already in are taken first; a full window waits.
        let window = flight.output.sink.window().max(1);
        if !flight.in_flight.is_empty() {
            let acks = if flight.in_flight.len() >= window {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    acks = flight.output.sink.acknowledged() => Some(acks),
                }
            } else {
                flight.output.sink.acknowledged().now_or_never()
            };
            if let Some(acks) = acks {
                if !flight.on_acks(acks, &stop).await {
                    break;
                }
                continue;
            }
        }
        let changes = if caught_up {
            // Acknowledgements first (they free the window), then the
            // once-a-second tick, which a busy feed must not starve.
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                acks = flight.output.sink.acknowledged(), if !flight.in_flight.is_empty() => {
                    if !flight.on_acks(acks, &stop).await {
                        break;
                    }
                    continue;
                }
                _ = ticker.tick() => {
                    flight.output.sink.tick().await;
                    flight.save(false).await;
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
            let (after, counted) = (flight.read_through, flight.expired_through);
            let page = tokio::select! {
                _ = stop.cancelled() => break,
                page = flight.output.db.read(move |s| read_page(s, after, counted)) => page,
            };
            match page {
                Ok(Page { changes, expired }) => {
                    if let Some(expired) = expired {
                        flight.expired(expired);
                    }
                    caught_up = changes.len() < PAGE;
                    changes
                }
                Err(e) => {
                    flight.output.status.failed(&format!("cannot read the database: {e}"));
                    if sleep_or_stop(FIRST_RETRY * 4, &stop).await {
                        break;
                    }
                    continue;
                }
            }
        };
        let changes: Vec<Change> = changes.into_iter().filter(|c| c.seq() > flight.read_through).collect();
        let Some(last) = changes.last().map(Change::seq) else { continue };
        let mut batch = Vec::with_capacity(changes.len());
        for change in changes {
            let wanted = flight.output.filter.wants(&change);
            let before = known.before(&change, &flight.output.db).await;
            if wanted {
                batch.push(Delivery { kind: change.kind, before, after: change.event, late: false });
            }
        }
        flight.read_through = last;
        if !flight.send(batch, &stop).await {
            break; // stopped mid-send: what is in flight goes out again after the restart
        }
    }
    flight.drain().await;
    flight.save(true).await;
    flight.output.sink.close().await;
    tracing::info!(output = %name, cursor = flight.cursor, "output stopped");
}

impl<S: Sink> Flight<S> {
    /// Sends `batch` after what is in flight; false if stopped first.
    async fn send(&mut self, mut batch: Vec<Delivery>, stop: &CancellationToken) -> bool {
        if batch.is_empty() {
            self.advance().await;
            return true;
        }
        mark_late(&mut batch, self.output.late_after);
        let sent = tokio::select! {
            _ = stop.cancelled() => return false,
            sent = self.output.sink.send(&batch) => sent,
        };
        self.in_flight.extend(batch);
        match sent {
            Ok(()) => true,
            Err(failure) => self.retry(failure, stop).await,
        }
    }

    /// Counts what [`Sink::acknowledged`] said; false if stopped first.
    async fn on_acks(&mut self, acks: Result<usize, Failure>, stop: &CancellationToken) -> bool {
        match acks {
            Ok(count) => {
                self.delivered(count);
                self.advance().await;
                true
            }
            Err(failure) => self.retry(failure, stop).await,
        }
    }

    /// After a failure: counts what it delivered, waits, and sends again
    /// everything still in flight, until a send goes out. False if stopped.
    async fn retry(&mut self, mut failure: Failure, stop: &CancellationToken) -> bool {
        loop {
            self.delivered(failure.delivered);
            let status = self.output.status.clone();
            status.failed(&failure.why);
            status.retries.fetch_add(1, Ordering::Relaxed);
            let mut wait = true;
            if failure.refused && !self.in_flight.is_empty() {
                self.refusals += 1;
                if self.refusals >= MAX_REFUSALS {
                    if let Some(skipped) = self.in_flight.pop_front() {
                        status.give_ups.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            output = %status.name, seq = skipped.seq(), why = %failure.why,
                            "the receiver refused this change {MAX_REFUSALS} times; skipping it"
                        );
                    }
                    (self.attempts, self.refusals, wait) = (0, 0, false);
                }
            }
            self.advance().await;
            if wait {
                let pause = backoff(self.attempts);
                self.attempts += 1;
                tracing::debug!(output = %status.name, why = %failure.why, ?pause, "delivery failed; retrying");
                if self.attempts == 1 {
                    tracing::warn!(output = %status.name, why = %failure.why, "delivery failed; retrying with back-off");
                }
                if sleep_or_stop(pause, stop).await {
                    return false;
                }
            }
            if self.in_flight.is_empty() {
                return true;
            }
            let (sink, again) = (&mut self.output.sink, self.in_flight.make_contiguous());
            mark_late(again, self.output.late_after);
            let sent = tokio::select! {
                _ = stop.cancelled() => return false,
                sent = sink.send(again) => sent,
            };
            match sent {
                Ok(()) => return true,
                Err(next) => failure = next,
            }
        }
    }

    /// The oldest `count` changes in flight were acknowledged.
    fn delivered(&mut self, count: usize) {
        let count = count.min(self.in_flight.len());
        if count == 0 {
            return;
        }
        let late = self.in_flight.drain(..count).filter(|d| d.late).count();
        let status = &self.output.status;
        status.delivered.fetch_add(count as u64, Ordering::Relaxed);
        status.late.fetch_add(late as u64, Ordering::Relaxed);
        status.succeeded();
        (self.attempts, self.refusals) = (0, 0);
    }

    /// Retention deleted changes this output had not read: they are gone,
    /// so they are counted and said, not waited for.
    fn expired(&mut self, expired: Expired) {
        self.expired_through = self.expired_through.max(expired.through);
        if expired.count == 0 {
            return;
        }
        let status = &self.output.status;
        status.expired.fetch_add(expired.count, Ordering::Relaxed);
        let why = format!(
            "retention deleted {} changes (up to seq {}) before this output could deliver them",
            expired.count, expired.through
        );
        tracing::warn!(output = %status.name, "{why}");
        status.noted(&why);
    }

    /// Moves the cursor up to the oldest change in flight, and saves it
    /// when due.
    async fn advance(&mut self) {
        self.settle_cursor();
        self.save(false).await;
    }

    fn settle_cursor(&mut self) {
        self.cursor = self.in_flight.front().map_or(self.read_through, |d| d.seq() - 1);
        self.output.status.cursor.store(self.cursor, Ordering::Relaxed);
    }

    /// At shutdown: takes the acknowledgements of what is in flight, for a
    /// little while, so a clean stop re-sends as little as it can.
    async fn drain(&mut self) {
        let deadline = tokio::time::Instant::now() + DRAIN;
        while !self.in_flight.is_empty() {
            match tokio::time::timeout_at(deadline, self.output.sink.acknowledged()).await {
                Ok(Ok(count)) => self.delivered(count),
                Ok(Err(failure)) => {
                    self.delivered(failure.delivered);
                    break;
                }
                Err(_) => break,
            }
        }
        self.settle_cursor();
    }

    /// Writes the cursor if it moved and is due (or `now`).
    async fn save(&mut self, now: bool) {
        save_cursor(&self.output.status, &self.output.db, self.cursor, &mut self.saved, now).await;
    }
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

/// One catch-up read from the database.
struct Page {
    changes: Vec<Change>,
    /// Changes after the cursor that retention deleted unread.
    expired: Option<Expired>,
}

struct Expired {
    count: u64,
    through: i64,
}

/// The changes after `after`, and those retention deleted after
/// `counted` (what was not counted yet).
fn read_page(store: &shared::Store, after: i64, counted: i64) -> Result<Page, shared::store::StoreError> {
    let changes = store.after_seq(after, PAGE)?;
    let deleted_through = store.history()?.deleted_through;
    let from = counted.max(after);
    let expired =
        (deleted_through > from).then(|| store.count_changes(from, deleted_through)).transpose()?.map(|kept| Expired {
            count: ((deleted_through - from) as u64).saturating_sub(kept),
            through: deleted_through,
        });
    Ok(Page { changes, expired })
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

/// Marks each of `deliveries` late or not, as of now.
fn mark_late(deliveries: &mut [Delivery], late_after: Duration) {
    let now = Timestamp::now();
    for delivery in deliveries {
        delivery.late = is_late(&delivery.after, now, late_after);
    }
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
        self.remember(change);
        before
    }

    /// Keeps `change`'s event if it can change again. A whole event (new
    /// and already ended) or an end is not kept, or this would grow with
    /// every event ever seen.
    fn remember(&mut self, change: &Change) {
        let event = &change.event;
        if event.state == EventState::Active && change.kind != ChangeKind::End {
            self.active.insert(event.event_id.clone(), event.clone());
        } else {
            self.active.remove(&event.event_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::NewEvent;
    use tokio::sync::mpsc;

    /// A receiver the test acknowledges for: what was sent goes to `sent`,
    /// each acknowledgement (or failure) comes from `acks`.
    struct Held {
        sent: mpsc::UnboundedSender<Vec<i64>>,
        acks: mpsc::UnboundedReceiver<Result<usize, Failure>>,
    }

    impl Sink for Held {
        fn window(&self) -> usize {
            8
        }

        async fn send(&mut self, batch: &[Delivery]) -> Result<(), Failure> {
            let _ = self.sent.send(batch.iter().map(Delivery::seq).collect());
            Ok(())
        }

        async fn acknowledged(&mut self) -> Result<usize, Failure> {
            match self.acks.recv().await {
                Some(acks) => acks,
                None => std::future::pending().await,
            }
        }
    }

    fn new_event(n: usize) -> NewEvent {
        let e = crate::outputs::tests::change(ChangeKind::New, "door", &["person"]).event;
        NewEvent {
            event_id: format!("evt_1_{n:04}"),
            camera_id: e.camera_id,
            timestamp: e.timestamp,
            state: EventState::Ended,
            end_time: Some(e.timestamp),
            motion_confidence: e.motion_confidence,
            detected_objects: e.detected_objects,
            description: e.description,
            image_path: None,
            metadata: e.metadata,
        }
    }

    async fn commit(db: &Db, n: usize) -> Change {
        let new = new_event(n);
        db.write(move |s| s.insert(&new)).await.expect("insert")
    }

    #[tokio::test]
    async fn changes_go_out_before_those_before_them_are_acknowledged_and_failures_resend_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("events.db"), "test", 1, true).expect("open");
        db.write(|s| s.set_output_cursor("held", 0)).await.expect("cursor");
        for n in 1..=3 {
            commit(&db, n).await;
        }
        let (sent_tx, mut sent) = mpsc::unbounded_channel();
        let (acks, acks_rx) = mpsc::unbounded_channel();
        let status = Arc::new(OutputStatus::new("held", "test"));
        let output = Output {
            sink: Held { sent: sent_tx, acks: acks_rx },
            status: status.clone(),
            filter: Filter::default(),
            db: db.clone(),
            late_after: Duration::from_secs(3600),
        };
        let (live, feed) = broadcast::channel(16);
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(output, feed, stop.clone()));
        let mut next_sent = async || {
            let next = tokio::time::timeout(Duration::from_secs(10), sent.recv()).await;
            next.expect("sent within 10 s").expect("a send")
        };

        assert_eq!(next_sent().await, [1, 2, 3], "caught up from the database");
        live.send(commit(&db, 4).await).expect("live");
        assert_eq!(next_sent().await, [4], "sent while 1–3 are unacknowledged");
        assert_eq!(status.cursor.load(Ordering::Relaxed), 0, "nothing acknowledged yet");

        acks.send(Ok(2)).expect("ack");
        live.send(commit(&db, 5).await).expect("live");
        assert_eq!(next_sent().await, [5]);
        assert_eq!(status.cursor.load(Ordering::Relaxed), 2, "up to the oldest change in flight");

        acks.send(Err(Failure::retry(1, "connection lost"))).expect("fail");
        assert_eq!(next_sent().await, [4, 5], "everything after the acknowledged 3 again, in order");
        assert_eq!(status.cursor.load(Ordering::Relaxed), 3);
        assert_eq!(status.retries.load(Ordering::Relaxed), 1);

        acks.send(Ok(2)).expect("ack");
        stop.cancel();
        task.await.expect("the loop ends");
        assert_eq!(status.delivered.load(Ordering::Relaxed), 5);
        let saved = db.read(|s| s.output_cursor("held")).await.expect("read");
        assert_eq!(saved, Some(5), "saved at shutdown");
    }

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

    #[test]
    fn only_active_events_are_remembered() {
        let mut known = Known::default();
        let mut whole = crate::outputs::tests::change(ChangeKind::New, "door", &["person"]);
        whole.event.state = EventState::Ended;
        known.remember(&whole);
        assert!(known.active.is_empty(), "an event that started ended never changes again");
        let new = crate::outputs::tests::change(ChangeKind::New, "door", &["person"]);
        known.remember(&new);
        assert_eq!(known.active.len(), 1);
        let mut end = new.clone();
        (end.kind, end.event.state) = (ChangeKind::End, EventState::Ended);
        known.remember(&end);
        assert!(known.active.is_empty());
    }
}
