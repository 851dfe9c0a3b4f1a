//! Leader-epoch cache: the start offset of each leader epoch in the log, for
//! OffsetsForLeaderEpoch and follower truncation. Pure.

/// `(leader_epoch, start_offset)` pairs, both strictly increasing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EpochCache {
    entries: Vec<(i32, i64)>,
}

impl EpochCache {
    pub fn from_entries(mut entries: Vec<(i32, i64)>) -> Self {
        entries.sort_unstable();
        Self { entries }
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.0)
    }

    /// Records that `epoch` starts at `offset`; returns true if it is a new entry.
    pub fn assign(&mut self, epoch: i32, offset: i64) -> bool {
        match self.entries.last() {
            Some(&(e, _)) if e >= epoch => false,
            _ => {
                self.entries.push((epoch, offset));
                true
            }
        }
    }

    /// Kafka's `endOffsetFor`: the largest epoch `<= requested` and the offset where the next
    /// epoch starts (or `log_end_offset` for the latest). `(-1, -1)` if nothing is known.
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> (i32, i64) {
        match self.entries.iter().rposition(|(e, _)| *e <= requested) {
            None => (-1, -1),
            Some(i) => match self.entries.get(i + 1) {
                Some(&(_, next_start)) => (self.entries[i].0, next_start),
                None => (self.entries[i].0, log_end_offset),
            },
        }
    }

    /// Drops epochs starting at or after `offset` (log truncation).
    pub fn truncate_from(&mut self, offset: i64) {
        self.entries.retain(|(_, start)| *start < offset);
    }

    pub fn entries(&self) -> &[(i32, i64)] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_offsets() {
        let mut c = EpochCache::default();
        assert_eq!(c.end_offset_for(0, 10), (-1, -1));
        assert!(c.assign(0, 0));
        assert!(c.assign(2, 10));
        assert!(!c.assign(1, 12));
        assert_eq!(c.end_offset_for(0, 20), (0, 10));
        assert_eq!(c.end_offset_for(1, 20), (0, 10));
        assert_eq!(c.end_offset_for(2, 20), (2, 20));
        assert_eq!(c.end_offset_for(5, 20), (2, 20));
        c.truncate_from(10);
        assert_eq!(c.latest_epoch(), Some(0));
    }
}
