//! The NanoDet model on tract: loading with clear errors, and one
//! inference (letterbox → run → decode → frame pixels).
//!
//! Loading checks everything that would otherwise fail mid-run: the file
//! exists and is ONNX, the input takes a `[1, 3, 416, 416]` f32 image, and
//! the outputs are the three stride heads NanoDet has. Outputs are matched
//! by shape (cells × 80 scores, cells × 44 distances), never by position
//! or name, since converters reorder them. A model that passes loads runs.
//!
//! tract optimises a plan for one input shape. The input is sized to the
//! frame (`letterbox::input_size`), so plans are made per shape on first
//! use and kept (a camera's frames all have one size; a few shapes at most
//! in practice, bounded by [`MAX_PLANS`]).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use tract_onnx::prelude::*;
use vision::RgbImage;

use crate::decode::{BINS, CLASSES, Detection, Head, decode};
use crate::letterbox::{Letterbox, MAX_SIDE, input_size};

/// The input side the model is checked at when it loads.
pub const INPUT_SIZE: u32 = MAX_SIDE;
/// Most input shapes with a plan kept at once.
pub const MAX_PLANS: usize = 8;
/// Its output strides, finest first.
pub const STRIDES: [u32; 3] = [8, 16, 32];
/// Least score a detection needs to be considered at all; what counts as
/// an object is decided later, over a track (its median score).
pub const CANDIDATE_SCORE: f32 = 0.3;
/// The file name `scripts/fetch-model.sh` caches the model under.
pub const MODEL_FILE: &str = "nanodet-m-416.onnx";

/// Why a model cannot be used; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("object model {path}: not found (run ./scripts/fetch-model.sh to build it, or pass --model PATH)")]
    Missing { path: PathBuf },
    #[error("object model {path}: cannot be read: {source}")]
    Unreadable { path: PathBuf, source: std::io::Error },
    #[error("object model {path}: not a usable ONNX model ({reason}); rebuild it with ./scripts/fetch-model.sh")]
    Invalid { path: PathBuf, reason: String },
    #[error("object model {path}: not NanoDet-m {INPUT_SIZE}: {reason}")]
    WrongModel { path: PathBuf, reason: String },
}

/// Why one inference failed (a model that loaded should not; kept as an
/// error, never a panic, so a camera logs it and goes on).
#[derive(Debug, thiserror::Error)]
#[error("object detection failed: {0}")]
pub struct InferenceError(String);

/// A frame's detections and what they cost.
#[derive(Debug, Clone)]
pub struct Inference {
    /// Boxes in frame pixels, best first.
    pub detections: Vec<Detection>,
    /// Time inside the model alone, in milliseconds.
    pub model_ms: f64,
}

/// Where, for each stride, the score and distance outputs are.
#[derive(Debug, Clone, Copy)]
struct HeadOutputs {
    stride: u32,
    scores: usize,
    distances: usize,
}

/// An optimised plan for one input shape, with where its heads are.
#[derive(Debug, Clone)]
struct Plan {
    width: u32,
    height: u32,
    runnable: Arc<TypedRunnableModel>,
    heads: [HeadOutputs; 3],
}

/// A loaded, checked NanoDet model. Runs are `&self`: several threads may
/// share one (each run has its own state).
#[derive(Debug)]
pub struct Model {
    source: InferenceModel,
    plans: Mutex<Vec<Plan>>,
    path: PathBuf,
}

impl Model {
    /// Loads and checks the model at `path`.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let owned = || path.to_path_buf();
        let bytes = std::fs::read(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => ModelError::Missing { path: owned() },
            _ => ModelError::Unreadable { path: owned(), source },
        })?;
        let invalid = |e: TractError| ModelError::Invalid { path: owned(), reason: first_line(&e) };
        let wrong = |reason: String| ModelError::WrongModel { path: owned(), reason };

        let source = onnx().model_for_read(&mut bytes.as_slice()).map_err(invalid)?;
        if source.inputs.len() != 1 {
            return Err(wrong(format!("it has {} inputs, NanoDet has one image input", source.inputs.len())));
        }
        let plan = make_plan(&source, INPUT_SIZE, INPUT_SIZE).map_err(|e| match e {
            PlanError::Shape(reason) => wrong(reason),
            PlanError::Tract(e) => invalid(e),
        })?;
        Ok(Self { source, plans: Mutex::new(vec![plan]), path: owned() })
    }

    /// The plan for a `width`×`height` input, made on first use.
    fn plan(&self, width: u32, height: u32) -> Result<Plan, InferenceError> {
        let mut plans = self.plans.lock().map_err(|_| InferenceError("the plan cache is poisoned".into()))?;
        if let Some(plan) = plans.iter().find(|p| (p.width, p.height) == (width, height)) {
            return Ok(plan.clone());
        }
        let plan = make_plan(&self.source, width, height).map_err(|e| match e {
            PlanError::Shape(reason) => InferenceError(reason),
            PlanError::Tract(e) => fail(e),
        })?;
        if plans.len() >= MAX_PLANS {
            plans.remove(0);
        }
        plans.push(plan.clone());
        Ok(plan)
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Objects in `frame` scoring at least `min_score`, in frame pixels.
    pub fn detect(&self, frame: &RgbImage, min_score: f32) -> Result<Inference, InferenceError> {
        let (width, height) = input_size(frame.width(), frame.height());
        let plan = self.plan(width, height)?;
        let fit = Letterbox::fit(frame.width(), frame.height(), width, height);
        let input = Tensor::from_shape(&[1, 3, height as usize, width as usize], &fit.input(frame)).map_err(fail)?;
        let started = Instant::now();
        let outputs = plan.runnable.run(tvec!(input.into())).map_err(fail)?;
        let model_ms = started.elapsed().as_secs_f64() * 1000.0;
        let views: Vec<_> =
            outputs.iter().map(|o| o.to_plain_array_view::<f32>()).collect::<TractResult<_>>().map_err(fail)?;
        let slices: Vec<&[f32]> = views
            .iter()
            .map(|v| v.as_slice().ok_or_else(|| InferenceError("an output is not contiguous".into())))
            .collect::<Result<_, _>>()?;
        let heads: Vec<Head<'_>> = plan
            .heads
            .iter()
            .map(|h| Head { stride: h.stride, scores: slices[h.scores], distances: slices[h.distances] })
            .collect();
        let detections = decode(&heads, width, min_score)
            .into_iter()
            .map(|d| Detection { rect: fit.to_frame(&d.rect), ..d })
            .collect();
        Ok(Inference { detections, model_ms })
    }
}

fn fail(e: TractError) -> InferenceError {
    InferenceError(first_line(&e))
}

/// tract's errors carry a chain; its first link says what.
fn first_line(e: &TractError) -> String {
    let text = format!("{e:#}");
    text.lines().next().unwrap_or("unknown error").chars().take(300).collect()
}

/// Why a plan could not be made.
enum PlanError {
    /// The model is not shaped like NanoDet.
    Shape(String),
    Tract(TractError),
}

/// Types and optimises the model for a `width`×`height` input and finds
/// its heads.
fn make_plan(source: &InferenceModel, width: u32, height: u32) -> Result<Plan, PlanError> {
    let (w, h) = (width as usize, height as usize);
    let typed =
        source.clone().with_input_fact(0, f32::fact([1, 3, h, w]).into()).and_then(|m| m.into_typed()).map_err(
            |e| PlanError::Shape(format!("its input does not take a [1, 3, {h}, {w}] image ({})", first_line(&e))),
        )?;
    let shapes: Vec<Vec<usize>> = typed
        .output_outlets()
        .map_err(PlanError::Tract)?
        .iter()
        .map(|outlet| {
            let fact = typed.outlet_fact(*outlet)?;
            Ok(fact.shape.as_concrete().map(<[usize]>::to_vec).unwrap_or_default())
        })
        .collect::<TractResult<_>>()
        .map_err(PlanError::Tract)?;
    let heads = match_heads(&shapes, width, height).map_err(PlanError::Shape)?;
    let runnable = typed.into_optimized().and_then(|m| m.into_runnable()).map_err(PlanError::Tract)?;
    Ok(Plan { width, height, runnable, heads })
}

/// Finds each stride's score and distance outputs by their shapes, for a
/// `width`×`height` input.
fn match_heads(shapes: &[Vec<usize>], width: u32, height: u32) -> Result<[HeadOutputs; 3], String> {
    let find = |cells: usize, width: usize| {
        shapes.iter().position(|s| matches!(s.as_slice(), [1, n, w] if *n == cells && *w == width))
    };
    let mut heads = Vec::with_capacity(3);
    for stride in STRIDES {
        let cells = (width / stride) as usize * (height / stride) as usize;
        let (Some(scores), Some(distances)) = (find(cells, CLASSES), find(cells, 4 * BINS)) else {
            return Err(format!(
                "no outputs of shape [1, {cells}, {CLASSES}] and [1, {cells}, {}] for stride {stride} (outputs: {shapes:?})",
                4 * BINS
            ));
        };
        heads.push(HeadOutputs { stride, scores, distances });
    }
    heads.try_into().map_err(|_| "three heads expected".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_found_by_shape_in_any_order() {
        let shapes = vec![
            vec![1, 169, 80],
            vec![1, 169, 44],
            vec![1, 676, 80],
            vec![1, 2704, 44],
            vec![1, 2704, 80],
            vec![1, 676, 44],
        ];
        let heads = match_heads(&shapes, 416, 416).expect("NanoDet's shapes");
        let found: Vec<(u32, usize, usize)> = heads.iter().map(|h| (h.stride, h.scores, h.distances)).collect();
        assert_eq!(found, [(8, 4, 3), (16, 2, 5), (32, 0, 1)]);
        let err = match_heads(&shapes[..5], 416, 416).expect_err("a head missing");
        assert!(err.contains("stride 16"), "{err}");
        // A 320×192 input: 40×24, 20×12 and 10×6 cells.
        let wide =
            [[1, 60, 80], [1, 60, 44], [1, 240, 80], [1, 240, 44], [1, 960, 80], [1, 960, 44]].map(|s| s.to_vec());
        let heads = match_heads(&wide, 320, 192).expect("shapes of a wide input");
        assert_eq!(heads.map(|h| (h.stride, h.scores)), [(8, 4), (16, 2), (32, 0)]);
    }

    #[test]
    fn a_missing_or_garbage_file_is_a_clear_error_naming_it() {
        let dir = std::env::temp_dir().join(format!("objects-model-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let missing = dir.join("absent.onnx");
        let err = Model::load(&missing).expect_err("missing");
        assert!(matches!(err, ModelError::Missing { .. }));
        assert!(err.to_string().contains("absent.onnx") && err.to_string().contains("fetch-model.sh"), "{err}");

        let garbage = dir.join("garbage.onnx");
        std::fs::write(&garbage, b"this is not a protobuf at all \xff\xfe").expect("write");
        let err = Model::load(&garbage).expect_err("garbage");
        assert!(matches!(err, ModelError::Invalid { .. }), "{err}");
        assert!(err.to_string().contains("garbage.onnx"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
