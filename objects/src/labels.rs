//! The 80 COCO class names, in the order of the model's score channels.

/// Class names by channel index.
pub const COCO: [&str; 80] = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
];

/// What a camera wants events for unless told otherwise: the things that
/// move past a door or a driveway (SPEC §8).
pub const DEFAULT_WANTED: [&str; 9] = ["person", "bicycle", "car", "motorcycle", "bus", "truck", "bird", "cat", "dog"];

/// The channel of a class name, if COCO has it.
pub fn class_of(label: &str) -> Option<usize> {
    COCO.iter().position(|name| *name == label)
}

/// The class name of a channel, if COCO has one.
pub fn label_of(class: usize) -> Option<&'static str> {
    COCO.get(class).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_labels_are_coco_classes() {
        assert!(DEFAULT_WANTED.iter().all(|label| class_of(label).is_some()));
        assert_eq!(class_of("person"), Some(0));
        assert_eq!(class_of("cat"), Some(15));
        assert_eq!(class_of("toothbrush"), Some(79));
        assert_eq!(class_of("unicorn"), None);
        assert!((0..COCO.len()).all(|class| label_of(class).and_then(class_of) == Some(class)));
        assert_eq!(label_of(COCO.len()), None);
    }
}
