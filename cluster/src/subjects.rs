//! Subject names. A node id and a camera id are each one subject token
//! (`[A-Za-z0-9_-]`, checked where they are accepted), so no name here can
//! smuggle a `.`, `*` or `>` into a subject.

/// Everything the stream holds.
pub const CHANGES: &str = "lookout.changes.>";

/// Every detector's heartbeat (core NATS: not stored).
pub const HEARTBEATS: &str = "lookout.heartbeat.*";

/// Where a detector publishes its camera's changes. Each node is the only
/// writer of its subjects, which is what makes its restart check sound.
pub fn detector_changes(node: &str, camera: &str) -> String {
    format!("lookout.changes.{node}.{camera}")
}

/// All of one detector's subjects: one token after the node, so a
/// webserver's subjects on the same host (`…<node>.api.<camera>`, two
/// tokens) never count as the detector's.
pub fn detector_filter(node: &str) -> String {
    format!("lookout.changes.{node}.*")
}

/// Where a webserver publishes the changes `POST /api/events` and
/// `PUT /api/events/{id}/end` make.
pub fn api_changes(node: &str, camera: &str) -> String {
    format!("lookout.changes.{node}.api.{camera}")
}

/// One detector's heartbeat.
pub fn heartbeat(node: &str) -> String {
    format!("lookout.heartbeat.{node}")
}

/// The node a heartbeat subject names.
pub fn heartbeat_node(subject: &str) -> Option<&str> {
    subject.strip_prefix("lookout.heartbeat.").filter(|n| !n.is_empty() && !n.contains('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webservers_subjects_are_outside_its_hosts_detector_filter() {
        let filter = detector_filter("host1");
        let matches = |subject: &str| {
            let (f, s): (Vec<_>, Vec<_>) = (filter.split('.').collect(), subject.split('.').collect());
            f.len() == s.len() && f.iter().zip(&s).all(|(f, s)| *f == "*" || f == s)
        };
        assert!(matches(&detector_changes("host1", "door")));
        assert!(!matches(&api_changes("host1", "door")));
        assert!(!matches(&detector_changes("host2", "door")));
    }

    #[test]
    fn heartbeat_subjects_name_their_node() {
        assert_eq!(heartbeat_node(&heartbeat("barn")), Some("barn"));
        assert_eq!(heartbeat_node("lookout.heartbeat."), None);
        assert_eq!(heartbeat_node("lookout.heartbeat.a.b"), None);
        assert_eq!(heartbeat_node("other.heartbeat.a"), None);
    }
}
