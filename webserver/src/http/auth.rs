//! The optional access token (`--token` / `LOOKOUT_TOKEN`).
//!
//! When set, every API, metrics and WebSocket request must present it, as
//! `Authorization: Bearer TOKEN` or, where a client cannot set headers (a
//! browser's WebSocket), as `?token=TOKEN`. The dashboard page, its assets and
//! the API docs stay public: they hold no data. Comparison is constant-time,
//! and the token never reaches a log line (spans record the path only).

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::http::error::ApiError;
use crate::state::AppState;

/// Paths served without the token.
pub fn is_public(path: &str) -> bool {
    path == "/"
        || path.starts_with("/static/")
        || path == "/docs"
        || path.starts_with("/docs/")
        || path == "/api/openapi.json"
        || path == "/api/asyncapi.json"
}

/// Middleware: lets a request through when no token is configured, when its
/// path is public, or when it presents the token.
pub async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(expected) = state.config.token.as_deref() else {
        return next.run(request).await;
    };
    if is_public(request.uri().path()) {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .or_else(|| query_token(request.uri().query()));
    match presented {
        Some(token) if matches(token, expected) => next.run(request).await,
        Some(_) => ApiError::Unauthorized("wrong access token".into()).into_response(),
        None => ApiError::Unauthorized(
            "this server needs an access token: send Authorization: Bearer TOKEN, or ?token=TOKEN".into(),
        )
        .into_response(),
    }
}

/// Constant-time equality (the length is not secret).
pub fn matches(presented: &str, expected: &str) -> bool {
    presented.len() == expected.len() && bool::from(presented.as_bytes().ct_eq(expected.as_bytes()))
}

/// The token of an `Authorization: Bearer TOKEN` value; the scheme is
/// case-insensitive (RFC 7235 §2.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim_start())
}

/// `token=…` from a query string. Tokens are URL-safe, so no decoding.
fn query_token(query: Option<&str>) -> Option<&str> {
    query?.split('&').find_map(|pair| pair.strip_prefix("token="))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_sources_and_comparison() {
        assert_eq!(query_token(Some("after_seq=4&token=abc")), Some("abc"));
        assert_eq!(query_token(Some("xtoken=abc")), None);
        assert_eq!(query_token(None), None);
        for value in ["Bearer abc", "bearer abc", "BEARER  abc", " Bearer abc "] {
            assert_eq!(bearer_token(value), Some("abc"), "{value:?}");
        }
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearerabc"), None);
        assert!(matches("0123456789abcdef", "0123456789abcdef"));
        assert!(!matches("0123456789abcdeX", "0123456789abcdef"));
        assert!(!matches("0123456789abcde", "0123456789abcdef"));
    }

    #[test]
    fn only_the_page_assets_and_docs_are_public() {
        for public in ["/", "/static/app.js", "/docs", "/docs/index.html", "/api/openapi.json"] {
            assert!(is_public(public), "{public}");
        }
        for private in ["/api/events", "/api/health", "/metrics", "/ws/events", "/api/metrics", "/staticx"] {
            assert!(!is_public(private), "{private}");
        }
    }
}
