//! One camera's analysis: frame → stages → episode → event.
//!
//! A frame goes through the [`Stage`]s in order. Today there is one,
//! [`MotionStage`]; an object detector would be a second stage that looks
//! only at frames (or regions) where motion was found and adds labelled
//! objects to the same [`Findings`]. The episode tracker then decides
//! whether this frame starts, continues or ends an episode; the frame with
//! the most change is kept as the key frame, and when the episode ends it
//! becomes the event: its regions as `detected_objects` (label `motion`),
//! its JPEG snapshot under `DATA_DIR/snapshots/YYYY-MM-DD/<event_id>.jpg`,
//! and a sentence saying where, how large and how long.
//!
//! Everything here is synchronous and CPU-bound: the camera task runs it off
//! the async runtime, on the blocking pool.

use std::sync::Arc;
use std::time::Instant;

use shared::Timestamp;
use shared::config::DataDir;
use shared::model::{BoundingBox, DetectedObject, EventMetadata, EventSource, EventState, NewEvent, new_event_id};
use vision::RgbImage;
use vision::episode::{Episode, EpisodeConfig, EpisodeTracker};
use vision::image::PixelRect;
use vision::motion::{MotionConfig, MotionDetector, Verdict};

use crate::describe::{describe_episode, place_name};
use crate::stats::{DECODE_WAIT, Stats, analysis_ms, elapsed_ms};

/// Most regions reported per event (largest first).
const MAX_REGIONS: usize = 16;
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
    /// Regions or objects, in pixels of the frame.
    pub objects: Vec<DetectedObject>,
}

/// One step of frame analysis.
pub trait Stage: Send + std::fmt::Debug {
    /// Names the stage in timings (`/api/metrics`, heartbeats).
    fn name(&self) -> &'static str;
    fn analyse(&mut self, frame: &Frame, findings: &mut Findings);
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

    fn analyse(&mut self, frame: &Frame, findings: &mut Findings) {
        let result = self.0.process(&frame.image.to_gray());
        if result.verdict == Verdict::Recalibrated {
            tracing::info!(frame = frame.index, "global change (light or exposure): motion background recalibrated");
        }
        if result.verdict != Verdict::Motion {
            return;
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
    }

    fn reset(&mut self) {
        self.0.reset();
    }
}

/// The frame kept for an episode's snapshot.
#[derive(Debug)]
struct KeyFrame {
    image: RgbImage,
    objects: Vec<DetectedObject>,
    analysis_ms: f64,
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
    key: Option<KeyFrame>,
    stats: Arc<Stats>,
}

impl Pipeline {
    pub fn new(
        camera_id: &str,
        producer: &str,
        fps: f64,
        data_dir: DataDir,
        stages: Vec<Box<dyn Stage>>,
        episodes: EpisodeConfig,
        stats: Arc<Stats>,
    ) -> Self {
        Self {
            camera_id: camera_id.to_owned(),
            place: place_name(camera_id),
            producer: producer.to_owned(),
            fps,
            data_dir,
            stages,
            tracker: EpisodeTracker::new(episodes),
            key: None,
            stats,
        }
    }

    /// Analyses one frame, which took `decode_wait_ms` to arrive. Returns the
    /// event of an episode that this frame ended.
    pub fn process(&mut self, frame: Frame, decode_wait_ms: f64) -> Option<NewEvent> {
        let mut findings = Findings::default();
        let mut times = Vec::with_capacity(self.stages.len() + 1);
        times.push((DECODE_WAIT, decode_wait_ms));
        for stage in &mut self.stages {
            let started = Instant::now();
            stage.analyse(&frame, &mut findings);
            times.push((stage.name(), elapsed_ms(started)));
        }
        self.stats.record_frame(&self.camera_id, &times, findings.motion.is_some());

        let step = self.tracker.observe(frame.index, frame.seen_at, findings.motion);
        if step.keep_key_frame {
            self.key =
                Some(KeyFrame { image: frame.image, objects: findings.objects, analysis_ms: analysis_ms(&times) });
        }
        step.ended.map(|episode| self.report(episode))
    }

    /// The source stopped (ended, failed, restarted or shutdown): reports the
    /// episode in progress and forgets the background.
    pub fn flush(&mut self) -> Option<NewEvent> {
        let event = self.tracker.flush().map(|episode| self.report(episode));
        self.key = None;
        self.stages.iter_mut().for_each(|stage| stage.reset());
        event
    }

    fn report(&mut self, episode: Episode<Timestamp>) -> NewEvent {
        let key = self.key.take();
        let event_id = new_event_id(episode.started_at);
        let image_path = key.as_ref().and_then(|key| self.save_snapshot(&event_id, episode.started_at, key));
        let (objects, analysis_ms, size) = match key {
            Some(key) => (key.objects, Some(round3(key.analysis_ms)), (key.image.width(), key.image.height())),
            None => (Vec::new(), None, (1, 1)),
        };
        let seconds = (episode.ended_at.unix_ms() - episode.started_at.unix_ms()) as f64 / 1000.0 + 1.0 / self.fps;
        NewEvent {
            description: describe_episode(&self.place, seconds, &objects, size.0, size.1),
            event_id,
            camera_id: self.camera_id.clone(),
            timestamp: episode.started_at,
            // Reported whole, once the episode is over.
            state: EventState::Ended,
            end_time: Some(episode.ended_at.max(episode.started_at)),
            motion_confidence: round3(f64::from(episode.peak).clamp(0.0, 1.0)),
            detected_objects: objects,
            image_path,
            metadata: EventMetadata {
                source: EventSource::Detector,
                inference_ms: analysis_ms,
                frame_number: Some(episode.first_frame),
                producer: Some(self.producer.clone()),
                end_reason: None,
            },
        }
    }

    /// Writes the key frame as JPEG; `None` (the event goes ahead without a
    /// snapshot) when it cannot be written.
    fn save_snapshot(&self, event_id: &str, seen: Timestamp, key: &KeyFrame) -> Option<String> {
        let started = Instant::now();
        let boxes: Vec<PixelRect> = key
            .objects
            .iter()
            .map(|o| PixelRect {
                x: o.bbox.x as u32,
                y: o.bbox.y as u32,
                width: o.bbox.width as u32,
                height: o.bbox.height as u32,
            })
            .collect();
        let relative = DataDir::snapshot_relative_path(seen, event_id);
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
        Pipeline::new(
            "yard",
            "detector:test",
            5.0,
            DataDir::new(data_dir),
            stages,
            EpisodeConfig::default(),
            stats.clone(),
        )
    }

    #[test]
    fn a_crossing_object_is_one_event_with_a_snapshot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stats = Arc::new(Stats::new(["yard".to_owned()]));
        let mut pipeline = yard_pipeline(dir.path(), &stats);
        let mut events = Vec::new();
        // 10 still frames, the square crossing for 12, then still again.
        for i in 0..40u64 {
            let square = (10..22).contains(&i).then(|| (i as u32 - 10) * 12);
            events.extend(pipeline.process(frame(i, square), 200.0));
        }
        events.extend(pipeline.flush());
        assert_eq!(events.len(), 1, "{events:#?}");
        let event = &events[0];
        assert_eq!(event.validate(), Ok(()));
        assert_eq!(event.metadata.frame_number, Some(10));
        assert_eq!(event.timestamp, Timestamp::from_unix_ms(1_000_000 + 10 * 200));
        assert_eq!(event.metadata.source, EventSource::Detector);
        assert!(event.description.starts_with("Motion at the yard for 2.4 s"), "{}", event.description);
        assert!(!event.detected_objects.is_empty() && event.detected_objects.iter().all(|o| o.label == "motion"));
        let image = event.image_path.as_deref().expect("snapshot");
        let jpeg = std::fs::read(dir.path().join(image)).expect("snapshot file");
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
        let camera = &stats.snapshot().cameras[0];
        assert_eq!(camera.frames, 40);
        assert!((10..=14).contains(&camera.motion_frames), "{}", camera.motion_frames);
        let stages: Vec<&str> = camera.stages.iter().map(|s| s.stage.as_str()).collect();
        assert_eq!(stages, [DECODE_WAIT, "motion", SNAPSHOT_STAGE]);
    }

    #[test]
    fn an_unwritable_snapshot_directory_still_gives_the_event() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A file where the snapshots directory should be.
        std::fs::write(dir.path().join("snapshots"), b"in the way").expect("blocker");
        let stats = Arc::new(Stats::new(["yard".to_owned()]));
        let mut pipeline = yard_pipeline(dir.path(), &stats);
        for i in 0..8u64 {
            assert!(pipeline.process(frame(i, None), 1.0).is_none());
        }
        for i in 8..12u64 {
            assert!(pipeline.process(frame(i, Some(i as u32 * 10)), 1.0).is_none());
        }
        let event = pipeline.flush().expect("the episode in progress is reported");
        assert_eq!(event.image_path, None);
        assert_eq!(event.validate(), Ok(()));
    }
}
