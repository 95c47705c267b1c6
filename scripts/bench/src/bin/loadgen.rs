//! `loadgen`: N WebSocket clients against Lookout or the baseline.
//!
//! Clients connect at `--ramp` per second from `--sources` loopback
//! addresses (127.0.0.1, .2, …: one source address runs out of ephemeral
//! ports near 28,000 connections). When all are connected it prints `READY`
//! on stderr, then measures for `--duration` seconds and prints a JSON
//! summary on stdout. Per client: an HdrHistogram of end-to-end latency
//! (`created_at` → read), messages, and losses/duplicates by `seq`; merged
//! at the end, so no lock is taken per message.
//!
//! Only events read inside the measurement window count towards latency and
//! deliveries: during the ramp a server feeds fewer clients, and its
//! writers are still cold, so those samples would flatter whichever server
//! produces events then. (Losses and duplicates count from the first event.)

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[derive(Debug, Clone, Parser)]
#[command(about = "WebSocket load generator for Lookout benchmarks")]
struct Args {
    /// e.g. ws://127.0.0.1:8000/ws/events
    #[arg(long)]
    url: String,
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Loopback source addresses to spread clients over.
    #[arg(long, default_value_t = 8)]
    sources: u8,
    /// New connections per second.
    #[arg(long, default_value_t = 2000)]
    ramp: u32,
    /// Seconds to measure once every client is connected.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Clients that connect and never read.
    #[arg(long, default_value_t = 0)]
    stalled: usize,
    /// Do not count events with `seq` at or below this (history from earlier runs).
    #[arg(long, default_value_t = 0)]
    after_seq: i64,
}

/// What every client task shares.
struct Run {
    url: String,
    target: SocketAddr,
    /// Events with `seq` at or below this are not counted.
    after_seq: i64,
    /// Set once every client is connected: only then is latency recorded.
    measuring: AtomicBool,
}

/// What one client saw.
struct Seen {
    connected: bool,
    ended_early: bool,
    messages: u64,
    events: u64,
    lost: u64,
    duplicates: u64,
    latency_us: Option<Histogram<u64>>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let url = args.url.clone();
    let target: SocketAddr = {
        let rest = url.trim_start_matches("ws://");
        let authority = rest.split('/').next().unwrap_or(rest);
        tokio::net::lookup_host(authority).await?.next().ok_or_else(|| anyhow::anyhow!("cannot resolve {authority}"))?
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let (connected_tx, mut connected_rx) = tokio::sync::mpsc::unbounded_channel::<bool>();
    let run = Arc::new(Run { url: url.clone(), target, after_seq: args.after_seq, measuring: AtomicBool::new(false) });
    let cpu_start = bench::cpu_seconds(std::process::id());

    let total = args.clients + args.stalled;
    let mut tasks = Vec::with_capacity(total);
    let pace = Duration::from_secs_f64(1.0 / f64::from(args.ramp.max(1)));
    let mut next = tokio::time::Instant::now();
    for i in 0..total {
        tokio::time::sleep_until(next).await;
        next += pace;
        let source = Ipv4Addr::new(127, 0, 0, 1 + (i % usize::from(args.sources.max(1))) as u8);
        let stalled = i >= args.clients;
        let (run, stop, connected) = (run.clone(), stop_rx.clone(), connected_tx.clone());
        tasks.push(tokio::spawn(async move { client(&run, source, stalled, stop, connected).await }));
    }
    let (mut ok, mut failed) = (0usize, 0usize);
    while ok + failed < total {
        match connected_rx.recv().await {
            Some(true) => ok += 1,
            Some(false) => failed += 1,
            None => break,
        }
    }
    eprintln!("READY {ok} connected, {failed} failed");
    let started = Instant::now();
    run.measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);

    let mut merged = Histogram::<u64>::new(3)?;
    let (mut messages, mut events, mut lost, mut duplicates, mut ended_early, mut stalled_closed) = (0, 0, 0, 0, 0, 0);
    for (i, task) in tasks.into_iter().enumerate() {
        let seen = task.await?;
        if i >= args.clients {
            stalled_closed += u64::from(seen.ended_early);
            continue;
        }
        messages += seen.messages;
        events += seen.events;
        lost += seen.lost;
        duplicates += seen.duplicates;
        ended_early += u64::from(seen.ended_early && seen.connected);
        if let Some(h) = seen.latency_us {
            merged.add(h)?;
        }
    }
    let cpu = match (cpu_start, bench::cpu_seconds(std::process::id())) {
        (Some(a), Some(b)) => (b - a) / (elapsed.max(1e-9) + 0.0) * 100.0,
        _ => f64::NAN,
    };
    let ms = |q: f64| if merged.is_empty() { 0.0 } else { merged.value_at_quantile(q) as f64 / 1000.0 };
    let summary = json!({
        "clients": args.clients,
        "stalled": args.stalled,
        "connected": ok,
        "failed_connects": failed,
        "duration_s": elapsed,
        "messages": messages,
        "events": events,
        "deliveries_per_s": events as f64 / elapsed,
        "lost": lost,
        "duplicates": duplicates,
        "clients_closed_early": ended_early,
        "stalled_closed": stalled_closed,
        "latency_ms": {
            "count": merged.len(),
            "p50": ms(0.50), "p90": ms(0.90), "p99": ms(0.99), "p999": ms(0.999),
            "max": if merged.is_empty() { 0.0 } else { merged.max() as f64 / 1000.0 },
        },
        "loadgen_cpu_percent": cpu,
    });
    println!("{summary}");
    Ok(())
}

async fn client(
    run: &Run,
    source: Ipv4Addr,
    stalled: bool,
    mut stop: watch::Receiver<bool>,
    connected: tokio::sync::mpsc::UnboundedSender<bool>,
) -> Seen {
    let mut seen =
        Seen { connected: false, ended_early: false, messages: 0, events: 0, lost: 0, duplicates: 0, latency_us: None };
    let socket = match open(&run.url, run.target, source, stalled).await {
        Ok(socket) => socket,
        Err(_) => {
            let _ = connected.send(false);
            return seen;
        }
    };
    seen.connected = true;
    let _ = connected.send(true);
    let (mut sink, mut stream) = socket.split();
    if stalled {
        // Never read; at the end, see whether the server closed us.
        let _ = stop.wait_for(|s| *s).await;
        let ended = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                match stream.next().await {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
                    Some(Ok(_)) => {}
                }
            }
        })
        .await;
        seen.ended_early = ended.unwrap_or(false);
        return seen;
    }
    let mut last: Option<i64> = None;
    loop {
        let message = tokio::select! {
            _ = stop.wait_for(|s| *s) => return seen,
            m = stream.next() => m,
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_) | Message::Binary(_))) => continue,
            _ => {
                seen.ended_early = true;
                let _ = stop.wait_for(|s| *s).await;
                return seen;
            }
        };
        let now_us = bench::now_unix_us();
        seen.messages += 1;
        let text = text.as_str();
        if text.starts_with(r#"{"type":"ping""#) {
            let _ = sink.send(Message::Text(r#"{"type":"pong"}"#.into())).await;
            continue;
        }
        let (Some(seq), Some(created_ms)) = (bench::scan_i64(text, "\"seq\":"), bench::scan_created_at_ms(text)) else {
            continue;
        };
        if seq <= run.after_seq {
            continue;
        }
        match last {
            Some(l) if seq <= l => seen.duplicates += 1,
            Some(l) => seen.lost += (seq - l - 1) as u64,
            None => {}
        }
        last = Some(last.map_or(seq, |l| l.max(seq)));
        if !run.measuring.load(Ordering::Relaxed) {
            continue;
        }
        seen.events += 1;
        let latency = (now_us - created_ms * 1000).max(1) as u64;
        let histogram = seen.latency_us.get_or_insert_with(|| {
            Histogram::new_with_bounds(100, 120_000_000, 2).unwrap_or_else(|_| Histogram::new(2).expect("histogram"))
        });
        let _ = histogram.record(latency.clamp(100, 120_000_000));
    }
}

async fn open(
    url: &str,
    target: SocketAddr,
    source: Ipv4Addr,
    stalled: bool,
) -> anyhow::Result<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    if stalled {
        socket.set_recv_buffer_size(4096)?;
    }
    let stream = tokio::time::timeout(Duration::from_secs(30), socket.connect(target)).await??;
    stream.set_nodelay(true)?;
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::client_async_with_config(url, stream, Some(config)),
    )
    .await??;
    Ok(ws)
}
