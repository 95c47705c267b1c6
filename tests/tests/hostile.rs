//! Hostile and broken clients: abrupt disconnects, malformed messages of
//! every kind, and a client that never reads while large events flow.

use std::time::{Duration, Instant};

use e2e::ws::{self, Message};
use e2e::{Webserver, open_fds, rss_bytes, temp_data_dir};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

const LONG: Duration = Duration::from_secs(60);

async fn metrics(server: &Webserver) -> Value {
    reqwest::get(format!("{}/api/metrics", server.url)).await.expect("GET").json().await.expect("JSON")
}

/// Waits until the server counts `n` WebSocket clients (no push channel
/// for that: poll, bounded).
async fn wait_for_clients(server: &Webserver, n: u64) {
    let deadline = Instant::now() + LONG;
    while metrics(server).await["websocket"]["connections"]["current"] != n {
        assert!(Instant::now() < deadline, "client count never returned to {n}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_thousand_abrupt_disconnects_leave_nothing_behind() {
    const CLIENTS: usize = 1000;
    const ROUNDS: usize = 3;
    let dir = temp_data_dir();
    let server = Webserver::start(dir.path(), &[]);
    let pid = server.process.pid();
    let fds_before = open_fds(pid);
    let url = server.ws_url("");
    let mut rss = Vec::new();
    for _ in 0..ROUNDS {
        let mut sockets = Vec::with_capacity(CLIENTS);
        for batch in 0..CLIENTS / 100 {
            let connects = (0..100).map(|_| ws::connect(&url, None));
            for socket in futures_util::future::join_all(connects).await {
                sockets.push(socket.unwrap_or_else(|e| panic!("connect in batch {batch}: {e}")));
            }
        }
        wait_for_clients(&server, CLIENTS as u64).await;
        // No close frame: the TCP connections just go away.
        drop(sockets);
        wait_for_clients(&server, 0).await;
        rss.push(rss_bytes(pid));
    }
    let fds_after = open_fds(pid);
    assert!(fds_after <= fds_before + 2, "file descriptors leaked: {fds_before} → {fds_after}");
    let growth = rss[ROUNDS - 1] as i64 - rss[0] as i64;
    assert!(growth < 4 * 1024 * 1024, "RSS grew by {growth} bytes between round 1 and {ROUNDS}: {rss:?}");
    eprintln!(
        "FIGURE abrupt: {ROUNDS} rounds of {CLIENTS} clients dropped without a close frame; count back to 0 each \
         round; RSS after each round {:?} MiB; open fds {fds_before} → {fds_after}",
        rss.iter().map(|b| b / 1024 / 1024).collect::<Vec<_>>()
    );
}

/// What one malformed message should earn.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    ErrorReply,
    Pong,
}

fn text_frame(payload: &[u8], fin: bool, first: bool) -> Message {
    let opcode = if first { OpCode::Data(Data::Text) } else { OpCode::Data(Data::Continue) };
    Message::Frame(Frame::message(payload.to_vec(), opcode, fin))
}

#[tokio::test]
async fn ten_thousand_malformed_messages_get_errors_or_closes_and_never_a_panic() {
    let dir = temp_data_dir();
    let server = Webserver::start(dir.path(), &["--client-queue", "4096"]);
    let kinds: Vec<(&str, Vec<Message>, Expect)> = vec![
        ("bad json", vec![Message::Text("{\"type\": pin".into())], Expect::ErrorReply),
        ("unknown type", vec![Message::Text(r#"{"type":"subscribe"}"#.into())], Expect::ErrorReply),
        ("no type", vec![Message::Text(r#"{"kind":"ping"}"#.into())], Expect::ErrorReply),
        ("not an object", vec![Message::Text("[]".into())], Expect::ErrorReply),
        ("number type", vec![Message::Text(r#"{"type":1}"#.into())], Expect::ErrorReply),
        ("binary", vec![Message::Binary(vec![0, 159, 146, 150].into())], Expect::ErrorReply),
        ("empty", vec![Message::Text("".into())], Expect::ErrorReply),
        ("deep nesting", vec![Message::Text("[".repeat(5000).into())], Expect::ErrorReply),
        (
            "fragmented ping",
            vec![text_frame(br#"{"type":"#, false, true), text_frame(br#""ping"}"#, true, false)],
            Expect::Pong,
        ),
        (
            "fragmented junk",
            vec![text_frame(b"{\"ty", false, true), text_frame(b"pe\":", true, false)],
            Expect::ErrorReply,
        ),
    ];
    let closing: Vec<(&str, Message)> = vec![
        ("huge", Message::Text("x".repeat(100 * 1024).into())),
        ("invalid utf-8", text_frame(&[0x7b, 0xff, 0xfe, 0x7d], true, true)),
        ("bad continuation", text_frame(b"{}", true, false)),
    ];

    const PER_CONNECTION: usize = 1000;
    const CONNECTIONS: usize = 10;
    let mut sent = 0;
    let mut outcomes = std::collections::BTreeMap::<&str, usize>::new();
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS {
        let url = server.ws_url("");
        let kinds = kinds.clone();
        let n = PER_CONNECTION - if c < 3 { 10 } else { 0 }; // room for the closing kinds below
        sent += n;
        tasks.push(tokio::spawn(async move {
            let mut socket = ws::connect(&url, None).await.expect("connect");
            let mut counts = std::collections::BTreeMap::<&str, usize>::new();
            for i in 0..n {
                let (name, frames, expect) = &kinds[(i + c) % kinds.len()];
                for frame in frames {
                    socket.send(frame.clone()).await.expect("send");
                }
                let (reply, _) =
                    ws::next_after_pings(&mut socket).await.unwrap_or_else(|close| panic!("{name}: closed {close:?}"));
                match expect {
                    Expect::ErrorReply => assert_eq!(reply["type"], "error", "{name}: {reply}"),
                    Expect::Pong => assert_eq!(reply["type"], "pong", "{name}: {reply}"),
                }
                *counts.entry(name).or_default() += 1;
            }
            counts
        }));
    }
    for task in tasks {
        for (name, n) in task.await.expect("client task") {
            *outcomes.entry(name).or_default() += n;
        }
    }
    // The closing kinds: each on its own connection, 10 of each.
    for (name, message) in &closing {
        for _ in 0..10 {
            let mut socket = ws::connect(&server.ws_url(""), None).await.expect("connect");
            let _ = socket.send(message.clone()).await;
            // The server ends the connection: a close frame or a dropped socket.
            let ended = tokio::time::timeout(LONG, async {
                loop {
                    match socket.next().await {
                        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                        Some(Ok(_)) => {}
                    }
                }
            })
            .await;
            assert!(ended.is_ok(), "{name}: the connection should end");
            *outcomes.entry(name).or_default() += 1;
            sent += 1;
        }
    }
    assert_eq!(sent, 10_000);
    let health: Value =
        reqwest::get(format!("{}/api/health", server.url)).await.expect("GET").json().await.expect("JSON");
    assert_eq!(health["database"]["status"], "ok", "still serving: {health}");
    let mut fine = ws::connect(&server.ws_url(""), None).await.expect("a well-behaved client still connects");
    ws::send_text(&mut fine, r#"{"type":"ping"}"#).await;
    assert_eq!(ws::next_after_pings(&mut fine).await.expect("pong").0["type"], "pong");
    let logs = server.process.logs().join("\n");
    assert!(!logs.contains("panicked"), "no panic in the server log");
    eprintln!("FIGURE malformed: {sent} malformed messages, outcomes per kind {outcomes:?}; no panic; server healthy");
}

#[tokio::test]
async fn a_never_reading_client_under_large_events_is_closed_promptly_and_others_stay_fast() {
    let dir = temp_data_dir();
    let server = Webserver::start(dir.path(), &["--client-queue", "256"]);
    let pid = server.process.pid();
    let rss_before = rss_bytes(pid);
    let mut reader = ws::connect(&server.ws_url(""), None).await.expect("reader");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let stream = socket.connect(server.url.trim_start_matches("http://").parse().expect("addr")).await.expect("tcp");
    let (_stalled, _) = tokio_tungstenite::client_async(server.ws_url(""), stream).await.expect("upgrade");

    // ~12 KiB events: the longest description and a hundred objects.
    let objects: Vec<Value> = (0..100)
        .map(|i| serde_json::json!({"label": "person", "confidence": 0.9, "bbox": {"x": i, "y": i, "width": 40, "height": 80}}))
        .collect();
    let body = serde_json::json!({"camera_id": "lobby", "motion_confidence": 0.7, "description": "x".repeat(1000), "detected_objects": objects});
    const EVENTS: usize = 400;
    let http = reqwest::Client::new();
    let url = format!("{}/api/events", server.url);
    let started = Instant::now();
    let poster = tokio::spawn(async move {
        for _ in 0..EVENTS {
            let response = http.post(&url).json(&body).send().await.expect("POST");
            assert_eq!(response.status(), 201);
        }
    });
    let mut latencies = Vec::with_capacity(EVENTS);
    while latencies.len() < EVENTS {
        let (message, _) = ws::next(&mut reader).await.expect("the reader stays connected");
        let received = chrono::Utc::now(); // at arrival, before any other work
        if message["type"] != "event" {
            continue;
        }
        let created: chrono::DateTime<chrono::Utc> =
            message["data"]["created_at"].as_str().expect("created_at").parse().expect("time");
        latencies.push((received - created).num_milliseconds());
    }
    poster.await.expect("poster");
    server.process.wait_for_log("slow consumer:", LONG);
    let closed_after = started.elapsed();
    latencies.sort_unstable();
    let p99 = latencies[latencies.len() * 99 / 100];
    let rss_growth = rss_bytes(pid).saturating_sub(rss_before);
    assert!(closed_after < Duration::from_secs(30), "closed after {closed_after:?}");
    assert!(p99 < 250, "the reading client's p99 stayed low: {p99} ms");
    assert!(rss_growth < 64 * 1024 * 1024, "memory stayed bounded: grew {rss_growth} bytes");
    eprintln!(
        "FIGURE slow: never-reading client among readers, {EVENTS} events of ~12 KiB; closed as slow consumer within \
         {closed_after:.1?}; the reader's commit→receive p99 {p99} ms; webserver RSS growth {} MiB",
        rss_growth / 1024 / 1024
    );
}
