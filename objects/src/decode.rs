//! From NanoDet's raw outputs to labelled boxes: pure arithmetic over
//! slices, no model, so it is tested against hand-computed tensors.
//!
//! NanoDet predicts on three grids (strides 8, 16 and 32). For each cell
//! of a `g`×`g` grid it gives 80 class scores (already through a sigmoid)
//! and, per side (left, top, right, bottom), a distribution over 11 bins of
//! the distance from the cell centre to that side. The distance is the
//! distribution's expected bin (after a softmax) times the stride. The
//! model does no suppression: overlapping boxes of one class are reduced
//! here by non-maximum suppression.

use crate::geometry::Rect;

/// Bins per side of a box distribution.
pub const BINS: usize = 11;
/// Class channels (COCO).
pub const CLASSES: usize = 80;
/// Overlap above which the weaker of two boxes of one class is dropped.
pub const NMS_IOU: f32 = 0.5;
/// Most detections kept per frame, best first.
pub const MAX_DETECTIONS: usize = 100;

/// One object found in a frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Index into [`crate::labels::COCO`].
    pub class: usize,
    pub score: f32,
    pub rect: Rect,
}

/// One stride's outputs, flattened row-major.
#[derive(Debug, Clone, Copy)]
pub struct Head<'a> {
    pub stride: u32,
    /// `cells × CLASSES` scores in 0..1.
    pub scores: &'a [f32],
    /// `cells × 4 × BINS` logits: left, top, right, bottom.
    pub distances: &'a [f32],
}

impl Head<'_> {
    /// Cells of this head (`scores.len() / CLASSES`).
    pub fn cells(&self) -> usize {
        self.scores.len() / CLASSES
    }
}

/// The expected bin of a softmax over `logits`.
fn expected_bin(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let (mut total, mut weighted) = (0.0f32, 0.0f32);
    for (bin, logit) in logits.iter().enumerate() {
        let p = (logit - max).exp();
        total += p;
        weighted += p * bin as f32;
    }
    if total > 0.0 { weighted / total } else { 0.0 }
}

/// Every cell's best class at or over `min_score`, as a box in input
/// pixels of an input `input_width` wide (cells run row by row); then
/// per-class NMS.
pub fn decode(heads: &[Head<'_>], input_width: u32, min_score: f32) -> Vec<Detection> {
    let mut found = Vec::new();
    for head in heads {
        let grid = (input_width / head.stride.max(1)).max(1) as usize;
        let stride = head.stride as f32;
        let cells = head.cells().min(head.distances.len() / (4 * BINS));
        for cell in 0..cells {
            let scores = &head.scores[cell * CLASSES..(cell + 1) * CLASSES];
            let Some((class, &score)) = scores.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)) else {
                continue;
            };
            if score < min_score {
                continue;
            }
            let logits = &head.distances[cell * 4 * BINS..(cell + 1) * 4 * BINS];
            let [left, top, right, bottom] =
                [0, 1, 2, 3].map(|side| expected_bin(&logits[side * BINS..(side + 1) * BINS]) * stride);
            let cx = ((cell % grid) as f32 + 0.5) * stride;
            let cy = ((cell / grid) as f32 + 0.5) * stride;
            found.push(Detection {
                class,
                score,
                rect: Rect { x1: cx - left, y1: cy - top, x2: cx + right, y2: cy + bottom },
            });
        }
    }
    non_maximum_suppression(found, NMS_IOU)
}

/// Per class, keeps a box only if no better-scoring box of its class
/// overlaps it by more than `iou`. Best first, at most [`MAX_DETECTIONS`].
pub fn non_maximum_suppression(mut detections: Vec<Detection>, iou: f32) -> Vec<Detection> {
    detections.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for candidate in detections {
        let suppressed = kept.iter().any(|k| k.class == candidate.class && k.rect.iou(&candidate.rect) > iou);
        if !suppressed {
            kept.push(candidate);
            if kept.len() == MAX_DETECTIONS {
                break;
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distribution logits that put all weight on one bin per side.
    fn peaked(bins: [usize; 4]) -> Vec<f32> {
        bins.iter().flat_map(|&b| (0..BINS).map(move |i| if i == b { 50.0 } else { 0.0 })).collect()
    }

    #[test]
    fn the_expected_bin_is_the_softmax_mean() {
        assert!((expected_bin(&peaked([3, 0, 0, 0])[..BINS]) - 3.0).abs() < 1e-4);
        // Two equal logits: halfway between their bins.
        let mut two = vec![-100.0; BINS];
        (two[2], two[6]) = (1.0, 1.0);
        assert!((expected_bin(&two) - 4.0).abs() < 1e-4);
        // All equal: the middle bin.
        assert!((expected_bin(&[0.0; BINS]) - 5.0).abs() < 1e-4);
    }

    #[test]
    fn a_cell_decodes_to_its_box_around_the_cell_centre() {
        // A 2x2 grid of stride 8 (input 16): cell 3 is (1, 1), centre (12, 12).
        let mut scores = vec![0.0f32; 4 * CLASSES];
        scores[3 * CLASSES + 16] = 0.9; // a dog
        scores[3 * CLASSES + 15] = 0.4; // a weaker cat in the same cell
        scores[CLASSES] = 0.2; // below the threshold
        let mut distances = vec![0.0f32; 4 * 4 * BINS];
        distances[3 * 4 * BINS..].copy_from_slice(&peaked([1, 2, 0, 1]));
        let heads = [Head { stride: 8, scores: &scores, distances: &distances }];
        let found = decode(&heads, 16, 0.35);
        assert_eq!(found.len(), 1, "{found:?}");
        let d = &found[0];
        assert_eq!((d.class, d.score), (16, 0.9), "the best class of the cell");
        let expect = Rect { x1: 12.0 - 8.0, y1: 12.0 - 16.0, x2: 12.0, y2: 12.0 + 8.0 };
        for (a, b) in [(d.rect.x1, expect.x1), (d.rect.y1, expect.y1), (d.rect.x2, expect.x2), (d.rect.y2, expect.y2)] {
            assert!((a - b).abs() < 1e-3, "{:?} != {expect:?}", d.rect);
        }
    }

    #[test]
    fn suppression_is_per_class_and_keeps_the_best() {
        let boxed =
            |class, score, x: f32| Detection { class, score, rect: Rect { x1: x, y1: 0.0, x2: x + 10.0, y2: 10.0 } };
        let kept = non_maximum_suppression(
            vec![
                boxed(0, 0.6, 1.0), // overlaps the 0.9 person by 9/11: dropped
                boxed(0, 0.9, 0.0),
                boxed(0, 0.7, 6.0),  // overlaps it by 4/16: kept
                boxed(16, 0.5, 0.0), // another class at the same place: kept
            ],
            NMS_IOU,
        );
        let summary: Vec<(usize, f32)> = kept.iter().map(|d| (d.class, d.score)).collect();
        assert_eq!(summary, [(0, 0.9), (0, 0.7), (16, 0.5)]);
    }
}
