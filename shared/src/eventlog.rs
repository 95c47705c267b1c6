//! `events.jsonl` and `events.log`: one line per committed change of an
//! event (`new`, `update`, `end`), for people and tools (the database stays
//! the truth).
//!
//! Every process that commits changes appends here, after the commit: the
//! detector for camera and dry-run events, the webserver for `POST
//! /api/events`. Each line is one `write` on a file opened `O_APPEND`, so
//! lines from two processes never interleave (the kernel places each append
//! at the end under the inode lock). A crash mid-write can leave a partial
//! last line: the detector, the main writer, cuts it off at start
//! ([`Repair::Truncate`]); a webserver, which may start while a detector is
//! appending, must never truncate, so it only ends such a line with a
//! newline before its own ([`Repair::Terminate`]).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::config::DataDir;
use crate::model::Change;

/// What to do with a partial last line found at open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repair {
    /// Cut it off (only for the one process that owns the logs' tails).
    Truncate,
    /// Leave it, and start our first line on a fresh line.
    Terminate,
}

/// A log that could not be opened or appended to.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {source}")]
pub struct LogError {
    pub file: &'static str,
    pub source: io::Error,
}

/// Both logs of one data directory, open for appending.
#[derive(Debug)]
pub struct EventLogs {
    logs: [Log; 2],
}

#[derive(Debug)]
struct Log {
    file: File,
    name: &'static str,
    /// A partial last line is waiting for its newline.
    needs_newline: bool,
}

impl EventLogs {
    pub fn open(data_dir: &DataDir, repair: Repair) -> Result<Self, LogError> {
        Ok(Self {
            logs: [
                Log::open(&data_dir.jsonl_log(), crate::config::JSONL_FILE, repair)?,
                Log::open(&data_dir.text_log(), crate::config::TEXT_LOG_FILE, repair)?,
            ],
        })
    }

    /// Appends `change` to both logs: `{"change":KIND,"data":EVENT}` with
    /// the event's canonical JSON, and its human line. Returns the failures
    /// (the change is safe in the database either way).
    pub fn append(&mut self, change: &Change) -> Vec<LogError> {
        let lines = [json_line(change), text_line(change)];
        let mut errors = Vec::new();
        for (log, line) in self.logs.iter_mut().zip(lines) {
            if let Err(source) = log.append(&line) {
                errors.push(LogError { file: log.name, source });
            }
        }
        errors
    }
}

impl Log {
    fn open(path: &Path, name: &'static str, repair: Repair) -> Result<Self, LogError> {
        let err = |source| LogError { file: name, source };
        let mut file = OpenOptions::new().create(true).read(true).append(true).open(path).map_err(err)?;
        let torn = torn_tail_len(&mut file).map_err(err)?;
        let mut needs_newline = false;
        if torn > 0 {
            match repair {
                Repair::Truncate => {
                    let len = file.metadata().map_err(err)?.len();
                    file.set_len(len - torn).map_err(err)?;
                    tracing::warn!(file = %path.display(), bytes = torn, "removed a partial last line left by a crash (the event is in the database)");
                }
                Repair::Terminate => needs_newline = true,
            }
        }
        Ok(Self { file, name, needs_newline })
    }

    /// One `write` per line: whole in the file or absent.
    fn append(&mut self, line: &str) -> io::Result<()> {
        if self.needs_newline {
            self.file.write_all(format!("\n{line}").as_bytes())?;
            self.needs_newline = false;
            return Ok(());
        }
        self.file.write_all(line.as_bytes())
    }
}

/// Bytes after the last newline (0 when the file ends with one or is empty).
fn torn_tail_len(file: &mut File) -> io::Result<u64> {
    let len = file.metadata()?.len();
    let mut tail = Vec::new();
    let mut window = 4096u64;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start))?;
        tail.clear();
        file.read_to_end(&mut tail)?;
        if let Some(newline) = tail.iter().rposition(|&b| b == b'\n') {
            return Ok((tail.len() - newline - 1) as u64);
        }
        if start == 0 {
            return Ok(len); // no newline at all: everything is one torn line
        }
        window *= 4;
    }
}

/// The human line for `events.log`.
/// One `events.jsonl` line: `{"change":"new","data":{…the event…}}`.
pub fn json_line(change: &Change) -> String {
    format!("{{\"change\":\"{}\",\"data\":{}}}\n", change.kind.as_str(), change.event.to_json())
}

/// One `events.log` line: the event's start, `seq`, the change and the
/// state, then what a person reads.
pub fn text_line(change: &Change) -> String {
    let event = &change.event;
    let objects = if event.detected_objects.is_empty() {
        "no objects".to_owned()
    } else {
        event.detected_objects.iter().map(|o| format!("{} {:.2}", o.label, o.confidence)).collect::<Vec<_>>().join(", ")
    };
    let inference = event.metadata.inference_ms.map(|ms| format!(" inference={ms:.1}ms")).unwrap_or_default();
    format!(
        "{} seq={} {} {} state={} camera={} motion={:.2} [{}]{} source={} | {}\n",
        event.timestamp,
        event.seq,
        change.kind.as_str(),
        event.event_id,
        event.state.as_str(),
        event.camera_id,
        event.motion_confidence,
        objects,
        inference,
        event.metadata.source.as_str(),
        event.description.replace(['\n', '\r'], " "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn torn(content: &[u8]) -> u64 {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log");
        std::fs::write(&path, content).expect("write");
        let mut file = OpenOptions::new().read(true).append(true).open(&path).expect("open");
        torn_tail_len(&mut file).expect("scan")
    }

    #[test]
    fn finds_a_torn_last_line() {
        assert_eq!(torn(b""), 0);
        assert_eq!(torn(b"{\"a\":1}\n"), 0);
        assert_eq!(torn(b"{\"a\":1}\n{\"b\""), 4);
        assert_eq!(torn(b"no newline at all"), 17);
        let long = [vec![b'x'; 10_000], b"\n".to_vec(), vec![b'y'; 9_000]].concat();
        assert_eq!(torn(&long), 9_000, "a torn line longer than the first window");
    }

    #[test]
    fn a_torn_line_is_cut_by_the_owner_and_only_ended_by_others() {
        for (repair, expected) in
            [(Repair::Truncate, "line one\nline three\n"), (Repair::Terminate, "line one\nline tw\nline three\n")]
        {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("events.jsonl");
            std::fs::write(&path, "line one\nline tw").expect("write");
            let mut log = Log::open(&path, "events.jsonl", repair).expect("open");
            log.append("line three\n").expect("append");
            assert_eq!(std::fs::read_to_string(&path).expect("read"), expected, "{repair:?}");
        }
    }
}
