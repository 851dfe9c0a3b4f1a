//! The transaction state of one partition that readers need (KIP-98): which transactions are
//! still open or not yet safely ended, giving the last stable offset (LSO), and the stored
//! index of ended transactions from which a `read_committed` fetch learns what was aborted.
//!
//! The LSO is Kafka's: the high watermark, or the first offset of the earliest transaction
//! that is open or whose marker is not yet below the high watermark ("unreplicated"), if
//! lower. An ended transaction stays unstable until its marker is replicated: were this
//! leader to fail first, its successor may not have the marker and the transaction is open
//! again (and may end the other way).
//!
//! Every ended transaction is stored in `part_state` under [`TAG_TXN`], keyed by its marker's
//! offset (Kafka keeps only aborted ones in its `.txnindex`; the committed ones let a restart
//! rebuild the unreplicated set). Entries below the log start are deleted with the log.

use super::producer_state::{CompletedTxn, ProducerStateTable};
use std::collections::BTreeMap;

/// The `part_state` tag of ended transactions.
pub(crate) const TAG_TXN: u8 = b't';
/// Stored value: producer id (8), first offset (8), aborted (1).
const VALUE_LEN: usize = 17;

/// Encodes an ended transaction's stored value (its key holds the marker's offset).
#[must_use]
pub(crate) fn encode(t: &CompletedTxn) -> [u8; VALUE_LEN] {
    let mut v = [0u8; VALUE_LEN];
    v[..8].copy_from_slice(&t.producer_id.to_be_bytes());
    v[8..16].copy_from_slice(&t.first_offset.to_be_bytes());
    v[16] = u8::from(t.aborted);
    v
}

/// Decodes a stored value; `None` if it is not one (the caller reports corruption).
#[must_use]
pub(crate) fn decode(last_offset: i64, v: &[u8]) -> Option<CompletedTxn> {
    if v.len() != VALUE_LEN || v[16] > 1 {
        return None;
    }
    let producer_id = i64::from_be_bytes(v[..8].try_into().ok()?);
    let first_offset = i64::from_be_bytes(v[8..16].try_into().ok()?);
    (first_offset <= last_offset).then_some(CompletedTxn {
        producer_id,
        first_offset,
        last_offset,
        aborted: v[16] == 1,
    })
}

/// One change to the tracker, applied after the write that carries it is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxnEvent {
    Began { first_offset: i64, producer_id: i64 },
    Ended(CompletedTxn),
}

/// Open and unreplicated transactions of one partition.
#[derive(Debug, Default, Clone)]
pub(crate) struct TxnTracker {
    /// Open transactions: first offset -> producer id.
    open: BTreeMap<i64, i64>,
    /// Ended transactions whose marker was at or above the high watermark when last looked
    /// at: marker offset -> first offset.
    unreplicated: BTreeMap<i64, i64>,
}

impl TxnTracker {
    /// The tracker for `producers` (their open transactions) and the stored ended
    /// transactions `ended` whose markers are not known to be below the high watermark.
    pub(crate) fn rebuild(
        producers: &ProducerStateTable,
        ended: impl IntoIterator<Item = CompletedTxn>,
    ) -> Self {
        Self {
            open: producers.open_transactions().collect(),
            unreplicated: ended
                .into_iter()
                .map(|t| (t.last_offset, t.first_offset))
                .collect(),
        }
    }

    pub(crate) fn apply(&mut self, e: TxnEvent) {
        match e {
            TxnEvent::Began {
                first_offset,
                producer_id,
            } => {
                self.open.insert(first_offset, producer_id);
            }
            TxnEvent::Ended(t) => {
                self.open.remove(&t.first_offset);
                self.unreplicated.insert(t.last_offset, t.first_offset);
            }
        }
    }

    /// After a truncation to `offset`: the open transactions are those of the rebuilt
    /// `producers` (a transaction whose marker was cut is open again), and ended transactions
    /// whose marker was cut are forgotten.
    pub(crate) fn truncated(&mut self, producers: &ProducerStateTable, offset: i64) {
        self.open = producers.open_transactions().collect();
        self.unreplicated.split_off(&offset);
    }

    /// The last stable offset for high watermark `hw` (drops ended transactions whose marker
    /// the high watermark passed).
    pub(crate) fn last_stable_offset(&mut self, hw: i64) -> i64 {
        self.unreplicated = self.unreplicated.split_off(&hw);
        let first_open = self.open.keys().next().copied();
        let first_unreplicated = self.unreplicated.values().min().copied();
        [first_open, first_unreplicated]
            .into_iter()
            .flatten()
            .fold(hw, i64::min)
    }

    /// Open transactions: (first offset, producer id), oldest first.
    pub(crate) fn open(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.open.iter().map(|(f, p)| (*f, *p))
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.open.is_empty() && self.unreplicated.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(pid: i64, first: i64, last: i64, aborted: bool) -> CompletedTxn {
        CompletedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            aborted,
        }
    }

    #[test]
    fn stored_values_round_trip_and_reject_garbage() {
        let t = ended(7, 10, 20, true);
        assert_eq!(decode(20, &encode(&t)), Some(t));
        assert_eq!(
            decode(5, &encode(&t)),
            None,
            "first offset above the marker"
        );
        assert_eq!(decode(20, &[0u8; 3]), None);
        let mut bad = encode(&t);
        bad[16] = 9;
        assert_eq!(decode(20, &bad), None);
    }

    #[test]
    fn last_stable_offset_waits_for_open_and_unreplicated_transactions() {
        let mut t = TxnTracker::default();
        assert_eq!(t.last_stable_offset(50), 50);
        t.apply(TxnEvent::Began {
            first_offset: 10,
            producer_id: 1,
        });
        t.apply(TxnEvent::Began {
            first_offset: 12,
            producer_id: 2,
        });
        assert_eq!(t.last_stable_offset(50), 10);
        assert_eq!(t.last_stable_offset(5), 5);
        // Producer 1 commits with a marker at 30: unstable until the HW passes 30.
        t.apply(TxnEvent::Ended(ended(1, 10, 30, false)));
        assert_eq!(t.last_stable_offset(30), 10);
        assert_eq!(t.last_stable_offset(31), 12);
        // Producer 2 aborts at 40; once the HW passes it, nothing is unstable.
        t.apply(TxnEvent::Ended(ended(2, 12, 40, true)));
        assert_eq!(t.last_stable_offset(35), 12);
        assert_eq!(t.last_stable_offset(41), 41);
        assert!(t.is_empty());
        // A marker truncated away is forgotten; the rebuilt producer state reopens it.
        t.apply(TxnEvent::Ended(ended(3, 50, 60, false)));
        let mut producers = ProducerStateTable::default();
        let e = crate::replication::log::ProducerEntry {
            txn_first_offset: Some(50),
            ..Default::default()
        };
        producers.insert(3, e);
        t.truncated(&producers, 55);
        assert_eq!(t.last_stable_offset(58), 50);
        t.truncated(&ProducerStateTable::default(), 55);
        assert_eq!(t.last_stable_offset(58), 58);
    }
}
