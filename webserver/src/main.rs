//! `webserver`: the binary around [`webserver::app`].
//!
//! It opens the database (one set of connections per duty, see
//! [`webserver::db`]) and the data directory's wire key, raises the
//! open-file limit, starts the background tasks (sequencer, one bridge per
//! detector socket or, in cluster mode, the stream's consumer, heartbeat, process sampler, the start-up integrity
//! check, the text indexer), serves HTTP through [`webserver::http::serve`], and
//! on Ctrl-C/SIGTERM closes every WebSocket with 1001 and exits within two
//! seconds.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::CommandFactory;
use shared::Timestamp;
use shared::config::DataDir;
use shared::eventlog::{EventLogs, Role};
use shared::wire::{Trust, WireKey};
use tokio_util::sync::CancellationToken;
use webserver::cli::{self, Args, LogFormat};
use webserver::db::Db;
use webserver::http::serve::{Limits, ListenerStats, serve};
use webserver::http::snapshot::SnapshotCache;
use webserver::metrics::Metrics;
use webserver::state::{AppState, CATCH_UP_READS, Config, HEAVY_QUERIES, Shared};
use webserver::stream::cluster::Cluster;
use webserver::stream::fanout::{CloseReason, Fanout};
use webserver::stream::sequencer::Sequencer;
use webserver::stream::{bridge, messages};

/// mimalloc gives freed memory back to the system within moments; glibc's
/// malloc kept ~180 MB after a burst of 12,000 half-sent requests had been
/// closed, since the freed chunks sat between live ones in its arenas.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// File descriptors kept for everything but WebSocket clients.
const RESERVED_FDS: u64 = 64;
/// Kernel send buffer per client socket. Caps the memory a client that stops
/// reading can pin (the kernel would otherwise autotune up to 4 MiB), and
/// soon leaves its write stuck, so the client is closed as slow promptly.
/// Ample for a dashboard's traffic on any LAN.
const CLIENT_SEND_BUFFER: usize = 64 * 1024;
/// How long shutdown waits for clients to take their close frames.
const CLOSE_GRACE: Duration = Duration::from_millis(1500);
/// How long shutdown waits for the outputs to save their cursors and say
/// `offline`.
const OUTPUTS_GRACE: Duration = Duration::from_millis(500);

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let loaded = shared::settings::load::<Args>(&argv, &cli::SCHEMA, None).unwrap_or_else(|e| e.exit());
    let args = loaded.args;
    if args.print_config {
        print!("{}", shared::settings::effective(&loaded.matches, &Args::command(), &cli::SCHEMA));
        return ExitCode::SUCCESS;
    }
    if let Err(message) = args.check_exposure().and_then(|()| args.check_sources()) {
        Args::command().error(clap::error::ErrorKind::ArgumentConflict, message).exit();
    }
    if let Err(message) = shared::process::init_logging(args.log_level.as_deref(), args.log_format == LogFormat::Json) {
        Args::command().error(clap::error::ErrorKind::InvalidValue, message).exit();
    }
    match shared::process::run_async(run(args)) {
        Some(()) => ExitCode::SUCCESS,
        None => ExitCode::FAILURE,
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    // First of all, so a SIGTERM during start-up is a clean stop.
    let signal = shared::process::shutdown_signal().context("cannot install signal handlers")?;
    shared::process::handle_hangups(|| {
        tracing::info!("SIGHUP: the webserver's settings take effect at the next start; nothing changed");
    })
    .context("cannot install the SIGHUP handler")?;
    let data_dir = args.data_dir();
    data_dir.create().with_context(|| format!("cannot create data directory {}", data_dir.root().display()))?;
    let fd_limit = raise_open_file_limit();
    let max_clients = args.max_clients.unwrap_or(fd_limit.saturating_sub(RESERVED_FDS).max(1) as usize);
    tracing::info!(max_clients, open_file_limit = fd_limit, "WebSocket client capacity");

    // In cluster mode the database is the webserver's copy of the stream.
    let database = if args.nats.enabled() { data_dir.stream_copy(&args.nats.nats_stream) } else { data_dir.database() };
    let db = Db::open(&database, "rest", 4, true)?;
    let replay_db = Db::open(&database, "replay", 2, false)?;
    let index_db = Db::open(&database, "text-index", 1, true)?;
    let mut trust = Trust::new(WireKey::load_or_create(&data_dir.wire_key())?);
    for &uid in &args.allowed_uids {
        trust = trust.allow_uid(uid);
    }
    let listener =
        tokio::net::TcpListener::bind(args.bind).await.with_context(|| format!("cannot listen on {}", args.bind))?;
    let address = listener.local_addr().context("listener address")?;

    let stop = CancellationToken::new();
    let metrics = Arc::new(Metrics::default());
    let fanout = Fanout::new(args.client_queue as usize, max_clients);
    let sequencer = Sequencer::start(&database, fanout.clone(), metrics.clone(), stop.clone()).await?;
    let links = Arc::new(bridge::Links::default());
    for socket in args.socket_paths() {
        let link = bridge::Link::new(&socket);
        links.add(link.clone());
        tokio::spawn(bridge::run(socket, trust.clone(), link, sequencer.clone(), stop.clone()));
    }
    let cluster = if args.nats.enabled() {
        let copy = Db::open(&database, "cluster", 1, true)?;
        let cluster = Cluster::connect(&args.nats, copy).await?;
        tracing::info!(servers = %args.nats.servers_redacted(), node = %args.nats.node_id(), stream = %args.nats.nats_stream, "cluster mode: following the NATS JetStream stream");
        let snapshot_cache = DataDir::new(data_dir.snapshot_cache(&args.nats.nats_stream));
        tokio::spawn(cluster.clone().run(sequencer.clone(), links.clone(), snapshot_cache, stop.clone()));
        Some(cluster)
    } else {
        None
    };
    // Outputs stop after the HTTP side, so they can still say `offline`.
    let outputs_stop = CancellationToken::new();
    let outputs = webserver::outputs::start(&args.outputs(), &database, &data_dir, &links, &sequencer, &outputs_stop)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    tokio::spawn(heartbeat(fanout.clone(), args.heartbeat_secs, stop.clone()));
    tokio::spawn(close_stuck_writers(fanout.clone(), args.send_timeout_secs, stop.clone()));
    let sampler = metrics.clone();
    tokio::spawn(async move { sampler.sample_process(Duration::from_secs(2)).await });

    let listener_stats = Arc::new(ListenerStats::default());
    let state = AppState::new(Shared {
        db,
        replay_db,
        fanout: fanout.clone(),
        sequencer,
        metrics,
        links,
        listener: listener_stats.clone(),
        heavy_queries: tokio::sync::Semaphore::new(HEAVY_QUERIES),
        catch_up_reads: tokio::sync::Semaphore::new(CATCH_UP_READS),
        integrity: std::sync::Mutex::new(None),
        readiness: Default::default(),
        logs: Arc::new(std::sync::Mutex::new(EventLogs::open(&data_dir, Role::Guest)?)),
        config: Config {
            heartbeat: args.heartbeat_secs,
            allowed_origins: args.allowed_origins.clone(),
            token: args.token.clone(),
            data_dir: data_dir.clone(),
            hosts: webserver::http::host::HostRule {
                enforce: args.bind.ip().is_loopback() || !args.allowed_hosts.is_empty(),
                allowed: args.allowed_hosts.clone(),
            },
        },
        outputs: outputs.statuses.clone(),
        snapshot_cache: cluster
            .is_some()
            .then(|| SnapshotCache::new(data_dir.snapshot_cache(&args.nats.nats_stream), args.snapshot_cache)),
        cluster,
    });
    tokio::spawn(check_integrity(state.clone()));
    let (storage, storage_db, storage_dir) = (state.metrics.clone(), state.db.clone(), data_dir.clone());
    tokio::spawn(async move { storage.sample_storage(storage_db, storage_dir, STORAGE_SAMPLE).await });
    tokio::spawn(keep_text_index(index_db, stop.clone()));
    tracing::info!(%address, "webserver listening");
    println!("Lookout dashboard: http://{address}/   (API docs: http://{address}/docs)");

    let shutting_down = stop.clone();
    let closer = fanout.clone();
    let ready = state.clone();
    tokio::spawn(async move {
        let which = signal.await;
        tracing::info!(signal = which, clients = closer.len(), "shutting down: closing WebSocket clients");
        ready.readiness.stopping();
        closer.kick_all(CloseReason::Shutdown);
        shutting_down.cancel();
    });
    let limits = Limits {
        header_timeout: args.header_timeout_secs,
        per_address: args.max_connections_per_address as usize,
        max_connections: fd_limit.saturating_sub(RESERVED_FDS).max(1) as usize,
    };
    state.readiness.serving();
    let router = webserver::app(state);
    serve(listener, router, limits, listener_stats, tune_client_socket, stop.clone(), CLOSE_GRACE).await;
    if tokio::time::timeout(CLOSE_GRACE, fanout.wait_empty()).await.is_err() {
        tracing::warn!(clients = fanout.len(), "some WebSocket clients did not close in time");
    }
    outputs_stop.cancel();
    if tokio::time::timeout(OUTPUTS_GRACE, futures_util::future::join_all(outputs.tasks)).await.is_err() {
        tracing::warn!("an output did not stop in time");
    }
    tracing::info!("webserver stopped");
    Ok(())
}

/// How often the data directory's size and retention state are measured
/// for `/metrics` (a walk of every snapshot file), at most.
const STORAGE_SAMPLE: Duration = Duration::from_secs(30);

/// Damage in the middle of the file shows only when a read reaches it, so
/// the whole file is checked once, in the background, and the result shown
/// in `/api/health`.
async fn check_integrity(state: AppState) {
    let started = std::time::Instant::now();
    let result = match state.db.read(|s| s.quick_check()).await {
        Ok(result) => result,
        Err(e) => Err(e.to_string()),
    };
    match &result {
        Ok(()) => tracing::info!(secs = started.elapsed().as_secs_f64(), "database check passed"),
        Err(problems) => tracing::error!(%problems, "the database is damaged; restore it from a backup"),
    }
    if let Ok(mut integrity) = state.integrity.lock() {
        *integrity = Some(result);
    }
}

/// The text indexer looks every [`TEXT_INDEX_CHECK`] and catches up once
/// [`TEXT_INDEX_BATCH`] events wait, or any have waited
/// [`TEXT_INDEX_MAX_WAIT`]. Each batch holds the database's write lock (and
/// so a detector's next commit) for about a millisecond, and does not wait
/// for the disk flush (the index can be rebuilt), so it seldom touches an
/// event's latency; searches scan the rows it has not reached.
const TEXT_INDEX_CHECK: Duration = Duration::from_secs(5);
const TEXT_INDEX_MAX_WAIT: Duration = Duration::from_secs(60);
const TEXT_INDEX_BATCH: usize = 500;

/// Keeps the text index close behind the events (see
/// `shared::store::Store::index_text`), through `db`, its own connections.
async fn keep_text_index(db: Db, stop: CancellationToken) {
    if let Err(e) = db.write(|s| s.without_flush()).await {
        tracing::warn!(error = %e, "the text indexer flushes every batch");
    }
    let mut ticker = tokio::time::interval(TEXT_INDEX_CHECK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = std::time::Instant::now();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let lag = db.read(|s| s.text_index_lag()).await.unwrap_or(0);
        if lag < TEXT_INDEX_BATCH as i64 && (lag == 0 || last.elapsed() < TEXT_INDEX_MAX_WAIT) {
            continue;
        }
        last = std::time::Instant::now();
        let mut indexed = 0;
        loop {
            match db.write(|s| s.index_text(TEXT_INDEX_BATCH)).await {
                Ok(n) => {
                    indexed += n;
                    if n < TEXT_INDEX_BATCH || stop.is_cancelled() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot update the text index; searches scan instead");
                    break;
                }
            }
        }
        if indexed >= TEXT_INDEX_BATCH {
            tracing::info!(events = indexed, "text index caught up");
        } else {
            tracing::debug!(events = indexed, "text index caught up");
        }
    }
}

/// How many slices the clients are pinged in, one slice per
/// `interval / PING_SLICES`.
const PING_SLICES: u32 = 16;

/// Pings every client once per `interval`, a slice of them at a time (see
/// [`Fanout::ping_slice`]), and closes those silent for two intervals.
async fn heartbeat(fanout: Arc<Fanout>, interval: Duration, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(interval / PING_SLICES);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let silent_ms = (interval * 2).as_millis() as u64;
    for slice in (0..u64::from(PING_SLICES)).cycle() {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {
                fanout.close_silent(silent_ms);
                fanout.ping_slice(slice, u64::from(PING_SLICES), &messages::ping(Timestamp::now()).into());
            }
        }
    }
}

/// Small writes go out at once (events are latency-sensitive), and a client's
/// kernel send buffer is bounded.
fn tune_client_socket(stream: &tokio::net::TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
    if let Err(e) = socket2::SockRef::from(stream).set_send_buffer_size(CLIENT_SEND_BUFFER) {
        tracing::debug!(error = %e, "cannot bound the socket send buffer");
    }
}

/// Once a second, closes clients whose socket has refused data for longer
/// than `timeout`.
async fn close_stuck_writers(fanout: Arc<Fanout>, timeout: Duration, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => { fanout.close_stuck_writers(timeout.as_millis() as u64); }
        }
    }
}

/// Raises the soft open-file limit to the hard limit; returns the soft limit
/// in force (each WebSocket client holds one descriptor).
fn raise_open_file_limit() -> u64 {
    #[cfg(unix)]
    {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        match getrlimit(Resource::RLIMIT_NOFILE) {
            Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                Ok(()) => hard,
                Err(e) => {
                    tracing::warn!(error = %e, soft, hard, "cannot raise the open-file limit");
                    soft
                }
            },
            Ok((soft, _)) => soft,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the open-file limit");
                1024
            }
        }
    }
    #[cfg(not(unix))]
    {
        u64::MAX
    }
}
