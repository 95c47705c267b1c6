//! What the detector counts, for heartbeats and the session summary.
//!
//! Counters are atomics so the hot paths (event manager, socket hub) never
//! wait on each other; the inference-time window and the per-camera table sit
//! behind short-lived mutexes touched once per event or frame.
//!
//! Per camera it keeps the state of its source, frame and motion counts, and
//! a window of times per pipeline stage (`decode_wait`, `motion`,
//! `snapshot`): the "inference times" the webserver shows.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use shared::Timestamp;
use shared::stats::Timings;
use shared::wire::{CameraState, CameraStatus, DetectorStats, OutboxStatus, StageTimes};

/// How many recent inference and commit times the percentiles are taken over.
const TIMING_WINDOW: usize = 2048;
/// How many recent samples each camera's stage percentiles are taken over.
const STAGE_WINDOW: usize = 512;
/// The stage name for time spent waiting for the next decoded frame.
pub const DECODE_WAIT: &str = "decode_wait";

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
    inference: Mutex<Timings>,
    commit: Mutex<Timings>,
    /// From an event's start (its first motion frame) to its `new` being
    /// committed and published.
    announce: Mutex<Timings>,
    /// Events announced and not yet ended.
    active_events: AtomicI64,
    cameras: Mutex<BTreeMap<String, CameraCounters>>,
    /// Cluster mode's outbox, as its publisher last saw it.
    pub outbox: Mutex<Option<OutboxStatus>>,
}

#[derive(Debug)]
struct CameraCounters {
    state: CameraState,
    events: u64,
    frames: u64,
    motion_frames: u64,
    restarts: u64,
    last_error: Option<String>,
    /// In the order the stages first reported.
    stages: Vec<(&'static str, Timings)>,
    labels: Vec<String>,
    removed: bool,
}

impl CameraCounters {
    fn new() -> Self {
        Self {
            state: CameraState::Up,
            events: 0,
            frames: 0,
            motion_frames: 0,
            restarts: 0,
            last_error: None,
            stages: Vec::new(),
            labels: Vec::new(),
            removed: false,
        }
    }

    fn stage(&mut self, name: &'static str) -> &mut Timings {
        let index = match self.stages.iter().position(|(n, _)| *n == name) {
            Some(index) => index,
            None => {
                self.stages.push((name, Timings::new(STAGE_WINDOW)));
                self.stages.len() - 1
            }
        };
        &mut self.stages[index].1
    }
}

impl Stats {
    pub fn new(camera_ids: impl IntoIterator<Item = String>) -> Self {
        let cameras = camera_ids.into_iter().map(|id| (id, CameraCounters::new())).collect();
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
            inference: Mutex::new(Timings::new(TIMING_WINDOW)),
            commit: Mutex::new(Timings::new(TIMING_WINDOW)),
            announce: Mutex::new(Timings::new(TIMING_WINDOW)),
            active_events: AtomicI64::new(0),
            cameras: Mutex::new(cameras),
            outbox: Mutex::new(None),
        }
    }

    /// Runs `f` on `camera`'s counters (created on first use; the lookup
    /// allocates nothing for a known camera, as it runs once per frame).
    fn with_camera(&self, camera: &str, f: impl FnOnce(&mut CameraCounters)) {
        let Ok(mut cameras) = self.cameras.lock() else { return };
        match cameras.get_mut(camera) {
            Some(counters) => f(counters),
            None => f(cameras.entry(camera.to_owned()).or_insert_with(CameraCounters::new)),
        }
    }

    /// Records `frames` examined on `camera`, each taking about
    /// `inference_ms` (the dry run's simulated frames).
    pub fn record_frames(&self, camera: &str, frames: u64, inference_ms: f64) {
        self.frames_processed.fetch_add(frames, Ordering::Relaxed);
        push(&self.inference, inference_ms);
        self.with_camera(camera, |c| c.frames += frames);
    }

    /// Records one analysed camera frame: the time each stage took, and
    /// whether it showed motion. The analysis stages together (not the wait
    /// for the frame) are the detector's "inference time".
    pub fn record_frame(&self, camera: &str, stage_ms: &[(&'static str, f64)], motion: bool) {
        self.frames_processed.fetch_add(1, Ordering::Relaxed);
        push(&self.inference, analysis_ms(stage_ms));
        self.with_camera(camera, |c| {
            c.frames += 1;
            c.motion_frames += u64::from(motion);
            for &(name, ms) in stage_ms {
                c.stage(name).push_ms(ms);
            }
        });
    }

    /// Records the time of a stage that does not run every frame.
    pub fn record_stage(&self, camera: &str, stage: &'static str, ms: f64) {
        self.with_camera(camera, |c| c.stage(stage).push_ms(ms));
    }

    /// A camera's source changed state; `error` says why it is not up.
    /// Credentials in it are masked here, where every report of it starts
    /// (heartbeats, health, metrics, the summary).
    pub fn set_camera_state(&self, camera: &str, state: CameraState, error: Option<String>) {
        self.with_camera(camera, |c| {
            c.state = state;
            c.last_error = error.map(|e| shared::redact::redact(&e).into_owned());
            c.removed = false;
        });
    }

    /// A reload took `camera` out of the settings: it is listed as ended,
    /// for `why`, and as removed.
    pub fn set_camera_removed(&self, camera: &str, why: &str) {
        self.with_camera(camera, |c| {
            (c.state, c.last_error, c.removed) = (CameraState::Ended, Some(why.to_owned()), true);
        });
    }

    /// The object labels `camera` reports, for its count sensors.
    pub fn set_camera_labels(&self, camera: &str, labels: impl IntoIterator<Item = String>) {
        let labels = labels.into_iter().collect();
        self.with_camera(camera, |c| c.labels = labels);
    }

    /// A camera's source is being restarted.
    pub fn record_restart(&self, camera: &str) {
        self.with_camera(camera, |c| c.restarts += 1);
    }

    /// Records a committed change and how long its commit took; a `new`
    /// is one more event.
    pub fn record_change(&self, change: &shared::Change, commit_ms: f64) {
        let event = &change.event;
        push(&self.commit, commit_ms);
        self.last_seq.fetch_max(event.seq, Ordering::Relaxed);
        match (change.kind, event.state) {
            (shared::ChangeKind::New, state) => {
                self.events_created.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut cameras) = self.cameras.lock()
                    && let Some(c) = cameras.get_mut(&event.camera_id)
                {
                    c.events += 1;
                }
                if state == shared::EventState::Active {
                    self.active_events.fetch_add(1, Ordering::Relaxed);
                    let since_start = (Timestamp::now().unix_ms() - event.timestamp.unix_ms()).max(0);
                    push(&self.announce, since_start as f64);
                }
            }
            (shared::ChangeKind::End, _) => {
                self.active_events.fetch_sub(1, Ordering::Relaxed);
            }
            (shared::ChangeKind::Update, _) => {}
        }
    }

    /// Per camera: its id, events, source state and why it last failed.
    pub fn cameras(&self) -> Vec<(String, u64, CameraState, Option<String>)> {
        self.cameras
            .lock()
            .map(|c| c.iter().map(|(id, c)| (id.clone(), c.events, c.state, c.last_error.clone())).collect())
            .unwrap_or_default()
    }

    pub fn snapshot(&self) -> DetectorStats {
        let last_seq = self.last_seq.load(Ordering::Relaxed);
        DetectorStats {
            sent_at: Timestamp::now(),
            started_at: self.started_at,
            events_created: self.events_created.load(Ordering::Relaxed),
            last_seq: (last_seq > 0).then_some(last_seq),
            frames_processed: self.frames_processed.load(Ordering::Relaxed),
            inference_ms: read(&self.inference, Timings::percentiles),
            commit_ms: read(&self.commit, Timings::percentiles),
            inference_seconds: read(&self.inference, Timings::histogram),
            commit_seconds: read(&self.commit, Timings::histogram),
            // Ends of events from an earlier run (orphans) count down too.
            active_events: self.active_events.load(Ordering::Relaxed).max(0) as u64,
            announce_ms: read(&self.announce, Timings::percentiles),
            announce_seconds: read(&self.announce, Timings::histogram),
            cameras: self
                .cameras
                .lock()
                .map(|c| c.iter().map(|(id, c)| camera_status(id, c)).collect())
                .unwrap_or_default(),
            subscribers: self.subscribers_now.load(Ordering::Relaxed).min(u32::MAX as u64) as u32,
            slow_subscribers_dropped: self.slow_subscribers_dropped.load(Ordering::Relaxed),
            store_errors: self.store_errors.load(Ordering::Relaxed),
            backlog: self.backlog.load(Ordering::Relaxed),
            outbox: self.outbox.lock().ok().and_then(|o| o.clone()),
        }
    }
}

fn push(timings: &Mutex<Timings>, ms: f64) {
    if let Ok(mut timings) = timings.lock() {
        timings.push_ms(ms);
    }
}

fn read<T: Default>(timings: &Mutex<Timings>, what: impl Fn(&Timings) -> T) -> T {
    timings.lock().map(|t| what(&t)).unwrap_or_default()
}

/// Milliseconds since `since`, the unit every timing here is kept in.
pub fn elapsed_ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// Time spent analysing a frame: every stage but the wait for it.
pub fn analysis_ms(stage_ms: &[(&'static str, f64)]) -> f64 {
    stage_ms.iter().filter(|(name, _)| *name != DECODE_WAIT).map(|(_, ms)| ms).sum()
}

fn camera_status(id: &str, c: &CameraCounters) -> CameraStatus {
    CameraStatus {
        camera_id: id.to_owned(),
        state: c.state,
        events: c.events,
        frames: c.frames,
        motion_frames: c.motion_frames,
        restarts: c.restarts,
        last_error: c.last_error.clone(),
        labels: c.labels.clone(),
        removed: c.removed,
        stages: c
            .stages
            .iter()
            .map(|(name, timings)| StageTimes {
                stage: (*name).to_owned(),
                ms: timings.percentiles(),
                seconds: timings.histogram(),
            })
            .collect(),
    }
}

/// What the detector prints on exit.
pub struct Summary {
    pub stats: Arc<Stats>,
    pub elapsed: std::time::Duration,
    pub data_dir: String,
    /// Cameras whose file could not be played, and why.
    pub failed_cameras: Vec<(String, String)>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::sync::atomic::Ordering::Relaxed;
        let s = &self.stats;
        let secs = self.elapsed.as_secs_f64();
        let events = s.events_created.load(Relaxed);
        writeln!(f, "Lookout detector session summary")?;
        writeln!(f, "  duration        {secs:.1} s")?;
        writeln!(f, "  events created  {events} ({:.2}/s)", events as f64 / secs.max(1e-9))?;
        let frames = s.frames_processed.load(Relaxed);
        writeln!(f, "  frames analysed {frames} ({:.2}/s)", frames as f64 / secs.max(1e-9))?;
        for (camera, n, state, last_error) in s.cameras() {
            let down = state.is_down();
            let state =
                serde_json::to_value(state).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            match last_error.filter(|_| down) {
                Some(why) => writeln!(f, "    {camera:<14}{n:<8}{state}: {why}")?,
                None => writeln!(f, "    {camera:<14}{n:<8}{state}")?,
            }
        }
        for (camera, why) in &self.failed_cameras {
            writeln!(f, "  camera {camera} failed: {why}")?;
        }
        writeln!(
            f,
            "  subscribers     {} served, {} dropped as too slow",
            s.subscribers_served.load(Relaxed),
            s.slow_subscribers_dropped.load(Relaxed)
        )?;
        writeln!(
            f,
            "  errors          {} refused commits, {} log write failures, {} events kept in pending.jsonl",
            s.store_errors.load(Relaxed),
            s.log_errors.load(Relaxed),
            s.backlog.load(Relaxed)
        )?;
        writeln!(f, "  data            {} (events.db, events.jsonl, events.log)", self.data_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A change of an event of camera `camera` at `seq`, started 200 ms ago.
    fn change(camera: &str, seq: i64, kind: shared::ChangeKind, state: shared::EventState) -> shared::Change {
        let started = Timestamp::from_unix_ms(Timestamp::now().unix_ms() - 200);
        let event = shared::NewEvent {
            event_id: shared::model::new_event_id(started),
            camera_id: camera.into(),
            timestamp: started,
            state,
            end_time: (state == shared::EventState::Ended).then_some(started),
            motion_confidence: 0.5,
            detected_objects: Vec::new(),
            description: String::new(),
            image_path: None,
            metadata: shared::model::EventMetadata {
                source: shared::model::EventSource::Detector,
                inference_ms: None,
                frame_number: None,
                producer: None,
                end_reason: None,
            },
        }
        .commit(seq, Timestamp::now());
        shared::Change { kind, event }
    }

    #[test]
    fn counts_events_per_camera_and_the_active_ones() {
        use shared::{ChangeKind, EventState};
        let stats = Stats::new(["a".to_owned(), "b".to_owned()]);
        stats.record_change(&change("a", 4, ChangeKind::New, EventState::Ended), 0.5);
        stats.record_change(&change("a", 9, ChangeKind::New, EventState::Active), 1.5);
        assert_eq!(stats.snapshot().active_events, 1);
        stats.record_change(&change("a", 10, ChangeKind::Update, EventState::Active), 0.7);
        stats.record_change(&change("a", 11, ChangeKind::End, EventState::Ended), 0.7);
        stats.record_frames("b", 10, 3.0);
        let snap = stats.snapshot();
        assert_eq!(snap.events_created, 2, "changes are not events");
        assert_eq!(snap.active_events, 0);
        assert_eq!((snap.commit_ms.count, snap.commit_ms.max), (4, 1.5), "every change's commit");
        assert_eq!(snap.announce_ms.count, 1, "the active event's announcement");
        assert!((150.0..5000.0).contains(&snap.announce_ms.p50), "{:?}", snap.announce_ms);
        assert_eq!(snap.last_seq, Some(11));
        assert_eq!(snap.frames_processed, 10);
        assert_eq!(
            stats.cameras(),
            vec![("a".into(), 2, CameraState::Up, None), ("b".into(), 0, CameraState::Up, None)]
        );
    }

    #[test]
    fn camera_frames_feed_stage_times_and_inference() {
        let stats = Stats::new(["door".to_owned()]);
        stats.record_frame("door", &[(DECODE_WAIT, 200.0), ("motion", 0.5)], true);
        stats.record_frame("door", &[(DECODE_WAIT, 180.0), ("motion", 0.3)], false);
        stats.record_stage("door", "snapshot", 4.0);
        stats.record_restart("door");
        stats.set_camera_state("door", CameraState::Reconnecting, Some("source ended".into()));
        let snap = stats.snapshot();
        // Waiting for the next frame is not inference.
        assert_eq!(snap.inference_ms.max, 0.5);
        let door = &snap.cameras[0];
        assert_eq!((door.frames, door.motion_frames, door.restarts), (2, 1, 1));
        assert_eq!(door.state, CameraState::Reconnecting);
        assert_eq!(door.last_error.as_deref(), Some("source ended"));
        let names: Vec<&str> = door.stages.iter().map(|s| s.stage.as_str()).collect();
        assert_eq!(names, [DECODE_WAIT, "motion", "snapshot"]);
        assert_eq!(door.stages[0].ms.p50, 180.0);
    }
}
