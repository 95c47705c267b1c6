//! `docs/asyncapi.json` describes what `/ws/events` really sends and
//! accepts: messages captured from the real binaries are validated against
//! its schemas (strict: a field the document does not name fails), and
//! every message type it lists is seen, and no other.

use std::collections::BTreeSet;
use std::time::Duration;

use e2e::ws::Message;
use e2e::{Process, Webserver, arg, temp_data_dir};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;

const LONG: Duration = Duration::from_secs(30);

fn document() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/asyncapi.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("docs/asyncapi.json")).expect("valid JSON")
}

/// The component message names an operation lists (`#/channels/events/messages/X` → X).
fn operation_messages(doc: &Value, operation: &str) -> BTreeSet<String> {
    doc["operations"][operation]["messages"]
        .as_array()
        .expect("operation messages")
        .iter()
        .filter_map(|m| m["$ref"].as_str())
        .filter_map(|r| r.rsplit('/').next())
        .map(str::to_owned)
        .collect()
}

/// The document's message (component name) for a server message `type`.
fn server_message(kind: &str) -> &'static str {
    match kind {
        "event" => "event",
        "ping" => "serverPing",
        "pong" => "serverPong",
        "error" => "error",
        "reset" => "reset",
        other => panic!("the server sent a message type the document does not know: {other:?}"),
    }
}

#[tokio::test]
async fn every_message_the_server_sends_or_accepts_matches_the_asyncapi_document() {
    let doc = document();
    assert_eq!(doc["asyncapi"], "3.0.0");
    let dir = temp_data_dir();
    let server = Webserver::start(dir.path(), &["--heartbeat-secs", "1"]);
    // Short lives, so every kind of change (new, update, end) flows.
    let args = ["--dry-run", "--data-dir", arg(dir.path()), "--rate", "20", "--count", "40", "--event-secs", "0.3"];
    let detector = Process::start("detector", &args);
    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_url("?after_seq=0")).await.expect("connect");
    let http = reqwest::Client::new();
    e2e::create_event(&http, &server.url, &serde_json::json!({"camera_id": "bell", "description": "Doorbell"})).await;
    // An event that starts, then ends: a `new` and an `end` change.
    let open = serde_json::json!({"camera_id": "gate", "description": "Gate open", "state": "active"});
    let opened = e2e::create_event(&http, &server.url, &open).await;
    let id = opened["event_id"].as_str().expect("event_id");
    let ended = http.put(format!("{}/api/events/{id}/end", server.url)).send().await.expect("PUT end");
    assert_eq!(ended.status(), 200);
    // Retention deletes the gate event (as a sweep would): a client resuming
    // from the start is told first.
    let mut store = shared::Store::open(dir.path().join("events.db")).expect("store");
    assert_eq!(store.delete_events(&[id.to_owned()]).expect("delete"), 1);
    let (mut resumed, _) = tokio_tungstenite::connect_async(server.ws_url("?after_seq=0")).await.expect("connect");
    let reset = loop {
        match tokio::time::timeout(LONG, resumed.next()).await.expect("a first message") {
            Some(Ok(Message::Text(text))) => break serde_json::from_str::<Value>(&text).expect("JSON"),
            Some(Ok(_)) => {}
            other => panic!("no first message: {other:?}"),
        }
    };
    assert_eq!(reset["type"], "reset", "{reset}");

    let client_sent = [
        ("clientPing", serde_json::json!({"type": "ping", "timestamp": "2026-12-02T00:00:00.000Z"})),
        ("clientPong", serde_json::json!({"type": "pong"})),
    ];
    for (_, message) in &client_sent {
        socket.send(Message::text(message.to_string())).await.expect("send");
    }
    // Not in the document: each gets an error reply, the connection stays.
    for junk in [r#"{"type":"subscribe"}"#, "not json"] {
        socket.send(Message::text(junk)).await.expect("send");
    }

    let mut captured: Vec<Value> = Vec::new();
    let wanted = |c: &[Value]| {
        let count = |t: &str| c.iter().filter(|m| m["type"] == t).count();
        let changes = |k: &str| c.iter().filter(|m| m["type"] == "event" && m["change"] == k).count();
        // 40 dry-run events and 2 API ones, the "bell" born ended.
        changes("new") >= 42
            && changes("end") >= 41
            && changes("update") >= 1
            && count("ping") >= 1
            && count("pong") >= 1
            && count("error") >= 2
    };
    tokio::time::timeout(LONG, async {
        while !wanted(&captured) {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    let message: Value = serde_json::from_str(&text).expect("JSON text frames");
                    if message["type"] == "ping" {
                        // Answered, or a client silent for two intervals is closed.
                        let pong = serde_json::json!({"type": "pong", "timestamp": message["timestamp"]});
                        socket.send(Message::text(pong.to_string())).await.expect("send a pong");
                    }
                    captured.push(message);
                }
                Some(Ok(_)) => {}
                other => panic!("the stream ended early: {other:?}\n{}", server.process.logs().join("\n")),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not every kind of message arrived: {captured:#?}"));

    captured.push(reset);
    let mut checks: Vec<(String, Value)> = captured
        .iter()
        .map(|m| {
            (format!("#/components/messages/{}/payload", server_message(m["type"].as_str().unwrap_or(""))), m.clone())
        })
        .collect();
    checks.extend(client_sent.iter().map(|(name, m)| (format!("#/components/messages/{name}/payload"), m.clone())));
    let refs: Vec<(&str, Value)> = checks.iter().map(|(r, m)| (r.as_str(), m.clone())).collect();
    let results = e2e::validate_json_schemas(&doc, &refs);
    let failures: Vec<String> = results
        .iter()
        .zip(&checks)
        .filter_map(|(problem, (r, m))| problem.as_ref().map(|p| format!("{r}: {p}\n  {m}")))
        .collect();
    assert!(failures.is_empty(), "messages that do not match docs/asyncapi.json:\n{}", failures.join("\n"));

    // Every message the document says the server sends was seen, and the
    // client messages it lists are the ones the server accepts.
    let seen: BTreeSet<String> =
        captured.iter().map(|m| server_message(m["type"].as_str().unwrap_or("")).to_owned()).collect();
    assert_eq!(operation_messages(&doc, "receiveEvents"), seen);
    let accepted: BTreeSet<String> = client_sent.iter().map(|(name, _)| (*name).to_owned()).collect();
    assert_eq!(operation_messages(&doc, "clientMessages"), accepted);
    let errors: Vec<&Value> = captured.iter().filter(|m| m["type"] == "error").collect();
    assert_eq!(errors.len(), 2, "only the two junk messages got errors: {errors:?}");
    assert!(captured.iter().any(|m| m["data"]["metadata"]["source"] == "api"), "the API-created event");
    let changes: BTreeSet<&str> = captured.iter().filter_map(|m| m["change"].as_str()).collect();
    assert_eq!(changes, BTreeSet::from(["end", "new", "update"]), "the changes this run made");

    // The schemas are strict: an event with a field the document does not
    // name, or without one it requires, is refused.
    let event = captured.iter().find(|m| m["type"] == "event").expect("an event").clone();
    let mut extra = event.clone();
    extra["data"]["colour"] = "red".into();
    let mut missing = event;
    missing["data"].as_object_mut().expect("object").remove("seq");
    let results = e2e::validate_json_schemas(
        &doc,
        &[("#/components/messages/event/payload", extra), ("#/components/messages/event/payload", missing)],
    );
    assert!(results.iter().all(Option::is_some), "{results:?}");
    detector.wait(LONG);
}

#[test]
fn the_document_names_the_close_codes_and_the_token() {
    let doc = document();
    let channel = &doc["channels"]["events"];
    for code in ["1001", "1008", "1009"] {
        assert!(channel["x-close-codes"][code].as_str().is_some_and(|t| !t.is_empty()), "close code {code}");
    }
    assert!(channel["bindings"]["ws"]["query"]["properties"]["token"].is_object(), "the token parameter");
    assert!(channel["bindings"]["ws"]["query"]["properties"]["after_seq"].is_object());
}
