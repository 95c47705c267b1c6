//! The WebSocket message formats (SPEC §4), as JSON text.
//!
//! Server → client: `event` (one change of an event: `new`, `update` or
//! `end`), `reset` (retention deleted history the client asked to resume
//! from), `ping`, `pong`, `error`. Client → server: `ping`, `pong`. An
//! event message's `data` is exactly [`Event::to_json`] of the event right
//! after the change — for its latest change, the same bytes
//! `GET /api/events/{event_id}` returns — because the envelope is built
//! around the already-serialised event instead of re-serialising it.

use serde::Deserialize;
use shared::store::History;
use shared::{Change, Timestamp};

/// `{"type":"event","change":"new|update|end","data":<the event's canonical JSON>}`.
pub fn change_envelope(change: &Change) -> String {
    format!(r#"{{"type":"event","change":"{}","data":{}}}"#, change.kind.as_str(), change.event.to_json())
}

/// What a client resuming at `after_seq` must be told when retention has
/// deleted changes it may rely on, or `None`.
pub fn reset_notice(history: &History, after_seq: i64) -> Option<serde_json::Value> {
    history.resets(after_seq).then(|| {
        let oldest = history.oldest_seq.unwrap_or(history.deleted_through + 1);
        serde_json::json!({
            "oldest_seq": oldest,
            "reason": format!(
                "retention deleted changes up to seq {}; kept history starts at seq {oldest}",
                history.deleted_through
            ),
        })
    })
}

/// `{"type":"reset","oldest_seq":M,"reason":"…"}`: sent before the replay.
pub fn reset(notice: &serde_json::Value) -> String {
    let mut message = notice.clone();
    if let Some(fields) = message.as_object_mut() {
        fields.insert("type".into(), "reset".into());
    }
    message.to_string()
}

/// `{"type":"ping","timestamp":"…"}`.
pub fn ping(now: Timestamp) -> String {
    format!(r#"{{"type":"ping","timestamp":"{now}"}}"#)
}

/// `{"type":"pong","timestamp":"…"}`, the answer to a client's ping.
pub fn pong(now: Timestamp) -> String {
    format!(r#"{{"type":"pong","timestamp":"{now}"}}"#)
}

/// `{"type":"error","message":"…"}`.
pub fn error(message: &str) -> String {
    serde_json::json!({ "type": "error", "message": message }).to_string()
}

/// What a client may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientMessage {
    Ping,
    Pong,
}

/// Parses a client text message, or says (for an `error` reply) what is wrong.
pub fn parse_client(text: &str) -> Result<ClientMessage, String> {
    #[derive(Deserialize)]
    struct Envelope {
        #[serde(rename = "type")]
        kind: Option<serde_json::Value>,
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|_| "Invalid JSON format".to_owned())?;
    if !value.is_object() {
        return Err(r#"Messages must be JSON objects with a "type" field"#.to_owned());
    }
    let envelope: Envelope = serde_json::from_value(value).map_err(|_| "Invalid JSON format".to_owned())?;
    match envelope.kind.as_ref().and_then(|k| k.as_str()) {
        Some("ping") => Ok(ClientMessage::Ping),
        Some("pong") => Ok(ClientMessage::Pong),
        Some(other) => {
            let shown: String = other.chars().take(40).collect();
            Err(format!("Unknown message type {shown:?}; expected \"ping\" or \"pong\""))
        }
        None => Err(r#"Missing "type" field; expected "ping" or "pong""#.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages() {
        assert_eq!(parse_client(r#"{"type":"pong","timestamp":"x"}"#), Ok(ClientMessage::Pong));
        assert_eq!(parse_client(r#"{"type":"ping"}"#), Ok(ClientMessage::Ping));
        assert_eq!(parse_client("{not json"), Err("Invalid JSON format".into()));
        assert!(parse_client("[1,2]").expect_err("array").contains("JSON objects"));
        assert!(parse_client(r#"{"type":"subscribe"}"#).expect_err("unknown").contains("Unknown message type"));
        assert!(parse_client(r#"{"kind":"ping"}"#).expect_err("no type").contains("Missing"));
        assert!(parse_client(r#"{"type":7}"#).expect_err("number").contains("Missing"));
    }

    pub(crate) fn sample_change() -> Change {
        let now = Timestamp::from_unix_ms(1_795_626_196_123);
        let event = shared::NewEvent {
            event_id: shared::model::new_event_id(now),
            camera_id: "door".into(),
            timestamp: now,
            state: shared::EventState::Active,
            end_time: None,
            motion_confidence: 0.5,
            detected_objects: vec![],
            description: "A \"quoted\" cat.".into(),
            image_path: None,
            metadata: shared::model::EventMetadata {
                source: shared::model::EventSource::Api,
                inference_ms: None,
                frame_number: None,
                producer: None,
                end_reason: None,
            },
        }
        .commit(7, now);
        Change { kind: shared::ChangeKind::Update, event }
    }

    #[test]
    fn change_envelope_names_the_change_and_wraps_the_canonical_json() {
        let change = sample_change();
        let envelope = change_envelope(&change);
        let value: serde_json::Value = serde_json::from_str(&envelope).expect("valid JSON");
        assert_eq!((&value["type"], &value["change"]), (&"event".into(), &"update".into()));
        assert_eq!(envelope, format!(r#"{{"type":"event","change":"update","data":{}}}"#, change.event.to_json()));
    }

    #[test]
    fn a_reset_is_said_only_below_what_retention_deleted() {
        let history = History {
            oldest_seq: Some(40),
            oldest_time: None,
            deleted_through: 35,
            deleted_events: 12,
            deleted_bytes: 0,
            last_sweep: None,
        };
        assert_eq!(reset_notice(&history, 35), None);
        let notice = reset_notice(&history, 10).expect("reset");
        let message: serde_json::Value = serde_json::from_str(&reset(&notice)).expect("json");
        assert_eq!((&message["type"], &message["oldest_seq"]), (&"reset".into(), &40.into()));
        assert!(message["reason"].as_str().expect("reason").contains("up to seq 35"));
        let all_gone = History { oldest_seq: None, ..history };
        assert_eq!(reset_notice(&all_gone, 0).expect("reset")["oldest_seq"], 36);
    }

    #[test]
    fn server_messages_are_json_with_a_type() {
        let now = Timestamp::from_unix_ms(1_795_626_196_123);
        for text in [ping(now), pong(now), error("bad \"quote\""), change_envelope(&sample_change())] {
            let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
            assert!(value["type"].is_string(), "{text}");
        }
        assert_eq!(ping(now), r#"{"type":"ping","timestamp":"2026-11-25T17:03:16.123Z"}"#);
    }
}
