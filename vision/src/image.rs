//! Frames as plain pixel buffers.
//!
//! Frames arrive as packed RGB (`rgb24`, what ffmpeg writes into PPM) at the
//! detection size, typically 320×180: small enough that copying one is cheap
//! and a whole frame stays in cache.

/// An 8-bit frame with `C` channels, row-major, no padding.
#[derive(Clone, PartialEq, Eq)]
pub struct Image<const C: usize> {
    width: u32,
    height: u32,
    data: Vec<u8>,
}

/// Packed RGB (`rgb24`): what ffmpeg sends, and what snapshots are made of.
pub type RgbImage = Image<3>;
/// Grayscale: what motion detection works on.
pub type GrayImage = Image<1>;

/// A pixel rectangle inside a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelRect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// `data` does not hold exactly `width × height` pixels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {width}×{height} frame needs {expected} bytes, got {actual}")]
pub struct SizeMismatch {
    pub width: u32,
    pub height: u32,
    pub expected: usize,
    pub actual: usize,
}

impl<const C: usize> Image<C> {
    /// Wraps `data`, which must hold exactly `width × height` pixels.
    pub fn new(width: u32, height: u32, data: Vec<u8>) -> Result<Self, SizeMismatch> {
        let expected = width as usize * height as usize * C;
        if expected != data.len() || width == 0 || height == 0 {
            return Err(SizeMismatch { width, height, expected, actual: data.len() });
        }
        Ok(Self { width, height, data })
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }
}

impl RgbImage {
    /// Luma (ITU-R BT.601 weights, in fixed point).
    pub fn to_gray(&self) -> GrayImage {
        let data = self
            .data
            .chunks_exact(3)
            .map(|p| ((77 * u32::from(p[0]) + 150 * u32::from(p[1]) + 29 * u32::from(p[2])) >> 8) as u8)
            .collect();
        GrayImage { width: self.width, height: self.height, data }
    }

    /// Draws the outline of `rect`, `thickness` pixels wide, clipped to the
    /// frame.
    /// Paints `rect` (clipped to the image) in `color`.
    pub fn fill_rect(&mut self, rect: PixelRect, color: [u8; 3]) {
        let x1 = rect.x.saturating_add(rect.width).min(self.width);
        let y1 = rect.y.saturating_add(rect.height).min(self.height);
        for y in rect.y.min(self.height)..y1 {
            let row = y as usize * self.width as usize;
            for x in rect.x.min(self.width)..x1 {
                let i = (row + x as usize) * 3;
                self.data[i..i + 3].copy_from_slice(&color);
            }
        }
    }

    pub fn draw_rect(&mut self, rect: PixelRect, thickness: u32, color: [u8; 3]) {
        let x1 = rect.x.saturating_add(rect.width).min(self.width);
        let y1 = rect.y.saturating_add(rect.height).min(self.height);
        for y in rect.y.min(self.height)..y1 {
            for x in rect.x.min(self.width)..x1 {
                let edge =
                    x < rect.x + thickness || x + thickness >= x1 || y < rect.y + thickness || y + thickness >= y1;
                if edge {
                    let i = (y as usize * self.width as usize + x as usize) * 3;
                    self.data[i..i + 3].copy_from_slice(&color);
                }
            }
        }
    }
}

// Pixel dumps are useless in logs and test failures: show the size only.
impl<const C: usize> std::fmt::Debug for Image<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if C == 3 { "RgbImage" } else { "GrayImage" };
        write!(f, "{kind}({}×{})", self.width, self.height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_checked() {
        assert!(RgbImage::new(2, 2, vec![0; 12]).is_ok());
        assert_eq!(
            RgbImage::new(2, 2, vec![0; 11]),
            Err(SizeMismatch { width: 2, height: 2, expected: 12, actual: 11 })
        );
        assert!(GrayImage::new(0, 0, vec![]).is_err());
    }

    #[test]
    fn gray_weights_primaries_like_bt601() {
        let rgb = RgbImage::new(4, 1, vec![255, 255, 255, 255, 0, 0, 0, 255, 0, 0, 0, 255]).expect("4×1");
        assert_eq!(rgb.to_gray().as_bytes(), &[255, 76, 149, 28]);
    }

    #[test]
    fn rectangles_are_outlines_clipped_to_the_frame() {
        let mut rgb = RgbImage::new(6, 6, vec![0; 108]).expect("6×6");
        rgb.draw_rect(PixelRect { x: 1, y: 1, width: 4, height: 4 }, 1, [9, 9, 9]);
        let lit = |x: usize, y: usize| rgb.as_bytes()[(y * 6 + x) * 3] == 9;
        assert!(lit(1, 1) && lit(4, 4) && lit(1, 4) && lit(4, 2));
        assert!(!lit(2, 2) && !lit(3, 3) && !lit(0, 0) && !lit(5, 5));
        // Partly outside: no panic, the visible part drawn.
        rgb.draw_rect(PixelRect { x: 4, y: 4, width: 10, height: 10 }, 2, [7, 7, 7]);
        assert_eq!(rgb.as_bytes()[(5 * 6 + 5) * 3], 7);
    }
}
