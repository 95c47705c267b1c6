//! `baseline`: the minimal fan-out server every Lookout figure is compared
//! with. tokio + tungstenite, events generated in-process at `--rate`,
//! serialised once into one shared message, broadcast, fed then flushed per
//! connection. No socket bridge, no database, no origin checks, no queues of
//! its own beyond the broadcast ring. Event messages have Lookout's shape and
//! size, so parsing and bandwidth costs match.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[derive(Debug, Parser)]
#[command(about = "Minimal WebSocket fan-out server (benchmark calibration)")]
struct Args {
    #[arg(long, default_value = "127.0.0.1:8100")]
    bind: SocketAddr,
    /// Events per second (0: none, for idle measurements).
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Approximate size of each event message in bytes.
    #[arg(long, default_value_t = 620)]
    event_bytes: usize,
    /// Start producing only once this many clients have connected (as
    /// Lookout's detector waits with `--wait-subscribers`).
    #[arg(long, default_value_t = 0)]
    wait_clients: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.bind).await?;
    let (tx, _) = broadcast::channel::<Message>(4096);
    let (accepted, mut clients) = tokio::sync::watch::channel(0usize);
    if args.rate > 0.0 {
        let (tx, rate, bytes, wait) = (tx.clone(), args.rate, args.event_bytes, args.wait_clients);
        tokio::spawn(async move {
            let _ = clients.wait_for(|n| *n >= wait).await;
            produce(tx, rate, bytes).await;
        });
    }
    eprintln!("baseline listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        accepted.send_modify(|n| *n += 1);
        let rx = tx.subscribe();
        tokio::spawn(async move {
            let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(8192);
            let Ok(socket) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else { return };
            serve(socket, rx).await;
        });
    }
}

async fn serve(
    socket: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    mut rx: broadcast::Receiver<Message>,
) {
    let (mut sink, mut stream) = socket.split();
    loop {
        tokio::select! {
            message = rx.recv() => {
                let Ok(first) = message else { return };
                if sink.feed(first).await.is_err() { return }
                while let Ok(more) = rx.try_recv() {
                    if sink.feed(more).await.is_err() { return }
                }
                if sink.flush().await.is_err() { return }
            }
            incoming = stream.next() => match incoming {
                Some(Ok(_)) => {}
                _ => return,
            },
        }
    }
}

async fn produce(tx: broadcast::Sender<Message>, rate: f64, event_bytes: usize) {
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut seq = 0i64;
    loop {
        ticker.tick().await;
        seq += 1;
        let now = bench::format_rfc3339_ms(bench::now_unix_ms());
        let head = format!(
            r#"{{"type":"event","change":"new","data":{{"seq":{seq},"event_id":"evt_{}_00aa","camera_id":"front_door","timestamp":"{now}","state":"ended","end_time":"{now}","motion_confidence":0.5,"detected_objects":[{{"label":"person","confidence":0.9,"bbox":{{"x":10.0,"y":20.0,"width":100.0,"height":240.0}}}}],"description":""#,
            bench::now_unix_ms()
        );
        let tail = format!(
            r#"","image_path":null,"metadata":{{"source":"dry-run","inference_ms":31.2,"frame_number":1,"producer":"baseline","end_reason":null}},"created_at":"{now}","updated_at":"{now}"}}}}"#
        );
        let pad = event_bytes.saturating_sub(head.len() + tail.len());
        let text = format!("{head}{}{tail}", "x".repeat(pad));
        // One serialisation, shared by every connection.
        let _ = tx.send(Message::Text(text.into()));
    }
}
