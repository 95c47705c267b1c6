//! `--dry-run`: simulated cameras that produce realistic events.
//!
//! The simulation stands in for the camera pipeline, not for the rest of the
//! system: its events go through the same event manager, store, logs and
//! socket as real ones, and say `metadata.source = "dry-run"`. Each camera
//! has a scene (what tends to appear there), a frame counter advancing at
//! [`SIMULATED_FPS`], and an inference time drawn from a log-normal around a
//! per-camera median, as a CPU detector's would be.
//!
//! Events live as camera events do (SPEC §7): announced active, some gain a
//! label part-way ([`LABEL_GAINED`] of them), and end after a log-normal
//! time around `--event-secs`, capped at [`LONGEST`]. With `--event-secs 0`
//! each is reported whole, as one change. A shutdown ends the events in
//! progress (`metadata.end_reason = "shutdown"`).
//!
//! Events have pictures, as camera events do: [`picture`] draws each
//! camera's scene with the event's objects on it, written as its snapshot
//! (synced, before the change naming it is committed); a label gained
//! mid-way is a new picture under a new name (`<event_id>-2.jpg`).
//! `--no-snapshots` leaves them out (benchmarks at thousands of events a
//! second measure the event path, not JPEG encoding).

pub mod picture;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use rand::seq::IndexedRandom;
use shared::Timestamp;
use shared::config::DataDir;
use shared::model::{BoundingBox, DetectedObject, EventMetadata, EventSource, EventState, NewEvent, new_event_id};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::camera::SHUTDOWN_REASON;
use crate::cli::Args;
use crate::describe::{describe_objects, place_name};
use crate::hub::Hub;
use crate::manager::{Command, EventEdit};
use crate::stats::Stats;

/// Frames per second each simulated camera "decodes".
pub const SIMULATED_FPS: f64 = 5.0;
/// Simulated frame size: boxes are in the pixels of the pictures.
const FRAME_W: f64 = picture::WIDTH as f64;
const FRAME_H: f64 = picture::HEIGHT as f64;

/// Share of simulated events that gain a label part-way.
pub const LABEL_GAINED: f64 = 0.4;
/// Longest life of a simulated event.
pub const LONGEST: Duration = Duration::from_secs(60);

/// Cameras used when `--dry-run` is given no `--camera`.
pub const DEFAULT_CAMERAS: &[&str] = &["front_door", "driveway", "backyard", "garage"];

/// Labels and their typical box size (fraction of the frame width, aspect h/w).
const LABELS: &[(&str, f64, f64)] = &[
    ("person", 0.10, 2.4),
    ("car", 0.32, 0.6),
    ("dog", 0.11, 0.8),
    ("cat", 0.08, 0.8),
    ("bicycle", 0.15, 0.7),
    ("package", 0.07, 0.8),
    ("truck", 0.38, 0.7),
];

/// One simulated camera.
#[derive(Debug)]
pub struct SimCamera {
    pub id: String,
    place: String,
    median_inference_ms: f64,
    started: Instant,
    scene: Arc<picture::Scene>,
}

impl SimCamera {
    pub fn new(id: &str) -> Self {
        let mut rng = rand::rng();
        Self {
            id: id.to_owned(),
            place: place_name(id),
            median_inference_ms: rng.random_range(18.0..45.0),
            started: Instant::now(),
            scene: Arc::new(picture::Scene::for_camera(id)),
        }
    }

    /// Frames this camera has decoded so far.
    pub fn frame_number(&self) -> u64 {
        (self.started.elapsed().as_secs_f64() * SIMULATED_FPS) as u64
    }

    /// A log-normal inference time around this camera's median.
    pub fn inference_ms(&self, rng: &mut impl Rng) -> f64 {
        let (u1, u2): (f64, f64) = (rng.random_range(f64::EPSILON..1.0), rng.random());
        let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let ms = self.median_inference_ms * (0.25 * normal).exp();
        (ms * 100.0).round() / 100.0
    }

    /// A plausible event seen now, reported whole.
    pub fn event(&self, producer: &str, rng: &mut impl Rng) -> NewEvent {
        let timestamp = Timestamp::now();
        let n_objects = *[0usize, 1, 1, 1, 2, 2, 3].choose(rng).unwrap_or(&1);
        let objects: Vec<DetectedObject> = (0..n_objects).map(|_| random_object(rng)).collect();
        let motion_confidence = (rng.random_range(0.05..0.95f64) * 1000.0).round() / 1000.0;
        NewEvent {
            event_id: new_event_id(timestamp),
            camera_id: self.id.clone(),
            timestamp,
            // Reported whole: a dry-run event is over when it is announced.
            state: EventState::Ended,
            end_time: Some(timestamp),
            motion_confidence,
            description: describe_objects(&self.place, &objects, motion_confidence),
            detected_objects: objects,
            image_path: None,
            metadata: EventMetadata {
                source: EventSource::DryRun,
                inference_ms: Some(self.inference_ms(rng)),
                frame_number: Some(self.frame_number()),
                producer: Some(producer.to_owned()),
                end_reason: None,
            },
        }
    }
}

/// Adds detected objects to `event` until its JSON is about `bytes` long
/// (for benchmarks with large events); keeps within the model's limits.
pub fn pad_to(event: &mut NewEvent, bytes: usize, rng: &mut impl Rng) {
    let mut size = serde_json::to_string(event).map_or(0, |j| j.len());
    while size < bytes && event.detected_objects.len() < shared::model::MAX_DETECTED_OBJECTS {
        let object = random_object(rng);
        size += serde_json::to_string(&object).map_or(0, |j| j.len()) + 1;
        event.detected_objects.push(object);
    }
}

fn random_object(rng: &mut impl Rng) -> DetectedObject {
    let &(label, width_frac, aspect) = LABELS.choose(rng).unwrap_or(&LABELS[0]);
    let width = (FRAME_W * width_frac * rng.random_range(0.7..1.4)).round();
    let height = (width * aspect * rng.random_range(0.85..1.15)).min(FRAME_H).round();
    DetectedObject {
        label: label.to_owned(),
        confidence: (rng.random_range(0.45..0.99f64) * 1000.0).round() / 1000.0,
        // Standing on the ground: the box's bottom in the lower half of the frame.
        bbox: BoundingBox {
            x: rng.random_range(0.0..(FRAME_W - width).max(1.0)).round(),
            y: (rng.random_range(FRAME_H * 0.5..=FRAME_H) - height).max(0.0).round(),
            width,
            height,
        },
    }
}

/// Paces events at `rate` per second over all cameras, with no drift.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    next: tokio::time::Instant,
}

impl Pacer {
    pub fn new(rate: f64) -> Self {
        Self { interval: Duration::from_secs_f64(1.0 / rate), next: tokio::time::Instant::now() }
    }

    /// Waits for the next event's slot. A slow consumer makes slots pile up;
    /// they are then produced back to back until the schedule is met again.
    pub async fn tick(&mut self) {
        tokio::time::sleep_until(self.next).await;
        self.next += self.interval;
    }
}

/// A simulated event in progress.
#[derive(Debug)]
struct Live {
    event_id: String,
    /// Its camera's index in the simulation's cameras.
    camera: usize,
    timestamp: Timestamp,
    /// Pictures taken so far.
    pictures: u32,
    place: String,
    edit: EventEdit,
    ends_at: tokio::time::Instant,
    /// When it gains a label, if it does.
    gains_at: Option<tokio::time::Instant>,
}

impl Live {
    fn next_due(&self) -> tokio::time::Instant {
        self.gains_at.map_or(self.ends_at, |at| at.min(self.ends_at))
    }
}

/// How long a simulated event lasts: log-normal around `typical`, at least
/// a second, at most [`LONGEST`].
fn lifetime(typical: Duration, rng: &mut impl Rng) -> Duration {
    let (u1, u2): (f64, f64) = (rng.random_range(f64::EPSILON..1.0), rng.random());
    let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    typical.mul_f64((0.8 * normal).exp()).clamp(Duration::from_secs(1), LONGEST)
}

/// Produces dry-run events from `cameras` until `--count` of them have
/// ended, or until shutdown is asked for (which ends those in progress),
/// handing each change to the event manager. Pictures go under
/// `snapshots` (a data directory), unless it is `None`.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    args: &Args,
    cameras: &[SimCamera],
    snapshots: Option<&DataDir>,
    hub: &Hub,
    stats: &Stats,
    producer: &str,
    events: mpsc::Sender<Command>,
    shutdown: &CancellationToken,
) {
    for camera in cameras {
        stats.set_camera_labels(&camera.id, LABELS.iter().map(|(label, _, _)| (*label).to_owned()));
    }
    if args.wait_subscribers > 0 {
        tracing::info!(n = args.wait_subscribers, "waiting for subscribers before producing events");
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = hub.wait_for_subscribers(args.wait_subscribers as usize) => {}
        }
    }
    let mut pacer = Pacer::new(args.rate);
    let mut frames_seen = vec![0u64; cameras.len()];
    let mut produced = 0u64;
    let mut live: Vec<Live> = Vec::new();
    loop {
        let more = args.count.is_none_or(|n| produced < n);
        if !more && live.is_empty() {
            break;
        }
        let due = live.iter().map(Live::next_due).min();
        let command = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            () = sleep_until(due) => {
                let mut command = next_change(&mut live, &mut rand::rng());
                if let Some(data_dir) = snapshots {
                    picture_update(&mut command, &mut live, cameras, data_dir).await;
                }
                command
            }
            _ = pacer.tick(), if more => {
                let (index, mut new) = {
                    let mut rng = rand::rng();
                    let index = rng.random_range(0..cameras.len());
                    let mut new = cameras[index].event(producer, &mut rng);
                    if args.payload_bytes > 0 {
                        pad_to(&mut new, args.payload_bytes as usize, &mut rng);
                    }
                    (index, new)
                };
                if let Some(data_dir) = snapshots {
                    let name = (new.timestamp, new.event_id.clone(), 1);
                    let scene = cameras[index].scene.clone();
                    new.image_path = take_picture(data_dir, scene, name, new.detected_objects.clone()).await;
                }
                let frames = cameras[index].frame_number();
                let inference = new.metadata.inference_ms.unwrap_or_default();
                stats.record_frames(&cameras[index].id, frames.saturating_sub(frames_seen[index]).max(1), inference);
                frames_seen[index] = frames;
                produced += 1;
                if !args.event_secs.is_zero() {
                    live.push(begin(&mut new, index, &cameras[index].place, args.event_secs, &mut rand::rng()));
                }
                Some(Command::New(new))
            }
        };
        let Some(command) = command else { continue };
        let new_id = match &command {
            Command::New(event) => Some(event.event_id.clone()),
            _ => None,
        };
        // Waits while the manager's backlog is full (the database refuses
        // writes): the simulation pauses rather than drop an event. A
        // shutdown meanwhile drops this change, and a new event it would
        // have announced is no longer in progress: ending it would name an
        // event the manager never had.
        tokio::select! {
            biased;
            sent = events.send(command) => if sent.is_err() { return },
            _ = shutdown.cancelled() => {
                if let Some(id) = new_id {
                    live.retain(|l| l.event_id != id);
                }
                break;
            }
        }
    }
    // Shutdown: what is still going on ends now.
    for event in live {
        let end = Command::End {
            event_id: event.event_id,
            at: Timestamp::now(),
            reason: Some(SHUTDOWN_REASON.to_owned()),
            edit: event.edit,
        };
        if events.send(end).await.is_err() {
            return;
        }
    }
}

/// An update of a simulated event (a label gained) gets a new picture
/// under a new name, as a camera's better snapshot does.
async fn picture_update(command: &mut Option<Command>, live: &mut [Live], cameras: &[SimCamera], data_dir: &DataDir) {
    let Some(Command::Update { event_id, edit }) = command else { return };
    let Some(event) = live.iter_mut().find(|l| &l.event_id == event_id) else { return };
    event.pictures += 1;
    let name = (event.timestamp, event.event_id.clone(), event.pictures);
    let scene = cameras[event.camera].scene.clone();
    if let Some(path) = take_picture(data_dir, scene, name, edit.detected_objects.clone()).await {
        edit.image_path = Some(path.clone());
        event.edit.image_path = Some(path);
    }
}

/// Draws `objects` on `scene` and writes it, synced, as picture `n` of the
/// event `(timestamp, event_id, n)`; returns its `image_path`. `None`
/// when it cannot be written: the event goes ahead without it, as a
/// camera's does.
async fn take_picture(
    data_dir: &DataDir,
    scene: Arc<picture::Scene>,
    (timestamp, event_id, n): (Timestamp, String, u32),
    objects: Vec<DetectedObject>,
) -> Option<String> {
    let relative = DataDir::snapshot_version_path(timestamp, &event_id, n);
    let path = data_dir.resolve_snapshot(&relative)?;
    let written = tokio::task::spawn_blocking(move || {
        let jpeg = scene.snapshot(&objects).map_err(|e| e.to_string())?;
        shared::durable::write_file(&path, &jpeg).map_err(|e| format!("{}: {e}", path.display()))
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|written| written);
    match written {
        Ok(()) => Some(relative),
        Err(e) => {
            tracing::warn!(event_id, "cannot save the dry run's picture, event kept without it: {e}");
            None
        }
    }
}

/// Sleeps until `due`; forever when nothing is due.
async fn sleep_until(due: Option<tokio::time::Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Makes `new` (seen by camera `camera`) an active event and returns its
/// schedule.
fn begin(new: &mut NewEvent, camera: usize, place: &str, typical: Duration, rng: &mut impl Rng) -> Live {
    (new.state, new.end_time) = (EventState::Active, None);
    let lasts = lifetime(typical, rng);
    let now = tokio::time::Instant::now();
    Live {
        event_id: new.event_id.clone(),
        camera,
        timestamp: new.timestamp,
        pictures: 1,
        place: place.to_owned(),
        edit: EventEdit {
            motion_confidence: new.motion_confidence,
            detected_objects: new.detected_objects.clone(),
            description: new.description.clone(),
            image_path: new.image_path.clone(),
            inference_ms: new.metadata.inference_ms,
        },
        ends_at: now + lasts,
        gains_at: rng.random_bool(LABEL_GAINED).then(|| now + lasts.mul_f64(rng.random_range(0.3..0.7))),
    }
}

/// The change now due among `live`: a label gained, or an end.
fn next_change(live: &mut Vec<Live>, rng: &mut impl Rng) -> Option<Command> {
    let now = tokio::time::Instant::now();
    let index = live.iter().position(|l| l.next_due() <= now)?;
    let event = &mut live[index];
    if event.gains_at.is_some_and(|at| at <= now && at < event.ends_at) {
        event.gains_at = None;
        let edit = &mut event.edit;
        if edit.detected_objects.len() < shared::model::MAX_DETECTED_OBJECTS {
            edit.detected_objects.push(random_object(rng));
        }
        edit.description = describe_objects(&event.place, &edit.detected_objects, edit.motion_confidence);
        return Some(Command::Update { event_id: event.event_id.clone(), edit: edit.clone() });
    }
    let event = live.swap_remove(index);
    Some(Command::End { event_id: event.event_id, at: Timestamp::now(), reason: None, edit: event.edit })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_reaches_the_requested_size_and_stays_valid() {
        let camera = SimCamera::new("door");
        let mut rng = rand::rng();
        let mut event = camera.event("detector@test", &mut rng);
        pad_to(&mut event, 4096, &mut rng);
        let size = serde_json::to_string(&event).expect("json").len();
        assert!((4096..4096 + 200).contains(&size), "{size}");
        assert_eq!(event.validate(), Ok(()));
    }

    #[test]
    fn simulated_events_are_valid_and_honest() {
        let camera = SimCamera::new("front_door");
        let mut rng = rand::rng();
        for _ in 0..500 {
            let event = camera.event("detector@test", &mut rng);
            assert_eq!(event.validate(), Ok(()), "{event:?}");
            assert_eq!(event.metadata.source, EventSource::DryRun);
            for o in &event.detected_objects {
                assert!(o.bbox.x + o.bbox.width <= FRAME_W && o.bbox.y + o.bbox.height <= FRAME_H + 1.0);
            }
        }
    }

    #[test]
    fn lives_are_mostly_a_few_seconds_and_never_over_a_minute() {
        let mut rng = rand::rng();
        let lives: Vec<Duration> = (0..2000).map(|_| lifetime(Duration::from_secs(4), &mut rng)).collect();
        assert!(lives.iter().all(|l| (Duration::from_secs(1)..=LONGEST).contains(l)));
        let short = lives.iter().filter(|l| **l <= Duration::from_secs(10)).count();
        assert!(short > 1600, "most within 10 s: {short} of 2000");
        assert!(lives.iter().any(|l| *l > Duration::from_secs(15)), "some long ones");
    }

    /// Regression: a shutdown while a new event waited for room ended it,
    /// though it was never announced ("change refused and dropped").
    #[tokio::test(start_paused = true)]
    async fn a_shutdown_ends_only_events_that_were_announced() {
        use clap::Parser;
        let args =
            Args::try_parse_from(["detector", "--dry-run", "--rate", "1000", "--event-secs", "60"]).expect("arguments");
        let stats = Arc::new(Stats::new(["door".to_owned()]));
        let hub = Hub::new("test".into(), 16, stats.clone(), shared::wire::WireKey::generate());
        let cameras = [SimCamera::new("door")];
        // Room for two changes and nobody reading: the third waits.
        let (events, mut received) = mpsc::channel(2);
        let shutdown = CancellationToken::new();
        // The paused clock moves only once every task waits: the run then
        // waits to send its third new event.
        let stop_and_read = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert_eq!(received.len(), 2, "the channel is full");
            shutdown.cancel();
            // Read only once the run has seen the shutdown, still waiting.
            tokio::time::sleep(Duration::from_secs(1)).await;
            let mut commands = Vec::new();
            while let Some(command) = received.recv().await {
                commands.push(command);
            }
            commands
        };
        let ((), commands) =
            tokio::join!(run(&args, &cameras, None, &hub, &stats, "test", events, &shutdown), stop_and_read);
        let mut announced = std::collections::HashSet::new();
        for command in commands {
            match command {
                Command::New(event) => assert!(announced.insert(event.event_id)),
                Command::End { event_id, reason, .. } => {
                    assert!(announced.remove(&event_id), "an end for {event_id}, never announced");
                    assert_eq!(reason.as_deref(), Some(SHUTDOWN_REASON));
                }
                other => panic!("no updates within a minute's lives this soon: {other:?}"),
            }
        }
        assert!(announced.is_empty(), "every announced event ended: {announced:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_live_event_is_active_gains_its_label_before_it_ends_and_ends_once() {
        let camera = SimCamera::new("front_door");
        let mut rng = rand::rng();
        let mut new = camera.event("detector@test", &mut rng);
        let mut live = vec![begin(&mut new, 0, "front door", Duration::from_secs(4), &mut rng)];
        assert_eq!((new.state, new.end_time), (EventState::Active, None));
        assert_eq!(new.validate(), Ok(()));
        live[0].gains_at = Some(live[0].ends_at - Duration::from_millis(500)); // this one does
        let labels = new.detected_objects.len();
        assert_eq!(next_change(&mut live, &mut rng), None, "nothing due yet");

        tokio::time::sleep_until(live[0].next_due()).await;
        let Some(Command::Update { event_id, edit }) = next_change(&mut live, &mut rng) else { panic!("an update") };
        assert_eq!((event_id.as_str(), edit.detected_objects.len()), (new.event_id.as_str(), labels + 1));
        tokio::time::sleep_until(live[0].next_due()).await;
        let Some(Command::End { event_id, reason, edit: end, .. }) = next_change(&mut live, &mut rng) else {
            panic!("the end")
        };
        assert_eq!((event_id, reason), (new.event_id, None));
        assert_eq!(end.detected_objects, edit.detected_objects, "the end keeps the gained label");
        assert!(live.is_empty());
    }
}
