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
//! * [`outbox`] — cluster mode: committed changes published to the
//!   JetStream stream, exactly once, and heartbeats over NATS.
//! * [`lane`] — one subscriber's outgoing frames: written at once when idle,
//!   queued otherwise.
//! * [`socket_file`] — stale/live/foreign socket-path checks.
//! * [`still`] — `detector detect IMAGE…`: the object model on pictures.
//! * [`stats`] — counters for heartbeats and the session summary.
//! * [`sweeper`] — retention: the sweep at start and every 10 minutes.
//! * [`reload`] — SIGHUP (and `--watch-config`): the config file re-read,
//!   the new cameras handed to the camera supervisor.
//!
//! The frame analysis itself (motion detection, episodes, JPEG) is the
//! `vision` crate, object detection and tracking the `objects` crate; this
//! binary runs them and does the I/O around them.
//!
//! Shutdown order matters: stop producing → let the manager finish every
//! event already handed to it → let the outbox hand the stream what is
//! committed (cluster mode) → stop the hub (subscribers drain, get `Bye`)
//! → remove the socket file → print the summary.

mod camera;
mod cli;
mod describe;
mod hub;
mod lane;
mod manager;
mod outbox;
mod reload;
mod simulate;
mod socket_file;
mod stats;
mod still;
mod sweeper;

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::CommandFactory;
use shared::Store;
use shared::wire::Frame;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cli::{Args, LogFormat};
use crate::hub::{Hub, Publisher};
use crate::manager::EventManager;
use crate::simulate::{DEFAULT_CAMERAS, SimCamera};
use crate::stats::{Stats, Summary};

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let loaded = shared::settings::load::<Args>(&argv, &cli::SCHEMA, None).unwrap_or_else(|e| e.exit());
    let args = loaded.args;
    if args.print_config {
        print!("{}", shared::settings::effective(&loaded.matches, &Args::command(), &cli::SCHEMA));
        return ExitCode::SUCCESS;
    }
    if let Some(cli::Subcommand::Detect { images, min_score }) = &args.command {
        return match still::run(&args.objects.model_path(), &args.ffmpeg, images, *min_score) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    if let Err(message) = args.check_cameras() {
        Args::command().error(clap::error::ErrorKind::MissingRequiredArgument, message).exit();
    }
    if let Err(message) = shared::process::init_logging(args.log_level.as_deref(), args.log_format == LogFormat::Json) {
        Args::command().error(clap::error::ErrorKind::InvalidValue, message).exit();
    }
    let reloader = reload::Reloader::new(argv, loaded.file);
    match shared::process::run_async(run(args, reloader)) {
        Some(summary) => {
            print!("{summary}");
            if summary.failed_cameras.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        None => ExitCode::FAILURE,
    }
}

async fn run(args: Args, reloader: reload::Reloader) -> anyhow::Result<Summary> {
    // First of all: a SIGTERM during start-up must mean "stop cleanly", not
    // the default "die at once".
    let signal = shared::process::shutdown_signal().context("cannot install signal handlers")?;
    let hangups = reload::hangups(&reloader, args.watch_config).context("cannot install the SIGHUP handler")?;
    let started = Instant::now();
    let data_dir = args.data_dir();
    let real_cameras = camera::check_all(&args, None).await?;
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
    let heartbeat = tokio::spawn(hub::heartbeat(hub.clone(), stats.clone(), args.heartbeat_secs, hub_stop.clone()));

    let (events_tx, events_rx) = mpsc::channel(64);
    let mut publishers: Vec<Arc<dyn Publisher>> = vec![hub.clone()];
    // Cluster mode: the stream gets every change after its commit, as the
    // socket does, from a task of its own.
    let outbox_stop = CancellationToken::new();
    let outbox = if args.nats.enabled() {
        let wake = Arc::new(outbox::Wake::default());
        publishers.push(wake.clone());
        let outbox = outbox::Outbox {
            nats: args.nats.clone(),
            data_dir: data_dir.clone(),
            retention: args.retention.policy(),
            stats: stats.clone(),
            heartbeat: args.heartbeat_secs,
            wake,
            crash_after: args.test_crash_after_publish,
        };
        let client = outbox.connect().await?;
        tracing::info!(servers = %args.nats.servers_redacted(), node = %args.nats.node_id(), stream = %args.nats.nats_stream, "cluster mode: publishing to NATS JetStream");
        Some(tokio::spawn(outbox.run(client, outbox_stop.clone())))
    } else {
        None
    };
    // One policy, so the manager's logs and the sweeper share one calendar.
    let policy = args.retention.policy();
    let mut manager = EventManager::open(&data_dir, policy.calendar, store, publishers, stats.clone())?;
    let sweeper = sweeper::Sweeper::start(data_dir.clone(), policy, args.retention.sweep_secs)
        .context("cannot start the retention thread")?;
    manager.on_disk_full(sweeper.disk_full_handle(&data_dir));
    // This detector is the only producer of its cameras' events: any still
    // active were left so by a crash.
    let ended = manager.end_orphans(&camera_ids)?;
    if ended > 0 {
        tracing::warn!(events = ended, "ended the events the last run left active");
    }
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
        let ignoring = tokio::spawn(reload::ignore(hangups, "a dry run's cameras are not re-read"));
        let pictures = (!args.no_snapshots).then_some(&data_dir);
        simulate::run(&args, &cameras, pictures, &hub, &stats, &producer, events_tx, &shutdown).await;
        ignoring.abort();
        Vec::new()
    } else {
        tracing::info!(data_dir = %data_dir.root().display(), cameras = ?camera_ids, fps = args.detect_fps, "watching cameras");
        let (reloads_tx, reloads) = mpsc::channel(1);
        let reloading = tokio::spawn(reloader.serve(hangups, real_cameras.model.clone(), reloads_tx));
        let context =
            camera::Context { data_dir: data_dir.clone(), stats: stats.clone(), producer, shutdown: shutdown.clone() };
        let failed = camera::watch_all(real_cameras, reloads, context, events_tx).await;
        reloading.abort();
        failed
    };

    // The sender is gone: the manager finishes what it holds, then returns.
    tokio::task::spawn_blocking(move || manager_thread.join())
        .await
        .context("event manager task failed")?
        .map_err(|_| anyhow::anyhow!("the event manager thread panicked"))?;
    tokio::task::spawn_blocking(move || drop(sweeper)).await.context("retention task failed")?;
    outbox_stop.cancel();
    if let Some(outbox) = outbox {
        outbox.await.context("outbox task failed")?;
    }
    hub.publish(&Frame::Heartbeat(stats.snapshot()));
    hub_stop.cancel();
    let _ = tokio::join!(server, heartbeat);
    socket_file::remove(&socket);

    Ok(Summary { stats, elapsed: started.elapsed(), data_dir: data_dir.root().display().to_string(), failed_cameras })
}
