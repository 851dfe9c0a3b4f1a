//! High-watermark checkpoints (Kafka's `replication-offset-checkpoint`): the replicated HW of
//! each partition is persisted periodically (`ReplicaManager::run_hw_checkpoints`) under
//! `part_state` tag `h`, so a restarted replica starts from a HW it knows was replicated
//! instead of its own log end offset. A checkpoint lags the live HW, which is safe: it is
//! only ever a lower bound of what the ISR has.

use super::Partition;
use crate::storage::{keys, Cf, StorageError, Store};
use std::sync::atomic::Ordering;

/// `part_state` tag of the HW checkpoint (no suffix; value: 8 bytes BE).
pub(crate) const TAG_HW: u8 = b'h';

/// The checkpointed HW of a partition, if any. Blocking.
pub(super) fn load(
    store: &Store,
    key_id: &[u8; 16],
    partition: i32,
) -> Result<Option<i64>, StorageError> {
    let key = keys::part_state_key(key_id, partition, TAG_HW, &[]);
    match store.get(Cf::PartState, &key)? {
        None => Ok(None),
        Some(v) => {
            let hw = keys::read_u64(&v).ok_or(StorageError::Corrupt {
                cf: "part_state",
                reason: "hw checkpoint".into(),
            })?;
            Ok(Some(i64::try_from(hw).map_err(|_| {
                StorageError::Corrupt {
                    cf: "part_state",
                    reason: "hw checkpoint".into(),
                }
            })?))
        }
    }
}

impl Partition {
    /// The key and value to checkpoint, or `None` while the HW is provisional (the replica's
    /// own LEO after an open without checkpoint: not known to be replicated).
    pub fn hw_checkpoint(&self) -> Option<(Vec<u8>, i64)> {
        if self.hw_provisional.load(Ordering::Acquire) {
            return None;
        }
        Some((self.state_key(TAG_HW, &[]), self.high_watermark()))
    }
}

#[cfg(test)]
mod tests {
    use crate::codec::kafka::batch::{self, tests::make_batch};
    use crate::replication::log::{AppendOptions, Partition};
    use crate::storage::{keys, Batch, Cf, Store};
    use crate::types::{NodeId, TopicId, TopicName};
    use bytes::Bytes;

    fn open(store: &Store) -> Partition {
        let id = TopicId(uuid::Uuid::from_u128(9));
        Partition::open(
            store.clone(),
            NodeId(1),
            TopicName::new("t").expect("valid"),
            0,
            id,
        )
        .expect("open")
    }

    #[tokio::test]
    async fn a_checkpointed_hw_survives_reopen_and_is_not_provisional() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let p = open(&store);
        assert!(
            p.hw_checkpoint().is_none(),
            "no checkpoint and not leading: provisional"
        );
        p.update_role(Some(NodeId(1)), 1, 1, &[NodeId(1), NodeId(2)]);
        let b = Bytes::from(make_batch(3, 9, 0, 0));
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
        p.record_follower_fetch(NodeId(2), 2, 2);
        let (key, hw) = p.hw_checkpoint().expect("leader HW is replicated");
        assert_eq!(hw, 2);
        let mut wb = Batch::new();
        wb.put(&store, Cf::PartState, &key, &keys::u64_key(hw as u64));
        store.write(wb, true).expect("write");
        drop(p);
        let p = open(&store);
        assert_eq!((p.log_end_offset(), p.high_watermark()), (3, 2));
        assert_eq!(p.hw_checkpoint().map(|c| c.1), Some(2));
    }
}
