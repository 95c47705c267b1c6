//! The snapshot: the key frame, with its boxes (and their labels) drawn,
//! as JPEG.

use crate::font::text_size;
use crate::image::{PixelRect, RgbImage};

/// JPEG quality: small files that still show a face at detection size.
pub const JPEG_QUALITY: u8 = 85;
/// Box colour: saturated amber, visible on both day and night footage.
const BOX_COLOR: [u8; 3] = [255, 176, 0];

#[derive(Debug, thiserror::Error)]
#[error("cannot encode the snapshot as JPEG: {0}")]
pub struct SnapshotError(#[from] jpeg_encoder::EncodingError);

/// Label text colour, on a tab of the box colour.
const LABEL_COLOR: [u8; 3] = [0, 0, 0];

/// One box to draw, with the label written on it (objects have one,
/// motion regions none).
#[derive(Debug, Clone, PartialEq)]
pub struct Annotation {
    pub rect: PixelRect,
    pub label: Option<String>,
}

impl From<PixelRect> for Annotation {
    fn from(rect: PixelRect) -> Self {
        Self { rect, label: None }
    }
}

/// Encodes `frame` with `boxes` outlined and labelled: the label on a tab
/// just above its box, or inside its top edge when there is no room above.
pub fn encode_jpeg(frame: &RgbImage, boxes: &[Annotation]) -> Result<Vec<u8>, SnapshotError> {
    let mut annotated = frame.clone();
    // 2 px at 320 wide; scale up for larger snapshots.
    let thickness = (frame.width() / 160).max(1);
    let scale = (frame.width() / 320).max(1);
    for annotation in boxes {
        annotated.draw_rect(annotation.rect, thickness, BOX_COLOR);
    }
    for Annotation { rect, label } in boxes {
        if let Some(label) = label {
            let (_, height) = text_size(label, scale);
            let y = if rect.y >= height { rect.y - height } else { rect.y };
            annotated.draw_text(rect.x, y, label, scale, LABEL_COLOR, BOX_COLOR);
        }
    }
    let mut jpeg = Vec::with_capacity(frame.as_bytes().len() / 8);
    let encoder = jpeg_encoder::Encoder::new(&mut jpeg, JPEG_QUALITY);
    // Both sides are at most ppm::MAX_SIDE, far below u16::MAX.
    let (w, h) = (frame.width().min(u32::from(u16::MAX)) as u16, frame.height().min(u32::from(u16::MAX)) as u16);
    encoder.encode(annotated.as_bytes(), w, h, jpeg_encoder::ColorType::Rgb)?;
    Ok(jpeg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_decodes_at_the_frame_size_with_the_box_drawn() {
        let frame = RgbImage::new(64, 48, vec![40; 64 * 48 * 3]).expect("64×48");
        let jpeg = encode_jpeg(&frame, &[PixelRect { x: 8, y: 8, width: 20, height: 16 }.into()]).expect("encodes");
        let mut decoder = jpeg_decoder::Decoder::new(jpeg.as_slice());
        let pixels = decoder.decode().expect("decodes");
        let info = decoder.info().expect("info");
        assert_eq!((info.width, info.height), (64, 48));
        let at = |x: usize, y: usize| &pixels[(y * 64 + x) * 3..(y * 64 + x) * 3 + 3];
        // On the outline: amber (JPEG is lossy: roughly).
        assert!(at(8, 16)[0] > 200 && at(8, 16)[2] < 80, "{:?}", at(8, 16));
        // Inside and outside: the grey frame.
        assert!(at(18, 16).iter().all(|&c| (30..=50).contains(&c)), "{:?}", at(18, 16));
        assert!(at(50, 40).iter().all(|&c| (30..=50).contains(&c)), "{:?}", at(50, 40));
    }
}
