//! The MQTT output: events and camera state for Home Assistant and any
//! other MQTT consumer (SPEC §9), with `rumqttc`.
//!
//! Under the prefix (`lookout` by default):
//!
//! * `lookout/available` — `online` once connected, `offline` at shutdown
//!   and, as the connection's last will, when the webserver dies; retained.
//! * `lookout/events` — each change, `{"type","seq","before","after"}`
//!   (Frigate's shape; `"late":true` when late), QoS 1, not retained.
//! * Retained state per camera: `lookout/<camera>/motion` (`ON` while one
//!   of its events is active), `lookout/<camera>/<label>` (objects of that
//!   label in its active events), `lookout/<camera>/snapshot` (the latest
//!   event's JPEG), `lookout/<camera>/last_event` (JSON) and
//!   `lookout/<camera>/state` (`up`, `reconnecting`, `failed`, `ended`, from
//!   the detector's heartbeats).
//!
//! # Sessions
//!
//! A [`Session`] is one MQTT connection: an `AsyncClient` and its event
//! loop, polled by a task of its own that reports connects, sent packet ids
//! and PUBACKs. Changes are published without waiting for the ones before
//! (the delivery loop keeps up to [`WINDOW`] in flight); a change counts as
//! delivered once every publish up to its last was acknowledged, so
//! changes complete in order even if PUBACKs do not. Any failure ends the
//! session — client, event loop, their queue and whatever was in flight —
//! and the delivery loop sends what was not acknowledged again on a new
//! one, so nothing sent on an old connection can be mistaken for an
//! acknowledgement on the new one.
//!
//! Each new session first says `online`, publishes the discovery configs
//! and every retained state topic again (a broker restarted without
//! persistence has forgotten them), then the changes. Between sessions the
//! retained values last published are remembered, so a change publishes
//! only the state topics it changed.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{
    AsyncClient, Event as MqttEvent, EventLoop, LastWill, MqttOptions, NetworkOptions, Outgoing, Packet, QoS, Transport,
};
use serde_json::json;
use shared::config::DataDir;
use shared::model::EventSource;
use shared::wire::{CameraState, CameraStatus};
use shared::{ChangeKind, Event, EventState};
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::delivery::{Failure, Sink, backoff};
use super::homeassistant;
use super::{Delivery, OutputStatus};
use crate::stream::bridge::Links;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the broker may take to acknowledge a change.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// Keep-alive pings: a dead broker is noticed within about 1.5 of these.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Largest message sent (snapshots) or taken.
const MAX_PACKET: usize = 8 * 1024 * 1024;
/// Publishes in flight on one connection (rumqttc's window)…
const IN_FLIGHT: u16 = 1024;
/// …and changes, a handful of publishes each (the delivery loop's).
const WINDOW: usize = 128;

/// Where to connect: `mqtt://[user:pass@]host[:port]` or `mqtts://…`.
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl BrokerUrl {
    /// Parses a broker URL, saying what is wrong with a bad one.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (scheme, rest) = text.split_once("://").ok_or("must start with mqtt:// or mqtts://")?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            other => return Err(format!("unknown scheme {other:?}: use mqtt:// or mqtts://")),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#']) {
            return Err("takes no path or query: mqtt://[user:pass@]host[:port]".into());
        }
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(info) => match info.split_once(':') {
                Some((user, pass)) => (Some(percent_decode(user)?), Some(percent_decode(pass)?)),
                None => (Some(percent_decode(info)?), None),
            },
        };
        let (host, port) = split_host_port(hostport)?;
        let port = match port {
            Some(port) => port.parse::<u16>().ok().filter(|&p| p > 0).ok_or(format!("bad port {port:?}"))?,
            None if tls => 8883,
            None => 1883,
        };
        if host.is_empty() {
            return Err("has no host".into());
        }
        Ok(Self { tls, host, port, username, password })
    }
}

/// `host[:port]`, `[v6]:port` included.
fn split_host_port(text: &str) -> Result<(String, Option<&str>), String> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("an IPv6 address needs its closing ]")?;
        let port = match after {
            "" => None,
            after => Some(after.strip_prefix(':').ok_or("expected :port after the IPv6 address")?),
        };
        return Ok((host.to_owned(), port));
    }
    Ok(match text.rsplit_once(':') {
        Some((host, port)) => (host.to_owned(), Some(port)),
        None => (text.to_owned(), None),
    })
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).ok_or("a % must be followed by two hex digits")?;
            // Not quoted: it is part of a password.
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "a bad %-escape in the credentials".to_owned())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "credentials are not UTF-8".to_owned())
}

impl std::fmt::Display for BrokerUrl {
    /// The URL with its password masked.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        let user = match (&self.username, &self.password) {
            (Some(user), Some(_)) => format!("{user}:{}@", shared::redact::MASK),
            (Some(user), None) => format!("{user}@"),
            _ => String::new(),
        };
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        write!(f, "{scheme}://{user}{host}:{}", self.port)
    }
}

impl std::fmt::Debug for BrokerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BrokerUrl({self})")
    }
}

/// The MQTT output's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub broker: BrokerUrl,
    pub prefix: String,
    /// CA certificates (PEM) trusted for `mqtts://` besides the built-in
    /// web roots: a broker with its own certificate authority.
    pub ca_file: Option<PathBuf>,
    /// Home Assistant's discovery prefix; `None`: no discovery.
    pub discovery: Option<String>,
}

/// The topic names, in one place.
#[derive(Debug, Clone)]
pub struct Topics {
    prefix: String,
}

impl Topics {
    pub fn new(prefix: &str) -> Self {
        Self { prefix: prefix.trim_end_matches('/').to_owned() }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn available(&self) -> String {
        format!("{}/available", self.prefix)
    }

    pub fn events(&self) -> String {
        format!("{}/events", self.prefix)
    }

    /// `<prefix>/<camera>/<what>`; camera ids are topic-safe by validation.
    pub fn camera(&self, camera: &str, what: &str) -> String {
        format!("{}/{camera}/{what}", self.prefix)
    }

    /// `<prefix>/<camera>/<label>`, the label's MQTT wildcards replaced.
    pub fn label(&self, camera: &str, label: &str) -> String {
        self.camera(camera, &label.replace(['+', '#', '/', '\0'], "_"))
    }
}

/// Parses `--mqtt-prefix`: topic levels without wildcards.
pub fn parse_prefix(text: &str) -> Result<String, String> {
    let prefix = text.trim_matches('/');
    if prefix.is_empty() || prefix.contains(['+', '#', '\0']) || prefix.split('/').any(str::is_empty) {
        return Err(format!("{text:?} is not a topic prefix (levels separated by /, no + or #)"));
    }
    Ok(prefix.to_owned())
}

/// What one camera looks like from its events and heartbeats.
#[derive(Debug, Default)]
struct CameraModel {
    active: BTreeMap<String, Event>,
    /// Every label that has a count topic (and a discovery sensor).
    labels: BTreeSet<String>,
    last: Option<Event>,
    /// The latest event's snapshot (`image_path`).
    snapshot: Option<String>,
    state: Option<CameraState>,
    /// A detector's camera (listed in a heartbeat, or a detector made one
    /// of its events), not only one the API posted events for.
    from_detector: bool,
    /// A detector's camera no detector lists: removed from their settings.
    removed: bool,
}

impl CameraModel {
    fn apply(&mut self, event: &Event) {
        self.from_detector |= event.metadata.source != EventSource::Api;
        self.labels.extend(event.detected_objects.iter().map(|o| o.label.clone()));
        match event.state {
            EventState::Active => self.active.insert(event.event_id.clone(), event.clone()),
            EventState::Ended => self.active.remove(&event.event_id),
        };
        if self.last.as_ref().is_none_or(|last| last.seq <= event.seq) {
            self.last = Some(event.clone());
            if event.image_path.is_some() {
                self.snapshot.clone_from(&event.image_path);
            }
        }
    }

    fn count(&self, label: &str) -> usize {
        self.active.values().flat_map(|e| &e.detected_objects).filter(|o| o.label == label).count()
    }

    /// Every retained text topic of the camera and its value now.
    fn retained(&self, topics: &Topics, camera: &str) -> Vec<(String, String)> {
        let mut out = vec![(topics.camera(camera, "motion"), if self.active.is_empty() { "OFF" } else { "ON" }.into())];
        out.extend(self.labels.iter().map(|label| (topics.label(camera, label), self.count(label).to_string())));
        if let Some(last) = &self.last {
            let labels: BTreeSet<&str> = last.detected_objects.iter().map(|o| o.label.as_str()).collect();
            let summary = json!({
                "event_id": last.event_id,
                "seq": last.seq,
                "state": last.state,
                "description": last.description,
                "labels": labels,
                "timestamp": last.timestamp,
                "end_time": last.end_time,
            });
            out.push((topics.camera(camera, "last_event"), summary.to_string()));
        }
        if let Some(state) = self.state {
            out.push((topics.camera(camera, "state"), camera_state(state).into()));
        }
        out
    }
}

fn camera_state(state: CameraState) -> &'static str {
    match state {
        CameraState::Up => "up",
        CameraState::Reconnecting => "reconnecting",
        CameraState::Failed => "failed",
        CameraState::Ended => "ended",
    }
}

/// What the session task reports.
#[derive(Debug)]
enum Notice {
    Connected,
    /// A publish went out with this packet id.
    Sent(u16),
    Acked(u16),
    Lost(String),
}

/// One MQTT connection (see the module docs). Dropping it stops its task.
#[derive(Debug)]
struct Session {
    client: AsyncClient,
    notices: mpsc::UnboundedReceiver<Notice>,
    _task: DropGuard,
    /// Publishes handed to the client, and how many of the first of them
    /// were acknowledged.
    queued: u64,
    acked: u64,
    /// Packet ids of publishes sent and not yet acknowledged in order,
    /// oldest first…
    unacked: VecDeque<u16>,
    /// …and the PUBACKs that came for ids behind the oldest. A packet id
    /// is reused once acknowledged, but only one publish holds it at a
    /// time, so the oldest publish with an id is the one its PUBACK is for.
    acked_early: HashMap<u16, usize>,
    /// Each change in flight: the number of its last publish, and when it
    /// was sent.
    changes: VecDeque<(u64, Instant)>,
}

impl Session {
    async fn open(options: MqttOptions) -> Result<Self, String> {
        let (client, mut eventloop) = AsyncClient::new(options, 256);
        let mut network = NetworkOptions::new();
        // A change is a handful of small publishes: each goes out at once
        // rather than waiting for the broker to acknowledge the one before.
        network.set_tcp_nodelay(true);
        network.set_connection_timeout(CONNECT_TIMEOUT.as_secs());
        eventloop.set_network_options(network);
        let (tx, mut notices) = mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        tokio::spawn(drive(eventloop, tx, stop.clone()));
        let task = stop.drop_guard();
        match tokio::time::timeout(CONNECT_TIMEOUT + Duration::from_secs(1), notices.recv()).await {
            Ok(Some(Notice::Connected)) => Ok(Self::new(client, notices, task)),
            Ok(Some(Notice::Lost(why))) => Err(why),
            Ok(_) => Err("the connection task ended".into()),
            Err(_) => Err("the broker did not answer in time".into()),
        }
    }

    fn new(client: AsyncClient, notices: mpsc::UnboundedReceiver<Notice>, task: DropGuard) -> Self {
        Self {
            client,
            notices,
            _task: task,
            queued: 0,
            acked: 0,
            unacked: VecDeque::new(),
            acked_early: HashMap::new(),
            changes: VecDeque::new(),
        }
    }

    /// Hands one publish to the client; it goes out in order.
    async fn publish(&mut self, topic: String, retain: bool, payload: Vec<u8>) -> Result<(), String> {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload)
            .await
            .map_err(|e| format!("cannot publish: {e}"))?;
        self.queued += 1;
        Ok(())
    }

    /// The publishes since the last call make up one change.
    fn end_change(&mut self) {
        self.changes.push_back((self.queued, Instant::now()));
    }

    fn changes_in_flight(&self) -> bool {
        !self.changes.is_empty()
    }

    /// Takes one report of the connection task; how many changes it
    /// completed, or why the connection is gone.
    fn note(&mut self, notice: Notice) -> Result<usize, String> {
        match notice {
            Notice::Connected => {}
            Notice::Sent(id) => self.unacked.push_back(id),
            Notice::Acked(id) => {
                *self.acked_early.entry(id).or_default() += 1;
                while let Some(oldest) = self.unacked.front()
                    && let Some(count) = self.acked_early.get_mut(oldest)
                {
                    *count -= 1;
                    if *count == 0 {
                        self.acked_early.remove(oldest);
                    }
                    self.unacked.pop_front();
                    self.acked += 1;
                }
            }
            Notice::Lost(why) => return Err(why),
        }
        let mut completed = 0;
        while self.changes.front().is_some_and(|&(last, _)| last <= self.acked) {
            self.changes.pop_front();
            completed += 1;
        }
        Ok(completed)
    }

    /// Takes every report waiting.
    fn poll(&mut self) -> Result<usize, String> {
        let mut completed = 0;
        loop {
            match self.notices.try_recv() {
                Ok(notice) => completed += self.note(notice)?,
                Err(mpsc::error::TryRecvError::Empty) => return Ok(completed),
                Err(mpsc::error::TryRecvError::Disconnected) => return Err("the connection task ended".into()),
            }
        }
    }

    /// Waits for the next report; a change unacknowledged for
    /// [`ACK_TIMEOUT`] fails the connection. Cancel-safe.
    async fn next(&mut self) -> Result<usize, String> {
        let notice = match self.changes.front() {
            Some(&(_, sent)) => {
                let deadline = tokio::time::Instant::from_std(sent + ACK_TIMEOUT);
                match tokio::time::timeout_at(deadline, self.notices.recv()).await {
                    Ok(notice) => notice,
                    Err(_) => {
                        return Err(format!("the broker did not acknowledge a change in {} s", ACK_TIMEOUT.as_secs()));
                    }
                }
            }
            None => self.notices.recv().await,
        };
        self.note(notice.ok_or("the connection task ended")?)
    }

    /// Waits until every publish was acknowledged.
    async fn settled(&mut self) -> Result<(), String> {
        while self.acked < self.queued {
            self.next().await?;
        }
        Ok(())
    }
}

/// Polls one connection's event loop until it fails or `stop`.
async fn drive(mut eventloop: EventLoop, notices: mpsc::UnboundedSender<Notice>, stop: CancellationToken) {
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => return,
            event = eventloop.poll() => event,
        };
        let notice = match event {
            Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => Notice::Connected,
            Ok(MqttEvent::Incoming(Packet::PubAck(ack))) => Notice::Acked(ack.pkid),
            Ok(MqttEvent::Outgoing(Outgoing::Publish(id))) => Notice::Sent(id),
            Ok(_) => continue,
            Err(e) => {
                let _ = notices.send(Notice::Lost(describe(&e)));
                return;
            }
        };
        if notices.send(notice).is_err() {
            return;
        }
    }
}

/// An error a person can act on.
fn describe(error: &rumqttc::ConnectionError) -> String {
    use rumqttc::ConnectionError as E;
    match error {
        E::ConnectionRefused(code) => format!("the broker refused the connection: {code:?}"),
        E::Io(e) => format!("connection failed: {e}"),
        E::Tls(e) => format!("TLS failed: {e} (is the port a TLS port? mqtts:// needs one)"),
        E::NetworkTimeout => "the broker did not answer in time".into(),
        other => format!("connection failed: {other}"),
    }
}

/// The MQTT sink (see the module docs).
#[derive(Debug)]
pub struct Mqtt {
    options: MqttOptions,
    topics: Topics,
    discovery: Option<String>,
    data_dir: DataDir,
    links: Arc<Links>,
    status: Arc<OutputStatus>,
    session: Option<Session>,
    /// When `tick` may try to connect again, and how many tries failed.
    next_attempt: (Instant, u32),
    cameras: BTreeMap<String, CameraModel>,
    /// Retained text topics as last published in the current session.
    published: HashMap<String, String>,
    /// The snapshot last published per camera, in the current session.
    published_snapshots: HashMap<String, String>,
    /// Discovery config topics published per camera, in this process.
    announced: BTreeMap<String, BTreeSet<String>>,
    /// Changes acknowledged and not yet reported to the delivery loop.
    completed: usize,
    /// Why the connection went while changes were in flight, until the
    /// delivery loop is told.
    lost: Option<Failure>,
}

impl Mqtt {
    /// A sink for `settings`; connects on first use. `active` are the
    /// events active at the output's cursor, `labels` what each camera has
    /// seen, so the retained topics start right.
    pub fn new(
        settings: &Settings,
        data_dir: DataDir,
        links: Arc<Links>,
        status: Arc<OutputStatus>,
        seed: Seed,
    ) -> Result<Self, String> {
        let broker = &settings.broker;
        let topics = Topics::new(&settings.prefix);
        let client_id = format!("lookout-{}-{:08x}", topics.prefix().replace('/', "-"), rand::random::<u32>());
        let mut options = MqttOptions::new(client_id, broker.host.clone(), broker.port);
        options
            .set_keep_alive(KEEP_ALIVE)
            .set_clean_session(true)
            .set_inflight(IN_FLIGHT)
            .set_max_packet_size(MAX_PACKET, MAX_PACKET)
            .set_last_will(LastWill::new(topics.available(), "offline", QoS::AtLeastOnce, true));
        if let Some(user) = &broker.username {
            options.set_credentials(user.clone(), broker.password.clone().unwrap_or_default());
        }
        if broker.tls {
            options.set_transport(Transport::tls_with_config(tls_config(settings.ca_file.as_deref())?.into()));
        }
        let mut cameras: BTreeMap<String, CameraModel> = seed
            .cameras
            .into_iter()
            .map(|camera| (camera, CameraModel { from_detector: true, ..CameraModel::default() }))
            .collect();
        for (camera, label) in seed.labels {
            cameras.entry(camera).or_default().labels.insert(label);
        }
        for event in seed.active {
            cameras.entry(event.camera_id.clone()).or_default().apply(&event);
        }
        Ok(Self {
            options,
            topics,
            discovery: settings.discovery.clone(),
            data_dir,
            links,
            status,
            session: None,
            next_attempt: (Instant::now(), 0),
            cameras,
            published: HashMap::new(),
            published_snapshots: HashMap::new(),
            announced: BTreeMap::new(),
            completed: 0,
            lost: None,
        })
    }

    /// Takes the open session's reports; ends it if it is gone.
    fn check(&mut self) {
        if let Some(session) = &mut self.session {
            match session.poll() {
                Ok(completed) => self.completed += completed,
                Err(why) => self.end_session(&why),
            }
        }
    }

    /// Connects, if not connected, and brings the new session up to date.
    async fn connect(&mut self) -> Result<(), String> {
        if self.session.is_some() {
            return Ok(());
        }
        self.session = Some(Session::open(self.options.clone()).await?);
        tracing::info!(output = %self.status.name, broker = %self.status.target, "MQTT connected");
        self.follow_heartbeats();
        let mut out = vec![(self.topics.available(), true, b"online".to_vec())];
        out.extend(self.discovery_changes());
        out.extend(self.state_changes().await);
        if let Err(why) = self.publish(out).await {
            self.end_session(&why);
            return Err(why);
        }
        Ok(())
    }

    /// Drops the session and what it had in flight; the delivery loop is
    /// told (by [`Self::lost`]) if that included changes.
    fn end_session(&mut self, why: &str) {
        if let Some(session) = self.session.take() {
            tracing::warn!(output = %self.status.name, %why, "MQTT connection lost");
            if session.changes_in_flight() && self.lost.is_none() {
                self.lost = Some(Failure::retry(0, why));
            }
        }
        self.published.clear();
        self.published_snapshots.clear();
    }

    /// A failure carrying the acknowledgements not yet reported.
    fn failure(&mut self, failure: Failure) -> Failure {
        Failure { delivered: std::mem::take(&mut self.completed), ..failure }
    }

    /// Hands `messages` to the session, in order, without waiting.
    async fn publish(&mut self, messages: Vec<(String, bool, Vec<u8>)>) -> Result<(), String> {
        let session = self.session.as_mut().ok_or("not connected")?;
        for (topic, retain, payload) in messages {
            session.publish(topic, retain, payload).await?;
        }
        Ok(())
    }

    /// Camera states and the camera list from the detectors' heartbeats.
    /// Once every detector is connected, a detector's camera (from an
    /// earlier heartbeat, or its events in the database) that none of them
    /// lists, or that one lists as removed by a reload, was removed from
    /// their settings: its state becomes `ended` and
    /// its discovery configs are cleared. A camera only the API posts
    /// events for is never removed.
    fn follow_heartbeats(&mut self) {
        let statuses = self.links.statuses();
        let every_detector_heard = !statuses.is_empty() && statuses.iter().all(|s| s.connected && s.stats.is_some());
        let listed: BTreeMap<&str, &CameraStatus> = statuses
            .iter()
            .filter(|s| s.connected)
            .filter_map(|s| s.stats.as_ref())
            .flat_map(|stats| stats.cameras.iter().filter(|c| !c.removed).map(|c| (c.camera_id.as_str(), c)))
            .collect();
        for (&camera, status) in &listed {
            let model = self.cameras.entry(camera.to_owned()).or_default();
            (model.state, model.from_detector, model.removed) = (Some(status.state), true, false);
            model.labels.extend(status.labels.iter().cloned());
        }
        if every_detector_heard {
            for (camera, model) in &mut self.cameras {
                if model.from_detector && !model.removed && !listed.contains_key(camera.as_str()) {
                    (model.state, model.removed) = (Some(CameraState::Ended), true);
                }
            }
        }
    }

    /// Discovery configs to publish, and those of removed cameras to clear.
    fn discovery_changes(&mut self) -> Vec<(String, bool, Vec<u8>)> {
        let Some(prefix) = self.discovery.clone() else { return Vec::new() };
        let mut out = Vec::new();
        for (camera, model) in &self.cameras {
            let configs: BTreeMap<String, String> =
                homeassistant::configs(&prefix, &self.topics, camera, &model.labels)
                    .into_iter()
                    .map(|c| (c.topic, c.payload.to_string()))
                    .collect();
            let announced = self.announced.entry(camera.clone()).or_default();
            if model.removed {
                // Also what an earlier run announced: retained at the broker
                // until cleared, whoever published it.
                let retained: BTreeSet<&String> = announced.iter().chain(configs.keys()).collect();
                for topic in retained {
                    if self.published.get(topic).is_none_or(|p| !p.is_empty()) {
                        out.push((topic.clone(), true, Vec::new()));
                    }
                }
                announced.clear();
            } else {
                for topic in announced.iter().filter(|t| !configs.contains_key(*t)) {
                    out.push((topic.clone(), true, Vec::new()));
                }
                for (topic, payload) in &configs {
                    if self.published.get(topic) != Some(payload) {
                        out.push((topic.clone(), true, payload.clone().into_bytes()));
                    }
                }
                *announced = configs.into_keys().collect();
            }
        }
        for (topic, _, payload) in &out {
            self.published.insert(topic.clone(), String::from_utf8_lossy(payload).into_owned());
        }
        out
    }

    /// Retained state topics whose value changed since last published.
    async fn state_changes(&mut self) -> Vec<(String, bool, Vec<u8>)> {
        let mut out = Vec::new();
        for (camera, model) in &self.cameras {
            for (topic, value) in model.retained(&self.topics, camera) {
                if self.published.get(&topic) != Some(&value) {
                    self.published.insert(topic.clone(), value.clone());
                    out.push((topic, true, value.into_bytes()));
                }
            }
            if let Some(path) = &model.snapshot
                && self.published_snapshots.get(camera) != Some(path)
            {
                match self.snapshot_bytes(path).await {
                    Some(jpeg) => {
                        self.published_snapshots.insert(camera.clone(), path.clone());
                        out.push((self.topics.camera(camera, "snapshot"), true, jpeg));
                    }
                    None => tracing::debug!(camera, path, "snapshot file gone; not published"),
                }
            }
        }
        out
    }

    async fn snapshot_bytes(&self, image_path: &str) -> Option<Vec<u8>> {
        let file = self.data_dir.resolve_snapshot(image_path)?;
        tokio::fs::read(file).await.ok()
    }
}

/// What the retained topics start from: events active at the cursor, the
/// labels each camera has seen, and the detectors' cameras the database
/// knows (so one removed while the webserver was down is still cleared).
#[derive(Debug, Default)]
pub struct Seed {
    pub active: Vec<Event>,
    pub labels: Vec<(String, String)>,
    pub cameras: Vec<String>,
}

impl Sink for Mqtt {
    fn window(&self) -> usize {
        WINDOW
    }

    async fn send(&mut self, batch: &[Delivery]) -> Result<(), Failure> {
        self.check();
        if let Some(lost) = self.lost.take() {
            return Err(self.failure(lost));
        }
        if let Err(why) = self.connect().await {
            return Err(self.failure(Failure::retry(0, why)));
        }
        for delivery in batch {
            let mut out = vec![(self.topics.events(), false, delivery.message().into_bytes())];
            let event = &delivery.after;
            self.cameras.entry(event.camera_id.clone()).or_default().apply(event);
            if delivery.kind == ChangeKind::New || delivery.kind == ChangeKind::Update {
                out.extend(self.discovery_changes());
            }
            out.extend(self.state_changes().await);
            if let Err(why) = self.publish(out).await {
                self.end_session(&why);
                let lost = self.lost.take().unwrap_or_else(|| Failure::retry(0, why));
                return Err(self.failure(lost));
            }
            if let Some(session) = &mut self.session {
                session.end_change();
            }
        }
        Ok(())
    }

    async fn acknowledged(&mut self) -> Result<usize, Failure> {
        loop {
            if self.completed > 0 {
                return Ok(std::mem::take(&mut self.completed));
            }
            if let Some(lost) = self.lost.take() {
                return Err(lost);
            }
            let Some(session) = self.session.as_mut().filter(|s| s.changes_in_flight()) else {
                return Err(Failure::retry(0, "no change in flight on this connection"));
            };
            match session.next().await {
                Ok(completed) => self.completed += completed,
                Err(why) => self.end_session(&why),
            }
        }
    }

    async fn tick(&mut self) {
        self.check();
        if self.lost.is_some() || (self.session.is_none() && Instant::now() < self.next_attempt.0) {
            return; // the delivery loop retries first
        }
        let result = match self.connect().await {
            Ok(()) => {
                self.follow_heartbeats();
                let mut out = self.discovery_changes();
                out.extend(self.state_changes().await);
                self.publish(out).await
            }
            Err(why) => Err(why),
        };
        match result {
            Ok(()) => {
                self.next_attempt = (Instant::now(), 0);
                self.status.succeeded();
            }
            Err(why) => {
                self.end_session(&why);
                let failures = self.next_attempt.1;
                self.next_attempt = (Instant::now() + backoff(failures), failures + 1);
                self.status.failed(&why);
            }
        }
    }

    async fn close(&mut self) {
        self.check();
        if self.session.is_some() {
            let offline = vec![(self.topics.available(), true, b"offline".to_vec())];
            let said = async {
                self.publish(offline).await?;
                match &mut self.session {
                    Some(session) => session.settled().await,
                    None => Err("not connected".to_owned()),
                }
            };
            match tokio::time::timeout(Duration::from_millis(400), said).await {
                Ok(Ok(())) => {}
                Ok(Err(why)) => tracing::warn!(output = %self.status.name, %why, "could not say offline"),
                Err(_) => tracing::warn!(output = %self.status.name, "the broker did not take offline in time"),
            }
            if let Some(session) = &self.session {
                let _ = session.client.try_disconnect();
            }
        }
        self.session = None;
    }
}

/// rustls with the web's root certificates (and `ca_file`'s).
fn tls_config(ca_file: Option<&std::path::Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("cannot read --mqtt-ca {}: {e}", path.display()))?;
        let certs: Vec<_> = rustls::pki_types::pem::PemObject::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("--mqtt-ca {}: not PEM certificates: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("--mqtt-ca {}: holds no certificate", path.display()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| format!("--mqtt-ca {}: {e}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_parse_or_say_why() {
        let url = BrokerUrl::parse("mqtt://ha:p%40ss@broker.lan:1884").expect("parses");
        assert_eq!((url.tls, url.host.as_str(), url.port), (false, "broker.lan", 1884));
        assert_eq!((url.username.as_deref(), url.password.as_deref()), (Some("ha"), Some("p@ss")));
        assert_eq!(url.to_string(), "mqtt://ha:***@broker.lan:1884", "the password never shows");
        assert_eq!(BrokerUrl::parse("mqtts://broker").expect("tls").port, 8883);
        assert_eq!(BrokerUrl::parse("mqtt://[::1]").expect("v6").host, "::1");
        for (bad, why) in [
            ("broker:1883", "mqtt://"),
            ("http://broker", "unknown scheme"),
            ("mqtt://broker:0", "bad port"),
            ("mqtt://broker:99999", "bad port"),
            ("mqtt://broker/topic", "no path"),
            ("mqtt://", "no host"),
            ("mqtt://u:%zz@broker", "bad %-escape"),
        ] {
            let error = BrokerUrl::parse(bad).expect_err(bad);
            assert!(error.contains(why), "{bad}: {error}");
        }
    }

    #[test]
    fn prefixes_are_topic_levels_without_wildcards() {
        assert_eq!(parse_prefix("home/lookout/").as_deref(), Ok("home/lookout"));
        for bad in ["", "/", "a/+/b", "a#", "a//b"] {
            assert!(parse_prefix(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Topics::new("lookout").label("door", "a/b+c"), "lookout/door/a_b_c");
    }

    #[tokio::test]
    async fn changes_complete_in_order_whatever_order_their_pubacks_come_in() {
        let (client, _eventloop) = AsyncClient::new(MqttOptions::new("test", "localhost", 1883), 16);
        let (_tx, notices) = mpsc::unbounded_channel();
        let mut session = Session::new(client, notices, CancellationToken::new().drop_guard());
        // Three changes of 2, 1 and 2 publishes, with packet ids 1–4 and 1
        // again once the first 1 was acknowledged.
        for publishes in [2, 1, 2] {
            session.queued += publishes;
            session.end_change();
        }
        let mut completed = |notice| session.note(notice).expect("connected");
        for id in [1, 2, 3, 4] {
            assert_eq!(completed(Notice::Sent(id)), 0);
        }
        assert_eq!(completed(Notice::Acked(2)), 0, "the first publish is not acknowledged yet");
        assert_eq!(completed(Notice::Acked(1)), 1, "the first change is");
        assert_eq!(completed(Notice::Sent(1)), 0, "id 1 reused for the last publish");
        assert_eq!(completed(Notice::Acked(4)), 0);
        assert_eq!(completed(Notice::Acked(1)), 0, "the last publish, behind 3");
        assert_eq!(completed(Notice::Acked(3)), 2, "3 completes the second change and, with 4 and 1, the third");
        assert!(!session.changes_in_flight());
        assert!(session.note(Notice::Lost("gone".into())).is_err());
    }

    #[test]
    fn a_bad_ca_file_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.pem");
        assert!(tls_config(Some(&missing)).expect_err("missing").contains("cannot read --mqtt-ca"));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate").expect("write");
        assert!(tls_config(Some(&empty)).expect_err("empty").contains("no certificate"));
        assert!(tls_config(None).is_ok());
    }
}
