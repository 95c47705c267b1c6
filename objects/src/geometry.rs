//! Boxes as corner coordinates, and their overlap.

/// An axis-aligned box, corners in pixels (`x1 <= x2`, `y1 <= y2`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl Rect {
    pub fn width(&self) -> f32 {
        (self.x2 - self.x1).max(0.0)
    }

    pub fn height(&self) -> f32 {
        (self.y2 - self.y1).max(0.0)
    }

    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    /// Intersection over union: 0 for disjoint boxes, 1 for equal ones.
    pub fn iou(&self, other: &Rect) -> f32 {
        let inter = Rect {
            x1: self.x1.max(other.x1),
            y1: self.y1.max(other.y1),
            x2: self.x2.min(other.x2),
            y2: self.y2.min(other.y2),
        }
        .area();
        let union = self.area() + other.area() - inter;
        if union > 0.0 { inter / union } else { 0.0 }
    }

    /// The box clipped to `0..width` × `0..height`.
    pub fn clamp(&self, width: f32, height: f32) -> Rect {
        Rect {
            x1: self.x1.clamp(0.0, width),
            y1: self.y1.clamp(0.0, height),
            x2: self.x2.clamp(0.0, width),
            y2: self.y2.clamp(0.0, height),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_equal_disjoint_and_half_overlapping_boxes() {
        let a = Rect { x1: 0.0, y1: 0.0, x2: 10.0, y2: 10.0 };
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&Rect { x1: 20.0, y1: 0.0, x2: 30.0, y2: 10.0 }), 0.0);
        // Shifted by half its width: 50 shared of 150 covered.
        let b = Rect { x1: 5.0, y1: 0.0, x2: 15.0, y2: 10.0 };
        assert!((a.iou(&b) - 1.0 / 3.0).abs() < 1e-6);
    }
}
