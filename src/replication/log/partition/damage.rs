//! Damaged replicas: a stored batch that fails its checks on the way out, a read RocksDB
//! reports as corrupt, or a range the partition-log rebuild dropped (its `part_state` marker).
//!
//! Every batch a fetch or a follower reads is checked here (header, length, CRC32C, and that
//! the key's base offset is the batch's): a bad batch is never handed to a consumer or a
//! follower. A damaged range makes reads inside it fail with a storage error (the Fetch
//! answers KAFKA_STORAGE_ERROR for that partition), is logged at error level with the topic,
//! partition and offset, counted, and shown on `/health`. A follower repairs it by truncating
//! to before it and re-fetching from the leader; a leader hands leadership to another in-sync
//! replica when it can (see `isr.rs`) and otherwise keeps answering the error: it never
//! truncates below its high watermark and never skips the range silently.

use super::{Partition, TAG_LOST};
use crate::codec::kafka::batch::{BatchHeader, HEADER_LEN, LOG_OVERHEAD};
use crate::storage::rebuild::LostRange;
use crate::storage::{keys, Cf, StorageError, Store};

/// Start of the bytes the v2 batch CRC32C covers (attributes onwards).
const CRC_START: usize = 21;

/// Why part of a replica's log cannot be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DamageKind {
    /// The rebuild dropped unreadable blocks holding these offsets.
    Lost,
    /// A read found a corrupt batch or block here (the rest of the range is unknown).
    Corrupt(String),
}

/// A damaged range of offsets: `[from, to)`, `to = None` for "up to the log end".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub from: i64,
    pub to: Option<i64>,
    pub kind: DamageKind,
}

impl Damage {
    /// Whether offset `o` lies in the damaged range.
    pub fn covers(&self, o: i64) -> bool {
        o >= self.from && self.to.is_none_or(|t| o < t)
    }
}

/// Checks one stored batch (the value under a `part_log` key whose base offset is
/// `key_base`). Pure.
///
/// # Errors
/// What is wrong with it.
pub fn verify_stored_batch(key_base: i64, v: &[u8]) -> Result<BatchHeader, String> {
    if v.len() < HEADER_LEN {
        return Err(format!("{} bytes, shorter than a batch header", v.len()));
    }
    let h = BatchHeader::parse(v).map_err(|e| e.to_string())?;
    if h.magic != 2 {
        return Err(format!("magic {}", h.magic));
    }
    if h.batch_length < (HEADER_LEN - LOG_OVERHEAD) as i32 || h.total_len() != v.len() {
        return Err(format!(
            "batch length {} does not match the {} stored bytes",
            h.batch_length,
            v.len()
        ));
    }
    let computed = crc32c::crc32c(&v[CRC_START..]);
    if computed != h.crc {
        return Err(format!(
            "CRC32C mismatch: stored {:#010x}, computed {computed:#010x}",
            h.crc
        ));
    }
    if h.base_offset != key_base {
        return Err(format!(
            "stored under base offset {key_base} but says {}",
            h.base_offset
        ));
    }
    if h.last_offset_delta < 0 {
        return Err("negative last offset delta".into());
    }
    Ok(h)
}

impl Partition {
    /// The damaged range of this replica, if any.
    pub fn damage(&self) -> Option<Damage> {
        self.damage.lock().ok().and_then(|d| d.clone())
    }

    /// Records damage found at `offset` by a read and logs it (at error level, once per
    /// damaged range). `to`: where the damage ends if known (one bad batch whose block reads
    /// fine: the batch after it is intact), `None` when not (an unreadable block: the rebuild
    /// finds out). One range is kept per replica; a second one widens it. Returns the storage
    /// error the read should answer.
    pub(crate) fn note_damage(&self, offset: i64, to: Option<i64>, reason: String) -> StorageError {
        let mut first = false;
        if let Ok(mut d) = self.damage.lock() {
            match d.as_mut() {
                Some(cur)
                    if cur.covers(offset) && to.is_some_and(|t| cur.to.is_none_or(|c| t <= c)) => {}
                Some(cur) => {
                    first = offset < cur.from;
                    cur.from = cur.from.min(offset);
                    cur.to = match (cur.to, to) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        _ => None,
                    };
                }
                None => {
                    *d = Some(Damage {
                        from: offset,
                        to,
                        kind: DamageKind::Corrupt(reason.clone()),
                    });
                    first = true;
                }
            }
        }
        if first {
            crate::metrics::inc(&crate::metrics::global().storage_corruptions, 1);
            tracing::error!(
                topic = %self.topic,
                partition = self.partition,
                offset,
                to = ?to,
                leader = self.is_leader(),
                error = %reason,
                "corrupt replica: this offset cannot be read from local storage"
            );
        }
        StorageError::Corrupt {
            cf: "part_log",
            reason: format!(
                "{}-{} offset {offset}: {reason}",
                self.topic, self.partition
            ),
        }
    }

    /// Fails a read that starts inside the damaged range, and stops one that would run into
    /// it at its start: returns the upper bound to read to.
    pub(super) fn check_damage(&self, fetch_offset: i64, upper: i64) -> Result<i64, StorageError> {
        let Some(d) = self.damage() else {
            return Ok(upper);
        };
        if d.to.is_some_and(|t| t <= self.log_start_offset()) {
            // Retention or DeleteRecords moved past it.
            if let Ok(mut cur) = self.damage.lock() {
                *cur = None;
            }
            return Ok(upper);
        }
        if d.covers(fetch_offset) {
            let what = match &d.kind {
                DamageKind::Lost => "lost to a corrupt storage block".to_owned(),
                DamageKind::Corrupt(r) => r.clone(),
            };
            let to =
                d.to.map_or_else(|| "the log end".to_owned(), |t| t.to_string());
            return Err(StorageError::Corrupt {
                cf: "part_log",
                reason: format!(
                    "{}-{} offsets {}..{to}: {what}",
                    self.topic, self.partition, d.from
                ),
            });
        }
        Ok(if fetch_offset < d.from {
            upper.min(d.from)
        } else {
            upper
        })
    }

    /// The offset a follower must truncate to before fetching again, if its log is damaged.
    pub fn repair_from(&self) -> Option<i64> {
        self.damage().map(|d| d.from)
    }

    /// Follower repair: truncates to the start of the damaged range (and drops the rebuild's
    /// marker in the same write) so the range is fetched again from the leader.
    ///
    /// # Errors
    /// This replica leads, storage failures.
    pub async fn repair(&self) -> Result<Option<i64>, super::FollowerError> {
        let Some(d) = self.damage() else {
            return Ok(None);
        };
        let leo = self.truncate_inner(d.from, true).await?;
        if let Ok(mut cur) = self.damage.lock() {
            if cur.as_ref() == Some(&d) {
                *cur = None;
            }
        }
        crate::metrics::inc(&crate::metrics::global().replica_repairs, 1);
        tracing::warn!(
            topic = %self.topic,
            partition = self.partition,
            from = d.from,
            to = ?d.to,
            log_end_offset = leo,
            "repairing a damaged replica: truncated, re-fetching from the leader"
        );
        Ok(Some(leo))
    }
}

/// The damage recorded by a rebuild for a partition, resolved to offsets at open (blocking).
/// `log_end_offset` and the HW checkpoint are what `Partition::open` found.
pub(super) fn load_lost_range(
    store: &Store,
    key_id: &[u8; 16],
    partition: i32,
    log_start: i64,
    log_end_offset: i64,
    hw_checkpoint: Option<i64>,
) -> Result<Option<Damage>, StorageError> {
    let key = keys::part_state_key(key_id, partition, TAG_LOST, &[]);
    let Some(v) = store.get(Cf::PartState, &key)? else {
        return Ok(None);
    };
    let Some(lost) = LostRange::decode(&v) else {
        return Err(StorageError::Corrupt {
            cf: "part_state",
            reason: "lost-range marker".into(),
        });
    };
    let from = match lost.after_base {
        None => log_start,
        Some(a) => match store.get(Cf::PartLog, &keys::part_log_key(key_id, partition, a))? {
            Some(b) => BatchHeader::parse(&b).map_or(a + 1, |h| h.last_offset() + 1),
            None => a,
        },
    };
    // A lost tail ends, for a leader, at the last checkpointed high watermark: the offsets
    // below it were acknowledged and are never handed out again.
    let to = lost
        .before_base
        .or_else(|| hw_checkpoint.filter(|hw| *hw > from))
        .or_else(|| (log_end_offset > from).then_some(log_end_offset));
    if to.is_some_and(|t| t <= log_start.max(from)) {
        return Ok(None);
    }
    Ok(Some(Damage {
        from: from.max(log_start),
        to,
        kind: DamageKind::Lost,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::kafka::batch::{self, tests::make_batch};
    use crate::replication::log::AppendOptions;
    use crate::storage::Batch;
    use crate::types::{NodeId, TopicId, TopicName};
    use bytes::Bytes;

    fn open(store: &Store, local: i32) -> Partition {
        Partition::open(
            store.clone(),
            NodeId(local),
            TopicName::new("t").expect("valid"),
            0,
            TopicId(uuid::Uuid::from_u128(11)),
        )
        .expect("open partition")
    }

    async fn three_batches(p: &Partition) {
        for seq in [0, 3, 6] {
            let b = Bytes::from(make_batch(3, 9, 0, seq));
            let h = batch::validate_record_set(&b).expect("valid")[0];
            p.append_leader(
                b,
                h,
                AppendOptions {
                    log_append_time: false,
                    now_ms: 0,
                },
            )
            .await
            .expect("append");
        }
    }

    #[tokio::test]
    async fn a_corrupt_batch_is_never_served_and_a_follower_repairs_below_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let p = open(&store, 1);
        p.update_role(Some(NodeId(1)), 1, 1, &[NodeId(1)]);
        three_batches(&p).await;
        // The middle batch (offsets 3..5) goes bad on disk, below RocksDB's checksums (as
        // if it had been damaged before it was written).
        let id = *TopicId(uuid::Uuid::from_u128(11)).0.as_bytes();
        let k = keys::part_log_key(&id, 0, 3);
        let mut v = store
            .get(Cf::PartLog, &k)
            .expect("get")
            .expect("batch at 3");
        let n = v.len();
        v[n - 2] ^= 0x55;
        let mut wb = Batch::new();
        wb.put(&store, Cf::PartLog, &k, &v);
        store.write(wb, false).expect("write");

        // A read from 0 returns the first batch only; a read at 3 fails; nothing at 3..5 is
        // ever handed out.
        let first = p.read(0, 1 << 20, 9).expect("read before the damage");
        assert_eq!(batch::validate_record_set(&first).expect("valid").len(), 1);
        assert!(p.read(3, 1 << 20, 9).is_err());
        assert!(p.read(4, 1 << 20, 9).is_err(), "inside the bad batch");
        let d = p.damage().expect("damage recorded");
        // Only that batch: the batch after it reads fine.
        assert_eq!((d.from, d.to), (3, Some(4)));
        let after = p.read(6, 1 << 20, 9).expect("after the bad batch");
        assert_eq!(
            batch::validate_record_set(&after).expect("valid")[0].base_offset,
            6
        );
        assert_eq!(p.repair_from(), Some(3));
        // As a follower, the replica truncates to 3 and would re-fetch from there.
        p.update_role(Some(NodeId(2)), 2, 2, &[NodeId(2), NodeId(1)]);
        assert_eq!(p.repair().await.expect("repair"), Some(3));
        assert_eq!(p.log_end_offset(), 3);
        assert!(p.damage().is_none());
        assert!(p.read(0, 1 << 20, 3).is_ok());
    }

    #[tokio::test]
    async fn a_lost_range_marker_becomes_damage_at_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let id = *TopicId(uuid::Uuid::from_u128(11)).0.as_bytes();
        {
            let p = open(&store, 1);
            p.update_role(Some(NodeId(1)), 1, 1, &[NodeId(1)]);
            three_batches(&p).await;
        }
        // What a rebuild leaves when the block with the middle batch was unreadable: the
        // batch is gone and the marker names its readable neighbours (bases 0 and 6).
        let mut wb = Batch::new();
        wb.delete(&store, Cf::PartLog, &keys::part_log_key(&id, 0, 3));
        let marker = LostRange {
            after_base: Some(0),
            before_base: Some(6),
        };
        wb.put(
            &store,
            Cf::PartState,
            &keys::part_state_key(&id, 0, TAG_LOST, &[]),
            &marker.encode(),
        );
        store.write(wb, true).expect("write");
        let p = open(&store, 1);
        p.update_role(Some(NodeId(1)), 2, 2, &[NodeId(1)]);
        let d = p.damage().expect("damage");
        assert_eq!((d.from, d.to, d.kind), (3, Some(6), DamageKind::Lost));
        assert_eq!(p.log_end_offset(), 9);
        // Reads before stop at the hole, reads in it fail, reads after it work; never a
        // silent jump over the lost offsets.
        let before = p.read(0, 1 << 20, 9).expect("before");
        let hs = batch::validate_record_set(&before).expect("valid");
        assert_eq!(hs.last().map(|h| h.last_offset()), Some(2));
        assert!(p.read(3, 1 << 20, 9).is_err());
        assert!(p.read(5, 1 << 20, 9).is_err());
        let after = p.read(6, 1 << 20, 9).expect("after");
        assert_eq!(
            batch::validate_record_set(&after).expect("valid")[0].base_offset,
            6
        );
        // A follower repair removes the marker with the truncation.
        p.update_role(Some(NodeId(2)), 3, 3, &[NodeId(2)]);
        p.repair().await.expect("repair");
        assert!(store
            .get(Cf::PartState, &keys::part_state_key(&id, 0, TAG_LOST, &[]))
            .expect("get")
            .is_none());
        assert_eq!(open(&store, 1).damage(), None);
    }

    #[test]
    fn stored_batches_are_checked_against_their_key_and_crc() {
        let mut b = make_batch(3, 9, 0, 0);
        b[0..8].copy_from_slice(&40i64.to_be_bytes());
        let h = verify_stored_batch(40, &b).expect("valid");
        assert_eq!((h.base_offset, h.last_offset()), (40, 42));
        assert!(verify_stored_batch(41, &b)
            .expect_err("wrong key")
            .contains("base offset"));
        let mut flipped = b.clone();
        let n = flipped.len();
        flipped[n - 3] ^= 0x40;
        assert!(verify_stored_batch(40, &flipped)
            .expect_err("crc")
            .contains("CRC32C"));
        assert!(verify_stored_batch(40, &b[..b.len() - 1]).is_err());
        assert!(verify_stored_batch(40, &b[..20]).is_err());
        // The leader epoch is outside the CRC: rewriting it keeps the batch valid.
        let mut epoch = b.clone();
        epoch[12..16].copy_from_slice(&7i32.to_be_bytes());
        assert!(verify_stored_batch(40, &epoch).is_ok());
    }

    #[test]
    fn damage_ranges() {
        let d = Damage {
            from: 10,
            to: Some(20),
            kind: DamageKind::Lost,
        };
        assert!(!d.covers(9) && d.covers(10) && d.covers(19) && !d.covers(20));
        let open = Damage {
            from: 10,
            to: None,
            kind: DamageKind::Corrupt("x".into()),
        };
        assert!(open.covers(1 << 40));
    }
}
