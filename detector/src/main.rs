//! `detector`: Lookout's camera side (the design's `main.py`).
//!
//! It produces events — from simulated cameras with `--dry-run`, from real
//! ones later — and hands each to the event manager, which commits it to
//! SQLite, appends it to the logs and publishes it on the detector socket.
//!
//! Layout:
//!
//! * [`cli`] — the command line.
//! * [`simulate`] — dry-run cameras and event pacing.
//! * [`manager`] — commit → log → publish, on its own thread.
//! * [`hub`] — the socket server and per-subscriber queues.
//! * [`socket_file`] — stale/live/foreign socket-path checks.
//! * [`stats`] — counters for heartbeats and the session summary.
//!
//! Shutdown order matters: stop producing → let the manager finish every
//! event already handed to it → stop the hub (subscribers drain, get `Bye`)
//! → remove the socket file → print the summary.

mod cli;
mod hub;
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

use crate::cli::{Args, LogFormat};
use crate::hub::{Hub, Publisher};
use crate::manager::EventManager;
use crate::simulate::{DEFAULT_CAMERAS, Pacer, SimCamera};
use crate::stats::Stats;

fn main() -> ExitCode {
    let args = Args::parse();
    if !args.dry_run {
        Args::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "real camera sources are not implemented yet; run with --dry-run to simulate cameras",
            )
            .exit();
    }
    if let Err(message) = shared::process::init_logging(args.log_level.as_deref(), args.log_format == LogFormat::Json) {
        Args::command().error(clap::error::ErrorKind::InvalidValue, message).exit();
    }
    match shared::process::run_async(run(args)) {
        Some(summary) => {
            print!("{summary}");
            ExitCode::SUCCESS
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
    data_dir.create().with_context(|| format!("cannot create data directory {}", data_dir.root().display()))?;
    let store = Store::open(data_dir.database())?;

    let camera_ids: Vec<String> = if args.cameras.is_empty() {
        DEFAULT_CAMERAS.iter().map(|&c| c.to_owned()).collect()
    } else {
        for camera in args.cameras.iter().filter(|c| c.source.is_some()) {
            tracing::warn!(camera = %camera.id, "--dry-run ignores camera sources; simulating it");
        }
        args.cameras.iter().map(|c| c.id.clone()).collect()
    };
    let stats = Arc::new(Stats::new(camera_ids.iter().cloned()));
    let producer = format!("detector:{}", std::process::id());

    let socket = args.socket_path();
    if socket_file::prepare(&socket)? {
        tracing::warn!(socket = %socket.display(), "replaced a stale socket file left by an earlier run");
    }
    let listener = hub::bind(&socket).with_context(|| format!("cannot listen on {}", socket.display()))?;
    let hub = Hub::new(producer.clone(), args.subscriber_queue as usize, stats.clone());
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
    tracing::info!(
        data_dir = %data_dir.root().display(),
        cameras = ?camera_ids,
        rate = args.rate,
        count = ?args.count,
        "dry run: simulating cameras"
    );

    let cameras: Vec<SimCamera> = camera_ids.iter().map(|id| SimCamera::new(id)).collect();
    simulate_until_done(&args, &cameras, &hub, &stats, &producer, events_tx, &shutdown).await;

    // The sender is gone: the manager finishes what it holds, then returns.
    tokio::task::spawn_blocking(move || manager_thread.join())
        .await
        .context("event manager task failed")?
        .map_err(|_| anyhow::anyhow!("the event manager thread panicked"))?;
    hub.publish(&Frame::Heartbeat(stats.snapshot()));
    hub_stop.cancel();
    let _ = tokio::join!(server, heartbeat);
    socket_file::remove(&socket);

    Ok(Summary { stats, elapsed: started.elapsed(), data_dir: data_dir.root().display().to_string() })
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
        for (camera, n) in s.events_per_camera() {
            writeln!(f, "    {camera:<14}{n}")?;
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
