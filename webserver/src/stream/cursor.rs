//! The ordering rule, in one place: [`SeqCursor`].
//!
//! Everything a client sees is in strictly increasing `seq`, each once,
//! with nothing skipped that the database holds. Two kinds of readers keep
//! that promise: the sequencer (one for the whole server, between the
//! detector sockets and the fan-out) and each WebSocket writer (between the
//! shared feed and its client). Both see `seq`s that may repeat (an event
//! read from the database and announced too) or jump (a feed that lapped
//! a slow catch-up, a detector that announced 11 before 10), and both
//! answer the same way:
//!
//! | the `seq` offered | [`Next`] | what the holder does |
//! | --- | --- | --- |
//! | at or below the last one passed on | [`Next::Duplicate`] | skip it |
//! | the last one + 1, or any when nothing was passed on yet | [`Next::InOrder`] | pass it on |
//! | further on | [`Next::Gap`] | read what lies between from the database first |
//!
//! The cursor decides; the holder reads and sends, then [`SeqCursor::advance`]s.
//! A change log (SPEC §7: every `new`, `update` and `end` takes a `seq`)
//! changes what a `seq` names, not this rule.

/// What to do with an offered `seq`; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Already passed on: skip it.
    Duplicate,
    /// The very next one: pass it on.
    InOrder,
    /// Stored `seq`s after `after` and below `before` were never seen:
    /// read them from the database before passing on `before`.
    Gap { after: i64, before: i64 },
}

/// The last `seq` passed on, if any, and the rule for the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeqCursor {
    last: Option<i64>,
}

impl SeqCursor {
    /// A cursor that has passed on everything up to `seq` (0: nothing yet,
    /// but every stored `seq` is still owed).
    pub fn at(seq: i64) -> Self {
        Self { last: Some(seq) }
    }

    /// A cursor with no position: the first `seq` offered is in order. For
    /// a live-only client, which asked for no history.
    pub fn unset() -> Self {
        Self { last: None }
    }

    /// The last `seq` passed on.
    pub fn last(self) -> Option<i64> {
        self.last
    }

    /// Where a database read of what comes next starts (exclusive).
    pub fn read_after(self) -> i64 {
        self.last.unwrap_or(0)
    }

    /// What to do with `seq`.
    pub fn next(self, seq: i64) -> Next {
        match self.last {
            None => Next::InOrder,
            Some(last) if seq <= last => Next::Duplicate,
            Some(last) if seq == last + 1 => Next::InOrder,
            Some(last) => Next::Gap { after: last, before: seq },
        }
    }

    /// Records `seq` as passed on. A `seq` at or below the last is a bug in
    /// the holder (it skipped [`SeqCursor::next`]): ignored, so the cursor
    /// never moves back.
    pub fn advance(&mut self, seq: i64) {
        debug_assert!(self.last.is_none_or(|last| seq > last), "seq {seq} after {:?}", self.last);
        if self.last.is_none_or(|last| seq > last) {
            self.last = Some(seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn duplicates_in_order_and_gaps() {
        let cursor = SeqCursor::at(10);
        assert_eq!(cursor.next(9), Next::Duplicate);
        assert_eq!(cursor.next(10), Next::Duplicate);
        assert_eq!(cursor.next(11), Next::InOrder);
        assert_eq!(cursor.next(14), Next::Gap { after: 10, before: 14 });
        assert_eq!(cursor.read_after(), 10);
    }

    #[test]
    fn an_unset_cursor_takes_the_first_seq_then_follows_the_rule() {
        let mut cursor = SeqCursor::unset();
        assert_eq!((cursor.last(), cursor.read_after()), (None, 0));
        assert_eq!(cursor.next(500), Next::InOrder);
        cursor.advance(500);
        assert_eq!(cursor.next(500), Next::Duplicate);
        assert_eq!(cursor.next(502), Next::Gap { after: 500, before: 502 });
    }

    #[test]
    fn a_cursor_at_zero_owes_everything_stored() {
        assert_eq!(SeqCursor::at(0).next(1), Next::InOrder);
        assert_eq!(SeqCursor::at(0).next(3), Next::Gap { after: 0, before: 3 });
    }

    #[test]
    #[cfg(not(debug_assertions))]
    fn advance_never_moves_back() {
        let mut cursor = SeqCursor::at(7);
        cursor.advance(3);
        assert_eq!(cursor.last(), Some(7));
    }

    /// What a holder does with the cursor, against a model database (the
    /// set of stored `seq`s): the sequence it passes on.
    fn follow(mut cursor: SeqCursor, stored: &BTreeSet<i64>, offered: &[i64]) -> Vec<i64> {
        let mut out = Vec::new();
        for &seq in offered {
            match cursor.next(seq) {
                Next::Duplicate => continue,
                Next::Gap { after, before } => {
                    for &between in stored.range(after + 1..before) {
                        cursor.advance(between);
                        out.push(between);
                    }
                }
                Next::InOrder => {}
            }
            cursor.advance(seq);
            out.push(seq);
        }
        out
    }

    proptest! {
        /// Whatever order, repeats and holes the offers come in (each offer
        /// is a stored `seq`, as the database is the truth), what is
        /// passed on is strictly increasing, and every stored `seq` from the
        /// start up to the highest offered is in it.
        #[test]
        fn output_is_increasing_and_complete(
            stored in proptest::collection::btree_set(1i64..200, 1..60),
            picks in proptest::collection::vec(any::<prop::sample::Index>(), 1..80),
            start in 0i64..50,
        ) {
            let list: Vec<i64> = stored.iter().copied().collect();
            let offered: Vec<i64> = picks.iter().map(|i| *i.get(&list)).collect();
            let out = follow(SeqCursor::at(start), &stored, &offered);
            prop_assert!(out.windows(2).all(|w| w[0] < w[1]), "not strictly increasing: {out:?}");
            let top = offered.iter().copied().max().unwrap_or(0);
            let owed: Vec<i64> = stored.iter().copied().filter(|&s| s > start && s <= top).collect();
            prop_assert_eq!(out, owed);
        }

        /// A live-only client never gets anything from before its first
        /// event, and from there the same promise holds.
        #[test]
        fn unset_cursor_starts_at_the_first_offer(
            stored in proptest::collection::btree_set(1i64..200, 1..60),
            picks in proptest::collection::vec(any::<prop::sample::Index>(), 1..80),
        ) {
            let list: Vec<i64> = stored.iter().copied().collect();
            let offered: Vec<i64> = picks.iter().map(|i| *i.get(&list)).collect();
            let out = follow(SeqCursor::unset(), &stored, &offered);
            let first = offered[0];
            let top = offered.iter().copied().max().unwrap_or(first);
            let owed: Vec<i64> = stored.iter().copied().filter(|&s| s >= first && s <= top).collect();
            prop_assert_eq!(out, owed);
        }
    }
}
