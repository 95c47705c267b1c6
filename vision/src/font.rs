//! A 5×7 bitmap font for the labels drawn on snapshots: capitals, digits
//! and `% . -`; anything else is drawn as `?`. Small and dependency-free,
//! since a label needs a dozen characters and no typography.

use crate::image::{PixelRect, RgbImage};

/// Glyph size in font pixels, and the gap after each.
pub const GLYPH_WIDTH: u32 = 5;
pub const GLYPH_HEIGHT: u32 = 7;
const SPACING: u32 = 1;

/// Rows of each glyph, top first, the leftmost pixel the highest of 5 bits.
const GLYPHS: [(char, [u8; 7]); 41] = [
    ('A', [0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001]),
    ('B', [0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110]),
    ('C', [0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110]),
    ('D', [0b11110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b11110]),
    ('E', [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111]),
    ('F', [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000]),
    ('G', [0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111]),
    ('H', [0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001]),
    ('I', [0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110]),
    ('J', [0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100]),
    ('K', [0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001]),
    ('L', [0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111]),
    ('M', [0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001]),
    ('N', [0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001]),
    ('O', [0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110]),
    ('P', [0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000]),
    ('Q', [0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101]),
    ('R', [0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001]),
    ('S', [0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110]),
    ('T', [0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100]),
    ('U', [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110]),
    ('V', [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100]),
    ('W', [0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010]),
    ('X', [0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001]),
    ('Y', [0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100]),
    ('Z', [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111]),
    ('0', [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110]),
    ('1', [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110]),
    ('2', [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111]),
    ('3', [0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110]),
    ('4', [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010]),
    ('5', [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110]),
    ('6', [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110]),
    ('7', [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000]),
    ('8', [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110]),
    ('9', [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100]),
    ('%', [0b11000, 0b11001, 0b00010, 0b00100, 0b01000, 0b10011, 0b00011]),
    ('.', [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b01100]),
    ('-', [0b00000, 0b00000, 0b00000, 0b11111, 0b00000, 0b00000, 0b00000]),
    (' ', [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000]),
    ('?', [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b00000, 0b00100]),
];

fn glyph(c: char) -> [u8; 7] {
    let c = c.to_ascii_uppercase();
    GLYPHS
        .iter()
        .find(|(g, _)| *g == c)
        .or_else(|| GLYPHS.iter().find(|(g, _)| *g == '?'))
        .map_or([0; 7], |(_, rows)| *rows)
}

/// The size `text` takes at `scale` (font pixels per image pixel side),
/// with a one-pixel margin all round.
pub fn text_size(text: &str, scale: u32) -> (u32, u32) {
    let chars = text.chars().count() as u32;
    let width = (chars * (GLYPH_WIDTH + SPACING) + SPACING) * scale;
    (width, (GLYPH_HEIGHT + 2) * scale)
}

impl RgbImage {
    /// Writes `text` in `color` on a `background` tab whose top-left corner
    /// is at (`x`, `y`); clipped to the image.
    pub fn draw_text(&mut self, x: u32, y: u32, text: &str, scale: u32, color: [u8; 3], background: [u8; 3]) {
        let scale = scale.max(1);
        let (width, height) = text_size(text, scale);
        self.fill_rect(PixelRect { x, y, width, height }, background);
        for (i, c) in text.chars().enumerate() {
            let left = x + (SPACING + i as u32 * (GLYPH_WIDTH + SPACING)) * scale;
            for (row, bits) in glyph(c).iter().enumerate() {
                for col in 0..GLYPH_WIDTH {
                    if bits & (1 << (GLYPH_WIDTH - 1 - col)) != 0 {
                        let dot = PixelRect {
                            x: left + col * scale,
                            y: y + (1 + row as u32) * scale,
                            width: scale,
                            height: scale,
                        };
                        self.fill_rect(dot, color);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_glyph_fits_five_columns_and_unknown_characters_are_drawn() {
        assert!(GLYPHS.iter().all(|(_, rows)| rows.iter().all(|r| *r < 32)));
        assert_eq!(glyph('a'), glyph('A'));
        assert_eq!(glyph('~'), glyph('?'));
        assert_eq!(text_size("dog", 1), (19, 9));
        assert_eq!(text_size("dog", 2), (38, 18));
    }

    #[test]
    fn text_is_drawn_on_its_tab_and_clipped_at_the_edge() {
        let mut image = RgbImage::new(30, 12, vec![0; 30 * 12 * 3]).expect("image");
        image.draw_text(0, 0, "I", 1, [255, 255, 255], [10, 20, 30]);
        let at = |image: &RgbImage, x: usize, y: usize| image.as_bytes()[(y * 30 + x) * 3];
        // 'I': its top row is 01110, drawn one pixel in and one down.
        assert_eq!(at(&image, 1, 1), 10, "tab colour where the glyph is blank");
        assert_eq!(at(&image, 2, 1), 255, "glyph colour");
        assert_eq!(at(&image, 3, 4), 255, "the stem");
        assert_eq!(at(&image, 20, 4), 0, "beyond the tab, untouched");
        // Off the right edge: no panic, clipped.
        image.draw_text(25, 8, "WIDE TEXT", 2, [255, 255, 255], [1, 1, 1]);
    }
}
