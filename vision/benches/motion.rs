//! Motion detection cost per frame at the default detection size (SPEC for
//! issue 7: ≤ 1 ms per 320×180 frame). `cargo bench -p vision`.

use criterion::{Criterion, criterion_group, criterion_main};
use vision::motion::{MotionConfig, MotionDetector};
use vision::{GrayImage, RgbImage};

const W: u32 = 320;
const H: u32 = 180;

/// A textured scene with noise; `square` puts a bright moving object in it.
fn frame(seed: u32, square: Option<u32>) -> RgbImage {
    let mut data = Vec::with_capacity((W * H * 3) as usize);
    for y in 0..H {
        for x in 0..W {
            let noise = (x.wrapping_mul(7919) ^ y.wrapping_mul(104_729) ^ seed.wrapping_mul(2_654_435_761)) % 9;
            let mut v = (60 + ((x / 16 + y / 16) % 2) * 40 + noise) as u8;
            if let Some(sx) = square
                && (sx..sx + 40).contains(&x)
                && (70..110).contains(&y)
            {
                v = 230;
            }
            data.extend_from_slice(&[v, v, v]);
        }
    }
    RgbImage::new(W, H, data).expect("frame size")
}

fn warmed_up() -> MotionDetector {
    let mut detector = MotionDetector::new(MotionConfig::default());
    for seed in 0..10 {
        detector.process(&frame(seed, None).to_gray());
    }
    detector
}

fn motion(c: &mut Criterion) {
    let still: Vec<GrayImage> = (0..8).map(|s| frame(100 + s, None).to_gray()).collect();
    let moving: Vec<GrayImage> = (0..8).map(|s| frame(200 + s, Some(20 + s * 30)).to_gray()).collect();
    let rgb = frame(1, Some(100));

    c.bench_function("rgb_to_gray_320x180", |b| b.iter(|| rgb.to_gray()));
    let mut detector = warmed_up();
    let mut i = 0;
    c.bench_function("motion_still_320x180", |b| {
        b.iter(|| {
            i += 1;
            detector.process(&still[i % still.len()])
        })
    });
    let mut detector = warmed_up();
    c.bench_function("motion_moving_object_320x180", |b| {
        b.iter(|| {
            i += 1;
            detector.process(&moving[i % moving.len()])
        })
    });
    let boxes = [vision::image::PixelRect { x: 100, y: 70, width: 40, height: 40 }.into()];
    c.bench_function("snapshot_jpeg_320x180", |b| b.iter(|| vision::snapshot::encode_jpeg(&rgb, &boxes)));
}

criterion_group!(benches, motion);
criterion_main!(benches);
