//! What the detector counts, for heartbeats and the session summary.
//!
//! Counters are atomics so the hot paths (event manager, socket hub) never
//! wait on each other; the inference-time window and the per-camera table sit
//! behind short-lived mutexes touched once per event or frame.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use shared::Timestamp;
use shared::stats::SampleWindow;
use shared::wire::{CameraState, CameraStatus, DetectorStats};

/// How many recent inference times the percentiles are taken over.
const INFERENCE_WINDOW: usize = 2048;

#[derive(Debug)]
pub struct Stats {
    pub started_at: Timestamp,
    pub events_created: AtomicU64,
    pub store_errors: AtomicU64,
    pub log_errors: AtomicU64,
    pub frames_processed: AtomicU64,
    last_seq: AtomicI64,
    pub subscribers_now: AtomicU64,
    pub subscribers_served: AtomicU64,
    pub slow_subscribers_dropped: AtomicU64,
    /// Events waiting for the database to accept writes.
    pub backlog: AtomicU64,
    inference_ms: Mutex<SampleWindow>,
    cameras: Mutex<BTreeMap<String, CameraCounters>>,
}

#[derive(Debug, Clone, Copy)]
struct CameraCounters {
    state: CameraState,
    events: u64,
    frames: u64,
}

impl Stats {
    pub fn new(camera_ids: impl IntoIterator<Item = String>) -> Self {
        let cameras = camera_ids
            .into_iter()
            .map(|id| (id, CameraCounters { state: CameraState::Up, events: 0, frames: 0 }))
            .collect();
        Self {
            started_at: Timestamp::now(),
            events_created: AtomicU64::new(0),
            store_errors: AtomicU64::new(0),
            log_errors: AtomicU64::new(0),
            frames_processed: AtomicU64::new(0),
            last_seq: AtomicI64::new(0),
            subscribers_now: AtomicU64::new(0),
            subscribers_served: AtomicU64::new(0),
            slow_subscribers_dropped: AtomicU64::new(0),
            backlog: AtomicU64::new(0),
            inference_ms: Mutex::new(SampleWindow::new(INFERENCE_WINDOW)),
            cameras: Mutex::new(cameras),
        }
    }

    /// Records `frames` examined on `camera`, each taking about `inference_ms`.
    pub fn record_frames(&self, camera: &str, frames: u64, inference_ms: f64) {
        self.frames_processed.fetch_add(frames, Ordering::Relaxed);
        if let Ok(mut window) = self.inference_ms.lock() {
            window.push(inference_ms);
        }
        if let Ok(mut cameras) = self.cameras.lock() {
            cameras
                .entry(camera.to_owned())
                .or_insert(CameraCounters { state: CameraState::Up, events: 0, frames: 0 })
                .frames += frames;
        }
    }

    /// Records a committed event.
    pub fn record_event(&self, camera: &str, seq: i64) {
        self.events_created.fetch_add(1, Ordering::Relaxed);
        self.last_seq.fetch_max(seq, Ordering::Relaxed);
        if let Ok(mut cameras) = self.cameras.lock()
            && let Some(c) = cameras.get_mut(camera)
        {
            c.events += 1;
        }
    }

    /// Per-camera event counts, by camera id.
    pub fn events_per_camera(&self) -> Vec<(String, u64)> {
        self.cameras.lock().map(|c| c.iter().map(|(id, c)| (id.clone(), c.events)).collect()).unwrap_or_default()
    }

    pub fn snapshot(&self) -> DetectorStats {
        let last_seq = self.last_seq.load(Ordering::Relaxed);
        DetectorStats {
            sent_at: Timestamp::now(),
            started_at: self.started_at,
            events_created: self.events_created.load(Ordering::Relaxed),
            last_seq: (last_seq > 0).then_some(last_seq),
            frames_processed: self.frames_processed.load(Ordering::Relaxed),
            inference_ms: self.inference_ms.lock().map(|w| w.percentiles()).unwrap_or_default(),
            cameras: self
                .cameras
                .lock()
                .map(|c| {
                    c.iter()
                        .map(|(id, c)| CameraStatus {
                            camera_id: id.clone(),
                            state: c.state,
                            events: c.events,
                            frames: c.frames,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            subscribers: self.subscribers_now.load(Ordering::Relaxed).min(u32::MAX as u64) as u32,
            slow_subscribers_dropped: self.slow_subscribers_dropped.load(Ordering::Relaxed),
            store_errors: self.store_errors.load(Ordering::Relaxed),
            backlog: self.backlog.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_events_per_camera() {
        let stats = Stats::new(["a".to_owned(), "b".to_owned()]);
        stats.record_event("a", 4);
        stats.record_event("a", 9);
        stats.record_frames("b", 10, 3.0);
        let snap = stats.snapshot();
        assert_eq!(snap.events_created, 2);
        assert_eq!(snap.last_seq, Some(9));
        assert_eq!(snap.frames_processed, 10);
        assert_eq!(stats.events_per_camera(), vec![("a".into(), 2), ("b".into(), 0)]);
    }
}
