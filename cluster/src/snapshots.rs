//! Snapshots in cluster mode (SPEC §10): a JetStream object store bucket
//! beside the stream, one object per snapshot file, named by the
//! `image_path` the event stores (`snapshots/<day>/<event>-<n>.jpg`).
//!
//! A detector puts a snapshot into the bucket before it publishes the
//! change naming it, so a webserver that has applied a change can fetch
//! its picture from any host. A snapshot file is written once under a new
//! name for every new picture of an event, so an object never changes
//! once put: webservers may cache it forever.
//!
//! The bucket keeps objects as long as the stream keeps changes
//! (`max_age` from retention); it has no byte limit, because an object
//! store refuses new objects when full rather than dropping old ones, and
//! a full bucket must not stop the changes.

use async_nats::jetstream::{self, object_store};
use shared::config::MAX_SNAPSHOT_BYTES;
use tokio::io::AsyncReadExt;

use crate::stream::{ClusterError, StreamSettings, update_stream};

/// The bucket of one stream's snapshots.
#[derive(Clone)]
pub struct Snapshots {
    store: object_store::ObjectStore,
    bucket: String,
    js: jetstream::Context,
}

impl std::fmt::Debug for Snapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshots").field("bucket", &self.bucket).finish_non_exhaustive()
    }
}

impl StreamSettings {
    /// The bucket's name: `<stream>_snapshots`.
    pub fn snapshot_bucket(&self) -> String {
        format!("{}_snapshots", self.name)
    }

    /// Opens the snapshot bucket, creating it when absent (with the
    /// stream's replicas and age limit), and sets this process's age
    /// limit on it.
    pub async fn ensure_snapshots(&self, js: &jetstream::Context) -> Result<Snapshots, ClusterError> {
        let bucket = self.snapshot_bucket();
        let failed = |reason: String| ClusterError::Stream { name: bucket_stream(&bucket), reason };
        let store = match js.get_object_store(&bucket).await {
            Ok(store) => store,
            Err(_) => js
                .create_object_store(object_store::Config {
                    bucket: bucket.clone(),
                    description: Some(format!("Lookout snapshots of stream {}", self.name)),
                    max_age: self.limits.map(|l| l.max_age).unwrap_or_default(),
                    storage: jetstream::stream::StorageType::File,
                    num_replicas: self.replicas,
                    ..Default::default()
                })
                .await
                .map_err(|e| failed(e.to_string()))?,
        };
        let snapshots = Snapshots { store, bucket: bucket.clone(), js: js.clone() };
        if let Some(limits) = &self.limits {
            let stream = js.get_stream(bucket_stream(&bucket)).await.map_err(|e| failed(e.to_string()))?;
            let mut config = stream.cached_info().config.clone();
            if config.max_age != limits.max_age {
                config.max_age = limits.max_age;
                update_stream(js, &bucket_stream(&bucket), config).await?;
            }
        }
        Ok(snapshots)
    }
}

/// The stream behind an object store bucket.
fn bucket_stream(bucket: &str) -> String {
    format!("OBJ_{bucket}")
}

impl Snapshots {
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Stores `bytes` as `name`, replacing any object of that name.
    pub async fn put(&self, name: &str, bytes: &[u8]) -> Result<(), ClusterError> {
        let mut reader = bytes;
        self.store
            .put(name, &mut reader)
            .await
            .map(drop)
            .map_err(|e| ClusterError::Request(format!("snapshot {name} into bucket {}: {e}", self.bucket)))
    }

    /// The object `name`, or `None` when the bucket has none (never put, or
    /// removed by the age limit).
    pub async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, ClusterError> {
        let failed = |e: &dyn std::fmt::Display| {
            ClusterError::Request(format!("snapshot {name} from bucket {}: {e}", self.bucket))
        };
        let object = match self.store.get(name).await {
            Ok(object) => object,
            Err(e) if e.kind() == object_store::GetErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(failed(&e)),
        };
        if object.info().size as u64 > MAX_SNAPSHOT_BYTES {
            return Err(failed(&format!("{} bytes, more than a snapshot may be", object.info().size)));
        }
        let mut bytes = Vec::with_capacity(object.info().size);
        object.take(MAX_SNAPSHOT_BYTES).read_to_end(&mut bytes).await.map_err(|e| failed(&e))?;
        Ok(Some(bytes))
    }

    /// Bytes the bucket holds, as its stream reports them.
    pub async fn stored_bytes(&self) -> Result<u64, ClusterError> {
        let stream =
            self.js.get_stream(bucket_stream(&self.bucket)).await.map_err(|e| ClusterError::Request(e.to_string()))?;
        Ok(stream.cached_info().state.bytes)
    }
}
