//! One camera's analysis: frame → stages → episode → event changes.
//!
//! A frame goes through the [`Stage`]s in order: [`MotionStage`] on every
//! frame, then, unless the camera is motion-only, the object stage
//! (`super::detect`), which runs the model only on frames where motion was
//! found and adds labelled detections to the same [`Findings`]. The episode
//! tracker decides whether this frame starts, continues or ends an episode,
//! and the object tracker follows detections across its frames. The key
//! frame is the one with the best-scoring confirmed object (or, while there
//! is none, the most change). The episode lives as one event (SPEC §7, §8):
//!
//! * **new**, active, on the frame that confirms the episode — for an
//!   object camera, the frame on which a wanted object is confirmed (seen in
//!   2 frames, median score over the threshold); episodes without one are
//!   no event unless the camera keeps motion events — with the key frame so
//!   far as its snapshot, under `DATA_DIR/snapshots/YYYY-MM-DD/<event_id>.jpg`;
//! * **update** at once when a new label is confirmed; otherwise at most
//!   once per [`UPDATE_EVERY`], when the key frame got clearly better (half
//!   as much change again, a region twice as large, or a surer object): a
//!   new snapshot file (`<event_id>-2.jpg`, …), so a cached picture is never
//!   a stale one;
//! * **end**, when the episode ends (or its source stops), with the best
//!   snapshot and a sentence saying where, how large and how long.
//!
//! Everything here is synchronous and CPU-bound: the camera task runs it off
//! the async runtime, on the blocking pool.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use objects::Detection;
use objects::track::{Tracker, TrackerConfig};

use shared::Timestamp;
use shared::config::DataDir;
use shared::model::{BoundingBox, DetectedObject, EventMetadata, EventSource, EventState, NewEvent, new_event_id};
use vision::RgbImage;
use vision::episode::{Episode, EpisodeConfig, EpisodeTracker};
use vision::image::PixelRect;
use vision::motion::{MotionConfig, MotionDetector, Verdict};
use vision::snapshot::Annotation;

use super::detect::to_detected;
use crate::cli::ObjectFilter;
use crate::describe::{describe_episode, describe_tracks, place_name};
use crate::manager::{Command, EventEdit};
use crate::stats::{DECODE_WAIT, Stats, analysis_ms, elapsed_ms};

/// Most regions reported per event (largest first).
const MAX_REGIONS: usize = 16;
/// Shortest time between two updates of one event.
pub const UPDATE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// How much more change a key frame needs to be worth an update.
const BETTER_CHANGE: f32 = 1.5;
/// How much larger its largest region needs to be.
const BETTER_AREA: f64 = 2.0;
/// How much surer its best object needs to be.
const BETTER_SCORE: f32 = 0.1;
/// Motion that went on this long before an object was first seen was not
/// that object's (a swaying branch, then a person): its event starts with
/// the object instead.
const LATE_OBJECT: std::time::Duration = std::time::Duration::from_secs(2);
/// The stage name snapshot encoding is timed under.
pub const SNAPSHOT_STAGE: &str = "snapshot";

/// A decoded frame at detection size.
#[derive(Debug)]
pub struct Frame {
    /// Position in the stream, counted from 0 at each (re)start; at the
    /// detection rate, `index / fps` is the time into the stream.
    pub index: u64,
    pub seen_at: Timestamp,
    pub image: RgbImage,
}

/// What the stages found in one frame.
#[derive(Debug, Default)]
pub struct Findings {
    /// The changed fraction of the frame, when something moved.
    pub motion: Option<f32>,
    /// Moving regions, in pixels of the frame.
    pub objects: Vec<DetectedObject>,
    /// Wanted objects the model found, in pixels of the frame.
    pub detections: Vec<Detection>,
    /// Time inside the model, when it ran.
    pub model_ms: Option<f64>,
}

/// One step of frame analysis.
pub trait Stage: Send + std::fmt::Debug {
    /// Names the stage in timings (`/api/metrics`, heartbeats).
    fn name(&self) -> &'static str;
    /// Adds what it finds; `false` when it had nothing to do for this frame
    /// (its time is then not counted).
    fn analyse(&mut self, frame: &Frame, findings: &mut Findings) -> bool;
    /// The source restarted: forget anything learned from earlier frames.
    fn reset(&mut self);
}

/// Motion detection as a pipeline stage.
#[derive(Debug)]
pub struct MotionStage(MotionDetector);

impl MotionStage {
    pub fn new(config: MotionConfig) -> Self {
        Self(MotionDetector::new(config))
    }
}

impl Stage for MotionStage {
    fn name(&self) -> &'static str {
        "motion"
    }

    fn analyse(&mut self, frame: &Frame, findings: &mut Findings) -> bool {
        let result = self.0.process(&frame.image.to_gray());
        if result.verdict == Verdict::Recalibrated {
            tracing::info!(frame = frame.index, "global change (light or exposure): motion background recalibrated");
        }
        if result.verdict != Verdict::Motion {
            return true;
        }
        findings.motion = Some(result.changed_fraction);
        findings.objects.extend(result.regions.iter().take(MAX_REGIONS).map(|region| {
            let r = region.rect;
            let density = f64::from(region.changed) / f64::from((r.width * r.height).max(1));
            DetectedObject {
                label: "motion".to_owned(),
                confidence: round3(density.clamp(0.0, 1.0)),
                bbox: BoundingBox {
                    x: f64::from(r.x),
                    y: f64::from(r.y),
                    width: f64::from(r.width),
                    height: f64::from(r.height),
                },
            }
        }));
        true
    }

    fn reset(&mut self) {
        self.0.reset();
    }
}

/// The frame kept for an episode's snapshot.
#[derive(Debug)]
struct KeyFrame {
    image: RgbImage,
    /// Its confirmed objects, else its moving regions.
    objects: Vec<DetectedObject>,
    /// Model time when the model ran on it, else the whole analysis time.
    inference_ms: f64,
    /// Its changed fraction.
    change: f32,
    /// Its best confirmed object's score; 0 without one.
    object_score: f32,
}

impl KeyFrame {
    /// The area of its largest region, in pixels.
    fn largest_area(&self) -> f64 {
        self.objects.iter().map(|o| o.bbox.width * o.bbox.height).fold(0.0, f64::max)
    }
}

/// The event of the episode in progress, once announced.
#[derive(Debug)]
struct Announced {
    event_id: String,
    started_at: Timestamp,
    first_frame: u64,
    /// What its current snapshot shows.
    change: f32,
    area: f64,
    object_score: f32,
    /// Labels it was announced or updated with.
    labels: BTreeSet<&'static str>,
    image_path: Option<String>,
    /// Snapshot files written for it.
    snapshots: u32,
    /// When (frame time) it last changed.
    changed_at: Timestamp,
    /// The key frame is newer than the snapshot.
    key_is_newer: bool,
}

/// One camera's pipeline.
#[derive(Debug)]
pub struct Pipeline {
    camera_id: String,
    place: String,
    producer: String,
    fps: f64,
    data_dir: DataDir,
    stages: Vec<Box<dyn Stage>>,
    tracker: EpisodeTracker<Timestamp>,
    /// Object tracking, unless the camera is motion-only.
    objects: Option<ObjectTracking>,
    key: Option<KeyFrame>,
    /// The episode in progress, confirmed but not announced yet (waiting
    /// for an object).
    pending: Option<Episode<Timestamp>>,
    open: Option<Announced>,
    stats: Arc<Stats>,
}

/// An object camera's tracks and rules.
#[derive(Debug)]
struct ObjectTracking {
    tracks: Tracker,
    min_score: f32,
    motion_events: bool,
}

impl ObjectTracking {
    fn confirmed(&self) -> impl Iterator<Item = &objects::track::Track> {
        self.tracks.tracks().iter().filter(|t| t.confirmed(self.tracks.config(), self.min_score))
    }
}

/// How one camera's frames are analysed.
#[derive(Debug)]
pub struct Analysis {
    /// Frames per second (of the stream the frames come from).
    pub fps: f64,
    pub stages: Vec<Box<dyn Stage>>,
    pub episodes: EpisodeConfig,
    /// What counts as an object, when the stages detect objects.
    pub objects: Option<ObjectFilter>,
}

impl Pipeline {
    pub fn new(camera_id: &str, producer: &str, data_dir: DataDir, analysis: Analysis, stats: Arc<Stats>) -> Self {
        Self {
            camera_id: camera_id.to_owned(),
            place: place_name(camera_id),
            producer: producer.to_owned(),
            fps: analysis.fps,
            data_dir,
            stages: analysis.stages,
            tracker: EpisodeTracker::new(analysis.episodes),
            objects: analysis.objects.map(|filter| ObjectTracking {
                tracks: Tracker::new(TrackerConfig::default()),
                min_score: filter.min_score,
                motion_events: filter.motion_events,
            }),
            key: None,
            pending: None,
            open: None,
            stats,
        }
    }

    /// Analyses one frame, which took `decode_wait_ms` to arrive. Returns
    /// the changes of its episode's event that this frame makes (its start,
    /// an update, its end).
    pub fn process(&mut self, frame: Frame, decode_wait_ms: f64) -> Vec<Command> {
        let mut findings = Findings::default();
        let mut times = Vec::with_capacity(self.stages.len() + 1);
        times.push((DECODE_WAIT, decode_wait_ms));
        for stage in &mut self.stages {
            let started = Instant::now();
            if stage.analyse(&frame, &mut findings) {
                times.push((stage.name(), elapsed_ms(started)));
            }
        }
        self.stats.record_frame(&self.camera_id, &times, findings.motion.is_some());

        let seen_at = frame.seen_at;
        let step = self.tracker.observe(frame.index, seen_at, findings.motion);
        let (object_score, confirmed) = self.track_objects(frame.index, &findings.detections);
        let in_episode = step.started.is_some() || self.pending.is_some() || self.open.is_some();
        let better_object = in_episode && object_score > self.key.as_ref().map_or(0.0, |k| k.object_score);
        let motion_key = step.keep_key_frame && self.key.as_ref().is_none_or(|k| k.object_score == 0.0);
        if better_object || motion_key {
            self.key = Some(KeyFrame {
                image: frame.image,
                objects: if better_object { confirmed } else { findings.objects },
                inference_ms: findings.model_ms.unwrap_or_else(|| analysis_ms(&times)),
                change: findings.motion.unwrap_or_default(),
                object_score: if better_object { object_score } else { 0.0 },
            });
            if let Some(open) = &mut self.open {
                open.key_is_newer = true;
            }
        }
        if let Some(episode) = step.started {
            self.pending = Some(episode);
        }
        let mut changes = Vec::new();
        if self.open.is_none() && self.pending.is_some() && self.may_announce() {
            changes.extend(self.pending.take().map(|episode| self.announce(episode, seen_at)));
        } else if step.ended.is_none() {
            changes.extend(self.update(seen_at));
        }
        if let Some(episode) = step.ended {
            changes.extend(self.finish(episode, None));
            self.forget_episode();
        }
        changes
    }

    /// Feeds the frame's detections to the object tracker. Returns the best
    /// score among those of confirmed tracks, and those, as objects.
    fn track_objects(&mut self, frame: u64, detections: &[Detection]) -> (f32, Vec<DetectedObject>) {
        let Some(objects) = &mut self.objects else { return (0.0, Vec::new()) };
        let ids = objects.tracks.observe(frame, detections);
        let confirmed: BTreeSet<u32> = objects.confirmed().map(|t| t.id).collect();
        let shown: Vec<&Detection> = detections
            .iter()
            .zip(ids)
            .filter(|(_, id)| id.is_some_and(|id| confirmed.contains(&id)))
            .map(|(d, _)| d)
            .collect();
        let best = shown.iter().map(|d| d.score).fold(0.0, f32::max);
        (best, shown.into_iter().map(to_detected).collect())
    }

    /// A confirmed episode becomes an event: at once for motion cameras
    /// and motion events, else once a wanted object is confirmed.
    fn may_announce(&self) -> bool {
        match &self.objects {
            None => true,
            Some(objects) => objects.motion_events || objects.confirmed().next().is_some(),
        }
    }

    /// Labels of the confirmed objects.
    fn confirmed_labels(&self) -> BTreeSet<&'static str> {
        self.objects.iter().flat_map(|o| o.confirmed().map(|t| t.label())).collect()
    }

    /// The episode is over (reported or not): nothing of it carries over.
    fn forget_episode(&mut self) {
        self.key = None;
        self.pending = None;
        self.open = None;
        if let Some(objects) = &mut self.objects {
            objects.tracks.reset();
        }
    }

    /// The source stopped (ended, failed, restarted or shutdown): ends the
    /// event of the episode in progress (`reason` when it did not end on its
    /// own) and forgets the background.
    pub fn flush(&mut self, reason: Option<&str>) -> Option<Command> {
        let end = self.tracker.flush().and_then(|episode| self.finish(episode, reason));
        self.forget_episode();
        self.stages.iter_mut().for_each(|stage| stage.reset());
        end
    }

    /// When the event began: with the motion, or, for an object event whose
    /// episode had gone on for [`LATE_OBJECT`] before its first confirmed
    /// object was first seen, with that object. As (time, frame index).
    fn event_start(&self, episode: &Episode<Timestamp>) -> (Timestamp, u64) {
        let first_object = self
            .objects
            .as_ref()
            .filter(|o| !o.motion_events)
            .and_then(|o| o.confirmed().map(|t| t.first_frame).min())
            .filter(|&frame| (frame - episode.first_frame.min(frame)) as f64 >= LATE_OBJECT.as_secs_f64() * self.fps);
        match first_object {
            Some(frame) => {
                let later_ms = ((frame - episode.first_frame) as f64 * 1000.0 / self.fps).round() as i64;
                (Timestamp::from_unix_ms(episode.started_at.unix_ms() + later_ms), frame)
            }
            None => (episode.started_at, episode.first_frame),
        }
    }

    /// The episode is confirmed: its event, active, with the key frame so far.
    fn announce(&mut self, episode: Episode<Timestamp>, now: Timestamp) -> Command {
        let (started_at, first_frame) = self.event_start(&episode);
        let event_id = new_event_id(started_at);
        let image_path = self.key.as_ref().and_then(|key| self.save_snapshot(&event_id, 1, started_at, key));
        let (change, area, object_score) =
            self.key.as_ref().map_or((0.0, 0.0, 0.0), |k| (k.change, k.largest_area(), k.object_score));
        let edit = self.edit(None, image_path.clone(), episode.peak);
        self.open = Some(Announced {
            event_id: event_id.clone(),
            started_at,
            first_frame,
            change,
            area,
            object_score,
            labels: self.confirmed_labels(),
            image_path,
            snapshots: 1,
            changed_at: now,
            key_is_newer: false,
        });
        NewEvent {
            event_id,
            camera_id: self.camera_id.clone(),
            timestamp: started_at,
            state: EventState::Active,
            end_time: None,
            motion_confidence: edit.motion_confidence,
            detected_objects: edit.detected_objects,
            description: edit.description,
            image_path: edit.image_path,
            metadata: EventMetadata {
                source: EventSource::Detector,
                inference_ms: edit.inference_ms,
                frame_number: Some(first_frame),
                producer: Some(self.producer.clone()),
                end_reason: None,
            },
        }
        .into()
    }

    /// An update: at once when a new label is confirmed; otherwise when the
    /// key frame got clearly better and the last change is at least
    /// [`UPDATE_EVERY`] old.
    fn update(&mut self, now: Timestamp) -> Option<Command> {
        let (open, key) = (self.open.as_ref()?, self.key.as_ref()?);
        let labels = self.confirmed_labels();
        let new_label = !labels.is_subset(&open.labels);
        let due = now.unix_ms() - open.changed_at.unix_ms() >= UPDATE_EVERY.as_millis() as i64;
        let better = key.change >= open.change * BETTER_CHANGE
            || key.largest_area() >= open.area * BETTER_AREA
            || key.object_score >= open.object_score + BETTER_SCORE;
        if !(new_label || (open.key_is_newer && due && better)) {
            return None;
        }
        let image_path = if open.key_is_newer { self.next_snapshot() } else { open.image_path.clone() };
        let open = self.open.as_mut()?;
        open.changed_at = now;
        open.labels = labels;
        let (event_id, peak) = (open.event_id.clone(), open.change.max(key_change(&self.key)));
        Some(Command::Update { event_id, edit: self.edit(None, image_path, peak) })
    }

    /// The episode ended: its event's end, with the best snapshot.
    fn finish(&mut self, episode: Episode<Timestamp>, reason: Option<&str>) -> Option<Command> {
        let image_path = match &self.open {
            Some(open) if open.key_is_newer => self.next_snapshot(),
            Some(open) => open.image_path.clone(),
            None => None,
        };
        let open = self.open.take()?;
        debug_assert!(open.first_frame >= episode.first_frame, "the event is of this episode");
        let seconds = (episode.ended_at.unix_ms() - open.started_at.unix_ms()).max(0) as f64 / 1000.0 + 1.0 / self.fps;
        let edit = self.edit(Some(seconds), image_path, episode.peak);
        Some(Command::End {
            event_id: open.event_id,
            at: episode.ended_at.max(open.started_at),
            reason: reason.map(str::to_owned),
            edit,
        })
    }

    /// Writes the key frame as the announced event's next snapshot and
    /// records what it shows; the current one when it cannot be written.
    fn next_snapshot(&mut self) -> Option<String> {
        let (open, key) = (self.open.as_ref()?, self.key.as_ref()?);
        let written = self.save_snapshot(&open.event_id, open.snapshots + 1, open.started_at, key);
        let (change, area, object_score) = (key.change, key.largest_area(), key.object_score);
        let open = self.open.as_mut()?;
        open.key_is_newer = false;
        if written.is_some() {
            open.snapshots += 1;
            (open.change, open.area, open.object_score, open.image_path) = (change, area, object_score, written);
        }
        open.image_path.clone()
    }

    /// What the event says now: its confirmed objects (each track's label,
    /// best score and box at its best frame), else the key frame's regions;
    /// the description (with its length once it ended), the snapshot, the
    /// peak change.
    fn edit(&self, seconds: Option<f64>, image_path: Option<String>, peak: f32) -> EventEdit {
        let (regions, inference_ms, size) = match &self.key {
            Some(key) => (key.objects.clone(), Some(round3(key.inference_ms)), (key.image.width(), key.image.height())),
            None => (Vec::new(), None, (1, 1)),
        };
        let mut tracks: Vec<DetectedObject> = self
            .objects
            .iter()
            .flat_map(|o| o.confirmed())
            .map(|t| to_detected(&Detection { class: t.class(), score: t.best_score, rect: t.best_rect }))
            .collect();
        tracks.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
        let (description, objects) = if tracks.is_empty() {
            (describe_episode(&self.place, seconds, &regions, size.0, size.1), regions)
        } else {
            (describe_tracks(&self.place, seconds, &tracks), tracks)
        };
        EventEdit {
            motion_confidence: round3(f64::from(peak).clamp(0.0, 1.0)),
            description,
            detected_objects: objects,
            image_path,
            inference_ms,
        }
    }

    /// Writes the key frame as JPEG, picture `n` of the event; `None` (the
    /// event goes ahead without a snapshot) when it cannot be written.
    fn save_snapshot(&self, event_id: &str, n: u32, seen: Timestamp, key: &KeyFrame) -> Option<String> {
        let started = Instant::now();
        let boxes: Vec<Annotation> = key
            .objects
            .iter()
            .map(|o| {
                let rect = PixelRect {
                    x: o.bbox.x as u32,
                    y: o.bbox.y as u32,
                    width: o.bbox.width as u32,
                    height: o.bbox.height as u32,
                };
                let label = (o.label != "motion").then(|| format!("{} {:.0}%", o.label, o.confidence * 100.0));
                Annotation { rect, label }
            })
            .collect();
        let relative = DataDir::snapshot_version_path(seen, event_id, n);
        let written = vision::snapshot::encode_jpeg(&key.image, &boxes).map_err(|e| e.to_string()).and_then(|jpeg| {
            let path = self.data_dir.resolve_snapshot(&relative).ok_or("snapshot path refused")?;
            shared::durable::write_file(&path, &jpeg).map_err(|e| format!("{}: {e}", path.display()))
        });
        self.stats.record_stage(&self.camera_id, SNAPSHOT_STAGE, elapsed_ms(started));
        match written {
            Ok(()) => Some(relative),
            Err(e) => {
                tracing::warn!(camera = %self.camera_id, event_id, "cannot save the snapshot, event kept without it: {e}");
                None
            }
        }
    }
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

fn key_change(key: &Option<KeyFrame>) -> f32 {
    key.as_ref().map_or(0.0, |k| k.change)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A flat grey frame with an optional bright square at `x`.
    fn frame(index: u64, square_x: Option<u32>) -> Frame {
        let (w, h) = (160u32, 90u32);
        let mut data = Vec::with_capacity((w * h * 3) as usize);
        for y in 0..h {
            for x in 0..w {
                let noise = ((x * 31 + y * 17 + index as u32 * 7) % 5) as u8;
                let lit = square_x.is_some_and(|sx| (sx..sx + 16).contains(&x) && (30..46).contains(&y));
                let v = if lit { 230 } else { 70 + noise };
                data.extend_from_slice(&[v, v, v]);
            }
        }
        let image = RgbImage::new(w, h, data).expect("frame");
        Frame { index, seen_at: Timestamp::from_unix_ms(1_000_000 + index as i64 * 200), image }
    }

    /// Camera "yard" at 5 fps with the default motion stage and episodes.
    fn yard_pipeline(data_dir: &Path, stats: &Arc<Stats>) -> Pipeline {
        let stages: Vec<Box<dyn Stage>> = vec![Box::new(MotionStage::new(MotionConfig::default()))];
        let analysis = Analysis { fps: 5.0, stages, episodes: EpisodeConfig::default(), objects: None };
        Pipeline::new("yard", "detector:test", DataDir::new(data_dir), analysis, stats.clone())
    }

    /// The frame index each command was returned for, with the command.
    fn run(pipeline: &mut Pipeline, frames: impl Iterator<Item = (u64, Option<u32>)>) -> Vec<(u64, Command)> {
        let mut out = Vec::new();
        for (i, square) in frames {
            out.extend(pipeline.process(frame(i, square), 200.0).into_iter().map(|c| (i, c)));
        }
        out
    }

    #[test]
    fn a_crossing_object_is_announced_when_it_starts_and_ends_once_with_a_snapshot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stats = Arc::new(Stats::new(["yard".to_owned()]));
        let mut pipeline = yard_pipeline(dir.path(), &stats);
        // 10 still frames, the square crossing for 12, then still again.
        let mut changes =
            run(&mut pipeline, (0..40u64).map(|i| (i, (10..22).contains(&i).then(|| (i as u32 - 10) * 12))));
        changes.extend(pipeline.flush(None).map(|c| (40, c)));

        // New on the frame that confirms the episode: the second moving one.
        let (at, Command::New(new)) = &changes[0] else { panic!("first a new event: {changes:#?}") };
        assert_eq!(*at, 11, "announced 0.2 s after the first motion frame");
        assert_eq!(new.validate(), Ok(()));
        assert_eq!((new.state, new.end_time), (EventState::Active, None));
        assert_eq!(new.metadata.frame_number, Some(10));
        assert_eq!(new.timestamp, Timestamp::from_unix_ms(1_000_000 + 10 * 200));
        assert_eq!(new.metadata.source, EventSource::Detector);
        assert!(new.description.starts_with("Motion at the yard:"), "no length yet: {}", new.description);
        let first = new.image_path.clone().expect("a snapshot from the start");
        assert!(first.ends_with(&format!("{}.jpg", new.event_id)), "{first}");
        assert_eq!(&std::fs::read(dir.path().join(&first)).expect("snapshot file")[..2], &[0xFF, 0xD8]);

        // Then at most one update a second, and one end, all of this event.
        let (updates, ends): (Vec<_>, Vec<_>) =
            changes[1..].iter().partition(|(_, c)| matches!(c, Command::Update { .. }));
        let update_frames: Vec<u64> = updates.iter().map(|(i, _)| *i).collect();
        assert!(update_frames.windows(2).all(|w| w[1] - w[0] >= 5), "at most one a second at 5 fps: {update_frames:?}");
        assert_eq!(ends.len(), 1, "{changes:#?}");
        let (_, Command::End { event_id, at, reason, edit }) = &ends[0] else { panic!("an end") };
        assert_eq!(event_id, &new.event_id);
        assert!(updates.iter().all(|(_, c)| matches!(c, Command::Update { event_id: id, .. } if id == event_id)));
        assert_eq!(*reason, None, "it ended on its own");
        assert!(*at > new.timestamp);
        assert!(edit.description.starts_with("Motion at the yard for 2.4 s"), "{}", edit.description);
        assert!(!edit.detected_objects.is_empty() && edit.detected_objects.iter().all(|o| o.label == "motion"));
        let last = edit.image_path.as_deref().expect("snapshot");
        assert!(std::fs::read(dir.path().join(last)).is_ok_and(|jpeg| jpeg[..2] == [0xFF, 0xD8]));
        if last != first {
            assert!(last.contains(&format!("{}-", new.event_id)), "a better snapshot is a new file: {last}");
            assert!(dir.path().join(&first).exists(), "the first one stays, for caches that hold it");
        }

        let camera = &stats.snapshot().cameras[0];
        assert_eq!(camera.frames, 40);
        assert!((10..=14).contains(&camera.motion_frames), "{}", camera.motion_frames);
        let stages: Vec<&str> = camera.stages.iter().map(|s| s.stage.as_str()).collect();
        assert_eq!(stages, [DECODE_WAIT, "motion", SNAPSHOT_STAGE]);
    }

    #[test]
    fn a_growing_object_updates_its_event_with_a_new_snapshot_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stats = Arc::new(Stats::new(["yard".to_owned()]));
        let mut pipeline = yard_pipeline(dir.path(), &stats);
        let mut changes = run(&mut pipeline, (0..10u64).map(|i| (i, None)));
        // A small square, then (from frame 20) a frame-filling change.
        for i in 10..40u64 {
            let (w, h) = (160u32, 90u32);
            let size = if i < 20 { 12 } else { 60 };
            let x0 = (i as u32 * 3) % 40;
            let data: Vec<u8> = (0..h)
                .flat_map(|y| (0..w).map(move |x| (x, y)))
                .flat_map(|(x, y)| {
                    let lit = (x0..x0 + size).contains(&x) && (10..10 + size.min(70)).contains(&y);
                    let v = if lit { 230 } else { 70 + ((x * 31 + y * 17 + i as u32 * 7) % 5) as u8 };
                    [v, v, v]
                })
                .collect();
            let image = RgbImage::new(w, h, data).expect("frame");
            let frame = Frame { index: i, seen_at: Timestamp::from_unix_ms(1_000_000 + i as i64 * 200), image };
            changes.extend(pipeline.process(frame, 200.0).into_iter().map(|c| (i, c)));
        }
        changes.extend(pipeline.flush(Some("shutdown")).map(|c| (40, c)));
        let update = changes.iter().find_map(|(i, c)| match c {
            Command::Update { edit, .. } => Some((*i, edit)),
            _ => None,
        });
        let (at, edit) = update.unwrap_or_else(|| panic!("an update when the object grew: {changes:#?}"));
        assert!(at >= 20, "after it grew, not before: frame {at}");
        let image = edit.image_path.as_deref().expect("its new snapshot");
        assert!(image.ends_with("-2.jpg"), "{image}");
        assert!(dir.path().join(image).exists());
        let (_, Command::End { reason, .. }) = changes.last().expect("changes") else { panic!("ends last") };
        assert_eq!(reason.as_deref(), Some("shutdown"), "a source stopped by shutdown says so");
    }

    /// Stands in for the model in these unit tests of the pipeline's rules
    /// (the real model is exercised end to end in `tests/tests/objects.rs`):
    /// on frames with motion, reports the objects `script` gives for the
    /// frame index, boxed where the test's square is.
    #[derive(Debug)]
    struct ScriptedObjects(fn(u64) -> Vec<(usize, f32)>);

    impl Stage for ScriptedObjects {
        fn name(&self) -> &'static str {
            "detect"
        }

        fn analyse(&mut self, frame: &Frame, findings: &mut Findings) -> bool {
            if findings.motion.is_none() {
                return false;
            }
            let x = findings.objects.first().map_or(0.0, |o| o.bbox.x as f32);
            findings.detections = (self.0)(frame.index)
                .into_iter()
                .enumerate()
                .map(|(k, (class, score))| Detection {
                    class,
                    score,
                    rect: objects::Rect { x1: x + k as f32 * 60.0, y1: 30.0, x2: x + 40.0 + k as f32 * 60.0, y2: 70.0 },
                })
                .collect();
            findings.model_ms = Some(42.0);
            true
        }

        fn reset(&mut self) {}
    }

    fn object_pipeline(data_dir: &Path, script: fn(u64) -> Vec<(usize, f32)>, motion_events: bool) -> Pipeline {
        let stages: Vec<Box<dyn Stage>> =
            vec![Box::new(MotionStage::new(MotionConfig::default())), Box::new(ScriptedObjects(script))];
        let filter =
            ObjectFilter { classes: vec![0, 16], min_score: 0.5, min_area: 0.0, masks: Vec::new(), motion_events };
        let stats = Arc::new(Stats::new(["yard".to_owned()]));
        let analysis = Analysis { fps: 5.0, stages, episodes: EpisodeConfig::default(), objects: Some(filter) };
        Pipeline::new("yard", "detector:test", DataDir::new(data_dir), analysis, stats)
    }

    /// 10 still frames, then a square crossing for 12 frames, then still.
    fn crossing(pipeline: &mut Pipeline) -> Vec<(u64, Command)> {
        moving(pipeline, 12)
    }

    /// 10 still frames, a square moving for `frames` (to and fro), still again.
    fn moving(pipeline: &mut Pipeline, frames: u64) -> Vec<(u64, Command)> {
        let end = 10 + frames;
        let at = |i: u64| {
            let k = ((i - 10) % 24) as u32;
            k.min(24 - k) * 8
        };
        let mut changes = run(pipeline, (0..end + 18).map(|i| (i, (10..end).contains(&i).then(|| at(i)))));
        changes.extend(pipeline.flush(None).map(|c| (end + 18, c)));
        changes
    }

    #[test]
    fn motion_without_a_confirmed_object_is_no_event() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A person seen once, and a weak one: neither confirms.
        let mut pipeline = object_pipeline(
            dir.path(),
            |i| match i {
                12 => vec![(0, 0.9)],
                15..=17 => vec![(0, 0.3)],
                _ => vec![],
            },
            false,
        );
        assert!(crossing(&mut pipeline).is_empty());
    }

    #[test]
    fn an_object_confirmed_in_two_frames_announces_the_event_with_its_label() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A person from frame 13; a dog joins at frame 17.
        let mut pipeline = object_pipeline(
            dir.path(),
            |i| match i {
                13..=16 => vec![(0, 0.8)],
                17.. => vec![(0, 0.7), (16, 0.6)],
                _ => vec![],
            },
            false,
        );
        let changes = crossing(&mut pipeline);
        let (at, Command::New(new)) = &changes[0] else { panic!("a new event first: {changes:#?}") };
        assert_eq!(*at, 14, "on the second frame the person was seen in");
        assert_eq!(new.timestamp, Timestamp::from_unix_ms(1_000_000 + 10 * 200), "it started with the motion");
        let labels: Vec<&str> = new.detected_objects.iter().map(|o| o.label.as_str()).collect();
        assert_eq!(labels, ["person"]);
        assert_eq!(new.description, "A person at the yard.");
        assert_eq!(new.metadata.inference_ms, Some(42.0), "the model's time");
        // The dog, confirmed at frame 18, is an update at once.
        let (at, Command::Update { edit, .. }) = &changes[1] else { panic!("then an update: {changes:#?}") };
        assert_eq!(*at, 18);
        let mut labels: Vec<&str> = edit.detected_objects.iter().map(|o| o.label.as_str()).collect();
        labels.sort_unstable();
        assert_eq!(labels, ["dog", "person"]);
        assert_eq!(edit.description, "A person and a dog at the yard.");
        let Some((_, Command::End { edit, .. })) = changes.last() else { panic!("ends") };
        assert!(edit.description.starts_with("A person and a dog at the yard for "), "{}", edit.description);
        assert_eq!(changes.iter().filter(|(_, c)| matches!(c, Command::New(_))).count(), 1);
    }

    #[test]
    fn an_object_joining_motion_already_going_on_starts_its_event_when_it_appears() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Motion from frame 10 (a swaying branch, say); a dog from frame 25, 3 s later.
        let mut pipeline = object_pipeline(dir.path(), |i| if i >= 25 { vec![(16, 0.8)] } else { vec![] }, false);
        let changes = moving(&mut pipeline, 30);
        let (at, Command::New(new)) = &changes[0] else { panic!("a new event: {changes:#?}") };
        assert_eq!(*at, 26);
        assert_eq!(new.timestamp, Timestamp::from_unix_ms(1_000_000 + 25 * 200));
        assert_eq!(new.metadata.frame_number, Some(25));
        let Some((_, Command::End { at, edit, .. })) = changes.last() else { panic!("ends") };
        assert!(*at > new.timestamp);
        assert!(edit.description.starts_with("A dog at the yard for "), "{}", edit.description);
    }

    #[test]
    fn motion_events_are_announced_at_once_and_gain_their_label_as_an_update() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut pipeline = object_pipeline(dir.path(), |i| if i >= 15 { vec![(16, 0.9)] } else { vec![] }, true);
        let changes = crossing(&mut pipeline);
        let (at, Command::New(new)) = &changes[0] else { panic!("a new event first: {changes:#?}") };
        assert_eq!(*at, 11, "at the motion's pace");
        assert!(new.detected_objects.iter().all(|o| o.label == "motion"));
        let labelled = changes.iter().find_map(|(i, c)| match c {
            Command::Update { edit, .. } if edit.detected_objects.iter().any(|o| o.label == "dog") => Some(*i),
            _ => None,
        });
        assert_eq!(labelled, Some(16), "the dog, confirmed on its second frame");
    }

    #[test]
    fn an_unwritable_snapshot_directory_still_gives_the_event() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A file where the snapshots directory should be.
        std::fs::write(dir.path().join("snapshots"), b"in the way").expect("blocker");
        let stats = Arc::new(Stats::new(["yard".to_owned()]));
        let mut pipeline = yard_pipeline(dir.path(), &stats);
        assert!(run(&mut pipeline, (0..8u64).map(|i| (i, None))).is_empty());
        let changes = run(&mut pipeline, (8..12u64).map(|i| (i, Some(i as u32 * 10))));
        let Some((_, Command::New(new))) = changes.first() else { panic!("announced: {changes:#?}") };
        assert_eq!(new.image_path, None);
        assert_eq!(new.validate(), Ok(()));
        let Some(Command::End { edit, .. }) = pipeline.flush(None) else { panic!("the episode in progress ends") };
        assert_eq!(edit.image_path, None);
    }
}
