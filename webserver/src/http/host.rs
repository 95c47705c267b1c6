//! The `Host` rule: a loopback server answers only to loopback names.
//!
//! A web page can make its own host name resolve to 127.0.0.1 (DNS
//! rebinding) and then talk to this server as "same origin", with no token
//! on a default bind. The browser still sends the attacker's name in `Host`,
//! so on a loopback bind only `localhost` (and `*.localhost`, which browsers
//! resolve locally), loopback IP literals, and names given with
//! `--allowed-host` are served; anything else gets 421 before any handler
//! runs, WebSocket upgrades included. A request without `Host` (HTTP/1.0
//! tools) cannot come from a browser and is served.

use std::net::IpAddr;

use axum::extract::{Request, State};
use axum::http::header::HOST;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::error::ApiError;
use crate::state::AppState;

/// Which `Host` values are served.
#[derive(Debug, Clone, Default)]
pub struct HostRule {
    /// Off for a non-loopback bind with no `--allowed-host` (the token
    /// guards it, and its names are not known).
    pub enforce: bool,
    /// Lower-case names (no port) accepted besides the loopback ones.
    pub allowed: Vec<String>,
}

impl HostRule {
    /// Whether a request with this `Host` header value is served.
    pub fn allows(&self, host: &str) -> bool {
        if !self.enforce {
            return true;
        }
        let Some(name) = host_name(host) else { return false };
        let name = name.to_ascii_lowercase();
        name == "localhost"
            || name.ends_with(".localhost")
            || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
            || self.allowed.contains(&name)
    }
}

/// The name part of a `Host` value: `name[:port]` or `[v6][:port]`.
fn host_name(host: &str) -> Option<&str> {
    if let Some(rest) = host.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        return (after.is_empty() || after.strip_prefix(':').is_some_and(is_port)).then_some(ip);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if is_port(port) && !name.contains(':') => Some(name),
        Some(_) => None,
        None => Some(host),
    }
    .filter(|name| !name.is_empty())
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit())
}

/// Middleware: 421 for a `Host` the rule does not allow.
pub async fn check_host(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let host = request.headers().get(HOST).map(|h| h.to_str().unwrap_or("\u{fffd}"));
    match host {
        Some(host) if !state.config.hosts.allows(host) => {
            tracing::warn!(host, path = %request.uri().path(), "refused a request for another host name (DNS rebinding?)");
            ApiError::MisdirectedRequest(format!(
                "this server does not answer to the host name {host:?}; add it with --allowed-host if it is yours"
            ))
            .into_response()
        }
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_and_allowed_ones_pass_others_do_not() {
        let rule = HostRule { enforce: true, allowed: vec!["nvr.home.arpa".into()] };
        for ok in [
            "localhost",
            "localhost:8000",
            "LOCALHOST:1",
            "cam.localhost:80",
            "127.0.0.1",
            "127.0.0.1:8000",
            "127.1.2.3:9",
            "[::1]",
            "[::1]:8000",
            "nvr.home.arpa:8000",
        ] {
            assert!(rule.allows(ok), "{ok}");
        }
        for refused in [
            "evil.com",
            "evil.com:8000",
            "localhost.evil.com",
            "127.0.0.1.nip.io",
            "192.168.1.2:8000",
            "[::2]:80",
            "",
            ":8000",
            "localhost:80:80",
            "[::1]x",
            "::1",
        ] {
            assert!(!rule.allows(refused), "{refused}");
        }
        assert!(HostRule::default().allows("evil.com"), "not enforced");
    }
}
