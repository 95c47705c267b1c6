//! Motion detection on grayscale frames, in the classic NVR shape (as in
//! motionEye and Frigate's motion stage), with no OpenCV:
//!
//! 1. **blur** — a box blur (`blur_radius`), so sensor noise and compression
//!    speckle do not count as change;
//! 2. **background** — a running average of past frames; each frame moves it
//!    by `alpha` toward itself, so slow changes (clouds, dusk) fade in while
//!    anything that moves stands out. Changed pixels that keep changing from
//!    frame to frame learn at a fifth of that rate ([`FOREGROUND_RATE`]), so a
//!    moving object leaves no ghost trail (which would stretch its box
//!    backwards); once a changed pixel holds still for [`STILL_FRAMES`] — an
//!    object that stopped (a parked car), or the spot one left — it learns at
//!    the full rate and fades into the background within seconds;
//! 3. **difference + threshold** — a pixel has *changed* when it differs from
//!    the background by more than `threshold` grey levels (masked pixels never
//!    do);
//! 4. **dilation** — changed pixels grow by `dilate` pixels so the parts of
//!    one object join up;
//! 5. **connected components** (8-connected) → one box per region; regions
//!    smaller than `min_area` of the frame are dropped.
//!
//! Two guards keep it honest. During **warm-up** (the first `warmup_frames`
//! after a start, a restart or a recalibration) nothing is reported, and the
//! background starts as the per-pixel *median* of those frames, so something
//! that moved through the picture while it warmed up leaves no ghost: a
//! freshly (re)started stream never produces a false event. A **global change** — more than
//! `global_change` of the frame changing at once, as when lights switch on or
//! the camera's exposure jumps — recalibrates (the background restarts from
//! the current frame) instead of reporting motion.
//!
//! The detector keeps its buffers between frames: processing a frame
//! allocates nothing once the first frame of a given size has been seen.

use crate::image::{GrayImage, PixelRect};

/// Background learning rate on changed pixels that are moving, relative to
/// `alpha`.
pub const FOREGROUND_RATE: f32 = 0.2;
/// Frames a changed pixel must hold still before it learns at the full rate.
pub const STILL_FRAMES: u8 = 5;

/// Every motion tunable, with the defaults used by `detector`.
#[derive(Debug, Clone, PartialEq)]
pub struct MotionConfig {
    /// Background learning rate per frame (0–1). Higher follows slow scene
    /// changes faster but absorbs a slow-moving object sooner. Default 0.05
    /// (≈ 4 s to take in a change at 5 fps).
    pub alpha: f32,
    /// Grey-level difference (1–255) from the background that counts as
    /// change. Default 25.
    pub threshold: u8,
    /// Box-blur radius in pixels before differencing; 0 disables. Default 2
    /// (a 5×5 box).
    pub blur_radius: u32,
    /// Dilation of the changed-pixel mask, in pixels. Default 2.
    pub dilate: u32,
    /// Smallest region kept, as a fraction of the frame area. Default 0.002
    /// (115 pixels at 320×180, about 11×11).
    pub min_area: f32,
    /// Fraction of the frame that, changing at once, means a global change
    /// (recalibrate, no motion). Default 0.5.
    pub global_change: f32,
    /// Frames of warm-up after a start or recalibration. Default 5.
    pub warmup_frames: u32,
    /// Areas to ignore (a busy road, a tree, a timestamp overlay), as
    /// fractions of the frame.
    pub masks: Vec<MaskRect>,
}

impl Default for MotionConfig {
    fn default() -> Self {
        Self {
            alpha: 0.05,
            threshold: 25,
            blur_radius: 2,
            dilate: 2,
            min_area: 0.002,
            global_change: 0.5,
            warmup_frames: 5,
            masks: Vec::new(),
        }
    }
}

/// A rectangle in fractions of the frame (0–1), so a mask does not depend on
/// the detection size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaskRect {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

impl MaskRect {
    /// Parses `x,y,w,h` in fractions of the frame.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<f32> = text
            .split(',')
            .map(|p| p.trim().parse::<f32>().map_err(|_| format!("{p:?} is not a number")))
            .collect::<Result<_, _>>()?;
        let &[x, y, width, height] = parts.as_slice() else {
            return Err(format!("expected x,y,width,height (4 numbers), got {}", parts.len()));
        };
        let unit = |v: f32| (0.0..=1.0).contains(&v);
        if ![x, y, width, height].into_iter().all(unit) || x + width > 1.0 + 1e-6 || y + height > 1.0 + 1e-6 {
            return Err("each value must be a fraction of the frame (0-1) and the rectangle must fit in it".into());
        }
        Ok(Self { x, y, width, height })
    }

    fn to_pixels(self, width: u32, height: u32) -> PixelRect {
        let (w, h) = (width as f32, height as f32);
        let x = (self.x * w).floor() as u32;
        let y = (self.y * h).floor() as u32;
        PixelRect {
            x,
            y,
            width: ((self.x + self.width) * w).ceil() as u32 - x,
            height: ((self.y + self.height) * h).ceil() as u32 - y,
        }
    }
}

/// One moving region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// Bounding box, in pixels of the analysed frame.
    pub rect: PixelRect,
    /// Changed pixels inside the region (before dilation).
    pub changed: u32,
}

/// What one frame showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The background is still being learned; nothing is reported.
    WarmingUp,
    /// Nothing moved (or only regions below `min_area`).
    Still,
    /// At least one region moved.
    Motion,
    /// Most of the frame changed at once: the background restarted.
    Recalibrated,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MotionResult {
    pub verdict: Verdict,
    /// Changed pixels in the kept regions, as a fraction of the frame (0–1);
    /// this is the event's `motion_confidence`.
    pub changed_fraction: f32,
    /// Kept regions, largest first.
    pub regions: Vec<Region>,
}

/// Motion detection for one camera.
#[derive(Debug)]
pub struct MotionDetector {
    config: MotionConfig,
    width: u32,
    height: u32,
    /// Frames seen since the last (re)start of the background.
    learned: u32,
    background: Vec<f32>,
    /// The warm-up frames so far (blurred), one after another.
    warm: Vec<u8>,
    /// The previous blurred frame, and for each pixel how many frames it has
    /// held still.
    previous: Vec<u8>,
    still: Vec<u8>,
    blurred: Vec<u8>,
    /// Reused scratch: blur row sums, then the dilation pass.
    scratch: Vec<u16>,
    changed: Vec<u8>,
    /// `changed`, cut to the window where something changed.
    window: Vec<u8>,
    grown: Vec<u8>,
    masked: Vec<bool>,
    labels: Vec<u32>,
    stack: Vec<u32>,
}

impl MotionDetector {
    pub fn new(config: MotionConfig) -> Self {
        Self {
            config,
            width: 0,
            height: 0,
            learned: 0,
            background: Vec::new(),
            warm: Vec::new(),
            previous: Vec::new(),
            still: Vec::new(),
            blurred: Vec::new(),
            scratch: Vec::new(),
            changed: Vec::new(),
            window: Vec::new(),
            grown: Vec::new(),
            masked: Vec::new(),
            labels: Vec::new(),
            stack: Vec::new(),
        }
    }

    pub fn config(&self) -> &MotionConfig {
        &self.config
    }

    /// Forgets the background: the next frames warm up again. Called when a
    /// source restarts or loops, where the picture may jump.
    pub fn reset(&mut self) {
        self.learned = 0;
    }

    /// Analyses one frame.
    pub fn process(&mut self, frame: &GrayImage) -> MotionResult {
        if (frame.width(), frame.height()) != (self.width, self.height) {
            self.resize(frame.width(), frame.height());
        }
        blur(
            frame.as_bytes(),
            self.width as usize,
            self.config.blur_radius as usize,
            &mut self.scratch,
            &mut self.blurred,
        );

        if self.warm_up() {
            return MotionResult { verdict: Verdict::WarmingUp, changed_fraction: 0.0, regions: Vec::new() };
        }

        let threshold = f32::from(self.config.threshold);
        let mut changed_total = 0usize;
        for (((changed, &pixel), &bg), &masked) in
            self.changed.iter_mut().zip(&self.blurred).zip(&self.background).zip(&self.masked)
        {
            let hit = !masked && (f32::from(pixel) - bg).abs() > threshold;
            *changed = u8::from(hit);
            changed_total += usize::from(hit);
        }
        let area = self.blurred.len();
        if changed_total as f32 > self.config.global_change * area as f32 {
            // This frame is the first of a new warm-up.
            self.learned = 0;
            self.warm_up();
            return MotionResult { verdict: Verdict::Recalibrated, changed_fraction: 0.0, regions: Vec::new() };
        }
        // Where something moves in front of the background, learn slowly, so
        // it leaves no ghost trail. Where a changed pixel has held still for
        // STILL_FRAMES (a car that parked, or the spot an object left), learn
        // at the full rate so it fades into the background.
        let foreground_alpha = self.config.alpha * FOREGROUND_RATE;
        let steady = f32::from(self.config.threshold) / 2.0;
        for ((((bg, &p), &changed), previous), still) in self
            .background
            .iter_mut()
            .zip(&self.blurred)
            .zip(&self.changed)
            .zip(self.previous.iter_mut())
            .zip(self.still.iter_mut())
        {
            *still = if p.abs_diff(*previous) as f32 <= steady { still.saturating_add(1) } else { 0 };
            *previous = p;
            let weight = if changed == 0 || *still >= STILL_FRAMES { self.config.alpha } else { foreground_alpha };
            *bg += weight * (f32::from(p) - *bg);
        }
        if changed_total == 0 {
            return MotionResult { verdict: Verdict::Still, changed_fraction: 0.0, regions: Vec::new() };
        }

        // Dilation and labelling only look at the part of the frame where
        // something changed (plus the dilation margin): a person in one
        // corner does not cost a pass over the whole frame.
        let window = changed_window(&self.changed, self.width as usize, self.config.dilate as usize);
        self.window.clear();
        for row in self.changed.chunks_exact(self.width as usize).skip(window.y).take(window.height) {
            self.window.extend_from_slice(&row[window.x..window.x + window.width]);
        }
        dilate(&self.window, &mut self.grown, window.width, self.config.dilate as usize, &mut self.scratch);
        let min_pixels = (self.config.min_area * area as f32).ceil().max(1.0) as u32;
        self.labels.resize(self.window.len(), 0);
        let mut regions =
            components(&self.grown, &self.window, window.width, &mut self.labels, &mut self.stack, min_pixels);
        for region in &mut regions {
            region.rect.x += window.x as u32;
            region.rect.y += window.y as u32;
        }
        if regions.is_empty() {
            return MotionResult { verdict: Verdict::Still, changed_fraction: 0.0, regions };
        }
        regions.sort_by_key(|r| std::cmp::Reverse(r.rect.width * r.rect.height));
        let kept: u32 = regions.iter().map(|r| r.changed).sum();
        MotionResult { verdict: Verdict::Motion, changed_fraction: kept as f32 / area as f32, regions }
    }

    /// Feeds the current (blurred) frame to the warm-up, if one is under
    /// way; when it completes, the background becomes the per-pixel median
    /// of its frames. True while warming up.
    fn warm_up(&mut self) -> bool {
        let needed = self.config.warmup_frames.max(1);
        if self.learned >= needed {
            return false;
        }
        if self.learned == 0 {
            self.warm.clear();
        }
        self.warm.extend_from_slice(&self.blurred);
        self.learned += 1;
        if self.learned == needed {
            let n = self.blurred.len();
            let mut column: Vec<u8> = Vec::with_capacity(needed as usize);
            for (i, bg) in self.background.iter_mut().enumerate() {
                column.clear();
                column.extend(self.warm.iter().skip(i).step_by(n).copied());
                column.sort_unstable();
                *bg = f32::from(column[column.len() / 2]);
            }
            self.warm = Vec::new();
            self.previous.copy_from_slice(&self.blurred);
            self.still.fill(0);
        }
        true
    }

    fn resize(&mut self, width: u32, height: u32) {
        let n = width as usize * height as usize;
        self.width = width;
        self.height = height;
        self.learned = 0;
        self.background = vec![0.0; n];
        self.blurred = vec![0; n];
        self.previous = vec![0; n];
        self.still = vec![0; n];
        self.changed = vec![0; n];
        self.grown = vec![0; n];
        self.labels = vec![0; n];
        self.masked = vec![false; n];
        for mask in &self.config.masks {
            let r = mask.to_pixels(width, height);
            for y in r.y..(r.y + r.height).min(height) {
                let row = y as usize * width as usize;
                self.masked[row + r.x as usize..row + (r.x + r.width).min(width) as usize].fill(true);
            }
        }
    }
}

/// A rectangle of rows and columns, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    x: usize,
    y: usize,
    width: usize,
    height: usize,
}

/// The bounding rectangle of the set pixels of `mask` (there must be one),
/// grown by `margin` and clipped to the frame.
fn changed_window(mask: &[u8], width: usize, margin: usize) -> Window {
    let height = mask.len() / width;
    let (mut x0, mut x1, mut y0, mut y1) = (width, 0, height, 0);
    for (y, row) in mask.chunks_exact(width).enumerate() {
        if let (Some(first), Some(last)) = (row.iter().position(|&v| v != 0), row.iter().rposition(|&v| v != 0)) {
            (x0, x1, y0, y1) = (x0.min(first), x1.max(last), y0.min(y), y1.max(y));
        }
    }
    if x0 > x1 {
        return Window { x: 0, y: 0, width, height };
    }
    let (x0, y0) = (x0.saturating_sub(margin), y0.saturating_sub(margin));
    let (x1, y1) = ((x1 + margin).min(width - 1), (y1 + margin).min(height - 1));
    Window { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 }
}

/// Separable box blur with edge clamping: a running sum per row, then per
/// column. `out` gets the result; `sums` is scratch.
fn blur(src: &[u8], width: usize, radius: usize, sums: &mut Vec<u16>, out: &mut Vec<u8>) {
    out.clear();
    if radius == 0 {
        out.extend_from_slice(src);
        return;
    }
    let height = src.len() / width;
    let window = (2 * radius + 1) as u32;
    sums.clear();
    sums.resize(src.len(), 0);
    // Rows: each output is the mean of 2r+1 clamped neighbours (kept as a sum).
    for (row, sum_row) in src.chunks_exact(width).zip(sums.chunks_exact_mut(width)) {
        let at = |i: isize| u32::from(row[i.clamp(0, width as isize - 1) as usize]);
        let mut acc: u32 = (-(radius as isize)..=radius as isize).map(at).sum();
        for (x, slot) in sum_row.iter_mut().enumerate() {
            *slot = (acc / window) as u16;
            let x = x as isize;
            acc = acc + at(x + radius as isize + 1) - at(x - radius as isize);
        }
    }
    // Columns.
    out.resize(src.len(), 0);
    for x in 0..width {
        let at = |y: isize| u32::from(sums[y.clamp(0, height as isize - 1) as usize * width + x]);
        let mut acc: u32 = (-(radius as isize)..=radius as isize).map(at).sum();
        for y in 0..height {
            out[y * width + x] = (acc / window) as u8;
            let y = y as isize;
            acc = acc + at(y + radius as isize + 1) - at(y - radius as isize);
        }
    }
}

/// Grows the set pixels of `mask` by `radius` (a square structuring element),
/// as a horizontal then a vertical max filter.
fn dilate(mask: &[u8], out: &mut Vec<u8>, width: usize, radius: usize, scratch: &mut Vec<u16>) {
    out.clear();
    out.extend_from_slice(mask);
    if radius == 0 {
        return;
    }
    let height = mask.len() / width;
    scratch.clear();
    scratch.resize(mask.len(), 0);
    // Horizontal: distance-limited spread using a countdown from the last set pixel.
    for y in 0..height {
        let row = &mask[y * width..(y + 1) * width];
        let dst = &mut scratch[y * width..(y + 1) * width];
        let mut left = 0usize;
        for x in 0..width {
            left = if row[x] != 0 { radius + 1 } else { left.saturating_sub(1) };
            dst[x] = u16::from(left > 0);
        }
        let mut right = 0usize;
        for x in (0..width).rev() {
            right = if row[x] != 0 { radius + 1 } else { right.saturating_sub(1) };
            dst[x] |= u16::from(right > 0);
        }
    }
    for x in 0..width {
        let mut down = 0usize;
        for y in 0..height {
            down = if scratch[y * width + x] != 0 { radius + 1 } else { down.saturating_sub(1) };
            out[y * width + x] = u8::from(down > 0);
        }
        let mut up = 0usize;
        for y in (0..height).rev() {
            up = if scratch[y * width + x] != 0 { radius + 1 } else { up.saturating_sub(1) };
            out[y * width + x] |= u8::from(up > 0);
        }
    }
}

/// 8-connected components of `grown`; each region counts the `changed`
/// pixels it covers and is kept when that count reaches `min_pixels`.
fn components(
    grown: &[u8],
    changed: &[u8],
    width: usize,
    labels: &mut [u32],
    stack: &mut Vec<u32>,
    min_pixels: u32,
) -> Vec<Region> {
    let height = grown.len() / width;
    labels.fill(0);
    let mut regions = Vec::new();
    let mut next_label = 0u32;
    for start in 0..grown.len() {
        if grown[start] == 0 || labels[start] != 0 {
            continue;
        }
        next_label += 1;
        labels[start] = next_label;
        stack.clear();
        stack.push(start as u32);
        let (mut x0, mut y0, mut x1, mut y1) = (width, height, 0usize, 0usize);
        let mut count = 0u32;
        while let Some(i) = stack.pop() {
            let i = i as usize;
            let (x, y) = (i % width, i / width);
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
            count += u32::from(changed[i]);
            for ny in y.saturating_sub(1)..=(y + 1).min(height - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(width - 1) {
                    let j = ny * width + nx;
                    if grown[j] != 0 && labels[j] == 0 {
                        labels[j] = next_label;
                        stack.push(j as u32);
                    }
                }
            }
        }
        if count >= min_pixels {
            let rect =
                PixelRect { x: x0 as u32, y: y0 as u32, width: (x1 - x0 + 1) as u32, height: (y1 - y0 + 1) as u32 };
            regions.push(Region { rect, changed: count });
        }
    }
    regions
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: u32 = 160;
    const H: u32 = 90;

    /// A textured static scene with a little deterministic noise, and
    /// optionally a bright square.
    fn scene(seed: u32, square: Option<(u32, u32, u32)>, brightness: i32) -> GrayImage {
        let mut data = Vec::with_capacity((W * H) as usize);
        for y in 0..H {
            for x in 0..W {
                let texture = 60 + ((x / 8 + y / 8) % 2) * 40;
                let noise = (x.wrapping_mul(7919) ^ y.wrapping_mul(104_729) ^ seed.wrapping_mul(2_654_435_761)) % 9;
                let mut v = texture as i32 + noise as i32 - 4 + brightness;
                if let Some((sx, sy, side)) = square
                    && (sx..sx + side).contains(&x)
                    && (sy..sy + side).contains(&y)
                {
                    v = 230;
                }
                data.push(v.clamp(0, 255) as u8);
            }
        }
        GrayImage::new(W, H, data).expect("scene size")
    }

    fn warmed_up(config: MotionConfig) -> MotionDetector {
        let mut detector = MotionDetector::new(config);
        for seed in 0..detector.config().warmup_frames {
            assert_eq!(detector.process(&scene(seed, None, 0)).verdict, Verdict::WarmingUp);
        }
        detector
    }

    #[test]
    fn a_static_noisy_scene_is_still() {
        let mut detector = warmed_up(MotionConfig::default());
        for seed in 100..200 {
            let result = detector.process(&scene(seed, None, 0));
            assert_eq!(result.verdict, Verdict::Still, "frame {seed}");
        }
    }

    #[test]
    fn a_moving_square_is_found_where_it_is() {
        let mut detector = warmed_up(MotionConfig::default());
        for (i, x) in (10..120).step_by(10).enumerate() {
            let result = detector.process(&scene(i as u32, Some((x, 30, 20)), 0));
            assert_eq!(result.verdict, Verdict::Motion, "at x={x}");
            let best = result.regions[0].rect;
            // The box covers the square (dilation and blur make it a bit larger).
            assert!(best.x <= x && best.x + best.width >= x + 20, "{best:?} vs x={x}");
            assert!(best.y <= 30 && best.y + best.height >= 50, "{best:?}");
            assert!(best.width <= 20 + 2 * 12 + 10, "{best:?}");
            assert!(result.changed_fraction > 0.01 && result.changed_fraction < 0.2);
        }
    }

    #[test]
    fn a_global_brightness_jump_recalibrates_instead_of_reporting() {
        let config = MotionConfig::default();
        let warmup = config.warmup_frames;
        let mut detector = warmed_up(config);
        assert_eq!(detector.process(&scene(50, None, 60)).verdict, Verdict::Recalibrated);
        for seed in 51..51 + warmup - 1 {
            assert_eq!(detector.process(&scene(seed, None, 60)).verdict, Verdict::WarmingUp);
        }
        for seed in 60..80 {
            assert_eq!(detector.process(&scene(seed, None, 60)).verdict, Verdict::Still, "after, frame {seed}");
        }
    }

    #[test]
    fn an_object_moving_through_the_warm_up_leaves_no_ghost() {
        let mut detector = MotionDetector::new(MotionConfig::default());
        for (i, x) in (0..5).map(|i| (i, 10 + i * 25)) {
            assert_eq!(detector.process(&scene(i, Some((x, 30, 20)), 0)).verdict, Verdict::WarmingUp);
        }
        for seed in 10..30 {
            assert_eq!(detector.process(&scene(seed, None, 0)).verdict, Verdict::Still, "frame {seed}");
        }
    }

    #[test]
    fn an_object_that_stops_and_the_spot_it_leaves_fade_into_the_background() {
        let mut detector = warmed_up(MotionConfig::default());
        let parked = Some((60, 30, 24));
        // Arrives: motion at first...
        assert_eq!(detector.process(&scene(20, parked, 0)).verdict, Verdict::Motion);
        // ...and within 10 s at 5 fps it is part of the scene.
        let settled = (21..71).find(|&seed| detector.process(&scene(seed, parked, 0)).verdict == Verdict::Still);
        assert!(settled.is_some_and(|s| s > 21 + u32::from(STILL_FRAMES)), "settled at {settled:?}");
        for seed in 80..90 {
            assert_eq!(detector.process(&scene(seed, parked, 0)).verdict, Verdict::Still);
        }
        // Leaves: the empty spot is a change too, and it fades the same way.
        assert_eq!(detector.process(&scene(100, None, 0)).verdict, Verdict::Motion);
        let healed = (101..151).find(|&seed| detector.process(&scene(seed, None, 0)).verdict == Verdict::Still);
        assert!(healed.is_some(), "the spot the object left still reads as motion");
    }

    #[test]
    fn small_regions_and_masked_areas_are_ignored() {
        // A 4×4 square changes about 8×8 pixels after the blur: kept at the
        // default 0.2 %, dropped when regions must cover 2 % of the frame.
        let mut detector = warmed_up(MotionConfig::default());
        assert_eq!(detector.process(&scene(9, Some((50, 50, 4)), 0)).verdict, Verdict::Motion);
        let mut detector = warmed_up(MotionConfig { min_area: 0.02, ..MotionConfig::default() });
        assert_eq!(detector.process(&scene(9, Some((50, 50, 4)), 0)).verdict, Verdict::Still);

        let mask = MaskRect { x: 0.0, y: 0.0, width: 0.5, height: 1.0 };
        let mut detector = warmed_up(MotionConfig { masks: vec![mask], ..MotionConfig::default() });
        assert_eq!(detector.process(&scene(9, Some((10, 30, 20)), 0)).verdict, Verdict::Still);
        assert_eq!(detector.process(&scene(10, Some((120, 30, 20)), 0)).verdict, Verdict::Motion);
    }

    #[test]
    fn reset_and_a_new_size_warm_up_again() {
        let mut detector = warmed_up(MotionConfig::default());
        detector.reset();
        assert_eq!(detector.process(&scene(1, Some((10, 10, 30)), 0)).verdict, Verdict::WarmingUp);
        let other = GrayImage::new(8, 8, vec![0; 64]).expect("8×8");
        assert_eq!(detector.process(&other).verdict, Verdict::WarmingUp);
    }

    #[test]
    fn masks_parse_from_fractions() {
        assert_eq!(MaskRect::parse("0,0.5,0.25,0.5"), Ok(MaskRect { x: 0.0, y: 0.5, width: 0.25, height: 0.5 }));
        assert!(MaskRect::parse("0,0,1").is_err());
        assert!(MaskRect::parse("0.8,0,0.5,1").is_err());
        assert!(MaskRect::parse("a,b,c,d").is_err());
        let px = MaskRect { x: 0.5, y: 0.0, width: 0.5, height: 1.0 }.to_pixels(320, 180);
        assert_eq!(px, PixelRect { x: 160, y: 0, width: 160, height: 180 });
    }

    #[test]
    fn the_changed_window_bounds_the_set_pixels_plus_margin() {
        let mut mask = vec![0u8; 10 * 6];
        mask[2 * 10 + 3] = 1;
        mask[4 * 10 + 8] = 1;
        assert_eq!(changed_window(&mask, 10, 1), Window { x: 2, y: 1, width: 8, height: 5 });
        assert_eq!(changed_window(&mask, 10, 0), Window { x: 3, y: 2, width: 6, height: 3 });
    }

    #[test]
    fn blur_and_dilate_behave_at_the_edges() {
        let mut sums = Vec::new();
        let mut out = Vec::new();
        blur(&[0, 0, 90, 0, 0], 5, 1, &mut sums, &mut out);
        assert_eq!(out, vec![0, 30, 30, 30, 0]);
        let mut grown = Vec::new();
        dilate(&[1, 0, 0, 0, 0, 0], &mut grown, 6, 2, &mut sums);
        assert_eq!(grown, vec![1, 1, 1, 0, 0, 0]);
    }
}
