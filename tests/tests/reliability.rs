//! Fault tests: the promises of docs/reliability.md, proved by breaking
//! things. Each prints a one-line figure (`cargo nextest run … --no-capture`
//! shows it); scripts/chaos.sh runs them longer.

use std::path::Path;
use std::time::Duration;

use e2e::ws::Follower;
use e2e::{Process, Tmpfs, Webserver, arg, free_port, run_to_end, temp_data_dir};
use rand::Rng;
use shared::{Event, Store};

const READY: &str = "publishing events on the detector socket";
const LONG: Duration = Duration::from_secs(60);

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A dry-run detector whose events live about a second each (new, maybe
/// an update, end): every change takes a seq, and a kill leaves some active.
fn live_detector(data_dir: &Path, args: &[&str]) -> Process {
    let mut all = vec!["--dry-run", "--event-secs", "0.5", "--data-dir", arg(data_dir)];
    all.extend_from_slice(args);
    Process::start("detector", &all)
}

fn detector(data_dir: &Path, args: &[&str]) -> Process {
    // Events reported whole: one change each, so seqs count events.
    let mut all = vec!["--dry-run", "--event-secs", "0", "--data-dir", arg(data_dir)];
    all.extend_from_slice(args);
    Process::start("detector", &all)
}

/// Fault injection waits a random while: that is the point, not a sync.
async fn random_pause(min_ms: u64, max_ms: u64) {
    let ms = rand::rng().random_range(min_ms..max_ms);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Waits until `/api/health` reports `status`.
async fn wait_for_health(url: &str, status: &str) {
    e2e::health_until(url, status, |health| health["status"] == status).await;
}

/// The database is intact and `seq` runs 1..=N with no hole.
fn assert_store_whole(data_dir: &Path) -> Vec<Event> {
    let store = Store::open(data_dir.join("events.db")).expect("open");
    assert_eq!(store.integrity_check().expect("check"), Ok(()), "PRAGMA integrity_check");
    let events = e2e::stored_events(data_dir);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as i64 + 1, "seq is contiguous");
    }
    events
}

/// Every line of events.jsonl is whole, parses, and is the `new` change of
/// the stored event with that seq; lines come in seq order. Returns how
/// many lines there are.
fn assert_jsonl_matches(data_dir: &Path, stored: &[Event]) -> usize {
    let text = std::fs::read_to_string(data_dir.join("events.jsonl")).expect("events.jsonl");
    assert!(text.is_empty() || text.ends_with('\n'), "no torn last line");
    let mut previous = 0;
    let mut lines = 0;
    for line in text.lines() {
        let change: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("unparsable line {line:?}: {e}"));
        assert_eq!(change["change"], "new", "{line}");
        let event: Event = serde_json::from_value(change["data"].clone()).expect("the event");
        assert!(event.seq > previous, "lines in seq order");
        assert_eq!(&event, &stored[event.seq as usize - 1], "line matches the stored event");
        assert_eq!(line, format!(r#"{{"change":"new","data":{}}}"#, event.to_json()), "byte for byte");
        previous = event.seq;
        lines += 1;
    }
    lines
}

#[tokio::test]
async fn sigkill_at_random_moments_loses_nothing_and_corrupts_nothing() {
    let rounds = env_or("LOOKOUT_CRASH_ROUNDS", 30);
    let dir = temp_data_dir();
    let server = Webserver::start(dir.path(), &[]);
    let client = Follower::start(server.ws_url(""), 0, None);
    for _ in 0..rounds {
        let mut det = detector(dir.path(), &["--rate", "2000"]);
        det.wait_for_log(READY, LONG);
        random_pause(5, 120).await;
        det.kill();
    }
    // A clean run after the last crash: recovery works, torn lines are cut.
    let last = detector(dir.path(), &["--count", "20", "--rate", "1000"]);
    let (status, _) = last.wait(LONG);
    assert!(status.success());

    let stored = assert_store_whole(dir.path());
    let lines = assert_jsonl_matches(dir.path(), &stored);
    let received = client.finish(stored.len() as i64).await;
    assert_eq!(received.seqs.len(), stored.len(), "the WebSocket client got every stored event, once");
    eprintln!(
        "FIGURE crash: {rounds} SIGKILLs of a 2000 ev/s detector; {} events stored (integrity ok, seq contiguous); \
         events.jsonl {lines} whole lines, {} committed in the instant before a kill and not logged; \
         WebSocket client received {} (lost 0, duplicates 0)",
        stored.len(),
        stored.len() - lines,
        received.seqs.len()
    );
}

#[tokio::test]
async fn killing_webserver_and_detector_in_turn_loses_nothing_for_any_client() {
    let rounds = env_or("LOOKOUT_CHAOS_ROUNDS", 20);
    let dir = temp_data_dir();
    let port = free_port();
    let server_args = ["--client-queue", "64"];
    let mut server = Webserver::start_on(dir.path(), port, &server_args);
    // Events with a life: the kills land mid-event, so restarts end orphans.
    let mut det = live_detector(dir.path(), &["--rate", "200"]);
    let steady = Follower::start(server.ws_url(""), 0, None);
    let slow = Follower::start(server.ws_url(""), 0, Some(Duration::from_millis(6)));
    let mut late = None;
    let (mut webserver_kills, mut detector_kills) = (0, 0);
    for round in 0..rounds {
        random_pause(100, 300).await;
        if round % 2 == 0 {
            server.process.kill();
            webserver_kills += 1;
            server = Webserver::start_on(dir.path(), port, &server_args);
        } else {
            det.kill();
            detector_kills += 1;
            det = live_detector(dir.path(), &["--rate", "200"]);
        }
        if round == rounds / 2 {
            late = Some(Follower::start(server.ws_url(""), 0, None));
        }
    }
    det.wait_for_log(READY, LONG);
    det.terminate();
    assert!(det.wait(LONG).0.success());
    let stored = assert_store_whole(dir.path());
    let head = stored.len() as i64;
    let mut report = Vec::new();
    for (name, follower) in [("steady", steady), ("slow", slow), ("late", late.expect("late client started"))] {
        let seen = follower.finish(head).await;
        assert_eq!(seen.seqs, (1..=head).collect::<Vec<_>>(), "{name} got every change exactly once, in order");
        report.push(format!("{name} {} changes over {} connections", seen.seqs.len(), seen.connections));
    }
    // Every event a kill left active was ended by the next start, and the
    // clean stop ended the rest.
    let events = e2e::current_events(dir.path());
    let left_active: Vec<&Event> = events.iter().filter(|e| e.state == shared::EventState::Active).collect();
    assert!(left_active.is_empty(), "{left_active:#?}");
    let orphans = events.iter().filter(|e| e.metadata.end_reason.as_deref() == Some("detector restarted")).count();
    eprintln!(
        "FIGURE chaos: {rounds} rounds ({webserver_kills} webserver and {detector_kills} detector SIGKILLs); \
         {head} changes of {} events stored, {orphans} left active by a kill and ended at the next start; {}; \
         lost 0, duplicates 0",
        events.len(),
        report.join(", ")
    );
}

#[test]
fn a_corrupt_database_at_start_is_a_clear_error_and_is_left_alone() {
    let dir = temp_data_dir();
    let db = dir.path().join("events.db");
    let garbage = vec![0x5au8; 16 * 1024];
    std::fs::write(&db, &garbage).expect("write garbage");
    for binary in ["detector", "webserver"] {
        let args: &[&str] = if binary == "detector" {
            &["--dry-run", "--event-secs", "0", "--count", "1", "--data-dir", arg(dir.path())]
        } else {
            &["--bind", "127.0.0.1:0", "--data-dir", arg(dir.path())]
        };
        let (code, _, stderr) = run_to_end(binary, args);
        assert_eq!(code, Some(1), "{binary}: {stderr}");
        assert!(stderr.contains("events.db") && stderr.contains("not a database"), "{binary}: {stderr}");
    }
    assert_eq!(std::fs::read(&db).expect("read"), garbage, "the file is not touched");
}

#[tokio::test]
async fn a_database_locked_beyond_the_busy_timeout_delays_events_but_loses_none() {
    let dir = temp_data_dir();
    let server = Webserver::start(dir.path(), &[]);
    let client = Follower::start(server.ws_url(""), 0, None);
    let det = detector(dir.path(), &["--rate", "20", "--heartbeat-secs", "0.2"]);
    server.wait_for_detector();
    // Another process takes the write lock and sits on it for longer than
    // the 5 s busy timeout.
    let locker = std::thread::spawn({
        let db = dir.path().join("events.db");
        move || {
            let conn = rusqlite::Connection::open(db).expect("open");
            conn.execute_batch("BEGIN EXCLUSIVE").expect("lock");
            std::thread::sleep(Duration::from_secs(7));
            conn.execute_batch("COMMIT").expect("unlock");
        }
    });
    det.wait_for_log("database refused the event; holding it", LONG);
    wait_for_health(&server.url, "degraded").await;
    locker.join().expect("locker");
    det.wait_for_log("database accepts writes again", LONG);
    wait_for_health(&server.url, "healthy").await;
    det.terminate();
    let (status, summary) = det.wait(LONG);
    assert!(status.success());
    let stored = assert_store_whole(dir.path());
    assert!(summary.contains(&format!("events created  {}", stored.len())), "{summary}");
    assert!(summary.contains("0 events kept in pending.jsonl"), "{summary}");
    let seen = client.finish(stored.len() as i64).await;
    eprintln!(
        "FIGURE locked: write lock held 7 s (> 5 s busy timeout); {} events stored, {} delivered, lost 0",
        stored.len(),
        seen.seqs.len()
    );
}

#[tokio::test]
async fn a_full_disk_holds_events_until_they_can_be_stored() {
    let Some(disk) = Tmpfs::mount("4m") else {
        eprintln!("SKIPPED: mounting a tmpfs needs root (CI runs as root)");
        return;
    };
    let data = disk.path();
    let server = Webserver::start(data, &[]);
    let client = Follower::start(server.ws_url(""), 0, None);
    // Events that outlive the test (a minute, the simulator's longest):
    // retention never deletes an active event, so the emergency sweep of a
    // full disk finds nothing to delete and the database must refuse. (With
    // ended events, deleting the oldest can keep pace with new ones on a
    // loaded machine, and the disk is never full for long.)
    let det = Process::start(
        "detector",
        &["--dry-run", "--event-secs", "600", "--data-dir", arg(data), "--rate", "20", "--heartbeat-secs", "0.2"],
    );
    server.wait_for_detector();

    // A filler takes every free byte.
    let filler = data.join("filler");
    let mut file = std::fs::File::create(&filler).expect("filler");
    let chunk = vec![0u8; 64 * 1024];
    while std::io::Write::write_all(&mut file, &chunk).is_ok() {}
    let _ = std::io::Write::write_all(&mut file, &[0u8; 512]);
    drop(file);
    det.wait_for_log("database refused the event; holding it", LONG);
    wait_for_health(&server.url, "degraded").await;
    std::fs::remove_file(&filler).expect("free the space");
    det.wait_for_log("database accepts writes again", LONG);

    det.terminate();
    let (status, summary) = det.wait(LONG);
    assert!(status.success());
    let stored = assert_store_whole(data);
    let events: std::collections::HashSet<&str> = stored.iter().map(|e| e.event_id.as_str()).collect();
    assert!(summary.contains(&format!("events created  {}", events.len())), "every created event is stored: {summary}");
    let seen = client.finish(stored.len() as i64).await;
    eprintln!(
        "FIGURE disk-full: filesystem filled under a running detector, then freed; {} changes of {} events stored, {} delivered, lost 0",
        stored.len(),
        events.len(),
        seen.seqs.len()
    );
}

#[test]
fn a_read_only_data_directory_is_a_clear_error_at_start() {
    let Some(disk) = Tmpfs::mount("4m") else {
        eprintln!("SKIPPED: mounting a tmpfs needs root (CI runs as root)");
        return;
    };
    let (code, _, _) = run_to_end(
        "detector",
        &["--dry-run", "--event-secs", "0", "--count", "3", "--rate", "100", "--data-dir", arg(disk.path())],
    );
    assert_eq!(code, Some(0));
    disk.set_read_only(true);
    let (code, _, stderr) =
        run_to_end("detector", &["--dry-run", "--event-secs", "0", "--count", "1", "--data-dir", arg(disk.path())]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("events.db") && stderr.contains("writable"), "{stderr}");
    disk.set_read_only(false);
    assert_eq!(e2e::stored_events(disk.path()).len(), 3, "nothing lost");
}

#[tokio::test]
async fn events_held_at_shutdown_are_kept_and_committed_on_the_next_start() {
    let Some(disk) = Tmpfs::mount("4m") else {
        eprintln!("SKIPPED: mounting a tmpfs needs root (CI runs as root)");
        return;
    };
    let data = disk.path();
    let det = detector(data, &["--rate", "50"]);
    det.wait_for_log(READY, LONG);
    // Lock the database (held across shutdown) so events pile up.
    let db = data.join("events.db");
    let conn = rusqlite::Connection::open(&db).expect("open");
    conn.execute_batch("BEGIN EXCLUSIVE").expect("lock");
    det.wait_for_log("database refused the event; holding it", LONG);
    det.terminate();
    let (status, summary) = det.wait(LONG);
    assert!(status.success());
    assert!(!summary.contains(" 0 events kept in pending.jsonl"), "{summary}");
    conn.execute_batch("COMMIT").expect("unlock");
    drop(conn);
    let pending = std::fs::read_to_string(data.join("pending.jsonl")).expect("pending.jsonl written");
    let kept = pending.lines().count();
    assert!(kept > 0);

    let before = e2e::stored_events(data).len();
    let next = detector(data, &["--count", "1", "--rate", "100"]);
    let (status, _) = next.wait(LONG);
    assert!(status.success());
    let stored = assert_store_whole(data);
    assert_eq!(stored.len(), before + kept + 1, "kept events committed first, then the new one");
    assert!(!data.join("pending.jsonl").exists(), "pending.jsonl is removed once committed");
    eprintln!("FIGURE pending: {kept} events held at shutdown by a locked database, all committed on the next start");
}
