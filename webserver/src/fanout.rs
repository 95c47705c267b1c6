//! The connection manager: every WebSocket client's queue, and the broadcast
//! that fills them without ever waiting for one.
//!
//! ```text
//!  sequencer ──broadcast(msg)──► for each client: queue.try_send(msg.clone())
//!   (one JSON                          │ ok ──► client's writer task feeds + flushes
//!    string)                           └ full ─► live client: kicked, "slow consumer"
//!                                               replaying client: dropped, re-read from DB
//! ```
//!
//! * A message is serialised once; each client gets a clone of the same
//!   reference-counted bytes (`Utf8Bytes`), so a broadcast costs one
//!   `try_send` per client and no allocation per client.
//! * Each client has its own bounded queue and its own writer task. The
//!   broadcast never awaits: a full queue means that client is too slow, and
//!   it is closed (1008, "slow consumer") and counted. It reconnects with
//!   `?after_seq=` and misses nothing.
//! * While a client is still replaying history from the database, a full
//!   queue is harmless: its writer notices the gap in `seq` and re-reads the
//!   missing events from the database (see `crate::ws`).
//! * Why not `tokio::sync::broadcast`: a receiver only learns it lagged when
//!   it next polls, and a writer stuck on a full TCP socket never polls; here
//!   the sender sees the overflow at once and can close the stuck client.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One message for one or many clients.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The event's `seq`, for ordering and de-duplication; `None` for control
    /// messages (ping, pong, error).
    pub seq: Option<i64>,
    pub text: Utf8Bytes,
}

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

/// Replaying history; nothing dropped since the last database read began.
const REPLAYING: u8 = 0;
/// Replaying history, and the queue dropped something.
const DROPPED: u8 = 1;
/// Caught up: overflow now means the client is too slow.
const LIVE: u8 = 2;

/// Shared between the fan-out and one client's tasks.
#[derive(Debug)]
pub struct ClientControl {
    kicked: CancellationToken,
    reason: OnceLock<CloseReason>,
    /// [`REPLAYING`], [`DROPPED`] or [`LIVE`]: while a client replays
    /// history, overflow means "re-read the database", not "kick".
    mode: AtomicU8,
    /// Milliseconds since the fan-out was created, at the client's last message.
    last_seen_ms: AtomicU64,
    /// When (same clock, plus one) the writer started a write that has not
    /// finished; 0 when it is not writing. See [`Fanout::close_stuck_writers`].
    writing_since_ms: AtomicU64,
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

    /// Switches to live delivery, unless the queue dropped something since
    /// [`ClientControl::start_replay_pass`]: then `false`, and the caller
    /// must read the database again. The compare-and-swap leaves no window
    /// in which a drop could go unnoticed.
    pub fn try_go_live(&self) -> bool {
        self.mode.compare_exchange(REPLAYING, LIVE, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Starts another database pass after [`ClientControl::try_go_live`] failed.
    pub fn start_replay_pass(&self) {
        self.mode.store(REPLAYING, Ordering::Release);
    }
}

#[derive(Debug)]
struct Slot {
    queue: mpsc::Sender<Outgoing>,
    control: Arc<ClientControl>,
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

/// The set of connected clients.
#[derive(Debug)]
pub struct Fanout {
    clients: Mutex<HashMap<u64, Slot>>,
    queue_capacity: usize,
    max_clients: usize,
    next_id: AtomicU64,
    epoch: std::time::Instant,
    peak: AtomicU64,
    total: AtomicU64,
    slow_closes: AtomicU64,
    heartbeat_timeouts: AtomicU64,
    refused_full: AtomicU64,
    /// Woken whenever a client leaves, for [`Fanout::wait_empty`].
    left: tokio::sync::Notify,
}

/// A registered client: its id and its control. Dropping it removes the
/// client from the fan-out. (Its queue's receiving end is returned beside it
/// by [`Fanout::register`], for the writer alone.)
#[derive(Debug)]
pub struct ClientHandle {
    pub id: u64,
    pub control: Arc<ClientControl>,
    /// For the client's own replies (pong, error), through the same queue.
    replies: mpsc::Sender<Outgoing>,
    fanout: Arc<Fanout>,
}

impl ClientHandle {
    /// Queues a reply to this client only. A client whose queue is full is
    /// not reading: it is closed as a slow consumer.
    pub fn reply(&self, text: String) {
        if self.replies.try_send(Outgoing { seq: None, text: text.into() }).is_err() {
            self.fanout.slow_closes.fetch_add(1, Ordering::Relaxed);
            self.control.kick(CloseReason::SlowConsumer);
        }
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
    pub fn new(queue_capacity: usize, max_clients: usize) -> Arc<Self> {
        Arc::new(Self {
            clients: Mutex::new(HashMap::new()),
            queue_capacity: queue_capacity.max(1),
            max_clients,
            next_id: AtomicU64::new(1),
            epoch: std::time::Instant::now(),
            peak: AtomicU64::new(0),
            total: AtomicU64::new(0),
            slow_closes: AtomicU64::new(0),
            heartbeat_timeouts: AtomicU64::new(0),
            refused_full: AtomicU64::new(0),
            left: tokio::sync::Notify::new(),
        })
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Adds a client. It starts in replay mode; it goes live with
    /// [`ClientControl::try_go_live`] once it has caught up.
    pub fn register(self: &Arc<Self>) -> Result<(ClientHandle, mpsc::Receiver<Outgoing>), Full> {
        let mut clients = self.clients.lock().map_err(|_| Full(0))?;
        if clients.len() >= self.max_clients {
            self.refused_full.fetch_add(1, Ordering::Relaxed);
            return Err(Full(self.max_clients));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (queue, rx) = mpsc::channel(self.queue_capacity);
        let control = Arc::new(ClientControl {
            kicked: CancellationToken::new(),
            reason: OnceLock::new(),
            mode: AtomicU8::new(REPLAYING),
            last_seen_ms: AtomicU64::new(self.now_ms()),
            writing_since_ms: AtomicU64::new(0),
        });
        clients.insert(id, Slot { queue: queue.clone(), control: control.clone() });
        self.total.fetch_add(1, Ordering::Relaxed);
        self.peak.fetch_max(clients.len() as u64, Ordering::Relaxed);
        Ok((ClientHandle { id, control, replies: queue, fanout: self.clone() }, rx))
    }

    /// Offers `message` to every client without waiting; returns how many
    /// queues took it.
    pub fn broadcast(&self, message: &Outgoing) -> usize {
        let Ok(clients) = self.clients.lock() else {
            return 0;
        };
        let mut delivered = 0;
        for (id, slot) in clients.iter() {
            match slot.queue.try_send(message.clone()) {
                Ok(()) => delivered += 1,
                Err(mpsc::error::TrySendError::Full(_)) if slot.control.mode.load(Ordering::Acquire) == LIVE => {
                    if !slot.control.kicked.is_cancelled() {
                        tracing::warn!(conn = id, queued = self.queue_capacity, "slow consumer: queue full, closing");
                        self.slow_closes.fetch_add(1, Ordering::Relaxed);
                        slot.control.kick(CloseReason::SlowConsumer);
                    }
                }
                // Replaying: the writer reads the database again before going live.
                Err(mpsc::error::TrySendError::Full(_)) => slot.control.mode.store(DROPPED, Ordering::Release),
                // The client is closing; its handle removes it.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        delivered
    }

    /// Closes clients silent for longer than `timeout_ms`; returns how many.
    pub fn close_silent(&self, timeout_ms: u64) -> usize {
        let now = self.now_ms();
        let Ok(clients) = self.clients.lock() else {
            return 0;
        };
        let mut closed = 0;
        for (id, slot) in clients.iter() {
            let silent = now.saturating_sub(slot.control.last_seen_ms.load(Ordering::Relaxed));
            if silent > timeout_ms && !slot.control.kicked.is_cancelled() {
                tracing::info!(conn = id, silent_ms = silent, "no message from client for two heartbeats, closing");
                self.heartbeat_timeouts.fetch_add(1, Ordering::Relaxed);
                slot.control.kick(CloseReason::HeartbeatTimeout);
                closed += 1;
            }
        }
        closed
    }

    /// Closes clients whose current write has been stuck for longer than
    /// `timeout_ms` (a full socket: the client is not reading). Their queue
    /// may not have overflowed yet at a low event rate, but they are as
    /// slow as a client can be. Returns how many were closed.
    pub fn close_stuck_writers(&self, timeout_ms: u64) -> usize {
        let now = self.now_ms() + 1;
        let Ok(clients) = self.clients.lock() else { return 0 };
        let mut closed = 0;
        for (id, slot) in clients.iter() {
            let since = slot.control.writing_since_ms.load(Ordering::Relaxed);
            if since != 0 && now.saturating_sub(since) > timeout_ms && !slot.control.kicked.is_cancelled() {
                tracing::warn!(conn = id, stuck_ms = now - since, "slow consumer: a write is stuck, closing");
                self.slow_closes.fetch_add(1, Ordering::Relaxed);
                slot.control.kick(CloseReason::SlowConsumer);
                closed += 1;
            }
        }
        closed
    }

    /// Asks every client to close with `reason`.
    pub fn kick_all(&self, reason: CloseReason) {
        if let Ok(clients) = self.clients.lock() {
            for slot in clients.values() {
                slot.control.kick(reason);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.clients.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Resolves once no client is connected.
    pub async fn wait_empty(&self) {
        loop {
            let left = self.left.notified();
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

    fn message(seq: i64) -> Outgoing {
        Outgoing { seq: Some(seq), text: format!("{{\"seq\":{seq}}}").into() }
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
        for (_, queue) in &mut clients {
            let got = queue.try_recv().expect("queued");
            assert_eq!(got.seq, Some(1));
            // Same bytes, not a copy per client.
            assert_eq!(got.text.as_str().as_ptr(), msg.text.as_str().as_ptr());
        }
    }

    #[test]
    fn overflow_kicks_a_live_client_but_not_a_replaying_one() {
        let fanout = Fanout::new(2, 10);
        let (live, _live_queue) = fanout.register().expect("live");
        assert!(live.control.try_go_live());
        let (replaying, _replaying_queue) = fanout.register().expect("replaying");
        for seq in 1..=3 {
            fanout.broadcast(&message(seq));
        }
        assert!(live.control.kicked.is_cancelled());
        assert_eq!(live.control.reason.get(), Some(&CloseReason::SlowConsumer));
        assert!(!replaying.control.kicked.is_cancelled());
        assert_eq!(fanout.stats().slow_consumer_closes, 1);
        // A kicked client is counted once, however many more messages come.
        fanout.broadcast(&message(4));
        assert_eq!(fanout.stats().slow_consumer_closes, 1);
        // The replaying client must read the database again before going live.
        assert!(!replaying.control.try_go_live(), "a replaying client that dropped must re-read first");
        replaying.control.start_replay_pass();
        assert!(replaying.control.try_go_live());
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
        assert!(!chatty.control.kicked.is_cancelled());
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
        assert!(!idle.control.kicked.is_cancelled() && !quick.control.kicked.is_cancelled());
        assert_eq!(fanout.stats().slow_consumer_closes, 1);
    }

    #[test]
    fn a_reply_into_a_full_queue_kicks() {
        let fanout = Fanout::new(1, 10);
        let (client, _queue) = fanout.register().expect("client");
        client.reply("one".into());
        assert!(!client.control.kicked.is_cancelled());
        client.reply("two".into());
        assert!(client.control.kicked.is_cancelled());
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
