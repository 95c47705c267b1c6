//! The detector's command line (SPEC §4b) and its sections of
//! `lookout.toml` ([`SCHEMA`]: which key stands for which flag). Parsing
//! only: no side effects.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use shared::config::{DATA_DIR_ENV, DEFAULT_DATA_DIR, DataDir, parse_seconds};
use shared::model::validate_camera_id;
use shared::redact::SecretUrl;
use shared::retention::Policy;
use shared::settings::{CONFIG_ENV, CameraTables, Key, Schema, Section, Shape};
use vision::episode::EpisodeConfig;
use vision::motion::{MaskRect, MotionConfig};

/// Lookout detector: watches cameras (or simulates them with --dry-run),
/// commits every event to SQLite, appends it to events.jsonl and events.log,
/// and publishes it on a local socket for the webserver.
#[derive(Debug, Parser)]
#[command(name = "detector", version, about, long_about = None)]
pub struct Args {
    /// Simulate cameras: realistic events without any camera hardware.
    /// Events say so in metadata.source = "dry-run".
    #[arg(long)]
    pub dry_run: bool,

    /// Camera to watch, as ID=SOURCE (or just ID with --dry-run); repeatable.
    /// ID is 1-64 characters of [A-Za-z0-9_-]. SOURCE is anything ffmpeg
    /// opens: an rtsp:// (or http://, ...) URL, a video file, a device such as
    /// /dev/video0, or lavfi:GRAPH (an ffmpeg filter graph as a synthetic
    /// camera). With --dry-run only the id is used (default: four simulated
    /// cameras).
    #[arg(long = "camera", value_name = "ID[=SOURCE]", value_parser = parse_camera)]
    pub cameras: Vec<CameraArg>,

    /// Dry-run event rate over all cameras, in events per second.
    #[arg(long, value_name = "EVENTS_PER_SEC", default_value_t = 0.5, value_parser = parse_rate)]
    pub rate: f64,

    /// Stop after N events (default: run until Ctrl-C).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,

    /// Typical life of a dry-run event, in seconds: each is announced
    /// active, some gain a label mid-way, and it ends after a log-normal
    /// time around this (most a few seconds, a few up to a minute). 0
    /// reports each event whole, as one change (what benchmarks use).
    #[arg(long, value_name = "SECS", default_value = "4", value_parser = parse_seconds_or_zero)]
    pub event_secs: Duration,

    /// Directory for the database, logs and socket (created if missing).
    #[arg(long, value_name = "DIR", env = DATA_DIR_ENV, default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,

    /// Settings file; options on the command line replace its values
    /// [default: DATA_DIR/lookout.toml when present]. SIGHUP re-reads its
    /// cameras.
    #[arg(long, value_name = "FILE", env = CONFIG_ENV)]
    pub config: Option<PathBuf>,

    /// Also re-read the cameras when the settings file changes (checked
    /// every second), as on SIGHUP.
    #[arg(long)]
    pub watch_config: bool,

    /// Print the settings in force (file, command line, defaults) as TOML,
    /// passwords masked, and exit.
    #[arg(long)]
    pub print_config: bool,

    /// Socket to publish events on [default: DATA_DIR/detector.sock].
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// Log filter: error, warn, info, debug, trace, or a tracing directive
    /// such as "detector=debug" [default: $RUST_LOG, else info].
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,

    /// Log line format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    /// Frames a subscriber may have queued before it is disconnected as too
    /// slow (it catches up from the database when it reconnects).
    #[arg(long, value_name = "FRAMES", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub subscriber_queue: u32,

    /// Seconds between heartbeat frames (detector health and statistics).
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = parse_seconds)]
    pub heartbeat_secs: Duration,

    /// Pad each dry-run event with extra detected objects to about this many
    /// bytes of JSON (benchmarks with large events; at most ~20 KiB).
    #[arg(long, value_name = "BYTES", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=20_000))]
    pub payload_bytes: u32,

    /// Dry run without pictures: otherwise each event's snapshot is drawn
    /// (its camera's scene, its objects at their boxes) and written as a
    /// camera's would be. For benchmarks at thousands of events a second.
    #[arg(long)]
    pub no_snapshots: bool,

    /// Wait until N subscribers are connected before producing events. For
    /// tests and benchmarks that must see every event live.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub wait_subscribers: u32,

    /// Frames per second each camera is analysed at.
    #[arg(long, value_name = "FPS", default_value_t = 5.0, value_parser = parse_fps, help_heading = "Cameras")]
    pub detect_fps: f64,

    /// Width frames are scaled to for analysis and snapshots; the height
    /// keeps the source's aspect ratio.
    #[arg(long, value_name = "PIXELS", default_value_t = 320, value_parser = clap::value_parser!(u32).range(64..=1920), help_heading = "Cameras")]
    pub detect_width: u32,

    /// Replay video files from the start when they end (without it, a file's
    /// camera ends with the file, and the detector exits when all have).
    #[arg(long = "loop", help_heading = "Cameras")]
    pub loop_files: bool,

    /// The ffmpeg program that decodes camera sources.
    #[arg(long, value_name = "PATH", env = "LOOKOUT_FFMPEG", default_value = "ffmpeg", help_heading = "Cameras")]
    pub ffmpeg: PathBuf,

    #[command(flatten)]
    pub motion: MotionArgs,

    #[command(flatten)]
    pub objects: ObjectArgs,

    #[command(flatten)]
    pub retention: RetentionArgs,

    #[command(flatten, next_help_heading = "Cluster (NATS JetStream)")]
    pub nats: cluster::NatsArgs,

    /// Test hook: exit right after the Nth change reached the stream and
    /// before its acknowledgement is read (a crash between publish and ack).
    #[arg(long, value_name = "N", hide = true)]
    pub test_crash_after_publish: Option<u64>,

    #[command(subcommand)]
    pub command: Option<Subcommand>,
}

/// The detector's part of `lookout.toml`. Keys are the flags' names, in
/// snake case, except where the section already says it (`[motion]
/// threshold` is `--motion-threshold`); a camera's table takes its source
/// and every `[ID=]` setting under the flag's name (`motion_threshold = 30`
/// is `--motion-threshold ID=30`). Dry-run, test and benchmark knobs stay
/// flags.
pub const SCHEMA: Schema = Schema {
    top: &[Key::new("data_dir", "data-dir", Shape::Value)],
    sections: &[
        Section {
            name: "detector",
            keys: &[
                Key::new("socket", "socket", Shape::Value),
                Key::new("detect_fps", "detect-fps", Shape::Value),
                Key::new("detect_width", "detect-width", Shape::Value),
                Key::new("loop", "loop", Shape::Switch),
                Key::new("ffmpeg", "ffmpeg", Shape::Value),
                Key::new("model", "model", Shape::Value),
                Key::new("subscriber_queue", "subscriber-queue", Shape::Value),
                Key::new("heartbeat_secs", "heartbeat-secs", Shape::Value),
                Key::new("log_level", "log-level", Shape::Value),
                Key::new("log_format", "log-format", Shape::Value),
            ],
            empty_because: None,
        },
        Section {
            name: "motion",
            keys: &[
                Key::new("threshold", "motion-threshold", Shape::Value),
                Key::new("alpha", "motion-alpha", Shape::Value),
                Key::new("blur", "motion-blur", Shape::Value),
                Key::new("dilate", "motion-dilate", Shape::Value),
                Key::new("min_area", "motion-min-area", Shape::Value),
                Key::new("global_change", "global-change", Shape::Value),
                Key::new("warmup_frames", "warmup-frames", Shape::Value),
                Key::new("episode_start_frames", "episode-start-frames", Shape::Value),
                Key::new("episode_end_secs", "episode-end-secs", Shape::Value),
                Key::new("episode_max_secs", "episode-max-secs", Shape::Value),
                Key::new("dedup_secs", "dedup-secs", Shape::Value),
            ],
            empty_because: None,
        },
        Section {
            name: "objects",
            keys: &[
                Key::new("no_objects", "no-objects", Shape::Switch),
                Key::new("motion_events", "motion-events", Shape::Switch),
                Key::new("labels", "objects", Shape::Joined),
                Key::new("min_score", "min-score", Shape::Value),
                Key::new("min_area", "min-object-area", Shape::Value),
            ],
            empty_because: None,
        },
        cluster::NATS_SECTION,
        Section {
            name: "retain",
            keys: &[
                Key::new("days", "retain-days", Shape::Value),
                Key::new("cameras", "retain-camera", Shape::Pairs),
                Key::new("labels", "retain-label", Shape::Pairs),
                Key::new("max_disk", "max-disk", Shape::Value),
            ],
            empty_because: None,
        },
    ],
    cameras: Some(CameraTables {
        flag: "camera",
        keys: &[
            Key::new("masks", "mask", Shape::RepeatedJoined),
            Key::new("object_masks", "object-mask", Shape::RepeatedJoined),
            Key::new("labels", "objects", Shape::Joined),
            Key::new("min_score", "min-score", Shape::Value),
            Key::new("min_object_area", "min-object-area", Shape::Value),
            Key::new("motion_threshold", "motion-threshold", Shape::Value),
            Key::new("motion_alpha", "motion-alpha", Shape::Value),
            Key::new("motion_blur", "motion-blur", Shape::Value),
            Key::new("motion_dilate", "motion-dilate", Shape::Value),
            Key::new("motion_min_area", "motion-min-area", Shape::Value),
            Key::new("global_change", "global-change", Shape::Value),
            Key::new("warmup_frames", "warmup-frames", Shape::Value),
            Key::new("episode_start_frames", "episode-start-frames", Shape::Value),
            Key::new("episode_end_secs", "episode-end-secs", Shape::Value),
            Key::new("episode_max_secs", "episode-max-secs", Shape::Value),
            Key::new("dedup_secs", "dedup-secs", Shape::Value),
        ],
    }),
};

/// How long events are kept and how much disk they may take (SPEC §11).
/// The detector sweeps at start and every 10 minutes.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Retention")]
pub struct RetentionArgs {
    /// Days an ended event is kept (fractions allowed).
    #[arg(long, value_name = "DAYS", default_value = "30", value_parser = parse_days)]
    pub retain_days: Duration,

    /// Days the events of one camera are kept, as ID=DAYS; repeatable.
    #[arg(long = "retain-camera", value_name = "ID=DAYS", value_parser = parse_named_days)]
    pub retain_cameras: Vec<(String, Duration)>,

    /// Days events with this label are kept, as LABEL=DAYS (the label
    /// "motion" means events without any object); repeatable. A label rule
    /// wins over the camera's; with several labels the longest applies.
    #[arg(long = "retain-label", value_name = "LABEL=DAYS", value_parser = parse_named_days)]
    pub retain_labels: Vec<(String, Duration)>,

    /// Most bytes the database, snapshots and logs may hold together
    /// (e.g. 20GB, 500MiB); the oldest ended events go first when over.
    #[arg(long, value_name = "SIZE", value_parser = shared::retention::parse_size)]
    pub max_disk: Option<u64>,

    /// Seconds a retention "day" lasts (tests and soak runs: 60 makes
    /// --retain-days 1 mean a minute, and the logs rotate every minute).
    #[arg(long, value_name = "SECS", hide = true, value_parser = parse_seconds)]
    pub retention_day_secs: Option<Duration>,

    /// Seconds between sweeps.
    #[arg(long, value_name = "SECS", hide = true, default_value = "600", value_parser = parse_seconds)]
    pub sweep_secs: Duration,
}

impl RetentionArgs {
    pub fn policy(&self) -> Policy {
        let policy = Policy {
            default: self.retain_days,
            cameras: self.retain_cameras.iter().cloned().collect(),
            labels: self.retain_labels.iter().cloned().collect(),
            max_disk: self.max_disk,
            ..Policy::default()
        };
        match self.retention_day_secs {
            Some(day) => policy.scaled(day),
            None => policy,
        }
    }
}

fn parse_days(text: &str) -> Result<Duration, String> {
    shared::retention::parse_days(text).map_err(|e| e.to_string())
}

/// `NAME=DAYS`, NAME a camera id or a label.
fn parse_named_days(text: &str) -> Result<(String, Duration), String> {
    let (name, days) = text.split_once('=').ok_or_else(|| format!("{text:?}: write NAME=DAYS, e.g. person=90"))?;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b' ')) {
        return Err(format!("{name:?} is not a camera id or label"));
    }
    Ok((name.to_owned(), parse_days(days)?))
}

/// What else the detector binary does besides watching cameras.
#[derive(Debug, clap::Subcommand)]
pub enum Subcommand {
    /// Runs the object model on still pictures (any format ffmpeg reads) and
    /// prints one JSON line per picture: what it found, where, how sure, and
    /// the model time. Checks a model, or shows what a camera would see.
    Detect {
        /// The pictures.
        #[arg(value_name = "IMAGE", required = true)]
        images: Vec<PathBuf>,
        /// Least score a detection is printed with (0-1].
        #[arg(long, value_name = "SCORE", default_value_t = objects::model::CANDIDATE_SCORE, value_parser = parse_unit_fraction)]
        min_score: f32,
    },
}

/// Object detection settings (real cameras; SPEC §8). Settings written
/// `ID=VALUE` apply to that camera, plain ones to every other.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Object detection")]
pub struct ObjectArgs {
    /// The NanoDet ONNX model that ./scripts/fetch-model.sh builds
    /// [default: ~/.cache/lookout/models/nanodet-m-416.onnx].
    #[arg(long, value_name = "PATH", env = "LOOKOUT_MODEL", global = true)]
    pub model: Option<PathBuf>,

    /// Motion only: no object model, every motion episode is an event.
    #[arg(long)]
    pub no_objects: bool,

    /// Also keep motion episodes in which no wanted object was confirmed,
    /// as motion events (labels arrive as updates when objects show up).
    #[arg(long)]
    pub motion_events: bool,

    /// Labels that make an event, as [ID=]LABEL,LABEL… (COCO names such as
    /// person, car, dog) [default: person, bicycle, car, motorcycle, bus,
    /// truck, bird, cat, dog]; repeatable.
    #[arg(long = "objects", value_name = "[ID=]LABELS", value_parser = for_camera(parse_labels))]
    pub labels: Vec<PerCamera<Vec<String>>>,

    /// Least median score over a track for its object to count, as
    /// [ID=]SCORE (0-1); repeatable.
    #[arg(long, value_name = "[ID=]SCORE", value_parser = for_camera(parse_fraction))]
    pub min_score: Vec<PerCamera<f32>>,

    /// Smallest object counted, as [ID=]FRACTION of the frame; repeatable.
    #[arg(long, value_name = "[ID=]FRACTION", value_parser = for_camera(parse_fraction))]
    pub min_object_area: Vec<PerCamera<f32>>,

    /// Area of one camera where objects are ignored (an object is in it when
    /// the middle of its bottom edge is), as ID=x,y,width,height in
    /// fractions of the frame; repeatable.
    #[arg(long = "object-mask", value_name = "ID=X,Y,W,H", value_parser = parse_mask)]
    pub object_masks: Vec<(String, MaskRect)>,
}

/// The default least median score of a track.
pub const DEFAULT_MIN_SCORE: f32 = 0.5;

impl ObjectArgs {
    /// The model file: `--model`, else the cache `fetch-model.sh` fills.
    pub fn model_path(&self) -> PathBuf {
        self.model.clone().unwrap_or_else(default_model_path)
    }

    /// Object settings for one camera.
    pub fn filter(&self, camera_id: &str) -> ObjectFilter {
        let labels = per_camera(&self.labels, camera_id)
            .unwrap_or_else(|| objects::labels::DEFAULT_WANTED.map(str::to_owned).to_vec());
        ObjectFilter {
            classes: labels.iter().filter_map(|l| objects::labels::class_of(l)).collect(),
            min_score: per_camera(&self.min_score, camera_id).unwrap_or(DEFAULT_MIN_SCORE),
            min_area: per_camera(&self.min_object_area, camera_id).unwrap_or(0.0),
            masks: self.object_masks.iter().filter(|(id, _)| id == camera_id).map(|(_, m)| *m).collect(),
            motion_events: self.motion_events,
        }
    }
}

/// What one camera counts as an object.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectFilter {
    /// Wanted COCO classes.
    pub classes: Vec<usize>,
    pub min_score: f32,
    /// Fraction of the frame.
    pub min_area: f32,
    pub masks: Vec<MaskRect>,
    /// Keep motion episodes without a wanted object.
    pub motion_events: bool,
}

/// `$XDG_CACHE_HOME/lookout/models/…`, else `~/.cache/lookout/models/…`.
pub fn default_model_path() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("lookout").join("models").join(objects::model::MODEL_FILE)
}

/// A setting written `[ID=]VALUE`: for camera ID, or (plain) for every
/// camera that has none of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct PerCamera<T> {
    pub camera: Option<String>,
    pub value: T,
}

impl<T> PerCamera<T> {
    /// The setting for every camera.
    pub fn all(value: T) -> Self {
        Self { camera: None, value }
    }
}

/// Written back as it is read, so clap can show and re-read defaults.
impl<T: std::fmt::Display> std::fmt::Display for PerCamera<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.camera {
            Some(id) => write!(f, "{id}={}", self.value),
            None => write!(f, "{}", self.value),
        }
    }
}

/// The value given for `camera_id`, else the one given for all; the last
/// of each counts.
fn per_camera<T: Clone>(values: &[PerCamera<T>], camera_id: &str) -> Option<T> {
    let of =
        |wanted: Option<&str>| values.iter().rev().find(|v| v.camera.as_deref() == wanted).map(|v| v.value.clone());
    of(Some(camera_id)).or_else(|| of(None))
}

/// The `[ID=]VALUE` parser of a setting whose VALUE `parse` reads; a
/// camera id is what comes before '=' when there is one.
fn for_camera<T: 'static>(
    parse: fn(&str) -> Result<T, String>,
) -> impl Fn(&str) -> Result<PerCamera<T>, String> + Clone + Send + Sync + 'static {
    move |text| match text.split_once('=') {
        Some((id, value)) => {
            validate_camera_id(id).map_err(|e| format!("invalid camera id {id:?}: {}", e.reason))?;
            Ok(PerCamera { camera: Some(id.to_owned()), value: parse(value)? })
        }
        None => Ok(PerCamera::all(parse(text)?)),
    }
}

fn parse_labels(text: &str) -> Result<Vec<String>, String> {
    let list = text;
    let labels: Vec<String> = list.split(',').map(|l| l.trim().to_owned()).filter(|l| !l.is_empty()).collect();
    if labels.is_empty() {
        return Err("expected one or more labels, such as person,car".into());
    }
    if let Some(unknown) = labels.iter().find(|l| objects::labels::class_of(l).is_none()) {
        return Err(format!("{unknown:?} is not a label the model knows (COCO names such as person, car, dog, cat)"));
    }
    Ok(labels)
}

fn parse_fraction(text: &str) -> Result<f32, String> {
    parse_in(text, |v: f32| (0.0..=1.0).contains(&v), "must be a fraction from 0 to 1")
}

/// Motion detection and episode settings (real cameras). Each is written
/// `[ID=]VALUE`, like the object settings: with `ID=` for that camera, plain
/// for every other. Defaults are `vision`'s, where each is explained.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Motion detection")]
pub struct MotionArgs {
    /// Grey-level difference from the background that counts as change (1-255).
    #[arg(long, value_name = "[ID=]LEVELS", default_values_t = [PerCamera::all(MotionConfig::default().threshold)], value_parser = for_camera(parse_level))]
    pub motion_threshold: Vec<PerCamera<u8>>,

    /// Background learning rate per frame (0-1]: higher follows slow changes
    /// faster but absorbs slow-moving objects sooner.
    #[arg(long, value_name = "[ID=]RATE", default_values_t = [PerCamera::all(MotionConfig::default().alpha)], value_parser = for_camera(parse_unit_fraction))]
    pub motion_alpha: Vec<PerCamera<f32>>,

    /// Box-blur radius in pixels before differencing (0 disables).
    #[arg(long, value_name = "[ID=]PIXELS", default_values_t = [PerCamera::all(MotionConfig::default().blur_radius)], value_parser = for_camera(parse_radius))]
    pub motion_blur: Vec<PerCamera<u32>>,

    /// Dilation of changed pixels, so parts of one object join up.
    #[arg(long, value_name = "[ID=]PIXELS", default_values_t = [PerCamera::all(MotionConfig::default().dilate)], value_parser = for_camera(parse_radius))]
    pub motion_dilate: Vec<PerCamera<u32>>,

    /// Smallest moving region kept, as a fraction of the frame (0-1].
    #[arg(long, value_name = "[ID=]FRACTION", default_values_t = [PerCamera::all(MotionConfig::default().min_area)], value_parser = for_camera(parse_unit_fraction))]
    pub motion_min_area: Vec<PerCamera<f32>>,

    /// Fraction of the frame that, changing at once, is a global change
    /// (lights, exposure): the background recalibrates, no event.
    #[arg(long, value_name = "[ID=]FRACTION", default_values_t = [PerCamera::all(MotionConfig::default().global_change)], value_parser = for_camera(parse_unit_fraction))]
    pub global_change: Vec<PerCamera<f32>>,

    /// Frames of background warm-up after a (re)start, without events.
    #[arg(long, value_name = "[ID=]FRAMES", default_values_t = [PerCamera::all(MotionConfig::default().warmup_frames)], value_parser = for_camera(parse_frames))]
    pub warmup_frames: Vec<PerCamera<u32>>,

    /// Area of one camera to ignore, as ID=x,y,width,height in fractions of
    /// the frame (e.g. door=0,0,1,0.1 for the top tenth); repeatable.
    #[arg(long = "mask", value_name = "ID=X,Y,W,H", value_parser = parse_mask)]
    pub masks: Vec<(String, MaskRect)>,

    /// Consecutive motion frames that start an episode (one event).
    #[arg(long, value_name = "[ID=]FRAMES", default_values_t = [PerCamera::all(EpisodeConfig::default().start_frames)], value_parser = for_camera(parse_frames))]
    pub episode_start_frames: Vec<PerCamera<u32>>,

    /// Seconds without motion that end an episode.
    #[arg(long, value_name = "[ID=]SECS", default_value = "2", value_parser = for_camera(parse_seconds))]
    pub episode_end_secs: Vec<PerCamera<Duration>>,

    /// Longest episode; longer motion is reported in parts.
    #[arg(long, value_name = "[ID=]SECS", default_value = "30", value_parser = for_camera(parse_seconds))]
    pub episode_max_secs: Vec<PerCamera<Duration>>,

    /// Seconds after an episode during which new motion on the same camera is
    /// not a new event (0 disables).
    #[arg(long, value_name = "[ID=]SECS", default_value = "2", value_parser = for_camera(parse_seconds_or_zero))]
    pub dedup_secs: Vec<PerCamera<Duration>>,
}

impl MotionArgs {
    /// Motion settings for one camera (its masks included).
    pub fn motion_config(&self, camera_id: &str) -> MotionConfig {
        let d = MotionConfig::default();
        MotionConfig {
            alpha: per_camera(&self.motion_alpha, camera_id).unwrap_or(d.alpha),
            threshold: per_camera(&self.motion_threshold, camera_id).unwrap_or(d.threshold),
            blur_radius: per_camera(&self.motion_blur, camera_id).unwrap_or(d.blur_radius),
            dilate: per_camera(&self.motion_dilate, camera_id).unwrap_or(d.dilate),
            min_area: per_camera(&self.motion_min_area, camera_id).unwrap_or(d.min_area),
            global_change: per_camera(&self.global_change, camera_id).unwrap_or(d.global_change),
            warmup_frames: per_camera(&self.warmup_frames, camera_id).unwrap_or(d.warmup_frames),
            masks: self.masks.iter().filter(|(id, _)| id == camera_id).map(|(_, m)| *m).collect(),
        }
    }

    /// One camera's episode settings in frames at `fps`.
    pub fn episode_config(&self, camera_id: &str, fps: f64) -> EpisodeConfig {
        let frames = |d: Duration| (d.as_secs_f64() * fps).round().clamp(0.0, u32::MAX as f64) as u32;
        let secs = |values: &[PerCamera<Duration>], default: u64| {
            per_camera(values, camera_id).unwrap_or(Duration::from_secs(default))
        };
        EpisodeConfig {
            start_frames: per_camera(&self.episode_start_frames, camera_id)
                .unwrap_or(EpisodeConfig::default().start_frames),
            end_frames: frames(secs(&self.episode_end_secs, 2)).max(1),
            max_frames: frames(secs(&self.episode_max_secs, 30)).max(1),
            dedup_frames: frames(secs(&self.dedup_secs, 2)),
        }
    }
}

fn parse_level(text: &str) -> Result<u8, String> {
    let level: u8 = text.trim().parse().map_err(|_| format!("{text:?} is not a grey level (1-255)"))?;
    if level == 0 { Err("must be a grey level from 1 to 255".into()) } else { Ok(level) }
}

fn parse_radius(text: &str) -> Result<u32, String> {
    parse_whole(text, 0..=10, "pixels from 0 to 10")
}

fn parse_frames(text: &str) -> Result<u32, String> {
    parse_whole(text, 1..=1000, "frames from 1 to 1000")
}

fn parse_whole(text: &str, range: std::ops::RangeInclusive<u32>, what: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(format!("{text:?}: must be a whole number of {what}")),
    }
}

impl Args {
    /// Checks what clap cannot: real cameras need a SOURCE each, and ids are
    /// unique.
    pub fn check_cameras(&self) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        if let Some(twice) = self.cameras.iter().find(|c| !seen.insert(c.id.as_str())) {
            return Err(format!("camera {:?} is given twice", twice.id));
        }
        if self.dry_run {
            return Ok(());
        }
        if self.cameras.is_empty() {
            return Err("no cameras: give --camera ID=SOURCE (repeatable), or --dry-run to simulate cameras".into());
        }
        match self.cameras.iter().find(|c| c.source.is_none()) {
            Some(c) => Err(format!(
                "camera {:?} has no SOURCE: write --camera {}=SOURCE (an rtsp:// URL, a video file, /dev/video0 or lavfi:GRAPH), or use --dry-run",
                c.id, c.id
            )),
            None => Ok(()),
        }
    }

    pub fn data_dir(&self) -> DataDir {
        DataDir::new(&self.data_dir)
    }

    pub fn socket_path(&self) -> PathBuf {
        self.socket.clone().unwrap_or_else(|| self.data_dir().default_socket())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// One `--camera ID[=SOURCE]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraArg {
    pub id: String,
    /// Shown only redacted: a stream URL may hold a password.
    pub source: Option<SecretUrl>,
}

fn parse_camera(text: &str) -> Result<CameraArg, String> {
    let (id, source) = match text.split_once('=') {
        Some((id, "")) => {
            return Err(format!("camera {id:?} has an empty SOURCE after '='"));
        }
        Some((id, source)) => (id, Some(SecretUrl::new(source))),
        None => (text, None),
    };
    validate_camera_id(id).map_err(|e| format!("invalid camera id {id:?}: {}", e.reason))?;
    Ok(CameraArg { id: id.to_owned(), source })
}

fn parse_fps(text: &str) -> Result<f64, String> {
    parse_in(text, |fps| (0.2..=30.0).contains(&fps), "must be between 0.2 and 30 frames per second")
}

fn parse_unit_fraction(text: &str) -> Result<f32, String> {
    parse_in(text, |v| v > 0.0 && v <= 1.0, "must be a fraction greater than 0 and at most 1")
}

/// A finite number that `valid` accepts; otherwise `rule` says why not.
fn parse_in<T: std::str::FromStr + Into<f64> + Copy>(
    text: &str,
    valid: impl Fn(T) -> bool,
    rule: &str,
) -> Result<T, String> {
    let value: T = text.parse().map_err(|_| format!("{text:?} is not a number"))?;
    if value.into().is_finite() && valid(value) { Ok(value) } else { Err(rule.to_owned()) }
}

fn parse_seconds_or_zero(text: &str) -> Result<Duration, String> {
    if text.trim().parse::<f64>() == Ok(0.0) { Ok(Duration::ZERO) } else { parse_seconds(text) }
}

fn parse_mask(text: &str) -> Result<(String, MaskRect), String> {
    let (id, rect) = text.split_once('=').ok_or("expected ID=x,y,width,height")?;
    validate_camera_id(id).map_err(|e| format!("invalid camera id {id:?}: {}", e.reason))?;
    Ok((id.to_owned(), MaskRect::parse(rect)?))
}

fn parse_rate(text: &str) -> Result<f64, String> {
    parse_in(
        text,
        |rate| rate > 0.0 && rate <= 100_000.0,
        "must be greater than 0 and at most 100000 events per second",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn cameras_parse_with_and_without_source() {
        assert_eq!(parse_camera("door"), Ok(CameraArg { id: "door".into(), source: None }));
        assert_eq!(
            parse_camera("door=rtsp://cam/1?a=b"),
            Ok(CameraArg { id: "door".into(), source: Some("rtsp://cam/1?a=b".into()) })
        );
        assert!(parse_camera("bad id").is_err());
        assert!(parse_camera("door=").is_err());
        assert!(parse_camera("").is_err());
    }

    #[test]
    fn object_settings_per_camera_override_the_plain_ones() {
        let args = Args::try_parse_from([
            "detector",
            "--camera",
            "door=a.mp4",
            "--camera",
            "yard=b.mp4",
            "--objects",
            "person,car",
            "--objects",
            "yard=cat, dog",
            "--min-score",
            "door=0.7",
            "--object-mask",
            "yard=0,0,1,0.2",
        ])
        .expect("parses");
        let (door, yard) = (args.objects.filter("door"), args.objects.filter("yard"));
        assert_eq!((door.classes, door.min_score, door.masks.len()), (vec![0, 2], 0.7, 0));
        assert_eq!((yard.classes, yard.min_score, yard.masks.len()), (vec![15, 16], DEFAULT_MIN_SCORE, 1));
        let plain =
            Args::try_parse_from(["detector", "--camera", "door=a.mp4"]).expect("parses").objects.filter("door");
        assert_eq!(plain.classes.len(), objects::labels::DEFAULT_WANTED.len());
        assert!(!plain.motion_events);
        for bad in [
            &["--objects", "unicorn"][..],
            &["--objects", "door="],
            &["--min-score", "1.5"],
            &["--min-score", "bad id=0.5"],
        ] {
            let mut argv = vec!["detector", "--camera", "door=a.mp4"];
            argv.extend_from_slice(bad);
            assert!(Args::try_parse_from(&argv).is_err(), "{bad:?}");
        }
        let err = parse_labels("persn").expect_err("a typo");
        assert!(err.contains("\"persn\" is not a label"), "{err}");
    }

    #[test]
    fn rate_and_interval_bounds() {
        assert_eq!(parse_rate("2.5"), Ok(2.5));
        for bad in ["0", "-1", "nan", "inf", "abc", "1e9"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
        assert!(Args::try_parse_from(["detector", "--dry-run", "--heartbeat-secs", "0.01"]).is_err());
        let args = Args::try_parse_from(["detector", "--dry-run", "--heartbeat-secs", "1"]).expect("parses");
        assert_eq!(args.heartbeat_secs, Duration::from_secs(1));
    }

    #[test]
    fn real_cameras_need_sources_and_unique_ids() {
        let check = |argv: &[&str]| Args::try_parse_from(argv).expect("parses").check_cameras();
        assert!(check(&["detector"]).expect_err("no cameras").contains("--camera ID=SOURCE"));
        assert!(check(&["detector", "--camera", "door"]).expect_err("no source").contains("door"));
        assert!(check(&["detector", "--camera", "a=x", "--camera", "a=y"]).expect_err("twice").contains("twice"));
        assert_eq!(check(&["detector", "--camera", "door=clip.mp4"]), Ok(()));
        assert_eq!(check(&["detector", "--dry-run", "--camera", "door"]), Ok(()));
    }

    #[test]
    fn motion_settings_per_camera_override_the_plain_ones() {
        let args = Args::try_parse_from([
            "detector",
            "--camera",
            "door=a.mp4",
            "--motion-threshold",
            "30",
            "--motion-threshold",
            "door=40",
            "--episode-end-secs",
            "door=1",
        ])
        .expect("parses");
        assert_eq!(
            (args.motion.motion_config("door").threshold, args.motion.motion_config("yard").threshold),
            (40, 30)
        );
        assert_eq!(args.motion.episode_config("door", 5.0).end_frames, 5);
        assert_eq!(
            args.motion.episode_config("yard", 5.0),
            EpisodeConfig::default(),
            "the default where none is given"
        );
        assert_eq!(args.motion.motion_config("yard").alpha, MotionConfig::default().alpha);
        for bad in [&["--motion-threshold", "door=0"][..], &["--warmup-frames", "bad id=3"], &["--motion-blur", "11"]] {
            let mut argv = vec!["detector", "--camera", "door=a.mp4"];
            argv.extend_from_slice(bad);
            assert!(Args::try_parse_from(&argv).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn motion_defaults_are_vision_defaults_and_masks_go_to_their_camera() {
        let args = Args::try_parse_from(["detector", "--camera", "a=x.mp4", "--mask", "a=0,0,1,0.1"]).expect("parses");
        let a = args.motion.motion_config("a");
        assert_eq!(
            a,
            MotionConfig {
                masks: vec![MaskRect { x: 0.0, y: 0.0, width: 1.0, height: 0.1 }],
                ..MotionConfig::default()
            }
        );
        assert_eq!(args.motion.motion_config("b"), MotionConfig::default());
        assert_eq!(args.motion.episode_config("a", 5.0), EpisodeConfig::default());
        for bad in [
            &["--detect-fps", "0"][..],
            &["--detect-fps", "100"],
            &["--detect-width", "10"],
            &["--motion-threshold", "0"],
            &["--motion-alpha", "1.5"],
            &["--mask", "a=0,0,2,1"],
            &["--mask", "0,0,1,1"],
            &["--dedup-secs", "-1"],
        ] {
            let mut argv = vec!["detector", "--camera", "a=x.mp4"];
            argv.extend_from_slice(bad);
            assert!(Args::try_parse_from(&argv).is_err(), "{bad:?}");
        }
        let args = Args::try_parse_from(["detector", "--camera", "a=x.mp4", "--dedup-secs", "0"]).expect("0 disables");
        assert_eq!(args.motion.episode_config("a", 5.0).dedup_frames, 0);
    }
}
