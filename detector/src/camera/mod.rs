//! Real cameras: one task per camera, from ffmpeg's frames to events.
//!
//! * [`source`] — what a SOURCE names and the ffmpeg child that decodes it.
//! * [`pipeline`] — the analysis stages, episodes, snapshots and the event.
//! * [`detect`] — the object stage: the model on frames with motion.
//!
//! This module is the supervisor around them. [`check_all`] checks every
//! `--camera` before anything starts and makes each camera's [`Plan`];
//! [`watch_all`] runs them, and on a reload compares the new plans with the
//! running ones: only cameras whose plan changed restart, added ones start,
//! removed ones end their event in progress and stop. Each camera
//! runs [`watch`]: start ffmpeg, feed every frame to the pipeline (on the
//! blocking pool), hand finished events to the event manager, and when the
//! source stops, decide what happens next:
//!
//! | source | ends or fails | state |
//! | --- | --- | --- |
//! | stream, device, filter graph | restarted after a capped back-off (1 s doubling to 30 s) | `reconnecting` (it had delivered frames) or `failed` (it delivered none) |
//! | file | ends its camera (replayed at once with `--loop`) | `ended`, or `failed` when ffmpeg reported an error |
//!
//! Whenever the source stops, the episode in progress is reported and the
//! motion background is forgotten, so a restarted or looped source warms up
//! again instead of reporting the jump as motion. On shutdown the camera
//! stops ffmpeg and reports its episode in progress before returning, so the
//! manager commits it before the detector exits.

pub mod detect;
pub mod pipeline;
pub mod source;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use shared::Timestamp;
use shared::config::DataDir;
use shared::redact::SecretUrl;
use shared::wire::CameraState;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vision::episode::EpisodeConfig;
use vision::motion::MotionConfig;

use self::detect::{ObjectStage, SharedModel};
use self::pipeline::{Analysis, Frame, MotionStage, Pipeline, Stage};
use self::source::{DecodeSettings, FrameSource, SourceKind};
use crate::cli::{Args, ObjectFilter};
use crate::manager::Command;
use crate::stats::{Stats, elapsed_ms};

/// `metadata.end_reason` of an event ended because the detector stopped.
pub const SHUTDOWN_REASON: &str = "shutdown";

/// First delay before restarting a failed live source.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest delay between restarts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// One `--camera ID=SOURCE`.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraSpec {
    pub id: String,
    pub source: SourceKind,
}

/// Everything one camera runs with. A reload restarts exactly the cameras
/// whose plan differs; the others are not touched.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub spec: CameraSpec,
    decode: DecodeSettings,
    loop_files: bool,
    motion: MotionConfig,
    episodes: EpisodeConfig,
    /// `None` with `--no-objects`.
    objects: Option<ObjectFilter>,
}

/// How a camera's watch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraEnd {
    /// Shutdown (or a reload) asked it to stop.
    Stopped,
    /// Its file ended.
    Ended,
    /// Its file could not be played to the end.
    Failed(String),
}

/// How one run of the source stopped.
enum RunEnd {
    Shutdown,
    /// ffmpeg closed its output; `Err` when it reported a failure.
    Closed(Result<(), String>),
    /// The frame stream broke (bad data, read error).
    Broken(String),
}

/// The real cameras of a run and the object model they share.
#[derive(Debug, Default)]
pub struct Cameras {
    pub plans: Vec<Plan>,
    /// `None` with `--no-objects`.
    pub model: Option<Arc<SharedModel>>,
}

/// Tells one camera to stop, and why: its event in progress ends with that
/// reason. Shutdown stops every camera through the parent token.
#[derive(Debug, Clone)]
struct Stop {
    token: CancellationToken,
    reason: Arc<OnceLock<&'static str>>,
}

impl Stop {
    fn child_of(shutdown: &CancellationToken) -> Self {
        Self { token: shutdown.child_token(), reason: Arc::default() }
    }

    fn stop(&self, reason: &'static str) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    fn reason(&self) -> &'static str {
        self.reason.get().copied().unwrap_or(SHUTDOWN_REASON)
    }
}

/// `metadata.end_reason` of an event ended because its camera left the
/// configuration.
pub const REMOVED_REASON: &str = "camera removed";
/// … or because its settings changed (a new event starts with the new ones).
pub const CHANGED_REASON: &str = "camera settings changed";

/// The cameras to watch and their object model, checked before anything
/// starts: ffmpeg runs, every file source opens, the model loads (unless
/// `--no-objects`, or `model` is already loaded). Empty with `--dry-run`.
pub async fn check_all(args: &Args, model: Option<Arc<SharedModel>>) -> anyhow::Result<Cameras> {
    if args.dry_run {
        for camera in args.cameras.iter().filter(|c| c.source.is_some()) {
            tracing::warn!(camera = %camera.id, "--dry-run ignores camera sources; simulating it");
        }
        return Ok(Cameras::default());
    }
    source::check_ffmpeg(&args.ffmpeg).await.map_err(anyhow::Error::msg)?;
    let decode = DecodeSettings { ffmpeg: args.ffmpeg.clone(), fps: args.detect_fps, width: args.detect_width };
    let mut plans = Vec::new();
    for camera in &args.cameras {
        let source = SourceKind::parse(camera.source.as_ref().map(SecretUrl::expose).unwrap_or_default());
        source.check().map_err(|e| anyhow::anyhow!("camera {}: {e}", camera.id))?;
        plans.push(Plan {
            spec: CameraSpec { id: camera.id.clone(), source },
            decode: decode.clone(),
            loop_files: args.loop_files,
            motion: args.motion.motion_config(&camera.id),
            episodes: args.motion.episode_config(&camera.id, args.detect_fps),
            objects: (!args.objects.no_objects).then(|| args.objects.filter(&camera.id)),
        });
    }
    if args.objects.no_objects {
        return Ok(Cameras { plans, model: None });
    }
    if let Some(model) = model {
        return Ok(Cameras { plans, model: Some(model) });
    }
    let path = args.objects.model_path();
    let loaded = tokio::task::spawn_blocking(move || objects::Model::load(&path)).await?;
    let model = loaded.map_err(|e| anyhow::anyhow!("{e}; or run with --no-objects for motion events only"))?;
    tracing::info!(model = %model.path().display(), "object model loaded");
    Ok(Cameras { plans, model: Some(SharedModel::new(model)) })
}

/// What [`watch_all`] gives every camera it starts.
#[derive(Debug, Clone)]
pub struct Context {
    pub data_dir: DataDir,
    pub stats: Arc<Stats>,
    pub producer: String,
    pub shutdown: CancellationToken,
}

/// A camera being watched.
struct Running {
    plan: Plan,
    stop: Stop,
    /// Tells this run's end from that of a run it replaced.
    generation: u64,
}

/// Runs one task per camera until every camera has ended (files) or
/// shutdown, applying each new set of cameras from `reloads`: added ones
/// start, removed ones end their events and stop, changed ones restart, the
/// rest run on untouched. Returns the cameras that failed, with why.
pub async fn watch_all(
    cameras: Cameras,
    mut reloads: mpsc::Receiver<Cameras>,
    context: Context,
    events: mpsc::Sender<Command>,
) -> Vec<(String, String)> {
    let mut tasks = tokio::task::JoinSet::new();
    let mut running: BTreeMap<String, Running> = BTreeMap::new();
    let mut generation = 0;
    let mut model = cameras.model;
    let mut start = |plan: Plan, model: &Option<Arc<SharedModel>>, tasks: &mut tokio::task::JoinSet<_>| {
        generation += 1;
        let stop = Stop::child_of(&context.shutdown);
        let watch = watch(plan.clone(), model.clone(), context.clone(), events.clone(), stop.clone());
        let id = plan.spec.id.clone();
        let this = generation;
        tasks.spawn(async move { (id, this, watch.await) });
        Running { plan, stop, generation: this }
    };
    for plan in cameras.plans {
        let id = plan.spec.id.clone();
        let camera = start(plan, &model, &mut tasks);
        running.insert(id, camera);
    }
    let mut failed = Vec::new();
    loop {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                None => break,
                Some(Ok((id, this, end))) => {
                    if running.get(&id).is_some_and(|r| r.generation == this) {
                        running.remove(&id);
                    }
                    if let CameraEnd::Failed(why) = end {
                        failed.push((id, why));
                    }
                }
                Some(Err(e)) => failed.push(("?".to_owned(), format!("camera task panicked: {e}"))),
            },
            Some(next) = reloads.recv(), if !context.shutdown.is_cancelled() => {
                model = next.model.or(model);
                let wanted: BTreeMap<String, Plan> = next.plans.into_iter().map(|p| (p.spec.id.clone(), p)).collect();
                let (mut added, mut removed, mut changed) = (Vec::new(), Vec::new(), Vec::new());
                running.retain(|id, camera| {
                    let keep = wanted.contains_key(id);
                    if !keep {
                        camera.stop.stop(REMOVED_REASON);
                        context.stats.set_camera_removed(id, REMOVED_REASON);
                        removed.push(id.clone());
                    }
                    keep
                });
                for (id, plan) in wanted {
                    match running.get(&id) {
                        Some(camera) if camera.plan == plan => continue,
                        Some(camera) => {
                            camera.stop.stop(CHANGED_REASON);
                            changed.push(id.clone());
                        }
                        None => added.push(id.clone()),
                    }
                    let camera = start(plan, &model, &mut tasks);
                    running.insert(id, camera);
                }
                tracing::info!(?added, ?removed, ?changed, unchanged = running.len() - added.len() - changed.len(), "cameras reloaded");
            }
        }
    }
    failed
}

/// Watches one camera until its file ends or it is told to stop.
async fn watch(
    plan: Plan,
    model: Option<Arc<SharedModel>>,
    context: Context,
    events: mpsc::Sender<Command>,
    stop: Stop,
) -> CameraEnd {
    let Plan { spec: camera, decode, loop_files, motion, episodes, objects } = plan;
    let stats = context.stats.clone();
    let mut stages: Vec<Box<dyn Stage>> = vec![Box::new(MotionStage::new(motion))];
    let objects = objects.zip(model).map(|(filter, model)| {
        stages.push(Box::new(ObjectStage::new(model, filter.clone(), &camera.id)));
        filter
    });
    let labels = objects.iter().flat_map(|f| &f.classes).filter_map(|&class| ::objects::labels::label_of(class));
    stats.set_camera_labels(&camera.id, labels.map(str::to_owned));
    let analysis = Analysis { fps: decode.fps, stages, episodes, objects };
    let pipeline = Pipeline::new(&camera.id, &context.producer, context.data_dir, analysis, stats.clone());
    let shutdown = stop.token.clone();
    let pipeline = Arc::new(Mutex::new(pipeline));
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = Instant::now();
        let (frames, end) = run_once(&camera, &decode, &pipeline, &events, &stats, &shutdown).await;
        // Whatever happened, the event of the episode in progress ends.
        let reason = matches!(end, RunEnd::Shutdown).then(|| stop.reason());
        let flushed = pipeline.lock().ok().and_then(|mut p| p.flush(reason));
        if let Some(end) = flushed {
            let _ = events.send(end).await;
        }
        let error = match end {
            RunEnd::Shutdown => return CameraEnd::Stopped,
            // A file that ends without a single frame would loop (or end)
            // without ever being watched: that is a failure.
            RunEnd::Closed(Ok(())) if !camera.source.is_live() && frames == 0 => {
                "the file has no video frames".to_owned()
            }
            RunEnd::Closed(Ok(())) if !camera.source.is_live() => {
                if loop_files {
                    tracing::info!(camera = %camera.id, frames, "file ended; looping");
                    continue;
                }
                tracing::info!(camera = %camera.id, frames, "file ended; camera done");
                stats.set_camera_state(&camera.id, CameraState::Ended, None);
                return CameraEnd::Ended;
            }
            RunEnd::Closed(Ok(())) => "source ended".to_owned(),
            RunEnd::Closed(Err(e)) | RunEnd::Broken(e) => e,
        };
        if !camera.source.is_live() {
            tracing::error!(camera = %camera.id, frames, "cannot play the file: {error}");
            stats.set_camera_state(&camera.id, CameraState::Failed, Some(error.clone()));
            return CameraEnd::Failed(error);
        }
        if started.elapsed() > MAX_BACKOFF {
            backoff = FIRST_BACKOFF;
        }
        let state = if frames > 0 { CameraState::Reconnecting } else { CameraState::Failed };
        tracing::warn!(camera = %camera.id, frames, retry_in_ms = backoff.as_millis() as u64, "source stopped: {error}");
        stats.set_camera_state(&camera.id, state, Some(error));
        stats.record_restart(&camera.id);
        tokio::select! {
            _ = shutdown.cancelled() => return CameraEnd::Stopped,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Runs the source once, until it stops or shutdown. Returns the frames it
/// delivered and how it stopped.
async fn run_once(
    camera: &CameraSpec,
    decode: &DecodeSettings,
    pipeline: &Arc<Mutex<Pipeline>>,
    events: &mpsc::Sender<Command>,
    stats: &Stats,
    shutdown: &CancellationToken,
) -> (u64, RunEnd) {
    let mut source = match FrameSource::start(&camera.id, &camera.source, decode) {
        Ok(source) => source,
        Err(e) => return (0, RunEnd::Broken(e.to_string())),
    };
    let mut frames = 0u64;
    let mut waiting_since = Instant::now();
    let end = loop {
        let next = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break RunEnd::Shutdown,
            next = source.next_frame() => next,
        };
        let image = match next {
            Ok(Some(image)) => image,
            Ok(None) => break RunEnd::Closed(Ok(())),
            Err(e) => break RunEnd::Broken(e.to_string()),
        };
        let decode_wait_ms = elapsed_ms(waiting_since);
        if frames == 0 {
            tracing::info!(camera = %camera.id, width = image.width(), height = image.height(), "camera up");
            stats.set_camera_state(&camera.id, CameraState::Up, None);
        }
        let frame = Frame { index: frames, seen_at: Timestamp::now(), image };
        frames += 1;
        let pipeline = pipeline.clone();
        let analysed = tokio::task::spawn_blocking(move || {
            pipeline.lock().map(|mut p| p.process(frame, decode_wait_ms)).map_err(|_| "pipeline poisoned")
        })
        .await;
        match analysed {
            Ok(Ok(changes)) => {
                for change in changes {
                    if events.send(change).await.is_err() {
                        break;
                    }
                }
                if events.is_closed() {
                    break RunEnd::Shutdown;
                }
            }
            Ok(Err(e)) => break RunEnd::Broken(e.to_owned()),
            Err(e) => break RunEnd::Broken(format!("frame analysis panicked: {e}")),
        }
        waiting_since = Instant::now();
    };
    let end = match end {
        RunEnd::Closed(_) => RunEnd::Closed(source.end(false).await),
        other => {
            let _ = source.end(true).await;
            other
        }
    };
    (frames, end)
}
