//! Objects followed across frames: which detection in this frame is the
//! same thing as one in an earlier frame.
//!
//! Association is by overlap alone (greedy, best IoU first), not by label:
//! a model that calls one thing "dog" in one frame and "cat" in the next
//! still sees one animal, and the track's label is decided by vote. A
//! track is **confirmed** once it was seen in at least
//! [`TrackerConfig::confirm_hits`] frames with a median score over the
//! threshold (the median, as Frigate does, so one lucky frame does not make
//! an object). Tracks stay in the tracker until [`Tracker::reset`] (the end
//! of the episode), so an event lists every object that was in it; only
//! those seen in the last [`TrackerConfig::max_missed`] frames can match.

use crate::decode::{CLASSES, Detection};
use crate::geometry::Rect;
use crate::labels::COCO;

/// How tracks are made and kept.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackerConfig {
    /// Least overlap with a track's last box for a detection to continue it.
    pub match_iou: f32,
    /// Frames a track may go unseen and still be continued.
    pub max_missed: u64,
    /// Frames a track must be seen in to be confirmed.
    pub confirm_hits: u32,
    /// Most tracks per episode; detections beyond it start none.
    pub max_tracks: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self { match_iou: 0.3, max_missed: 10, confirm_hits: 2, max_tracks: 64 }
    }
}

/// One object across frames.
#[derive(Debug, Clone)]
pub struct Track {
    pub id: u32,
    /// The frame it was first seen in.
    pub first_frame: u64,
    votes: Vec<u32>,
    scores: Vec<f32>,
    /// Its best detection: score, box and frame.
    pub best_score: f32,
    pub best_rect: Rect,
    pub best_frame: u64,
    last_rect: Rect,
    last_frame: u64,
}

impl Track {
    fn new(id: u32, frame: u64, detection: &Detection) -> Self {
        let mut votes = vec![0; CLASSES];
        votes[detection.class.min(CLASSES - 1)] += 1;
        Self {
            id,
            first_frame: frame,
            votes,
            scores: vec![detection.score],
            best_score: detection.score,
            best_rect: detection.rect,
            best_frame: frame,
            last_rect: detection.rect,
            last_frame: frame,
        }
    }

    fn add(&mut self, frame: u64, detection: &Detection) {
        self.votes[detection.class.min(CLASSES - 1)] += 1;
        self.scores.push(detection.score);
        if detection.score > self.best_score {
            (self.best_score, self.best_rect, self.best_frame) = (detection.score, detection.rect, frame);
        }
        (self.last_rect, self.last_frame) = (detection.rect, frame);
    }

    /// The class voted for most (the earlier class on a tie).
    pub fn class(&self) -> usize {
        let most = self.votes.iter().copied().max().unwrap_or(0);
        self.votes.iter().position(|&v| v == most).unwrap_or(0)
    }

    pub fn label(&self) -> &'static str {
        COCO[self.class().min(COCO.len() - 1)]
    }

    /// Frames it was seen in.
    pub fn hits(&self) -> u32 {
        self.scores.len() as u32
    }

    /// The median of its scores (the lower middle one for an even count).
    pub fn median_score(&self) -> f32 {
        let mut sorted = self.scores.clone();
        sorted.sort_by(f32::total_cmp);
        sorted.get((sorted.len().max(1) - 1) / 2).copied().unwrap_or(0.0)
    }

    /// Seen often and surely enough to be an object.
    pub fn confirmed(&self, config: &TrackerConfig, min_score: f32) -> bool {
        self.hits() >= config.confirm_hits && self.median_score() >= min_score
    }
}

/// Tracks of one episode.
#[derive(Debug, Default)]
pub struct Tracker {
    config: TrackerConfig,
    tracks: Vec<Track>,
    next_id: u32,
}

impl Tracker {
    pub fn new(config: TrackerConfig) -> Self {
        Self { config, tracks: Vec::new(), next_id: 1 }
    }

    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// Adds one frame's detections: each continues the live track it
    /// overlaps most (each track takes at most one), or starts a new one.
    /// Returns the track id of each detection (`None` past the track cap).
    pub fn observe(&mut self, frame: u64, detections: &[Detection]) -> Vec<Option<u32>> {
        let live = |t: &Track| frame.saturating_sub(t.last_frame) <= self.config.max_missed && t.last_frame < frame;
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (ti, track) in self.tracks.iter().enumerate().filter(|(_, t)| live(t)) {
            for (di, d) in detections.iter().enumerate() {
                let iou = track.last_rect.iou(&d.rect);
                if iou >= self.config.match_iou {
                    pairs.push((iou, ti, di));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut assigned: Vec<Option<u32>> = vec![None; detections.len()];
        let mut taken = vec![false; self.tracks.len()];
        for (_, ti, di) in pairs {
            if taken[ti] || assigned[di].is_some() {
                continue;
            }
            taken[ti] = true;
            self.tracks[ti].add(frame, &detections[di]);
            assigned[di] = Some(self.tracks[ti].id);
        }
        for (di, d) in detections.iter().enumerate() {
            if assigned[di].is_none() && self.tracks.len() < self.config.max_tracks {
                let id = self.next_id;
                self.next_id += 1;
                self.tracks.push(Track::new(id, frame, d));
                assigned[di] = Some(id);
            }
        }
        assigned
    }

    /// Every track of the episode, oldest first.
    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    /// The episode ended: forget its tracks.
    pub fn reset(&mut self) {
        self.tracks.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(class: usize, score: f32, x: f32) -> Detection {
        Detection { class, score, rect: Rect { x1: x, y1: 10.0, x2: x + 40.0, y2: 90.0 } }
    }

    #[test]
    fn a_moving_object_is_one_track_with_its_label_by_vote() {
        let mut tracker = Tracker::new(TrackerConfig::default());
        let config = tracker.config().clone();
        // A dog walking right, called a cat once; a person standing still.
        let frames = [
            vec![at(16, 0.6, 0.0), at(0, 0.8, 200.0)],
            vec![at(15, 0.5, 8.0), at(0, 0.7, 200.0)],
            vec![at(16, 0.9, 16.0)],
            vec![at(16, 0.7, 24.0), at(0, 0.75, 201.0)],
        ];
        let mut ids = Vec::new();
        for (frame, detections) in frames.iter().enumerate() {
            ids.push(tracker.observe(frame as u64, detections));
        }
        assert_eq!(ids[0], [Some(1), Some(2)]);
        assert_eq!(ids[1], [Some(1), Some(2)]);
        assert_eq!(ids[2], [Some(1)]);
        assert_eq!(ids[3], [Some(1), Some(2)], "the person, unseen for a frame, is still itself");

        let tracks = tracker.tracks();
        assert_eq!(tracks.len(), 2);
        let dog = &tracks[0];
        assert_eq!((dog.label(), dog.hits()), ("dog", 4));
        assert_eq!((dog.best_score, dog.best_frame, dog.best_rect.x1, dog.first_frame), (0.9, 2, 16.0, 0));
        assert_eq!(dog.median_score(), 0.6, "lower middle of 0.5, 0.6, 0.7, 0.9");
        assert!(dog.confirmed(&config, 0.5) && !dog.confirmed(&config, 0.65));
        assert_eq!(tracks[1].label(), "person");
    }

    #[test]
    fn one_frame_does_not_confirm_and_stale_tracks_do_not_match() {
        let config = TrackerConfig { max_missed: 2, ..TrackerConfig::default() };
        let mut tracker = Tracker::new(config.clone());
        tracker.observe(0, &[at(0, 0.95, 0.0)]);
        assert!(!tracker.tracks()[0].confirmed(&config, 0.1), "a single frame is never an object");
        // Seen again 5 frames later at the same place: too late, a new track.
        assert_eq!(tracker.observe(5, &[at(0, 0.95, 0.0)]), [Some(2)]);
        // Two detections cannot both continue one track.
        assert_eq!(tracker.observe(6, &[at(0, 0.9, 0.0), at(0, 0.8, 2.0)]), [Some(2), Some(3)]);
        tracker.reset();
        assert!(tracker.tracks().is_empty());
    }
}
