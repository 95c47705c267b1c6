//! The stream every change goes through: created when absent, checked when
//! present, and the one read both binaries need of it (the last message on
//! a subject filter).
//!
//! **Limits.** The detectors own the stream's limits: their retention
//! (SPEC §11) becomes `max_age` (the longest rule: a change is kept as long
//! as any event it may belong to) and `max_bytes` (`retain.max_disk`).
//! A detector sets them when it creates the stream and updates them when
//! they differ; a webserver has no retention of its own and leaves them
//! as they are ([`StreamSettings::limits`] is `None`), as does anyone who
//! set them with the `nats` CLI before a detector with other settings
//! started.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use crate::subjects;

/// What the stream must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSettings {
    pub name: String,
    pub replicas: usize,
    /// The limits this process sets, or `None` to keep the stream's.
    pub limits: Option<Limits>,
}

/// How long and how much the stream (and the snapshot bucket) keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_age: Duration,
    pub max_bytes: Option<u64>,
}

impl Limits {
    fn max_bytes(&self) -> i64 {
        self.max_bytes.map_or(-1, |b| i64::try_from(b).unwrap_or(i64::MAX))
    }

    fn differ(&self, config: &stream::Config) -> bool {
        config.max_age != self.max_age || config.max_bytes != self.max_bytes()
    }

    fn apply(&self, config: &mut stream::Config) {
        config.max_age = self.max_age;
        config.max_bytes = self.max_bytes();
        // JetStream refuses a dedup window longer than the age limit.
        if !self.max_age.is_zero() && config.duplicate_window > self.max_age {
            config.duplicate_window = self.max_age;
        }
    }
}

/// Everything that can go wrong with the cluster link.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot connect to NATS at {servers}: {reason}")]
    Connect { servers: String, reason: String },
    #[error("cannot read NATS credentials file {path}: {reason}")]
    Credentials { path: String, reason: String },
    #[error("cannot create or open JetStream stream {name}: {reason} (is JetStream enabled on the server?)")]
    Stream { name: String, reason: String },
    #[error(
        "JetStream stream {name} exists with {found}, but Lookout needs {wanted}: \
         change --nats-stream or --nats-replicas, or fix the stream (nats stream edit {name})"
    )]
    Mismatch { name: String, found: String, wanted: String },
    #[error("JetStream request failed: {0}")]
    Request(String),
}

impl StreamSettings {
    fn config(&self) -> stream::Config {
        let mut config = stream::Config {
            name: self.name.clone(),
            subjects: vec![subjects::CHANGES.to_owned()],
            storage: stream::StorageType::File,
            num_replicas: self.replicas,
            // Several writers (a detector per host, every webserver's API):
            // none may discard another's changes.
            discard: stream::DiscardPolicy::Old,
            ..Default::default()
        };
        if let Some(limits) = &self.limits {
            limits.apply(&mut config);
        }
        config
    }

    /// Opens the stream, creating it when absent; refuses one whose
    /// subjects, storage or replicas are not these, and sets this
    /// process's limits on it.
    pub async fn ensure(&self, js: &jetstream::Context) -> Result<stream::Stream, ClusterError> {
        let wanted = self.config();
        let stream = js
            .get_or_create_stream(wanted.clone())
            .await
            .map_err(|e| ClusterError::Stream { name: self.name.clone(), reason: e.to_string() })?;
        let found = &stream.cached_info().config;
        let describe = |c: &stream::Config| {
            format!("subjects {:?}, {:?} storage, {} replica(s)", c.subjects, c.storage, c.num_replicas.max(1))
        };
        if found.subjects != wanted.subjects
            || found.storage != wanted.storage
            || found.num_replicas.max(1) != wanted.num_replicas
        {
            return Err(ClusterError::Mismatch {
                name: self.name.clone(),
                found: describe(found),
                wanted: describe(&wanted),
            });
        }
        match &self.limits {
            Some(limits) if limits.differ(found) => {
                let mut config = found.clone();
                limits.apply(&mut config);
                tracing::info!(
                    stream = %self.name,
                    max_age_secs = limits.max_age.as_secs(),
                    max_bytes = limits.max_bytes(),
                    "setting the stream's limits from this detector's retention"
                );
                update_stream(js, &self.name, config).await?;
                js.get_stream(&self.name)
                    .await
                    .map_err(|e| ClusterError::Stream { name: self.name.clone(), reason: e.to_string() })
            }
            _ => Ok(stream),
        }
    }
}

/// Changes a stream's configuration (its limits).
pub(crate) async fn update_stream(
    js: &jetstream::Context,
    name: &str,
    config: stream::Config,
) -> Result<(), ClusterError> {
    js.update_stream(config)
        .await
        .map(drop)
        .map_err(|e| ClusterError::Stream { name: name.to_owned(), reason: format!("cannot set its limits: {e}") })
}

/// The last message whose subject matches `filter` (wildcards allowed),
/// or `None` when the stream holds none.
pub async fn last_message(
    stream: &stream::Stream,
    filter: &str,
) -> Result<Option<jetstream::message::StreamMessage>, ClusterError> {
    match stream.get_last_raw_message_by_subject(filter).await {
        Ok(message) => Ok(Some(message)),
        Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
        Err(e) => Err(ClusterError::Request(e.to_string())),
    }
}
