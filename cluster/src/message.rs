//! The change message on `lookout.changes.…`: pure encoding and decoding,
//! no I/O.
//!
//! * Body: `{"change":"new|update|end","data":{…the event…}}`, the same
//!   shape as an `events.jsonl` line. The event's `seq` in the body is the
//!   publisher's local one and means nothing to a reader: the stream
//!   sequence is the change's `seq`.
//! * Headers: `Lookout-Schema` (this module's [`SCHEMA_VERSION`]; a reader
//!   refuses a version it does not know, instead of guessing), and for a
//!   detector's changes `Lookout-Outbox` (its database's outbox id) and
//!   `Lookout-Local-Seq`, which say at restart how far its outbox reached
//!   the stream. `Nats-Msg-Id` makes a re-sent copy a duplicate the server
//!   drops.
//!
//! Anyone who can publish on the subjects can send anything, so decoding
//! checks the schema, the JSON and the event's own rules, and names what
//! is wrong.

use async_nats::HeaderMap;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use shared::{Change, ChangeKind, Event};

/// The version of the message format this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

pub const SCHEMA_HEADER: &str = "Lookout-Schema";
pub const OUTBOX_HEADER: &str = "Lookout-Outbox";
pub const LOCAL_SEQ_HEADER: &str = "Lookout-Local-Seq";
/// JetStream's deduplication header.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";

/// Largest body accepted: an event is bounded by the model's limits to
/// well under this.
pub const MAX_BODY: usize = 256 * 1024;

#[derive(Serialize)]
struct BodyRef<'a> {
    change: ChangeKind,
    data: &'a Event,
}

#[derive(Deserialize)]
struct Body {
    change: ChangeKind,
    data: Event,
}

/// Where in a detector's outbox a message came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The outbox's id (one per detector database and stream).
    pub outbox: String,
    /// The change's `seq` in that database.
    pub local_seq: i64,
}

/// A message read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub change: Change,
    /// Set on a detector's changes, absent on the API's.
    pub origin: Option<Origin>,
}

/// Why a message is not a change this build applies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("no {SCHEMA_HEADER} header: not a Lookout change message")]
    NoSchema,
    #[error(
        "{SCHEMA_HEADER} {0:?} is not a schema version this build knows (it reads {SCHEMA_VERSION}); upgrade Lookout"
    )]
    UnknownSchema(String),
    #[error("body of {0} bytes is over the {MAX_BODY}-byte limit")]
    TooLarge(usize),
    #[error("body is not a change: {0}")]
    Malformed(String),
    #[error("invalid event: {0}")]
    Invalid(String),
    #[error("{LOCAL_SEQ_HEADER} {0:?} is not a positive integer")]
    BadLocalSeq(String),
}

/// The headers and body of a detector's change, `local_seq` in `outbox`.
pub fn encode_outbox_change(change: &Change, outbox: &str) -> (HeaderMap, Bytes) {
    let mut headers = schema_headers();
    let local_seq = change.seq().to_string();
    headers.insert(MSG_ID_HEADER, format!("{outbox}-{local_seq}").as_str());
    headers.insert(OUTBOX_HEADER, outbox);
    headers.insert(LOCAL_SEQ_HEADER, local_seq.as_str());
    (headers, body(change))
}

/// The headers and body of a change a webserver's API makes; `msg_id`
/// makes a retried request one change, not two.
pub fn encode_api_change(change: &Change, msg_id: &str) -> (HeaderMap, Bytes) {
    let mut headers = schema_headers();
    headers.insert(MSG_ID_HEADER, msg_id);
    (headers, body(change))
}

fn schema_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(SCHEMA_HEADER, SCHEMA_VERSION.to_string().as_str());
    headers
}

fn body(change: &Change) -> Bytes {
    // A struct of strings, numbers and options always serialises.
    serde_json::to_vec(&BodyRef { change: change.kind, data: &change.event }).unwrap_or_default().into()
}

/// Reads a message back, checking everything a reader relies on.
pub fn decode(headers: Option<&HeaderMap>, payload: &[u8]) -> Result<Decoded, MessageError> {
    let header = |name: &str| headers.and_then(|h| h.get(name)).map(|v| v.as_str().to_owned());
    let schema = header(SCHEMA_HEADER).ok_or(MessageError::NoSchema)?;
    if schema.trim().parse::<u32>().ok() != Some(SCHEMA_VERSION) {
        return Err(MessageError::UnknownSchema(schema));
    }
    if payload.len() > MAX_BODY {
        return Err(MessageError::TooLarge(payload.len()));
    }
    let body: Body = serde_json::from_slice(payload).map_err(|e| MessageError::Malformed(e.to_string()))?;
    body.data.validate().map_err(|e| MessageError::Invalid(e.to_string()))?;
    let origin = match (header(OUTBOX_HEADER), header(LOCAL_SEQ_HEADER)) {
        (Some(outbox), Some(seq)) => {
            let local_seq = seq.parse::<i64>().ok().filter(|s| *s > 0).ok_or(MessageError::BadLocalSeq(seq))?;
            Some(Origin { outbox, local_seq })
        }
        _ => None,
    };
    Ok(Decoded { change: Change { kind: body.change, event: body.data }, origin })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::model::{EventMetadata, EventSource, EventState};
    use shared::{NewEvent, Timestamp};

    fn change(seq: i64) -> Change {
        let at = Timestamp::from_unix_ms(1_764_000_000_000);
        let new = NewEvent {
            event_id: "evt_1764000000000_00af".into(),
            camera_id: "door".into(),
            timestamp: at,
            state: EventState::Active,
            end_time: None,
            motion_confidence: 0.5,
            detected_objects: Vec::new(),
            description: "Motion at the door".into(),
            image_path: None,
            metadata: EventMetadata {
                source: EventSource::DryRun,
                inference_ms: None,
                frame_number: None,
                producer: None,
                end_reason: None,
            },
        };
        Change { kind: ChangeKind::New, event: new.commit(seq, at) }
    }

    #[test]
    fn an_outbox_change_round_trips_with_its_origin() {
        let (headers, body) = encode_outbox_change(&change(42), "0a1b");
        let decoded = decode(Some(&headers), &body).expect("decodes");
        assert_eq!(decoded.change, change(42));
        assert_eq!(decoded.origin, Some(Origin { outbox: "0a1b".into(), local_seq: 42 }));
        assert_eq!(headers.get(MSG_ID_HEADER).map(|v| v.as_str()), Some("0a1b-42"));
    }

    #[test]
    fn an_api_change_has_no_origin() {
        let (headers, body) = encode_api_change(&change(1), "api-x");
        assert_eq!(decode(Some(&headers), &body).expect("decodes").origin, None);
    }

    #[test]
    fn what_is_not_a_change_is_refused_with_its_reason() {
        let (headers, body) = encode_outbox_change(&change(1), "0a1b");
        assert_eq!(decode(None, &body), Err(MessageError::NoSchema));
        let mut future = headers.clone();
        future.insert(SCHEMA_HEADER, "2");
        assert_eq!(decode(Some(&future), &body), Err(MessageError::UnknownSchema("2".into())));
        assert!(matches!(decode(Some(&headers), b"{\"change\":\"new\""), Err(MessageError::Malformed(_))));
        let bad_camera = body.as_ref().to_vec();
        let bad_camera = String::from_utf8(bad_camera).expect("utf-8").replace("\"door\"", "\"a.b\"");
        assert!(matches!(decode(Some(&headers), bad_camera.as_bytes()), Err(MessageError::Invalid(_))));
        let mut bad_seq = headers.clone();
        bad_seq.insert(LOCAL_SEQ_HEADER, "-3");
        assert_eq!(decode(Some(&bad_seq), &body), Err(MessageError::BadLocalSeq("-3".into())));
        assert!(matches!(decode(Some(&headers), &vec![b' '; MAX_BODY + 1]), Err(MessageError::TooLarge(_))));
    }
}
