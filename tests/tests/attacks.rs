//! Attacks a hostile local user or web page would try, each against the
//! real binaries, each a regression test for a hole that was open
//! (docs/reliability.md, "Hostile input and attacks").

use std::time::Duration;

use e2e::{Process, Webserver, arg, health_until, temp_data_dir};

const LONG: Duration = Duration::from_secs(30);
const PASSWORD: &str = "SuperSecretPw";

/// A camera URL's password never leaves the detector: not in its log lines
/// (ffmpeg's relayed errors included), `last_error`, heartbeats, health,
/// metrics, or the exit summary.
#[tokio::test]
async fn camera_passwords_are_masked_on_every_surface() {
    let dir = temp_data_dir();
    let webserver = Webserver::start(dir.path(), &["--heartbeat-secs", "1"]);
    let door = format!("door=rtsp://admin:{PASSWORD}@127.0.0.1:1/stream1");
    let snap = format!("snap=http://127.0.0.1:1/snap.cgi?user=admin&pwd={PASSWORD}2");
    let detector = Process::start(
        "detector",
        &["--data-dir", arg(dir.path()), "--camera", &door, "--camera", &snap, "--heartbeat-secs", "0.5"],
    );
    webserver.wait_for_detector();
    let camera = |health: &serde_json::Value, id: &str| -> serde_json::Value {
        health["detectors"][0]["stats"]["cameras"]
            .as_array()
            .and_then(|cameras| cameras.iter().find(|c| c["camera_id"] == id).cloned())
            .unwrap_or_default()
    };
    let health = health_until(&webserver.url, "both cameras failed twice", |h| {
        ["door", "snap"].iter().all(|id| camera(h, id)["restarts"].as_u64() >= Some(2))
    })
    .await;
    // ffmpeg's own line names the URL: it is there, masked.
    let door_error = camera(&health, "door")["last_error"].as_str().unwrap_or_default().to_owned();
    assert!(door_error.contains("rtsp://admin:***@127.0.0.1:1/stream1"), "{door_error}");
    let snap_error = camera(&health, "snap")["last_error"].as_str().unwrap_or_default().to_owned();
    assert!(snap_error.contains("pwd=***"), "{snap_error}");

    let http = reqwest::Client::new();
    for path in ["/api/health", "/api/metrics", "/metrics", "/api/cameras"] {
        let body = http.get(format!("{}{path}", webserver.url)).send().await.expect("GET").text().await.expect("body");
        assert!(!body.contains(PASSWORD), "{path} shows the password: {body}");
    }
    detector.wait_for_log("ffmpeg: rtsp://admin:***@", LONG);
    detector.terminate();
    let logs = detector.logs().join("\n");
    let (status, summary) = detector.wait(LONG);
    assert!(status.success(), "{status}: {summary}");
    assert!(summary.contains("door"), "the summary names the failed camera: {summary}");
    assert!(!logs.contains(PASSWORD), "a log line shows the password:\n{logs}");
    assert!(!summary.contains(PASSWORD), "the exit summary shows the password:\n{summary}");
    assert!(!webserver.process.logs().join("\n").contains(PASSWORD));
}
