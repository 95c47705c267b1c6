//! Micro-benchmarks of the per-event hot paths: `cargo bench -p webserver`.
//!
//! * change → WebSocket envelope (the one serialisation per change),
//! * socket frame encode and decode (detector → webserver),
//! * fan-out of one message to 1,000 in-process client queues.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use shared::model::{BoundingBox, DetectedObject, EventMetadata, EventSource};
use shared::wire::frame::{self, Decoded, Frame};
use shared::{Change, ChangeKind, EventState, NewEvent, Timestamp};
use webserver::stream::fanout::{Fanout, Outgoing};
use webserver::stream::messages;

fn change() -> Change {
    let now = Timestamp::from_unix_ms(1_795_626_196_123);
    let event = NewEvent {
        event_id: "evt_1795626196123_59f2".into(),
        camera_id: "front_door".into(),
        timestamp: now,
        state: EventState::Ended,
        end_time: Some(now),
        motion_confidence: 0.713,
        detected_objects: vec![
            DetectedObject {
                label: "person".into(),
                confidence: 0.91,
                bbox: BoundingBox { x: 410.0, y: 220.0, width: 150.0, height: 360.0 },
            },
            DetectedObject {
                label: "car".into(),
                confidence: 0.97,
                bbox: BoundingBox { x: 1530.0, y: 25.0, width: 351.0, height: 197.0 },
            },
        ],
        description: "Car and person at the front door (97% confident, 71% motion).".into(),
        image_path: None,
        metadata: EventMetadata {
            source: EventSource::DryRun,
            inference_ms: Some(39.22),
            frame_number: Some(1234),
            producer: Some("detector:5986".into()),
            end_reason: None,
        },
    }
    .commit(42, now);
    Change { kind: ChangeKind::New, event }
}

fn hot_paths(c: &mut Criterion) {
    let change = change();
    c.bench_function("change -> JSON envelope", |b| b.iter(|| messages::change_envelope(black_box(&change))));

    let frame = Frame::Change(change.clone());
    c.bench_function("frame encode (postcard)", |b| b.iter(|| frame::encode(black_box(&frame))));
    let bytes = frame::encode(&frame).expect("encode");
    c.bench_function("frame decode (postcard)", |b| {
        b.iter(|| match frame::decode(black_box(&bytes)) {
            Ok(Decoded::Complete { frame, .. }) => frame,
            _ => unreachable!("a valid frame"),
        })
    });

    let fanout = Fanout::new(1024, 10_000);
    let mut clients: Vec<_> = (0..1000).map(|_| fanout.register().expect("register")).collect();
    let message = Outgoing { seq: 1, text: messages::change_envelope(&change).into() };
    c.bench_function("fan-out to 1,000 clients (broadcast, each reads it)", |b| {
        b.iter(|| {
            fanout.broadcast(black_box(&message));
            // Each client reads it, as its writer would.
            for (_, feed) in &mut clients {
                let _ = black_box(feed.try_recv());
            }
        })
    });
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
