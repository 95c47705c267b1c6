//! Which browser origins may open the WebSocket.
//!
//! Browsers always send `Origin` on WebSocket upgrades; CLI clients (websocat,
//! scripts) usually send none. The rule (SPEC §4):
//!
//! * no `Origin` header → allowed (not a browser, so no cross-site risk);
//! * `http(s)://localhost`, `127.0.0.1` or `[::1]`, any port → allowed;
//! * an origin given with `--allowed-origin` → allowed (exact match after
//!   normalising case and default ports);
//! * anything else — including `null`, `localhost.evil.com`, `localhost.`
//!   and malformed values — is refused with 403 before the upgrade.

/// Whether a request with this `Origin` header value may connect.
pub fn is_allowed(origin: Option<&str>, allowed: &[String]) -> bool {
    let Some(origin) = origin else { return true };
    let Some(normal) = normalize(origin) else {
        return false;
    };
    is_loopback_origin(&normal) || allowed.contains(&normal)
}

/// `scheme://host[:port]`, lower-cased, without a default port; `None` for
/// anything that is not exactly an http(s) origin.
pub fn normalize(origin: &str) -> Option<String> {
    let lower = origin.trim().to_ascii_lowercase();
    let (scheme, rest) = lower.split_once("://")?;
    let default_port = match scheme {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ', '\\']) {
        return None;
    }
    let (host, port) = split_host_port(rest)?;
    if host.is_empty() || host.ends_with('.') {
        return None;
    }
    Some(match port {
        Some(p) if p != default_port => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    })
}

fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (inside, after) = v6.split_once(']')?;
        let host = &authority[..inside.len() + 2];
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    Some((host, port))
}

fn is_loopback_origin(normal: &str) -> bool {
    let authority = normal.split_once("://").map_or("", |(_, a)| a);
    matches!(split_host_port(authority), Some(("localhost" | "127.0.0.1" | "[::1]", _)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_origin_and_loopback_origins_are_allowed() {
        for ok in [
            None,
            Some("http://localhost"),
            Some("http://localhost:1234"),
            Some("https://127.0.0.1:8000"),
            Some("http://[::1]:3000"),
            Some("HTTP://LOCALHOST:80"),
        ] {
            assert!(is_allowed(ok, &[]), "{ok:?}");
        }
    }

    #[test]
    fn everything_else_is_refused() {
        for bad in [
            "http://evil.example",
            "null",
            "",
            "http://localhost.evil.com",
            "http://localhost.",
            "http://evil.com#localhost",
            "http://localhost@evil.com",
            "http://127.0.0.1.evil.com",
            "ws://localhost",
            "file://",
            "http://localhost:99999x",
            "http://[::1",
            "http://[::2]:80",
            "localhost",
        ] {
            assert!(!is_allowed(Some(bad), &[]), "{bad:?}");
        }
    }

    #[test]
    fn configured_origins_match_exactly_after_normalising() {
        let allowed = vec![normalize("https://NVR.example.com:443").expect("valid")];
        assert_eq!(allowed[0], "https://nvr.example.com");
        assert!(is_allowed(Some("https://nvr.example.com"), &allowed));
        assert!(!is_allowed(Some("http://nvr.example.com"), &allowed));
        assert!(!is_allowed(Some("https://nvr.example.com:8443"), &allowed));
        assert!(!is_allowed(Some("https://nvr.example.com.evil.com"), &allowed));
    }
}
