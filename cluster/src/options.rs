//! The flags both binaries take for cluster mode, their `[nats]` section
//! in `lookout.toml`, and the connection they describe.

use std::path::PathBuf;
use std::time::Duration;

use shared::settings::{Key, Section, Shape};

use crate::stream::{ClusterError, StreamSettings};

/// `[nats]` in `lookout.toml`: the same keys for the detector and the webserver.
pub const NATS_SECTION: Section = Section {
    name: "nats",
    keys: &[
        Key::new("servers", "nats", Shape::Joined),
        Key::new("node_id", "node-id", Shape::Value),
        Key::new("stream", "nats-stream", Shape::Value),
        Key::new("replicas", "nats-replicas", Shape::Value),
        Key::new("creds", "nats-creds", Shape::Value),
        Key::new("token", "nats-token", Shape::Value).secret(),
        Key::new("ca", "nats-ca", Shape::Value),
    ],
    empty_because: None,
};

/// Cluster mode's flags (SPEC §10). Without `--nats` none of the rest matters.
#[derive(Debug, Clone, clap::Args)]
pub struct NatsArgs {
    /// Cluster mode: NATS servers with JetStream, e.g.
    /// nats://10.0.0.1:4222,nats://10.0.0.2:4222 (user:password@ in a URL
    /// is accepted). Without it Lookout runs on one machine.
    #[arg(long = "nats", value_name = "URL[,URL...]", env = "LOOKOUT_NATS", value_delimiter = ',')]
    pub servers: Vec<String>,

    /// This process's name in the cluster's subjects, unique per detector
    /// and per webserver: 1-64 characters of [A-Za-z0-9_-] [default: the
    /// host name].
    #[arg(long, value_name = "NAME", env = "LOOKOUT_NODE_ID", value_parser = parse_node_id)]
    pub node_id: Option<String>,

    /// The JetStream stream holding every change.
    #[arg(long, value_name = "NAME", default_value = "LOOKOUT", value_parser = parse_stream_name)]
    pub nats_stream: String,

    /// Copies of the stream the NATS cluster keeps (1-5; 3 survives the
    /// loss of any one server).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub nats_replicas: u8,

    /// NATS credentials file (a user JWT and its NKey seed).
    #[arg(long, value_name = "FILE")]
    pub nats_creds: Option<PathBuf>,

    /// NATS authentication token.
    #[arg(long, value_name = "TOKEN", env = "LOOKOUT_NATS_TOKEN", hide_env_values = true)]
    pub nats_token: Option<String>,

    /// CA certificate (PEM) the NATS servers' certificates must chain to;
    /// requires TLS.
    #[arg(long, value_name = "FILE")]
    pub nats_ca: Option<PathBuf>,
}

impl NatsArgs {
    pub fn enabled(&self) -> bool {
        !self.servers.is_empty()
    }

    /// `--node-id`, or the host name made into one subject token.
    pub fn node_id(&self) -> String {
        self.node_id.clone().unwrap_or_else(|| node_id_from_host(&host_name()))
    }

    pub fn stream_settings(&self) -> StreamSettings {
        StreamSettings { name: self.nats_stream.clone(), replicas: usize::from(self.nats_replicas), limits: None }
    }

    /// The servers as shown in logs and health: credentials masked.
    pub fn servers_redacted(&self) -> String {
        shared::redact::redact(&self.servers.join(",")).into_owned()
    }

    /// A client that connects in the background and reconnects forever:
    /// a NATS outage is waited out, never fatal. `name` shows in the
    /// server's connection list.
    pub async fn connect(&self, name: &str) -> Result<async_nats::Client, ClusterError> {
        let mut options = async_nats::ConnectOptions::new()
            .name(name)
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(5))
            .request_timeout(Some(Duration::from_secs(5)));
        if let Some(path) = &self.nats_creds {
            options = options
                .credentials_file(path)
                .await
                .map_err(|e| ClusterError::Credentials { path: path.display().to_string(), reason: e.to_string() })?;
        }
        if let Some(token) = &self.nats_token {
            options = options.token(token.clone());
        }
        if let Some(ca) = &self.nats_ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        options
            .connect(self.servers.as_slice())
            .await
            .map_err(|e| ClusterError::Connect { servers: self.servers_redacted(), reason: e.to_string() })
    }
}

fn host_name() -> String {
    #[cfg(unix)]
    {
        nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_default()
    }
    #[cfg(not(unix))]
    {
        std::env::var("COMPUTERNAME").unwrap_or_default()
    }
}

/// The host's first label, with anything a subject token may not hold
/// replaced: `nvr-2.home.arpa` → `nvr-2`.
fn node_id_from_host(host: &str) -> String {
    let label: String = host
        .split('.')
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
        .take(64)
        .collect();
    if label.is_empty() { "lookout".to_owned() } else { label }
}

fn parse_node_id(text: &str) -> Result<String, String> {
    shared::model::validate_camera_id(text)
        .map(|()| text.to_owned())
        .map_err(|_| "must be 1-64 characters of [A-Za-z0-9_-]".to_owned())
}

fn parse_stream_name(text: &str) -> Result<String, String> {
    if !text.is_empty() && text.len() <= 64 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Ok(text.to_owned())
    } else {
        Err("must be 1-64 characters of [A-Za-z0-9_-]".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_name_becomes_one_subject_token() {
        assert_eq!(node_id_from_host("nvr-2.home.arpa"), "nvr-2");
        assert_eq!(node_id_from_host("büro pc"), "b-ro-pc");
        assert_eq!(node_id_from_host(""), "lookout");
    }

    #[test]
    fn node_ids_and_stream_names_that_would_break_a_subject_are_refused() {
        assert!(parse_node_id("barn_2").is_ok());
        for bad in ["", "a.b", "a*", ">", "a b"] {
            assert!(parse_node_id(bad).is_err(), "{bad:?}");
            assert!(parse_stream_name(bad).is_err(), "{bad:?}");
        }
    }
}
