//! `detector`: Lookout's camera side (the design's `main.py`).
//!
//! It produces events — from real cameras (ffmpeg sources, motion detection,
//! snapshots) or from simulated ones with `--dry-run` — and hands each to the
//! event manager, which commits it to SQLite, appends it to the logs and
//! publishes it on the detector socket.
//!
//! Layout:
//!
//! * [`cli`] — the command line.
//! * [`camera`] — real cameras: one supervised task per camera, ffmpeg
//!   sources, the analysis pipeline (motion stage, episodes, snapshots).
//! * [`simulate`] — dry-run cameras and event pacing.
//! * [`describe`] — the one-sentence description of each event.
//! * [`manager`] — commit → log → publish, on its own thread.
//! * [`hub`] — the socket server and its subscribers.
//! * [`lane`] — one subscriber's outgoing frames: written at once when idle,
//!   queued otherwise.
//! * [`socket_file`] — stale/live/foreign socket-path checks.
//! * [`stats`] — counters for heartbeats and the session summary.
//!
//! The frame analysis itself (motion detection, episodes, JPEG) is the
//! `vision` crate; this binary runs it and does the I/O around it.
//!
//! Shutdown order matters: stop producing → let the manager finish every
//! event already handed to it → stop the hub (subscribers drain, get `Bye`)
//! → remove the socket file → print the summary.

mod camera;
mod cli;
mod describe;
mod hub;
mod lane;
mod manager;
mod simulate;
mod socket_file;
mod stats;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use shared::Store;
use shared::wire::Frame;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::camera::pipeline::{MotionStage, Pipeline, Stage};
use crate::camera::source::{DecodeSettings, SourceKind};
use crate::camera::{CameraEnd, CameraSpec};
use crate::cli::{Args, LogFormat};
use crate::hub::{Hub, Publisher};
use crate::manager::EventManager;
use crate::simulate::{DEFAULT_CAMERAS, Pacer, SimCamera};
use crate::stats::Stats;
use shared::redact::SecretUrl;

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(message) = args.check_cameras() {
        Args::command().error(clap::error::ErrorKind::MissingRequiredArgument, message).exit();
    }
    if let Err(message) = shared::process::init_logging(args.log_level.as_deref(), args.log_format == LogFormat::Json) {
        Args::command().error(clap::error::ErrorKind::InvalidValue, message).exit();
    }
    match shared::process::run_async(run(args)) {
        Some(summary) => {
            print!("{summary}");
            if summary.failed_cameras.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        None => ExitCode::FAILURE,
    }
}

async fn run(args: Args) -> anyhow::Result<Summary> {
    // First of all: a SIGTERM during start-up must mean "stop cleanly", not
    // the default "die at once".
    let signal = shared::process::shutdown_signal().context("cannot install signal handlers")?;
    let started = Instant::now();
    let data_dir = args.data_dir();
    let real_cameras = real_cameras(&args).await?;
    data_dir.create().with_context(|| format!("cannot create data directory {}", data_dir.root().display()))?;
    let store = Store::open(data_dir.database())?;

    let camera_ids: Vec<String> = if args.dry_run && args.cameras.is_empty() {
        DEFAULT_CAMERAS.iter().map(|&c| c.to_owned()).collect()
    } else {
        args.cameras.iter().map(|c| c.id.clone()).collect()
    };
    let stats = Arc::new(Stats::new(camera_ids.iter().cloned()));
    let producer = format!("detector:{}", std::process::id());

    let socket = args.socket_path();
    if socket_file::prepare(&socket)? {
        tracing::warn!(socket = %socket.display(), "replaced a stale socket file left by an earlier run");
    }
    let listener = hub::bind(&socket).with_context(|| format!("cannot listen on {}", socket.display()))?;
    let key = shared::wire::WireKey::load_or_create(&data_dir.wire_key())?;
    let hub = Hub::new(producer.clone(), args.subscriber_queue as usize, stats.clone(), key);
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        let which = signal.await;
        tracing::info!(signal = which, "shutting down: finishing the events in hand");
        trigger.cancel();
    });
    let hub_stop = CancellationToken::new();
    let server = tokio::spawn(hub::serve(listener, hub.clone(), hub_stop.clone(), socket.clone()));
    let heartbeat = tokio::spawn(heartbeat(hub.clone(), stats.clone(), args.heartbeat_secs, hub_stop.clone()));

    let (events_tx, events_rx) = mpsc::channel(64);
    let publishers: Vec<Arc<dyn Publisher>> = vec![hub.clone()];
    let manager = EventManager::open(&data_dir, store, publishers, stats.clone())?;
    let manager_thread = std::thread::Builder::new()
        .name("event-manager".into())
        .spawn(move || manager.run(events_rx))
        .context("cannot start the event manager thread")?;
    let failed_cameras = if args.dry_run {
        tracing::info!(
            data_dir = %data_dir.root().display(),
            cameras = ?camera_ids,
            rate = args.rate,
            count = ?args.count,
            "dry run: simulating cameras"
        );
        let cameras: Vec<SimCamera> = camera_ids.iter().map(|id| SimCamera::new(id)).collect();
        simulate_until_done(&args, &cameras, &hub, &stats, &producer, events_tx, &shutdown).await;
        Vec::new()
    } else {
        tracing::info!(data_dir = %data_dir.root().display(), cameras = ?camera_ids, fps = args.detect_fps, "watching cameras");
        watch_cameras(&args, real_cameras, &data_dir, &stats, &producer, events_tx, &shutdown).await
    };

    // The sender is gone: the manager finishes what it holds, then returns.
    tokio::task::spawn_blocking(move || manager_thread.join())
        .await
        .context("event manager task failed")?
        .map_err(|_| anyhow::anyhow!("the event manager thread panicked"))?;
    hub.publish(&Frame::Heartbeat(stats.snapshot()));
    hub_stop.cancel();
    let _ = tokio::join!(server, heartbeat);
    socket_file::remove(&socket);

    Ok(Summary { stats, elapsed: started.elapsed(), data_dir: data_dir.root().display().to_string(), failed_cameras })
}

/// The cameras to watch, checked before anything starts: ffmpeg runs and
/// every file source opens. Empty with `--dry-run`.
async fn real_cameras(args: &Args) -> anyhow::Result<Vec<CameraSpec>> {
    if args.dry_run {
        for camera in args.cameras.iter().filter(|c| c.source.is_some()) {
            tracing::warn!(camera = %camera.id, "--dry-run ignores camera sources; simulating it");
        }
        return Ok(Vec::new());
    }
    camera::source::check_ffmpeg(&args.ffmpeg).await.map_err(anyhow::Error::msg)?;
    let mut cameras = Vec::new();
    for camera in &args.cameras {
        let source = SourceKind::parse(camera.source.as_ref().map(SecretUrl::expose).unwrap_or_default());
        source.check().map_err(|e| anyhow::anyhow!("camera {}: {e}", camera.id))?;
        cameras.push(CameraSpec { id: camera.id.clone(), source });
    }
    Ok(cameras)
}

/// Runs one task per camera until every camera has ended (files) or
/// shutdown. Returns the cameras that failed, with why.
async fn watch_cameras(
    args: &Args,
    cameras: Vec<CameraSpec>,
    data_dir: &shared::config::DataDir,
    stats: &Arc<Stats>,
    producer: &str,
    events: mpsc::Sender<shared::NewEvent>,
    shutdown: &CancellationToken,
) -> Vec<(String, String)> {
    let decode =
        Arc::new(DecodeSettings { ffmpeg: args.ffmpeg.clone(), fps: args.detect_fps, width: args.detect_width });
    let mut tasks = tokio::task::JoinSet::new();
    for camera in cameras {
        let stages: Vec<Box<dyn Stage>> = vec![Box::new(MotionStage::new(args.motion.motion_config(&camera.id)))];
        let pipeline = Pipeline::new(
            &camera.id,
            producer,
            args.detect_fps,
            data_dir.clone(),
            stages,
            args.motion.episode_config(args.detect_fps),
            stats.clone(),
        );
        let id = camera.id.clone();
        let watch = camera::watch(
            camera,
            decode.clone(),
            args.loop_files,
            pipeline,
            events.clone(),
            stats.clone(),
            shutdown.clone(),
        );
        tasks.spawn(async move { (id, watch.await) });
    }
    drop(events);
    let mut failed = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((id, CameraEnd::Failed(why))) => failed.push((id, why)),
            Ok(_) => {}
            Err(e) => failed.push(("?".to_owned(), format!("camera task panicked: {e}"))),
        }
    }
    failed
}

/// Produces dry-run events until `--count`, or until shutdown is asked for.
async fn simulate_until_done(
    args: &Args,
    cameras: &[SimCamera],
    hub: &Hub,
    stats: &Stats,
    producer: &str,
    events: mpsc::Sender<shared::NewEvent>,
    shutdown: &CancellationToken,
) {
    if args.wait_subscribers > 0 {
        tracing::info!(n = args.wait_subscribers, "waiting for subscribers before producing events");
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = hub.wait_for_subscribers(args.wait_subscribers as usize) => {}
        }
    }
    let mut pacer = Pacer::new(args.rate);
    let mut frames_seen = vec![0u64; cameras.len()];
    let mut produced = 0u64;
    while args.count.is_none_or(|n| produced < n) {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = pacer.tick() => {}
        }
        let (index, new) = {
            let mut rng = rand::rng();
            let index = rand::Rng::random_range(&mut rng, 0..cameras.len());
            let mut new = cameras[index].event(producer, &mut rng);
            if args.payload_bytes > 0 {
                simulate::pad_to(&mut new, args.payload_bytes as usize, &mut rng);
            }
            (index, new)
        };
        let frames = cameras[index].frame_number();
        let inference = new.metadata.inference_ms.unwrap_or_default();
        stats.record_frames(&cameras[index].id, frames.saturating_sub(frames_seen[index]).max(1), inference);
        frames_seen[index] = frames;
        // Waits while the manager's backlog is full (the database refuses
        // writes): the simulation pauses rather than drop an event.
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            sent = events.send(new) => if sent.is_err() { break },
        }
        produced += 1;
    }
}

/// Publishes detector statistics every `interval` until `stop`.
async fn heartbeat(hub: Arc<Hub>, stats: Arc<Stats>, interval: std::time::Duration, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => hub.publish(&Frame::Heartbeat(stats.snapshot())),
        }
    }
}

/// What the detector prints on exit.
struct Summary {
    stats: Arc<Stats>,
    elapsed: std::time::Duration,
    data_dir: String,
    /// Cameras whose file could not be played, and why.
    failed_cameras: Vec<(String, String)>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::sync::atomic::Ordering::Relaxed;
        let s = &self.stats;
        let secs = self.elapsed.as_secs_f64();
        let events = s.events_created.load(Relaxed);
        writeln!(f, "Lookout detector session summary")?;
        writeln!(f, "  duration        {secs:.1} s")?;
        writeln!(f, "  events created  {events} ({:.2}/s)", events as f64 / secs.max(1e-9))?;
        let frames = s.frames_processed.load(Relaxed);
        writeln!(f, "  frames analysed {frames} ({:.2}/s)", frames as f64 / secs.max(1e-9))?;
        for (camera, n, state, last_error) in s.cameras() {
            let down = state.is_down();
            let state =
                serde_json::to_value(state).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            match last_error.filter(|_| down) {
                Some(why) => writeln!(f, "    {camera:<14}{n:<8}{state}: {why}")?,
                None => writeln!(f, "    {camera:<14}{n:<8}{state}")?,
            }
        }
        for (camera, why) in &self.failed_cameras {
            writeln!(f, "  camera {camera} failed: {why}")?;
        }
        writeln!(
            f,
            "  subscribers     {} served, {} dropped as too slow",
            s.subscribers_served.load(Relaxed),
            s.slow_subscribers_dropped.load(Relaxed)
        )?;
        writeln!(
            f,
            "  errors          {} refused commits, {} log write failures, {} events kept in pending.jsonl",
            s.store_errors.load(Relaxed),
            s.log_errors.load(Relaxed),
            s.backlog.load(Relaxed)
        )?;
        writeln!(f, "  data            {} (events.db, events.jsonl, events.log)", self.data_dir)
    }
}
