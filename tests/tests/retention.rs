//! Retention end to end (SPEC §11): a real detector sweeps a real data
//! directory, a real webserver tells a resuming WebSocket client what was
//! deleted, and a sweep killed with SIGKILL leaves a sound database.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use e2e::ws;
use e2e::{Process, Webserver, arg, temp_data_dir};
use shared::config::DataDir;
use shared::retention::usage;
use shared::{EventState, NewEvent, Store, Timestamp};

/// The camera the pre-filled events belong to: not one the detector
/// simulates, so its active event is nobody's orphan.
const OLD_CAMERA: &str = "porch";

/// An event of `OLD_CAMERA` that started `age_days` ago, with a 4 KB
/// snapshot in two versions.
fn commit_old_event(store: &mut Store, data_dir: &DataDir, age_days: f64, state: EventState) -> String {
    let at = Timestamp::from_unix_ms(Timestamp::now().unix_ms() - (age_days * 86_400_000.0) as i64);
    let mut event = e2e::sample_event(0);
    event.event_id = shared::model::new_event_id(at);
    let rel = DataDir::snapshot_relative_path(at, &event.event_id);
    let file = data_dir.resolve_snapshot(&rel).expect("snapshot path");
    std::fs::create_dir_all(file.parent().expect("day")).expect("day dir");
    std::fs::write(&file, vec![7u8; 4096]).expect("snapshot");
    std::fs::write(file.with_file_name(format!("{}-2.jpg", event.event_id)), vec![7u8; 4096]).expect("version");
    let new = NewEvent {
        event_id: event.event_id,
        camera_id: OLD_CAMERA.into(),
        timestamp: at,
        state,
        end_time: (state == EventState::Ended).then_some(at),
        motion_confidence: 0.5,
        detected_objects: Vec::new(),
        description: "x".repeat(800),
        image_path: Some(rel),
        metadata: event.metadata,
    };
    store.insert(&new).expect("insert").event.event_id
}

/// Every snapshot file's event id (the part before `.jpg` / `-N.jpg`).
fn snapshot_owners(data_dir: &Path) -> HashSet<String> {
    let mut owners = HashSet::new();
    for day in std::fs::read_dir(data_dir.join("snapshots")).into_iter().flatten().flatten() {
        for file in std::fs::read_dir(day.path()).into_iter().flatten().flatten() {
            let name = file.file_name().to_string_lossy().into_owned();
            let stem = name.trim_end_matches(".jpg");
            let id = match stem.rsplit_once('-') {
                Some((id, n)) if n.bytes().all(|b| b.is_ascii_digit()) => id,
                _ => stem,
            };
            owners.insert(id.to_owned());
        }
    }
    owners
}

#[test]
fn a_directory_growing_past_the_high_water_mark_is_swept_before_the_next_regular_sweep() {
    let dir = temp_data_dir();
    // The sweep at start finds nothing to delete, and the next regular one
    // is an hour away: only the size check can sweep within the minute.
    let detector = Process::start(
        "detector",
        &[
            "--dry-run",
            "--rate",
            "300",
            "--event-secs",
            "0",
            "--max-disk",
            "8MB",
            "--sweep-secs",
            "3600",
            "--data-dir",
            arg(dir.path()),
        ],
    );
    let line = detector.wait_for_log("retention sweep events=", Duration::from_secs(60));
    let deleted: u64 = line
        .split("events=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line:?}"));
    assert!(deleted > 0, "{line}");
}

#[tokio::test]
async fn a_detector_brings_a_full_directory_under_max_disk_and_a_resuming_client_is_told() {
    let dir = temp_data_dir();
    let data_dir = DataDir::new(dir.path());
    let mut store = Store::open(data_dir.database()).expect("store");
    let mut old = Vec::new();
    for i in 0..300 {
        old.push(commit_old_event(&mut store, &data_dir, 20.0 - f64::from(i) / 100.0, EventState::Ended));
    }
    let active = commit_old_event(&mut store, &data_dir, 25.0, EventState::Active);
    store.release_free_pages().expect("checkpoint");
    let full = usage(&data_dir).expect("usage").total();
    let max = full / 2;

    let max_arg = max.to_string();
    let detector = Process::start(
        "detector",
        &["--dry-run", "--camera", "front_door", "--rate", "1", "--data-dir", arg(dir.path()), "--max-disk", &max_arg],
    );
    detector.wait_for_log("retention sweep", Duration::from_secs(60));

    let after = usage(&data_dir).expect("usage");
    assert!(after.total() <= max, "{after:?} is over max_disk {max} (was {full})");
    assert!(store.get(&active).expect("get").is_some(), "an active event is never deleted");
    let history = store.history().expect("history");
    assert!(history.deleted_events >= 100, "{history:?}");
    let kept: HashSet<String> = e2e::current_events(dir.path()).into_iter().map(|e| e.event_id).collect();
    let gone: Vec<&String> = old.iter().filter(|id| !kept.contains(*id)).collect();
    assert_eq!(gone.len() as u64, history.deleted_events);
    // Oldest first: every deleted event is older than every kept old one.
    let first_kept = old.iter().position(|id| kept.contains(id)).expect("some kept");
    assert!(old[first_kept..].iter().all(|id| kept.contains(id)), "the oldest went first");
    let owners = snapshot_owners(dir.path());
    assert!(owners.iter().all(|id| kept.contains(id)), "a snapshot was left without its event");
    assert!(old[first_kept..].iter().all(|id| owners.contains(id)), "a kept event lost its snapshot");
    assert_eq!(store.integrity_check().expect("check"), Ok(()));

    // A client resuming from the start is told, then gets what is kept, once.
    let web = Webserver::start(dir.path(), &[]);
    let head = store.head_seq().expect("head");
    let mut socket = ws::connect(&web.ws_url("?after_seq=0"), None).await.expect("connect");
    let (first, _) = ws::next(&mut socket).await.expect("a message");
    assert_eq!(first["type"], "reset", "{first}");
    let oldest = history.oldest_seq.expect("kept history");
    assert_eq!(first["oldest_seq"], oldest, "{first}");
    let mut seen = Vec::new();
    while seen.last().is_none_or(|&s| s < head) {
        let (message, _) = ws::next(&mut socket).await.expect("a message");
        if message["type"] == "event" {
            seen.push(message["data"]["seq"].as_i64().expect("seq"));
        }
    }
    assert!(seen[0] >= oldest, "nothing below the oldest kept change");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "in order, nothing twice");
    let stored: Vec<i64> = e2e::stored_events(dir.path()).iter().map(|e| e.seq).filter(|&s| s <= head).collect();
    assert_eq!(seen[..stored.len().min(seen.len())], stored[..], "everything kept up to the head");
}

#[test]
fn a_sweep_killed_midway_leaves_a_sound_database_and_everything_that_is_kept() {
    let dir = temp_data_dir();
    let data_dir = DataDir::new(dir.path());
    let mut store = Store::open(data_dir.database()).expect("store");
    let mut due = Vec::new();
    for i in 0..6000 {
        due.push(commit_old_event(&mut store, &data_dir, 3.0 + f64::from(i) / 100_000.0, EventState::Ended));
    }
    let recent: Vec<String> = (0..50)
        .map(|i| commit_old_event(&mut store, &data_dir, 0.5 - f64::from(i) / 1000.0, EventState::Ended))
        .collect();
    let active = commit_old_event(&mut store, &data_dir, 5.0, EventState::Active);
    drop(store);

    let mut detector = Process::start(
        "detector",
        // Without dry-run pictures: the only snapshots are the test's own.
        &[
            "--dry-run",
            "--no-snapshots",
            "--camera",
            "front_door",
            "--rate",
            "20",
            "--data-dir",
            arg(dir.path()),
            "--retain-days",
            "1",
        ],
    );
    // Killed as soon as the first batch is committed: the sweep has many
    // more to go.
    let watcher = Store::open(data_dir.database()).expect("watcher");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while watcher.history().expect("history").deleted_events == 0 {
        assert!(std::time::Instant::now() < deadline, "the sweep never started");
        std::thread::sleep(Duration::from_millis(1)); // polling the database, not waiting on time
    }
    detector.kill();
    drop(watcher);

    let store = Store::open(data_dir.database()).expect("reopens");
    assert_eq!(store.integrity_check().expect("check"), Ok(()));
    for id in recent.iter().chain([&active]) {
        assert!(store.get(id).expect("get").is_some(), "{id} was to be kept");
    }
    let kept: HashSet<String> = e2e::current_events(dir.path()).into_iter().map(|e| e.event_id).collect();
    let owners = snapshot_owners(dir.path());
    for id in recent.iter().chain([&active]) {
        assert!(owners.contains(id), "{id} lost its snapshot");
    }
    // A sweep deletes pictures first: an interrupted one may leave due
    // events without them, never a picture without its event.
    assert!(owners.iter().all(|id| kept.contains(id)), "a snapshot was left without its event");
    let left = due.iter().filter(|id| kept.contains(*id)).count();
    eprintln!("killed mid-sweep: {left} of {} due events were still there", due.len());
    assert!(left > 0 && left < due.len(), "the kill landed mid-sweep ({left} of {} left)", due.len());

    // The next start finishes the job.
    let detector = Process::start(
        "detector",
        &["--dry-run", "--camera", "front_door", "--rate", "1", "--data-dir", arg(dir.path()), "--retain-days", "1"],
    );
    detector.wait_for_log("retention sweep", Duration::from_secs(60));
    let kept: HashSet<String> = e2e::current_events(dir.path()).into_iter().map(|e| e.event_id).collect();
    assert!(due.iter().all(|id| !kept.contains(id)), "every due event is gone after the next sweep");
    assert!(recent.iter().all(|id| kept.contains(id)) && kept.contains(&active));
}

#[tokio::test]
async fn changes_retention_deleted_before_an_output_delivered_them_are_counted_not_waited_for() {
    let dir = temp_data_dir();
    let data_dir = DataDir::new(dir.path());
    let mut store = Store::open(data_dir.database()).expect("store");
    for i in 0..5 {
        commit_old_event(&mut store, &data_dir, 40.0 + f64::from(i), EventState::Ended);
    }
    // A webhook last acknowledged before all of them: behind by a month.
    store.set_output_cursor("webhook-1", 0).expect("cursor");
    drop(store);

    let detector = Process::start(
        "detector",
        &["--dry-run", "--camera", "front_door", "--rate", "1", "--data-dir", arg(dir.path()), "--retain-days", "1"],
    );
    let swept = detector.wait_for_log("retention sweep events=", Duration::from_secs(60));
    assert!(swept.contains("events=5 "), "{swept}");

    let closed = format!("http://127.0.0.1:{}/hook", e2e::free_port());
    let web = Webserver::start(dir.path(), &["--webhook", &closed]);
    let health = e2e::health_until(&web.url, "the deleted changes counted", |h| h["outputs"][0]["expired"] == 5).await;
    assert_eq!(health["outputs"][0]["give_ups"], 0, "not refusals: {health}");
    web.process.wait_for_log("retention deleted 5 changes (up to seq 5)", Duration::from_secs(10));
    let metrics = reqwest::get(format!("{}/metrics", web.url)).await.expect("GET").text().await.expect("text");
    assert!(metrics.contains("lookout_output_expired_total{output=\"webhook-1\"} 5"), "{metrics}");
}
