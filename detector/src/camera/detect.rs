//! The object stage: NanoDet on the frames where motion was found.
//!
//! A frame without motion costs nothing here; a frame with motion is run
//! through the model (one inference at a time in the whole process, so
//! cameras share the CPU instead of fighting over it, and the async threads
//! are never the ones waiting). Detections of unwanted labels, too small,
//! or standing in a mask are dropped; what remains goes to the pipeline's
//! tracker, which decides what counts as an object.

use std::sync::{Arc, Mutex};

use objects::{Detection, Model};
use shared::model::{BoundingBox, DetectedObject};

use super::pipeline::{Findings, Frame, Stage};
use crate::cli::ObjectFilter;

/// The stage name object detection is timed under.
pub const DETECT_STAGE: &str = "detect";

/// The model, shared by every camera, one inference at a time.
#[derive(Debug)]
pub struct SharedModel(Mutex<Model>);

impl SharedModel {
    pub fn new(model: Model) -> Arc<Self> {
        Arc::new(Self(Mutex::new(model)))
    }
}

/// Object detection as a pipeline stage.
#[derive(Debug)]
pub struct ObjectStage {
    model: Arc<SharedModel>,
    filter: ObjectFilter,
    camera_id: String,
}

impl ObjectStage {
    pub fn new(model: Arc<SharedModel>, filter: ObjectFilter, camera_id: &str) -> Self {
        Self { model, filter, camera_id: camera_id.to_owned() }
    }

    /// Whether a detection counts for this camera: a wanted label, large
    /// enough, its foot (the middle of its bottom edge) outside every mask.
    fn wanted(&self, d: &Detection, width: f32, height: f32) -> bool {
        let (foot_x, foot_y) = ((d.rect.x1 + d.rect.x2) / 2.0 / width, d.rect.y2 / height);
        self.filter.classes.contains(&d.class)
            && d.rect.area() >= self.filter.min_area * width * height
            && !self
                .filter
                .masks
                .iter()
                .any(|m| (m.x..=m.x + m.width).contains(&foot_x) && (m.y..=m.y + m.height).contains(&foot_y))
    }
}

impl Stage for ObjectStage {
    fn name(&self) -> &'static str {
        DETECT_STAGE
    }

    fn analyse(&mut self, frame: &Frame, findings: &mut Findings) -> bool {
        if findings.motion.is_none() {
            return false;
        }
        let inference = match self.model.0.lock() {
            Ok(model) => model.detect(&frame.image, objects::model::CANDIDATE_SCORE),
            Err(_) => return false,
        };
        match inference {
            Ok(inference) => {
                let (w, h) = (frame.image.width() as f32, frame.image.height() as f32);
                findings.detections = inference.detections.into_iter().filter(|d| self.wanted(d, w, h)).collect();
                findings.model_ms = Some(inference.model_ms);
            }
            Err(e) => tracing::warn!(camera = %self.camera_id, frame = frame.index, "{e}; frame kept as motion only"),
        }
        true
    }

    fn reset(&mut self) {}
}

/// A detection as an event's object: its label, score and box in pixels.
pub fn to_detected(d: &Detection) -> DetectedObject {
    let round = |v: f32| (f64::from(v) * 10.0).round() / 10.0;
    DetectedObject {
        label: objects::labels::label_of(d.class).unwrap_or("object").to_owned(),
        confidence: (f64::from(d.score) * 1000.0).round() / 1000.0,
        bbox: BoundingBox {
            x: round(d.rect.x1),
            y: round(d.rect.y1),
            width: round(d.rect.width()),
            height: round(d.rect.height()),
        },
    }
}
