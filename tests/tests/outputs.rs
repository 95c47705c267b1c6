//! Outputs (SPEC §9) against real receivers: Mosquitto, started here on a
//! free port, with a rumqttc subscriber; and a local HTTP receiver (axum)
//! that fails, refuses and goes away on purpose.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use e2e::{Process, Webserver, arg, free_port, temp_data_dir};
use hmac::{Hmac, Mac};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::Notify;

/// A Mosquitto broker on `port`, its state kept in `dir` and saved on every
/// change, so a subscriber's session outlives a kill -9.
struct Mosquitto {
    child: Child,
}

impl Mosquitto {
    fn start(port: u16, dir: &Path) -> Self {
        Self::start_with(port, dir, "")
    }

    /// Like [`Mosquitto::start`], with `more` (other listeners) in its
    /// configuration.
    fn start_with(port: u16, dir: &Path, more: &str) -> Self {
        let conf = dir.join("mosquitto.conf");
        let text = format!(
            "per_listener_settings false\nlistener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n\
             persistence_location {}/\nautosave_interval 1\nautosave_on_changes true\nlog_dest stderr\n\
             log_type error\nlog_type warning\nlog_type notice\nlog_type information\n{more}",
            dir.display()
        );
        std::fs::write(&conf, text).expect("mosquitto.conf");
        let binary = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("mosquitto is not installed (Debian package mosquitto; .ci/run installs it)");
        let mut child = Command::new(binary)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mosquitto");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        loop {
            let line = rx.recv_timeout(Duration::from_secs(10)).expect("mosquitto says it runs");
            if line.contains("running") {
                break;
            }
            assert!(!line.contains("Error"), "mosquitto: {line}");
        }
        Self { child }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone)]
struct Message {
    topic: String,
    payload: Vec<u8>,
}

impl Message {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).unwrap_or(Value::Null)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// A subscriber that keeps every message it gets, across broker restarts.
struct Subscriber {
    messages: Arc<Mutex<Vec<Message>>>,
    arrived: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Subscriber {
    /// Subscribes to `filters` at QoS 1. With `id`, a persistent session
    /// (the broker queues what arrives while it is away).
    async fn start(port: u16, id: Option<&str>, filters: &[&str]) -> Self {
        let persistent = id.is_some();
        let client_id = id.map_or_else(|| format!("test-{}", rand::random::<u32>()), str::to_owned);
        let mut options = MqttOptions::new(client_id, "127.0.0.1", port);
        options.set_clean_session(!persistent).set_max_packet_size(16 << 20, 16 << 20);
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let (messages, arrived) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Notify::new()));
        let (keep, wake) = (messages.clone(), arrived.clone());
        let filters: Vec<String> = filters.iter().map(|f| (*f).to_owned()).collect();
        let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
        let mut subscribed_tx = Some(subscribed_tx);
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) if !ack.session_present => {
                        for filter in &filters {
                            client.subscribe(filter.clone(), QoS::AtLeastOnce).await.expect("subscribe");
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(tx) = subscribed_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {}
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        keep.lock().expect("messages").push(Message { topic: p.topic, payload: p.payload.to_vec() });
                        wake.notify_waiters();
                    }
                    Ok(_) => {}
                    // The broker is down: rumqttc reconnects on the next poll.
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), subscribed).await.expect("subscribed in time").expect("suback");
        Self { messages, arrived, task }
    }

    fn messages(&self) -> Vec<Message> {
        self.messages.lock().expect("messages").clone()
    }

    /// Waits (at most 60 s) until `done` accepts the messages so far.
    async fn until(&self, what: &str, done: impl Fn(&[Message]) -> bool) -> Vec<Message> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            // Registered before the check, so an arrival in between wakes it
            // (`notify_waiters` wakes only registered waiters).
            let mut arrived = std::pin::pin!(self.arrived.notified());
            arrived.as_mut().enable();
            let messages = self.messages();
            if done(&messages) {
                return messages;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!("never got {what}; {} messages: {:?}", messages.len(), topics(&messages));
            }
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn topics(messages: &[Message]) -> Vec<&str> {
    messages.iter().map(|m| m.topic.as_str()).collect()
}

/// The `seq`s on `lookout/events`, as received.
fn event_seqs(messages: &[Message]) -> Vec<i64> {
    messages.iter().filter(|m| m.topic == "lookout/events").filter_map(|m| m.json()["seq"].as_i64()).collect()
}

/// The keys Home Assistant's MQTT discovery documentation lists as needed
/// for each platform Lookout uses (name and unique_id for entities that
/// belong to a device, the topic each platform reads), plus the device and
/// availability keys every Lookout entity has.
const REQUIRED: &[(&str, &[&str])] = &[
    ("binary_sensor", &["state_topic", "device_class", "payload_on", "payload_off"]),
    ("sensor", &["state_topic"]),
    ("image", &["image_topic", "content_type"]),
];
const EVERY_ENTITY: &[&str] = &["name", "unique_id", "availability_topic", "device"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_carries_every_change_in_order_across_a_broker_kill_and_a_webserver_crash() {
    let dir = temp_data_dir();
    let broker_dir = temp_data_dir();
    let port = free_port();
    let broker = Mosquitto::start(port, broker_dir.path());
    let subscriber = Subscriber::start(port, Some("lookout-test-sub"), &["lookout/#", "homeassistant/#"]).await;

    let mqtt = format!("mqtt://127.0.0.1:{port}");
    let detector = Process::start(
        "detector",
        &["--dry-run", "--camera", "front_door", "--rate", "4", "--event-secs", "1", "--data-dir", arg(dir.path())],
    );
    let web_port = free_port();
    let mut web = Webserver::start_on(dir.path(), web_port, &["--mqtt", &mqtt]);

    // Shapes: events, availability, retained state, discovery.
    let got = subscriber
        .until("ten events and the discovery configs", |m| {
            event_seqs(m).len() >= 10 && m.iter().any(|m| m.topic.ends_with("/motion/config"))
        })
        .await;
    let available = got.iter().rfind(|m| m.topic == "lookout/available").expect("availability");
    assert_eq!(available.text(), "online");
    for message in got.iter().filter(|m| m.topic == "lookout/events") {
        let body = message.json();
        let kind = body["type"].as_str().expect("type");
        assert!(["new", "update", "end"].contains(&kind), "{body}");
        assert_eq!(body["seq"], body["after"]["seq"], "{body}");
        assert_eq!(body["before"].is_null(), kind == "new", "only a new has no before: {body}");
        if kind == "end" {
            assert_eq!(body["after"]["state"], "ended", "{body}");
        }
    }
    assert!(got.iter().any(|m| m.topic == "lookout/front_door/motion" && ["ON", "OFF"].contains(&m.text().as_str())));
    for config in got.iter().filter(|m| m.topic.starts_with("homeassistant/") && !m.payload.is_empty()) {
        let platform = config.topic.split('/').nth(1).expect("platform");
        let payload = config.json();
        let (_, keys) = REQUIRED.iter().find(|(p, _)| *p == platform).unwrap_or_else(|| panic!("{}", config.topic));
        for key in keys.iter().chain(EVERY_ENTITY) {
            assert!(!payload[key].is_null(), "{} lacks {key}: {payload}", config.topic);
        }
        assert!(payload["device"]["identifiers"].as_array().is_some_and(|ids| !ids.is_empty()), "{payload}");
        assert_eq!(payload["availability_topic"], "lookout/available");
    }
    let motion = got.iter().find(|m| m.topic.ends_with("binary_sensor/lookout_front_door/motion/config"));
    assert_eq!(motion.expect("the motion sensor").json()["device_class"], "motion");

    // The broker dies and comes back; the webserver notices, and resends.
    broker.kill();
    let down =
        e2e::health_until(&web.url, "the MQTT output disconnected", |h| h["outputs"][0]["connected"] == false).await;
    assert_eq!(down["status"], "degraded", "{down}");
    let broker = Mosquitto::start(port, broker_dir.path());
    let before_crash = e2e::health_until(&web.url, "the MQTT output back", |h| {
        h["outputs"][0]["connected"] == true && h["outputs"][0]["retries"].as_u64() > Some(0)
    })
    .await;
    let seen = event_seqs(&subscriber.messages()).last().copied().unwrap_or(0);
    subscriber.until("events after the broker came back", |m| event_seqs(m).iter().any(|&s| s > seen + 3)).await;
    assert!(before_crash["outputs"][0]["lag"].as_i64().is_some());

    // The webserver is killed mid-stream and restarted on the same data.
    web.process.kill();
    let head_at_crash = e2e::stored_events(dir.path()).iter().map(|e| e.seq).max().unwrap_or(0);
    web = Webserver::start_on(dir.path(), web_port, &["--mqtt", &mqtt]);
    subscriber.until("events after the restart", |m| event_seqs(m).iter().any(|&s| s > head_at_crash + 3)).await;

    // The detector stops (ending what is active); every change arrives.
    detector.terminate();
    let (status, _) = detector.wait(Duration::from_secs(15));
    assert!(status.success(), "{status:?}");
    let head = e2e::stored_events(dir.path()).iter().map(|e| e.seq).max().expect("events");
    let caught_up = e2e::health_until(&web.url, "the output caught up", |h| {
        h["outputs"][0]["cursor"].as_i64() >= Some(head) && h["outputs"][0]["lag"] == 0
    })
    .await;
    let messages = subscriber.until("the last change", |m| event_seqs(m).contains(&head)).await;
    let seqs = event_seqs(&messages);
    let all_changes = change_seqs(dir.path(), seqs[0]);
    let mut received = seqs.clone();
    received.sort_unstable();
    received.dedup();
    assert_eq!(received, all_changes, "every change from the first received on, none missing");
    // In order: each delivery is the change right after the highest so
    // far, or a repeat (a redelivery from the cursor); never a skip ahead.
    let mut highest = seqs[0];
    for &seq in &seqs[1..] {
        if seq > highest {
            let next = all_changes.iter().find(|&&c| c > highest).copied();
            assert_eq!(Some(seq), next, "after {highest} came {seq}");
            highest = seq;
        }
    }
    let duplicates = seqs.len() - received.len();
    eprintln!("MQTT: {} deliveries of {} changes, {duplicates} duplicates (QoS 1)", seqs.len(), received.len());
    assert_eq!(caught_up["outputs"][0]["give_ups"], 0);

    // Retained topics end equal to the database: a fresh subscriber gets them.
    let fresh = Subscriber::start(port, None, &["lookout/front_door/#", "lookout/available"]).await;
    let retained = fresh.until("the retained state", |m| m.iter().any(|m| m.topic.ends_with("/last_event"))).await;
    let latest: BTreeMap<&str, &Message> = retained.iter().map(|m| (m.topic.as_str(), m)).collect();
    assert_eq!(latest["lookout/front_door/motion"].text(), "OFF", "nothing active after the detector stopped");
    let last = e2e::stored_events(dir.path()).into_iter().max_by_key(|e| e.seq).expect("an event");
    assert_eq!(latest["lookout/front_door/last_event"].json()["seq"], last.seq);
    for (topic, message) in &latest {
        let level = topic.rsplit('/').next().unwrap_or_default();
        if !["motion", "last_event", "snapshot", "state"].contains(&level) && *topic != "lookout/available" {
            assert_eq!(message.text(), "0", "{topic}: no object of an ended event counts");
        }
    }
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_label_a_camera_reports_has_a_count_sensor_before_any_event_has_it() {
    let dir = temp_data_dir();
    let broker_dir = temp_data_dir();
    let port = free_port();
    let _broker = Mosquitto::start(port, broker_dir.path());
    let watcher = Subscriber::start(port, None, &["homeassistant/sensor/lookout_porch/#", "lookout/porch/#"]).await;
    // Hardly any events: most labels can only come from the heartbeats.
    let args = ["--dry-run", "--camera", "porch", "--rate", "0.0001", "--data-dir", arg(dir.path())];
    let _detector = Process::start("detector", &args);
    let web = Webserver::start(dir.path(), &["--mqtt", &format!("mqtt://127.0.0.1:{port}")]);
    let labels = e2e::health_until(&web.url, "the detector's heartbeat", |h| {
        h["detectors"][0]["stats"]["cameras"][0]["labels"].as_array().is_some_and(|l| !l.is_empty())
    })
    .await["detectors"][0]["stats"]["cameras"][0]["labels"]
        .clone();
    let labels: Vec<String> = serde_json::from_value(labels).expect("labels");
    assert!(labels.contains(&"person".to_owned()), "{labels:?}");
    let count_config = |label: &str| format!("homeassistant/sensor/lookout_porch/{label}_count/config");
    let got = watcher
        .until("a count sensor and its count per label", |m| {
            labels.iter().all(|l| {
                m.iter().any(|m| m.topic == count_config(l) && !m.payload.is_empty())
                    && m.iter().any(|m| m.topic == format!("lookout/porch/{l}"))
            })
        })
        .await;
    let seen: BTreeSet<String> = e2e::stored_events(dir.path())
        .iter()
        .flat_map(|e| e.detected_objects.iter().map(|o| o.label.clone()))
        .collect();
    let only_reported: Vec<&String> = labels.iter().filter(|l| !seen.contains(*l)).collect();
    for label in &only_reported {
        let state = got.iter().rfind(|m| m.topic == format!("lookout/porch/{label}"));
        assert_eq!(state.map(Message::text).as_deref(), Some("0"), "{label}: none seen yet");
    }
    assert!(!only_reported.is_empty(), "some labels ({only_reported:?}) came only from the heartbeats; seen: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_camera_loses_its_home_assistant_entities_even_when_removed_while_the_webserver_was_down() {
    let dir = temp_data_dir();
    let broker_dir = temp_data_dir();
    let port = free_port();
    let _broker = Mosquitto::start(port, broker_dir.path());
    let watcher = Subscriber::start(port, None, &["homeassistant/#", "lookout/events", "lookout/yard/state"]).await;
    let mqtt = format!("mqtt://127.0.0.1:{port}");
    let detector_args = |cameras: &[&'static str]| {
        let mut args = vec!["--dry-run", "--rate", "4", "--event-secs", "1", "--data-dir", arg(dir.path())];
        args.extend(cameras.iter().flat_map(|c| ["--camera", *c]));
        args
    };
    let yard_configs = |m: &[Message]| -> BTreeSet<String> {
        m.iter()
            .filter(|m| m.topic.starts_with("homeassistant/") && m.topic.contains("/lookout_yard/"))
            .filter(|m| !m.payload.is_empty())
            .map(|m| m.topic.clone())
            .collect()
    };

    let detector = Process::start("detector", &detector_args(&["front_door", "yard"]));
    let web = Webserver::start_on(dir.path(), 0, &["--mqtt", &mqtt]);
    // Motion, snapshot and last event at least, and an event of yard's in
    // the database.
    let got = watcher
        .until("yard announced, with an event", |m| {
            yard_configs(m).len() >= 3
                && m.iter().any(|m| m.topic == "lookout/events" && m.json()["after"]["camera_id"] == "yard")
        })
        .await;
    let announced = yard_configs(&got);
    assert!(announced.iter().any(|t| t.ends_with("binary_sensor/lookout_yard/motion/config")), "{announced:?}");

    // The detector stops and the output delivers all it did; then the
    // webserver stops, and the detector comes back without yard.
    detector.terminate();
    assert!(detector.wait(Duration::from_secs(15)).0.success());
    let head = e2e::stored_events(dir.path()).iter().map(|e| e.seq).max().expect("events");
    e2e::health_until(&web.url, "the output caught up", |h| h["outputs"][0]["cursor"].as_i64() >= Some(head)).await;
    web.process.terminate();
    assert!(web.process.wait(Duration::from_secs(15)).0.success());
    let seen = watcher.messages().len();
    let _detector = Process::start("detector", &detector_args(&["front_door"]));
    let _web = Webserver::start_on(dir.path(), 0, &["--mqtt", &mqtt]);

    // The new webserver never saw yard in a heartbeat: it knows it from
    // the database, and clears every config of it.
    let cleared_all = |m: &[Message]| {
        let later = &m[seen.min(m.len())..];
        announced.iter().all(|topic| later.iter().any(|m| &m.topic == topic && m.payload.is_empty()))
            && later.iter().any(|m| m.topic == "lookout/yard/state" && m.text() == "ended")
    };
    watcher.until("yard's configs cleared and its state ended", cleared_all).await;
    // And the broker forgets them: a new subscriber gets yard's state (the
    // filter after) but no config (the filter before).
    let fresh = Subscriber::start(port, None, &["homeassistant/+/lookout_yard/#", "lookout/yard/state"]).await;
    let retained = fresh.until("yard's state", |m| m.iter().any(|m| m.topic == "lookout/yard/state")).await;
    let configs: Vec<&str> = topics(&retained).into_iter().filter(|t| t.starts_with("homeassistant/")).collect();
    assert!(configs.is_empty(), "no config of a removed camera is retained: {configs:?}");
}

/// Every change's `seq` from `first` on, from the database's change log.
fn change_seqs(data_dir: &Path, first: i64) -> Vec<i64> {
    let db = rusqlite::Connection::open(data_dir.join("events.db")).expect("open");
    let mut stmt = db.prepare("SELECT seq FROM changes WHERE seq >= ?1 ORDER BY seq").expect("prepare");
    stmt.query_map([first], |r| r.get(0)).expect("query").map(|r| r.expect("row")).collect()
}

/// What the receiver got: headers and body of each POST it acknowledged.
#[derive(Debug, Clone)]
struct Received {
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
    at_unix_ms: i64,
}

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    /// 503s still to answer before taking anything.
    fail: Arc<Mutex<u32>>,
    arrived: Arc<Notify>,
}

async fn receive(
    axum::extract::State(receiver): axum::extract::State<Receiver>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    {
        let mut fail = receiver.fail.lock().expect("fail");
        if *fail > 0 {
            *fail -= 1;
            return axum::http::StatusCode::SERVICE_UNAVAILABLE;
        }
    }
    if String::from_utf8_lossy(&body).contains("poison") {
        return axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    let at_unix_ms = shared::Timestamp::now().unix_ms();
    receiver.got.lock().expect("got").push(Received { headers, body: body.to_vec(), at_unix_ms });
    receiver.arrived.notify_waiters();
    axum::http::StatusCode::NO_CONTENT
}

/// A running receiver; [`Serving::stop`] closes its port and every
/// connection (kept-alive ones included), as a server that went away.
struct Serving {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Serving {
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

impl Receiver {
    async fn serve(&self, port: u16) -> Serving {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind the receiver");
        let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(self.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Serving { stop, task }
    }

    async fn until(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            // Registered before the check, as in `Subscriber::until`.
            let mut arrived = std::pin::pin!(self.arrived.notified());
            arrived.as_mut().enable();
            let got = self.got.lock().expect("got").clone();
            if done(&got) {
                return got;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!("the receiver never got {what}; it has {}", got.len());
            }
        }
    }
}

fn header<'a>(received: &'a Received, name: &str) -> &'a str {
    received.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

fn signed_by(secret: &str, received: &Received) -> bool {
    let Some(hex) = header(received, "x-lookout-signature").strip_prefix("sha256=") else { return false };
    let Some(signature) = (0..hex.len())
        .step_by(2)
        .map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac");
    mac.update(&received.body);
    mac.verify_slice(&signature).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_get_every_change_in_order_through_failures_and_downtime_signed() {
    let dir = temp_data_dir();
    let port = free_port();
    let receiver = Receiver::default();
    *receiver.fail.lock().expect("fail") = 3;
    let serving = receiver.serve(port).await;
    let hook = format!("http://127.0.0.1:{port}/hook secret=s3cret-for-tests");
    let people = format!("http://127.0.0.1:{port}/hook label=person change=new format=ntfy");
    let web = Webserver::start(dir.path(), &["--webhook", &hook, "--webhook", &people, "--late-after-secs", "1"]);
    let http = reqwest::Client::new();
    let post = |body: Value| {
        let (http, url) = (http.clone(), web.url.clone());
        async move { e2e::create_event(&http, &url, &body).await }
    };
    let person = json!([{"label": "person", "confidence": 0.9, "bbox": {"x": 1, "y": 2, "width": 3, "height": 4}}]);

    // The first three answers are 503s: retried, in order.
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(post(json!({"camera_id": "porch", "description": format!("first {i}")})).await);
    }
    receiver.until("the first five", |got| got.len() >= 5).await;

    // The receiver goes away while changes keep coming; one is refused for good.
    serving.stop().await;
    for i in 0..5 {
        created.push(post(json!({"camera_id": "yard", "description": format!("while down {i}")})).await);
    }
    created.push(post(json!({"camera_id": "yard", "description": "poison"})).await);
    created.push(post(json!({"camera_id": "porch", "description": "a person", "detected_objects": person})).await);
    e2e::health_until(&web.url, "retries while the receiver is down", |h| {
        h["outputs"][0]["retries"].as_u64() > Some(4) && h["outputs"][0]["connected"] == false
    })
    .await;
    let serving = receiver.serve(port).await;
    let last_seq = created.last().and_then(|e| e["seq"].as_i64()).expect("seq");

    let got = receiver
        .until("everything after the outage", |got| {
            got.iter().any(|r| header(r, "x-lookout-seq") == last_seq.to_string() && header(r, "title").is_empty())
        })
        .await;
    let plain: Vec<&Received> = got.iter().filter(|r| header(r, "title").is_empty()).collect();
    let seqs: Vec<i64> = plain.iter().filter_map(|r| header(r, "x-lookout-seq").parse().ok()).collect();
    let mut expected: Vec<i64> = created.iter().filter_map(|e| e["seq"].as_i64()).collect();
    let poison = created[created.len() - 2]["seq"].as_i64().expect("seq");
    expected.retain(|&s| s != poison);
    let mut unique = seqs.clone();
    unique.dedup();
    assert_eq!(unique, expected, "every change once, in order (repeats only back to back), the refused one skipped");
    for received in &plain {
        let body: Value = serde_json::from_slice(&received.body).expect("JSON body");
        assert_eq!(body["type"], "new");
        assert_eq!(body["seq"].to_string(), header(received, "x-lookout-seq"));
        assert_eq!(body["event"]["seq"], body["seq"]);
        assert!(signed_by("s3cret-for-tests", received), "the signature verifies");
        assert!(!signed_by("another-secret", received), "a wrong secret does not");
        // Late: marked when it was over a second old as it went out.
        let committed: shared::Timestamp =
            serde_json::from_value(body["event"]["updated_at"].clone()).expect("updated_at");
        let age_ms = received.at_unix_ms - committed.unix_ms();
        let late = header(received, "x-lookout-late") == "true";
        assert!(!late || age_ms >= 1000, "late at {age_ms} ms");
        assert!(late || age_ms < 1200, "not marked late at {age_ms} ms");
    }
    let late = plain.iter().filter(|r| header(r, "x-lookout-late") == "true").count();
    assert!(late > 0, "the changes made while the receiver was down went out late");
    let health = e2e::health_until(&web.url, "one give-up", |h| h["outputs"][0]["give_ups"] == 1).await;
    assert!(health["outputs"][0]["late"].as_u64() >= Some(late as u64), "{health}");
    assert_eq!(health["outputs"].as_array().map(Vec::len), Some(2));

    // The filtered ntfy hook got only the person, as ntfy reads it.
    let ntfy = receiver.until("the ntfy notification", |got| got.iter().any(|r| !header(r, "title").is_empty())).await;
    let ntfy: Vec<&Received> = ntfy.iter().filter(|r| !header(r, "title").is_empty()).collect();
    assert_eq!(ntfy.len(), 1, "only the new event with a person");
    assert_eq!(header(ntfy[0], "title"), "Lookout: porch");
    assert!(header(ntfy[0], "tags").contains("person"));
    assert_eq!(String::from_utf8_lossy(&ntfy[0].body), "person on porch (started): a person");
    serving.stop().await;
}

/// A certificate authority of the test's own and a certificate it signed
/// for 127.0.0.1, made with the `openssl` command in `dir`: (CA, cert, key).
fn test_certificates(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let (ca, ca_key) = (dir.join("ca.pem"), dir.join("ca.key"));
    let (cert, key, csr, ext) =
        (dir.join("server.pem"), dir.join("server.key"), dir.join("server.csr"), dir.join("ext"));
    std::fs::write(&ext, "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
        .expect("ext");
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().expect("openssl (Debian package openssl) runs");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let [ca_s, ca_key_s, cert_s, key_s, csr_s, ext_s] =
        [&ca, &ca_key, &cert, &key, &csr, &ext].map(|p| p.to_str().expect("a UTF-8 path").to_owned());
    let new_ec_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let ca_extensions = ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"];
    let make_ca = ["req", "-x509", "-days", "2", "-subj", "/CN=lookout test CA", "-keyout", &ca_key_s, "-out", &ca_s];
    openssl(&[&make_ca[..], &new_ec_key, &ca_extensions].concat());
    openssl(&[&["req", "-subj", "/CN=127.0.0.1", "-keyout", &key_s, "-out", &csr_s][..], &new_ec_key].concat());
    let sign = ["x509", "-req", "-days", "2", "-CAcreateserial", "-extfile", &ext_s];
    openssl(&[&sign[..], &["-in", &csr_s, "-CA", &ca_s, "-CAkey", &ca_key_s, "-out", &cert_s]].concat());
    // Mosquitto started as root reads them as its own user.
    use std::os::unix::fs::PermissionsExt;
    for path in [dir, &key] {
        let mode = if path.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    (ca, cert, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtts_to_a_broker_with_its_own_authority_delivers_once_it_is_trusted() {
    let broker_dir = temp_data_dir();
    let (ca, cert, key) = test_certificates(broker_dir.path());
    let (plain, tls) = (free_port(), free_port());
    let listener = format!(
        "listener {tls} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n",
        ca.display(),
        cert.display(),
        key.display()
    );
    let _broker = Mosquitto::start_with(plain, broker_dir.path(), &listener);
    let subscriber = Subscriber::start(plain, None, &["lookout/events"]).await;
    let url = format!("mqtts://127.0.0.1:{tls}");
    let http = reqwest::Client::new();

    // Without the authority: the web's roots do not vouch for it.
    let dir = temp_data_dir();
    let untrusted = Webserver::start(dir.path(), &["--mqtt", &url]);
    let health =
        e2e::health_until(&untrusted.url, "the TLS failure", |h| h["outputs"][0]["last_error"].is_string()).await;
    let why = health["outputs"][0]["last_error"].as_str().unwrap_or_default();
    assert!(why.contains("TLS") && why.to_lowercase().contains("certificate"), "{why}");
    drop(untrusted);

    // With --mqtt-ca: connected, and a change arrives through TLS.
    let web = Webserver::start(dir.path(), &["--mqtt", &url, "--mqtt-ca", arg(&ca)]);
    e2e::health_until(&web.url, "connected over TLS", |h| h["outputs"][0]["connected"] == true).await;
    let created = e2e::create_event(&http, &web.url, &json!({"camera_id": "porch", "description": "over TLS"})).await;
    let seq = created["seq"].as_i64().expect("seq");
    subscriber.until("the change sent over TLS", |m| event_seqs(m).contains(&seq)).await;
}

#[tokio::test]
async fn bad_output_settings_are_refused_clearly_and_unreachable_receivers_do_not_stop_serving() {
    let dir = temp_data_dir();
    for (flag, value, says) in [
        ("--mqtt", "broker.lan:1883", "mqtt://"),
        ("--mqtt", "mqtt://u:pw@broker:70000", "bad port"),
        ("--webhook", "https://hooks.example/x colour=red", "unknown option"),
        ("--mqtt-prefix", "a/#", "topic prefix"),
    ] {
        let (code, _, stderr) = e2e::run_to_end("webserver", &["--data-dir", arg(dir.path()), flag, value]);
        assert_eq!(code, Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(says), "{flag} {value}: {stderr}");
        assert!(!stderr.contains(":pw@"), "no password in the error: {stderr}");
    }

    // A plain MQTT port spoken to with TLS, and a closed webhook port.
    let broker_dir = temp_data_dir();
    let port = free_port();
    let _broker = Mosquitto::start(port, broker_dir.path());
    let tls = format!("mqtts://127.0.0.1:{port}");
    let closed = format!("http://127.0.0.1:{}/hook", free_port());
    let web = Webserver::start(dir.path(), &["--mqtt", &tls, "--webhook", &closed]);
    let http = reqwest::Client::new();
    e2e::create_event(&http, &web.url, &json!({"camera_id": "porch", "description": "x"})).await;
    let health = e2e::health_until(&web.url, "both outputs failing", |h| {
        h["outputs"].as_array().is_some_and(|o| o.iter().all(|o| o["last_error"].is_string()))
    })
    .await;
    let mqtt_error = health["outputs"][0]["last_error"].as_str().unwrap_or_default();
    assert!(mqtt_error.contains("TLS"), "{mqtt_error}");
    let hook_error = health["outputs"][1]["last_error"].as_str().unwrap_or_default();
    assert!(hook_error.contains("cannot connect"), "{hook_error}");
    assert_eq!(health["status"], "degraded");
    let listed = http.get(format!("{}/api/events", web.url)).send().await.expect("GET");
    assert_eq!(listed.status(), 200, "the API keeps serving");
}
