//! The bridge from detector sockets to the sequencer.
//!
//! One task per `--socket`. Each connects, completes the handshake, asks the
//! sequencer to catch up from the database (events committed while we were
//! away), then forwards every event frame and records every heartbeat. When
//! the detector is absent or goes away, it retries with capped exponential
//! back-off plus jitter, and its state shows in `/api/health`.
//!
//! Only a detector that passes [`Trust`]'s checks (socket owner, peer
//! uid, wire-key proof) is heard at all, and even then an event frame is
//! only a hint: the sequencer broadcasts the database's row.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde::Serialize;
use shared::Timestamp;
use shared::wire::{DetectorStats, Frame, Subscription, Trust};
use tokio_util::sync::CancellationToken;

use crate::stream::sequencer::Sequencer;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What the webserver knows about one detector socket.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LinkStatus {
    /// The socket path, or `nats:<node>` for a detector heard on NATS.
    pub socket: String,
    pub connected: bool,
    /// The detector's name from its handshake, e.g. `detector:1234`.
    pub detector: Option<String>,
    #[schema(value_type = Option<String>)]
    pub connected_since: Option<Timestamp>,
    #[schema(value_type = Option<String>)]
    pub last_event_at: Option<Timestamp>,
    #[schema(value_type = Option<String>)]
    pub last_heartbeat_at: Option<Timestamp>,
    /// Successful connections since the webserver started.
    pub connections: u64,
    /// Why the last attempt or connection failed, if it did.
    pub last_error: Option<String>,
    /// The detector's latest heartbeat.
    #[schema(value_type = Option<Object>)]
    pub stats: Option<DetectorStats>,
}

/// One detector link, shared between its task and the API.
#[derive(Debug)]
pub struct Link {
    status: Mutex<LinkStatus>,
}

/// Every detector link: one per `--socket`, or one per detector node heard
/// on NATS (which come as their heartbeats do).
#[derive(Debug, Default)]
pub struct Links(Mutex<Vec<Arc<Link>>>);

impl Links {
    pub fn add(&self, link: Arc<Link>) {
        if let Ok(mut links) = self.0.lock() {
            links.push(link);
        }
    }

    /// The link called `source`, made when first asked for.
    pub fn named(&self, source: &str) -> Option<Arc<Link>> {
        let mut links = self.0.lock().ok()?;
        if let Some(link) = links.iter().find(|l| l.status().is_some_and(|s| s.socket == source)) {
            return Some(link.clone());
        }
        let link = Link::named(source.to_owned());
        links.push(link.clone());
        Some(link)
    }

    pub fn statuses(&self) -> Vec<LinkStatus> {
        self.0.lock().map(|links| links.iter().filter_map(|l| l.status()).collect()).unwrap_or_default()
    }
}

impl Link {
    pub fn new(socket: &std::path::Path) -> Arc<Self> {
        Self::named(socket.display().to_string())
    }

    /// A link known by `source`: a socket path, or `nats:<node>`.
    pub fn named(source: String) -> Arc<Self> {
        Arc::new(Self {
            status: Mutex::new(LinkStatus {
                socket: source,
                connected: false,
                detector: None,
                connected_since: None,
                last_event_at: None,
                last_heartbeat_at: None,
                connections: 0,
                last_error: None,
                stats: None,
            }),
        })
    }

    pub fn status(&self) -> Option<LinkStatus> {
        self.status.lock().ok().map(|s| s.clone())
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut LinkStatus)) {
        if let Ok(mut status) = self.status.lock() {
            f(&mut status);
        }
    }
}

/// Keeps one detector socket connected until `shutdown`.
pub async fn run(socket: PathBuf, trust: Trust, link: Arc<Link>, sequencer: Sequencer, shutdown: CancellationToken) {
    let name = format!("webserver:{}", std::process::id());
    let mut backoff = FIRST_BACKOFF;
    let mut logged_absent = false;
    loop {
        let attempt = tokio::select! {
            _ = shutdown.cancelled() => return,
            attempt = Subscription::connect(&socket, &name, &trust) => attempt,
        };
        match attempt {
            Ok(subscription) => {
                backoff = FIRST_BACKOFF;
                logged_absent = false;
                let detector = subscription.peer().name.clone();
                tracing::info!(socket = %socket.display(), %detector, "connected to detector");
                link.update(|s| {
                    s.connected = true;
                    s.detector = Some(detector.clone());
                    s.connected_since = Some(Timestamp::now());
                    s.connections += 1;
                    s.last_error = None;
                });
                sequencer.catch_up();
                let ended = forward(subscription, &link, &sequencer, &shutdown).await;
                link.update(|s| {
                    s.connected = false;
                    s.last_error = ended.clone();
                });
                match ended {
                    None => return, // shutdown
                    Some(why) => {
                        tracing::warn!(socket = %socket.display(), %detector, reason = %why, "detector link lost; reconnecting")
                    }
                }
            }
            Err(e) => {
                if !logged_absent {
                    tracing::warn!(socket = %socket.display(), error = %e, "detector not reachable; retrying with back-off");
                    logged_absent = true;
                }
                link.update(|s| s.last_error = Some(e.to_string()));
            }
        }
        let jitter = rand::rng().random_range(0.8..1.2);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff.mul_f64(jitter)) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Forwards frames until the link ends; `None` means shutdown, `Some` why it broke.
async fn forward(
    mut subscription: Subscription,
    link: &Link,
    sequencer: &Sequencer,
    shutdown: &CancellationToken,
) -> Option<String> {
    loop {
        let frame = tokio::select! {
            _ = shutdown.cancelled() => return None,
            frame = subscription.next_frame() => frame,
        };
        match frame {
            Ok(Some(Frame::Change(change))) => {
                link.update(|s| s.last_event_at = Some(Timestamp::now()));
                sequencer.offer(change).await;
            }
            Ok(Some(Frame::Heartbeat(stats))) => link.update(|s| {
                s.last_heartbeat_at = Some(Timestamp::now());
                s.stats = Some(stats);
            }),
            Ok(Some(Frame::Bye { reason })) => return Some(format!("detector said bye: {reason}")),
            Ok(Some(Frame::Hello(_) | Frame::Proof { .. })) => {
                return Some("protocol error: a handshake frame after the handshake".into());
            }
            Ok(None) => return Some("detector closed the connection".into()),
            Err(e) => return Some(e.to_string()),
        }
    }
}
