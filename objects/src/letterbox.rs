//! Letterboxing: a frame scaled into the model's input, keeping its aspect,
//! with the rest padded; and boxes mapped back to frame pixels.
//!
//! Stretching a 16:9 frame to a square distorts every object; letterboxing
//! keeps shapes as the model was trained on them, which scored better on
//! close-ups (SPEC §8). NanoDet is fully convolutional, so the input need
//! not be square: [`input_size`] picks the smallest multiple of the largest
//! stride that holds the frame at up to [`MAX_SIDE`] on its long side, so
//! a 320×180 camera frame is run at 320×192, unscaled, in a third of the
//! time a 416×416 square would take, and a large photo at 416 wide. The
//! padding is the normalisation's mean colour, so it reads as 0 after
//! normalisation: no edge for the model to find.

use vision::RgbImage;

use crate::geometry::Rect;

/// The per-channel mean and scale of NanoDet's training, in **BGR** order.
pub const MEAN_BGR: [f32; 3] = [103.53, 116.28, 123.675];
pub const STD_BGR: [f32; 3] = [57.375, 57.12, 58.395];

/// The long side the model was trained at; frames are never scaled above it.
pub const MAX_SIDE: u32 = 416;
/// Input sides are multiples of this (the coarsest stride).
pub const ALIGN: u32 = 32;

/// The input (width, height) for a frame: its size scaled down to fit
/// [`MAX_SIDE`] (never up), each side rounded up to a multiple of [`ALIGN`].
pub fn input_size(frame_width: u32, frame_height: u32) -> (u32, u32) {
    let (fw, fh) = (frame_width.max(1), frame_height.max(1));
    let scale = (MAX_SIDE as f32 / fw.max(fh) as f32).min(1.0);
    let side = |v: u32| (((v as f32 * scale).round() as u32).div_ceil(ALIGN) * ALIGN).clamp(ALIGN, MAX_SIDE);
    (side(fw), side(fh))
}

/// Where a frame lands inside the input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    /// Input size, in pixels.
    pub input_width: u32,
    pub input_height: u32,
    /// Input pixels per frame pixel.
    pub scale: f32,
    /// The scaled frame's size and its offset inside the input.
    pub width: u32,
    pub height: u32,
    pub pad_x: u32,
    pub pad_y: u32,
    /// The frame's own size.
    pub frame_width: u32,
    pub frame_height: u32,
}

impl Letterbox {
    /// The placement of a `frame_width`×`frame_height` frame in an
    /// `input_width`×`input_height` input. Sizes are at least 1 pixel.
    pub fn fit(frame_width: u32, frame_height: u32, input_width: u32, input_height: u32) -> Self {
        let (fw, fh) = (frame_width.max(1), frame_height.max(1));
        let (iw, ih) = (input_width.max(1), input_height.max(1));
        let scale = (iw as f32 / fw as f32).min(ih as f32 / fh as f32);
        let width = ((fw as f32 * scale).round() as u32).clamp(1, iw);
        let height = ((fh as f32 * scale).round() as u32).clamp(1, ih);
        Self {
            input_width: iw,
            input_height: ih,
            scale,
            width,
            height,
            pad_x: (iw - width) / 2,
            pad_y: (ih - height) / 2,
            frame_width: fw,
            frame_height: fh,
        }
    }

    /// The model input: planar BGR (`[3][height][width]`), bilinear-scaled
    /// and normalised with [`MEAN_BGR`] / [`STD_BGR`].
    pub fn input(&self, frame: &RgbImage) -> Vec<f32> {
        let (side, plane_len) = (self.input_width as usize, self.input_width as usize * self.input_height as usize);
        let mut out = vec![0.0f32; 3 * plane_len];
        let (fw, fh) = (frame.width() as usize, frame.height() as usize);
        let pixels = frame.as_bytes();
        if fw == 0 || fh == 0 || pixels.len() < fw * fh * 3 {
            return out;
        }
        // Source coordinate and weight per output column, computed once.
        let sample = |i: u32, scaled: u32, source: usize| {
            let s = ((i as f32 + 0.5) * source as f32 / scaled as f32 - 0.5).clamp(0.0, (source - 1) as f32);
            let lo = s.floor() as usize;
            (lo, (lo + 1).min(source - 1), s - lo as f32)
        };
        let columns: Vec<_> = (0..self.width).map(|x| sample(x, self.width, fw)).collect();
        for y in 0..self.height {
            let (y0, y1, wy) = sample(y, self.height, fh);
            let (row0, row1) = (&pixels[y0 * fw * 3..(y0 + 1) * fw * 3], &pixels[y1 * fw * 3..(y1 + 1) * fw * 3]);
            let out_row = (y + self.pad_y) as usize * side + self.pad_x as usize;
            for (x, &(x0, x1, wx)) in columns.iter().enumerate() {
                for (plane, rgb) in [2usize, 1, 0].into_iter().enumerate() {
                    let at = |row: &[u8], col: usize| f32::from(row[col * 3 + rgb]);
                    let top = at(row0, x0) * (1.0 - wx) + at(row0, x1) * wx;
                    let bottom = at(row1, x0) * (1.0 - wx) + at(row1, x1) * wx;
                    let value = top * (1.0 - wy) + bottom * wy;
                    out[plane * plane_len + out_row + x] = (value - MEAN_BGR[plane]) / STD_BGR[plane];
                }
            }
        }
        out
    }

    /// A box in input pixels as frame pixels, clipped to the frame.
    pub fn to_frame(&self, rect: &Rect) -> Rect {
        let (px, py) = (self.pad_x as f32, self.pad_y as f32);
        Rect {
            x1: (rect.x1 - px) / self.scale,
            y1: (rect.y1 - py) / self.scale,
            x2: (rect.x2 - px) / self.scale,
            y2: (rect.y2 - py) / self.scale,
        }
        .clamp(self.frame_width as f32, self.frame_height as f32)
    }

    /// A box in frame pixels as input pixels (the inverse of [`Self::to_frame`]).
    pub fn to_input(&self, rect: &Rect) -> Rect {
        let (px, py) = (self.pad_x as f32, self.pad_y as f32);
        Rect {
            x1: rect.x1 * self.scale + px,
            y1: rect.y1 * self.scale + py,
            x2: rect.x2 * self.scale + px,
            y2: rect.y2 * self.scale + py,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wide_frame_is_centred_vertically_and_keeps_its_aspect() {
        let fit = Letterbox::fit(320, 180, 416, 416);
        assert_eq!((fit.width, fit.height), (416, 234));
        assert_eq!((fit.pad_x, fit.pad_y), (0, 91));
        let tall = Letterbox::fit(100, 400, 416, 416);
        assert_eq!((tall.width, tall.height, tall.pad_x, tall.pad_y), (104, 416, 156, 0));
        // In the input sized for it, a camera frame is not scaled at all.
        let (w, h) = input_size(320, 180);
        let native = Letterbox::fit(320, 180, w, h);
        assert_eq!((w, h, native.scale, native.pad_y), (320, 192, 1.0, 6));
    }

    #[test]
    fn inputs_fit_the_frame_in_multiples_of_32_up_to_416() {
        assert_eq!(input_size(320, 180), (320, 192));
        assert_eq!(input_size(512, 512), (416, 416));
        assert_eq!(input_size(741, 500), (416, 288), "scaled to 416 × 281, rounded up");
        assert_eq!(input_size(640, 360), (416, 256));
        assert_eq!(input_size(10, 3000), (32, 416));
        assert_eq!(input_size(1, 1), (32, 32));
    }

    #[test]
    fn boxes_round_trip_between_frame_and_input() {
        for (w, h) in [(320, 180), (640, 480), (100, 400), (416, 416)] {
            let (iw, ih) = input_size(w, h);
            let fit = Letterbox::fit(w, h, iw, ih);
            let original = Rect { x1: w as f32 * 0.1, y1: h as f32 * 0.2, x2: w as f32 * 0.7, y2: h as f32 * 0.9 };
            let back = fit.to_frame(&fit.to_input(&original));
            for (a, b) in
                [(original.x1, back.x1), (original.y1, back.y1), (original.x2, back.x2), (original.y2, back.y2)]
            {
                assert!((a - b).abs() < 1e-3, "{w}x{h}: {original:?} came back as {back:?}");
            }
        }
        // Boxes reaching into the padding are clipped to the frame.
        let fit = Letterbox::fit(320, 180, 416, 416);
        let clipped = fit.to_frame(&Rect { x1: -5.0, y1: 0.0, x2: 500.0, y2: 416.0 });
        assert_eq!(clipped, Rect { x1: 0.0, y1: 0.0, x2: 320.0, y2: 180.0 });
    }

    #[test]
    fn the_input_is_planar_bgr_normalised_with_mean_padding() {
        // A 2x1 frame: a pure red pixel and a pure blue one.
        let frame = RgbImage::new(2, 1, vec![255, 0, 0, 0, 0, 255]).expect("frame");
        let fit = Letterbox::fit(2, 1, 4, 4);
        assert_eq!((fit.width, fit.height, fit.pad_y), (4, 2, 1));
        let input = fit.input(&frame);
        let plane = 16;
        let value = |channel: usize, y: usize, x: usize| input[channel * plane + y * 4 + x];
        // Padding rows read 0 in every channel.
        assert!((0..3).all(|c| (0..4).all(|x| value(c, 0, x) == 0.0 && value(c, 3, x) == 0.0)));
        // Left column: red → the R plane (index 2) high, B plane (0) low.
        assert!((value(2, 1, 0) - (255.0 - MEAN_BGR[2]) / STD_BGR[2]).abs() < 1e-4);
        assert!((value(0, 1, 0) - (0.0 - MEAN_BGR[0]) / STD_BGR[0]).abs() < 1e-4);
        // Right column: blue → the B plane high.
        assert!((value(0, 1, 3) - (255.0 - MEAN_BGR[0]) / STD_BGR[0]).abs() < 1e-4);
    }
}
