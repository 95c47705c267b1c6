//! `watch`: one WebSocket client that prints, for every event message, its
//! change, event id, camera, labels and the time it arrived, as JSON lines
//! on stdout. The benchmarks' "motion → browser" and "objects" scenarios
//! compare those times with the entries of lavfi scenes whose timing they
//! know.
//!
//! `watch --url ws://127.0.0.1:8000/ws/events --ends 20` exits after the
//! 20th `end`.

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Parser)]
#[command(about = "Prints each event message's change, event id and arrival time (Unix ms)")]
struct Args {
    /// The stream to watch.
    #[arg(long)]
    url: String,
    /// Exit after this many `end` changes.
    #[arg(long, default_value_t = 20)]
    ends: usize,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (mut socket, _) = tokio_tungstenite::connect_async(&args.url).await?;
    eprintln!("watch connected");
    let mut ends = 0;
    while ends < args.ends {
        let Some(message) = socket.next().await else { anyhow::bail!("the stream ended after {ends} ends") };
        let Message::Text(text) = message? else { continue };
        let received_ms = bench::now_unix_ms();
        let value: serde_json::Value = serde_json::from_str(&text)?;
        if value["type"] == "ping" {
            // Answer, or the server closes a client silent for two intervals.
            let pong = json!({"type": "pong", "timestamp": value["timestamp"]}).to_string();
            socket.send(Message::text(pong)).await?;
        }
        if value["type"] != "event" {
            continue;
        }
        let change = value["change"].as_str().unwrap_or_default();
        ends += usize::from(change == "end");
        let data = &value["data"];
        let labels: Vec<&str> =
            data["detected_objects"].as_array().into_iter().flatten().filter_map(|o| o["label"].as_str()).collect();
        println!(
            "{}",
            json!({"change": change, "event_id": data["event_id"], "camera_id": data["camera_id"],
                   "labels": labels, "received_ms": received_ms})
        );
    }
    Ok(())
}
