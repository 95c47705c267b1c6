//! The dashboard: static HTML, CSS and JavaScript compiled into the binary.
//!
//! The files live in `webserver/static/` and are embedded with
//! `include_str!`, so the webserver needs no asset directory at run time and
//! no request path ever reaches the filesystem. The page is strict about
//! what it loads: its Content-Security-Policy allows scripts, styles and
//! connections to this origin only, and no inline script.

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

use crate::http::error::ApiError;

/// Policy for the dashboard page.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const INDEX: &str = include_str!("../../static/index.html");

/// `(name, content type, body)` of every asset under `/static/`.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.js", "text/javascript; charset=utf-8", include_str!("../../static/app.js")),
    ("style.css", "text/css; charset=utf-8", include_str!("../../static/style.css")),
];

/// `GET /`.
pub async fn index() -> Response {
    ([(CONTENT_TYPE, "text/html; charset=utf-8"), (CONTENT_SECURITY_POLICY, CSP), (CACHE_CONTROL, "no-cache")], INDEX)
        .into_response()
}

/// `GET /static/{name}`: only the embedded files; anything else is 404.
pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(known, _, _)| *known == name) {
        // Revalidated on each load, so a new build is picked up at once.
        Some((_, content_type, body)) => {
            ([(CONTENT_TYPE, *content_type), (CACHE_CONTROL, "no-cache")], *body).into_response()
        }
        None => ApiError::NotFound(format!("no asset {name:?}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_references_only_embedded_same_origin_assets() {
        for (name, _, _) in ASSETS {
            assert!(INDEX.contains(&format!("/static/{name}")), "index.html should load {name}");
        }
        assert!(!INDEX.contains("http://") && !INDEX.contains("https://"), "no external resources");
        assert!(!INDEX.contains("<script>"), "no inline script (CSP forbids it)");
        let inline_handler = INDEX.match_indices(" on").any(|(i, _)| {
            let rest = &INDEX[i + 3..];
            let name_len = rest.bytes().take_while(u8::is_ascii_lowercase).count();
            name_len > 0 && rest[name_len..].starts_with('=')
        });
        assert!(!inline_handler, "no inline event handlers (CSP forbids them)");
    }
}
