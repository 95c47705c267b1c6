//! Lookout's frame analysis: everything between "a decoded frame" and "this
//! was a motion episode, here is its snapshot".
//!
//! The detector's camera pipeline is `ffmpeg` (decode, scale, pace) → this
//! crate (understand) → the event manager (persist, publish). This crate is
//! the middle part and nothing else: it never touches a file, a process or a
//! clock, so every step is a pure function of its input and is tested and
//! benchmarked without a camera.
//!
//! * [`image`] — RGB and grayscale frames, and drawing boxes on them.
//! * [`ppm`] — the frame format on ffmpeg's pipe: pure parsing of a PPM
//!   header over bytes, with an explicit "incomplete" case and a size limit.
//! * [`motion`] — motion detection: blur, running-average background,
//!   difference, threshold, dilation, connected components, plus a guard
//!   that recalibrates on a global change (lights switched on) instead of
//!   reporting it.
//! * [`episode`] — turns per-frame motion into episodes: start after K frames
//!   of motion, end after M still frames, with a per-camera dedup window.
//! * [`snapshot`] — the key frame with its boxes and labels drawn, as JPEG.
//! * [`font`] — the 5×7 bitmap font those labels are written in.
//!
//! Every tunable lives in [`motion::MotionConfig`] or
//! [`episode::EpisodeConfig`], with its default and what it does.

pub mod episode;
pub mod font;
pub mod image;
pub mod motion;
pub mod ppm;
pub mod snapshot;

pub use image::{GrayImage, RgbImage};
