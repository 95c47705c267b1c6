//! Reloading cameras without a restart (SPEC §11): on SIGHUP — what
//! `systemctl reload` sends — and, with `--watch-config`, when the settings
//! file changes, the file is read again with the same command line, the
//! cameras are checked like at start, and the new set goes to the camera
//! supervisor ([`crate::camera::watch_all`]), which restarts only what
//! changed. A file that does not load or check is refused with a log line
//! and the running cameras are kept.
//!
//! Only cameras are reloaded; every other setting takes effect at the next
//! start (the log line says so).

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use crate::camera::detect::SharedModel;
use crate::camera::{self, Cameras};
use crate::cli::{Args, SCHEMA};

/// How often `--watch-config` looks at the file.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// What a reload reads again: the same command line, the same file.
#[derive(Debug)]
pub struct Reloader {
    argv: Vec<OsString>,
    /// `None` when no file was read at start: then there is nothing to
    /// re-read (the command line cannot change).
    file: Option<PathBuf>,
}

/// A request to reload.
pub type Hangups = mpsc::Receiver<()>;

/// Installs the SIGHUP handler (and the file watcher) feeding one channel;
/// requests that arrive while one waits are folded into it.
pub fn hangups(reloader: &Reloader, watch: bool) -> std::io::Result<Hangups> {
    let (tx, rx) = mpsc::channel(1);
    let on_signal = tx.clone();
    shared::process::handle_hangups(move || {
        let _ = on_signal.try_send(());
    })?;
    match (&reloader.file, watch) {
        (Some(file), true) => {
            tokio::spawn(watch_file(file.clone(), tx));
        }
        (None, true) => tracing::warn!("--watch-config: no settings file was read, so there is nothing to watch"),
        _ => {}
    }
    Ok(rx)
}

/// Asks for a reload whenever the file's modification time or length changes.
async fn watch_file(file: PathBuf, reload: mpsc::Sender<()>) {
    let stamp = |file: &PathBuf| -> Option<(SystemTime, u64)> {
        let meta = std::fs::metadata(file).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    };
    let mut last = stamp(&file);
    let mut ticks = tokio::time::interval(WATCH_EVERY);
    loop {
        ticks.tick().await;
        let now = stamp(&file);
        if now != last && now.is_some() {
            last = now;
            tracing::info!(file = %file.display(), "settings file changed");
            if reload.send(()).await.is_err() {
                return;
            }
        }
    }
}

/// Logs each request and does nothing (when nothing can be reloaded).
pub async fn ignore(mut hangups: Hangups, why: &'static str) {
    while hangups.recv().await.is_some() {
        tracing::info!("reload asked: {why}; nothing changed");
    }
}

impl Reloader {
    pub fn new(argv: Vec<OsString>, file: Option<PathBuf>) -> Self {
        Self { argv, file }
    }

    /// Answers each request with a new set of cameras on `cameras`, the
    /// object model loaded once and then shared.
    pub async fn serve(
        self,
        mut hangups: Hangups,
        mut model: Option<Arc<SharedModel>>,
        cameras: mpsc::Sender<Cameras>,
    ) {
        while hangups.recv().await.is_some() {
            let Some(file) = &self.file else {
                tracing::info!(
                    "reload asked: no settings file was read, the cameras come from the command line; nothing changed"
                );
                continue;
            };
            match self.cameras(model.clone()).await {
                Ok(next) => {
                    model = next.model.clone().or(model);
                    tracing::info!(file = %file.display(), cameras = next.plans.len(), "reloading cameras; other settings take effect at the next start");
                    if cameras.send(next).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::error!(file = %file.display(), "reload refused, the running cameras are kept: {e:#}");
                }
            }
        }
    }

    async fn cameras(&self, model: Option<Arc<SharedModel>>) -> anyhow::Result<Cameras> {
        let loaded = shared::settings::load::<Args>(&self.argv, &SCHEMA, self.file.as_deref())?;
        loaded.args.check_cameras().map_err(anyhow::Error::msg)?;
        camera::check_all(&loaded.args, model).await
    }
}
