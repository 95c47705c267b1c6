//! End-to-end tests of the real `webserver` (with the real `detector`):
//! live fan-out, catch-up across restarts of either process, heartbeats,
//! bad input, origins, slow consumers, REST, docs and shutdown.

use std::time::{Duration, Instant};

use e2e::ws::{self, Message};
use e2e::{Process, Webserver, arg, temp_data_dir};
use futures_util::SinkExt;
use serde_json::Value;

const LONG: Duration = Duration::from_secs(30);

fn detector(data_dir: &std::path::Path, args: &[&str]) -> Process {
    // Events reported whole: one change each, so seqs count events.
    let mut all = vec!["--dry-run", "--event-secs", "0", "--data-dir", arg(data_dir)];
    all.extend_from_slice(args);
    Process::start("detector", &all)
}

fn seqs(events: &[(Value, String)]) -> Vec<i64> {
    events.iter().map(|(e, _)| e["seq"].as_i64().expect("seq")).collect()
}

async fn get(url: &str) -> reqwest::Response {
    reqwest::get(url).await.unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

async fn get_json(url: &str) -> Value {
    get(url).await.json().await.expect("JSON body")
}

/// A WebSocket client with a 4 KiB receive buffer: the kernel holds only a
/// few events for it, so as soon as it stops reading, the server's writes
/// back up.
async fn small_buffer_client(server: &Webserver) -> ws::Socket {
    small_buffer_client_with(server, "").await
}

/// [`small_buffer_client`] with a query (`"?after_seq=N"`).
async fn small_buffer_client_with(server: &Webserver, query: &str) -> ws::Socket {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let stream = socket.connect(server.url.trim_start_matches("http://").parse().expect("addr")).await.expect("tcp");
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    tokio_tungstenite::client_async(server.ws_url(query), stream).await.expect("upgrade").0
}

#[tokio::test]
async fn detector_events_reach_every_client_byte_for_byte_as_rest_returns_them() {
    let dir = temp_data_dir();
    let server = Webserver::start(dir.path(), &[]);
    let mut a = ws::connect(&server.ws_url(""), None).await.expect("client a");
    let mut b = ws::connect(&server.ws_url(""), Some("http://localhost:5173")).await.expect("client b");

    let det = detector(dir.path(), &["--count", "5", "--rate", "50", "--wait-subscribers", "1"]);
    let got_a = ws::events(&mut a, 5).await;
    let got_b = ws::events(&mut b, 5).await;
    assert_eq!(seqs(&got_a), vec![1, 2, 3, 4, 5]);
    assert_eq!(got_a, got_b, "both clients got the same events");
    for (event, raw) in &got_a {
        let id = event["event_id"].as_str().expect("event_id");
        let rest = get(&format!("{}/api/events/{id}", server.url)).await;
        assert_eq!(rest.status(), 200);
        assert_eq!(rest.text().await.expect("body"), *raw, "WebSocket data == REST body, byte for byte");
    }
    assert!(det.wait(LONG).0.success());
}

#[tokio::test]
async fn the_detector_reports_its_commit_time_in_health_and_metrics() {
    let dir = temp_data_dir();
    let server = Webserver::start(dir.path(), &[]);
    let det = detector(dir.path(), &["--rate", "20", "--heartbeat-secs", "1"]);
    let health = e2e::health_until(&server.url, "the detector's commit times", |h| {
        h["detectors"][0]["stats"]["commit_ms"]["count"].as_u64().is_some_and(|n| n > 0)
    })
    .await;
    let commit = &health["detectors"][0]["stats"]["commit_ms"];
    let (p50, max) = (commit["p50"].as_f64().expect("p50"), commit["max"].as_f64().expect("max"));
    // A durable SQLite commit takes some time, and not seconds.
    assert!(p50 > 0.0 && p50 <= max && max < 5000.0, "{commit}");
    let metrics = get_json(&format!("{}/api/metrics", server.url)).await;
    assert!(metrics["detectors"][0]["commit_ms"]["count"].as_u64().is_some_and(|n| n > 0), "{metrics}");
    let families = e2e::parse_openmetrics(&get(&format!("{}/metrics", server.url)).await.text().await.expect("text"));
    let commit = e2e::metric_samples(&families, "lookout_detector_commit_seconds");
    let value = |suffix: &str| {
        commit.iter().find(|s| s["name"] == format!("lookout_detector_commit_seconds{suffix}")).expect(suffix)["value"]
            .as_f64()
            .expect("a number")
    };
    // Seconds, not milliseconds: a durable commit takes well under one.
    assert!(value("_count") > 0.0 && value("_sum") > 0.0 && value("_sum") / value("_count") < 1.0, "{commit:#?}");
    det.terminate();
    assert!(det.wait(LONG).0.success());
}

#[tokio::test]
async fn pings_arrive_on_time_answering_clients_stay_silent_ones_are_closed() {
    let dir = temp_data_dir();
    let server = Webserver::start(dir.path(), &["--heartbeat-secs", "1"]);
    let mut answering = ws::connect(&server.ws_url(""), None).await.expect("answering");
    let mut silent = ws::connect(&server.ws_url(""), None).await.expect("silent");

    // The silent one reads (so it is not a slow consumer) but never answers.
    let mut ping_times = Vec::new();
    let silent_closed = async {
        loop {
            match ws::next(&mut silent).await {
                Ok((v, _)) => assert_eq!(v["type"], "ping"),
                Err(close) => return close,
            }
        }
    };
    let answering_loop = async {
        loop {
            let (v, _) = ws::next(&mut answering).await.expect("answering stays open");
            assert_eq!(v["type"], "ping", "{v}");
            let ts: chrono::DateTime<chrono::Utc> =
                v["timestamp"].as_str().expect("timestamp").parse().expect("RFC 3339");
            ping_times.push((Instant::now(), ts));
            ws::send_text(
                &mut answering,
                &format!(r#"{{"type":"pong","timestamp":"{}"}}"#, v["timestamp"].as_str().unwrap_or("")),
            )
            .await;
            if ping_times.len() == 4 {
                return;
            }
        }
    };
    let (close, ()) = tokio::join!(silent_closed, answering_loop);
    let close = close.expect("a close frame, not just a dropped socket");
    assert_eq!(u16::from(close.code), 1008);
    assert_eq!(close.reason.as_str(), "heartbeat timeout");

    // Pings come once per interval (generous bounds: a busy CI machine).
    for pair in ping_times.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(gap > Duration::from_millis(500) && gap < Duration::from_millis(2500), "ping gap {gap:?}");
    }
    let metrics = get_json(&format!("{}/api/metrics", server.url)).await;
    assert_eq!(metrics["websocket"]["connections"]["current"], 1, "{metrics}");
    assert_eq!(metrics["websocket"]["connections"]["heartbeat_timeouts"], 1, "{metrics}");
}

#[tokio::test]
async fn pings_are_spread_over_the_interval_not_sent_to_everyone_at_once() {
    let dir = temp_data_dir();
    let server = Webserver::start(dir.path(), &["--heartbeat-secs", "1"]);
    let mut clients = Vec::new();
    for _ in 0..32 {
        clients.push(ws::connect(&server.ws_url(""), None).await.expect("connect"));
    }
    // Each client's first ping, stamped when it was sent. One ping for all
    // would carry a single timestamp; slices of the clients get their own.
    let mut stamps = std::collections::BTreeSet::new();
    for client in &mut clients {
        let (v, _) = ws::next(client).await.expect("a ping");
        assert_eq!(v["type"], "ping", "{v}");
        stamps.insert(v["timestamp"].as_str().expect("timestamp").to_owned());
    }
    assert!(stamps.len() >= 8, "32 clients were pinged at only {} moments: {stamps:?}", stamps.len());
}

#[tokio::test]
async fn bad_client_messages_get_errors_and_keep_the_connection_oversize_closes_1009() {
    let dir = temp_data_dir();
    let server = Webserver::start(dir.path(), &[]);
    let mut client = ws::connect(&server.ws_url(""), None).await.expect("connect");

    for (send, expected) in [
        (Message::Text("{not json".into()), "Invalid JSON format"),
        (Message::Text(r#"{"type":"subscribe"}"#.into()), "Unknown message type"),
        (Message::Text("[1,2,3]".into()), "JSON objects"),
        (Message::Binary(vec![0xde, 0xad].into()), "Binary messages are not supported"),
    ] {
        client.send(send).await.expect("send");
        let (reply, _) = ws::next_after_pings(&mut client).await.expect("an error reply, connection kept");
        assert_eq!(reply["type"], "error", "{reply}");
        assert!(reply["message"].as_str().expect("message").contains(expected), "{reply}");
    }
    ws::send_text(&mut client, r#"{"type":"ping","timestamp":"2026-01-01T00:00:00Z"}"#).await;
    let (pong, _) = ws::next_after_pings(&mut client).await.expect("pong");
    assert_eq!(pong["type"], "pong");

    let huge = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(100 * 1024));
    let _ = client.send(Message::Text(huge.into())).await;
    let close = ws::next_after_pings(&mut client).await.expect_err("closed").expect("close frame");
    assert_eq!(u16::from(close.code), 1009);
}

#[tokio::test]
async fn foreign_origins_are_refused_before_the_upgrade() {
    let dir = temp_data_dir();
    let server = Webserver::start(dir.path(), &["--allowed-origin", "https://nvr.example.com"]);
    for origin in ["http://evil.example", "null", "http://localhost.evil.com"] {
        match ws::connect(&server.ws_url(""), Some(origin)).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 403, "{origin}")
            }
            other => panic!("{origin} should get 403, got {other:?}"),
        }
    }
    for origin in [None, Some("http://localhost:1234"), Some("http://127.0.0.1"), Some("https://nvr.example.com")] {
        ws::connect(&server.ws_url(""), origin).await.unwrap_or_else(|e| panic!("{origin:?} refused: {e}"));
    }
}

#[tokio::test]
async fn events_made_while_the_detector_was_down_reach_the_client_in_order_once() {
    let dir = temp_data_dir();
    let server = Webserver::start(dir.path(), &[]);
    let mut client = ws::connect(&server.ws_url(""), None).await.expect("connect");

    let first = detector(dir.path(), &["--count", "5", "--rate", "100", "--wait-subscribers", "1"]);
    let got = ws::events(&mut client, 5).await;
    assert!(first.wait(LONG).0.success());
    // The second run starts producing at once, before the webserver's
    // back-off brings the link back: those events come from the database.
    let second = detector(dir.path(), &["--count", "15", "--rate", "100"]);
    assert!(second.wait(LONG).0.success());
    let rest = ws::events(&mut client, 15).await;
    let all: Vec<i64> = seqs(&got).into_iter().chain(seqs(&rest)).collect();
    assert_eq!(all, (1..=20).collect::<Vec<_>>(), "every event once, in seq order");
}

#[tokio::test]
async fn a_client_resuming_with_after_seq_misses_nothing_across_a_webserver_crash() {
    let dir = temp_data_dir();
    let mut server = Webserver::start(dir.path(), &[]);
    let det = detector(dir.path(), &["--rate", "40"]);
    server.wait_for_detector();
    // From the very first event: history, then live.
    let mut client = ws::connect(&server.ws_url("?after_seq=0"), None).await.expect("connect");
    let mut received = seqs(&ws::events(&mut client, 10).await);

    server.process.kill(); // SIGKILL: no close frame, nothing flushed
    let server = Webserver::start(dir.path(), &[]);
    let last = *received.last().expect("some events");
    let mut client = ws::connect(&server.ws_url(&format!("?after_seq={last}")), None).await.expect("reconnect");
    received.extend(seqs(&ws::events(&mut client, 10).await));

    det.terminate();
    assert!(det.wait(LONG).0.success());
    let health = get_json(&format!("{}/api/health", server.url)).await;
    let head = health["database"]["head_seq"].as_i64().expect("head_seq");
    let missing = (head - *received.last().expect("events")) as usize;
    received.extend(seqs(&ws::events(&mut client, missing).await));
    assert_eq!(received, (1..=head).collect::<Vec<_>>(), "every stored event exactly once, in order");
}

#[tokio::test]
async fn after_seq_replays_history_then_goes_live_without_gap_or_duplicate() {
    let dir = temp_data_dir();
    let det = detector(dir.path(), &["--count", "30", "--rate", "1000"]);
    assert!(det.wait(LONG).0.success());
    let server = Webserver::start(dir.path(), &[]);
    let mut replaying = ws::connect(&server.ws_url("?after_seq=10"), None).await.expect("connect");
    let mut live_only = ws::connect(&server.ws_url(""), None).await.expect("connect");
    let history = ws::events(&mut replaying, 20).await;
    assert_eq!(seqs(&history), (11..=30).collect::<Vec<_>>());

    let created = reqwest::Client::new()
        .post(format!("{}/api/events", server.url))
        .json(&serde_json::json!({"camera_id": "porch", "motion_confidence": 0.4, "description": "A parcel."}))
        .send()
        .await
        .expect("POST");
    assert_eq!(created.status(), 201);
    for client in [&mut replaying, &mut live_only] {
        let live = ws::events(client, 1).await;
        assert_eq!(live[0].0["seq"], 31);
        assert_eq!(live[0].0["metadata"]["source"], "api");
    }
    // A real upgrade request, so the query check (not the upgrade
    // extractor) is what refuses it.
    match ws::connect(&server.ws_url("?after_seq=ten"), None).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 400)
        }
        other => panic!("after_seq=ten should get 400, got {other:?}"),
    }
}

#[tokio::test]
async fn a_queue_overflow_during_replay_is_refilled_from_the_database() {
    let dir = temp_data_dir();
    const HISTORY: usize = 2000;
    const LIVE: usize = 300;
    let history = detector(dir.path(), &["--count", &HISTORY.to_string(), "--rate", "100000"]);
    assert!(history.wait(LONG).0.success());
    let server = Webserver::start(dir.path(), &["--client-queue", "4"]);
    let live = detector(dir.path(), &["--count", &LIVE.to_string(), "--rate", "2000", "--wait-subscribers", "1"]);
    server.wait_for_detector();
    // Ask for all history but do not read yet: the server's writer blocks
    // mid-replay on the full socket while live events overflow the tiny
    // queue. Only once they have all been broadcast does the client read.
    let mut client = ws::connect(&server.ws_url("?after_seq=0"), None).await.expect("connect");
    assert!(live.wait(LONG).0.success());
    let got = seqs(&ws::events(&mut client, HISTORY + LIVE).await);
    assert_eq!(got, (1..=(HISTORY + LIVE) as i64).collect::<Vec<_>>(), "every event once, in order");
    server.process.wait_for_log("events arrived faster than the replay; reading the database again", LONG);
}

#[tokio::test]
async fn a_full_server_answers_503_and_a_client_close_is_clean() {
    let dir = temp_data_dir();
    let server = Webserver::start(dir.path(), &["--max-clients", "1"]);
    let mut first = ws::connect(&server.ws_url(""), None).await.expect("first");
    match ws::connect(&server.ws_url(""), None).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503)
        }
        other => panic!("a second client should get 503, got {other:?}"),
    }
    first.close(None).await.expect("close");
    assert!(ws::next_after_pings(&mut first).await.is_err(), "the server completes the closing handshake");
    server.process.wait_for_log("reason=ClientClosed", LONG);
    // The slot is free again.
    ws::connect(&server.ws_url(""), None).await.expect("a client after the first left");
}

#[tokio::test]
async fn a_client_that_never_reads_is_closed_as_slow_while_others_get_everything() {
    let dir = temp_data_dir();
    // Queue room for a busy reader to lag a quarter second; the stalled one
    // overflows it (plus its bounded socket buffer) long before N events.
    let server = Webserver::start(dir.path(), &["--client-queue", "256"]);
    let mut reader = ws::connect(&server.ws_url(""), None).await.expect("reader");
    // The stalled client: a tiny receive window, and it never reads.
    let _stalled = small_buffer_client(&server).await;

    const N: usize = 2000;
    let det = detector(dir.path(), &["--count", &N.to_string(), "--rate", "1000", "--wait-subscribers", "1"]);
    let got = ws::events(&mut reader, N).await;
    assert_eq!(seqs(&got), (1..=N as i64).collect::<Vec<_>>(), "the reading client missed nothing");
    server.process.wait_for_log("slow consumer:", LONG);
    let metrics = get_json(&format!("{}/api/metrics", server.url)).await;
    assert_eq!(metrics["websocket"]["connections"]["slow_consumer_closes"], 1, "{metrics}");
    assert!(det.wait(LONG).0.success());
}

#[tokio::test]
async fn a_reply_is_not_held_back_behind_a_backlog_of_events() {
    // Regression: replies (pongs, errors, and the heartbeat pings that share
    // their box) went out only once the client's writer found the feed
    // empty, so a client behind a backlog heard nothing else until it had
    // read all of it; a heartbeat ping held back long enough would have
    // closed a healthy client as silent.
    let dir = temp_data_dir();
    let server = Webserver::start(dir.path(), &["--client-queue", "4096", "--send-timeout-secs", "120"]);
    let mut client = small_buffer_client(&server).await;

    const N: u64 = 1000;
    let det = detector(
        dir.path(),
        &["--count", &N.to_string(), "--rate", "5000", "--payload-bytes", "4000", "--wait-subscribers", "1"],
    );
    assert!(det.wait(LONG).0.success());
    // Every event is on the feed now; most wait behind the unread socket.
    let metrics_url = format!("{}/api/metrics", server.url);
    let all_broadcast = async {
        while get_json(&metrics_url).await["events"]["broadcast"].as_u64().unwrap_or(0) < N {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(LONG, all_broadcast).await.expect("every event broadcast");

    ws::send_text(&mut client, r#"{"type":"ping"}"#).await;
    let mut events_before_pong = 0;
    loop {
        let (v, _) = ws::next(&mut client).await.expect("the client stays connected");
        match v["type"].as_str() {
            Some("event") => events_before_pong += 1,
            Some("pong") => break,
            _ => {}
        }
    }
    assert!(events_before_pong < N / 2, "the pong came only after {events_before_pong} of {N} events");
    let rest = ws::events(&mut client, (N - events_before_pong) as usize).await;
    assert_eq!(seqs(&rest).last(), Some(&(N as i64)), "and every event still arrives");
}

#[tokio::test]
async fn a_reading_client_that_falls_a_feed_behind_is_closed_as_slow_and_resumes_without_loss() {
    let dir = temp_data_dir();
    // A live feed of 8 messages; ~8 KiB events that the kernel buffers can
    // hold only a few of, so the slow reader's writer soon falls behind.
    let server = Webserver::start(dir.path(), &["--client-queue", "8"]);
    let mut slow = small_buffer_client(&server).await;

    const N: i64 = 300;
    let det = detector(
        dir.path(),
        // Without pictures, so the events come as fast as asked for.
        &[
            "--count",
            &N.to_string(),
            "--rate",
            "2000",
            "--payload-bytes",
            "8000",
            "--wait-subscribers",
            "1",
            "--no-snapshots",
        ],
    );
    // Read slowly (it keeps reading: its writes never stay stuck) until closed.
    let mut last = 0;
    let close = loop {
        match ws::next(&mut slow).await {
            Ok((value, _)) if value["type"] == "event" => {
                let seq = value["data"]["seq"].as_i64().expect("seq");
                assert_eq!(seq, last + 1, "no gap before the close");
                last = seq;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(_) => {}
            Err(close) => break close.expect("a close frame, not just a dropped socket"),
        }
    };
    assert_eq!((u16::from(close.code), close.reason.as_str()), (1008, "slow consumer"));
    assert!(last < N, "closed before the end, after {last} events");
    let line = server.process.wait_for_log("slow consumer: fell", LONG);
    assert!(line.contains("behind the live feed"), "{line}");
    assert!(det.wait(LONG).0.success());

    // It resumes where it stopped and misses nothing.
    let mut resumed = ws::connect(&server.ws_url(&format!("?after_seq={last}")), None).await.expect("reconnect");
    let rest = seqs(&ws::events(&mut resumed, (N - last) as usize).await);
    assert_eq!(rest, ((last + 1)..=N).collect::<Vec<_>>());
    let metrics = get_json(&format!("{}/api/metrics", server.url)).await;
    assert_eq!(metrics["websocket"]["connections"]["slow_consumer_closes"], 1, "{metrics}");
}

#[tokio::test]
async fn post_validates_persists_and_broadcasts() {
    let dir = temp_data_dir();
    let server = Webserver::start(dir.path(), &[]);
    let mut client = ws::connect(&server.ws_url(""), None).await.expect("connect");
    let http = reqwest::Client::new();
    let url = format!("{}/api/events", server.url);
    for (body, field) in [
        (serde_json::json!({"motion_confidence": 0.5, "description": "x"}), "camera_id"),
        (serde_json::json!({"camera_id": "a b", "motion_confidence": 0.5, "description": "x"}), "camera_id"),
        (serde_json::json!({"camera_id": "door", "motion_confidence": 2.0, "description": "x"}), "motion_confidence"),
        (serde_json::json!({"camera_id": "door", "motion_confidence": 0.5, "description": "x", "colour": 1}), "colour"),
        (
            serde_json::json!({"camera_id": "door", "motion_confidence": 0.5, "description": "x",
                "detected_objects": [{"label": "cat", "confidence": 0.5, "bbox": {"x": -1, "y": 0, "width": 1, "height": 1}}]}),
            "detected_objects[0].bbox.x",
        ),
    ] {
        let response = http.post(&url).json(&body).send().await.expect("POST");
        assert_eq!(response.status(), 422, "{body}");
        let error: Value = response.json().await.expect("JSON error");
        assert!(error["message"].as_str().expect("message").contains(field), "{error} should name {field}");
    }
    let not_json = http.post(&url).header("content-type", "application/json").body("{").send().await.expect("POST");
    assert_eq!(not_json.status(), 422);

    let created = http
        .post(&url)
        .json(&serde_json::json!({"camera_id": "door", "motion_confidence": 0.25, "description": "A cat on the step.",
            "detected_objects": [{"label": "cat", "confidence": 0.9, "bbox": {"x": 1, "y": 2, "width": 30, "height": 20}}]}))
        .send()
        .await
        .expect("POST");
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().expect("location").to_owned();
    let body = created.text().await.expect("body");
    let live = ws::events(&mut client, 1).await;
    assert_eq!(live[0].1, body, "the broadcast carries exactly the created event");
    assert_eq!(get(&format!("{}{location}", server.url)).await.text().await.expect("body"), body);

    let missing = get(&format!("{}/api/events/evt_1_0000", server.url)).await;
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.json::<Value>().await.expect("JSON 404")["error"], "not_found");
}

#[tokio::test]
async fn rest_lists_with_filters_and_pages() {
    let dir = temp_data_dir();
    let det = detector(dir.path(), &["--count", "25", "--rate", "1000", "--camera", "door", "--camera", "yard"]);
    assert!(det.wait(LONG).0.success());
    let server = Webserver::start(dir.path(), &[]);

    let mut seen = Vec::new();
    let mut url = format!("{}/api/events?limit=10", server.url);
    loop {
        let page = get_json(&url).await;
        seen.extend(page["events"].as_array().expect("events").iter().map(|e| e["seq"].as_i64().expect("seq")));
        match page["next_before_seq"].as_i64() {
            Some(cursor) => url = format!("{}/api/events?limit=10&before_seq={cursor}", server.url),
            None => break,
        }
    }
    assert_eq!(seen, (1..=25).rev().collect::<Vec<_>>(), "paging visits every event once, newest first");

    let door = get_json(&format!("{}/api/events?camera_id=door&limit=1000", server.url)).await;
    assert!(door["events"].as_array().expect("events").iter().all(|e| e["camera_id"] == "door"));
    let after = get_json(&format!("{}/api/events?after_seq=20", server.url)).await;
    assert_eq!(after["events"].as_array().expect("events").len(), 5);
    let future = get_json(&format!("{}/api/events?start=2999-01-01T00:00:00Z", server.url)).await;
    assert_eq!(future["events"].as_array().expect("events").len(), 0);
    for bad in ["limit=0", "limit=1001", "start=yesterday", "after_seq=x", "camera_id=a%20b"] {
        let response = get(&format!("{}/api/events?{bad}", server.url)).await;
        assert_eq!(response.status(), 400, "{bad}");
    }
}

#[tokio::test]
async fn health_metrics_and_docs_answer_and_a_missing_detector_is_degraded() {
    let dir = temp_data_dir();
    let server = Webserver::start(dir.path(), &[]);
    let health = get_json(&format!("{}/api/health", server.url)).await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["database"]["status"], "ok");
    assert_eq!(health["detectors"][0]["connected"], false);

    let det = detector(dir.path(), &["--rate", "20", "--heartbeat-secs", "0.2"]);
    server.wait_for_detector();
    let mut client = ws::connect(&server.ws_url(""), None).await.expect("connect");
    ws::events(&mut client, 3).await;
    let health = get_json(&format!("{}/api/health", server.url)).await;
    assert_eq!(health["status"], "healthy", "{health}");
    let metrics = get_json(&format!("{}/api/metrics", server.url)).await;
    assert!(metrics["events"]["broadcast"].as_u64().expect("broadcast") >= 3, "{metrics}");
    assert!(metrics["websocket"]["messages_sent"].as_u64().expect("sent") >= 3, "{metrics}");
    assert!(metrics["process"]["rss_bytes"].is_u64());
    assert_eq!(metrics["websocket"]["connections"]["current"], 1);

    let families = e2e::parse_openmetrics(&get(&format!("{}/metrics", server.url)).await.text().await.expect("text"));
    assert_eq!(e2e::metric_samples(&families, "lookout_websocket_clients")[0]["value"], 1.0, "{families:#?}");
    let broadcast = e2e::metric_samples(&families, "lookout_events_broadcast");
    assert!(broadcast[0]["value"].as_f64().is_some_and(|n| n >= 3.0), "{broadcast:#?}");
    // The storage sample is taken at start: the database has bytes, nothing was deleted.
    let storage = e2e::metric_samples(&families, "lookout_storage_bytes");
    let database = storage.iter().find(|s| s["labels"]["kind"] == "database").expect("database bytes");
    assert!(database["value"].as_f64().is_some_and(|n| n > 0.0), "{storage:#?}");
    assert_eq!(storage.len(), 3, "database, snapshots, logs: {storage:#?}");
    let deleted = e2e::metric_samples(&families, "lookout_retention_deleted_events");
    assert_eq!(deleted[0]["value"], 0.0, "{deleted:#?}");
    assert!(metrics["storage"]["database_bytes"].as_u64().is_some_and(|n| n > 0), "{metrics}");
    let openapi = get_json(&format!("{}/api/openapi.json", server.url)).await;
    assert!(openapi["paths"]["/api/events"].is_object(), "{openapi}");
    assert!(openapi["paths"]["/api/events/{event_id}"].is_object());
    let docs = get(&format!("{}/docs/", server.url)).await;
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.expect("html").contains("swagger"), "Swagger UI served offline");
    let asyncapi = get_json(&format!("{}/api/asyncapi.json", server.url)).await;
    assert!(asyncapi["asyncapi"].is_string(), "{asyncapi}");
    det.terminate();
    assert!(det.wait(LONG).0.success());
}

#[tokio::test]
async fn sigterm_closes_every_client_with_1001_and_exits_promptly() {
    let dir = temp_data_dir();
    let server = Webserver::start(dir.path(), &[]);
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(ws::connect(&server.ws_url(""), None).await.expect("connect"));
    }
    let started = Instant::now();
    server.process.terminate();
    for client in &mut clients {
        let close = ws::next_after_pings(client).await.expect_err("closed").expect("close frame");
        assert_eq!(u16::from(close.code), 1001);
    }
    let (status, _) = server.process.wait(LONG);
    assert!(status.success(), "exit status {status}");
    assert!(started.elapsed() < Duration::from_secs(2), "exited in {:?}", started.elapsed());
}

#[tokio::test]
async fn the_dashboard_is_served_with_a_strict_policy_and_nothing_else_leaks() {
    let dir = temp_data_dir();
    let server = Webserver::start(dir.path(), &[]);
    let page = get(&format!("{}/", server.url)).await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().expect("csp").to_owned();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    let html = page.text().await.expect("html");
    assert!(html.contains(r#"<script type="module" src="/static/app.js">"#));

    for (asset, kind) in [("app.js", "text/javascript"), ("style.css", "text/css")] {
        let response = get(&format!("{}/static/{asset}", server.url)).await;
        assert_eq!(response.status(), 200, "{asset}");
        assert!(response.headers()["content-type"].to_str().expect("type").starts_with(kind));
    }
    for path in ["/static/nope.js", "/static/..%2f..%2fCargo.toml", "/..%2f..%2fetc/passwd", "/static/%2e%2e/app.js"] {
        let response = get(&format!("{}{path}", server.url)).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(response.json::<Value>().await.expect("JSON 404")["error"], "not_found", "{path}");
    }
}

#[tokio::test]
async fn at_a_low_rate_a_client_whose_writes_stay_stuck_is_closed_by_the_send_timeout() {
    let dir = temp_data_dir();
    // The largest queue; a stalled writer never reads the feed, so it never
    // learns it fell behind: only the send timeout can find it.
    let server = Webserver::start(dir.path(), &["--client-queue", "65536", "--send-timeout-secs", "1"]);
    let _stalled = small_buffer_client(&server).await;
    let mut reader = ws::connect(&server.ws_url(""), None).await.expect("reader");
    let det = detector(dir.path(), &["--rate", "20", "--payload-bytes", "8000", "--wait-subscribers", "1"]);
    let line = server.process.wait_for_log("slow consumer: a write is stuck", LONG);
    assert!(line.contains("conn=1"), "the stalled client, not the reader: {line}");
    let metrics = get_json(&format!("{}/api/metrics", server.url)).await;
    assert_eq!(metrics["websocket"]["connections"]["slow_consumer_closes"], 1, "{metrics}");
    ws::events(&mut reader, 5).await;
    det.terminate();
    assert!(det.wait(LONG).0.success());
}

/// Regression: the stuck-write mark was also cleared by the database read
/// that fills a gap, so a burst with a gap at its head was written
/// unwatched, and a client that stopped reading right then was never
/// closed as slow. Here 64 large changes land in one transaction after a
/// hole (`seq` 1 is never stored), so the writer sees the gap, reads the
/// database, then feeds the whole burst into a socket nobody reads.
#[tokio::test]
async fn a_client_that_stops_reading_during_a_burst_after_a_gap_is_closed_by_the_send_timeout() {
    let dir = temp_data_dir();
    let server = Webserver::start(dir.path(), &["--send-timeout-secs", "1"]);
    // Resumes from 0, so the first live `seq`, 2, is a gap.
    let _stalled = small_buffer_client_with(&server, "?after_seq=0").await;
    server.process.wait_for_log("websocket connected", LONG);
    let mut db = rusqlite::Connection::open(dir.path().join("events.db")).expect("open the database");
    let tx = db.transaction().expect("begin");
    for seq in 2..=65 {
        let mut event = e2e::sample_event(seq);
        event.event_id = format!("evt_{}_{:04x}", event.timestamp.unix_ms(), seq);
        event.description = format!("{} {}", "A long description.".repeat(50), seq);
        event.detected_objects = (0..100)
            .map(|i| shared::model::DetectedObject {
                label: format!("object{i}"),
                confidence: 0.5,
                bbox: shared::model::BoundingBox { x: 1.0, y: 2.0, width: 3.0, height: 4.0 },
            })
            .collect();
        tx.execute(
            "INSERT INTO changes (seq, event_id, kind, event) VALUES (?1, ?2, 'new', ?3)",
            rusqlite::params![seq, event.event_id, event.to_json()],
        )
        .expect("insert the change");
        tx.execute(
            "INSERT INTO events (seq, event_id, camera_id, timestamp, motion_confidence, detected_objects, \
             description, image_path, metadata, created_at, state, end_time, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?8, ?9, 'ended', ?4, ?9)",
            rusqlite::params![
                seq,
                event.event_id,
                event.camera_id,
                event.timestamp.to_string(),
                event.motion_confidence,
                serde_json::to_string(&event.detected_objects).expect("objects"),
                event.description,
                serde_json::to_string(&event.metadata).expect("metadata"),
                event.created_at.to_string(),
            ],
        )
        .expect("insert the event");
    }
    tx.commit().expect("commit");
    let line = server.process.wait_for_log("slow consumer: a write is stuck", LONG);
    assert!(line.contains("conn=1"), "{line}");
    let metrics = get_json(&format!("{}/api/metrics", server.url)).await;
    assert_eq!(metrics["websocket"]["connections"]["slow_consumer_closes"], 1, "{metrics}");
}

/// `/metrics` parses with the reference OpenMetrics parser and follows the
/// naming rules: a prefix, base units, `_total` counters, histograms for
/// times (no quantiles or `_ms` in names), HELP on every family.
#[tokio::test]
async fn prometheus_metrics_parse_and_follow_the_naming_rules() {
    let dir = temp_data_dir();
    let server = Webserver::start(dir.path(), &[]);
    let det = detector(dir.path(), &["--rate", "20", "--heartbeat-secs", "0.2", "--wait-subscribers", "1"]);
    server.wait_for_detector();
    e2e::health_until(&server.url, "a heartbeat with frames", |h| {
        h["detectors"][0]["stats"]["frames_processed"].as_u64().is_some_and(|n| n > 0)
    })
    .await;
    let response = get(&format!("{}/metrics", server.url)).await;
    let kind = response.headers()["content-type"].to_str().expect("type").to_owned();
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    let families = e2e::parse_openmetrics(&response.text().await.expect("text"));

    for family in &families {
        let name = family["name"].as_str().expect("name");
        let kind = family["type"].as_str().expect("type");
        assert!(name.starts_with("lookout_") || name.starts_with("process_"), "{name}: no lookout_ prefix");
        assert!(!family["help"].as_str().unwrap_or_default().is_empty(), "{name}: no HELP");
        for banned in ["_ms", "_p50", "_p95", "_p99", "percent", "quantile"] {
            assert!(!name.contains(banned), "{name}: {banned} in a name (use base units and histograms)");
        }
        let samples = family["samples"].as_array().expect("samples");
        if kind == "counter" {
            assert!(samples.iter().all(|s| s["name"] == format!("{name}_total")), "{name}: {samples:?}");
        }
        if kind == "histogram" {
            assert!(name.ends_with("_seconds") && family["unit"] == "seconds", "{name}: times are in seconds");
        }
        assert!(samples.iter().all(|s| s["labels"].get("quantile").is_none()), "{name}: a quantile label");
    }
    let types: std::collections::BTreeMap<&str, &str> =
        families.iter().map(|f| (f["name"].as_str().unwrap_or(""), f["type"].as_str().unwrap_or(""))).collect();
    for (name, kind) in [
        ("lookout_broadcast_latency_seconds", "histogram"),
        ("lookout_detector_inference_seconds", "histogram"),
        ("lookout_websocket_messages_sent", "counter"),
        ("process_cpu_seconds", "counter"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_start_time_seconds", "gauge"),
        ("process_open_fds", "gauge"),
    ] {
        assert_eq!(types.get(name), Some(&kind), "{name} in {types:?}");
    }
    // The dry run's inference times land in buckets that add up.
    let inference = e2e::metric_samples(&families, "lookout_detector_inference_seconds");
    let count = inference.iter().find(|s| s["name"] == "lookout_detector_inference_seconds_count").expect("count");
    let inf = inference
        .iter()
        .find(|s| s["name"] == "lookout_detector_inference_seconds_bucket" && s["labels"]["le"] == "+Inf")
        .expect("+Inf bucket");
    assert!(count["value"].as_f64().is_some_and(|n| n > 0.0), "{inference:#?}");
    assert_eq!(count["value"], inf["value"], "the +Inf bucket counts every sample");
    det.terminate();
    assert!(det.wait(LONG).0.success());
}
