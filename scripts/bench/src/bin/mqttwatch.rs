//! `mqttwatch`: one MQTT subscriber measuring Lookout's MQTT output.
//!
//! Subscribes to `--topic` (default `lookout/events`) at QoS 1, prints
//! `READY` on stderr once the broker confirmed the subscription, measures
//! for `--duration` seconds, and prints a JSON summary on stdout: messages,
//! duplicates and gaps by `seq`, and the latency from each change's commit
//! (`after.created_at`: the benchmark's events are reported whole, so their
//! one change is their commit) to its arrival here, as the WebSocket load
//! generator measures it.

use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::json;

#[derive(Debug, Clone, Parser)]
#[command(about = "MQTT subscriber for Lookout benchmarks")]
struct Args {
    #[arg(long, default_value_t = 1883)]
    port: u16,
    #[arg(long, default_value = "lookout/events")]
    topic: String,
    /// Seconds to measure once subscribed.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut options = MqttOptions::new(format!("mqttwatch-{}", std::process::id()), "127.0.0.1", args.port);
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    client.subscribe(args.topic.clone(), QoS::AtLeastOnce).await?;
    let mut latency = Histogram::<u64>::new_with_bounds(100, 120_000_000, 2)?;
    let (mut messages, mut duplicates, mut gaps, mut last) = (0u64, 0u64, 0u64, None::<i64>);
    let mut until = None;
    loop {
        let timeout = until.map_or(Duration::from_secs(30), |u: Instant| u.saturating_duration_since(Instant::now()));
        let event = match tokio::time::timeout(timeout, eventloop.poll()).await {
            Ok(event) => event?,
            Err(_) if until.is_some() => break,
            Err(_) => anyhow::bail!("no subscription confirmed in 30 s"),
        };
        match event {
            Event::Incoming(Packet::SubAck(_)) if until.is_none() => {
                eprintln!("READY");
                until = Some(Instant::now() + Duration::from_secs_f64(args.duration));
            }
            Event::Incoming(Packet::Publish(publish)) if until.is_some() => {
                let now_us = bench::now_unix_us();
                let text = String::from_utf8_lossy(&publish.payload);
                let (Some(seq), Some(created_ms)) =
                    (bench::scan_i64(&text, "\"seq\":"), bench::scan_created_at_ms(&text))
                else {
                    continue;
                };
                messages += 1;
                match last {
                    Some(l) if seq <= l => duplicates += 1,
                    Some(l) => gaps += (seq - l - 1) as u64,
                    None => {}
                }
                last = Some(last.map_or(seq, |l| l.max(seq)));
                let _ = latency.record(((now_us - created_ms * 1000).max(1) as u64).clamp(100, 120_000_000));
            }
            _ => {}
        }
        if until.is_some_and(|u| Instant::now() >= u) {
            break;
        }
    }
    let ms = |q: f64| if latency.is_empty() { 0.0 } else { latency.value_at_quantile(q) as f64 / 1000.0 };
    let summary = json!({
        "messages": messages,
        "duplicates": duplicates,
        "seq_gaps": gaps,
        "latency_ms": {
            "count": latency.len(),
            "p50": ms(0.50), "p90": ms(0.90), "p99": ms(0.99),
            "max": if latency.is_empty() { 0.0 } else { latency.max() as f64 / 1000.0 },
        },
    });
    println!("{summary}");
    Ok(())
}
