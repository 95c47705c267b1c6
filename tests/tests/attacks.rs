//! Attacks a hostile local user or web page would try, each against the
//! real binaries, each a regression test for a hole that was open
//! (docs/reliability.md, "Hostile input and attacks").

use std::time::Duration;

use e2e::{Process, Webserver, arg, health_until, temp_data_dir, ws};
use shared::wire::frame::{Frame, Hello, Role};
use shared::wire::{FrameReader, FrameWriter, WireKey, handshake};

const LONG: Duration = Duration::from_secs(30);
const PASSWORD: &str = "SuperSecretPw";

/// A camera URL's password never leaves the detector: not in its log lines
/// (ffmpeg's relayed errors included), `last_error`, heartbeats, health,
/// metrics, or the exit summary.
#[tokio::test]
async fn camera_passwords_are_masked_on_every_surface() {
    let dir = temp_data_dir();
    let webserver = Webserver::start(dir.path(), &["--heartbeat-secs", "1"]);
    let door = format!("door=rtsp://admin:{PASSWORD}@127.0.0.1:1/stream1");
    let snap = format!("snap=http://127.0.0.1:1/snap.cgi?user=admin&pwd={PASSWORD}2");
    let detector = Process::start(
        "detector",
        &[
            "--data-dir",
            arg(dir.path()),
            "--no-objects",
            "--camera",
            &door,
            "--camera",
            &snap,
            "--heartbeat-secs",
            "0.5",
        ],
    );
    webserver.wait_for_detector();
    let camera = e2e::camera_status;
    let health = health_until(&webserver.url, "both cameras failed twice", |h| {
        ["door", "snap"].iter().all(|id| camera(h, id)["restarts"].as_u64() >= Some(2))
    })
    .await;
    // ffmpeg's own line names the URL: it is there, masked.
    let door_error = camera(&health, "door")["last_error"].as_str().unwrap_or_default().to_owned();
    assert!(door_error.contains("rtsp://admin:***@127.0.0.1:1/stream1"), "{door_error}");
    let snap_error = camera(&health, "snap")["last_error"].as_str().unwrap_or_default().to_owned();
    assert!(snap_error.contains("pwd=***"), "{snap_error}");

    let http = reqwest::Client::new();
    for path in ["/api/health", "/api/metrics", "/metrics", "/api/cameras"] {
        let body = http.get(format!("{}{path}", webserver.url)).send().await.expect("GET").text().await.expect("body");
        assert!(!body.contains(PASSWORD), "{path} shows the password: {body}");
    }
    detector.wait_for_log("ffmpeg: rtsp://admin:***@", LONG);
    detector.terminate();
    let logs = detector.logs().join("\n");
    let (status, summary) = detector.wait(LONG);
    assert!(status.success(), "{status}: {summary}");
    assert!(summary.contains("door"), "the summary names the failed camera: {summary}");
    assert!(!logs.contains(PASSWORD), "a log line shows the password:\n{logs}");
    assert!(!summary.contains(PASSWORD), "the exit summary shows the password:\n{summary}");
    assert!(!webserver.process.logs().join("\n").contains(PASSWORD));
}

/// A fake detector: serves `path`, and on each connection says `Hello`,
/// proves itself with `key` and sends whatever `frames` yields; or, with no
/// key, sends the frames queued so far right after `Hello`.
/// Returns how many connections it served. (Tests using it run on a
/// multi-threaded runtime: the harness blocks while waiting for log lines.)
fn fake_publisher(
    path: &std::path::Path,
    key: Option<WireKey>,
    mut frames: tokio::sync::mpsc::Receiver<Frame>,
) -> tokio::task::JoinHandle<usize> {
    let listener = tokio::net::UnixListener::bind(path).expect("bind the fake socket");
    tokio::spawn(async move {
        let mut served = 0;
        loop {
            let Ok((stream, _)) = listener.accept().await else { return served };
            served += 1;
            let (read, write) = stream.into_split();
            let (mut reader, mut writer) = (FrameReader::new(read), FrameWriter::new(write));
            let hello = Hello::new(Role::Publisher, "fake-detector");
            let accepted = match &key {
                Some(key) => handshake(&mut reader, &mut writer, hello, Role::Subscriber, key).await.is_ok(),
                None => writer.write_frame(&Frame::Hello(hello)).await.is_ok(),
            };
            if key.is_some() && !accepted {
                continue;
            }
            if key.is_none() {
                while let Ok(frame) = frames.try_recv() {
                    let _ = writer.write_frame(&frame).await;
                }
                // Hold on until the webserver hangs up.
                while let Ok(Some(_)) = reader.read_frame().await {}
                continue;
            }
            while let Some(frame) = frames.recv().await {
                if writer.write_frame(&frame).await.is_err() {
                    break;
                }
            }
            if frames.is_closed() {
                return served;
            }
        }
    })
}

fn forged(seq: i64) -> Frame {
    let mut event = e2e::sample_event(seq);
    event.event_id = format!("evt_{}_dead", 1_700_000_000_000i64 + seq);
    event.description = "FORGED".into();
    // Every kind of change: an `end` or `update` of an event that was never
    // announced is as forged as a `new`.
    let kind = [shared::ChangeKind::New, shared::ChangeKind::Update, shared::ChangeKind::End][seq as usize % 3];
    Frame::Change(shared::Change { kind, event })
}

async fn post_event(http: &reqwest::Client, url: &str, n: usize) -> serde_json::Value {
    let body = serde_json::json!({"camera_id": "door", "motion_confidence": 0.5, "description": format!("real {n}")});
    e2e::create_event(http, url, &body).await
}

async fn rejected_announcements(http: &reqwest::Client, url: &str) -> u64 {
    let metrics: serde_json::Value =
        http.get(format!("{url}/api/metrics")).send().await.expect("GET").json().await.expect("JSON");
    metrics["events"]["rejected_announcements"].as_u64().expect("rejected_announcements")
}

/// A socket served by someone without the data directory's wire key is
/// never heard: no forged event reaches a client, no real one is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_without_the_wire_key_injects_nothing() {
    let dir = temp_data_dir();
    for (name, key) in [("keyless", None), ("wrong-key", Some(WireKey::generate()))] {
        let socket = dir.path().join(format!("{name}.sock"));
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        for seq in 1..=8 {
            tx.send(forged(seq)).await.expect("queue");
        }
        let _fake = fake_publisher(&socket, key, rx);
        let webserver = Webserver::start(dir.path(), &["--socket", arg(&socket)]);
        let health = health_until(&webserver.url, "the link refused", |h| {
            h["detectors"][0]["last_error"].as_str().is_some_and(|e| e.contains("wire") || e.contains("proof"))
        })
        .await;
        assert_eq!(health["detectors"][0]["connected"], false, "{name}: {health:#}");
        let mut client = ws::connect(&webserver.ws_url("?after_seq=0"), None).await.expect("connect");
        let http = reqwest::Client::new();
        let mut posted = Vec::new();
        for n in 0..8 {
            posted.push(post_event(&http, &webserver.url, n).await["event_id"].as_str().map(str::to_owned));
        }
        let received: Vec<_> = ws::events(&mut client, 8)
            .await
            .into_iter()
            .map(|(e, _)| e["event_id"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(received, posted, "{name}: exactly the real events, in order");
        drop(tx);
        drop(webserver);
        std::fs::remove_file(dir.path().join("events.db")).ok();
        std::fs::remove_file(dir.path().join("events.db-wal")).ok();
        std::fs::remove_file(dir.path().join("events.db-shm")).ok();
    }
}

/// Even a publisher that holds the key cannot make clients see an event
/// the database does not have, nor hide the real event of that `seq`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_frames_never_reach_clients_nor_hide_real_events() {
    let dir = temp_data_dir();
    let socket = dir.path().join("fake.sock");
    let key = WireKey::load_or_create(&dir.path().join("wire.key")).expect("key");
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let _fake = fake_publisher(&socket, Some(key), rx);
    let webserver = Webserver::start(dir.path(), &["--socket", arg(&socket)]);
    webserver.wait_for_detector();
    let mut client = ws::connect(&webserver.ws_url("?after_seq=0"), None).await.expect("connect");
    let http = reqwest::Client::new();
    let mut posted = Vec::new();
    for n in 0..8 {
        // The forgery claims the seq the next real event will take...
        tx.send(forged(n as i64 + 1)).await.expect("send");
        let deadline = std::time::Instant::now() + LONG;
        while rejected_announcements(&http, &webserver.url).await < n as u64 + 1 {
            assert!(std::time::Instant::now() < deadline, "forgery {n} was never examined");
            tokio::task::yield_now().await;
        }
        // ...and the real one must still be delivered.
        posted.push(post_event(&http, &webserver.url, n).await["event_id"].as_str().map(str::to_owned));
    }
    // A forgery of an existing seq changes nothing either.
    tx.send(forged(3)).await.expect("send");
    let received: Vec<_> =
        ws::events(&mut client, 8).await.into_iter().map(|(e, _)| e["event_id"].as_str().map(str::to_owned)).collect();
    assert_eq!(received, posted, "the real events, in order, and no forged one");
    let mut resumed = ws::connect(&webserver.ws_url("?after_seq=0"), None).await.expect("connect");
    let replayed: Vec<_> =
        ws::events(&mut resumed, 8).await.into_iter().map(|(e, _)| e["event_id"].as_str().map(str::to_owned)).collect();
    assert_eq!(replayed, posted, "a resuming client gets them too");
    let logs = webserver.process.logs().join("\n");
    assert!(logs.contains("not in the database; not broadcast"), "{logs}");
}

/// As root: a detector socket served by another user is not trusted,
/// whether told by the file's owner or, once the file is chowned to us, by
/// the uid of the process behind it (`SO_PEERCRED`).
#[tokio::test]
async fn a_socket_of_another_user_is_not_trusted() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to act as another user");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    const NOBODY: u32 = 65534;
    let dir = temp_data_dir();
    // Others may pass through (not list or read) our data directory.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).expect("chmod");
    let theirs = dir.path().join("nobody");
    std::fs::create_dir(&theirs).expect("mkdir");
    nix::unistd::chown(&theirs, Some(nix::unistd::Uid::from_raw(NOBODY)), None).expect("chown");
    let socket = theirs.join("detector.sock");
    let intruder = Process::start_as(
        NOBODY,
        "detector",
        &["--dry-run", "--event-secs", "0", "--rate", "20", "--data-dir", arg(&theirs)],
    );
    intruder.wait_for_log("publishing events on the detector socket", LONG);
    let webserver = Webserver::start(dir.path(), &["--socket", arg(&socket)]);
    health_until(&webserver.url, "the socket's owner refused", |h| {
        h["detectors"][0]["last_error"].as_str().is_some_and(|e| e.contains("belongs to uid 65534"))
    })
    .await;
    // Make the file ours: now the peer's uid is what refuses it.
    nix::unistd::chown(&socket, Some(nix::unistd::geteuid()), None).expect("chown");
    let health = health_until(&webserver.url, "the peer's uid refused", |h| {
        h["detectors"][0]["last_error"].as_str().is_some_and(|e| e.contains("runs as uid 65534"))
    })
    .await;
    assert_eq!(health["detectors"][0]["connections"], 0, "never connected: {health:#}");
    assert_eq!(e2e::stored_events(dir.path()).len(), 0);
}

/// A page that rebinds its own name to 127.0.0.1 sends that name in
/// `Host`: a loopback server refuses it (421) everywhere, WebSocket
/// upgrades included, and serves its own names and `--allowed-host` ones.
#[tokio::test]
async fn dns_rebinding_hosts_are_refused() {
    let dir = temp_data_dir();
    let server = Webserver::start(dir.path(), &["--allowed-host", "nvr.home.arpa"]);
    let http = reqwest::Client::new();
    let port = server.url.rsplit(':').next().expect("port").to_owned();
    for path in ["/", "/api/health", "/api/events", "/metrics", "/docs/", "/api/openapi.json"] {
        let url = format!("{}{path}", server.url);
        let evil = http.get(&url).header("host", format!("evil.com:{port}")).send().await.expect("GET");
        assert_eq!(evil.status(), 421, "{path}");
        let body: serde_json::Value = evil.json().await.expect("a JSON error");
        assert_eq!(body["error"], "misdirected_request", "{path}");
        for ok in [format!("localhost:{port}"), format!("127.0.0.1:{port}"), format!("nvr.home.arpa:{port}")] {
            let response = http.get(&url).header("host", &ok).send().await.expect("GET");
            assert_ne!(response.status(), 421, "{path} with Host {ok}");
        }
    }
    let post = http
        .post(format!("{}/api/events", server.url))
        .header("host", "evil.com")
        .json(&serde_json::json!({"camera_id": "door", "motion_confidence": 0.5, "description": "forged"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(post.status(), 421);
    assert!(e2e::stored_events(dir.path()).is_empty(), "nothing was created");
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = server.ws_url("").into_client_request().expect("request");
    request.headers_mut().insert("host", "evil.com".parse().expect("header"));
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 421),
        other => panic!("an upgrade for evil.com should get 421, got {other:?}"),
    }
}

/// Opens a TCP connection to `server` from `source` (a 127.0.0.x address).
async fn connect_from(
    source: std::net::Ipv4Addr,
    server: std::net::SocketAddr,
) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind((source, 0).into())?;
    socket.connect(server).await
}

/// Whether the server closes `stream` within `within`.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {} // a 408 or similar before the close
        }
    }
}

/// Slowloris: connections that send half a request are closed within the
/// header timeout, one address cannot hold more than its share, a normal
/// client is served throughout, and memory comes back afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_are_timed_out_capped_and_do_not_starve_others() {
    use tokio::io::AsyncWriteExt;
    const PER_ADDRESS: usize = 800;
    const ATTACKERS: u8 = 4;
    const EACH: usize = 1000;
    let dir = temp_data_dir();
    let server = Webserver::start(
        dir.path(),
        &["--header-timeout-secs", "5", "--max-connections-per-address", &PER_ADDRESS.to_string()],
    );
    let address: std::net::SocketAddr = server.url.trim_start_matches("http://").parse().expect("address");
    let http = reqwest::Client::new();
    let health = format!("{}/api/health", server.url);
    assert_eq!(http.get(&health).send().await.expect("GET").status(), 200);
    let idle_rss = e2e::rss_bytes(server.process.pid());

    let mut held = Vec::new();
    for a in 0..ATTACKERS {
        let source = std::net::Ipv4Addr::new(127, 0, 0, 10 + a);
        for _ in 0..EACH {
            let mut stream = connect_from(source, address).await.expect("connect");
            // Half a request: the head never ends.
            let _ = stream.write_all(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\nX-Slow: 1\r\n").await;
            held.push(stream);
        }
        // Served while the attack holds its connections.
        assert_eq!(http.get(&health).send().await.expect("GET during the attack").status(), 200);
    }
    let opened = std::time::Instant::now();
    let during_rss = e2e::rss_bytes(server.process.pid());
    // Beyond its cap, an address's connections were closed at once, and
    // every other one by the header timeout (5 s).
    for stream in &mut held {
        assert!(closed_within(stream, Duration::from_secs(8)).await, "a half-sent request was left open");
    }
    assert!(opened.elapsed() < Duration::from_secs(8), "closed within the timeout: {:?}", opened.elapsed());
    let metrics: serde_json::Value =
        http.get(format!("{}/api/metrics", server.url)).send().await.expect("GET").json().await.expect("JSON");
    let refused_by_cap = metrics["http"]["refused_per_address"].as_u64().expect("refused_per_address");
    assert_eq!(refused_by_cap, u64::from(ATTACKERS) * (EACH - PER_ADDRESS) as u64, "{metrics:#}");
    assert_eq!(http.get(&health).send().await.expect("GET after").status(), 200);
    drop(held);
    // The memory the attack took is given back.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut after_rss = e2e::rss_bytes(server.process.pid());
    while after_rss > 2 * idle_rss && std::time::Instant::now() < deadline {
        let _ = http.get(&health).send().await;
        after_rss = e2e::rss_bytes(server.process.pid());
    }
    eprintln!("RSS idle {idle_rss} during {during_rss} after {after_rss}");
    assert!(during_rss > idle_rss + (10 << 20), "the attack cost memory: idle {idle_rss}, during {during_rss}");
    assert!(after_rss <= 2 * idle_rss, "RSS came back: idle {idle_rss}, during {during_rss}, after {after_rss}");
}

/// Snapshot serving does not trust the file system: links (to
/// `/etc/passwd`, the database, `/dev/zero`), a linked day directory, a
/// FIFO, a hard link and an oversize file are all refused quickly, a real
/// snapshot is served, and the server still stops at once afterwards.
#[tokio::test]
async fn snapshot_serving_refuses_links_devices_fifos_and_giants() {
    let dir = temp_data_dir();
    let day = dir.path().join("snapshots/2026-11-25");
    std::fs::create_dir_all(&day).expect("mkdir");
    let server = Webserver::start(dir.path(), &[]);
    let good: Vec<u8> = [0xFF, 0xD8, 0xFF, 0xE0].into_iter().chain((0..5000).map(|i| (i % 251) as u8)).collect();
    std::fs::write(day.join("good.jpg"), &good).expect("write");
    std::os::unix::fs::symlink("/etc/passwd", day.join("passwd.jpg")).expect("symlink");
    std::os::unix::fs::symlink(dir.path().join("events.db"), day.join("db.jpg")).expect("symlink");
    std::os::unix::fs::symlink("/dev/zero", day.join("zero.jpg")).expect("symlink");
    std::os::unix::fs::symlink("/etc", dir.path().join("snapshots/etc")).expect("symlink");
    std::fs::hard_link(dir.path().join("events.db"), day.join("hard.jpg")).expect("hard link");
    nix::unistd::mkfifo(&day.join("fifo.jpg"), nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    std::fs::File::create(day.join("giant.jpg")).and_then(|f| f.set_len(11 << 20)).expect("giant");

    let http = reqwest::Client::new();
    let image = |path: &str| {
        let http = http.clone();
        let url = server.url.clone();
        let path = path.to_owned();
        async move {
            let body = serde_json::json!({"camera_id": "door", "motion_confidence": 0.5, "description": "x", "image_path": path});
            let created = e2e::create_event(&http, &url, &body).await;
            let id = created["event_id"].as_str().expect("created").to_owned();
            tokio::time::timeout(Duration::from_secs(5), http.get(format!("{url}/api/events/{id}/image")).send())
                .await
                .expect("answered promptly")
                .expect("GET")
        }
    };
    let served = image("snapshots/2026-11-25/good.jpg").await;
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-length"], good.len().to_string().as_str());
    assert_eq!(served.bytes().await.expect("body").as_ref(), good.as_slice());
    for hostile in ["passwd", "db", "zero", "hard", "fifo", "giant"] {
        let response = image(&format!("snapshots/2026-11-25/{hostile}.jpg")).await;
        assert_eq!(response.status(), 404, "{hostile}");
    }
    assert_eq!(image("snapshots/etc/passwd.jpg").await.status(), 404, "a linked directory");
    let logs = server.process.logs().join("\n");
    assert!(logs.contains("refusing to serve a snapshot"), "{logs}");
    server.process.terminate();
    let started = std::time::Instant::now();
    let Webserver { process, .. } = server;
    let (status, _) = process.wait(LONG);
    assert!(status.success(), "{status}");
    assert!(started.elapsed() < Duration::from_secs(4), "stopped promptly: {:?}", started.elapsed());
}

/// Costly searches are bounded: beyond the permits they get 503 with
/// `Retry-After` at once, text search goes through the index, and the live
/// feed keeps flowing while they run (it reads through its own connections).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_searches_is_bounded_and_does_not_stall_the_feed() {
    let dir = temp_data_dir();
    seed_events(dir.path(), 40_000);
    let server = Webserver::start(dir.path(), &[]);
    let http = reqwest::Client::new();
    // Through the index: one hit among 40,000.
    let hit: serde_json::Value = http
        .get(format!("{}/api/events?q=number%2012345%20at", server.url))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(hit["events"].as_array().map(Vec::len), Some(1), "{hit}");

    let mut client = ws::connect(&server.ws_url(""), None).await.expect("connect");
    // Eight loops of the costliest search there is (too short for the
    // index: a scan), as in the attack.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut loops = Vec::new();
    for _ in 0..8 {
        let (http, url, stop) = (http.clone(), format!("{}/api/events?q=zz&limit=1000", server.url), stop.clone());
        loops.push(tokio::spawn(async move {
            let (mut ok, mut busy) = (0, 0);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let response = http.get(&url).send().await.expect("GET");
                match response.status().as_u16() {
                    200 => ok += 1,
                    503 => {
                        assert_eq!(response.headers()["retry-after"], "1");
                        busy += 1;
                    }
                    other => panic!("search answered {other}"),
                }
            }
            (ok, busy)
        }));
    }
    let mut posted = Vec::new();
    for n in 0..10 {
        posted.push(post_event(&http, &server.url, n).await["event_id"].as_str().map(str::to_owned));
    }
    let received: Vec<_> =
        ws::events(&mut client, 10).await.into_iter().map(|(e, _)| e["event_id"].as_str().map(str::to_owned)).collect();
    assert_eq!(received, posted, "the feed kept flowing during the searches");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut ok, mut busy) = (0, 0);
    for l in loops {
        let (o, b) = l.await.expect("loop");
        ok += o;
        busy += b;
    }
    assert!(ok > 0 && busy > 0, "some searches ran, the excess was refused: {ok} ok, {busy} busy");
    // The webserver brings the text index up to date by itself (searches
    // scanned the rows it had not reached meanwhile).
    server.process.wait_for_log("text index caught up", LONG);
    let store = shared::Store::open(dir.path().join("events.db")).expect("open");
    // Within a batch (500) of the head: events posted meanwhile may wait.
    let lag = store.text_index_lag().expect("lag");
    assert!(lag < 500, "40,000 events were indexed, {lag} left");
}

/// A raw WebSocket connection past its handshake, for frames no client
/// library would send. `key` is sent as `Sec-WebSocket-Key`; returns the
/// stream and the status line.
async fn raw_upgrade(server: &Webserver, key: &str) -> (tokio::net::TcpStream, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = server.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
    let request = format!(
        "GET /ws/events HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).await.expect("response"), 1, "closed before the response ended");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    (stream, head.lines().next().unwrap_or_default().to_owned())
}

/// Reads frames until a close frame; returns its status code.
async fn close_code(stream: &mut tokio::net::TcpStream) -> Option<u16> {
    use tokio::io::AsyncReadExt;
    loop {
        let mut header = [0u8; 2];
        tokio::time::timeout(LONG, stream.read_exact(&mut header)).await.expect("a frame in time").ok()?;
        let len = match header[1] & 0x7F {
            126 => {
                let mut n = [0u8; 2];
                stream.read_exact(&mut n).await.ok()?;
                u64::from(u16::from_be_bytes(n))
            }
            127 => {
                let mut n = [0u8; 8];
                stream.read_exact(&mut n).await.ok()?;
                u64::from_be_bytes(n)
            }
            n => u64::from(n),
        };
        let mut payload = vec![0u8; len as usize];
        stream.read_exact(&mut payload).await.ok()?;
        if header[0] & 0x0F == 0x8 {
            return payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
        }
    }
}

/// A masked client frame (the mask is zeros: the payload goes as is).
fn client_frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    [&[first_byte, 0x80 | payload.len() as u8, 0, 0, 0, 0][..], payload].concat()
}

/// RFC 6455 is enforced: a key that is not 16 bytes of base64 gets 400;
/// a reserved opcode or a bad control frame closes with 1002, invalid
/// UTF-8 in a text message with 1007.
#[tokio::test]
async fn websocket_protocol_violations_get_the_rfc_answers() {
    use tokio::io::AsyncWriteExt;
    let dir = temp_data_dir();
    let server = Webserver::start(dir.path(), &[]);
    let (_, status) = raw_upgrade(&server, "abc").await;
    assert!(status.contains(" 400 "), "a 3-byte key: {status}");
    for (name, frame, code) in [
        ("reserved opcode", client_frame(0x83, b"x"), 1002),
        ("fragmented ping", client_frame(0x09, b"x"), 1002),
        ("invalid UTF-8", client_frame(0x81, &[0xC3, 0x28]), 1007),
    ] {
        let (mut stream, status) = raw_upgrade(&server, "dGhlIHNhbXBsZSBub25jZQ==").await;
        assert!(status.contains(" 101 "), "{status}");
        stream.write_all(&frame).await.expect("frame");
        assert_eq!(close_code(&mut stream).await, Some(code), "{name}");
    }
}

/// A client that pipelines far more pings than the reply box holds, while
/// reading, gets every pong and stays connected.
#[tokio::test]
async fn pipelined_pings_from_a_reading_client_are_all_answered() {
    use futures_util::SinkExt;
    let dir = temp_data_dir();
    let server = Webserver::start(dir.path(), &[]);
    let mut client = ws::connect(&server.ws_url(""), None).await.expect("connect");
    for _ in 0..256 {
        client.feed(ws::Message::text(r#"{"type":"ping"}"#)).await.expect("feed");
    }
    client.flush().await.expect("flush");
    let mut pongs = 0;
    while pongs < 256 {
        match ws::next(&mut client).await {
            Ok((value, _)) if value["type"] == "pong" => pongs += 1,
            Ok((value, _)) if value["type"] == "ping" => {}
            Ok((value, _)) => panic!("unexpected {value}"),
            Err(close) => panic!("closed after {pongs} pongs: {close:?}"),
        }
    }
    let metrics: serde_json::Value =
        reqwest::get(format!("{}/api/metrics", server.url)).await.expect("GET").json().await.expect("JSON");
    assert_eq!(metrics["websocket"]["connections"]["slow_consumer_closes"], 0, "{metrics:#}");
}

/// Fills `dir`'s database with `n` events, quickly: commits that do not
/// wait for the disk (a test's history need not survive a power cut).
fn seed_events(dir: &std::path::Path, n: usize) {
    let mut store = shared::Store::open(dir.join("events.db")).expect("open");
    store.without_flush().expect("no flush");
    for i in 0..n {
        let mut event = e2e::sample_event(0);
        event.camera_id = "yard".into();
        event.description = format!("Motion number {i} at the yard");
        let new = shared::NewEvent {
            event_id: event.event_id,
            camera_id: event.camera_id,
            timestamp: event.timestamp,
            state: event.state,
            end_time: event.end_time,
            motion_confidence: event.motion_confidence,
            detected_objects: event.detected_objects,
            description: event.description,
            image_path: event.image_path,
            metadata: event.metadata,
        };
        store.insert(&new).expect("insert");
    }
}

fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.count()).unwrap_or(0)
}

/// A flood of upgrades that all ask for the whole history queues for a few
/// catch-up permits: no thread per client, and every client still gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_catch_ups_is_bounded() {
    let dir = temp_data_dir();
    seed_events(dir.path(), 2000);
    let server = Webserver::start(dir.path(), &[]);
    let before = threads(server.process.pid());
    // Each read from the start, so no client is closed for not reading.
    let mut readers = Vec::new();
    for _ in 0..200 {
        let mut client = ws::connect(&server.ws_url("?after_seq=0"), None).await.expect("connect");
        readers.push(tokio::spawn(async move {
            let seqs: Vec<i64> =
                ws::events(&mut client, 2000).await.iter().filter_map(|(e, _)| e["seq"].as_i64()).collect();
            seqs == (1..=2000).collect::<Vec<i64>>()
        }));
    }
    let during = threads(server.process.pid());
    assert!(during <= before + 2, "threads grew from {before} to {during}");
    // Every one of them still gets the whole history, in order.
    for reader in readers {
        assert!(reader.await.expect("reader"), "a client got the history whole and in order");
    }
}

/// Damage in the middle of the file is found at start (in the background)
/// and shown in health, not only when a catch-up happens upon it.
#[tokio::test]
async fn damage_in_the_middle_of_the_database_is_reported() {
    let dir = temp_data_dir();
    seed_events(dir.path(), 20_000);
    {
        // Fold the WAL into the file, then scribble over a page in the middle.
        let conn = rusqlite::Connection::open(dir.path().join("events.db")).expect("open");
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).expect("checkpoint");
    }
    let path = dir.path().join("events.db");
    let len = std::fs::metadata(&path).expect("db").len();
    let mut bytes = std::fs::read(&path).expect("read");
    let middle = (len / 2 / 4096 * 4096) as usize;
    bytes[middle..middle + 4096].fill(0xA5);
    std::fs::write(&path, bytes).expect("write");
    let server = Webserver::start(dir.path(), &[]);
    let health = health_until(&server.url, "the damage reported", |h| h["database"]["integrity"] == "damaged").await;
    assert_eq!(health["status"], "degraded", "{health:#}");
    assert!(health["database"]["error"].as_str().is_some_and(|e| e.contains("quick_check")), "{health:#}");
}

/// The smaller holes: the bearer scheme in any case, bounds on what POST
/// accepts, and API-created events in both logs like a detector's.
#[tokio::test]
async fn api_events_are_bounded_logged_and_bearer_is_case_insensitive() {
    let dir = temp_data_dir();
    let token = "s3cret-token_0123456789";
    let server = Webserver::start(dir.path(), &["--token", token]);
    let http = reqwest::Client::new();
    let url = format!("{}/api/events", server.url);
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let response = http.get(&url).header("authorization", format!("{scheme} {token}")).send().await.expect("GET");
        assert_eq!(response.status(), 200, "{scheme}");
    }
    let post = |body: serde_json::Value| {
        let (http, url) = (http.clone(), url.clone());
        async move { http.post(url).bearer_auth(token).json(&body).send().await.expect("POST") }
    };
    let object = |x: f64| serde_json::json!([{"label": "cat", "confidence": 0.5, "bbox": {"x": x, "y": 0, "width": 1, "height": 1}}]);
    for (why, body, field) in [
        (
            "negative zero",
            serde_json::json!({"camera_id": "door", "motion_confidence": -0.0, "description": "x"}),
            "motion_confidence",
        ),
        (
            "a huge box",
            serde_json::json!({"camera_id": "door", "motion_confidence": 0.5, "description": "x", "detected_objects": object(1e308)}),
            "bbox.x",
        ),
        (
            "the year 9999",
            serde_json::json!({"camera_id": "door", "motion_confidence": 0.5, "description": "x", "timestamp": "9999-01-01T00:00:00Z"}),
            "timestamp",
        ),
    ] {
        let response = post(body).await;
        assert_eq!(response.status(), 422, "{why}");
        assert!(response.text().await.expect("body").contains(field), "{why} names {field}");
    }
    let old = post(serde_json::json!({"camera_id": "door", "motion_confidence": 0.5, "description": "imported",
        "timestamp": "2020-01-01T00:00:00Z", "backfill": true}))
    .await;
    assert_eq!(old.status(), 201, "backfill allows an old time");
    let created: serde_json::Value =
        post(serde_json::json!({"camera_id": "door", "motion_confidence": 0.5, "description": "Doorbell pressed"}))
            .await
            .json()
            .await
            .expect("JSON");
    let id = created["event_id"].as_str().expect("id");
    let stored =
        http.get(format!("{url}/{id}")).bearer_auth(token).send().await.expect("GET").text().await.expect("body");
    let jsonl = std::fs::read_to_string(dir.path().join("events.jsonl")).expect("events.jsonl");
    let line = format!(r#"{{"change":"new","data":{stored}}}"#);
    assert!(jsonl.lines().any(|l| l == line), "the JSON line carries the stored event:\n{jsonl}");
    let text = std::fs::read_to_string(dir.path().join("events.log")).expect("events.log");
    assert!(text.lines().any(|line| line.contains(id) && line.contains("source=api")), "{text}");
    assert_eq!(jsonl.lines().count(), 2);
}

/// An idle keep-alive connection is closed too: the header timeout runs
/// again from each response, so a client cannot park connections between
/// requests either.
#[tokio::test]
async fn idle_keep_alive_connections_are_closed_after_the_header_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = temp_data_dir();
    let server = Webserver::start(dir.path(), &["--header-timeout-secs", "1"]);
    let address = server.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
    stream.write_all(format!("GET /api/health HTTP/1.1\r\nHost: {address}\r\n\r\n").as_bytes()).await.expect("request");
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&response).contains("\"websocket_clients\"") {
        let n = stream.read(&mut buf).await.expect("response");
        assert!(n > 0, "closed before the response: {}", String::from_utf8_lossy(&response));
        response.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&response).starts_with("HTTP/1.1 200"));
    let idle = std::time::Instant::now();
    assert!(closed_within(&mut stream, Duration::from_secs(5)).await, "an idle keep-alive connection stayed open");
    assert!(idle.elapsed() >= Duration::from_millis(900), "closed by the timeout, not at once: {:?}", idle.elapsed());
}
