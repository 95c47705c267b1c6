//! Lookout's object detection: what is in a frame, and which of it is the
//! same thing from one frame to the next (SPEC §8).
//!
//! The detector's camera pipeline runs motion detection (`vision`) on every
//! frame and this crate only on frames with motion. The model is NanoDet-m
//! at 416×416, converted once to ONNX by `scripts/fetch-model.sh` and run by
//! tract, in pure Rust, on the CPU. Nothing here downloads or spawns
//! anything; only [`model`] reads a file (the model, once, at start).
//!
//! * [`labels`] — the 80 COCO class names and the labels wanted by default.
//! * [`geometry`] — boxes and their overlap (IoU).
//! * [`letterbox`] — a frame into the square input keeping its aspect, BGR
//!   and normalised; boxes back to frame pixels.
//! * [`decode`] — pure arithmetic from the three stride heads' scores and
//!   box distributions to boxes, with per-class non-maximum suppression.
//! * [`model`] — loading (every error names the file and says what is
//!   wrong) and one inference, timed.
//! * [`track`] — objects followed across frames by overlap: a track's label
//!   by vote, its median and best score, its box at its best frame.

pub mod decode;
pub mod geometry;
pub mod labels;
pub mod letterbox;
pub mod model;
pub mod track;

pub use decode::Detection;
pub use geometry::Rect;
pub use model::{Model, ModelError};
