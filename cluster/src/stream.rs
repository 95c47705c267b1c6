//! The stream every change goes through: created when absent, checked when
//! present, and the one read both binaries need of it (the last message on
//! a subject filter).

use async_nats::jetstream::{self, stream};

use crate::subjects;

/// What the stream must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSettings {
    pub name: String,
    pub replicas: usize,
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
        stream::Config {
            name: self.name.clone(),
            subjects: vec![subjects::CHANGES.to_owned()],
            storage: stream::StorageType::File,
            num_replicas: self.replicas,
            // Several writers (a detector per host, every webserver's API):
            // none may discard another's changes.
            discard: stream::DiscardPolicy::Old,
            ..Default::default()
        }
    }

    /// Opens the stream, creating it when absent; refuses one whose
    /// subjects, storage or replicas are not these.
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
        Ok(stream)
    }
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
