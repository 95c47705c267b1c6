//! Async access to the shared SQLite store.
//!
//! SQLite calls block, so each runs on tokio's blocking pool. One connection
//! writes (`POST /api/events`); a few others read (REST, WebSocket catch-up,
//! the sequencer), so a long catch-up never waits behind a write.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shared::Store;
use shared::store::StoreError;

/// Why a database call did not return a result.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database worker failed: {0}")]
    Worker(String),
}

#[derive(Debug, Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The most recent failure, for `/api/health`.
    last_error: Mutex<Option<(Instant, String)>>,
    writer: Mutex<Store>,
    readers: Vec<Mutex<Store>>,
    next_reader: AtomicUsize,
}

impl Db {
    /// Opens one writer and `readers` reader connections to `path`.
    pub fn open(path: &Path, readers: usize) -> Result<Self, StoreError> {
        let writer = Store::open(path)?;
        let readers = (0..readers.max(1)).map(|_| Store::open(path).map(Mutex::new)).collect::<Result<_, _>>()?;
        Ok(Self {
            inner: Arc::new(Inner {
                last_error: Mutex::new(None),
                writer: Mutex::new(writer),
                readers,
                next_reader: AtomicUsize::new(0),
            }),
        })
    }

    /// The latest failed call within `window`, if any.
    pub fn recent_error(&self, window: Duration) -> Option<String> {
        let last = self.inner.last_error.lock().ok()?;
        last.as_ref().filter(|(at, _)| at.elapsed() < window).map(|(_, e)| e.clone())
    }

    fn note<T>(&self, result: Result<T, DbError>) -> Result<T, DbError> {
        if let Err(e) = &result
            && let Ok(mut last) = self.inner.last_error.lock()
        {
            *last = Some((Instant::now(), e.to_string()));
        }
        result
    }

    /// Runs `f` with a reader connection.
    pub async fn read<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        let result = run_blocking(move || {
            let i = inner.next_reader.fetch_add(1, Ordering::Relaxed) % inner.readers.len();
            let store = inner.readers[i].lock().map_err(|_| DbError::Worker("reader lock poisoned".into()))?;
            Ok(f(&store)?)
        })
        .await;
        self.note(result)
    }

    /// Runs `f` with the writer connection.
    pub async fn write<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        let result = run_blocking(move || {
            let mut store = inner.writer.lock().map_err(|_| DbError::Worker("writer lock poisoned".into()))?;
            Ok(f(&mut store)?)
        })
        .await;
        self.note(result)
    }
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DbError> + Send + 'static,
) -> Result<T, DbError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| DbError::Worker(e.to_string()))?
}
