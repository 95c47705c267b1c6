//! The dry run's pictures: each simulated camera has a scene of its own (a
//! sky, a horizon, ground, a building and a path, laid out and coloured
//! from its id), and an event's objects are drawn on it as simple shapes
//! at their boxes, then outlined and labelled as a camera's snapshot is
//! (`vision::snapshot`). So the demo shows pictures wherever a camera
//! would: thumbnails, the detail view, camera tiles, MQTT's snapshot topic.
//!
//! Pure: objects in, JPEG bytes out. The simulation writes the file, as
//! the camera pipeline does, before the change naming it is committed.

use shared::model::DetectedObject;
use vision::image::{PixelRect, RgbImage};
use vision::snapshot::{Annotation, SnapshotError, encode_jpeg};

/// The simulated frame: every dry-run box is in these pixels, as a real
/// camera's boxes are in its snapshot's.
pub const WIDTH: u32 = 640;
pub const HEIGHT: u32 = 360;

/// One camera's background, made once and drawn on for each event.
#[derive(Debug, Clone)]
pub struct Scene {
    background: RgbImage,
}

impl Scene {
    /// The scene of camera `id`: the same id always gives the same picture.
    pub fn for_camera(id: &str) -> Self {
        let mut pick = Picker::new(id);
        let mut image = RgbImage::new(WIDTH, HEIGHT, vec![0; (WIDTH * HEIGHT * 3) as usize])
            .unwrap_or_else(|_| unreachable!("WIDTH × HEIGHT × 3 bytes"));
        let horizon = HEIGHT * pick.within(30, 48) / 100;
        // Sky: from a day blue or a dusk violet at the top to pale at the horizon.
        let top: [u8; 3] = *pick.one(&[[92, 148, 214], [118, 128, 196], [86, 160, 200], [150, 150, 190]]);
        for y in 0..horizon {
            let t = y * 100 / horizon.max(1);
            let shade = top.map(|c| (u32::from(c) + (235 - u32::from(c)) * t / 100) as u8);
            image.fill_rect(PixelRect { x: 0, y, width: WIDTH, height: 1 }, shade);
        }
        // Ground: grass, paving or gravel, darker towards the camera.
        let ground: [u8; 3] = *pick.one(&[[96, 140, 82], [132, 128, 120], [150, 138, 112], [84, 120, 90]]);
        for y in horizon..HEIGHT {
            let t = (y - horizon) * 40 / (HEIGHT - horizon).max(1);
            image.fill_rect(PixelRect { x: 0, y, width: WIDTH, height: 1 }, ground.map(|c| c.saturating_sub(t as u8)));
        }
        // A building on the horizon: a wall, a roof band, lit windows.
        let (house_w, house_h) = (WIDTH * pick.within(20, 40) / 100, HEIGHT * pick.within(18, 30) / 100);
        let house_x = pick.within(0, WIDTH - house_w);
        let house_y = horizon.saturating_sub(house_h);
        let wall: [u8; 3] = *pick.one(&[[196, 170, 140], [170, 120, 100], [210, 206, 196], [150, 160, 170]]);
        image.fill_rect(PixelRect { x: house_x, y: house_y, width: house_w, height: house_h }, wall);
        image.fill_rect(PixelRect { x: house_x, y: house_y, width: house_w, height: house_h / 5 }, wall.map(|c| c / 2));
        let window = PixelRect { x: 0, y: house_y + house_h * 2 / 5, width: house_w / 8, height: house_h / 4 };
        for i in 0..3 {
            let x = house_x + house_w * (1 + 3 * i) / 10;
            image.fill_rect(PixelRect { x, ..window }, [238, 222, 150]);
        }
        // A path from the bottom edge towards the building.
        let (path_x, path_color) = (house_x + house_w / 2, ground.map(|c| c.saturating_add(40)));
        for y in horizon..HEIGHT {
            let half = 6 + (y - horizon) * WIDTH / 10 / (HEIGHT - horizon).max(1);
            let x = path_x.saturating_sub(half);
            image.fill_rect(PixelRect { x, y, width: half * 2, height: 1 }, path_color);
        }
        Self { background: image }
    }

    /// The scene with `objects` drawn at their boxes, outlined and
    /// labelled ("person 87%"), as JPEG.
    pub fn snapshot(&self, objects: &[DetectedObject]) -> Result<Vec<u8>, SnapshotError> {
        let mut image = self.background.clone();
        let mut annotations = Vec::with_capacity(objects.len());
        for object in objects {
            let rect = pixel_rect(object);
            draw_object(&mut image, &object.label, rect);
            annotations
                .push(Annotation { rect, label: Some(format!("{} {:.0}%", object.label, object.confidence * 100.0)) });
        }
        encode_jpeg(&image, &annotations)
    }
}

/// `object`'s box in whole pixels, inside the frame.
fn pixel_rect(object: &DetectedObject) -> PixelRect {
    let clamp = |v: f64, max: u32| v.round().clamp(0.0, f64::from(max)) as u32;
    let (x, y) = (clamp(object.bbox.x, WIDTH - 1), clamp(object.bbox.y, HEIGHT - 1));
    PixelRect {
        x,
        y,
        width: clamp(object.bbox.width, WIDTH - x).max(1),
        height: clamp(object.bbox.height, HEIGHT - y).max(1),
    }
}

/// A rectangle at fractions of `r` (left, top, width, height in percent).
fn part(r: PixelRect, left: u32, top: u32, width: u32, height: u32) -> PixelRect {
    PixelRect {
        x: r.x + r.width * left / 100,
        y: r.y + r.height * top / 100,
        width: (r.width * width / 100).max(1),
        height: (r.height * height / 100).max(1),
    }
}

/// A shape that reads as `label` at a glance: a figure, a car, an animal…
fn draw_object(image: &mut RgbImage, label: &str, r: PixelRect) {
    const DARK: [u8; 3] = [36, 36, 40];
    match label {
        "person" => {
            image.fill_rect(part(r, 30, 0, 40, 18), [224, 188, 160]);
            image.fill_rect(part(r, 15, 18, 70, 42), [60, 92, 160]);
            image.fill_rect(part(r, 20, 60, 25, 40), DARK);
            image.fill_rect(part(r, 55, 60, 25, 40), DARK);
        }
        "car" | "truck" | "bus" | "motorcycle" => {
            let body = match label {
                "car" => [176, 40, 44],
                "truck" => [228, 228, 224],
                _ => [230, 170, 40],
            };
            image.fill_rect(part(r, 18, 5, 60, 40), body.map(|c| c / 4 * 3));
            image.fill_rect(part(r, 24, 12, 48, 26), [150, 190, 220]);
            image.fill_rect(part(r, 0, 40, 100, 42), body);
            image.fill_rect(part(r, 10, 78, 20, 22), DARK);
            image.fill_rect(part(r, 70, 78, 20, 22), DARK);
        }
        "dog" | "cat" => {
            let fur = if label == "dog" { [150, 104, 60] } else { [90, 90, 96] };
            image.fill_rect(part(r, 0, 35, 78, 40), fur);
            image.fill_rect(part(r, 66, 5, 34, 40), fur);
            for left in [6, 28, 48, 66] {
                image.fill_rect(part(r, left, 75, 10, 25), fur.map(|c| c / 2));
            }
        }
        "bicycle" => {
            image.draw_rect(part(r, 0, 45, 40, 55), 2, DARK);
            image.draw_rect(part(r, 60, 45, 40, 55), 2, DARK);
            image.fill_rect(part(r, 20, 45, 60, 8), [40, 120, 200]);
            image.fill_rect(part(r, 48, 10, 8, 40), [40, 120, 200]);
        }
        "package" => {
            image.fill_rect(r, [180, 132, 80]);
            image.fill_rect(part(r, 0, 42, 100, 16), [214, 190, 140]);
        }
        _ => image.fill_rect(r, [200, 200, 200]),
    }
}

/// Deterministic choices from a camera id (FNV-1a, then xorshift): the
/// same scene at every start, with no state kept anywhere.
struct Picker(u64);

impl Picker {
    fn new(id: &str) -> Self {
        let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        Self(hash | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `low..high` (`low` when the range is empty).
    fn within(&mut self, low: u32, high: u32) -> u32 {
        low + (self.next() % u64::from(high.saturating_sub(low).max(1))) as u32
    }

    fn one<'a, T>(&mut self, options: &'a [T]) -> &'a T {
        &options[(self.next() % options.len() as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::model::BoundingBox;

    fn decode(jpeg: &[u8]) -> (Vec<u8>, u16, u16) {
        let mut decoder = jpeg_decoder::Decoder::new(jpeg);
        let pixels = decoder.decode().expect("a JPEG");
        let info = decoder.info().expect("info");
        (pixels, info.width, info.height)
    }

    #[test]
    fn each_camera_has_its_own_scene_and_keeps_it() {
        let door = Scene::for_camera("front_door").snapshot(&[]).expect("encodes");
        assert_eq!(door, Scene::for_camera("front_door").snapshot(&[]).expect("encodes"), "the same every time");
        assert_ne!(
            door,
            Scene::for_camera("driveway").snapshot(&[]).expect("encodes"),
            "another camera, another scene"
        );
        let (_, width, height) = decode(&door);
        assert_eq!((u32::from(width), u32::from(height)), (WIDTH, HEIGHT));
    }

    #[test]
    fn objects_are_drawn_at_their_boxes_and_outlined() {
        let scene = Scene::for_camera("garage");
        let car = DetectedObject {
            label: "car".to_owned(),
            confidence: 0.91,
            bbox: BoundingBox { x: 200.0, y: 150.0, width: 160.0, height: 100.0 },
        };
        let (empty, _, _) = decode(&scene.snapshot(&[]).expect("encodes"));
        let (drawn, _, _) = decode(&scene.snapshot(std::slice::from_ref(&car)).expect("encodes"));
        let at = |pixels: &[u8], x: usize, y: usize| {
            let i = (y * WIDTH as usize + x) * 3;
            [pixels[i], pixels[i + 1], pixels[i + 2]]
        };
        // The car's body (red) in the lower middle of its box; the scene elsewhere.
        let body = at(&drawn, 280, 220);
        assert!(body[0] > 140 && body[1] < 90, "a red body: {body:?}");
        assert_eq!(at(&drawn, 20, 20), at(&empty, 20, 20), "the sky is untouched");
        // The outline (amber) on the box's left edge.
        let edge = at(&drawn, 201, 200);
        assert!(edge[0] > 200 && edge[1] > 130 && edge[2] < 90, "amber outline: {edge:?}");
    }

    #[test]
    fn boxes_past_the_frame_are_clipped_not_refused() {
        let wild = DetectedObject {
            label: "zebra".to_owned(),
            confidence: 0.5,
            bbox: BoundingBox { x: 630.0, y: 350.0, width: 5000.0, height: 900.0 },
        };
        let rect = pixel_rect(&wild);
        assert!(rect.x + rect.width <= WIDTH && rect.y + rect.height <= HEIGHT, "{rect:?}");
        Scene::for_camera("yard").snapshot(&[wild]).expect("still a picture");
    }
}
