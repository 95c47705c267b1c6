//! Security: who may connect, with what, and what the server refuses.

use std::time::Duration;

use e2e::{Process, Webserver, arg, run_to_end, temp_data_dir, ws};
use serde_json::Value;

const TOKEN: &str = "s3cret-token_0123456789";
const LONG: Duration = Duration::from_secs(30);

#[test]
fn a_non_loopback_bind_needs_allow_remote_and_a_token() {
    let dir = temp_data_dir();
    let data = arg(dir.path());
    for (args, complaint) in [
        (&["--bind", "0.0.0.0:0", "--data-dir", data][..], "--allow-remote"),
        (&["--bind", "0.0.0.0:0", "--allow-remote", "--data-dir", data][..], "--token"),
        (&["--token", "short", "--data-dir", data][..], "16 to 256"),
    ] {
        let (code, _, stderr) = run_to_end("webserver", args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(complaint), "{args:?} should mention {complaint}: {stderr}");
    }
    // With both, it starts (tests still only talk to it over loopback).
    let exposed =
        Process::start("webserver", &["--bind", "0.0.0.0:0", "--allow-remote", "--token", TOKEN, "--data-dir", data]);
    exposed.wait_for_log("webserver listening", LONG);
}

#[tokio::test]
async fn the_token_guards_api_metrics_and_websocket_but_not_the_page() {
    let dir = temp_data_dir();
    let server = Webserver::start(dir.path(), &["--token", TOKEN]);
    let http = reqwest::Client::new();
    for path in ["/api/events", "/api/health", "/api/metrics", "/metrics", "/api/cameras"] {
        let url = format!("{}{path}", server.url);
        let none = http.get(&url).send().await.expect("GET");
        assert_eq!(none.status(), 401, "{path} without a token");
        assert!(none.headers().contains_key("www-authenticate"));
        assert_eq!(none.json::<Value>().await.expect("JSON")["error"], "unauthorized");
        let wrong = http.get(&url).bearer_auth("s3cret-token_0123456788").send().await.expect("GET");
        assert_eq!(wrong.status(), 401, "{path} with a wrong token");
        let bearer = http.get(&url).bearer_auth(TOKEN).send().await.expect("GET");
        assert_eq!(bearer.status(), 200, "{path} with the token");
        let query = http.get(format!("{url}?token={TOKEN}")).send().await.expect("GET");
        assert_eq!(query.status(), 200, "{path} with ?token=");
    }
    for path in ["/", "/static/app.js", "/docs/", "/api/openapi.json", "/api/asyncapi.json"] {
        let response = http.get(format!("{}{path}", server.url)).send().await.expect("GET");
        assert_eq!(response.status(), 200, "{path} is public");
    }
    match ws::connect(&server.ws_url(""), None).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("a WebSocket without the token should get 401, got {other:?}"),
    }
    ws::connect(&server.ws_url(&format!("?after_seq=0&token={TOKEN}")), None).await.expect("with the token");
    let logs = server.process.logs().join("\n");
    assert!(!logs.contains(TOKEN), "the token never reaches a log line");
}

#[tokio::test]
async fn rest_inputs_are_bounded() {
    let dir = temp_data_dir();
    let server = Webserver::start(dir.path(), &[]);
    let http = reqwest::Client::new();
    let url = format!("{}/api/events", server.url);
    let huge = format!(r#"{{"camera_id":"door","motion_confidence":0.5,"description":"{}"}}"#, "x".repeat(70 * 1024));
    let response = http.post(&url).header("content-type", "application/json").body(huge).send().await.expect("POST");
    assert_eq!(response.status(), 413, "bodies over 64 KiB are refused");
    let long = serde_json::json!({"camera_id": "door", "motion_confidence": 0.5, "description": "x".repeat(2000)});
    let response = http.post(&url).json(&long).send().await.expect("POST");
    assert_eq!(response.status(), 422);
    assert!(response.text().await.expect("body").contains("description"));
    let objects: Vec<Value> = (0..300)
        .map(|_| serde_json::json!({"label": "cat", "confidence": 0.5, "bbox": {"x": 0, "y": 0, "width": 1, "height": 1}}))
        .collect();
    let many = serde_json::json!({"camera_id": "door", "motion_confidence": 0.5, "description": "x", "detected_objects": objects});
    assert_eq!(http.post(&url).json(&many).send().await.expect("POST").status(), 422);
    let response = http.get(format!("{url}?q={}", "x".repeat(300))).send().await.expect("GET");
    assert_eq!(response.status(), 400);
}

#[test]
fn the_detector_socket_is_private_and_never_follows_links() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_data_dir();
    let detector =
        Process::start("detector", &["--dry-run", "--event-secs", "0", "--rate", "1", "--data-dir", arg(dir.path())]);
    detector.wait_for_log("publishing events on the detector socket", LONG);
    let mode = std::fs::metadata(dir.path().join("detector.sock")).expect("socket").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");
    drop(detector);

    let target = dir.path().join("elsewhere.sock");
    let link = dir.path().join("link.sock");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let (code, _, stderr) = run_to_end(
        "detector",
        &["--dry-run", "--event-secs", "0", "--count", "1", "--socket", arg(&link), "--data-dir", arg(dir.path())],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("symbolic link"), "{stderr}");
}
