//! Idempotent-producer state per partition: for each producer id, its epoch and the last
//! five batches' sequence ranges, and for a transactional producer the first offset of its
//! open transaction and the coordinator epoch of its last marker (Kafka's
//! `ProducerStateManager`). Pure: the same transitions serve the leader's append, a
//! follower's append and the rebuild after truncation.

use crate::codec::kafka::batch::BatchHeader;
use crate::codec::kafka::control::Marker;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// How many recent batches per producer are remembered for duplicate detection.
pub(crate) const BATCHES_PER_PRODUCER: usize = 5;

/// One remembered batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: i64,
    pub last_offset: i64,
    pub timestamp: i64,
}

/// A producer's state on one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<BatchMeta>,
    /// The offset of the first batch of this producer's open transaction here (Kafka's
    /// `currentTxnFirstOffset`); `None` outside a transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn_first_offset: Option<i64>,
    /// The coordinator epoch of the last marker written for this producer (-1: none yet); a
    /// marker from an older coordinator is fenced.
    #[serde(default = "no_coordinator_epoch")]
    pub coordinator_epoch: i32,
}

fn no_coordinator_epoch() -> i32 {
    -1
}

impl Default for ProducerEntry {
    fn default() -> Self {
        Self {
            epoch: 0,
            batches: VecDeque::new(),
            txn_first_offset: None,
            coordinator_epoch: no_coordinator_epoch(),
        }
    }
}

/// A transaction that ended on this partition: its producer, the offsets of its first batch
/// and of its marker, and whether it was aborted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
    pub aborted: bool,
}

/// The verdict for a transaction marker (Kafka's `appendEndTxnMarker` checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerCheck {
    Append,
    /// The marker's producer epoch is older than the producer's: it was fenced.
    StaleEpoch {
        current: i16,
    },
    /// The marker comes from an older transaction coordinator.
    CoordinatorFenced {
        current: i32,
    },
}

/// The verdict for an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqCheck {
    /// Not idempotent, or the next batch in sequence: append it.
    Append,
    /// Already appended: answer with the original offsets, append nothing.
    Duplicate { base_offset: i64, last_offset: i64 },
    /// A gap or a reordering: OUT_OF_ORDER_SEQUENCE_NUMBER.
    OutOfOrder { expected: i32, got: i32 },
    /// An older producer epoch: INVALID_PRODUCER_EPOCH (the producer was fenced).
    StaleEpoch { current: i16 },
}

fn next_seq(s: i32) -> i32 {
    if s == i32::MAX {
        0
    } else {
        s + 1
    }
}

/// All producers of one partition.
#[derive(Debug, Clone, Default)]
pub struct ProducerStateTable {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStateTable {
    pub fn from_entries(entries: impl IntoIterator<Item = (i64, ProducerEntry)>) -> Self {
        Self {
            producers: entries.into_iter().collect(),
        }
    }

    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Decides what to do with batch `h` (`pending` holds batches of the same request that
    /// were accepted but not yet recorded).
    pub fn check(&self, h: &BatchHeader, pending: Option<&ProducerEntry>) -> SeqCheck {
        if !h.has_producer_id() || h.base_sequence < 0 {
            return SeqCheck::Append;
        }
        let Some(entry) = pending.or_else(|| self.producers.get(&h.producer_id)) else {
            // Unknown producer (new, or its state expired): accept, as Kafka does since KIP-360.
            return SeqCheck::Append;
        };
        if h.producer_epoch < entry.epoch {
            return SeqCheck::StaleEpoch {
                current: entry.epoch,
            };
        }
        if h.producer_epoch > entry.epoch {
            // A bumped epoch restarts sequences at 0.
            return if h.base_sequence == 0 {
                SeqCheck::Append
            } else {
                SeqCheck::OutOfOrder {
                    expected: 0,
                    got: h.base_sequence,
                }
            };
        }
        let last_seq = h.last_sequence();
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == h.base_sequence && b.last_seq == last_seq)
            // A transactional batch can only be a retry of one in the producer's open
            // transaction here: one of an ended transaction is never resent (the client
            // cannot have committed without its answer, and an abort drops what is not sent).
            // Its sequence reused (librdkafka's abort purges a message that went out once and
            // waits for a retry, then hands its sequence to the next transaction's message)
            // must not be answered with the old batch's offsets: the new record would be
            // acknowledged without being written. It is out of order, as any other gap.
            .filter(|b| {
                !h.is_transactional() || entry.txn_first_offset.is_some_and(|f| b.base_offset >= f)
            })
        {
            return SeqCheck::Duplicate {
                base_offset: dup.base_offset,
                last_offset: dup.last_offset,
            };
        }
        match entry.batches.back() {
            Some(last) if h.base_sequence != next_seq(last.last_seq) => SeqCheck::OutOfOrder {
                expected: next_seq(last.last_seq),
                got: h.base_sequence,
            },
            _ => SeqCheck::Append,
        }
    }

    /// The entry after appending `h` at `base_offset` (not yet stored in the table).
    pub fn updated_entry(
        &self,
        h: &BatchHeader,
        base_offset: i64,
        pending: Option<&ProducerEntry>,
    ) -> ProducerEntry {
        let mut e = pending
            .or_else(|| self.producers.get(&h.producer_id))
            .cloned()
            .unwrap_or_default();
        if h.producer_epoch != e.epoch {
            e.epoch = h.producer_epoch;
            e.batches.clear();
        }
        if h.is_transactional() && e.txn_first_offset.is_none() {
            e.txn_first_offset = Some(base_offset);
        }
        e.batches.push_back(BatchMeta {
            first_seq: h.base_sequence,
            last_seq: h.last_sequence(),
            base_offset,
            last_offset: base_offset + i64::from(h.last_offset_delta),
            timestamp: h.max_timestamp,
        });
        while e.batches.len() > BATCHES_PER_PRODUCER {
            e.batches.pop_front();
        }
        e
    }

    pub fn insert(&mut self, producer_id: i64, entry: ProducerEntry) {
        self.producers.insert(producer_id, entry);
    }

    /// Checks a marker of `producer_id` at `producer_epoch` from coordinator epoch
    /// `coordinator_epoch` (`pending`: the entry as earlier batches of the same write left it).
    /// A marker of transaction version 2 (`tv2`, WriteTxnMarkers v2 from a Kafka 4.1+
    /// coordinator, which bumps the epoch before it writes the markers) must carry an epoch
    /// greater than the last one seen, so a late or repeated marker cannot end the next
    /// transaction; older markers need only one not smaller (Kafka's `checkProducerEpoch`).
    pub fn check_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        tv2: bool,
        pending: Option<&ProducerEntry>,
    ) -> MarkerCheck {
        let Some(e) = pending.or_else(|| self.producers.get(&producer_id)) else {
            return MarkerCheck::Append;
        };
        if producer_epoch < e.epoch || (tv2 && producer_epoch == e.epoch) {
            MarkerCheck::StaleEpoch { current: e.epoch }
        } else if coordinator_epoch < e.coordinator_epoch {
            MarkerCheck::CoordinatorFenced {
                current: e.coordinator_epoch,
            }
        } else {
            MarkerCheck::Append
        }
    }

    /// The entry after a marker of `producer_id` / `producer_epoch` at `offset`, and the
    /// transaction it ended (`None` if the producer had none open here: a marker for a
    /// partition the transaction never wrote to, or a retried marker).
    pub fn marker_entry(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        marker: Marker,
        offset: i64,
        pending: Option<&ProducerEntry>,
    ) -> (ProducerEntry, Option<CompletedTxn>) {
        let mut e = pending
            .or_else(|| self.producers.get(&producer_id))
            .cloned()
            .unwrap_or_default();
        if producer_epoch != e.epoch {
            e.epoch = producer_epoch;
            e.batches.clear();
        }
        e.coordinator_epoch = marker.coordinator_epoch;
        let completed = e.txn_first_offset.take().map(|first| CompletedTxn {
            producer_id,
            first_offset: first,
            last_offset: offset,
            aborted: !marker.commit,
        });
        (e, completed)
    }

    /// Every producer's entry.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> + '_ {
        self.producers.iter().map(|(pid, e)| (*pid, e))
    }

    /// Every producer with an open transaction here: (first offset, producer id).
    pub fn open_transactions(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.producers
            .iter()
            .filter_map(|(pid, e)| e.txn_first_offset.map(|f| (f, *pid)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::kafka::batch::{tests::make_batch, BatchHeader};

    fn header(pid: i64, epoch: i16, seq: i32, n: i32) -> BatchHeader {
        BatchHeader::parse(&make_batch(n, pid, epoch, seq)).expect("valid header")
    }

    fn append(t: &mut ProducerStateTable, h: &BatchHeader, base: i64) {
        let e = t.updated_entry(h, base, None);
        t.insert(h.producer_id, e);
    }

    /// A transactional batch whose sequence matches a batch of an ended transaction is not
    /// a retry (Jepsen kill, seed 1005: librdkafka reused the sequence of a message its
    /// abort had purged, and the "duplicate" answer acknowledged a record never written).
    #[test]
    fn a_duplicate_only_of_a_batch_in_the_open_transaction() {
        use crate::codec::kafka::batch::tests::set_transactional;
        let txn = |seq: i32| {
            let mut raw = make_batch(1, 7, 0, seq);
            set_transactional(&mut raw);
            BatchHeader::parse(&raw).expect("valid header")
        };
        let mut t = ProducerStateTable::default();
        append(&mut t, &txn(0), 10);
        // Within the open transaction a resent batch is a duplicate.
        assert_eq!(
            t.check(&txn(0), None),
            SeqCheck::Duplicate {
                base_offset: 10,
                last_offset: 10
            }
        );
        let abort = Marker {
            commit: false,
            coordinator_epoch: 0,
        };
        let (e, ended) = t.marker_entry(7, 0, abort, 11, None);
        assert!(ended.is_some());
        t.insert(7, e);
        // After the abort the same sequence is a gap, not the aborted batch.
        assert_eq!(
            t.check(&txn(0), None),
            SeqCheck::OutOfOrder {
                expected: 1,
                got: 0
            }
        );
        assert_eq!(t.check(&txn(1), None), SeqCheck::Append);
        // In the next transaction, a resent first batch is again a duplicate of itself.
        append(&mut t, &txn(1), 12);
        assert_eq!(
            t.check(&txn(1), None),
            SeqCheck::Duplicate {
                base_offset: 12,
                last_offset: 12
            }
        );
        assert!(matches!(
            t.check(&txn(0), None),
            SeqCheck::OutOfOrder { .. }
        ));
    }

    #[test]
    fn sequences_duplicates_and_gaps() {
        let mut t = ProducerStateTable::default();
        let b0 = header(1, 0, 0, 3);
        assert_eq!(t.check(&b0, None), SeqCheck::Append);
        append(&mut t, &b0, 100);
        assert_eq!(
            t.check(&b0, None),
            SeqCheck::Duplicate {
                base_offset: 100,
                last_offset: 102
            }
        );
        let gap = header(1, 0, 5, 1);
        assert_eq!(
            t.check(&gap, None),
            SeqCheck::OutOfOrder {
                expected: 3,
                got: 5
            }
        );
        let b1 = header(1, 0, 3, 2);
        assert_eq!(t.check(&b1, None), SeqCheck::Append);
        append(&mut t, &b1, 103);
        assert_eq!(
            t.check(&header(1, 0, 0, 3), None),
            SeqCheck::Duplicate {
                base_offset: 100,
                last_offset: 102
            }
        );
        // Fencing and epoch bumps.
        append(&mut t, &header(1, 1, 0, 1), 105);
        assert_eq!(
            t.check(&header(1, 0, 5, 1), None),
            SeqCheck::StaleEpoch { current: 1 }
        );
        assert_eq!(
            t.check(&header(1, 2, 4, 1), None),
            SeqCheck::OutOfOrder {
                expected: 0,
                got: 4
            }
        );
        // Only five batches are remembered.
        for i in 1..=6 {
            append(&mut t, &header(1, 1, i, 1), 105 + i64::from(i));
        }
        assert_eq!(
            t.get(1).map(|e| e.batches.len()),
            Some(BATCHES_PER_PRODUCER)
        );
        assert_eq!(
            t.check(&header(1, 1, 1, 1), None),
            SeqCheck::OutOfOrder {
                expected: 7,
                got: 1
            }
        );
        // Non-idempotent batches always append.
        assert_eq!(t.check(&header(-1, -1, -1, 4), None), SeqCheck::Append);
    }
}
