//! Helpers for Lookout's end-to-end tests.
//!
//! The tests in `tests/tests/` start the real `detector` and `webserver`
//! binaries on temporary data directories and talk to them the way users and
//! other processes do: through the socket, SQLite, HTTP and WebSocket. These
//! helpers only start, watch and stop processes; they never stand in for one.
//!
//! Binaries are found next to the test executable's `target/<profile>/`
//! directory (override with `LOOKOUT_BIN_DIR`). Build them first:
//! `cargo build --workspace --bins` (the README's test command does).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Path of a workspace binary, e.g. `bin("detector")`.
pub fn bin(name: &str) -> PathBuf {
    let dir = match std::env::var_os("LOOKOUT_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let exe = std::env::current_exe().expect("current_exe");
            // target/<profile>/deps/<test-binary>
            exe.parent()
                .and_then(Path::parent)
                .expect("target/<profile>")
                .to_path_buf()
        }
    };
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` before the end-to-end tests",
        path.display()
    );
    path
}

/// A running binary whose stderr lines are collected as they arrive.
#[derive(Debug)]
pub struct Process {
    name: String,
    /// `None` once [`Process::wait`] has taken it.
    child: Option<Child>,
    pid: u32,
    lines: mpsc::Receiver<String>,
    seen: Arc<Mutex<Vec<String>>>,
    stdout: Option<std::thread::JoinHandle<String>>,
}

impl Process {
    /// Starts `bin(name)` with `args`, logging at info level unless `RUST_LOG`
    /// or `--log-level` says otherwise.
    pub fn start(name: &str, args: &[&str]) -> Self {
        let mut command = Command::new(bin(name));
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command.env_remove("LOOKOUT_DATA_DIR");
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let (tx, lines) = mpsc::channel();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("piped stderr");
        let (log_name, seen_writer) = (name.to_owned(), seen.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if std::env::var_os("LOOKOUT_TEST_ECHO").is_some() {
                    eprintln!("[{log_name}] {line}");
                }
                if let Ok(mut seen) = seen_writer.lock() {
                    seen.push(line.clone());
                }
                let _ = tx.send(line);
            }
        });
        let mut stdout = child.stdout.take().expect("piped stdout");
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
            text
        });
        let pid = child.id();
        Self {
            name: name.to_owned(),
            child: Some(child),
            pid,
            lines,
            seen,
            stdout: Some(stdout),
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits for a stderr line containing `needle`; panics with the log so
    /// far if none comes within `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        if let Some(line) = self.logs().into_iter().find(|l| l.contains(needle)) {
            return line;
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!(
                    "{} did not log {needle:?} within {timeout:?}; its log:\n{}",
                    self.name,
                    self.logs().join("\n")
                ),
            }
        }
    }

    /// Every stderr line so far.
    pub fn logs(&self) -> Vec<String> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
    }

    /// Sends SIGKILL: a crash, as far as the process can tell.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.pid as i32);
        nix::sys::signal::kill(pid, signal)
            .unwrap_or_else(|e| panic!("cannot signal {}: {e}", self.name));
    }

    /// Waits for exit; returns the status and everything printed on stdout.
    pub fn wait(mut self, timeout: Duration) -> (ExitStatus, String) {
        let mut child = self.child.take().expect("not waited for yet");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = match rx.recv_timeout(timeout) {
            Ok(status) => status.expect("wait for child"),
            Err(_) => {
                self.signal(nix::sys::signal::Signal::SIGKILL);
                panic!(
                    "{} did not exit within {timeout:?}; its log:\n{}",
                    self.name,
                    self.logs().join("\n")
                );
            }
        };
        let stdout = self
            .stdout
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        (status, stdout)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `bin(name)` to completion with `args`; returns (exit code, stdout, stderr).
pub fn run_to_end(name: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(bin(name))
        .args(args)
        .env_remove("LOOKOUT_DATA_DIR")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A temporary data directory, removed when dropped.
pub fn temp_data_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("lookout-test-")
        .tempdir()
        .expect("tempdir")
}

/// A path as the `&str` a command line takes.
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}
