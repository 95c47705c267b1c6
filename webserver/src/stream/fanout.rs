//! The connection manager: the live feed every WebSocket client reads, and
//! the control block through which a client is told to close.
//!
//! ```text
//!  sequencer ──broadcast(msg)──► one shared ring (tokio::sync::broadcast)
//!   (one JSON                         │ each client's writer reads at its own cursor,
//!    string)                          │ feeds a burst and flushes once
//!                                     └ fell a ring behind ─► live client: closed, "slow consumer"
//!                                                             catching-up client: re-reads the database
//! ```
//!
//! * A message is serialised once and written once, into a ring shared by
//!   every client; each writer reads it at its own cursor. A broadcast costs
//!   the same for 10 clients or 10,000 (one slot write, then waking the
//!   writers that wait), no allocation and no memory per client, and every
//!   writer reads the same cache-hot slot. (This replaced one bounded `mpsc`
//!   queue per client: those cost ~1.6 KiB per client and one cache-cold
//!   write per client per event, which made the 10,000-client tail twice the
//!   baseline's.)
//! * The ring holds `capacity` messages: that is each client's queue. A
//!   writer that falls further behind learns it on its next read
//!   (`Lagged`). If it is live, it is too slow: it is closed (1008, "slow
//!   consumer") and counted, and it reconnects with `?after_seq=` and misses
//!   nothing. If it is still catching up from the database, falling behind
//!   is expected and it reads the database again (see `super::ws`).
//! * A writer stuck on a full socket never reads the ring, so it cannot
//!   learn that it lagged: [`Fanout::close_stuck_writers`] closes it from
//!   outside once its write has been stuck for the send timeout.
//! * Messages to one client (pong, error) do not go through the ring: each
//!   client has a small reply box beside its control block. Heartbeat pings
//!   go through the reply boxes too, a slice of the clients at a time
//!   ([`Fanout::ping_slice`]), so that they trickle rather than burst.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

/// One event on the live feed, as every client receives it.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The event's `seq`, for ordering and de-duplication.
    pub seq: i64,
    /// Its `{"type":"event",...}` message, serialised once.
    pub text: Utf8Bytes,
}

/// A client's read cursor on the live feed.
pub type Feed = broadcast::Receiver<Outgoing>;

/// Why the server closes a client, with the WebSocket close code it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    SlowConsumer,
    HeartbeatTimeout,
    Shutdown,
}

impl CloseReason {
    pub fn code(self) -> u16 {
        match self {
            CloseReason::SlowConsumer | CloseReason::HeartbeatTimeout => 1008,
            CloseReason::Shutdown => 1001,
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            CloseReason::SlowConsumer => "slow consumer",
            CloseReason::HeartbeatTimeout => "heartbeat timeout",
            CloseReason::Shutdown => "server shutting down",
        }
    }
}

/// Most replies (ping, pong, error) waiting for one client. A client's own
/// requests then wait for room (the reader stops reading, which pushes back
/// on the client); a heartbeat ping that finds no room means the client is
/// not reading at all, and closes it as a slow consumer.
pub const MAX_PENDING_REPLIES: usize = 64;
const REPLIES_UNREAD: &str = "its replies are not being read";

/// Shared between the fan-out and one client's tasks.
#[derive(Debug)]
pub struct ClientControl {
    kicked: CancellationToken,
    reason: OnceLock<CloseReason>,
    /// Milliseconds since the fan-out was created, at the client's last message.
    last_seen_ms: AtomicU64,
    /// When (same clock, plus one) the writer started a write that has not
    /// finished; 0 when it is not writing. See [`Fanout::close_stuck_writers`].
    writing_since_ms: AtomicU64,
    /// Replies to this client alone, and the bell the writer waits on.
    replies: Mutex<VecDeque<Utf8Bytes>>,
    reply_ready: Notify,
    /// Rung when the writer takes the replies: room in the box again.
    replies_taken: Notify,
}

impl ClientControl {
    /// Asks the client's tasks to close with `reason` (the first reason wins).
    pub fn kick(&self, reason: CloseReason) {
        let _ = self.reason.set(reason);
        self.kicked.cancel();
    }

    pub async fn kicked(&self) -> CloseReason {
        self.kicked.cancelled().await;
        self.reason.get().copied().unwrap_or(CloseReason::Shutdown)
    }

    fn is_kicked(&self) -> bool {
        self.kicked.is_cancelled()
    }

    /// Puts `text` in this client's reply box; `false` if the box is full.
    fn push_reply(&self, text: Utf8Bytes) -> bool {
        let Ok(mut replies) = self.replies.lock() else { return false };
        if replies.len() >= MAX_PENDING_REPLIES {
            return false;
        }
        replies.push_back(text);
        drop(replies);
        self.reply_ready.notify_one();
        true
    }
}

/// Counters the metrics endpoints report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FanoutStats {
    pub current: u64,
    pub peak: u64,
    pub total: u64,
    pub slow_consumer_closes: u64,
    pub heartbeat_timeouts: u64,
    pub refused_full: u64,
}

/// The live feed and the set of connected clients.
#[derive(Debug)]
pub struct Fanout {
    feed: broadcast::Sender<Outgoing>,
    clients: Mutex<HashMap<u64, Arc<ClientControl>>>,
    capacity: usize,
    max_clients: usize,
    next_id: AtomicU64,
    epoch: std::time::Instant,
    peak: AtomicU64,
    total: AtomicU64,
    slow_closes: AtomicU64,
    heartbeat_timeouts: AtomicU64,
    refused_full: AtomicU64,
    /// Woken whenever a client leaves, for [`Fanout::wait_empty`].
    left: Notify,
}

/// A registered client: its id and its control. Dropping it removes the
/// client from the fan-out. (Its [`Feed`] is returned beside it by
/// [`Fanout::register`], for the writer alone.)
#[derive(Debug)]
pub struct ClientHandle {
    pub id: u64,
    pub control: Arc<ClientControl>,
    fanout: Arc<Fanout>,
}

impl ClientHandle {
    /// Queues a reply to this client only, waiting while
    /// [`MAX_PENDING_REPLIES`] are unsent: a client that asks faster than it
    /// reads is slowed down, not closed.
    pub async fn reply(&self, text: String) {
        let text: Utf8Bytes = text.into();
        loop {
            let taken = self.control.replies_taken.notified();
            let mut taken = std::pin::pin!(taken);
            // Registered before the check, so a take in between is not missed.
            taken.as_mut().enable();
            if self.control.push_reply(text.clone()) {
                return;
            }
            taken.await;
        }
    }

    /// Resolves when replies may be waiting (spuriously at times).
    pub async fn replies_ready(&self) {
        self.control.reply_ready.notified().await
    }

    /// Takes the replies waiting for this client.
    pub fn take_replies(&self) -> VecDeque<Utf8Bytes> {
        let taken = self.control.replies.lock().map(|mut r| std::mem::take(&mut *r)).unwrap_or_default();
        self.control.replies_taken.notify_waiters();
        taken
    }

    /// Closes this client as a slow consumer (once, however often called),
    /// logging `why`; returns the reason, for the writer to end with.
    pub fn too_slow(&self, why: &str) -> CloseReason {
        self.fanout.close_slow(self.id, &self.control, why)
    }

    /// Marks the start (`true`) or end of a write to this client's socket.
    /// Two relaxed stores per burst: the stuck-writer check costs the hot
    /// path no timer.
    pub fn writing(&self, started: bool) {
        let mark = if started { self.fanout.now_ms() + 1 } else { 0 };
        self.control.writing_since_ms.store(mark, Ordering::Relaxed);
    }

    /// Notes that the client sent something (any message keeps it alive).
    pub fn touch(&self) {
        self.control.last_seen_ms.store(self.fanout.now_ms(), Ordering::Relaxed);
    }
}

impl Drop for ClientHandle {
    fn drop(&mut self) {
        if let Ok(mut clients) = self.fanout.clients.lock() {
            clients.remove(&self.id);
        }
        self.fanout.left.notify_waiters();
    }
}

/// The fan-out is at `max_clients`.
#[derive(Debug, thiserror::Error)]
#[error("the server is at its limit of {0} WebSocket clients")]
pub struct Full(pub usize);

impl Fanout {
    /// A fan-out whose clients may fall up to `capacity` messages behind
    /// (rounded up to a power of two, as the ring requires).
    pub fn new(capacity: usize, max_clients: usize) -> Arc<Self> {
        let capacity = capacity.max(1).next_power_of_two();
        Arc::new(Self {
            feed: broadcast::channel(capacity).0,
            clients: Mutex::new(HashMap::new()),
            capacity,
            max_clients,
            next_id: AtomicU64::new(1),
            epoch: std::time::Instant::now(),
            peak: AtomicU64::new(0),
            total: AtomicU64::new(0),
            slow_closes: AtomicU64::new(0),
            heartbeat_timeouts: AtomicU64::new(0),
            refused_full: AtomicU64::new(0),
            left: Notify::new(),
        })
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Adds a client. Its feed starts at the next broadcast: register before
    /// reading history, and nothing falls between the two.
    pub fn register(self: &Arc<Self>) -> Result<(ClientHandle, Feed), Full> {
        let mut clients = self.clients.lock().map_err(|_| Full(0))?;
        if clients.len() >= self.max_clients {
            self.refused_full.fetch_add(1, Ordering::Relaxed);
            return Err(Full(self.max_clients));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let control = Arc::new(ClientControl {
            kicked: CancellationToken::new(),
            reason: OnceLock::new(),
            last_seen_ms: AtomicU64::new(self.now_ms()),
            writing_since_ms: AtomicU64::new(0),
            replies: Mutex::new(VecDeque::new()),
            reply_ready: Notify::new(),
            replies_taken: Notify::new(),
        });
        clients.insert(id, control.clone());
        self.total.fetch_add(1, Ordering::Relaxed);
        self.peak.fetch_max(clients.len() as u64, Ordering::Relaxed);
        Ok((ClientHandle { id, control, fanout: self.clone() }, self.feed.subscribe()))
    }

    /// Puts `message` on the live feed without waiting for anyone; returns
    /// how many clients will read it.
    pub fn broadcast(&self, message: &Outgoing) -> usize {
        // An error only means that no client is connected.
        self.feed.send(message.clone()).unwrap_or(0)
    }

    /// Puts `ping` in the reply box of every client whose id falls in
    /// `slice` (of `slices`); returns how many. Pinging a slice at a time
    /// spreads the pings, and the pongs they bring back, over the interval
    /// instead of one burst through every client that would hold up the
    /// event behind it (at 10,000 clients, for about a hundred milliseconds).
    pub fn ping_slice(&self, slice: u64, slices: u64, ping: &Utf8Bytes) -> usize {
        let Ok(clients) = self.clients.lock() else { return 0 };
        let mut pinged = 0;
        for (&id, control) in clients.iter().filter(|(id, c)| *id % slices == slice && !c.is_kicked()) {
            if control.push_reply(ping.clone()) {
                pinged += 1;
            } else {
                self.close_slow(id, control, REPLIES_UNREAD);
            }
        }
        pinged
    }

    /// Closes client `id` as a slow consumer (once, however often called),
    /// logging `why`; returns the reason, for its writer to end with.
    fn close_slow(&self, id: u64, control: &ClientControl, why: &str) -> CloseReason {
        if !control.is_kicked() {
            tracing::warn!(conn = id, capacity = self.capacity, "slow consumer: {why}, closing");
            self.slow_closes.fetch_add(1, Ordering::Relaxed);
            control.kick(CloseReason::SlowConsumer);
        }
        CloseReason::SlowConsumer
    }

    /// Closes clients silent for longer than `timeout_ms`; returns how many.
    pub fn close_silent(&self, timeout_ms: u64) -> usize {
        let now = self.now_ms();
        self.close_where(CloseReason::HeartbeatTimeout, |id, control| {
            let silent = now.saturating_sub(control.last_seen_ms.load(Ordering::Relaxed));
            let close = silent > timeout_ms;
            if close {
                tracing::info!(conn = id, silent_ms = silent, "no message from client for two heartbeats, closing");
            }
            close
        })
    }

    /// Closes clients whose current write has been stuck for longer than
    /// `timeout_ms` (a full socket: the client is not reading). They cannot
    /// notice that they fell behind the feed, but they are as slow as a
    /// client can be. Returns how many were closed.
    pub fn close_stuck_writers(&self, timeout_ms: u64) -> usize {
        let now = self.now_ms() + 1;
        self.close_where(CloseReason::SlowConsumer, |id, control| {
            let since = control.writing_since_ms.load(Ordering::Relaxed);
            let close = since != 0 && now.saturating_sub(since) > timeout_ms;
            if close {
                tracing::warn!(conn = id, stuck_ms = now - since, "slow consumer: a write is stuck, closing");
            }
            close
        })
    }

    /// Kicks, with `reason`, every client not yet kicked that `close` picks;
    /// counts them under `reason` and returns how many.
    fn close_where(&self, reason: CloseReason, mut close: impl FnMut(u64, &ClientControl) -> bool) -> usize {
        let Ok(clients) = self.clients.lock() else { return 0 };
        let mut closed = 0;
        for (&id, control) in clients.iter() {
            if !control.is_kicked() && close(id, control) {
                control.kick(reason);
                closed += 1;
            }
        }
        let counter = match reason {
            CloseReason::SlowConsumer => &self.slow_closes,
            CloseReason::HeartbeatTimeout => &self.heartbeat_timeouts,
            CloseReason::Shutdown => return closed,
        };
        counter.fetch_add(closed as u64, Ordering::Relaxed);
        closed
    }

    /// Asks every client to close with `reason`.
    pub fn kick_all(&self, reason: CloseReason) {
        self.close_where(reason, |_, _| true);
    }

    pub fn len(&self) -> usize {
        self.clients.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Resolves once no client is connected.
    pub async fn wait_empty(&self) {
        loop {
            let mut left = std::pin::pin!(self.left.notified());
            // Registered before the check, so a client leaving in between
            // is not missed (`notify_waiters` wakes only registered waiters).
            left.as_mut().enable();
            if self.is_empty() {
                return;
            }
            left.await;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn max_clients(&self) -> usize {
        self.max_clients
    }

    pub fn stats(&self) -> FanoutStats {
        FanoutStats {
            current: self.len() as u64,
            peak: self.peak.load(Ordering::Relaxed),
            total: self.total.load(Ordering::Relaxed),
            slow_consumer_closes: self.slow_closes.load(Ordering::Relaxed),
            heartbeat_timeouts: self.heartbeat_timeouts.load(Ordering::Relaxed),
            refused_full: self.refused_full.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::broadcast::error::TryRecvError;

    fn message(seq: i64) -> Outgoing {
        Outgoing { seq, text: format!("{{\"seq\":{seq}}}").into() }
    }

    #[test]
    fn add_remove_and_counts() {
        let fanout = Fanout::new(4, 10);
        let (a, _) = fanout.register().expect("a");
        let (b, _) = fanout.register().expect("b");
        assert_ne!(a.id, b.id);
        assert_eq!(fanout.len(), 2);
        drop(a);
        assert_eq!(fanout.len(), 1);
        let stats = fanout.stats();
        assert_eq!((stats.current, stats.peak, stats.total), (1, 2, 2));
    }

    #[test]
    fn broadcast_reaches_many_with_one_shared_buffer() {
        let fanout = Fanout::new(8, 10_000);
        let mut clients: Vec<_> = (0..1000).map(|_| fanout.register().expect("register")).collect();
        let msg = message(1);
        assert_eq!(fanout.broadcast(&msg), 1000);
        for (_, feed) in &mut clients {
            let got = feed.try_recv().expect("queued");
            assert_eq!(got.seq, 1);
            // Same bytes, not a copy per client.
            assert_eq!(got.text.as_str().as_ptr(), msg.text.as_str().as_ptr());
            assert!(matches!(feed.try_recv(), Err(TryRecvError::Empty)));
        }
    }

    #[test]
    fn a_feed_starts_at_registration_and_nobody_listening_is_fine() {
        let fanout = Fanout::new(8, 10);
        assert_eq!(fanout.broadcast(&message(1)), 0, "no client: nothing to do, no error");
        let (_client, mut feed) = fanout.register().expect("client");
        fanout.broadcast(&message(2));
        assert_eq!(feed.try_recv().expect("the next broadcast").seq, 2);
    }

    #[test]
    fn a_client_a_ring_behind_learns_it_lagged_and_is_closed_once() {
        let fanout = Fanout::new(2, 10);
        let (slow, mut slow_feed) = fanout.register().expect("slow");
        let (_quick, mut quick_feed) = fanout.register().expect("quick");
        for seq in 1..=3 {
            fanout.broadcast(&message(seq));
            assert_eq!(quick_feed.try_recv().expect("quick reads each").seq, seq);
        }
        assert!(matches!(slow_feed.try_recv(), Err(TryRecvError::Lagged(1))));
        // After the lag, the cursor is at the oldest message still held.
        assert_eq!(slow_feed.try_recv().expect("oldest held").seq, 2);
        assert_eq!(slow.too_slow("test"), CloseReason::SlowConsumer);
        slow.too_slow("test again");
        assert!(slow.control.is_kicked());
        assert_eq!(slow.control.reason.get(), Some(&CloseReason::SlowConsumer));
        assert_eq!(fanout.stats().slow_consumer_closes, 1, "a client is counted once");
    }

    #[test]
    fn full_server_refuses_and_counts() {
        let fanout = Fanout::new(2, 1);
        let _one = fanout.register().expect("first");
        assert!(fanout.register().is_err());
        assert_eq!(fanout.stats().refused_full, 1);
    }

    #[test]
    fn silent_clients_are_closed_touched_ones_kept() {
        let fanout = Fanout::new(2, 10);
        let (silent, _q1) = fanout.register().expect("silent");
        let (chatty, _q2) = fanout.register().expect("chatty");
        std::thread::sleep(std::time::Duration::from_millis(30));
        chatty.touch();
        assert_eq!(fanout.close_silent(20), 1);
        assert_eq!(silent.control.reason.get(), Some(&CloseReason::HeartbeatTimeout));
        assert!(!chatty.control.is_kicked());
        assert_eq!(fanout.close_silent(20), 0, "a closed client is not closed again");
        assert_eq!(fanout.stats().heartbeat_timeouts, 1);
    }

    #[test]
    fn a_writer_stuck_past_the_timeout_is_closed_as_slow() {
        let fanout = Fanout::new(8, 10);
        let (stuck, _q1) = fanout.register().expect("stuck");
        let (idle, _q2) = fanout.register().expect("idle");
        let (quick, _q3) = fanout.register().expect("quick");
        stuck.writing(true);
        quick.writing(true);
        quick.writing(false);
        std::thread::sleep(std::time::Duration::from_millis(30));
        assert_eq!(fanout.close_stuck_writers(20), 1);
        assert_eq!(stuck.control.reason.get(), Some(&CloseReason::SlowConsumer));
        assert!(!idle.control.is_kicked() && !quick.control.is_kicked());
        assert_eq!(fanout.stats().slow_consumer_closes, 1);
    }

    #[tokio::test]
    async fn replies_wait_in_order_and_a_full_box_waits_for_room() {
        let fanout = Fanout::new(8, 10);
        let (client, _feed) = fanout.register().expect("client");
        client.reply("one".into()).await;
        client.reply("two".into()).await;
        client.replies_ready().await;
        let replies: Vec<_> = client.take_replies().into_iter().map(|r| r.as_str().to_owned()).collect();
        assert_eq!(replies, ["one", "two"]);
        assert!(client.take_replies().is_empty());
        for _ in 0..MAX_PENDING_REPLIES {
            client.reply("unread".into()).await;
        }
        let client = Arc::new(client);
        let asker = client.clone();
        let waiting = tokio::spawn(async move { asker.reply("one more".into()).await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "a full box makes the asker wait");
        assert!(!client.control.is_kicked(), "and does not close the client");
        assert_eq!(client.take_replies().len(), MAX_PENDING_REPLIES);
        waiting.await.expect("the reply went in once there was room");
        assert_eq!(client.take_replies().into_iter().map(|r| r.as_str().to_owned()).collect::<Vec<_>>(), ["one more"]);
        assert_eq!(fanout.stats().slow_consumer_closes, 0);
    }

    #[test]
    fn each_ping_slice_reaches_its_clients_only_and_every_client_is_in_one() {
        const SLICES: u64 = 4;
        let fanout = Fanout::new(8, 100);
        let clients: Vec<_> = (0..10).map(|_| fanout.register().expect("client").0).collect();
        let ping: Utf8Bytes = "ping".into();
        let mut pinged = 0;
        for slice in 0..SLICES {
            let before: Vec<usize> = clients.iter().map(|c| c.control.replies.lock().expect("box").len()).collect();
            let n = fanout.ping_slice(slice, SLICES, &ping);
            let now_pinged: Vec<u64> = clients
                .iter()
                .zip(before)
                .filter(|(c, before)| c.control.replies.lock().expect("box").len() > *before)
                .map(|(c, _)| c.id)
                .collect();
            assert_eq!(now_pinged.len(), n);
            assert!(now_pinged.iter().all(|id| id % SLICES == slice), "slice {slice} pinged {now_pinged:?}");
            assert!(n < clients.len(), "a slice is not everyone");
            pinged += n;
        }
        assert_eq!(pinged, clients.len(), "one round of slices pings every client once");
        assert!(clients.iter().all(|c| c.take_replies().iter().map(|r| r.as_str()).eq(["ping"])));
    }

    #[test]
    fn a_client_whose_pings_pile_up_unread_is_closed_as_slow() {
        let fanout = Fanout::new(8, 10);
        let (client, _feed) = fanout.register().expect("client");
        let ping: Utf8Bytes = "ping".into();
        let its_slice = client.id % 2;
        for _ in 0..MAX_PENDING_REPLIES {
            assert_eq!(fanout.ping_slice(its_slice, 2, &ping), 1);
        }
        assert!(!client.control.is_kicked());
        assert_eq!(fanout.ping_slice(its_slice, 2, &ping), 0);
        assert_eq!(client.control.reason.get(), Some(&CloseReason::SlowConsumer));
        assert_eq!(fanout.stats().slow_consumer_closes, 1);
    }

    #[tokio::test]
    async fn kick_all_wakes_every_client_with_the_reason() {
        let fanout = Fanout::new(2, 10);
        let (a, _qa) = fanout.register().expect("a");
        let (b, _qb) = fanout.register().expect("b");
        fanout.kick_all(CloseReason::Shutdown);
        assert_eq!(a.control.kicked().await, CloseReason::Shutdown);
        assert_eq!(b.control.kicked().await, CloseReason::Shutdown);
    }
}
