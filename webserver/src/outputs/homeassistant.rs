//! Home Assistant MQTT discovery: what Lookout announces under
//! `homeassistant/` so each camera shows up as a device with its entities,
//! no YAML written by hand. Pure: a camera and its labels in, config
//! topics and payloads out; [`super::mqtt`] publishes them (retained) and
//! clears a removed camera's (an empty retained payload).
//!
//! Per camera one device (`identifiers: ["lookout_<camera>"]`) with:
//!
//! * a motion `binary_sensor` (`device_class: motion`) on
//!   `<prefix>/<camera>/motion`;
//! * a count `sensor` per label on `<prefix>/<camera>/<label>`;
//! * an `image` entity on `<prefix>/<camera>/snapshot` (JPEG bytes);
//! * a last-event `sensor`, the description as its state and the event as
//!   attributes, on `<prefix>/<camera>/last_event`;
//! * a camera-state `sensor` (`device_class: enum`) on
//!   `<prefix>/<camera>/state`.
//!
//! Every entity is available while `<prefix>/available` says `online`
//! (the MQTT connection's last will says `offline`). Unique ids are made of
//! the prefix, camera and entity alone, so they stay the same across
//! restarts and Home Assistant keeps its history and customisations.

use serde_json::{Value, json};

use super::mqtt::Topics;

/// One entity's discovery config: where it goes and what it says.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub topic: String,
    pub payload: Value,
}

/// The discovery configs of `camera` with count sensors for `labels`.
pub fn configs<'a>(
    discovery_prefix: &str,
    topics: &Topics,
    camera: &str,
    labels: impl IntoIterator<Item = &'a String>,
) -> Vec<Config> {
    let node = format!("{}_{}", id_part(topics.prefix()), id_part(camera));
    let device = json!({
        "identifiers": [node],
        "name": camera,
        "manufacturer": "Lookout",
        "model": "Camera",
    });
    let entity = |component: &str, object: &str, name: &str, extra: Value| {
        let mut payload = json!({
            "name": name,
            "unique_id": format!("{node}_{object}"),
            "object_id": format!("{node}_{object}"),
            "availability_topic": topics.available(),
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": device,
        });
        if let (Some(payload), Value::Object(extra)) = (payload.as_object_mut(), extra) {
            payload.extend(extra);
        }
        Config { topic: format!("{discovery_prefix}/{component}/{node}/{object}/config"), payload }
    };
    let mut configs = vec![
        entity(
            "binary_sensor",
            "motion",
            "Motion",
            json!({
                "state_topic": topics.camera(camera, "motion"),
                "payload_on": "ON",
                "payload_off": "OFF",
                "device_class": "motion",
            }),
        ),
        entity(
            "image",
            "snapshot",
            "Snapshot",
            json!({ "image_topic": topics.camera(camera, "snapshot"), "content_type": "image/jpeg" }),
        ),
        entity(
            "sensor",
            "last_event",
            "Last event",
            json!({
                "state_topic": topics.camera(camera, "last_event"),
                "value_template": "{{ value_json.description }}",
                "json_attributes_topic": topics.camera(camera, "last_event"),
                "icon": "mdi:cctv",
            }),
        ),
        entity(
            "sensor",
            "camera_state",
            "Camera state",
            json!({
                "state_topic": topics.camera(camera, "state"),
                "device_class": "enum",
                "options": ["up", "reconnecting", "failed", "ended"],
                "entity_category": "diagnostic",
            }),
        ),
    ];
    for label in labels {
        let object = format!("{}_count", id_part(label));
        let name = format!("{} count", capitalised(label));
        configs.push(entity(
            "sensor",
            &object,
            &name,
            json!({
                "state_topic": topics.label(camera, label),
                "state_class": "measurement",
                "unit_of_measurement": "objects",
                "icon": "mdi:counter",
            }),
        ));
    }
    configs
}

/// `text` as discovery ids need it: lower-case letters, digits and `_`.
fn id_part(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect()
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_camera_is_one_device_with_stable_ids_under_the_discovery_prefix() {
        let topics = Topics::new("lookout");
        let labels = ["person".to_owned(), "traffic light".to_owned()];
        let all = configs("homeassistant", &topics, "front-door", &labels);
        assert_eq!(all.len(), 4 + labels.len());
        for config in &all {
            assert!(
                config.topic.starts_with("homeassistant/") && config.topic.ends_with("/config"),
                "{}",
                config.topic
            );
            assert_eq!(config.payload["device"]["identifiers"][0], "lookout_front_door");
            assert_eq!(config.payload["availability_topic"], "lookout/available");
            let id = config.payload["unique_id"].as_str().expect("unique_id");
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{id}");
        }
        let count = all.iter().find(|c| c.topic.contains("traffic_light_count")).expect("a count sensor");
        assert_eq!(count.payload["state_topic"], "lookout/front-door/traffic light");
        assert_eq!(count.payload["name"], "Traffic light count");
        assert_eq!(configs("homeassistant", &topics, "front-door", &labels), all, "the same every time");
    }
}
