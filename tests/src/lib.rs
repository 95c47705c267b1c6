//! Helpers for Lookout's end-to-end tests.
//!
//! The tests in `tests/tests/` start the real `detector` and `webserver`
//! binaries on temporary data directories and talk to them the way users and
//! other processes do: through the socket, SQLite, HTTP and WebSocket. These
//! helpers only start, watch and stop processes; they never stand in for one.
//!
//! [`nats`] runs real `nats-server`s (one node or a three-node JetStream
//! cluster) for the cluster-mode tests.
//!
//! Binaries are found next to the test executable's `target/<profile>/`
//! directory (override with `LOOKOUT_BIN_DIR`). Build them first:
//! `cargo build --workspace --bins` (the README's test command does).

pub mod nats;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Path of a workspace binary, e.g. `bin("detector")`.
pub fn bin(name: &str) -> PathBuf {
    let dir = match std::env::var_os("LOOKOUT_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let exe = std::env::current_exe().expect("current_exe");
            // target/<profile>/deps/<test-binary>
            exe.parent().and_then(Path::parent).expect("target/<profile>").to_path_buf()
        }
    };
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` before the end-to-end tests",
        path.display()
    );
    path
}

/// A running binary whose stderr lines are collected as they arrive.
#[derive(Debug)]
pub struct Process {
    name: String,
    /// `None` once [`Process::wait`] has taken it.
    child: Option<Child>,
    pid: u32,
    lines: mpsc::Receiver<String>,
    seen: Arc<Mutex<Vec<String>>>,
    stdout: Option<std::thread::JoinHandle<String>>,
}

impl Process {
    /// Starts `bin(name)` with `args`, logging at info level unless `RUST_LOG`
    /// or `--log-level` says otherwise.
    pub fn start(name: &str, args: &[&str]) -> Self {
        let mut command = Command::new(bin(name));
        command.args(args);
        Self::spawn(name, command)
    }

    /// Like [`Process::start`], as user and group `uid` (needs root and
    /// util-linux's `setpriv`): another local user's process.
    pub fn start_as(uid: u32, name: &str, args: &[&str]) -> Self {
        let mut command = Command::new("setpriv");
        command
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={uid}"))
            .arg("--clear-groups")
            .arg(bin(name))
            .args(args);
        Self::spawn(name, command)
    }

    fn spawn(name: &str, mut command: Command) -> Self {
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        command.env_remove("LOOKOUT_DATA_DIR");
        let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let (tx, lines) = mpsc::channel();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("piped stderr");
        let (log_name, seen_writer) = (name.to_owned(), seen.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if std::env::var_os("LOOKOUT_TEST_ECHO").is_some() {
                    eprintln!("[{log_name}] {line}");
                }
                if let Ok(mut seen) = seen_writer.lock() {
                    seen.push(line.clone());
                }
                let _ = tx.send(line);
            }
        });
        let mut stdout = child.stdout.take().expect("piped stdout");
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
            text
        });
        let pid = child.id();
        Self { name: name.to_owned(), child: Some(child), pid, lines, seen, stdout: Some(stdout) }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits for a stderr line containing `needle`; panics with the log so
    /// far if none comes within `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        if let Some(line) = self.logs().into_iter().find(|l| l.contains(needle)) {
            return line;
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!(
                    "{} did not log {needle:?} within {timeout:?}; its log:\n{}",
                    self.name,
                    self.logs().join("\n")
                ),
            }
        }
    }

    /// Waits until `needle` has appeared in `n` stderr lines.
    pub fn wait_for_log_count(&self, needle: &str, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.logs().iter().filter(|l| l.contains(needle)).count() < n {
            // Any new line is a reason to count again.
            let left = deadline.saturating_duration_since(Instant::now());
            if self.lines.recv_timeout(left).is_err() {
                panic!(
                    "{} did not log {needle:?} {n} times within {timeout:?}; its log:\n{}",
                    self.name,
                    self.logs().join("\n")
                );
            }
        }
    }

    /// Every stderr line so far.
    pub fn logs(&self) -> Vec<String> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
    }

    /// Sends SIGKILL: a crash, as far as the process can tell.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.pid as i32);
        nix::sys::signal::kill(pid, signal).unwrap_or_else(|e| panic!("cannot signal {}: {e}", self.name));
    }

    /// Waits for exit; returns the status and everything printed on stdout.
    pub fn wait(mut self, timeout: Duration) -> (ExitStatus, String) {
        let mut child = self.child.take().expect("not waited for yet");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = match rx.recv_timeout(timeout) {
            Ok(status) => status.expect("wait for child"),
            Err(_) => {
                self.signal(nix::sys::signal::Signal::SIGKILL);
                panic!("{} did not exit within {timeout:?}; its log:\n{}", self.name, self.logs().join("\n"));
            }
        };
        let stdout = self.stdout.take().map(|h| h.join().unwrap_or_default()).unwrap_or_default();
        (status, stdout)
    }
}

impl Drop for Process {
    /// A clean stop (SIGTERM, then SIGKILL after a grace period), so that
    /// processes exit the way they would for a user — and instrumented
    /// builds write their coverage data.
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            self.signal(nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(3);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                // Drop cannot block on a channel without a helper thread;
                // a short poll bounded by the deadline is enough here.
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Runs `bin(name)` to completion with `args`; returns (exit code, stdout, stderr).
pub fn run_to_end(name: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(bin(name))
        .args(args)
        .env_remove("LOOKOUT_DATA_DIR")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Polls `GET {url}/api/health` until `done` accepts it, and returns it.
/// Health has no push channel, so this polls (every 100 ms, for at most
/// 30 s) and fails with the last answer.
pub async fn health_until(url: &str, what: &str, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let health: serde_json::Value = reqwest::get(format!("{url}/api/health"))
            .await
            .expect("GET /api/health")
            .json()
            .await
            .expect("health is JSON");
        if done(&health) {
            return health;
        }
        assert!(Instant::now() < deadline, "health never showed {what}: {health:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A temporary data directory, removed when dropped.
pub fn temp_data_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("lookout-test-").tempdir().expect("tempdir")
}

/// A path as the `&str` a command line takes.
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// A running webserver and its base URL.
#[derive(Debug)]
pub struct Webserver {
    pub process: Process,
    /// `http://127.0.0.1:PORT`
    pub url: String,
}

impl Webserver {
    /// Starts `webserver --bind 127.0.0.1:0 --data-dir DIR ARGS…` and waits
    /// until it listens.
    pub fn start(data_dir: &Path, args: &[&str]) -> Self {
        Self::start_on(data_dir, 0, args)
    }

    /// Like [`Webserver::start`], on a given port (0: any free one), so a
    /// restarted webserver is found where the clients expect it.
    pub fn start_on(data_dir: &Path, port: u16, args: &[&str]) -> Self {
        let bind = format!("127.0.0.1:{port}");
        let mut all = vec!["--bind", bind.as_str(), "--data-dir", arg(data_dir)];
        all.extend_from_slice(args);
        let process = Process::start("webserver", &all);
        let line = process.wait_for_log("webserver listening", Duration::from_secs(30));
        let address = line
            .split("address=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        Self { process, url: format!("http://{address}") }
    }

    /// `ws://127.0.0.1:PORT/ws/events` plus `query`.
    pub fn ws_url(&self, query: &str) -> String {
        format!("{}/ws/events{query}", self.url.replacen("http://", "ws://", 1))
    }

    /// Waits until the webserver reports its detector link connected.
    pub fn wait_for_detector(&self) {
        self.process.wait_for_log("connected to detector", Duration::from_secs(30));
    }
}

pub mod ws {
    //! A real WebSocket client (tokio-tungstenite) for the tests, and a
    //! [`Follower`] that keeps one up across server restarts.

    use std::time::Duration;

    use futures_util::{SinkExt, StreamExt};
    use tokio::net::TcpStream;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

    pub use tokio_tungstenite::tungstenite::Message;

    pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

    const WAIT: Duration = Duration::from_secs(30);

    /// Opens `url`, sending `Origin: origin` when given.
    pub async fn connect(url: &str, origin: Option<&str>) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
        let mut request = url.into_client_request()?;
        if let Some(origin) = origin {
            request.headers_mut().insert("origin", HeaderValue::from_str(origin).expect("header value"));
        }
        let (socket, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(socket)
    }

    /// What the server sent next, parsed; `Err` carries a close frame.
    pub async fn next(socket: &mut Socket) -> Result<(serde_json::Value, String), Option<CloseFrame>> {
        loop {
            let message = tokio::time::timeout(WAIT, socket.next())
                .await
                .expect("a message within the timeout")
                .unwrap_or_else(|| Err(tokio_tungstenite::tungstenite::Error::ConnectionClosed));
            match message {
                Ok(Message::Text(text)) => {
                    let value = serde_json::from_str(&text).expect("server sends JSON");
                    return Ok((value, text.to_string()));
                }
                Ok(Message::Close(frame)) => return Err(frame),
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
                Ok(Message::Binary(b)) => panic!("server sent binary: {b:?}"),
                Err(_) => return Err(None),
            }
        }
    }

    /// Like [`next`], but passes over the server's heartbeat pings: they may
    /// come at any moment (each client's turn falls somewhere in the interval).
    pub async fn next_after_pings(socket: &mut Socket) -> Result<(serde_json::Value, String), Option<CloseFrame>> {
        loop {
            match next(socket).await {
                Ok((value, _)) if value["type"] == "ping" => {}
                other => return other,
            }
        }
    }

    /// The next `n` event messages (skipping pings); returns (event JSON
    /// value, the raw `data` text) for each.
    pub async fn events(socket: &mut Socket, n: usize) -> Vec<(serde_json::Value, String)> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match next(socket).await {
                Ok((value, text)) if value["type"] == "event" => out.push((value["data"].clone(), raw_data(&text))),
                Ok((value, _)) if value["type"] == "ping" => {}
                Ok((value, _)) => panic!("unexpected message {value}"),
                Err(close) => panic!("closed after {} of {n} events: {close:?}", out.len()),
            }
        }
        out
    }

    /// The `data` of an event envelope, exactly as sent.
    pub fn raw_data(envelope: &str) -> String {
        envelope
            .strip_prefix(r#"{"type":"event","change":""#)
            .and_then(|rest| rest.split_once(r#"","data":"#))
            .and_then(|(_, rest)| rest.strip_suffix('}'))
            .unwrap_or_else(|| panic!("not an event envelope: {envelope}"))
            .to_owned()
    }

    pub async fn send_text(socket: &mut Socket, text: &str) {
        socket.send(Message::Text(text.into())).await.expect("send");
    }

    /// A client that follows `/ws/events` like the dashboard does: it
    /// reconnects with `?after_seq=<last seq>` whenever the connection ends,
    /// and fails at once on any gap or duplicate (each `seq` must be exactly
    /// the previous one plus one).
    #[derive(Debug)]
    pub struct Follower {
        target: tokio::sync::watch::Sender<i64>,
        task: tokio::task::JoinHandle<Followed>,
    }

    /// What a follower saw.
    #[derive(Debug)]
    pub struct Followed {
        pub seqs: Vec<i64>,
        pub connections: u32,
    }

    impl Follower {
        /// Starts following `url` (`ws://…/ws/events`) from `after`; sleeps
        /// `read_delay` after each event to act as a slow reader.
        pub fn start(url: String, after: i64, read_delay: Option<Duration>) -> Self {
            let (target, mut target_rx) = tokio::sync::watch::channel(i64::MAX);
            let task = tokio::spawn(async move {
                let mut seen = Followed { seqs: Vec::new(), connections: 0 };
                let mut last = after;
                loop {
                    if last >= *target_rx.borrow() {
                        return seen;
                    }
                    let Ok(mut socket) = connect(&format!("{url}?after_seq={last}"), None).await else {
                        // The server is down (being restarted): retry soon.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    };
                    seen.connections += 1;
                    loop {
                        let message = tokio::select! {
                            m = socket.next() => m,
                            _ = target_rx.changed() => {
                                if last >= *target_rx.borrow() { return seen }
                                continue;
                            }
                        };
                        let Some(Ok(Message::Text(text))) = message else {
                            match message {
                                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                                _ => break, // closed or failed: reconnect
                            }
                        };
                        let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
                        match value["type"].as_str() {
                            Some("event") => {}
                            Some("ping") => {
                                let pong = format!(r#"{{"type":"pong","timestamp":{}}}"#, value["timestamp"]);
                                let _ = socket.send(Message::Text(pong.into())).await;
                                continue;
                            }
                            _ => panic!("unexpected message {value}"),
                        }
                        let seq = value["data"]["seq"].as_i64().expect("seq");
                        assert_eq!(seq, last + 1, "after seq {last} the stream must continue with {}", last + 1);
                        last = seq;
                        seen.seqs.push(seq);
                        if last >= *target_rx.borrow() {
                            return seen;
                        }
                        if let Some(delay) = read_delay {
                            tokio::time::sleep(delay).await;
                        }
                    }
                }
            });
            Self { target, task }
        }

        /// Waits until the follower has received `head`, then returns what it saw.
        pub async fn finish(self, head: i64) -> Followed {
            let _ = self.target.send(head);
            tokio::time::timeout(Duration::from_secs(120), self.task)
                .await
                .expect("the follower caught up in time")
                .expect("the follower saw no gap or duplicate")
        }
    }
}

/// Every event stored in `data_dir`'s database, in its current state,
/// oldest (latest change) first, read page by page.
pub fn current_events(data_dir: &Path) -> Vec<shared::Event> {
    let store = shared::Store::open(data_dir.join("events.db")).expect("open the database");
    let mut filter = shared::store::EventFilter::default();
    let mut events: Vec<shared::Event> = Vec::new();
    loop {
        let page = store.list(&filter, shared::store::MAX_PAGE).expect("list events");
        events.extend(page.events);
        match page.next_before_seq {
            Some(before) => filter.before_seq = Some(before),
            None => break,
        }
    }
    events.reverse();
    events
}

/// Every change stored in `data_dir`'s database, as the event right after
/// it, oldest first, read page by page. (An event reported whole, as
/// detector and dry-run events are, is one change.)
pub fn stored_events(data_dir: &Path) -> Vec<shared::Event> {
    let store = shared::Store::open(data_dir.join("events.db")).expect("open the database");
    let mut events: Vec<shared::Event> = Vec::new();
    loop {
        let after = events.last().map_or(0, |e| e.seq);
        let page = store.after_seq(after, shared::store::MAX_PAGE).expect("read events");
        if page.is_empty() {
            return events;
        }
        events.extend(page.into_iter().map(|change| change.event));
    }
}

/// `POST /api/events` with `body` to the webserver at `url`; the created
/// event (panics unless the answer is 201).
pub async fn create_event(http: &reqwest::Client, url: &str, body: &serde_json::Value) -> serde_json::Value {
    let response = http.post(format!("{url}/api/events")).json(body).send().await.expect("POST /api/events");
    assert_eq!(response.status(), 201, "POST /api/events {body}");
    response.json().await.expect("JSON")
}

/// Camera `id` as the first detector link of a `/api/health` body reports
/// it (null when absent).
pub fn camera_status(health: &serde_json::Value, id: &str) -> serde_json::Value {
    health["detectors"][0]["stats"]["cameras"]
        .as_array()
        .and_then(|cameras| cameras.iter().find(|c| c["camera_id"] == id).cloned())
        .unwrap_or_default()
}

/// A plausible committed event with this `seq`, for frames a test sends
/// itself (e.g. a fake detector's).
pub fn sample_event(seq: i64) -> shared::Event {
    let now = shared::Timestamp::now();
    shared::NewEvent {
        event_id: shared::model::new_event_id(now),
        camera_id: "door".into(),
        timestamp: now,
        state: shared::EventState::Ended,
        end_time: Some(now),
        motion_confidence: 0.5,
        detected_objects: Vec::new(),
        description: "Someone at the door.".into(),
        image_path: None,
        metadata: shared::model::EventMetadata {
            source: shared::model::EventSource::Detector,
            inference_ms: None,
            frame_number: None,
            producer: None,
            end_reason: None,
        },
    }
    .commit(seq, now)
}

/// [`sample_event`] as its `new` change, as a detector announces it.
pub fn sample_change(seq: i64) -> shared::Change {
    shared::Change { kind: shared::ChangeKind::New, event: sample_event(seq) }
}

/// What a subscriber of the detector in `data_dir` needs: its wire key
/// (which the detector made at start).
pub fn trust(data_dir: &Path) -> shared::wire::Trust {
    let key = shared::wire::WireKey::load(&shared::config::DataDir::new(data_dir).wire_key()).expect("the wire key");
    shared::wire::Trust::new(key)
}

/// A free loopback TCP port (for a server that must come back on it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

/// Resident memory of a process, from /proc.
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

/// Open file descriptors of a process.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// A small tmpfs, for disk-full and read-only faults. Needs root (CI runs
/// as root); `None` elsewhere, and the caller says it skipped.
#[derive(Debug)]
pub struct Tmpfs {
    pub dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Option<Self> {
        let dir = temp_data_dir();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", arg(dir.path())])
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Self { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Remounts read-only (`true`) or read-write.
    pub fn set_read_only(&self, read_only: bool) {
        let mode = if read_only { "remount,ro" } else { "remount,rw" };
        let status = Command::new("mount").args(["-o", mode, arg(self.path())]).status().expect("mount");
        assert!(status.success(), "mount -o {mode}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Parses an OpenMetrics text (what `/metrics` serves) with the reference
/// parser, Python's `prometheus_client`, which refuses anything malformed:
/// one JSON object per family, `{name, type, help, unit, samples: [{name,
/// labels, value}]}`. Panics with the parser's complaint on a bad text.
pub fn parse_openmetrics(text: &str) -> Vec<serde_json::Value> {
    const SCRIPT: &str = r#"
import json, math, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    samples = [{"name": s.name, "labels": s.labels,
                "value": s.value if math.isfinite(s.value) else str(s.value)} for s in f.samples]
    out.append({"name": f.name, "type": f.type, "help": f.documentation, "unit": f.unit, "samples": samples})
print(json.dumps(out))
"#;
    match python(SCRIPT, text.as_bytes()) {
        Ok(stdout) => serde_json::from_slice(&stdout).expect("the parser's JSON"),
        Err(complaint) => panic!("the OpenMetrics parser refused /metrics: {complaint}\n--- text ---\n{text}"),
    }
}

/// Runs a Python `script` (with the pip packages `.ci/run` installs) on
/// `input`: its stdout, or its stderr when it fails.
fn python(script: &str, input: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Write as _;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (the tests need it, with prometheus-client and jsonschema from pip)");
    child.stdin.take().expect("stdin").write_all(input).expect("write to python3");
    let output = child.wait_with_output().expect("python3 finishes");
    if output.status.success() { Ok(output.stdout) } else { Err(String::from_utf8_lossy(&output.stderr).into_owned()) }
}

/// The samples of family `name` in [`parse_openmetrics`]'s output.
pub fn metric_samples<'a>(families: &'a [serde_json::Value], name: &str) -> &'a [serde_json::Value] {
    families
        .iter()
        .find(|f| f["name"] == name)
        .and_then(|f| f["samples"].as_array())
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("no metric family {name} in {families:#?}"))
}

/// Validates each `(schema pointer, instance)` against the JSON Schemas in
/// `document` (e.g. `docs/asyncapi.json`, pointer
/// `#/components/messages/event/payload`) with Python's `jsonschema`
/// (Draft 2020-12, references resolved inside `document`). Returns, per
/// instance, `None` when it is valid or the validator's complaint.
pub fn validate_json_schemas(
    document: &serde_json::Value,
    checks: &[(&str, serde_json::Value)],
) -> Vec<Option<String>> {
    const SCRIPT: &str = r#"
import json, sys
from jsonschema import Draft202012Validator
job = json.load(sys.stdin)
out = []
for check in job["checks"]:
    root = dict(job["document"])
    root["$ref"] = check["ref"]
    errors = sorted(Draft202012Validator(root).iter_errors(check["instance"]), key=lambda e: list(e.path))
    out.append("; ".join(f"{list(e.path)}: {e.message}" for e in errors) or None)
print(json.dumps(out))
"#;
    let job = serde_json::json!({
        "document": document,
        "checks": checks.iter().map(|(r, i)| serde_json::json!({"ref": r, "instance": i})).collect::<Vec<_>>(),
    });
    let stdout = python(SCRIPT, job.to_string().as_bytes())
        .unwrap_or_else(|complaint| panic!("the JSON Schema validator failed: {complaint}"));
    serde_json::from_slice(&stdout).expect("the validator's JSON")
}
