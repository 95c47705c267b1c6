//! The detector's command line (SPEC §4b). Parsing only: no side effects.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use shared::config::{DATA_DIR_ENV, DEFAULT_DATA_DIR, DataDir, parse_seconds};
use shared::model::validate_camera_id;

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

    /// Camera to watch, as ID or ID=SOURCE; repeatable. ID is 1-64 characters
    /// of [A-Za-z0-9_-]. With --dry-run only the id is used (default: four
    /// simulated cameras).
    #[arg(long = "camera", value_name = "ID[=SOURCE]", value_parser = parse_camera)]
    pub cameras: Vec<CameraArg>,

    /// Dry-run event rate over all cameras, in events per second.
    #[arg(long, value_name = "EVENTS_PER_SEC", default_value_t = 0.5, value_parser = parse_rate)]
    pub rate: f64,

    /// Stop after N events (default: run until Ctrl-C).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,

    /// Directory for the database, logs and socket (created if missing).
    #[arg(long, value_name = "DIR", env = DATA_DIR_ENV, default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,

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

    /// Wait until N subscribers are connected before producing events. For
    /// tests and benchmarks that must see every event live.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub wait_subscribers: u32,
}

impl Args {
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
    pub source: Option<String>,
}

fn parse_camera(text: &str) -> Result<CameraArg, String> {
    let (id, source) = match text.split_once('=') {
        Some((id, "")) => {
            return Err(format!("camera {id:?} has an empty SOURCE after '='"));
        }
        Some((id, source)) => (id, Some(source.to_owned())),
        None => (text, None),
    };
    validate_camera_id(id).map_err(|e| format!("invalid camera id {id:?}: {}", e.reason))?;
    Ok(CameraArg { id: id.to_owned(), source })
}

fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text.parse().map_err(|_| format!("{text:?} is not a number"))?;
    if rate.is_finite() && rate > 0.0 && rate <= 100_000.0 {
        Ok(rate)
    } else {
        Err("must be greater than 0 and at most 100000 events per second".to_owned())
    }
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
    fn rate_and_interval_bounds() {
        assert_eq!(parse_rate("2.5"), Ok(2.5));
        for bad in ["0", "-1", "nan", "inf", "abc", "1e9"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
        assert!(Args::try_parse_from(["detector", "--dry-run", "--heartbeat-secs", "0.01"]).is_err());
        let args = Args::try_parse_from(["detector", "--dry-run", "--heartbeat-secs", "1"]).expect("parses");
        assert_eq!(args.heartbeat_secs, Duration::from_secs(1));
    }
}
