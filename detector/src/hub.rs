//! The socket server: publishes every committed event to any number of
//! subscribers, and never lets one of them slow the detector down.
//!
//! ```text
//!  event manager ──publish()──► Hub ──offer──► Lane ── idle: write now ─────────────► socket
//!   (any thread)     encode once │              └─ busy: queue ─► subscriber task ──► socket
//!                                └─ queue full? ─► kick                feed burst, write once
//! ```
//!
//! * [`Hub::publish`] encodes a frame once and offers the same bytes to every
//!   subscriber's [`Lane`]. It never waits: an idle lane takes the frame
//!   straight into the socket without blocking (no task wake-up on the
//!   way, see [`crate::lane`]); a busy one queues it; a full queue means that
//!   subscriber cannot keep up, and it is kicked (logged, counted,
//!   disconnected). It will catch up from the database when it reconnects.
//! * Each subscriber has one task that completes the handshake, then writes
//!   whatever is queued — a burst at a time — and watches the read side for
//!   the peer leaving or misbehaving. A write stuck on a full socket is
//!   abandoned the moment its subscriber is kicked.
//! * Shutdown stops accepting, lets each subscriber drain what is already
//!   queued (bounded by [`DRAIN_TIMEOUT`]), says `Bye`, and closes.
//!
//! Socket-file safety (stale files, live detectors, mode 0600) is in
//! [`crate::socket_file`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use interprocess::local_socket::tokio::prelude::*;
use interprocess::local_socket::tokio::{Listener, Stream};
use shared::Change;
use shared::wire::connection::frame_kind;
use shared::wire::frame::{self, Frame, Hello, Role};
use shared::wire::{FrameReader, FrameWriter, WireError, WireKey, handshake};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::lane::{Direct, Lane, Offered};
use crate::stats::Stats;

/// How long shutdown waits for subscribers to receive what is queued.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Most queued bytes written in one burst.
const BURST_BYTES: usize = 64 * 1024;

/// Where events go once committed. The socket hub is one; a NATS or MQTT
/// publisher would be another.
pub trait Publisher: Send + Sync {
    /// Offers `event` to subscribers. Must not block and must not fail the
    /// caller: a publisher with no subscribers, or a broken one, just logs.
    fn publish_change(&self, change: &Change);
}

/// The fan-out point shared by the accept loop, subscriber tasks and publishers.
#[derive(Debug)]
pub struct Hub {
    subscribers: Mutex<Vec<SubscriberSlot>>,
    queue_capacity: usize,
    next_id: AtomicU64,
    stats: Arc<Stats>,
    /// Number of subscribers past the handshake, for `--wait-subscribers`.
    count_tx: watch::Sender<usize>,
    name: String,
    /// Subscribers must prove they hold it (they can read the data directory).
    key: WireKey,
}

#[derive(Debug)]
struct SubscriberSlot {
    id: u64,
    name: String,
    lane: Arc<Lane>,
    kick: CancellationToken,
}

impl Hub {
    pub fn new(name: String, queue_capacity: usize, stats: Arc<Stats>, key: WireKey) -> Arc<Self> {
        Arc::new(Self {
            subscribers: Mutex::new(Vec::new()),
            queue_capacity,
            next_id: AtomicU64::new(1),
            stats,
            count_tx: watch::Sender::new(0),
            name,
            key,
        })
    }

    /// Encodes `frame` once and offers it to every subscriber.
    pub fn publish(&self, frame: &Frame) {
        let bytes = match frame::encode(frame) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode frame; not published");
                return;
            }
        };
        let Ok(mut subscribers) = self.subscribers.lock() else {
            return;
        };
        subscribers.retain(|s| match s.lane.offer(&bytes) {
            Offered::Sent | Offered::Queued => true,
            Offered::Full => {
                tracing::warn!(
                    subscriber = s.id,
                    name = %s.name,
                    queued = self.queue_capacity,
                    "subscriber too slow: queue full, disconnecting (it catches up from the database on reconnect)"
                );
                self.stats.slow_subscribers_dropped.fetch_add(1, Ordering::Relaxed);
                s.kick.cancel();
                false
            }
        });
        self.publish_count(subscribers.len());
    }

    /// Resolves once at least `n` subscribers have completed the handshake.
    pub async fn wait_for_subscribers(&self, n: usize) {
        let mut rx = self.count_tx.subscribe();
        let _ = rx.wait_for(|&count| count >= n).await;
    }

    fn register(&self, name: &str, direct: Option<Direct>) -> (u64, Arc<Lane>, CancellationToken) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let lane = Arc::new(Lane::new(self.queue_capacity, direct));
        let kick = CancellationToken::new();
        if let Ok(mut subscribers) = self.subscribers.lock() {
            subscribers.push(SubscriberSlot { id, name: name.to_owned(), lane: lane.clone(), kick: kick.clone() });
            self.publish_count(subscribers.len());
        }
        self.stats.subscribers_served.fetch_add(1, Ordering::Relaxed);
        (id, lane, kick)
    }

    /// Removes a subscriber. Once this returns no publisher writes to its
    /// socket any more (publishing holds the same lock), so its task may
    /// write its last frames and `Bye` without interleaving.
    fn unregister(&self, id: u64) {
        if let Ok(mut subscribers) = self.subscribers.lock() {
            subscribers.retain(|s| s.id != id);
            self.publish_count(subscribers.len());
        }
    }

    fn publish_count(&self, n: usize) {
        self.stats.subscribers_now.store(n as u64, Ordering::Relaxed);
        self.count_tx.send_replace(n);
    }
}

impl Publisher for Hub {
    fn publish_change(&self, change: &Change) {
        self.publish(&Frame::Change(change.clone()));
    }
}

/// Accepts subscribers until `shutdown`, then drains and closes them all.
pub async fn serve(listener: Listener, hub: Arc<Hub>, shutdown: CancellationToken, socket: PathBuf) {
    let tracker = TaskTracker::new();
    tracing::info!(socket = %socket.display(), "publishing events on the detector socket");
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(stream) => {
                    tracker.spawn(run_subscriber(stream, hub.clone(), shutdown.clone()));
                }
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::error!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    drop(listener);
    tracker.close();
    if tokio::time::timeout(DRAIN_TIMEOUT + Duration::from_millis(500), tracker.wait()).await.is_err() {
        tracing::warn!("some subscribers did not close in time");
    }
}

/// How a subscriber connection ended.
#[derive(Debug)]
enum Ending {
    PeerClosed,
    Slow,
    Shutdown,
    Error(WireError),
    UnexpectedFrame(&'static str),
}

async fn run_subscriber(stream: Stream, hub: Arc<Hub>, shutdown: CancellationToken) {
    let direct = Direct::of(&stream);
    let (read, write) = tokio::io::split(stream);
    let mut reader = FrameReader::new(read);
    let mut writer = FrameWriter::new(write);
    let ours = Hello::new(Role::Publisher, &hub.name);
    let peer = match handshake(&mut reader, &mut writer, ours, Role::Subscriber, &hub.key).await {
        Ok(peer) => peer,
        Err(e) => {
            tracing::warn!(error = %e, "subscriber refused during handshake");
            return;
        }
    };
    let (id, lane, kick) = hub.register(&peer.name, direct);
    let started = Instant::now();
    tracing::info!(subscriber = id, name = %peer.name, "subscriber connected");

    let ending = pump(&mut reader, &mut writer, &lane, &kick, &shutdown).await;
    hub.unregister(id);
    match &ending {
        Ending::Shutdown => {
            drain(&mut writer, &lane).await;
            writer.say_bye("detector shutting down").await;
        }
        Ending::Slow => {
            // The socket is likely full; try briefly so the peer learns why.
            let _ = tokio::time::timeout(Duration::from_millis(100), writer.say_bye("slow consumer")).await;
        }
        Ending::UnexpectedFrame(what) => writer.say_bye(&format!("unexpected {what} frame from a subscriber")).await,
        Ending::Error(WireError::Frame(e)) => writer.say_bye(&e.to_string()).await,
        Ending::PeerClosed | Ending::Error(_) => {}
    }
    let secs = started.elapsed().as_secs_f64();
    match ending {
        Ending::Error(e) => {
            tracing::warn!(subscriber = id, name = %peer.name, error = %e, secs, "subscriber dropped")
        }
        Ending::UnexpectedFrame(what) => {
            tracing::warn!(subscriber = id, name = %peer.name, frame = what, secs, "subscriber sent an unexpected frame; dropped")
        }
        other => {
            tracing::info!(subscriber = id, name = %peer.name, reason = ?other, secs, "subscriber disconnected")
        }
    }
}

/// Moves queued frames to the socket until something ends the connection.
async fn pump<R, W>(
    reader: &mut FrameReader<R>,
    writer: &mut FrameWriter<W>,
    lane: &Lane,
    kick: &CancellationToken,
    shutdown: &CancellationToken,
) -> Ending
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut burst = BytesMut::new();
    loop {
        tokio::select! {
            biased;
            _ = kick.cancelled() => return Ending::Slow,
            _ = shutdown.cancelled() => return Ending::Shutdown,
            () = lane.next_burst(&mut burst, BURST_BYTES) => {
                tokio::select! {
                    biased;
                    _ = kick.cancelled() => return Ending::Slow,
                    written = writer.write_encoded(&burst) => {
                        if let Err(e) = written { return Ending::Error(e) }
                    }
                }
                lane.written();
            }
            // Subscribers send nothing after the handshake except, perhaps, Bye.
            frame = reader.read_frame() => return match frame {
                Ok(None) | Ok(Some(Frame::Bye { .. })) => Ending::PeerClosed,
                Ok(Some(other)) => Ending::UnexpectedFrame(frame_kind(&other)),
                Err(e) => Ending::Error(e),
            },
        }
    }
}

/// Writes everything still queued, within [`DRAIN_TIMEOUT`].
async fn drain<W: tokio::io::AsyncWrite + Unpin>(writer: &mut FrameWriter<W>, lane: &Lane) {
    let drained = async {
        let mut burst = BytesMut::new();
        while lane.take_burst(&mut burst, BURST_BYTES) {
            writer.write_encoded(&burst).await?;
            lane.written();
        }
        writer.flush().await
    };
    match tokio::time::timeout(DRAIN_TIMEOUT, drained).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not deliver every queued frame before closing")
        }
        Err(_) => {
            tracing::warn!("subscriber did not take its queued frames within {DRAIN_TIMEOUT:?}")
        }
    }
}

/// Binds the listener at `path` (after [`crate::socket_file::prepare`]).
pub fn bind(path: &Path) -> std::io::Result<Listener> {
    let mut options = interprocess::local_socket::ListenerOptions::new()
        .name(shared::wire::endpoint::socket_name(path)?)
        .try_overwrite(false);
    #[cfg(unix)]
    {
        use interprocess::os::unix::local_socket::ListenerOptionsExt;
        options = options.mode(0o600);
    }
    options.create_tokio()
}
/// Publishes detector statistics every `interval` until `stop`.
pub async fn heartbeat(hub: Arc<Hub>, stats: Arc<Stats>, interval: Duration, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => hub.publish(&Frame::Heartbeat(stats.snapshot())),
        }
    }
}
