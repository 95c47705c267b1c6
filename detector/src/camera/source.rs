//! Camera sources: what a `--camera ID=SOURCE` names, and the `ffmpeg` child
//! that turns it into frames.
//!
//! ffmpeg does all the decoding (any codec, container or protocol it knows)
//! and the pacing: `fps=` emits frames at the detection rate, `scale=`
//! shrinks them to the detection width, and `-re` makes files and filter
//! graphs play at their native rate, as a camera would. Frames come back on
//! its stdout as PPM images (see [`vision::ppm`]); its stderr (errors only)
//! is kept for the camera's `last_error`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use shared::redact::{SecretUrl, redact};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use vision::RgbImage;
use vision::ppm::{self, Parsed};

/// How a source behaves when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// A network stream (`rtsp://`, `http://`, ...): restarted when it fails
    /// or ends. Its URL may hold a password, so it is shown only redacted.
    Stream(SecretUrl),
    /// A capture device such as `/dev/video0`: restarted like a stream.
    Device(PathBuf),
    /// An ffmpeg filter graph (`lavfi:GRAPH`): a synthetic live camera,
    /// restarted like a stream.
    FilterGraph(String),
    /// A video file: played once at its native rate (or looped).
    File(PathBuf),
}

impl SourceKind {
    pub fn parse(source: &str) -> Self {
        if let Some(graph) = source.strip_prefix("lavfi:") {
            Self::FilterGraph(graph.to_owned())
        } else if source.contains("://") {
            Self::Stream(SecretUrl::new(source))
        } else if source.starts_with("/dev/") {
            Self::Device(PathBuf::from(source))
        } else {
            Self::File(PathBuf::from(source))
        }
    }

    /// Files end; everything else is expected to run forever.
    pub fn is_live(&self) -> bool {
        !matches!(self, Self::File(_))
    }

    /// A file that cannot be read is a mistake on the command line, worth
    /// refusing before anything starts.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Self::File(path) => {
                std::fs::File::open(path).map(drop).map_err(|e| format!("cannot open {}: {e}", path.display()))
            }
            _ => Ok(()),
        }
    }

    /// ffmpeg's input options and input.
    fn input_args(&self) -> Vec<String> {
        let (options, input): (&[&str], String) = match self {
            // TCP survives lossy links; the socket timeout (µs) turns a
            // silent camera into an error instead of a hang.
            // The one place the real URL is used.
            Self::Stream(url) if url.expose().starts_with("rtsp://") || url.expose().starts_with("rtsps://") => {
                (&["-rtsp_transport", "tcp", "-timeout", "10000000"], url.expose().to_owned())
            }
            Self::Stream(url) => (&[], url.expose().to_owned()),
            Self::Device(path) => (&["-f", "v4l2"], path.display().to_string()),
            Self::FilterGraph(graph) => (&["-re", "-f", "lavfi"], graph.clone()),
            Self::File(path) => (&["-re"], path.display().to_string()),
        };
        options.iter().map(|&o| o.to_owned()).chain(["-i".to_owned(), input]).collect()
    }
}

/// How frames are produced.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeSettings {
    pub ffmpeg: PathBuf,
    pub fps: f64,
    pub width: u32,
}

impl DecodeSettings {
    /// The full ffmpeg command line for `source`.
    pub fn command_args(&self, source: &SourceKind) -> Vec<String> {
        let mut args: Vec<String> = ["-hide_banner", "-nostdin", "-loglevel", "error"].map(String::from).to_vec();
        args.extend(source.input_args());
        // Video only; scale keeps the aspect ratio with an even height.
        args.extend(
            [
                "-an",
                "-sn",
                "-dn",
                "-vf",
                &format!("fps={},scale={}:-2:flags=area", self.fps, self.width),
                "-pix_fmt",
                "rgb24",
                "-c:v",
                "ppm",
                "-f",
                "image2pipe",
                "pipe:1",
            ]
            .map(String::from),
        );
        args
    }
}

/// Checks that the ffmpeg program runs, before any camera starts.
pub async fn check_ffmpeg(ffmpeg: &Path) -> Result<(), String> {
    let output = Command::new(ffmpeg).arg("-version").stdin(Stdio::null()).output().await;
    match output {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!("{} -version failed ({})", ffmpeg.display(), out.status)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "ffmpeg not found (looked for {:?}): install it (Debian/Ubuntu: apt-get install ffmpeg) or pass --ffmpeg PATH",
            ffmpeg.display().to_string()
        )),
        Err(e) => Err(format!("cannot run {}: {e}", ffmpeg.display())),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot start ffmpeg: {0}")]
    Spawn(std::io::Error),
    #[error("reading frames from ffmpeg: {0}")]
    Read(std::io::Error),
    #[error("ffmpeg sent a bad frame: {0}")]
    BadFrame(String),
}

/// PPM headers are a few dozen bytes; more without a complete one is garbage.
const MAX_HEADER: usize = 64;
/// Lines of ffmpeg's stderr kept for error reports.
const STDERR_LINES: usize = 3;
/// How long ffmpeg may take to exit once its output is closed or it is killed.
const EXIT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A running ffmpeg child and its frame stream.
#[derive(Debug)]
pub struct FrameSource {
    child: Child,
    frames: BufReader<ChildStdout>,
    header: Vec<u8>,
    stderr_tail: Arc<Mutex<Vec<String>>>,
    stderr_task: Option<tokio::task::JoinHandle<()>>,
}

impl FrameSource {
    /// Starts ffmpeg for `source`. `camera` names it in logs.
    pub fn start(camera: &str, source: &SourceKind, settings: &DecodeSettings) -> Result<Self, SourceError> {
        let mut child = Command::new(&settings.ffmpeg)
            .args(settings.command_args(source))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(SourceError::Spawn)?;
        let stdout = child.stdout.take().ok_or_else(|| SourceError::Spawn(std::io::Error::other("no stdout pipe")))?;
        let stderr_tail = Arc::new(Mutex::new(Vec::new()));
        let stderr_task = child.stderr.take().map(|stderr| {
            let tail = stderr_tail.clone();
            let camera = camera.to_owned();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    // ffmpeg names the URL it failed on, password and all.
                    let line = redact(&line).into_owned();
                    tracing::warn!(camera = %camera, "ffmpeg: {line}");
                    if let Ok(mut tail) = tail.lock() {
                        if tail.len() == STDERR_LINES {
                            tail.remove(0);
                        }
                        tail.push(line);
                    }
                }
            })
        });
        Ok(Self {
            child,
            frames: BufReader::with_capacity(256 * 1024, stdout),
            header: Vec::new(),
            stderr_tail,
            stderr_task,
        })
    }

    /// The next frame, or `None` when ffmpeg closed its output.
    pub async fn next_frame(&mut self) -> Result<Option<RgbImage>, SourceError> {
        self.header.clear();
        let header = loop {
            let available = self.frames.fill_buf().await.map_err(SourceError::Read)?;
            if available.is_empty() {
                return if self.header.is_empty() {
                    Ok(None)
                } else {
                    Err(SourceError::BadFrame("stream ended inside a frame header".into()))
                };
            }
            // Look at the buffered bytes, but consume only the header's.
            let seen = self.header.len();
            let take = available.len().min(MAX_HEADER - seen);
            self.header.extend_from_slice(&available[..take]);
            match ppm::parse_header(&self.header).map_err(|e| SourceError::BadFrame(e.to_string()))? {
                Parsed::Complete(header) => {
                    self.frames.consume(header.header_len - seen);
                    break header;
                }
                Parsed::Incomplete if self.header.len() >= MAX_HEADER => {
                    return Err(SourceError::BadFrame("frame header too long".into()));
                }
                Parsed::Incomplete => self.frames.consume(take),
            }
        };
        let mut pixels = vec![0; header.body_len()];
        self.frames.read_exact(&mut pixels).await.map_err(SourceError::Read)?;
        RgbImage::new(header.width, header.height, pixels).map(Some).map_err(|e| SourceError::BadFrame(e.to_string()))
    }

    /// Ends ffmpeg — killed when `kill` (shutdown, or a stream we gave up
    /// on), else awaited after its output closed — and says how it ended:
    /// `Ok` for a clean or requested exit, otherwise its exit status and last
    /// error lines.
    pub async fn end(mut self, kill: bool) -> Result<(), String> {
        if kill {
            let _ = self.child.start_kill();
        }
        let status = match tokio::time::timeout(EXIT_WAIT, self.child.wait()).await {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => return Err(format!("cannot wait for ffmpeg: {e}")),
            Err(_) => {
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
                return Err("ffmpeg closed its output but did not exit; killed".into());
            }
        };
        if kill || status.success() {
            return Ok(());
        }
        // stderr closes when ffmpeg exits: wait for its last lines.
        if let Some(task) = self.stderr_task.take() {
            let _ = tokio::time::timeout(EXIT_WAIT, task).await;
        }
        let tail = self.stderr_tail.lock().map(|t| t.join(" / ")).unwrap_or_default();
        Err(if tail.is_empty() {
            format!("ffmpeg exited with {status}")
        } else {
            format!("ffmpeg exited with {status}: {tail}")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_classified_by_form() {
        assert_eq!(SourceKind::parse("rtsp://cam/1"), SourceKind::Stream("rtsp://cam/1".into()));
        assert_eq!(SourceKind::parse("/dev/video0"), SourceKind::Device("/dev/video0".into()));
        assert_eq!(SourceKind::parse("lavfi:testsrc=d=1"), SourceKind::FilterGraph("testsrc=d=1".into()));
        assert_eq!(SourceKind::parse("clips/yard.mp4"), SourceKind::File("clips/yard.mp4".into()));
        assert!(!SourceKind::parse("clips/yard.mp4").is_live());
        assert!(SourceKind::parse("lavfi:color").is_live());
    }

    #[test]
    fn ffmpeg_is_asked_for_paced_scaled_ppm() {
        let settings = DecodeSettings { ffmpeg: "ffmpeg".into(), fps: 5.0, width: 320 };
        let args = settings.command_args(&SourceKind::parse("lavfi:color=s=64x64"));
        let line = args.join(" ");
        assert!(line.contains("-re -f lavfi -i color=s=64x64"), "{line}");
        assert!(line.contains("fps=5,scale=320:-2"), "{line}");
        assert!(line.ends_with("-c:v ppm -f image2pipe pipe:1"), "{line}");
        let rtsp = settings.command_args(&SourceKind::parse("rtsp://cam/1")).join(" ");
        assert!(rtsp.contains("-rtsp_transport tcp") && !rtsp.contains("-re "), "{rtsp}");
    }

    #[test]
    fn only_ffmpeg_gets_a_stream_password() {
        let source = SourceKind::parse("rtsp://admin:SuperSecretPw@cam/1");
        assert!(format!("{source:?}").contains("admin:***@cam/1"), "{source:?}");
        assert!(!format!("{source:?}").contains("SuperSecretPw"));
        let settings = DecodeSettings { ffmpeg: "ffmpeg".into(), fps: 5.0, width: 320 };
        assert!(settings.command_args(&source).iter().any(|a| a == "rtsp://admin:SuperSecretPw@cam/1"));
    }

    #[test]
    fn unreadable_files_are_refused_up_front() {
        let missing = SourceKind::parse("/nonexistent/clip.mp4").check().expect_err("missing file");
        assert!(missing.contains("/nonexistent/clip.mp4"), "{missing}");
        assert!(SourceKind::parse("rtsp://cam/1").check().is_ok());
    }
}
