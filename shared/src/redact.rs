//! Keeping camera credentials out of everything people and tools can read.
//!
//! A camera URL usually carries its password (`rtsp://admin:pw@cam/stream`),
//! and that URL travels: into ffmpeg's error lines, the camera's
//! `last_error`, heartbeats, `/api/health`, metrics, the dashboard and the
//! exit summary. Two choke points keep the secret in:
//!
//! * [`SecretUrl`] holds a source text whose `Display`, `Debug` and
//!   `Serialize` print it redacted; only [`SecretUrl::expose`] gives the
//!   real text, and only the ffmpeg command line calls it.
//! * [`redact`] masks credentials in any free text — every line relayed from
//!   ffmpeg goes through it before it is logged or kept.
//!
//! What is masked: the password of a URL's userinfo (`user:***@`), a
//! userinfo without a password as a whole (`***@`, it may be a token), and
//! the values of query parameters that name a secret (`password=`, `pwd=`,
//! `token=`, …, common in HTTP snapshot URLs of cheap cameras).

use std::borrow::Cow;
use std::fmt;

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Query parameters whose values are secrets.
const SECRET_PARAMS: &[&str] =
    &["password", "passwd", "pass", "pwd", "token", "access_token", "auth", "key", "apikey", "api_key", "secret"];

/// `text` with every URL credential masked; borrowed when there was none.
pub fn redact(text: &str) -> Cow<'_, str> {
    if !text.contains("://") && !text.contains('=') {
        return Cow::Borrowed(text);
    }
    let masked = mask_query_secrets(&mask_userinfo(text));
    if masked == text { Cow::Borrowed(text) } else { Cow::Owned(masked) }
}

/// Masks `user:pass@` after each `scheme://` in `text`.
fn mask_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        // The authority ends at the first of these; userinfo is what precedes
        // its last '@' (an unescaped '@' in a password is common enough).
        let authority_end =
            after.find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace()).unwrap_or(after.len());
        let authority = &after[..authority_end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.split_once(':') {
                    Some((user, _password)) => {
                        out.push_str(user);
                        out.push(':');
                        out.push_str(MASK);
                    }
                    None => out.push_str(MASK),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[authority_end..];
    }
    out.push_str(rest);
    out
}

/// Masks the values of secret-named query parameters (`?pwd=…&`).
fn mask_query_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(eq) = rest.find('=') {
        let (before, after) = rest.split_at(eq);
        let name_start = before.rfind(|c: char| matches!(c, '?' | '&' | ';') || c.is_whitespace()).map_or(0, |i| i + 1);
        let name = &before[name_start..];
        out.push_str(before);
        out.push('=');
        let value = &after[1..];
        let value_end = value.find(|c: char| matches!(c, '&' | '#' | ';') || c.is_whitespace()).unwrap_or(value.len());
        let is_query = name_start > 0 && before[..name_start].ends_with(['?', '&', ';']);
        if is_query && value_end > 0 && SECRET_PARAMS.iter().any(|p| name.eq_ignore_ascii_case(p)) {
            out.push_str(MASK);
        } else {
            out.push_str(&value[..value_end]);
        }
        rest = &value[value_end..];
    }
    out.push_str(rest);
    out
}

/// A source text that may hold credentials: shown only redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The real text, credentials included: for the ffmpeg command line only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether anything in it is masked when shown.
    pub fn has_secret(&self) -> bool {
        matches!(redact(&self.0), Cow::Owned(_))
    }
}

impl From<&str> for SecretUrl {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretUrl({:?})", redact(&self.0))
    }
}

impl serde::Serialize for SecretUrl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&redact(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn userinfo_passwords_are_masked() {
        for (text, shown) in [
            ("rtsp://admin:SuperSecretPw@127.0.0.1:1/stream1", "rtsp://admin:***@127.0.0.1:1/stream1"),
            ("rtsp://admin:p@ss@cam/", "rtsp://admin:***@cam/"),
            ("rtsp://tok3n@cam:554", "rtsp://***@cam:554"),
            (
                "[rtsp @ 0x55] method DESCRIBE failed: rtsp://u:pw@10.0.0.2/live: 401",
                "[rtsp @ 0x55] method DESCRIBE failed: rtsp://u:***@10.0.0.2/live: 401",
            ),
            ("a rtsp://u:a@h and http://v:b@k/x", "a rtsp://u:***@h and http://v:***@k/x"),
            ("http://cam/snap.cgi?user=admin&pwd=hunter2&res=1", "http://cam/snap.cgi?user=admin&pwd=***&res=1"),
            ("http://cam/x?Password=a;token=b", "http://cam/x?Password=***;token=***"),
        ] {
            assert_eq!(redact(text), shown, "{text}");
        }
    }

    #[test]
    fn text_without_credentials_is_untouched_and_borrowed() {
        for text in [
            "rtsp://127.0.0.1:1/stream1",
            "lavfi:color=c=gray:s=320x180[bg];overlay=x=if(gte(t\\,5)\\,t)",
            "Connection to tcp://127.0.0.1:1?timeout=10000000 failed: Connection refused",
            "/srv/clips/yard.mp4",
            "user@example.com wrote",
        ] {
            assert!(matches!(redact(text), Cow::Borrowed(_)), "{text} -> {}", redact(text));
        }
    }

    #[test]
    fn secret_url_never_shows_the_secret() {
        let url = SecretUrl::new("rtsp://admin:SuperSecretPw@cam/1");
        assert!(url.has_secret());
        assert_eq!(url.expose(), "rtsp://admin:SuperSecretPw@cam/1");
        for shown in [url.to_string(), format!("{url:?}"), serde_json::to_string(&url).expect("json")] {
            assert!(!shown.contains("SuperSecretPw"), "{shown}");
            assert!(shown.contains("admin:***@cam/1"), "{shown}");
        }
    }

    proptest! {
        #[test]
        fn no_password_survives(user in "[a-z]{1,8}", password in "[A-Za-z0-9!$%]{6,20}", host in "[a-z]{1,8}(\\.[a-z]{1,5})?", path in "(/[a-z0-9]{0,6}){0,3}", noise in "[ -~]{0,20}") {
            let text = format!("{noise} rtsp://{user}:{password}@{host}{path} {noise}");
            let shown = redact(&text);
            prop_assert!(!shown.contains(&format!(":{password}@")), "{}", shown);
            prop_assert!(shown.contains(&format!("rtsp://{user}:***@{host}{path}")), "{}", shown);
        }
    }
}
