//! Event descriptions: the one human sentence every event carries.
//!
//! Dry-run events describe what was (pretend-)recognised; camera events
//! name the objects seen in the episode ("A person and a dog at the front
//! door for 8.0 s."), or, for motion alone, say where in the frame, how
//! large and how long.

use shared::model::DetectedObject;

/// How a camera id reads in a sentence: `front_door` → `front door`.
pub fn place_name(camera_id: &str) -> String {
    camera_id.replace(['_', '-'], " ")
}

/// One human sentence: what, where, how sure.
pub fn describe_objects(place: &str, objects: &[DetectedObject], motion: f64) -> String {
    let motion_pct = (motion * 100.0).round();
    let Some(best) = objects.iter().max_by(|a, b| a.confidence.total_cmp(&b.confidence)) else {
        return format!("Motion at the {place} ({motion_pct}% of the frame changed), nothing recognised.");
    };
    let mut labels: Vec<&str> = objects.iter().map(|o| o.label.as_str()).collect();
    labels.sort_unstable();
    labels.dedup();
    let what = match labels.as_slice() {
        [one] if objects.len() == 1 => article(one),
        [one] => format!("{} {one}s", objects.len()),
        many => {
            let (last, rest) = many.split_last().unwrap_or((&"", &[]));
            format!("{} and {last}", rest.join(", "))
        }
    };
    let mut sentence =
        format!("{what} at the {place} ({}% confident, {motion_pct}% motion).", (best.confidence * 100.0).round());
    if let Some(first) = sentence.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    sentence
}

/// An episode's objects: each label with how many, in order of the best
/// score; the length once it ended.
pub fn describe_tracks(place: &str, seconds: Option<f64>, objects: &[DetectedObject]) -> String {
    let mut counted: Vec<(&str, usize)> = Vec::new();
    for object in objects {
        match counted.iter_mut().find(|(label, _)| *label == object.label) {
            Some((_, n)) => *n += 1,
            None => counted.push((&object.label, 1)),
        }
    }
    let named: Vec<String> = counted
        .iter()
        .map(|&(label, n)| if n == 1 { article(label) } else { format!("{n} {}", plural(label)) })
        .collect();
    let what = match named.split_last() {
        None => "Something".to_owned(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    };
    let lasting = seconds.map(|s| format!(" for {s:.1} s")).unwrap_or_default();
    let mut sentence = format!("{what} at the {place}{lasting}.");
    if let Some(first) = sentence.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    sentence
}

fn plural(noun: &str) -> String {
    match noun {
        "person" => "people".to_owned(),
        "bus" => "buses".to_owned(),
        "skis" | "scissors" | "sheep" => noun.to_owned(),
        _ => format!("{noun}s"),
    }
}

fn article(noun: &str) -> String {
    let vowel = noun.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {noun}", if vowel { "an" } else { "a" })
}

/// A motion episode: where, how large, how long. `objects` are the key
/// frame's regions, largest first, in pixels of a `width`×`height` frame.
pub fn describe_episode(
    place: &str,
    seconds: Option<f64>,
    objects: &[DetectedObject],
    width: u32,
    height: u32,
) -> String {
    // While it goes on, no length yet.
    let lasting = seconds.map(|s| format!(" for {s:.1} s")).unwrap_or_default();
    let Some(largest) = objects.first() else {
        return format!("Motion at the {place}{lasting}.");
    };
    let b = &largest.bbox;
    let area = (b.width * b.height / (f64::from(width) * f64::from(height)) * 100.0).max(1.0).round();
    let regions = match objects.len() {
        1 => "one moving region".to_owned(),
        n => format!("{n} moving regions, the largest"),
    };
    let third = |centre: f64, size: u32| (centre / f64::from(size) * 3.0).clamp(0.0, 2.0) as usize;
    let horizontal = ["left", "centre", "right"][third(b.x + b.width / 2.0, width)];
    let vertical = ["top", "middle", "bottom"][third(b.y + b.height / 2.0, height)];
    let position = match (vertical, horizontal) {
        ("middle", "centre") => "in the centre".to_owned(),
        ("middle", h) => format!("on the {h}"),
        (v, "centre") => format!("at the {v}"),
        (v, h) => format!("at the {v} {h}"),
    };
    format!("Motion at the {place}{lasting}: {regions} covering {area}% of the frame, {position}.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::model::BoundingBox;

    #[test]
    fn tracked_objects_are_named_with_counts_and_the_length() {
        let objects = [object("person", 0.9), object("dog", 0.8), object("person", 0.7)];
        assert_eq!(
            describe_tracks("front door", Some(8.04), &objects),
            "2 people and a dog at the front door for 8.0 s."
        );
        assert_eq!(describe_tracks("yard", None, &objects[1..2]), "A dog at the yard.");
        assert_eq!(
            describe_tracks(
                "drive",
                None,
                &[object("car", 0.9), object("elephant", 0.8), object("bus", 0.6), object("bus", 0.5)]
            ),
            "A car, an elephant and 2 buses at the drive."
        );
    }

    fn object(label: &str, confidence: f64) -> DetectedObject {
        DetectedObject {
            label: label.into(),
            confidence,
            bbox: BoundingBox { x: 0.0, y: 0.0, width: 1.0, height: 1.0 },
        }
    }

    #[test]
    fn descriptions_read_like_sentences() {
        assert_eq!(
            describe_objects("front door", &[object("person", 0.91)], 0.42),
            "A person at the front door (91% confident, 42% motion)."
        );
        assert_eq!(
            describe_objects("garage", &[object("car", 0.8), object("car", 0.6)], 0.3),
            "2 cars at the garage (80% confident, 30% motion)."
        );
        assert_eq!(
            describe_objects("yard", &[object("dog", 0.7), object("person", 0.9)], 0.3),
            "Dog and person at the yard (90% confident, 30% motion)."
        );
        assert!(describe_objects("yard", &[], 0.12).starts_with("Motion at the yard (12%"));
    }

    #[test]
    fn episodes_say_where_how_large_and_how_long() {
        let region = |x: f64, y: f64, w: f64, h: f64| DetectedObject {
            label: "motion".into(),
            confidence: 0.8,
            bbox: BoundingBox { x, y, width: w, height: h },
        };
        assert_eq!(
            describe_episode("yard", Some(3.44), &[region(10.0, 10.0, 64.0, 36.0)], 320, 180),
            "Motion at the yard for 3.4 s: one moving region covering 4% of the frame, at the top left."
        );
        assert_eq!(
            describe_episode(
                "yard",
                Some(1.0),
                &[region(140.0, 70.0, 40.0, 40.0), region(0.0, 0.0, 2.0, 2.0)],
                320,
                180
            ),
            "Motion at the yard for 1.0 s: 2 moving regions, the largest covering 3% of the frame, in the centre."
        );
        assert!(
            describe_episode("yard", Some(1.0), &[region(300.0, 80.0, 10.0, 10.0)], 320, 180)
                .ends_with("on the right.")
        );
        assert_eq!(describe_episode("yard", Some(0.4), &[], 320, 180), "Motion at the yard for 0.4 s.");
        assert_eq!(describe_episode("yard", None, &[], 320, 180), "Motion at the yard.", "while it goes on");
        assert_eq!(place_name("front_door-2"), "front door 2");
    }
}
