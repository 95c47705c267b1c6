//! From per-frame motion to episodes: what becomes one event.
//!
//! A person crossing the yard moves for a few seconds; that is one event, not
//! fifteen. The tracker is a small state machine over frame indices:
//!
//! * **Quiet** — motion starts a *candidate*;
//! * **Candidate** — `start_frames` consecutive motion frames confirm it as
//!   an episode (one frame of motion is usually noise); a still frame first
//!   drops it;
//! * **Active** — it ends after `end_frames` consecutive still frames, or
//!   when it has lasted `max_frames` (a long episode is reported in parts
//!   rather than never);
//! * after an episode ends, motion that starts within `dedup_frames` is
//!   **suppressed** (counted, not reported), so a flickering light or a door
//!   swinging back does not become a burst of events.
//!
//! The tracker says when an episode **starts** (the frame that confirms it:
//! the moment to announce it, SPEC §7) and when it **ends**. Throughout,
//! the frame with the largest change is the **key frame**: the tracker says
//! when to keep one (for the snapshot), and the caller keeps it.
//! `T` is whatever the caller stamps frames with (a wall-clock time).

/// Episode tunables, in frames at the detection rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpisodeConfig {
    /// Consecutive motion frames that start an episode. Default 2.
    pub start_frames: u32,
    /// Consecutive still frames that end one. Default 10 (2 s at 5 fps).
    pub end_frames: u32,
    /// Longest episode before it is reported and a new one may begin.
    /// Default 150 (30 s at 5 fps).
    pub max_frames: u32,
    /// Frames after an episode during which new motion is suppressed.
    /// Default 10 (2 s at 5 fps); 0 disables.
    pub dedup_frames: u32,
}

impl Default for EpisodeConfig {
    fn default() -> Self {
        Self { start_frames: 2, end_frames: 10, max_frames: 150, dedup_frames: 10 }
    }
}

/// A finished episode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Episode<T> {
    /// First motion frame, and its stamp: when the event happened.
    pub first_frame: u64,
    pub started_at: T,
    /// Last frame with motion.
    pub last_frame: u64,
    pub ended_at: T,
    /// Frames with motion in the episode.
    pub motion_frames: u32,
    /// The frame with the largest change, and that change (0–1).
    pub key_frame: u64,
    pub peak: f32,
}

/// What the caller should do after [`EpisodeTracker::observe`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step<T> {
    /// This frame is the new key frame of the current (or candidate)
    /// episode: keep it for the snapshot.
    pub keep_key_frame: bool,
    /// This frame confirmed an episode: it has started (as far as it got).
    pub started: Option<Episode<T>>,
    /// An episode just ended: report it.
    pub ended: Option<Episode<T>>,
}

impl<T> Step<T> {
    fn nothing() -> Self {
        Self { keep_key_frame: false, started: None, ended: None }
    }
}

#[derive(Debug, Clone, Copy)]
enum State<T> {
    Quiet { suppress_until: u64 },
    Open { episode: Episode<T>, confirmed: bool, still: u32 },
}

#[derive(Debug)]
pub struct EpisodeTracker<T> {
    config: EpisodeConfig,
    state: State<T>,
    suppressed: u64,
}

impl<T: Copy> EpisodeTracker<T> {
    pub fn new(config: EpisodeConfig) -> Self {
        Self { config, state: State::Quiet { suppress_until: 0 }, suppressed: 0 }
    }

    /// Motion episodes dropped by the dedup window so far.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }

    /// Feeds one frame: `motion` is its changed fraction when it moved.
    pub fn observe(&mut self, frame: u64, at: T, motion: Option<f32>) -> Step<T> {
        let config = self.config;
        match (&mut self.state, motion) {
            (State::Quiet { .. }, None) => Step::nothing(),
            (State::Quiet { suppress_until }, Some(change)) => {
                if frame < *suppress_until {
                    self.suppressed += 1;
                    // Motion inside the window keeps the window open.
                    *suppress_until = frame + u64::from(config.dedup_frames);
                    return Step::nothing();
                }
                let episode = Episode {
                    first_frame: frame,
                    started_at: at,
                    last_frame: frame,
                    ended_at: at,
                    motion_frames: 1,
                    key_frame: frame,
                    peak: change,
                };
                let confirmed = config.start_frames <= 1;
                self.state = State::Open { episode, confirmed, still: 0 };
                Step { keep_key_frame: true, started: confirmed.then_some(episode), ended: None }
            }
            (State::Open { episode, confirmed, still }, Some(change)) => {
                *still = 0;
                episode.last_frame = frame;
                episode.ended_at = at;
                episode.motion_frames += 1;
                let keep = change > episode.peak;
                if keep {
                    episode.peak = change;
                    episode.key_frame = frame;
                }
                let mut started = None;
                if !*confirmed && episode.motion_frames >= config.start_frames {
                    *confirmed = true;
                    started = Some(*episode);
                }
                if *confirmed && frame + 1 - episode.first_frame >= u64::from(config.max_frames.max(1)) {
                    return Step { keep_key_frame: keep, started, ended: self.close(frame) };
                }
                Step { keep_key_frame: keep, started, ended: None }
            }
            (State::Open { confirmed: false, .. }, None) => {
                // A candidate that did not last: noise.
                self.state = State::Quiet { suppress_until: 0 };
                Step::nothing()
            }
            (State::Open { still, .. }, None) => {
                *still += 1;
                let ended = if *still >= config.end_frames.max(1) { self.close(frame) } else { None };
                Step { keep_key_frame: false, started: None, ended }
            }
        }
    }

    /// Ends the episode in progress, if one is confirmed (end of stream,
    /// source restart, shutdown). A candidate is dropped.
    pub fn flush(&mut self) -> Option<Episode<T>> {
        let ended = match self.state {
            State::Open { episode, confirmed: true, .. } => Some(episode),
            _ => None,
        };
        self.state = State::Quiet { suppress_until: 0 };
        ended
    }

    fn close(&mut self, frame: u64) -> Option<Episode<T>> {
        let ended = self.flush();
        self.state = State::Quiet { suppress_until: frame + 1 + u64::from(self.config.dedup_frames) };
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a motion pattern (`#` motion, `.` still) and returns the episodes
    /// as (first, last, key) frames.
    fn run(config: EpisodeConfig, pattern: &str) -> (Vec<(u64, u64, u64)>, u64) {
        let mut tracker = EpisodeTracker::new(config);
        let mut episodes = Vec::new();
        for (i, c) in pattern.chars().enumerate() {
            // Change grows then shrinks, so the key frame is in the middle of a run.
            let motion = (c == '#').then(|| 1.0 - ((i % 10) as f32 - 5.0).abs() / 10.0);
            if let Some(e) = tracker.observe(i as u64, i as u64 * 200, motion).ended {
                episodes.push((e.first_frame, e.last_frame, e.key_frame));
            }
        }
        episodes.extend(tracker.flush().map(|e| (e.first_frame, e.last_frame, e.key_frame)));
        (episodes, tracker.suppressed())
    }

    const C: EpisodeConfig = EpisodeConfig { start_frames: 2, end_frames: 3, max_frames: 20, dedup_frames: 4 };

    #[test]
    fn one_run_of_motion_is_one_episode() {
        assert_eq!(run(C, "...######......."), (vec![(3, 8, 5)], 0));
    }

    #[test]
    fn single_frame_blips_are_noise() {
        assert_eq!(run(C, "..#...#.....#..."), (vec![], 0));
    }

    #[test]
    fn short_pauses_stay_in_the_episode() {
        assert_eq!(run(C, "..###..###......"), (vec![(2, 9, 4)], 0));
    }

    #[test]
    fn motion_just_after_an_episode_is_suppressed_then_allowed() {
        // Ends at frame 7 (3 still frames after 4); suppressed until 12;
        // motion at 9 and 10 extends the window to 14; the run at 16 counts.
        assert_eq!(run(C, "..###...##.....###....").0, vec![(2, 4, 4), (15, 17, 15)]);
        assert_eq!(run(C, "..###...##.....###....").1, 2);
        assert_eq!(run(EpisodeConfig { dedup_frames: 0, ..C }, "..###....##....").0, vec![(2, 4, 4), (9, 10, 9)]);
    }

    #[test]
    fn long_motion_is_reported_in_parts() {
        let config = EpisodeConfig { max_frames: 5, dedup_frames: 0, ..C };
        assert_eq!(run(config, "############").0, vec![(0, 4, 4), (5, 9, 5), (10, 11, 11)]);
    }

    #[test]
    fn an_episode_starts_on_the_frame_that_confirms_it_once_and_before_it_ends() {
        for (config, pattern, starts) in [
            (C, "...######.......", vec![(4, 3)]),
            (EpisodeConfig { start_frames: 1, ..C }, "...###..........", vec![(3, 3)]),
            (C, "..#...#.....", vec![]),
            (EpisodeConfig { max_frames: 5, dedup_frames: 0, ..C }, "############", vec![(1, 0), (6, 5), (11, 10)]),
        ] {
            let mut tracker = EpisodeTracker::new(config);
            let (mut seen, mut open) = (Vec::new(), false);
            for (i, c) in pattern.chars().enumerate() {
                let step = tracker.observe(i as u64, i as u64, (c == '#').then_some(0.5));
                if let Some(started) = step.started {
                    assert!(!open, "{pattern}: started twice");
                    seen.push((i as u64, started.first_frame));
                    open = true;
                }
                if step.ended.is_some() {
                    assert!(open, "{pattern}: ended before it started");
                    open = false;
                }
            }
            assert_eq!(seen, starts, "{pattern}");
        }
    }

    #[test]
    fn flush_reports_a_confirmed_episode_only() {
        assert_eq!(run(C, "....###").0, vec![(4, 6, 5)]);
        assert_eq!(run(C, "......#").0, vec![]);
    }
}
