//! The webserver's command line (SPEC §4b) and its sections of
//! `lookout.toml` ([`SCHEMA`]). Parsing only.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use reqwest::Url;
use shared::config::{DATA_DIR_ENV, DEFAULT_DATA_DIR, DataDir, parse_seconds};
use shared::settings::{CONFIG_ENV, Key, Schema, Section, Shape};

use crate::outputs::mqtt::{self, BrokerUrl};
use crate::outputs::{self, webhook};

/// The webserver's part of `lookout.toml`: `[webserver]` keys are the
/// flags' names in snake case (repeatable ones in the plural).
pub const SCHEMA: Schema = Schema {
    top: &[Key::new("data_dir", "data-dir", Shape::Value)],
    sections: &[
        Section {
            name: "webserver",
            keys: &[
                Key::new("bind", "bind", Shape::Value),
                Key::new("sockets", "socket", Shape::Repeated),
                Key::new("allowed_hosts", "allowed-host", Shape::Repeated),
                Key::new("allowed_uids", "allowed-uid", Shape::Repeated),
                Key::new("allowed_origins", "allowed-origin", Shape::Repeated),
                Key::new("allow_remote", "allow-remote", Shape::Switch),
                Key::new("token", "token", Shape::Value).secret(),
                Key::new("heartbeat_secs", "heartbeat-secs", Shape::Value),
                Key::new("client_queue", "client-queue", Shape::Value),
                Key::new("send_timeout_secs", "send-timeout-secs", Shape::Value),
                Key::new("header_timeout_secs", "header-timeout-secs", Shape::Value),
                Key::new("max_connections_per_address", "max-connections-per-address", Shape::Value),
                Key::new("max_clients", "max-clients", Shape::Value),
                Key::new("snapshot_cache", "snapshot-cache", Shape::Value),
                Key::new("log_level", "log-level", Shape::Value),
                Key::new("log_format", "log-format", Shape::Value),
            ],
            empty_because: None,
        },
        Section {
            name: "outputs",
            keys: &[
                Key::new("mqtt", "mqtt", Shape::Value).secret(),
                Key::new("mqtt_prefix", "mqtt-prefix", Shape::Value),
                Key::new("mqtt_ca", "mqtt-ca", Shape::Value),
                Key::new("no_ha_discovery", "no-ha-discovery", Shape::Switch),
                Key::new("ha_prefix", "ha-prefix", Shape::Value),
                Key::new("webhooks", "webhook", Shape::Repeated).secret(),
                Key::new("public_url", "public-url", Shape::Value),
                Key::new("late_after_secs", "late-after-secs", Shape::Value),
            ],
            empty_because: None,
        },
        cluster::NATS_SECTION,
    ],
    cameras: None,
};

/// Lookout webserver: streams detector events to browsers over WebSocket,
/// serves the REST API, metrics, API docs and the dashboard.
#[derive(Debug, Clone, Parser)]
#[command(name = "webserver", version, about, long_about = None)]
pub struct Args {
    /// Address and port to listen on.
    #[arg(long, value_name = "ADDR:PORT", env = "LOOKOUT_BIND", default_value = "127.0.0.1:8000")]
    pub bind: SocketAddr,

    /// Directory holding the event database (created if missing).
    #[arg(long, value_name = "DIR", env = DATA_DIR_ENV, default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,

    /// Settings file; options on the command line replace its values
    /// [default: DATA_DIR/lookout.toml when present].
    #[arg(long, value_name = "FILE", env = CONFIG_ENV)]
    pub config: Option<PathBuf>,

    /// Print the settings in force (file, command line, defaults) as TOML,
    /// the token masked, and exit.
    #[arg(long)]
    pub print_config: bool,

    /// Detector socket to subscribe to; repeatable [default: DATA_DIR/detector.sock].
    #[arg(long = "socket", value_name = "PATH")]
    pub sockets: Vec<PathBuf>,

    /// Host name this server may be reached by besides localhost,
    /// 127.0.0.1 and [::1] (e.g. nvr.home.arpa); repeatable. On a loopback
    /// bind any other `Host` gets 421, which stops DNS-rebinding pages.
    #[arg(long = "allowed-host", value_name = "NAME", value_parser = parse_host)]
    pub allowed_hosts: Vec<String>,

    /// User id, besides this process's own, whose detector sockets are
    /// trusted (a detector under its own service account); repeatable. The
    /// detector must still prove it holds DATA_DIR/wire.key.
    #[arg(long = "allowed-uid", value_name = "UID")]
    pub allowed_uids: Vec<u32>,

    /// Seconds between WebSocket pings; a client silent for two intervals is closed.
    #[arg(long, value_name = "N", default_value = "30", value_parser = parse_seconds)]
    pub heartbeat_secs: Duration,

    /// Browser origin allowed to open /ws/events besides localhost ones, e.g.
    /// https://nvr.example.com; repeatable.
    #[arg(long = "allowed-origin", value_name = "ORIGIN", value_parser = parse_origin)]
    pub allowed_origins: Vec<String>,

    /// Messages a WebSocket client may fall behind the live feed before it is
    /// closed as a slow consumer (it can reconnect with ?after_seq= and miss
    /// nothing); rounded up to a power of two. One ring of this size is
    /// shared by all clients.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub client_queue: u32,

    /// Seconds a write to one WebSocket client may stay stuck (the client is
    /// not reading) before it is closed as a slow consumer.
    #[arg(long, value_name = "N", default_value = "5", value_parser = parse_seconds)]
    pub send_timeout_secs: Duration,

    /// Seconds a client has to send a request's headers, from connecting or
    /// from its previous response; slower connections are closed.
    #[arg(long, value_name = "N", default_value = "10", value_parser = parse_seconds)]
    pub header_timeout_secs: Duration,

    /// Most connections one source address may hold before their requests
    /// are read (WebSocket clients stop counting once upgraded).
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections_per_address: u32,

    /// Most WebSocket clients held at once; further ones get HTTP 503
    /// [default: what the open-file limit allows].
    #[arg(long, value_name = "N")]
    pub max_clients: Option<usize>,

    /// Cluster mode: most bytes of snapshots fetched from the stream's
    /// bucket kept on disk (e.g. 2GiB); the oldest days go first.
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = shared::retention::parse_size)]
    pub snapshot_cache: u64,

    /// Allow listening on an address other machines can reach. Requires
    /// --token: without it, only 127.0.0.1 / ::1 binds are accepted.
    #[arg(long)]
    pub allow_remote: bool,

    /// Access token for the API, metrics and WebSocket, sent as
    /// `Authorization: Bearer TOKEN` or `?token=TOKEN` (16+ characters of
    /// A-Z a-z 0-9 . _ ~ -). The dashboard page takes it once as /?token=TOKEN.
    #[arg(long, env = "LOOKOUT_TOKEN", hide_env_values = true, value_name = "TOKEN", value_parser = parse_token)]
    pub token: Option<String>,

    /// Log filter: error, warn, info, debug, trace, or a tracing directive
    /// [default: $RUST_LOG, else info].
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,

    /// Log line format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    /// MQTT broker to publish events and camera state to (Home Assistant):
    /// mqtt://[user:pass@]HOST[:PORT], or mqtts://… for TLS.
    #[arg(long, value_name = "URL", env = "LOOKOUT_MQTT", hide_env_values = true, value_parser = BrokerUrl::parse)]
    pub mqtt: Option<BrokerUrl>,

    /// Topic prefix of everything the MQTT output publishes.
    #[arg(long, value_name = "PREFIX", default_value = "lookout", value_parser = mqtt::parse_prefix)]
    pub mqtt_prefix: String,

    /// CA certificates (PEM) to trust for an mqtts:// broker, besides the
    /// web's root authorities.
    #[arg(long, value_name = "FILE")]
    pub mqtt_ca: Option<PathBuf>,

    /// Publish no Home Assistant MQTT discovery configs.
    #[arg(long)]
    pub no_ha_discovery: bool,

    /// Home Assistant's MQTT discovery prefix.
    #[arg(long, value_name = "PREFIX", default_value = "homeassistant", value_parser = mqtt::parse_prefix)]
    pub ha_prefix: String,

    /// POST every change to a URL; repeatable. Options follow the URL,
    /// separated by spaces: secret=S (signs each body: X-Lookout-Signature),
    /// camera=a,b label=person,car change=new,update,end (only these),
    /// format=json|ntfy. E.g. --webhook 'https://ntfy.sh/cams format=ntfy label=person'.
    #[arg(long = "webhook", value_name = "'URL [KEY=VALUE]…'", value_parser = webhook::Spec::parse)]
    pub webhooks: Vec<webhook::Spec>,

    /// The address people reach this server by (e.g.
    /// https://nvr.example.com): notifications link snapshots under it.
    #[arg(long, value_name = "URL", value_parser = parse_public_url)]
    pub public_url: Option<Url>,

    /// Seconds after which a change an output could not deliver yet is
    /// marked late once delivered ("late": true; webhooks:
    /// X-Lookout-Late), so automations can ignore stale alarms.
    #[arg(long, value_name = "N", default_value = "3600", value_parser = parse_seconds)]
    pub late_after_secs: Duration,

    #[command(flatten, next_help_heading = "Cluster (NATS JetStream)")]
    pub nats: cluster::NatsArgs,
}

/// `--public-url`: an http(s) URL, kept as a base that links join onto.
fn parse_public_url(text: &str) -> Result<Url, String> {
    let mut url = Url::parse(text).map_err(|e| format!("{text:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{text:?}: must be an http:// or https:// URL"));
    }
    if !url.path().ends_with('/') {
        url.set_path(&format!("{}/", url.path()));
    }
    Ok(url)
}

/// A host name for `--allowed-host`: letters, digits, `-` and `.`, no port.
fn parse_host(text: &str) -> Result<String, String> {
    let name = text.trim().to_ascii_lowercase();
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
        && !name.starts_with(['.', '-']);
    if valid { Ok(name) } else { Err(format!("{text:?} is not a host name (no scheme or port), e.g. nvr.home.arpa")) }
}

impl Args {
    /// Refuses to expose the server beyond this machine unless asked to, and
    /// then only with a token.
    pub fn check_exposure(&self) -> Result<(), String> {
        if self.bind.ip().is_loopback() {
            return Ok(());
        }
        if !self.allow_remote {
            return Err(format!(
                "refusing to listen on {}: other machines could reach it. Bind 127.0.0.1, or pass \
                 --allow-remote together with --token (or LOOKOUT_TOKEN)",
                self.bind
            ));
        }
        if self.token.is_none() {
            return Err("--allow-remote needs an access token: pass --token or set LOOKOUT_TOKEN".to_owned());
        }
        Ok(())
    }

    pub fn data_dir(&self) -> DataDir {
        DataDir::new(&self.data_dir)
    }

    /// The outputs asked for (SPEC §9).
    pub fn outputs(&self) -> outputs::Settings {
        outputs::Settings {
            mqtt: self.mqtt.clone().map(|broker| mqtt::Settings {
                broker,
                prefix: self.mqtt_prefix.clone(),
                ca_file: self.mqtt_ca.clone(),
                discovery: (!self.no_ha_discovery).then(|| self.ha_prefix.clone()),
            }),
            webhooks: self.webhooks.clone(),
            public_url: self.public_url.clone(),
            late_after: self.late_after_secs,
        }
    }

    /// The sockets to subscribe to, defaulting to the data directory's.
    /// The detector sockets to follow: none in cluster mode, where the
    /// stream brings every change.
    pub fn socket_paths(&self) -> Vec<PathBuf> {
        if self.nats.enabled() {
            Vec::new()
        } else if self.sockets.is_empty() {
            vec![self.data_dir().default_socket()]
        } else {
            self.sockets.clone()
        }
    }

    /// A webserver follows either sockets (one machine) or the stream
    /// (cluster mode): their `seq`s are not the same numbers.
    pub fn check_sources(&self) -> Result<(), String> {
        if self.nats.enabled() && !self.sockets.is_empty() {
            return Err(
                "--socket and --nats exclude each other: in cluster mode every change comes from the stream".into()
            );
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

fn parse_token(text: &str) -> Result<String, String> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-');
    if text.len() < 16 || text.len() > 256 {
        return Err("must be 16 to 256 characters long".to_owned());
    }
    if !text.bytes().all(allowed) {
        return Err("may contain only A-Z a-z 0-9 . _ ~ -".to_owned());
    }
    Ok(text.to_owned())
}

fn parse_origin(text: &str) -> Result<String, String> {
    crate::http::origin::normalize(text).ok_or_else(|| {
        format!("{text:?} is not an origin like https://host[:port] (scheme, host, optional port, nothing else)")
    })
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
    fn defaults_agree_with_the_detector() {
        let args = Args::try_parse_from(["webserver"]).expect("defaults parse");
        assert_eq!(args.bind.to_string(), "127.0.0.1:8000");
        assert_eq!(args.socket_paths(), vec![PathBuf::from("data/detector.sock")]);
        assert_eq!(args.heartbeat_secs, Duration::from_secs(30));
    }

    #[test]
    fn exposure_needs_allow_remote_and_a_token() {
        let parse = |args: &[&str]| Args::try_parse_from(args).expect("parses");
        assert!(parse(&["webserver"]).check_exposure().is_ok());
        assert!(parse(&["webserver", "--bind", "[::1]:8000"]).check_exposure().is_ok());
        let open = parse(&["webserver", "--bind", "0.0.0.0:8000"]).check_exposure();
        assert!(open.expect_err("refused").contains("--allow-remote"));
        let no_token = parse(&["webserver", "--bind", "0.0.0.0:8000", "--allow-remote"]).check_exposure();
        assert!(no_token.expect_err("refused").contains("--token"));
        let ok = ["webserver", "--bind", "0.0.0.0:8000", "--allow-remote", "--token", "0123456789abcdef"];
        assert!(parse(&ok).check_exposure().is_ok());
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in [
            &["webserver", "--bind", "nowhere"][..],
            &["webserver", "--heartbeat-secs", "0"][..],
            &["webserver", "--allowed-origin", "evil.example"][..],
            &["webserver", "--client-queue", "0"][..],
            &["webserver", "--token", "short"][..],
            &["webserver", "--token", "has spaces in it, sixteen+"][..],
            &["webserver", "--mqtt", "broker.lan"][..],
            &["webserver", "--mqtt-prefix", "a/#"][..],
            &["webserver", "--webhook", "ftp://host/x"][..],
            &["webserver", "--public-url", "nvr.lan"][..],
        ] {
            assert!(Args::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }
}
