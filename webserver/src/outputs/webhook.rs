//! Webhooks: each change POSTed to a URL (SPEC §9), for ntfy, Gotify,
//! Slack-style receivers or your own code.
//!
//! `--webhook 'URL [secret=S] [camera=a,b] [label=person,car]
//! [change=new,end] [format=json|ntfy]'` (repeatable). Each POST carries:
//!
//! * `json` (the default): `{"type","seq","event"}` with
//!   `Content-Type: application/json`;
//! * `ntfy`: a one-line message, `Title` and `Tags` headers (the labels and
//!   the change, which ntfy shows as emoji), and with `--public-url` the
//!   snapshot as an `Attach` link;
//!
//! and always `X-Lookout-Seq: N`, `X-Lookout-Change`, `X-Lookout-Late:
//! true` when late, and with a secret `X-Lookout-Signature:
//! sha256=<hex HMAC-SHA256 of the body>`, which the receiver recomputes to
//! know the POST is Lookout's and unchanged.
//!
//! A 2xx acknowledges the change. A timeout, a refused connection, 408,
//! 429 or a 5xx is retried with back-off; any other 4xx says the receiver
//! will never take this change, which the delivery loop gives up on after
//! a few tries.

use std::collections::BTreeSet;
use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::Url;
use serde::Serialize;
use sha2::Sha256;
use shared::{ChangeKind, Event};

use super::delivery::{Failure, Sink};
use super::{Delivery, Filter};

/// How long one POST may take, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What a receiver expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Ntfy,
}

/// One `--webhook`: where, how, and which changes.
#[derive(Clone, PartialEq, Eq)]
pub struct Spec {
    pub url: Url,
    pub secret: Option<String>,
    pub format: Format,
    pub filter: Filter,
}

impl Spec {
    /// Parses `URL [key=value …]`, saying what is wrong with a bad one.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut words = text.split_whitespace();
        let url = words.next().ok_or("needs a URL, e.g. https://ntfy.sh/my-topic")?;
        let url = Url::parse(url).map_err(|e| format!("{}: {e}", shared::redact::redact(url)))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err(format!(
                "{}: must be an http:// or https:// URL with a host",
                shared::redact::redact(url.as_str())
            ));
        }
        let mut spec = Self { url, secret: None, format: Format::Json, filter: Filter::default() };
        for word in words {
            let (key, value) = word.split_once('=').ok_or(format!("{word:?}: expected key=value after the URL"))?;
            let list = || value.split(',').filter(|v| !v.is_empty()).map(str::to_owned).collect::<BTreeSet<_>>();
            match key {
                "secret" if !value.is_empty() => spec.secret = Some(value.to_owned()),
                "camera" => spec.filter.cameras = list(),
                "label" => spec.filter.labels = list(),
                "change" => {
                    spec.filter.kinds = list()
                        .iter()
                        .map(|k| ChangeKind::parse(k).ok_or(format!("change={k}: expected new, update or end")))
                        .collect::<Result<_, _>>()?;
                }
                "format" => {
                    spec.format = match value {
                        "json" => Format::Json,
                        "ntfy" => Format::Ntfy,
                        other => return Err(format!("format={other}: expected json or ntfy")),
                    }
                }
                _ => return Err(format!("unknown option {key:?} (secret, camera, label, change, format)")),
            }
        }
        Ok(spec)
    }

    /// The URL, credentials masked, for logs and health.
    pub fn target(&self) -> String {
        shared::redact::redact(self.url.as_str()).into_owned()
    }
}

impl std::fmt::Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spec")
            .field("url", &self.target())
            .field("secret", &self.secret.as_ref().map(|_| shared::redact::MASK))
            .field("format", &self.format)
            .field("filter", &self.filter)
            .finish()
    }
}

/// `sha256=<hex>` of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// The webhook sink.
#[derive(Debug)]
pub struct Webhook {
    spec: Spec,
    client: reqwest::Client,
    /// `--public-url`, for links to snapshots.
    public_url: Option<Url>,
    /// Changes answered with a 2xx and not yet reported to the delivery
    /// loop: one POST at a time, so each is acknowledged as it is sent.
    unreported: usize,
}

impl Webhook {
    pub fn new(spec: Spec, public_url: Option<Url>) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("lookout/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
        Ok(Self { spec, client, public_url, unreported: 0 })
    }

    fn request(&self, delivery: &Delivery) -> reqwest::RequestBuilder {
        let event = &delivery.after;
        let (body, headers) = match self.spec.format {
            Format::Json => (json_body(delivery), vec![("Content-Type", "application/json".to_owned())]),
            Format::Ntfy => ntfy(delivery, self.public_url.as_ref()),
        };
        let mut request = self
            .client
            .post(self.spec.url.clone())
            .header("X-Lookout-Seq", event.seq.to_string())
            .header("X-Lookout-Change", delivery.kind.as_str());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if delivery.late {
            request = request.header("X-Lookout-Late", "true");
        }
        if let Some(secret) = &self.spec.secret {
            request = request.header("X-Lookout-Signature", signature(secret, body.as_bytes()));
        }
        request.body(body)
    }
}

fn json_body(delivery: &Delivery) -> String {
    #[derive(Serialize)]
    struct Body<'a> {
        #[serde(rename = "type")]
        kind: ChangeKind,
        seq: i64,
        event: &'a Event,
    }
    serde_json::to_string(&Body { kind: delivery.kind, seq: delivery.seq(), event: &delivery.after })
        .unwrap_or_default()
}

/// ntfy's format: a message line and its headers.
fn ntfy(delivery: &Delivery, public_url: Option<&Url>) -> (String, Vec<(&'static str, String)>) {
    let event = &delivery.after;
    let labels: BTreeSet<&str> = event.detected_objects.iter().map(|o| o.label.as_str()).collect();
    let what =
        if labels.is_empty() { "Motion".to_owned() } else { labels.iter().copied().collect::<Vec<_>>().join(", ") };
    let verb = match delivery.kind {
        ChangeKind::New => "started",
        ChangeKind::Update => "updated",
        ChangeKind::End => "ended",
    };
    let mut line = format!("{what} on {} ({verb})", event.camera_id);
    if !event.description.is_empty() {
        line = format!("{line}: {}", event.description);
    }
    let mut tags: Vec<&str> = labels.into_iter().collect();
    tags.push(delivery.kind.as_str());
    let mut headers = vec![
        ("Title", format!("Lookout: {}", event.camera_id)),
        ("Tags", tags.join(",")),
        ("Content-Type", "text/plain; charset=utf-8".to_owned()),
    ];
    if let (Some(base), Some(_)) = (public_url, &event.image_path)
        && let Ok(link) = base.join(&format!("api/events/{}/image", event.event_id))
    {
        headers.push(("Attach", link.to_string()));
    }
    // Header values must be visible ASCII: labels and camera ids are.
    headers.retain(|(_, v)| v.bytes().all(|b| (b' '..=b'~').contains(&b)));
    (line.replace(['\r', '\n'], " "), headers)
}

impl Sink for Webhook {
    /// A POST is answered before the next is sent: a receiver sees them in
    /// order without having to sort.
    fn window(&self) -> usize {
        1
    }

    async fn send(&mut self, batch: &[Delivery]) -> Result<(), Failure> {
        for delivery in batch {
            let response = match self.request(delivery).send().await {
                Ok(response) => response,
                Err(e) => return Err(Failure::retry(std::mem::take(&mut self.unreported), describe(&e))),
            };
            let status = response.status();
            if status.is_success() {
                self.unreported += 1;
                continue;
            }
            let why = format!("{} answered {status}", self.spec.target());
            let retryable = status.is_server_error()
                || status == reqwest::StatusCode::REQUEST_TIMEOUT
                || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
            let delivered = std::mem::take(&mut self.unreported);
            return Err(if retryable { Failure::retry(delivered, why) } else { Failure::refused(delivered, why) });
        }
        Ok(())
    }

    async fn acknowledged(&mut self) -> Result<usize, Failure> {
        match std::mem::take(&mut self.unreported) {
            0 => std::future::pending().await,
            count => Ok(count),
        }
    }
}

/// An HTTP error a person can act on, without the URL's secrets.
fn describe(error: &reqwest::Error) -> String {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    // The error's own text names the URL, secrets and all: only its causes.
    let mut why = what.to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        why = format!("{why}: {inner}");
        source = inner.source();
    }
    shared::redact::redact(&why).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_or_say_why() {
        let spec = Spec::parse("https://hooks.example/in secret=s3 camera=door,yard label=person change=new,end")
            .expect("parses");
        assert_eq!(spec.url.as_str(), "https://hooks.example/in");
        assert_eq!(spec.secret.as_deref(), Some("s3"));
        assert_eq!(spec.filter.cameras, ["door".to_owned(), "yard".to_owned()].into());
        assert_eq!(spec.filter.kinds, [ChangeKind::New, ChangeKind::End].into());
        assert!(!format!("{spec:?}").contains("s3"), "the secret never shows");
        assert_eq!(Spec::parse("http://ntfy.lan/cams format=ntfy").expect("ntfy").format, Format::Ntfy);
        for (bad, why) in [
            ("", "needs a URL"),
            ("ftp://host/x", "http:// or https://"),
            ("not a url", "relative URL"),
            ("https://h/x colour=red", "unknown option"),
            ("https://h/x change=moved", "expected new, update or end"),
            ("https://h/x format=xml", "expected json or ntfy"),
            ("https://h/x secret", "key=value"),
        ] {
            let error = Spec::parse(bad).expect_err(bad);
            assert!(error.contains(why), "{bad:?}: {error}");
        }
    }

    #[test]
    fn the_signature_is_hmac_sha256_in_hex() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
