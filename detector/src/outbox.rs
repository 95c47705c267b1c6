//! Cluster mode's publisher (SPEC §10): the local database is the outbox of
//! the JetStream stream.
//!
//! ```text
//!  event manager ── commit ──► SQLite ──► wake ──► outbox task ── publish, await ack ──► stream
//!                                                    │  put its snapshot first ──────────► bucket <stream>_snapshots
//!                                                    │  record how far (stream_outbox)
//!                                                    └─ heartbeat ─► lookout.heartbeat.<node>
//! ```
//!
//! Every change is committed first (the event manager does that, as without
//! NATS); this task then reads the changes the stream lacks, oldest first,
//! and publishes each on `lookout.changes.<node>.<camera>`, one at a time:
//! the next is sent only once the stream acknowledged the one before, so
//! the stream holds this node's changes in commit order with no hole, even
//! when a connection drops mid-flight.
//!
//! **Exactly once.** This node is the only writer of its subjects. At the
//! start of every session (start-up, and after any failure) the last message
//! on them says, by its `Lookout-Outbox` and `Lookout-Local-Seq` headers,
//! how far this database reached; the local record (`stream_outbox`, kept
//! after each acknowledged batch) covers a stream whose old messages its
//! limits removed. Publishing resumes after the higher of the two. A copy
//! re-sent after a lost acknowledgement carries the same `Nats-Msg-Id`, which
//! the stream drops as a duplicate.
//!
//! **Snapshots first.** A change naming a snapshot the bucket does not yet
//! have from this session puts the file there before the change is
//! published, so no webserver ever applies a change whose picture it
//! cannot fetch. A failed put is a failed session (retried, in order);
//! a file that is gone (retention deleted it while NATS was away) is
//! logged and the change goes out without its picture: the change matters
//! more than the picture.
//!
//! NATS unreachable: nothing waits on this task. Detection and commits go
//! on; the task retries with capped back-off, its state (`degraded` in the
//! webservers' health) is in the heartbeat, and when NATS returns it
//! catches up in order.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use cluster::{ClusterError, Limits, NatsArgs, Snapshots, StreamSettings, message, stream, subjects};
use shared::config::DataDir;
use shared::retention::Policy;
use shared::wire::OutboxStatus;
use shared::{Change, ChangeKind, Store};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::hub::Publisher;
use crate::stats::Stats;

/// Changes read from the database at once.
const BATCH: usize = 256;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often the database is read even when nobody woke the task.
const POLL: Duration = Duration::from_secs(1);
/// How long shutdown waits for the stream to take what is committed.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long shutdown waits to send the last heartbeat.
const FAREWELL_TIMEOUT: Duration = Duration::from_secs(1);
/// Events whose last snapshot put is remembered; past this the memory is
/// dropped (a snapshot put twice costs a little, never a wrong picture).
const REMEMBERED_SNAPSHOTS: usize = 10_000;

/// Wakes the outbox task after each commit; the task reads the database,
/// so a wake is only a hint and never carries the change.
#[derive(Debug, Default)]
pub struct Wake(Notify);

impl Publisher for Wake {
    fn publish_change(&self, _change: &Change) {
        self.0.notify_one();
    }
}

/// What the task needs, fixed at start.
#[derive(Debug)]
pub struct Outbox {
    pub nats: NatsArgs,
    pub data_dir: DataDir,
    /// The retention the stream's limits come from.
    pub retention: Policy,
    pub stats: Arc<Stats>,
    pub heartbeat: Duration,
    pub wake: Arc<Wake>,
    /// Test hook: exit without a word right after the stream has this
    /// many changes and before their acknowledgements are read, as a
    /// crash between publish and ack would.
    pub crash_after: Option<u64>,
}

impl Outbox {
    /// The client, connecting in the background (an absent NATS is waited
    /// out); only settings that cannot work (a credentials file that cannot
    /// be read) fail here, at start.
    pub async fn connect(&self) -> Result<async_nats::Client, ClusterError> {
        self.nats.connect(&format!("lookout detector {}", self.nats.node_id())).await
    }

    /// The stream as this detector wants it: its limits are this
    /// detector's retention (see [`cluster::stream`]).
    fn stream_settings(&self) -> StreamSettings {
        let limits = Limits { max_age: self.retention.longest(), max_bytes: self.retention.max_disk };
        StreamSettings { limits: Some(limits), ..self.nats.stream_settings() }
    }

    /// Publishes until `stop`, then what is left for up to [`DRAIN_TIMEOUT`].
    pub async fn run(self, client: async_nats::Client, stop: CancellationToken) {
        let node = self.nats.node_id();
        let js = jetstream::new(client.clone());
        let heartbeats = tokio::spawn(heartbeat(client.clone(), node.clone(), self.stats.clone(), self.heartbeat));
        let mut session = Session::new(&self, node.clone());
        let mut backoff = FIRST_BACKOFF;
        loop {
            // A stop does not wait for an acknowledgement or a put in
            // flight (NATS may be gone): leaving mid-publish is safe, as a
            // crash is, since the drain below syncs with the stream again.
            let ended = tokio::select! {
                ended = session.publish(&js, &self, &stop) => ended,
                _ = stop.cancelled() => Ok(()),
            };
            match ended {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %e, pending = session.pending(), "cannot reach the stream; committing locally and retrying");
                    session.set_status(|s| {
                        s.connected = false;
                        s.last_error = Some(e.to_string());
                    });
                }
            }
            if stop.is_cancelled() {
                break;
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        // The last changes, if the stream is there to take them.
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, session.publish(&js, &self, &CancellationToken::new())).await;
        if !matches!(drained, Ok(Ok(()))) {
            tracing::warn!(
                pending = session.pending(),
                "stopping with changes the stream has not taken; they go out at the next start"
            );
        }
        heartbeats.abort();
        // A last heartbeat, if NATS is there: a flush waits for a
        // reconnection, and stopping must not.
        let farewell = async {
            heartbeat_once(&client, &node, &self.stats).await;
            client.flush().await
        };
        if tokio::time::timeout(FAREWELL_TIMEOUT, farewell).await.is_err() {
            tracing::debug!("last heartbeat not sent: NATS is not there");
        }
    }
}

/// One connection's worth of state, kept across sessions.
struct Session {
    node: String,
    stream_name: String,
    store: Option<Store>,
    stats: Arc<Stats>,
    through: i64,
    published: AtomicU64,
    /// The snapshot each event's last put stored, this process.
    snapshots_put: HashMap<String, String>,
}

impl Session {
    fn new(outbox: &Outbox, node: String) -> Self {
        Self {
            node,
            stream_name: outbox.nats.nats_stream.clone(),
            store: None,
            stats: outbox.stats.clone(),
            through: 0,
            published: AtomicU64::new(0),
            snapshots_put: HashMap::new(),
        }
    }

    fn pending(&self) -> u64 {
        let head = self.store.as_ref().and_then(|s| s.head_seq().ok()).unwrap_or(self.through);
        self.store.as_ref().and_then(|s| s.count_changes(self.through, head).ok()).unwrap_or(0)
    }

    fn set_status(&self, edit: impl FnOnce(&mut OutboxStatus)) {
        if let Ok(mut status) = self.stats.outbox.lock() {
            let status = status.get_or_insert_with(|| OutboxStatus { node: self.node.clone(), ..Default::default() });
            edit(status);
        }
    }

    /// Syncs with the stream, then publishes until `stop` (`Ok`) or a
    /// failure (`Err`). With `stop` already cancelled, it publishes what is
    /// committed and returns.
    async fn publish(
        &mut self,
        js: &jetstream::Context,
        outbox: &Outbox,
        stop: &CancellationToken,
    ) -> Result<(), ClusterError> {
        let settings = outbox.stream_settings();
        let stream = settings.ensure(js).await?;
        let snapshots = settings.ensure_snapshots(js).await?;
        if self.store.is_none() {
            self.store =
                Some(Store::open(outbox.data_dir.database()).map_err(|e| ClusterError::Request(e.to_string()))?);
        }
        let record = self.store()?.outbox(&self.stream_name).map_err(store_error)?;
        let last = stream::last_message(&stream, &subjects::detector_filter(&self.node)).await?;
        let mut stream_seq = record.stream_seq;
        self.through = record.local_seq;
        if let Some(last) = last {
            match message::decode(Some(&last.headers), &last.payload).map(|d| d.origin) {
                Ok(Some(origin)) if origin.outbox == record.outbox_id => {
                    if origin.local_seq > self.through {
                        (self.through, stream_seq) = (origin.local_seq, last.sequence);
                    }
                }
                _ => tracing::warn!(
                    node = %self.node,
                    subject = %last.subject,
                    "the last change on this node's subjects is not from this database: is --node-id unique to this detector?"
                ),
            }
        }
        self.set_status(|s| {
            s.connected = true;
            s.last_error = None;
            s.published_through = self.through;
            s.stream_seq = stream_seq;
        });
        tracing::info!(stream = %self.stream_name, node = %self.node, through = self.through, "outbox in step with the stream");
        loop {
            let changes = self.store()?.after_seq(self.through, BATCH).map_err(store_error)?;
            if changes.is_empty() {
                self.set_status(|s| s.pending = 0);
                if stop.is_cancelled() {
                    return Ok(());
                }
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = outbox.wake.0.notified() => {}
                    _ = tokio::time::sleep(POLL) => {}
                }
                continue;
            }
            for change in &changes {
                self.put_snapshot(&snapshots, &outbox.data_dir, change).await?;
                let subject = subjects::detector_changes(&self.node, &change.event.camera_id);
                let (headers, body) = message::encode_outbox_change(change, &record.outbox_id);
                let ack = js
                    .publish_with_headers(subject, headers, body)
                    .await
                    .map_err(|e| ClusterError::Request(format!("publish: {e}")))?;
                let published = self.published.fetch_add(1, Ordering::Relaxed) + 1;
                if outbox.crash_after == Some(published) {
                    let _ = js.client().flush().await;
                    tracing::error!("test hook: exiting between publish and ack");
                    std::process::exit(86);
                }
                let ack = ack.await.map_err(|e| ClusterError::Request(format!("acknowledgement: {e}")))?;
                (self.through, stream_seq) = (change.seq(), ack.sequence);
            }
            self.store()?.record_published(&self.stream_name, self.through, stream_seq).map_err(store_error)?;
            let pending = self.pending();
            let published = self.published.load(Ordering::Relaxed);
            self.set_status(|s| {
                (s.published_through, s.stream_seq, s.pending, s.published) =
                    (self.through, stream_seq, pending, published);
            });
        }
    }

    /// Puts the snapshot `change` names into the bucket, unless this
    /// session already put it.
    async fn put_snapshot(
        &mut self,
        snapshots: &Snapshots,
        data_dir: &DataDir,
        change: &Change,
    ) -> Result<(), ClusterError> {
        let event = &change.event;
        let Some(name) = event.image_path.as_deref() else { return Ok(()) };
        if self.snapshots_put.get(&event.event_id).is_some_and(|put| put == name) {
            return Ok(());
        }
        let read = match data_dir.resolve_snapshot(name) {
            Some(path) => tokio::fs::read(&path).await.map_err(|e| format!("{}: {e}", path.display())),
            None => Err("not a snapshot path".to_owned()),
        };
        match read {
            Ok(bytes) => snapshots.put(name, &bytes).await?,
            Err(e) => tracing::warn!(
                event_id = %event.event_id,
                image_path = name,
                "snapshot not put into the bucket, the change goes out without it: {e}"
            ),
        }
        if self.snapshots_put.len() >= REMEMBERED_SNAPSHOTS {
            self.snapshots_put.clear();
        }
        if change.kind == ChangeKind::End {
            self.snapshots_put.remove(&event.event_id);
        } else {
            self.snapshots_put.insert(event.event_id.clone(), name.to_owned());
        }
        Ok(())
    }

    fn store(&self) -> Result<&Store, ClusterError> {
        self.store.as_ref().ok_or_else(|| ClusterError::Request("outbox database not open".into()))
    }
}

fn store_error(e: shared::store::StoreError) -> ClusterError {
    ClusterError::Request(format!("outbox database: {e}"))
}

/// The detector's heartbeat on core NATS, for every webserver's health.
async fn heartbeat(client: async_nats::Client, node: String, stats: Arc<Stats>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        heartbeat_once(&client, &node, &stats).await;
    }
}

async fn heartbeat_once(client: &async_nats::Client, node: &str, stats: &Stats) {
    // A heartbeat is a struct of numbers and strings: it serialises.
    let body = serde_json::to_vec(&stats.snapshot()).unwrap_or_default();
    if let Err(e) = client.publish(subjects::heartbeat(node), body.into()).await {
        tracing::debug!(error = %e, "heartbeat not sent");
    }
}
