//! The HTTP listener: accepting, per-address caps, timeouts, graceful stop.
//!
//! `axum::serve` keeps a connection that sends half a request open forever,
//! so a few thousand such connections (slowloris) would use up the
//! open-file limit before any token check runs. This loop serves the same
//! [`axum::Router`] through hyper with the defences a server on a shared
//! machine needs:
//!
//! * **Header timeout**: a request's head must arrive within
//!   [`Limits::header_timeout`] of the connection opening or going idle
//!   (hyper's `header_read_timeout`, which also bounds idle keep-alive).
//! * **Per-address cap**: at most [`Limits::per_address`] connections in
//!   the HTTP phase from one source address; a further one is closed at
//!   once (counted). WebSocket clients leave the HTTP phase at their
//!   upgrade and are bounded by `--max-clients` instead.
//! * **Global cap**: at most [`Limits::max_connections`] in the HTTP phase,
//!   kept below the open-file limit, so `accept` does not meet `EMFILE`.
//! * **Accept errors back off** (5 ms doubling to 1 s) instead of spinning.
//! * **Graceful stop**: on the token, stop accepting, let requests in
//!   flight finish, close idle keep-alive connections.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Bounds on HTTP connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub per_address: usize,
    pub max_connections: usize,
}

/// Connections refused by the caps, for metrics.
#[derive(Debug, Default)]
pub struct ListenerStats {
    pub refused_per_address: AtomicU64,
    pub refused_full: AtomicU64,
    pub accept_errors: AtomicU64,
}

/// Who holds how many HTTP-phase connections.
#[derive(Debug, Default)]
struct Slots {
    by_address: HashMap<IpAddr, usize>,
    total: usize,
}

/// One held connection slot; released on drop.
struct Slot {
    slots: Arc<Mutex<Slots>>,
    address: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.total = slots.total.saturating_sub(1);
            if let Some(n) = slots.by_address.get_mut(&self.address) {
                *n -= 1;
                if *n == 0 {
                    slots.by_address.remove(&self.address);
                }
            }
        }
    }
}

/// Why a connection was not taken.
enum Refused {
    PerAddress,
    Full,
}

fn take_slot(slots: &Arc<Mutex<Slots>>, address: IpAddr, limits: &Limits) -> Result<Slot, Refused> {
    let Ok(mut held) = slots.lock() else { return Err(Refused::Full) };
    if held.total >= limits.max_connections {
        return Err(Refused::Full);
    }
    let n = held.by_address.entry(address).or_insert(0);
    if *n >= limits.per_address {
        return Err(Refused::PerAddress);
    }
    *n += 1;
    held.total += 1;
    Ok(Slot { slots: slots.clone(), address })
}

const FIRST_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` until `stop`, then waits up to `grace` for
/// requests in flight.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    stats: Arc<ListenerStats>,
    tune: fn(&TcpStream),
    stop: CancellationToken,
    grace: Duration,
) {
    let slots = Arc::new(Mutex::new(Slots::default()));
    let tracker = TaskTracker::new();
    let mut backoff = FIRST_BACKOFF;
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                backoff = FIRST_BACKOFF;
                accepted
            }
            Err(e) => {
                // EMFILE and the like: waiting lets connections close.
                if stats.accept_errors.fetch_add(1, Ordering::Relaxed).is_multiple_of(100) {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "accept failed; backing off");
                }
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let slot = match take_slot(&slots, peer.ip(), &limits) {
            Ok(slot) => slot,
            Err(why) => {
                let (counter, reason) = match why {
                    Refused::PerAddress => (&stats.refused_per_address, "too many connections from this address"),
                    Refused::Full => (&stats.refused_full, "too many connections"),
                };
                if counter.fetch_add(1, Ordering::Relaxed).is_multiple_of(1000) {
                    tracing::warn!(peer = %peer.ip(), reason, "connection refused (logged once per 1000)");
                }
                drop(stream);
                continue;
            }
        };
        tune(&stream);
        let service = TowerToHyperService::new(router.clone());
        tracker.spawn(serve_connection(stream, peer, service, limits.header_timeout, slot, stop.clone()));
    }
    drop(listener);
    tracker.close();
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!("HTTP requests still in flight after {grace:?}; exiting anyway");
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    service: TowerToHyperService<Router>,
    header_timeout: Duration,
    slot: Slot,
    stop: CancellationToken,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_timeout);
    let connection = builder.serve_connection(TokioIo::new(stream), service).with_upgrades();
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    drop(slot);
    if let Err(e) = result
        && !e.is_timeout()
        && !e.is_incomplete_message()
    {
        tracing::debug!(peer = %peer, error = %e, "HTTP connection ended with an error");
    }
}
