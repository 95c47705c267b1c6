//! Cluster mode (SPEC §10): the stream in, instead of a detector socket.
//!
//! ```text
//!  stream LOOKOUT ─► ordered consumer ─► decode ─► Store::apply_all(seq = stream sequence) ─► sequencer
//!  (from the copy's head + 1)            (bad: counted, skipped)   (refused: counted)        (fan-out as ever)
//!  lookout.heartbeat.* ─► one Link per detector node (health, metrics, the MQTT output's cameras)
//!  POST / PUT …/end ─► Cluster::publish ─► stream ─► (applied here) ─► the HTTP answer
//!  GET …/image (not on this host) ─► Cluster::fetch_snapshot ◄─ bucket <stream>_snapshots
//!  every 2 s: the stream's head and peers, the bucket's size ─► health;  every 10 min: trim the copy
//! ```
//!
//! The webserver's database is a copy of the stream: each change is
//! written at the stream's sequence, so every webserver gives a change the
//! same `seq`, and a browser may resume with `after_seq` against any of
//! them. What the consumer holds at once (up to [`APPLY_BATCH`] changes)
//! goes in one transaction, not flushed to disk (the stream is the log):
//! a commit per change would leave the copy behind the stream under load.
//! The consumer is ordered (the server delivers in stream order, and the
//! client recreates it on any gap), it starts after the copy's head, and
//! [`Store::apply_all`](shared::Store::apply_all) refuses anything at or
//! below the head: a gap or a reordering cannot reach the copy. What the
//! copy has, the sequencer broadcasts exactly as it does a socket's
//! changes.
//!
//! A message that is not a change this build understands (no schema
//! header, an unknown schema version, bad JSON, an invalid event) is logged,
//! counted and skipped; so is a change the copy refuses (an update of an
//! unknown event). Every copy reads the same stream in the same order, so
//! every copy skips the same ones.
//!
//! A database error or a lost consumer ends the session; the next one
//! starts, after a back-off, from the copy's head again, so nothing is
//! applied twice. A copy wiped or new starts from the beginning of the
//! stream and rebuilds; one whose next change the stream's limits already
//! removed records the hole (`deleted_through`), so a client resuming in it
//! is told `reset` instead of missing changes silently.
//!
//! The copy is no larger than the stream: the detectors set the stream's
//! limits from their retention, and every ten minutes (and at start) the
//! copy deletes the ended events none of whose changes the stream still
//! holds, with the snapshots it cached for them
//! ([`retention::trim_copy`](shared::retention::trim_copy)) — what a copy
//! rebuilt from the stream would hold. That, and reading the stream's state
//! for health, is a task of its own, so a slow answer from NATS never
//! holds up a change.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use cluster::{ClusterError, NatsArgs, Snapshots, StreamSettings, message, subjects};
use futures_util::{FutureExt, StreamExt};
use serde::Serialize;
use shared::config::DataDir;
use shared::retention::{self, SweepReport};
use shared::wire::DetectorStats;
use shared::{Change, Timestamp};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::db::{Db, DbError};
use crate::stream::bridge::Links;
use crate::stream::sequencer::Sequencer;

const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often the stream's head and peers are read for health.
const STREAM_INFO_EVERY: Duration = Duration::from_secs(2);
/// Changes applied in one transaction at most.
const APPLY_BATCH: usize = 256;
/// A detector silent this long shows as disconnected.
const HEARTBEAT_STALE: Duration = Duration::from_secs(15);
/// How long an API request waits for its change to reach this copy.
const APPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the copy gives up what the stream no longer holds.
const TRIM_EVERY: Duration = Duration::from_secs(600);
/// The longest rest between two batches of a trim (each rests twice as
/// long as it took, as the detector's sweep does).
const TRIM_REST: Duration = Duration::from_millis(200);

/// One replica of the stream, as the server reports it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Peer {
    pub name: String,
    pub current: bool,
    pub offline: bool,
    /// Operations behind the leader, when known.
    pub lag: Option<u64>,
}

/// What `/api/health` and `/metrics` show of the cluster link.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ClusterStatus {
    /// The NATS servers, credentials masked.
    pub servers: String,
    pub node: String,
    pub stream: String,
    /// Whether the client is connected to a NATS server now.
    pub connected: bool,
    /// The stream's last sequence, as last read.
    pub stream_head: u64,
    /// The stream's first sequence still held.
    pub stream_first: u64,
    /// The highest stream sequence this copy has read.
    pub applied_seq: i64,
    /// `stream_head - applied_seq`.
    pub consumer_lag: u64,
    /// The stream's leader and replicas (a clustered stream).
    pub leader: Option<String>,
    pub peers: Vec<Peer>,
    /// Messages skipped as not a change this build applies, since start.
    pub malformed: u64,
    /// Changes the copy refused (e.g. an update of an unknown event), since start.
    pub refused: u64,
    /// Changes applied since start.
    pub applied: u64,
    /// The object store bucket holding the snapshots.
    pub snapshot_bucket: String,
    /// Bytes the bucket holds, as last read.
    pub snapshot_bytes: u64,
    pub last_error: Option<String>,
}

/// The cluster link's shared state: status for the API, and the applied
/// mark API writers wait on.
#[derive(Debug)]
pub struct Cluster {
    status: Mutex<ClusterStatus>,
    applied: watch::Sender<i64>,
    malformed: AtomicU64,
    refused: AtomicU64,
    applied_count: AtomicU64,
    js: jetstream::Context,
    client: async_nats::Client,
    node: String,
    settings: StreamSettings,
    /// The snapshot bucket, once a session opened it.
    snapshots: Mutex<Option<Snapshots>>,
    /// The copy: written by the consumer, read back for API answers.
    db: Db,
}

impl Cluster {
    /// Connects (in the background: an absent NATS is waited out, the copy
    /// still serves what it has).
    pub async fn connect(nats: &NatsArgs, db: Db) -> Result<Arc<Self>, ClusterError> {
        // No flush per commit (see the module's essay): a power cut may
        // lose the copy's last changes, but it resumes from its head and
        // applies them again at the same seqs, so no seq is ever reused.
        if let Err(e) = db.write(|s| s.without_flush()).await {
            tracing::warn!(error = %e, "cannot relax the copy's flushes; each change waits for the disk");
        }
        let node = nats.node_id();
        let client = nats.connect(&format!("lookout webserver {node}")).await?;
        let status = ClusterStatus {
            servers: nats.servers_redacted(),
            node: node.clone(),
            stream: nats.nats_stream.clone(),
            snapshot_bucket: nats.stream_settings().snapshot_bucket(),
            ..Default::default()
        };
        Ok(Arc::new(Self {
            status: Mutex::new(status),
            applied: watch::Sender::new(0),
            malformed: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            applied_count: AtomicU64::new(0),
            js: jetstream::new(client.clone()),
            client,
            node,
            settings: nats.stream_settings(),
            snapshots: Mutex::new(None),
            db,
        }))
    }

    pub fn status(&self) -> ClusterStatus {
        let mut status = self.status.lock().map(|s| s.clone()).unwrap_or_default();
        status.connected = self.client.connection_state() == async_nats::connection::State::Connected;
        status.malformed = self.malformed.load(Ordering::Relaxed);
        status.refused = self.refused.load(Ordering::Relaxed);
        status.applied = self.applied_count.load(Ordering::Relaxed);
        status.applied_seq = *self.applied.borrow();
        status.consumer_lag = status.stream_head.saturating_sub(status.applied_seq.max(0) as u64);
        status
    }

    fn update(&self, edit: impl FnOnce(&mut ClusterStatus)) {
        if let Ok(mut status) = self.status.lock() {
            edit(&mut status);
        }
    }

    /// Publishes a change the API made and waits until this copy has read
    /// it; the change returned is the one stored. `Ok(None)`: the copy
    /// refused it (another webserver's change came first, e.g. an end).
    pub async fn publish(&self, change: &Change, msg_id: &str) -> Result<Option<Change>, ClusterApiError> {
        let subject = subjects::api_changes(&self.node, &change.event.camera_id);
        let (headers, body) = message::encode_api_change(change, msg_id);
        let ack = self
            .js
            .publish_with_headers(subject, headers, body)
            .await
            .map_err(|e| ClusterApiError::Unreachable(e.to_string()))?
            .await
            .map_err(|e| ClusterApiError::Unreachable(e.to_string()))?;
        let seq = i64::try_from(ack.sequence).unwrap_or(i64::MAX);
        let mut applied = self.applied.subscribe();
        tokio::time::timeout(APPLY_TIMEOUT, applied.wait_for(|&a| a >= seq))
            .await
            .map_err(|_| ClusterApiError::NotApplied(seq))?
            .map_err(|_| ClusterApiError::NotApplied(seq))?;
        Ok(self.applied_change(seq).await)
    }

    /// The change this copy stored at `seq`, if it stored one.
    async fn applied_change(&self, seq: i64) -> Option<Change> {
        self.db.read(move |s| Ok(s.after_seq(seq - 1, 1)?.into_iter().find(|c| c.seq() == seq))).await.ok().flatten()
    }
}

impl Cluster {
    /// The snapshot `image_path` from the bucket: `Ok(None)` when the
    /// bucket has none (never put, or aged out).
    pub async fn fetch_snapshot(&self, image_path: &str) -> Result<Option<Vec<u8>>, ClusterApiError> {
        let opened = self.snapshots.lock().ok().and_then(|s| s.clone());
        let snapshots = match opened {
            Some(snapshots) => snapshots,
            None => self.open_snapshots().await.map_err(|e| ClusterApiError::Unreachable(e.to_string()))?,
        };
        snapshots.get(image_path).await.map_err(|e| ClusterApiError::Unreachable(e.to_string()))
    }

    async fn open_snapshots(&self) -> Result<Snapshots, ClusterError> {
        let snapshots = self.settings.ensure_snapshots(&self.js).await?;
        if let Ok(mut slot) = self.snapshots.lock() {
            *slot = Some(snapshots.clone());
        }
        Ok(snapshots)
    }

    /// The bucket's size, into the status.
    async fn note_snapshots(&self) {
        let Some(snapshots) = self.snapshots.lock().ok().and_then(|s| s.clone()) else { return };
        if let Ok(bytes) = snapshots.stored_bytes().await {
            self.update(|s| s.snapshot_bytes = bytes);
        }
    }
}

/// Why an API change did not make it.
#[derive(Debug, thiserror::Error)]
pub enum ClusterApiError {
    #[error("the cluster stream is not reachable: {0}")]
    Unreachable(String),
    #[error("the change is in the stream (seq {0}) but not yet applied here; it will be")]
    NotApplied(i64),
}

impl Cluster {
    /// Keeps the copy following the stream, trimmed to it, and the
    /// detectors' links fed from their heartbeats, until `stop`.
    /// `snapshot_cache` is where this webserver keeps the bucket's pictures.
    pub async fn run(
        self: Arc<Self>,
        sequencer: Sequencer,
        links: Arc<Links>,
        snapshot_cache: DataDir,
        stop: CancellationToken,
    ) {
        let heartbeats = tokio::spawn(self.clone().listen_to_heartbeats(links, stop.clone()));
        let watcher = tokio::spawn(self.clone().watch_stream(snapshot_cache, stop.clone()));
        let mut backoff = FIRST_BACKOFF;
        loop {
            let ended = tokio::select! {
                _ = stop.cancelled() => break,
                ended = self.follow(&sequencer) => ended,
            };
            if let Err(e) = ended {
                tracing::warn!(error = %e, "cluster stream lost; the copy serves what it has and follows again");
                self.update(|s| s.last_error = Some(e.to_string()));
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        heartbeats.abort();
        let _ = watcher.await;
    }

    /// One session: from the copy's head + 1, every change in stream order.
    async fn follow(&self, sequencer: &Sequencer) -> Result<(), FollowError> {
        let mut stream = self.settings.ensure(&self.js).await?;
        self.open_snapshots().await?;
        self.note_snapshots().await;
        let head = self.db.read(|s| s.head_seq()).await?;
        self.applied.send_if_modified(|a| {
            let moved = *a != head;
            *a = (*a).max(head);
            moved
        });
        let info = stream.info().await.map_err(|e| ClusterError::Request(e.to_string()))?.clone();
        self.note_stream(&info);
        let first = i64::try_from(info.state.first_sequence).unwrap_or(i64::MAX);
        if info.state.messages > 0 && first > head + 1 {
            // The stream's limits removed changes this copy never had.
            tracing::warn!(
                copy_head = head,
                stream_first = first,
                "the stream no longer holds changes this copy never applied; clients resuming there are told to reset"
            );
            self.db.write(move |s| s.mark_missing_through(first - 1)).await?;
        }
        let start = u64::try_from(head).unwrap_or(0) + 1;
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: start },
                ..Default::default()
            })
            .await
            .map_err(|e| ClusterError::Request(e.to_string()))?;
        let mut messages = consumer.messages().await.map_err(|e| ClusterError::Request(e.to_string()))?;
        tracing::info!(stream = %self.settings.name, from_seq = start, "following the cluster stream");
        self.update(|s| s.last_error = None);
        let mut last = head;
        loop {
            // What the consumer already holds is applied in one transaction:
            // one commit, not one per change, when changes come fast.
            let mut batch = vec![received(messages.next().await)?];
            while batch.len() < APPLY_BATCH {
                match messages.next().now_or_never() {
                    Some(item) => batch.push(received(item)?),
                    None => break,
                }
            }
            let mut changes = Vec::with_capacity(batch.len());
            for message in batch {
                let seq = match message.info() {
                    Ok(info) => i64::try_from(info.stream_sequence).unwrap_or(i64::MAX),
                    Err(e) => {
                        return Err(ClusterError::Request(format!("message without stream sequence: {e}")).into());
                    }
                };
                if seq <= last {
                    // The ordered consumer never does this; if it ever did,
                    // the copy must not see it.
                    tracing::error!(seq, last, "the stream delivered a change at or below the last one; skipped");
                    continue;
                }
                last = seq;
                match message::decode(message.headers.as_ref(), &message.payload) {
                    Ok(decoded) => changes.push((seq, decoded.change)),
                    Err(e) => {
                        self.malformed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(seq, subject = %message.subject, error = %e, "skipped a message on the change subjects that is not a change");
                    }
                }
            }
            if !changes.is_empty() {
                let seqs: Vec<i64> = changes.iter().map(|(seq, _)| *seq).collect();
                let results = self.db.write(move |s| s.apply_all(&changes)).await?;
                for (seq, result) in seqs.into_iter().zip(results) {
                    match result {
                        Ok(change) => {
                            self.applied_count.fetch_add(1, Ordering::Relaxed);
                            sequencer.offer(change).await;
                        }
                        Err(e) => {
                            self.refused.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(seq, error = %e, "the copy refused a change from the stream; skipped");
                        }
                    }
                }
            }
            // Skipped ones too: an API writer waiting for a seq learns it
            // was not applied.
            self.applied.send_replace(last);
        }
    }

    /// Every [`STREAM_INFO_EVERY`], the stream's state and the bucket's
    /// size into the status; at the first answer and then every
    /// [`TRIM_EVERY`], the copy trimmed to what the stream holds.
    async fn watch_stream(self: Arc<Self>, snapshot_cache: DataDir, stop: CancellationToken) {
        let mut tick = tokio::time::interval(STREAM_INFO_EVERY);
        let mut trimmed: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let Ok(stream) = self.js.get_stream(&self.settings.name).await else { continue };
            let info = stream.cached_info();
            self.note_stream(info);
            self.note_snapshots().await;
            if trimmed.is_none_or(|at| at.elapsed() >= TRIM_EVERY) {
                trimmed = Some(Instant::now());
                let first = i64::try_from(info.state.first_sequence).unwrap_or(i64::MAX);
                self.trim_copy(first, &snapshot_cache, &stop).await;
            }
        }
    }

    /// Deletes, batch by batch, the ended events of the copy whose changes
    /// all precede `stream_first`, then gives the space back.
    async fn trim_copy(&self, stream_first: i64, snapshot_cache: &DataDir, stop: &CancellationToken) {
        let mut done = SweepReport::default();
        let failed = loop {
            let cache = snapshot_cache.clone();
            let step = self.db.write(move |s| Ok(retention::trim_copy(s, &cache, stream_first))).await;
            let report = match step {
                Ok(Ok(report)) => report,
                Ok(Err(e)) => break Some(e.to_string()),
                Err(e) => break Some(e.to_string()),
            };
            if report.events_deleted == 0 {
                break None;
            }
            done.events_deleted += report.events_deleted;
            done.snapshots_deleted += report.snapshots_deleted;
            done.snapshot_bytes += report.snapshot_bytes;
            tokio::select! {
                _ = stop.cancelled() => break None,
                _ = tokio::time::sleep((report.elapsed * 2).min(TRIM_REST)) => {}
            }
        };
        if let Some(e) = failed {
            tracing::warn!(error = %e, "cannot trim the cluster copy to the stream; trying again later");
        }
        if done.events_deleted > 0 {
            if let Err(e) = self.db.write(|s| s.release_free_pages()).await {
                tracing::warn!(error = %e, "cannot give the trimmed copy's space back");
            }
            tracing::info!(
                events = done.events_deleted,
                snapshots = done.snapshots_deleted,
                snapshot_bytes = done.snapshot_bytes,
                stream_first,
                "trimmed the cluster copy to what the stream holds"
            );
        }
    }

    fn note_stream(&self, info: &jetstream::stream::Info) {
        self.update(|s| {
            s.stream_head = info.state.last_sequence;
            s.stream_first = info.state.first_sequence;
            s.leader = info.cluster.as_ref().and_then(|c| c.leader.clone());
            s.peers = info
                .cluster
                .iter()
                .flat_map(|c| &c.replicas)
                .map(|p| Peer { name: p.name.clone(), current: p.current, offline: p.offline, lag: p.lag })
                .collect();
        });
    }

    /// Every detector's heartbeat, into a link of its own (`nats:<node>`).
    async fn listen_to_heartbeats(self: Arc<Self>, links: Arc<Links>, stop: CancellationToken) {
        let mut subscription = loop {
            match self.client.subscribe(subjects::HEARTBEATS).await {
                Ok(subscription) => break subscription,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot subscribe to detector heartbeats; retrying");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(MAX_BACKOFF) => {}
                    }
                }
            }
        };
        let mut stale_check = tokio::time::interval(Duration::from_secs(1));
        loop {
            let message = tokio::select! {
                _ = stop.cancelled() => return,
                message = subscription.next() => message,
                _ = stale_check.tick() => {
                    mark_silent_detectors(&links);
                    continue;
                }
            };
            let Some(message) = message else { return };
            let Some(node) = subjects::heartbeat_node(&message.subject) else { continue };
            let stats: DetectorStats = match serde_json::from_slice(&message.payload) {
                Ok(stats) => stats,
                Err(e) => {
                    tracing::debug!(subject = %message.subject, error = %e, "ignored a heartbeat that does not parse");
                    continue;
                }
            };
            if let Some(link) = links.named(&format!("nats:{node}")) {
                link.update(|s| {
                    if !s.connected {
                        s.connected_since = Some(Timestamp::now());
                        s.connections += 1;
                    }
                    s.connected = true;
                    s.detector = Some(format!("detector@{node}"));
                    s.last_heartbeat_at = Some(Timestamp::now());
                    s.last_error = None;
                    s.stats = Some(stats);
                });
            }
        }
    }
}

/// A detector heard on NATS whose heartbeats stopped shows as disconnected.
/// The consumer's next message, or why the session ends.
fn received<E: std::fmt::Display>(
    item: Option<Result<jetstream::Message, E>>,
) -> Result<jetstream::Message, FollowError> {
    match item {
        Some(Ok(message)) => Ok(message),
        Some(Err(e)) => Err(ClusterError::Request(e.to_string()).into()),
        None => Err(ClusterError::Request("the consumer ended".into()).into()),
    }
}

fn mark_silent_detectors(links: &Links) {
    let now = Timestamp::now().unix_ms();
    for status in links.statuses() {
        let silent = status.last_heartbeat_at.is_some_and(|at| now - at.unix_ms() > HEARTBEAT_STALE.as_millis() as i64);
        if !(status.connected && status.socket.starts_with("nats:") && silent) {
            continue;
        }
        if let Some(link) = links.named(&status.socket) {
            link.update(|s| {
                s.connected = false;
                s.last_error = Some(format!("no heartbeat for more than {}s", HEARTBEAT_STALE.as_secs()));
            });
        }
    }
}

/// Why one session of following the stream ended.
#[derive(Debug, thiserror::Error)]
enum FollowError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("the copy's database: {0}")]
    Db(#[from] DbError),
}
