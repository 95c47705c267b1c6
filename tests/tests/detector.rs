//! End-to-end tests of the real `detector` binary: persistence, logs, the
//! socket, slow and hostile subscribers, single-instance, and shutdown.

use std::path::Path;
use std::time::Duration;

use e2e::{Process, arg, run_to_end, temp_data_dir};
use shared::Event;
use shared::wire::frame::{Frame, Hello, PROTOCOL_VERSION, Role};
use shared::wire::{FrameReader, FrameWriter, Subscription, handshake};
use tokio::io::AsyncWriteExt;

const READY: &str = "publishing events on the detector socket";
const LONG: Duration = Duration::from_secs(30);

/// Receives frames until `n` events arrived; returns them.
async fn receive_events(sub: &mut Subscription, n: usize) -> Vec<Event> {
    let mut events = Vec::with_capacity(n);
    while events.len() < n {
        let frame = tokio::time::timeout(LONG, sub.next_frame())
            .await
            .expect("an event within the timeout")
            .expect("a readable frame")
            .unwrap_or_else(|| panic!("detector closed after {} of {n} events", events.len()));
        match frame {
            Frame::Change(change) => events.push(change.event),
            Frame::Heartbeat(_) => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
    events
}

fn assert_consecutive(events: &[Event]) {
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event.seq, i as i64 + 1, "seq must be consecutive from 1");
    }
}

/// Both logs hold exactly one whole line per stored event (each is one
/// `new` change), and every JSON line carries byte-for-byte the stored
/// event's JSON.
fn assert_logs_match(data_dir: &Path, stored: &[Event]) {
    let jsonl = std::fs::read_to_string(data_dir.join("events.jsonl")).expect("events.jsonl");
    assert!(jsonl.ends_with('\n'), "no partial last line in events.jsonl");
    let lines: Vec<&str> = jsonl.lines().collect();
    assert_eq!(lines.len(), stored.len(), "one JSON line per stored event");
    for (line, event) in lines.iter().zip(stored) {
        assert_eq!(*line, format!(r#"{{"change":"new","data":{}}}"#, event.to_json()));
    }
    let text = std::fs::read_to_string(data_dir.join("events.log")).expect("events.log");
    assert!(text.ends_with('\n'), "no partial last line in events.log");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), stored.len(), "one text line per stored event");
    for (line, event) in lines.iter().zip(stored) {
        assert!(line.contains(&format!("seq={} new {} state=ended", event.seq, event.event_id)), "{line}");
    }
}

#[tokio::test]
async fn dry_run_persists_logs_and_publishes_every_event_in_order() {
    let dir = temp_data_dir();
    // A data directory that does not exist yet is created.
    let data = dir.path().join("nested/data");
    let socket = data.join("detector.sock");
    let detector = Process::start(
        "detector",
        &[
            "--dry-run",
            "--event-secs",
            "0",
            "--count",
            "20",
            "--rate",
            "200",
            "--wait-subscribers",
            "1",
            "--data-dir",
            arg(&data),
        ],
    );
    detector.wait_for_log(READY, LONG);
    let mut sub = Subscription::connect(&socket, "e2e", &e2e::trust(&data)).await.expect("subscribe");
    assert_eq!(sub.peer().role, Role::Publisher);
    let received = receive_events(&mut sub, 20).await;

    let (status, summary) = detector.wait(LONG);
    assert!(status.success(), "exit status {status}");
    assert!(summary.contains("events created  20"), "summary: {summary}");
    assert!(summary.contains("1 served"), "summary: {summary}");
    assert!(!socket.exists(), "socket file removed on exit");

    let stored = e2e::stored_events(&data);
    assert_eq!(stored.len(), 20);
    assert_consecutive(&stored);
    assert_eq!(received, stored, "subscriber got exactly the stored events, in seq order");
    assert!(stored.iter().all(|e| e.metadata.source == shared::model::EventSource::DryRun));
    assert_logs_match(&data, &stored);
}

#[tokio::test]
async fn a_subscriber_that_never_reads_is_dropped_and_slows_nobody() {
    let dir = temp_data_dir();
    let socket = dir.path().join("detector.sock");
    const N: usize = 3000;
    let detector = Process::start(
        "detector",
        &[
            "--dry-run",
            "--event-secs",
            "0",
            "--count",
            &N.to_string(),
            "--rate",
            "5000",
            // Room for a busy reader to lag 100 ms; the stalled one overflows
            // it (plus the kernel's socket buffer) well before N events.
            "--subscriber-queue",
            "512",
            "--wait-subscribers",
            "2",
            "--data-dir",
            arg(dir.path()),
        ],
    );
    detector.wait_for_log(READY, LONG);
    // The stalled one: says Hello, then never reads a byte.
    let stalled = shared::wire::endpoint::connect(&socket).await.expect("connect");
    let (stalled_read, stalled_write) = tokio::io::split(stalled);
    let (mut stalled_read, mut stalled_write) = (FrameReader::new(stalled_read), FrameWriter::new(stalled_write));
    let hello = Hello::new(Role::Subscriber, "stalled");
    let key = e2e::trust(dir.path()).key().clone();
    handshake(&mut stalled_read, &mut stalled_write, hello, Role::Publisher, &key).await.expect("handshake");

    let mut reader = Subscription::connect(&socket, "reader", &e2e::trust(dir.path())).await.expect("subscribe");
    let received = receive_events(&mut reader, N).await;

    // The detector finished every event while the stalled subscriber still
    // held its connection: creation never waited for it.
    let (status, summary) = detector.wait(LONG);
    assert!(status.success(), "exit status {status}");
    assert!(summary.contains(&format!("events created  {N}")), "summary: {summary}");
    assert!(summary.contains("1 dropped as too slow"), "summary: {summary}");
    let stored = e2e::stored_events(dir.path());
    assert_eq!(stored.len(), N);
    assert_eq!(received, stored, "the reading subscriber missed nothing");
    drop(stalled_write);
}

#[tokio::test]
async fn garbage_and_wrong_version_subscribers_are_dropped_others_continue() {
    let dir = temp_data_dir();
    let socket = dir.path().join("detector.sock");
    let detector = Process::start(
        "detector",
        &[
            "--dry-run",
            "--event-secs",
            "0",
            "--count",
            "10",
            "--rate",
            "100",
            "--wait-subscribers",
            "1",
            "--data-dir",
            arg(dir.path()),
        ],
    );
    detector.wait_for_log(READY, LONG);

    let mut garbage = shared::wire::endpoint::connect(&socket).await.expect("connect");
    garbage.write_all(b"\xff\xff\xff\xffGET / HTTP/1.1\r\n\r\n").await.expect("write");
    detector.wait_for_log("subscriber refused during handshake", LONG);

    let (_r, w) = tokio::io::split(shared::wire::endpoint::connect(&socket).await.expect("connect"));
    let mut future = Hello::new(Role::Subscriber, "from-the-future");
    future.protocol_version = PROTOCOL_VERSION + 1;
    FrameWriter::new(w).write_frame(&Frame::Hello(future)).await.expect("hello");
    let refusal = detector.wait_for_log("protocol version", LONG);
    assert!(refusal.contains("subscriber refused"), "{refusal}");

    let mut good = Subscription::connect(&socket, "good", &e2e::trust(dir.path())).await.expect("subscribe");
    let received = receive_events(&mut good, 10).await;
    let (status, _) = detector.wait(LONG);
    assert!(status.success());
    assert_eq!(received, e2e::stored_events(dir.path()));
}

#[tokio::test]
async fn a_second_detector_on_a_live_socket_is_refused() {
    let dir = temp_data_dir();
    let first =
        Process::start("detector", &["--dry-run", "--event-secs", "0", "--rate", "1", "--data-dir", arg(dir.path())]);
    first.wait_for_log(READY, LONG);

    let (code, _, stderr) =
        run_to_end("detector", &["--dry-run", "--event-secs", "0", "--count", "1", "--data-dir", arg(dir.path())]);
    assert_eq!(code, Some(1), "stderr: {stderr}");
    assert!(stderr.contains("another detector is already listening"), "stderr: {stderr}");

    // The first one is unharmed and still shuts down cleanly.
    first.terminate();
    let (status, _) = first.wait(LONG);
    assert!(status.success());
}

#[tokio::test]
async fn a_stale_socket_file_from_a_crash_is_replaced() {
    let dir = temp_data_dir();
    let socket = dir.path().join("detector.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).expect("bind"));
    assert!(socket.exists(), "the stale file is left behind, as after a crash");
    let (code, _, stderr) = run_to_end(
        "detector",
        &["--dry-run", "--event-secs", "0", "--count", "1", "--rate", "50", "--data-dir", arg(dir.path())],
    );
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert!(stderr.contains("replaced a stale socket file"), "stderr: {stderr}");
    assert_eq!(e2e::stored_events(dir.path()).len(), 1);
}

#[tokio::test]
async fn sigterm_mid_run_finishes_cleanly_and_loses_nothing() {
    let dir = temp_data_dir();
    let socket = dir.path().join("detector.sock");
    let detector = Process::start(
        "detector",
        &["--dry-run", "--event-secs", "0", "--rate", "200", "--wait-subscribers", "1", "--data-dir", arg(dir.path())],
    );
    detector.wait_for_log(READY, LONG);
    let mut sub = Subscription::connect(&socket, "e2e", &e2e::trust(dir.path())).await.expect("subscribe");
    let mut received = receive_events(&mut sub, 10).await;
    detector.terminate();

    // Everything committed before the signal still arrives, then a Bye.
    loop {
        match tokio::time::timeout(LONG, sub.next_frame()).await.expect("frame in time").expect("readable") {
            Some(Frame::Change(change)) => received.push(change.event),
            Some(Frame::Heartbeat(_)) => {}
            Some(Frame::Bye { reason }) => {
                assert_eq!(reason, "detector shutting down");
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let (status, summary) = detector.wait(LONG);
    assert!(status.success(), "exit status {status}");
    assert!(!socket.exists(), "socket file removed");
    let stored = e2e::stored_events(dir.path());
    assert!(stored.len() >= 10);
    assert!(summary.contains(&format!("events created  {}", stored.len())), "summary: {summary}");
    assert_consecutive(&stored);
    assert_eq!(received, stored, "the subscriber got every committed event, once, in order");
    assert_logs_match(dir.path(), &stored);
}

#[test]
fn bad_flags_exit_2_with_a_reason_and_help_documents_every_flag() {
    for (args, complaint) in [
        (&["--dry-run", "--rate", "abc"][..], "--rate"),
        (&["--dry-run", "--rate", "0"][..], "greater than 0"),
        (&["--dry-run", "--camera", "bad id"][..], "invalid camera id"),
        (&["--dry-run", "--count", "many"][..], "--count"),
        (&["--dry-run", "--bogus"][..], "--bogus"),
        (&["--dry-run", "--log-level", "lots=="][..], "--log-level"),
        (&["--dry-run", "--event-secs", "soon"][..], "--event-secs"),
        (&[][..], "--dry-run"),
    ] {
        let (code, _, stderr) = run_to_end("detector", args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(complaint), "{args:?} should mention {complaint}: {stderr}");
    }
    let (code, help, _) = run_to_end("detector", &["--help"]);
    assert_eq!(code, Some(0));
    for flag in [
        "--dry-run",
        "--camera",
        "--rate",
        "--count",
        "--event-secs",
        "--data-dir",
        "--socket",
        "--log-level",
        "LOOKOUT_DATA_DIR",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    let (code, version, _) = run_to_end("detector", &["--version"]);
    assert_eq!(code, Some(0));
    assert!(version.starts_with("detector "), "{version}");
}

/// SIGTERM ends the dry-run events in progress (`metadata.end_reason =
/// "shutdown"`) before the detector exits, and `--count` waits for the
/// ends: no event is ever left active by a clean stop.
#[tokio::test]
async fn a_stopped_dry_run_ends_the_events_in_progress() {
    let dir = temp_data_dir();
    let args = ["--dry-run", "--event-secs", "60", "--rate", "20", "--data-dir", arg(dir.path())];
    let detector = Process::start("detector", &args);
    detector.wait_for_log(READY, LONG);
    let socket = dir.path().join("detector.sock");
    let mut sub = Subscription::connect(&socket, "e2e", &e2e::trust(dir.path())).await.expect("subscribe");
    let announced = receive_events(&mut sub, 5).await;
    assert!(announced.iter().all(|e| e.state == shared::EventState::Active), "lives of about a minute");
    detector.terminate();
    assert!(detector.wait(LONG).0.success());

    let events = e2e::current_events(dir.path());
    assert!(events.len() >= 5, "{events:#?}");
    for event in &events {
        assert_eq!(event.state, shared::EventState::Ended, "{event:#?}");
        assert_eq!(event.metadata.end_reason.as_deref(), Some("shutdown"), "{event:#?}");
    }

    // With --count, the run ends when its events have.
    let (code, _, stderr) = run_to_end(
        "detector",
        &["--dry-run", "--event-secs", "1", "--count", "3", "--rate", "20", "--data-dir", arg(dir.path())],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let ended_on_their_own = e2e::current_events(dir.path()).iter().filter(|e| e.metadata.end_reason.is_none()).count();
    assert_eq!(ended_on_their_own, 3);
}
