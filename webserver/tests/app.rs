//! The HTTP surface driven without a port: `webserver::app(state)` as a
//! tower `Service`, one `oneshot` request per call, over a real SQLite file
//! in a temp dir. Fast checks of REST behaviour; the end-to-end tests in
//! `tests/` cover the same surface through the real binary and sockets.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::Value;
use shared::config::DataDir;
use shared::eventlog::{EventLogs, Role};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use webserver::db::Db;
use webserver::http::host::HostRule;
use webserver::http::serve::ListenerStats;
use webserver::metrics::Metrics;
use webserver::state::{AppState, CATCH_UP_READS, Config, HEAVY_QUERIES, Shared};
use webserver::stream::fanout::Fanout;
use webserver::stream::sequencer::Sequencer;

/// A webserver's state over a fresh data directory, as `main.rs` builds
/// it, without detector links or a listener.
async fn state(dir: &std::path::Path, stop: &CancellationToken) -> AppState {
    state_with_token(dir, stop, None).await
}

async fn state_with_token(dir: &std::path::Path, stop: &CancellationToken, token: Option<&str>) -> AppState {
    let data_dir = DataDir::new(dir);
    data_dir.create().expect("data dir");
    let db = Db::open(&data_dir.database(), "rest", 2, true).expect("rest db");
    let replay_db = Db::open(&data_dir.database(), "replay", 1, false).expect("replay db");
    let metrics = Arc::new(Metrics::default());
    let fanout = Fanout::new(64, 16);
    let sequencer =
        Sequencer::start(&data_dir.database(), fanout.clone(), metrics.clone(), stop.clone()).await.expect("sequencer");
    AppState::new(Shared {
        db,
        replay_db,
        fanout,
        sequencer,
        metrics,
        links: Default::default(),
        cluster: None,
        snapshot_cache: None,
        listener: Arc::new(ListenerStats::default()),
        heavy_queries: tokio::sync::Semaphore::new(HEAVY_QUERIES),
        catch_up_reads: tokio::sync::Semaphore::new(CATCH_UP_READS),
        logs: Arc::new(std::sync::Mutex::new(EventLogs::open(&data_dir, Role::Guest).expect("logs"))),
        integrity: std::sync::Mutex::new(Some(Ok(()))),
        readiness: Default::default(),
        config: Config {
            heartbeat: Duration::from_secs(30),
            allowed_origins: Vec::new(),
            token: token.map(str::to_owned),
            data_dir,
            hosts: HostRule { enforce: true, allowed: Vec::new() },
        },
        outputs: Vec::new(),
    })
}

/// One request through the whole router; the status and the body as JSON
/// (`Value::Null` when the body is not JSON).
async fn call(state: &AppState, request: Request<Body>) -> (StatusCode, Value) {
    let response = webserver::app(state.clone()).oneshot(request).await.expect("the router never fails");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).header(header::HOST, "localhost").body(Body::empty()).expect("request")
}

fn post_json(uri: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .header(header::HOST, "localhost")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .expect("request")
}

#[tokio::test]
async fn the_seeds_example_body_creates_an_event_that_lists_and_reads_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stop = CancellationToken::new();
    let state = state(dir.path(), &stop).await;

    // The seed's own example: no motion_confidence (an external trigger).
    let (status, created) =
        call(&state, post_json("/api/events", r#"{"camera_id":"test","description":"Test event"}"#)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["camera_id"], "test");
    assert_eq!(created["motion_confidence"], 0.0);
    assert_eq!(created["metadata"]["source"], "api");
    let id = created["event_id"].as_str().expect("event_id");

    let (status, one) = call(&state, get(&format!("/api/events/{id}"))).await;
    assert_eq!((status, &one), (StatusCode::OK, &created));
    let (status, page) = call(&state, get("/api/events?camera_id=test")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["events"], serde_json::json!([created]));
    assert_eq!(page["next_before_seq"], Value::Null);
    stop.cancel();
}

#[tokio::test]
async fn bad_requests_get_json_errors_that_say_what_is_wrong() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stop = CancellationToken::new();
    let state = state(dir.path(), &stop).await;

    let (status, body) = call(&state, get("/api/events?limit=0")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().is_some_and(|m| m.contains("limit")), "{body}");

    let (status, body) = call(&state, get("/api/events/evt_1_0000")).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));

    let (status, body) =
        call(&state, post_json("/api/events", r#"{"camera_id":"x","description":"d","motion_confidence":2}"#)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["message"].as_str().is_some_and(|m| m.contains("motion_confidence")), "{body}");

    let (status, body) =
        call(&state, post_json("/api/events", r#"{"camera_id":"x","description":"d","colour":"red"}"#)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["message"].as_str().is_some_and(|m| m.contains("colour")), "{body}");

    let (status, body) = call(&state, get("/no/such/path")).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));

    // DNS rebinding: a loopback server answers only loopback names.
    let rebound =
        Request::get("/api/health").header(header::HOST, "evil.example").body(Body::empty()).expect("request");
    let (status, body) = call(&state, rebound).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::MISDIRECTED_REQUEST, Some("misdirected_request")));
    stop.cancel();
}

#[tokio::test]
async fn health_and_metrics_report_the_database_and_counters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stop = CancellationToken::new();
    let state = state(dir.path(), &stop).await;
    let (status, _) = call(&state, post_json("/api/events", r#"{"camera_id":"door","description":"Bell"}"#)).await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, health) = call(&state, get("/api/health")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["status"], "healthy", "{health}");
    assert_eq!(health["database"]["head_seq"], 1, "{health}");

    let (status, metrics) = call(&state, get("/api/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(metrics["websocket"]["connections"]["current"], 0, "{metrics}");
    stop.cancel();
}

fn put_json(uri: &str, body: Option<&str>) -> Request<Body> {
    let request = Request::put(uri).header(header::HOST, "localhost");
    match body {
        Some(body) => request.header(header::CONTENT_TYPE, "application/json").body(Body::from(body.to_owned())),
        None => request.body(Body::empty()),
    }
    .expect("request")
}

#[tokio::test]
async fn an_active_event_ends_once_and_the_change_log_holds_both_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stop = CancellationToken::new();
    let state = state(dir.path(), &stop).await;

    let body = r#"{"camera_id":"bell","description":"Doorbell pressed","state":"active"}"#;
    let (status, opened) = call(&state, post_json("/api/events", body)).await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    assert_eq!((&opened["state"], &opened["end_time"], &opened["seq"]), (&"active".into(), &Value::Null, &1.into()));
    let id = opened["event_id"].as_str().expect("event_id").to_owned();

    let end = format!("/api/events/{id}/end");
    let (status, ended) = call(&state, put_json(&end, Some(r#"{"reason":"answered"}"#))).await;
    assert_eq!(status, StatusCode::OK, "{ended}");
    assert_eq!((&ended["state"], &ended["seq"]), (&"ended".into(), &2.into()));
    assert_eq!(ended["metadata"]["end_reason"], "answered");
    assert!(ended["end_time"].as_str() >= opened["timestamp"].as_str(), "{ended}");
    assert_eq!(ended["created_at"], opened["created_at"]);

    // Ending it again, or an unknown event, says why; nothing is logged.
    let (status, body) = call(&state, put_json(&end, None)).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::CONFLICT, Some("conflict")), "{body}");
    let (status, body) = call(&state, put_json("/api/events/evt_1_0000/end", None)).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{body}");
    let (status, body) = call(&state, put_json(&end, Some(r#"{"colour":"red"}"#))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) =
        call(&state, post_json("/api/events", r#"{"camera_id":"x","description":"d","state":"paused"}"#)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // The current state, and the log of both changes.
    let (_, current) = call(&state, get(&format!("/api/events/{id}"))).await;
    assert_eq!(current, ended);
    let (status, log) = call(&state, get("/api/changes")).await;
    assert_eq!(status, StatusCode::OK);
    let kinds: Vec<(&str, i64)> = log["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| (c["change"].as_str().unwrap_or(""), c["data"]["seq"].as_i64().unwrap_or(0)))
        .collect();
    assert_eq!(kinds, vec![("new", 1), ("end", 2)]);
    assert_eq!(log["changes"][0]["data"], opened, "each change keeps the event as it was then");
    assert_eq!(log["next_after_seq"], Value::Null);
    let (_, first) = call(&state, get("/api/changes?limit=1")).await;
    assert_eq!(first["next_after_seq"], 1);
    let (_, rest) = call(&state, get("/api/changes?after_seq=1&limit=1")).await;
    assert_eq!(rest["changes"][0]["change"], "end");
    let (status, _) = call(&state, get("/api/changes?limit=0")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    stop.cancel();
}

#[tokio::test]
async fn probes_need_no_token_and_readiness_follows_the_process_life() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stop = CancellationToken::new();
    let state = state_with_token(dir.path(), &stop, Some("s3cret")).await;
    assert_eq!(call(&state, get("/api/health")).await.0, StatusCode::UNAUTHORIZED, "the API still wants the token");

    let (status, body) = call(&state, get("/livez")).await;
    assert_eq!((status, &body["status"]), (StatusCode::OK, &Value::from("alive")));
    let (status, body) = call(&state, get("/readyz")).await;
    assert_eq!((status, &body["status"]), (StatusCode::SERVICE_UNAVAILABLE, &Value::from("starting")));
    state.readiness.serving();
    let (status, body) = call(&state, get("/readyz")).await;
    assert_eq!((status, &body["status"]), (StatusCode::OK, &Value::from("ready")));
    state.readiness.stopping();
    let (status, body) = call(&state, get("/readyz")).await;
    assert_eq!((status, &body["status"]), (StatusCode::SERVICE_UNAVAILABLE, &Value::from("stopping")));
    assert_eq!(call(&state, get("/livez")).await.0, StatusCode::OK, "alive while stopping");
    stop.cancel();
}

#[tokio::test]
async fn rest_paging_below_deleted_history_says_reset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stop = CancellationToken::new();
    let state = state(dir.path(), &stop).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let body = format!(r#"{{"camera_id":"door","description":"event {i}"}}"#);
        let (status, created) = call(&state, post_json("/api/events", &body)).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        ids.push(created["event_id"].as_str().expect("id").to_owned());
    }
    // What a retention sweep does to the two oldest.
    let mut store = shared::Store::open(DataDir::new(dir.path()).database()).expect("store");
    assert_eq!(store.delete_events(&ids[..2]).expect("delete"), 2);

    let (_, page) = call(&state, get("/api/changes?after_seq=0")).await;
    assert_eq!(page["reset"]["oldest_seq"], 3, "{page}");
    let seqs: Vec<i64> =
        page["changes"].as_array().expect("changes").iter().map(|c| c["data"]["seq"].as_i64().unwrap_or(0)).collect();
    assert_eq!(seqs, [3, 4], "then everything kept, once");
    let (_, page) = call(&state, get("/api/events?after_seq=1")).await;
    assert_eq!(page["reset"]["oldest_seq"], 3, "{page}");
    for resumed in ["/api/changes?after_seq=2", "/api/events?after_seq=2", "/api/events"] {
        let (_, page) = call(&state, get(resumed)).await;
        assert!(page.get("reset").is_none(), "{resumed}: nothing deleted above 2: {page}");
    }
    stop.cancel();
}

/// Issue 20's review filters: several cameras and labels at once, a least
/// score that belongs to the named label, an event's history, and the
/// camera summary the tiles show.
#[tokio::test]
async fn lists_filter_by_several_cameras_labels_and_a_score_and_an_event_has_its_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stop = CancellationToken::new();
    let state = state(dir.path(), &stop).await;
    let object = |label: &str, confidence: f64| serde_json::json!({"label": label, "confidence": confidence, "bbox": {"x": 1, "y": 1, "width": 10, "height": 10}});
    let mut ids = Vec::new();
    for (camera, objects) in [
        ("door", vec![object("person", 0.9)]),
        ("yard", vec![object("dog", 0.4), object("person", 0.3)]),
        ("drive", vec![object("car", 0.8)]),
        ("door", vec![]),
    ] {
        let body = serde_json::json!({"camera_id": camera, "description": "x", "detected_objects": objects});
        let (status, created) = call(&state, post_json("/api/events", &body.to_string())).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        ids.push(created["event_id"].as_str().expect("id").to_owned());
    }
    let listed = |page: &Value| -> Vec<String> {
        page["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| e["event_id"].as_str().expect("id").to_owned())
            .collect()
    };
    let query = |q: &str| {
        let state = state.clone();
        let uri = format!("/api/events?{q}");
        async move { call(&state, get(&uri)).await }
    };
    let (_, page) = query("camera_id=door,yard").await;
    assert_eq!(listed(&page), [ids[3].clone(), ids[1].clone(), ids[0].clone()]);
    let (_, page) = query("label=person,car").await;
    assert_eq!(listed(&page), [ids[2].clone(), ids[1].clone(), ids[0].clone()]);
    let (_, page) = query("label=person&min_confidence=0.5").await;
    assert_eq!(listed(&page), [ids[0].clone()], "the yard's person is at 0.3; its dog at 0.4 is not a person");
    let (_, page) = query("min_confidence=0.35&camera_id=yard").await;
    assert_eq!(listed(&page), [ids[1].clone()], "any object at the score: the dog");
    for bad in ["min_confidence=1.5", "min_confidence=x", "camera_id=door,front%20door"] {
        let (status, body) = query(bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }

    // An event's history, and the tiles' summary.
    let (status, ended) = call(&state, put_json(&format!("/api/events/{}/end", ids[3]), None)).await;
    assert_eq!(status, StatusCode::CONFLICT, "reported whole, already ended: {ended}");
    let (status, made) =
        call(&state, post_json("/api/events", r#"{"camera_id":"door","description":"Bell","state":"active"}"#)).await;
    assert_eq!(status, StatusCode::CREATED);
    let bell = made["event_id"].as_str().expect("id");
    call(&state, put_json(&format!("/api/events/{bell}/end"), Some(r#"{"reason":"answered"}"#))).await;
    let (status, history) = call(&state, get(&format!("/api/events/{bell}/changes"))).await;
    assert_eq!(status, StatusCode::OK);
    let kinds: Vec<&str> =
        history["changes"].as_array().expect("changes").iter().map(|c| c["change"].as_str().expect("kind")).collect();
    assert_eq!(kinds, ["new", "end"]);
    assert_eq!(history["changes"][1]["data"]["metadata"]["end_reason"], "answered");
    let (status, _) = call(&state, get("/api/events/evt_1_0000/changes")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, cameras) = call(&state, get("/api/cameras?since=2000-01-01T00:00:00Z")).await;
    assert_eq!(status, StatusCode::OK, "{cameras}");
    let door = cameras.as_array().expect("cameras").iter().find(|c| c["camera_id"] == "door").expect("door").clone();
    assert_eq!(
        (door["events"].as_u64(), door["events_since"].as_u64(), door["active"].as_u64()),
        (Some(3), Some(3), Some(0))
    );
    let (status, body) = call(&state, get("/api/cameras?since=yesterday")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    stop.cancel();
}
