//! `detector detect IMAGE…`: the object model on still pictures.
//!
//! ffmpeg decodes each picture (any format it reads) to one PPM frame, the
//! model runs on it at full size, and one JSON line per picture says what
//! was found. `scripts/fetch-model.sh` checks a freshly built model this
//! way, and a user can see what a camera would see in a picture.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use objects::Model;
use serde::Serialize;
use vision::RgbImage;
use vision::ppm::{Parsed, parse_header};

use crate::camera::detect::to_detected;

/// One picture's line.
#[derive(Debug, Serialize)]
struct Found {
    image: String,
    width: u32,
    height: u32,
    inference_ms: f64,
    objects: Vec<shared::model::DetectedObject>,
}

/// Prints what the model finds in each of `images`. Fails on the first
/// picture that cannot be read.
pub fn run(model: &Path, ffmpeg: &Path, images: &[PathBuf], min_score: f32) -> anyhow::Result<()> {
    let model = Model::load(model)?;
    for path in images {
        let image = decode(ffmpeg, path)?;
        let inference = model.detect(&image, min_score)?;
        let found = Found {
            image: path.display().to_string(),
            width: image.width(),
            height: image.height(),
            inference_ms: (inference.model_ms * 10.0).round() / 10.0,
            objects: inference.detections.iter().map(to_detected).collect(),
        };
        println!("{}", serde_json::to_string(&found)?);
    }
    Ok(())
}

/// The first frame of `path` as RGB, decoded by ffmpeg.
fn decode(ffmpeg: &Path, path: &Path) -> anyhow::Result<RgbImage> {
    let output = Command::new(ffmpeg)
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-i"])
        .arg(path)
        .args(["-frames:v", "1", "-pix_fmt", "rgb24", "-c:v", "ppm", "-f", "image2pipe", "pipe:1"])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", ffmpeg.display()))?;
    if !output.status.success() {
        let why = String::from_utf8_lossy(&output.stderr);
        bail!("{}: cannot decode: {}", path.display(), why.trim());
    }
    let header = match parse_header(&output.stdout).with_context(|| format!("{}: bad frame", path.display()))? {
        Parsed::Complete(header) => header,
        Parsed::Incomplete => bail!("{}: ffmpeg gave no frame", path.display()),
    };
    let body = output
        .stdout
        .get(header.header_len..header.header_len + header.body_len())
        .with_context(|| format!("{}: ffmpeg's frame is cut short", path.display()))?;
    Ok(RgbImage::new(header.width, header.height, body.to_vec())?)
}
