//! Cluster mode (SPEC §10) with real `nats-server`s: detectors publish
//! through their outboxes, webservers keep copies of the stream, clients
//! move between webservers, and faults lose nothing and duplicate nothing.
//!
//! "Identical" below means the same `(seq, event_id, change)` list, read
//! from each webserver's `/api/changes`; "exactly once" means a detector's
//! own change log (its SQLite, in local `seq` order) appears in the stream
//! as the same `(event_id, change)` sequence, nothing missing, nothing
//! twice.

use std::path::Path;
use std::time::{Duration, Instant};

use e2e::nats::{self, NatsServer};
use e2e::{Process, Webserver, arg, temp_data_dir, ws};
use serde_json::json;

type ChangeRow = (i64, String, String);

/// Every change a webserver's copy holds, oldest first.
async fn copy_of(url: &str) -> Vec<ChangeRow> {
    let http = reqwest::Client::new();
    let mut rows = Vec::new();
    let mut after = 0;
    loop {
        let page: serde_json::Value = http
            .get(format!("{url}/api/changes?after_seq={after}&limit=1000"))
            .send()
            .await
            .expect("GET /api/changes")
            .json()
            .await
            .expect("JSON");
        for change in page["changes"].as_array().expect("changes") {
            let data = &change["data"];
            rows.push((
                data["seq"].as_i64().expect("seq"),
                data["event_id"].as_str().expect("event_id").to_owned(),
                change["change"].as_str().expect("change").to_owned(),
            ));
        }
        match page["next_after_seq"].as_i64() {
            Some(next) => after = next,
            None => return rows,
        }
    }
}

/// A detector's own change log: `(event_id, change)` in local `seq` order.
fn outbox_of(data_dir: &Path) -> Vec<(String, String)> {
    let db = rusqlite::Connection::open(data_dir.join("events.db")).expect("open the detector's database");
    let mut statement = db.prepare("SELECT event_id, kind FROM changes ORDER BY seq").expect("prepare");
    statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).expect("query").collect::<Result<_, _>>().expect("rows")
}

/// Waits until the copy at `url` holds `n` changes; returns them.
async fn copy_with(url: &str, n: usize) -> Vec<ChangeRow> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let copy = copy_of(url).await;
        if copy.len() >= n {
            return copy;
        }
        assert!(Instant::now() < deadline, "{url} holds {} of {n} changes", copy.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One line of docs/reliability.md's cluster table, printed once the
/// test's assertions have shown nothing lost and nothing twice.
fn figures(fault: &str, committed: usize, copies: usize) {
    eprintln!(
        "figures: {fault}: {committed} changes committed, {committed} in each of {copies} copies, 0 lost, 0 duplicated"
    );
}

/// The detector's changes within the copy, in stream order.
fn of_detector(copy: &[ChangeRow], outbox: &[(String, String)]) -> Vec<(String, String)> {
    let ids: std::collections::HashSet<&str> = outbox.iter().map(|(id, _)| id.as_str()).collect();
    copy.iter().filter(|(_, id, _)| ids.contains(id.as_str())).map(|(_, id, kind)| (id.clone(), kind.clone())).collect()
}

/// A temp dir and one `nats-server` storing in it; `None` (the test is
/// skipped, loudly) only outside CI on a machine without `nats-server`.
fn one_node(test: &str) -> Option<(tempfile::TempDir, NatsServer)> {
    if !nats::available(test) {
        return None;
    }
    let dir = temp_data_dir();
    let server = NatsServer::start(dir.path());
    Some((dir, server))
}

/// A dry-run detector in cluster mode. Its events live about half a second
/// (at least 1 s): with the default 4 s, the log-normal tail made one of 60
/// events outlive a minute often enough that `--count` runs timed out.
fn detector(data_dir: &Path, nats: &str, node: &str, more: &[&str]) -> Process {
    let mut args =
        vec!["--dry-run", "--event-secs", "0.5", "--data-dir", arg(data_dir), "--nats", nats, "--node-id", node];
    args.extend_from_slice(more);
    Process::start("detector", &args)
}

fn webserver(data_dir: &Path, nats: &str, node: &str) -> Webserver {
    Webserver::start(data_dir, &["--nats", nats, "--node-id", node])
}

fn exits_cleanly(process: Process, code: i32) {
    let (status, _) = process.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(code), "exit status");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_detectors_and_three_webservers_agree_on_every_change_and_a_client_moves_between_them() {
    let Some((dir, server)) = one_node("two_detectors_and_three_webservers…") else { return };
    let url = server.url();
    let webs: Vec<Webserver> =
        (1..=3).map(|i| webserver(&dir.path().join(format!("web{i}")), &url, &format!("web{i}"))).collect();
    let follower = ws::Follower::start(webs[0].ws_url(""), 0, None);
    let (barn, house) = (dir.path().join("barn"), dir.path().join("house"));
    let detectors = [
        detector(&barn, &url, "barn", &["--camera", "barn_a", "--camera", "barn_b", "--rate", "20", "--count", "25"]),
        detector(&house, &url, "house", &["--camera", "porch", "--rate", "20", "--count", "25"]),
    ];
    for d in detectors {
        exits_cleanly(d, 0);
    }

    // An API event on the third webserver, ended from the first two at once:
    // one end change. Each answers with it, or 409 when its copy already
    // held the other's end before it looked; never two ends.
    let http = reqwest::Client::new();
    let created = e2e::create_event(
        &http,
        &webs[2].url,
        &json!({"camera_id": "gate", "state": "active", "motion_confidence": 0.5, "description": "Gate opened"}),
    )
    .await;
    let id = created["event_id"].as_str().expect("event_id");
    // Copies follow the stream on their own: wait until both hold the new
    // event, else one could rightly answer 404.
    let (barn_log, house_log) = (outbox_of(&barn), outbox_of(&house));
    let total = barn_log.len() + house_log.len() + 2;
    for web in &webs[..2] {
        copy_with(&web.url, total - 1).await;
    }
    let end = |url: String| {
        let http = http.clone();
        let id = id.to_owned();
        async move {
            let response = http.put(format!("{url}/api/events/{id}/end")).send().await.expect("PUT end");
            let status = response.status();
            let body = response.json::<serde_json::Value>().await.expect("JSON");
            match status.as_u16() {
                200 => Some(body),
                409 => None,
                other => panic!("PUT end on {url}: {other} {body}"),
            }
        }
    };
    let (a, b) = tokio::join!(end(webs[0].url.clone()), end(webs[1].url.clone()));
    let ended: Vec<_> = [a, b].into_iter().flatten().collect();
    assert!(!ended.is_empty(), "one of the two ends succeeds");
    assert!(ended.iter().all(|e| e["seq"] == ended[0]["seq"]), "every success answers with the one end: {ended:?}");

    let first = copy_with(&webs[0].url, total).await;
    assert_eq!(first.len(), total, "every change once: {first:?}");
    let seqs: Vec<i64> = first.iter().map(|(seq, ..)| *seq).collect();
    assert_eq!(seqs, (1..=total as i64).collect::<Vec<_>>(), "the stream's sequence is the seq, with no hole");
    for web in &webs[1..] {
        assert_eq!(copy_with(&web.url, total).await, first, "{} holds the same copy", web.url);
    }
    assert_eq!(of_detector(&first, &barn_log), barn_log, "barn's changes once each, in its commit order");
    assert_eq!(of_detector(&first, &house_log), house_log, "house's changes once each, in its commit order");
    figures("2 detectors + API on 3 webservers", total, webs.len());

    // The client of the first webserver saw every change live; one moving
    // to the second at the middle, with after_seq, misses nothing and sees
    // nothing twice (the follower fails on any gap or repeat).
    let middle = total as i64 / 2;
    let live = follower.finish(total as i64).await;
    assert_eq!(live.seqs, seqs);
    let before = ws::Follower::start(webs[0].ws_url(""), 0, None).finish(middle).await;
    let after = ws::Follower::start(webs[1].ws_url(""), middle, None).finish(total as i64).await;
    let moved: Vec<i64> = before.seqs.into_iter().chain(after.seqs).collect();
    assert_eq!(moved, seqs, "a client moving between webservers sees every change once");

    // Each webserver's clients get the copy's changes, byte for byte the same.
    let mut replays = Vec::new();
    for web in &webs {
        let mut socket = ws::connect(&web.ws_url("?after_seq=0"), None).await.expect("connect");
        let events = ws::events(&mut socket, total).await;
        replays.push(events.into_iter().map(|(_, raw)| raw).collect::<Vec<_>>());
    }
    assert!(replays.windows(2).all(|w| w[0] == w[1]), "every webserver sends the same bytes for each change");

    let health: serde_json::Value =
        reqwest::get(format!("{}/api/health", webs[0].url)).await.expect("health").json().await.expect("JSON");
    let cluster = &health["cluster"];
    assert_eq!(cluster["connected"], true, "{health:#}");
    assert_eq!(cluster["applied_seq"], total as i64, "{health:#}");
    assert_eq!(cluster["malformed"], 0);
    let nodes: Vec<&str> =
        health["detectors"].as_array().expect("detectors").iter().filter_map(|d| d["socket"].as_str()).collect();
    assert!(nodes.contains(&"nats:barn") && nodes.contains(&"nats:house"), "both detectors' heartbeats: {nodes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detector_killed_between_publish_and_ack_publishes_each_change_once_after_restart() {
    let Some((dir, server)) = one_node("a_detector_killed_between_publish_and_ack…") else { return };
    let url = server.url();
    let web = webserver(&dir.path().join("web"), &url, "web");
    let data = dir.path().join("barn");
    let crashing = detector(&data, &url, "barn", &["--rate", "40", "--count", "30", "--test-crash-after-publish", "7"]);
    exits_cleanly(crashing, 86);
    // The 7th change is in the stream, and the database does not know it.
    let restarted = detector(&data, &url, "barn", &["--rate", "40", "--count", "10"]);
    restarted.wait_for_log("through=7", Duration::from_secs(30));
    exits_cleanly(restarted, 0);

    let outbox = outbox_of(&data);
    let copy = copy_with(&web.url, outbox.len()).await;
    assert_eq!(of_detector(&copy, &outbox), outbox, "every change once, in commit order");
    assert_eq!(copy.len(), outbox.len(), "nothing else in the stream");
    figures("detector killed between publish and ack", outbox.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_down_for_thirty_seconds_loses_nothing_and_everything_arrives_in_order_after() {
    let Some((dir, mut server)) = one_node("nats_down_for_thirty_seconds…") else { return };
    let url = server.url();
    let web = webserver(&dir.path().join("web"), &url, "web");
    let follower = ws::Follower::start(web.ws_url(""), 0, None);
    let data = dir.path().join("barn");
    let running = detector(&data, &url, "barn", &["--rate", "5", "--heartbeat-secs", "1"]);
    let before = copy_with(&web.url, 5).await.len();

    server.kill();
    e2e::health_until(&web.url, "the cluster link down", |h| h["cluster"]["connected"] == false).await;
    let committed_at_kill = outbox_of(&data).len();
    // The outage itself: the detector keeps detecting and committing.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let committed = outbox_of(&data).len();
    assert!(committed >= committed_at_kill + 50, "the detector kept committing: {committed_at_kill} → {committed}");
    let during = copy_of(&web.url).await.len();
    assert!(during >= before, "the webserver still serves its copy while NATS is down: {during} < {before}");

    server.restart();
    let caught_up = copy_with(&web.url, committed).await.len();
    assert!(caught_up >= committed);
    running.terminate();
    exits_cleanly(running, 0);
    let outbox = outbox_of(&data);
    let copy = copy_with(&web.url, outbox.len()).await;
    assert_eq!(of_detector(&copy, &outbox), outbox, "every change once, in commit order, after the outage");
    figures(&format!("NATS down 30 s ({} committed meanwhile)", committed - committed_at_kill), outbox.len(), 1);
    let live = follower.finish(outbox.len() as i64).await;
    assert_eq!(live.seqs, (1..=outbox.len() as i64).collect::<Vec<_>>(), "the live client saw each once, in order");
    let health = e2e::health_until(&web.url, "the cluster link back", |h| h["cluster"]["connected"] == true).await;
    assert_eq!(health["cluster"]["consumer_lag"], 0, "{health:#}");
}

/// Regression: a detector stopped while NATS was down waited forever for
/// its last heartbeat to be flushed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_binaries_stop_promptly_while_nats_is_down() {
    let Some((dir, mut server)) = one_node("both_binaries_stop_promptly_while_nats_is_down") else { return };
    let url = server.url();
    let web = webserver(&dir.path().join("web"), &url, "web");
    let running = detector(&dir.path().join("barn"), &url, "barn", &["--rate", "20", "--heartbeat-secs", "1"]);
    copy_with(&web.url, 5).await;

    server.kill();
    e2e::health_until(&web.url, "the cluster link down", |h| h["cluster"]["connected"] == false).await;
    running.terminate();
    web.process.terminate();
    // The detector's drain gives NATS 5 s to come back; no more.
    let (status, _) = running.wait(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "the detector's exit status");
    let (status, _) = web.process.wait(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "the webserver's exit status");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_that_are_not_changes_are_skipped_counted_and_never_applied() {
    let Some((dir, server)) = one_node("messages_that_are_not_changes…") else { return };
    let url = server.url();
    let web = webserver(&dir.path().join("web"), &url, "web");
    e2e::health_until(&web.url, "the stream followed", |h| h["cluster"]["connected"] == true).await;
    web.process.wait_for_log("following the cluster stream", Duration::from_secs(30));

    let client = async_nats::connect(&url).await.expect("raw NATS client");
    let js = async_nats::jetstream::new(client);
    let valid = r#"{"change":"new","data":{"seq":1,"event_id":"evt_1764000000000_00af","camera_id":"door","timestamp":"2026-11-24T16:00:00.000Z","state":"active","end_time":null,"motion_confidence":0.5,"detected_objects":[],"description":"Motion","image_path":null,"metadata":{"source":"detector","inference_ms":null,"frame_number":null,"producer":null,"end_reason":null},"created_at":"2026-11-24T16:00:00.000Z","updated_at":"2026-11-24T16:00:00.000Z"}}"#;
    let headers = |schema: Option<&str>| {
        let mut h = async_nats::HeaderMap::new();
        if let Some(schema) = schema {
            h.insert("Lookout-Schema", schema);
        }
        h
    };
    let bad: [(Option<&str>, String); 4] = [
        (None, "hello".to_owned()),
        (Some("1"), "{\"change\":\"new\",".to_owned()),
        (Some("99"), valid.to_owned()),
        (Some("1"), valid.replace("\"door\"", "\"front door\"")),
    ];
    for (schema, body) in bad {
        js.publish_with_headers("lookout.changes.intruder.door", headers(schema), body.into_bytes().into())
            .await
            .expect("publish")
            .await
            .expect("stored");
    }
    let http = reqwest::Client::new();
    e2e::create_event(
        &http,
        &web.url,
        &json!({"camera_id": "door", "state": "ended", "motion_confidence": 0.3, "description": "Motion"}),
    )
    .await;

    let health = e2e::health_until(&web.url, "four skipped messages", |h| h["cluster"]["applied"] == 1).await;
    assert_eq!(health["cluster"]["malformed"], 4, "{health:#}");
    let copy = copy_of(&web.url).await;
    assert_eq!(copy.iter().map(|(seq, _, kind)| (*seq, kind.as_str())).collect::<Vec<_>>(), [(5, "new")]);
    let metrics = reqwest::get(format!("{}/metrics", web.url)).await.expect("GET /metrics").text().await.expect("text");
    let families = e2e::parse_openmetrics(&metrics);
    for (name, value) in
        [("lookout_cluster_malformed", 4.0), ("lookout_cluster_applied", 1.0), ("lookout_cluster_connected", 1.0)]
    {
        assert_eq!(e2e::metric_samples(&families, name)[0]["value"], value, "{name}: {metrics}");
    }
    web.process.wait_for_log("not a schema version this build knows", Duration::from_secs(5));
    assert_eq!(web.process.logs().iter().filter(|l| l.contains("skipped a message")).count(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webserver_killed_mid_apply_or_wiped_rebuilds_the_same_copy_from_the_stream() {
    let Some((dir, server)) = one_node("a_webserver_killed_mid_apply_or_wiped…") else { return };
    let url = server.url();
    let (one_dir, two_dir) = (dir.path().join("web1"), dir.path().join("web2"));
    let mut one = webserver(&one_dir, &url, "web1");
    let data = dir.path().join("barn");
    let producing = detector(&data, &url, "barn", &["--rate", "50", "--count", "60"]);
    // Killed while changes are arriving.
    copy_with(&one.url, 10).await;
    one.process.kill();
    exits_cleanly(producing, 0);
    let outbox = outbox_of(&data);
    let one = Webserver::start(&one_dir, &["--nats", &url, "--node-id", "web1"]);
    let reference = copy_with(&one.url, outbox.len()).await;
    assert_eq!(of_detector(&reference, &outbox), outbox, "after kill -9: every change once");

    let two = webserver(&two_dir, &url, "web2");
    assert_eq!(copy_with(&two.url, outbox.len()).await, reference);
    two.process.terminate();
    let _ = two.process.wait(Duration::from_secs(10));
    std::fs::remove_dir_all(&two_dir).expect("wipe the data dir");
    let two = webserver(&two_dir, &url, "web2");
    assert_eq!(copy_with(&two.url, outbox.len()).await, reference, "a wiped webserver rebuilds the same copy");
    figures("webserver killed mid-apply; another wiped and rebuilt", outbox.len(), 2);
}

/// The name of the stream's leader, as a webserver's health reports it
/// once `until` holds for that health.
async fn leader_of(web: &str, what: &str, until: impl Fn(&serde_json::Value) -> bool) -> String {
    let health = e2e::health_until(web, what, |h| h["cluster"]["leader"].is_string() && until(h)).await;
    health["cluster"]["leader"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_node_cluster_loses_nothing_when_a_node_and_then_the_stream_leader_are_killed() {
    if !nats::available("a_three_node_cluster…") {
        return;
    }
    let dir = temp_data_dir();
    let mut servers = NatsServer::cluster(dir.path());
    let urls = nats::urls(&servers);
    let start = |name: &str| {
        Webserver::start(&dir.path().join(name), &["--nats", &urls, "--node-id", name, "--nats-replicas", "3"])
    };
    let (one, two) = (start("web1"), start("web2"));
    let follower = ws::Follower::start(two.ws_url(""), 0, None);
    let data = dir.path().join("barn");
    let running = detector(&data, &urls, "barn", &["--rate", "20", "--nats-replicas", "3"]);

    // A follower of the stream first, then (with it back) the leader.
    let leader = leader_of(&one.url, "a stream leader", |_| true).await;
    let old = servers.iter().position(|s| s.name == leader).expect("the leader is one of the three");
    let follower_node = (old + 1) % servers.len();
    let seen = copy_with(&one.url, 20).await.len();
    servers[follower_node].kill();
    let seen = copy_with(&one.url, seen + 40).await.len();
    servers[follower_node].restart();
    e2e::health_until(&one.url, "every replica current again", |h| {
        let peers = h["cluster"]["peers"].as_array().map(Vec::as_slice).unwrap_or_default();
        peers.len() == 2 && peers.iter().all(|p| p["current"] == true && p["offline"] == false)
    })
    .await;

    servers[old].kill();
    let new_leader = leader_of(&one.url, "a new stream leader", |h| h["cluster"]["leader"] != leader.as_str()).await;
    assert_ne!(new_leader, leader);
    copy_with(&one.url, seen + 80).await;
    servers[old].restart();

    running.terminate();
    exits_cleanly(running, 0);
    let outbox = outbox_of(&data);
    let copy = copy_with(&one.url, outbox.len()).await;
    assert_eq!(of_detector(&copy, &outbox), outbox, "every change once, in commit order, through both kills");
    assert_eq!(copy.len(), outbox.len(), "nothing else in the stream");
    assert_eq!(copy_with(&two.url, outbox.len()).await, copy, "both copies are the same");
    let live = follower.finish(copy.last().map_or(0, |(seq, _, _)| *seq)).await;
    let seqs: Vec<i64> = copy.iter().map(|(seq, _, _)| *seq).collect();
    assert_eq!(live.seqs, seqs, "the live client saw each change once, in order");
    figures("3 NATS nodes, replicas 3: kill -9 of a follower, then of the stream leader", outbox.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detector_and_a_webserver_on_one_host_share_its_data_directory() {
    let Some((dir, server)) = one_node("a_detector_and_a_webserver_on_one_host…") else { return };
    let url = server.url();
    let host = dir.path().join("host");
    let web = webserver(&host, &url, "web");
    exits_cleanly(detector(&host, &url, "barn", &["--rate", "50", "--count", "20"]), 0);
    let outbox = outbox_of(&host);
    let copy = copy_with(&web.url, outbox.len()).await;
    assert_eq!(of_detector(&copy, &outbox), outbox, "the copy holds the detector's changes once each");
    assert_eq!(outbox.len(), copy.len(), "and the detector's own database holds nothing of the copy's");
    assert!(host.join("stream-LOOKOUT.db").is_file(), "the copy is its own file");
}

/// SPEC §10: a snapshot taken on one host reaches a webserver on another
/// through the stream's object store bucket, put before the change naming
/// it; the webserver keeps it on disk and serves it even with NATS gone.
/// The detector's retention becomes the stream's and the bucket's limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_taken_on_one_host_is_served_by_a_webserver_on_another() {
    let Some((dir, mut server)) = one_node("a_snapshot_taken_on_one_host…") else { return };
    let url = server.url();
    let (camera_host, web_host) = (dir.path().join("barn"), dir.path().join("web"));
    let web = webserver(&web_host, &url, "web");
    // A box crosses a grey scene every 2.5 s: camera events with snapshots.
    let camera = "walk=lavfi:color=c=gray:s=320x180:r=10[bg];color=c=white:s=40x40:r=10[fg];\
                  [bg][fg]overlay=x='20+mod(t\\,2.5)*120':y=70:enable='lt(mod(t\\,2.5)\\,1.5)'";
    let detector = Process::start(
        "detector",
        &[
            "--data-dir",
            arg(&camera_host),
            "--no-objects",
            "--camera",
            camera,
            "--detect-fps",
            "5",
            "--episode-end-secs",
            "0.5",
            "--dedup-secs",
            "0",
            "--retain-days",
            "2",
            "--nats",
            &url,
            "--node-id",
            "barn",
        ],
    );

    // An ended camera event in the webserver's copy.
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (id, image_path) = loop {
        let page: serde_json::Value = http
            .get(format!("{}/api/events?limit=100", web.url))
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("JSON");
        let ended =
            page["events"].as_array().expect("events").iter().find(|e| {
                e["state"] == "ended" && e["image_path"].is_string() && e["metadata"]["source"] == "detector"
            });
        if let Some(event) = ended {
            break (
                event["event_id"].as_str().expect("id").to_owned(),
                event["image_path"].as_str().expect("path").to_owned(),
            );
        }
        assert!(Instant::now() < deadline, "no ended camera event with a snapshot reached the copy: {page:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let taken = std::fs::read(camera_host.join(&image_path)).expect("the detector's snapshot file");
    assert!(!web_host.join(&image_path).exists(), "the webserver's host has no such file of its own");
    let image = |http: reqwest::Client, url: String| async move {
        let response = http.get(url).send().await.expect("GET image");
        assert_eq!(response.status(), 200, "the snapshot is served");
        assert_eq!(response.headers()["content-type"], "image/jpeg");
        response.bytes().await.expect("body").to_vec()
    };
    let image_url = format!("{}/api/events/{id}/image", web.url);
    assert_eq!(image(http.clone(), image_url.clone()).await, taken, "the same bytes as the detector took");
    let cached = web_host.join("stream-LOOKOUT-snapshots").join(&image_path);
    assert_eq!(std::fs::read(&cached).expect("kept in the cache"), taken);
    let health =
        e2e::health_until(&web.url, "the bucket's size", |h| h["cluster"]["snapshot_bytes"].as_u64() > Some(0)).await;
    assert_eq!(health["cluster"]["snapshot_bucket"], "LOOKOUT_snapshots", "{health:#}");

    // The detector's retention (2 days) is the stream's and the bucket's age limit.
    let js = async_nats::jetstream::new(async_nats::connect(&url).await.expect("raw NATS client"));
    for stream in ["LOOKOUT", "OBJ_LOOKOUT_snapshots"] {
        let info = js.get_stream(stream).await.expect("stream").cached_info().clone();
        assert_eq!(info.config.max_age, Duration::from_secs(2 * 86_400), "{stream}'s max_age");
    }

    // NATS gone: the cached picture is still served.
    detector.terminate();
    server.kill();
    assert_eq!(image(http, image_url).await, taken, "served from the cache without NATS");
}

/// SPEC §10/§11: a webserver's copy keeps no more than the stream. Once the
/// stream's limits dropped every change of some events, a webserver drops
/// them too (at start, then every ten minutes), and a client resuming
/// below what is left is told `reset`, as with a detector's retention.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_drops_what_the_stream_dropped_and_says_so() {
    let Some((dir, server)) = one_node("a_copy_drops_what_the_stream_dropped…") else { return };
    let url = server.url();
    let web_dir = dir.path().join("web");
    let web = webserver(&web_dir, &url, "web");
    let data = dir.path().join("barn");
    exits_cleanly(detector(&data, &url, "barn", &["--rate", "50", "--count", "20"]), 0);
    let outbox = outbox_of(&data);
    let before = copy_with(&web.url, outbox.len()).await;
    let head = before.last().expect("changes").0;

    // The operator shortens the stream's age limit (as `nats stream edit`
    // would); the server drops every change it holds.
    let js = async_nats::jetstream::new(async_nats::connect(&url).await.expect("raw NATS client"));
    let mut config = js.get_stream("LOOKOUT").await.expect("stream").cached_info().config.clone();
    (config.max_age, config.duplicate_window) = (Duration::from_secs(1), Duration::from_secs(1));
    js.update_stream(config).await.expect("limits set");
    let deadline = Instant::now() + Duration::from_secs(30);
    while js.get_stream("LOOKOUT").await.expect("stream").cached_info().state.messages > 0 {
        assert!(Instant::now() < deadline, "the stream never dropped its changes");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    web.process.terminate();
    let _ = web.process.wait(Duration::from_secs(10));
    let web = webserver(&web_dir, &url, "web");
    web.process.wait_for_log("trimmed the cluster copy", Duration::from_secs(30));
    let page: serde_json::Value =
        reqwest::get(format!("{}/api/changes?after_seq=0", web.url)).await.expect("GET").json().await.expect("JSON");
    assert_eq!(page["changes"], json!([]), "every event was ended, so every one went: {page:#}");
    assert_eq!(page["reset"]["oldest_seq"], head + 1, "a client resuming at 0 is told: {page:#}");

    // The copy goes on at the stream's sequence.
    let http = reqwest::Client::new();
    let made = e2e::create_event(&http, &web.url, &json!({"camera_id": "door", "description": "Bell"})).await;
    assert_eq!(made["seq"], head + 1);
}
