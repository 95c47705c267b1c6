//! Async access to the shared SQLite store, on threads of its own.
//!
//! SQLite calls block, so they never run on the async threads. A [`Db`] is
//! a set of connections, each owned by its own OS thread, that take jobs
//! from one queue. The webserver opens separate `Db`s for separate duties —
//! REST (readers plus the one writer), WebSocket catch-up, the sequencer's
//! page reads and the text indexer — so no REST query, however heavy,
//! shares a queue, a connection or a thread with the live path.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use shared::Store;
use shared::store::StoreError;
use tokio::sync::oneshot;

/// Why a database call did not return a result.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database worker failed: {0}")]
    Worker(String),
    #[error("cannot start a database thread: {0}")]
    Thread(std::io::Error),
}

type Job = Box<dyn FnOnce(&mut Store) + Send>;

/// Connections that share one job queue, a thread each.
#[derive(Debug)]
struct Workers {
    jobs: mpsc::Sender<Job>,
}

impl Workers {
    fn start(path: &Path, name: &str, connections: usize) -> Result<Self, DbError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..connections.max(1) {
            let mut store = Store::open(path)?;
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("db-{name}-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        // A panicking job drops its reply sender (its caller
                        // gets an error); the connection lives on.
                        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut store)));
                    }
                })
                .map_err(DbError::Thread)?;
        }
        Ok(Self { jobs })
    }

    async fn run<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, result) = oneshot::channel();
        self.jobs
            .send(Box::new(move |store| {
                let _ = reply.send(f(store));
            }))
            .map_err(|_| DbError::Worker("database workers stopped".into()))?;
        Ok(result.await.map_err(|_| DbError::Worker("database call panicked".into()))??)
    }
}

#[derive(Debug, Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The most recent failure, for `/api/health`.
    last_error: Mutex<Option<(Instant, String)>>,
    readers: Workers,
    writer: Option<Workers>,
}

impl Db {
    /// Opens `readers` reader connections to `path` and, with `writer`, one
    /// writer connection; `name` names their threads.
    pub fn open(path: &Path, name: &str, readers: usize, writer: bool) -> Result<Self, DbError> {
        let readers = Workers::start(path, name, readers)?;
        let writer = writer.then(|| Workers::start(path, &format!("{name}-writer"), 1)).transpose()?;
        Ok(Self { inner: Arc::new(Inner { last_error: Mutex::new(None), readers, writer }) })
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
        let result = self.inner.readers.run(move |store| f(store)).await;
        self.note(result)
    }

    /// Runs `f` with the writer connection.
    pub async fn write<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    {
        let result = match &self.inner.writer {
            Some(writer) => writer.run(f).await,
            None => Err(DbError::Worker("this database handle is read-only".into())),
        };
        self.note(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_run_on_their_own_threads_and_survive_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("events.db"), "test", 2, true).expect("open");
        let thread = db.read(|_| Ok(std::thread::current().name().map(str::to_owned))).await.expect("read");
        assert!(thread.is_some_and(|name| name.starts_with("db-test-")));
        let panicked: Result<(), DbError> = db.read(|_| panic!("boom")).await;
        assert!(matches!(panicked, Err(DbError::Worker(_))));
        assert_eq!(db.read(|s| s.head_seq()).await.expect("still works"), 0);
        let read_only = Db::open(&dir.path().join("events.db"), "ro", 1, false).expect("open");
        assert!(read_only.write(|s| s.head_seq()).await.is_err());
    }
}
