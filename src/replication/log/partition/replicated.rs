//! The one replicated write: append as leader, then wait until the batch is acknowledged the
//! `acks=all` way. Produce, the group coordinator (offsets and group metadata) and, later, the
//! transaction coordinator all go through here, so they agree on what "committed" means
//! (compare Redpanda's `partition_proxy::replicate`).

use super::{AppendError, AppendInfo, AppendOptions, Partition};
use crate::codec::kafka::batch::BatchHeader;
use bytes::Bytes;
use tokio::time::Instant;

/// Why a replicated write was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum ReplicatedError {
    #[error(transparent)]
    Append(#[from] AppendError),
    /// The WAL fsync failed: the batch must not be acknowledged as durable.
    #[error("fsync failed: {0}")]
    Fsync(String),
    /// This replica stopped leading in the epoch it appended in (the batch may still be
    /// committed by the new leader, or truncated: the writer must not assume either).
    #[error("leadership lost before the batch was replicated")]
    NotLeader,
    #[error("not replicated before the deadline")]
    Timeout,
}

impl Partition {
    /// Waits until the batch `info` describes — appended by this replica as leader in
    /// `leader_epoch` — is fsynced here (group commit) and covered by the high watermark,
    /// while this replica still leads in that epoch. Wakes at once when leadership is lost
    /// (`update_role` notifies the HW watch), so callers answer NOT_LEADER instead of waiting
    /// for their deadline.
    ///
    /// # Errors
    /// `Fsync`, `NotLeader` or `Timeout`.
    pub async fn wait_replicated(
        &self,
        info: &AppendInfo,
        leader_epoch: i32,
        deadline: Instant,
    ) -> Result<(), ReplicatedError> {
        self.wait_durable(info, deadline).await?;
        self.wait_covered(info, leader_epoch, deadline).await
    }

    /// The first half of [`Self::wait_replicated`]: the batch's WAL fsync (group commit).
    /// Nothing is acknowledged before it.
    ///
    /// # Errors
    /// `Fsync` or `Timeout`.
    pub async fn wait_durable(
        &self,
        info: &AppendInfo,
        deadline: Instant,
    ) -> Result<(), ReplicatedError> {
        match tokio::time::timeout_at(deadline, self.store.wal().sync_after(info.wal_ticket)).await
        {
            Err(_) => Err(ReplicatedError::Timeout),
            Ok(Err(e)) => Err(ReplicatedError::Fsync(e.to_string())),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// The second half of [`Self::wait_replicated`], after [`Self::wait_durable`]: the high
    /// watermark past the batch while this replica still leads in `leader_epoch`.
    ///
    /// # Errors
    /// `NotLeader` or `Timeout`.
    pub async fn wait_covered(
        &self,
        info: &AppendInfo,
        leader_epoch: i32,
        deadline: Instant,
    ) -> Result<(), ReplicatedError> {
        let target = info.last_offset + 1;
        let mut hw = self.subscribe_hw();
        // The watch guard is dropped at once inside `wait_for`'s predicate evaluation: holding
        // its read lock while the checks below lock the replica state would invert the order
        // `maybe_advance_hw` takes them in.
        let still_leader = || self.is_leader() && self.leader_epoch() == leader_epoch;
        let reached =
            tokio::time::timeout_at(deadline, hw.wait_for(|h| *h >= target || !still_leader()))
                .await;
        match reached {
            Err(_) => Err(ReplicatedError::Timeout),
            Ok(Err(_)) => Err(ReplicatedError::NotLeader),
            Ok(Ok(_)) if !still_leader() => Err(ReplicatedError::NotLeader),
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// Appends `raw` as leader and waits until it is replicated ([`Self::wait_replicated`]).
    /// For writers that acknowledge one batch at a time; Produce and the group coordinator
    /// split the two so the next write can append while the first waits (the coordinator also
    /// orders its appends).
    ///
    /// # Errors
    /// The append's errors, then `wait_replicated`'s.
    pub async fn replicated_write(
        &self,
        raw: Bytes,
        header: BatchHeader,
        opts: AppendOptions,
        deadline: Instant,
    ) -> Result<AppendInfo, ReplicatedError> {
        let leader_epoch = self.leader_epoch();
        let info = self.append_leader(raw, header, opts).await?;
        self.wait_replicated(&info, leader_epoch, deadline).await?;
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::kafka::batch::{self, tests::make_batch};
    use crate::storage::Store;
    use crate::types::{NodeId, TopicId, TopicName};
    use std::sync::Arc;
    use std::time::Duration;

    fn open(dir: &std::path::Path, isr: &[NodeId]) -> Arc<Partition> {
        let store = Store::open(dir).expect("open");
        let p = Partition::open(
            store,
            NodeId(1),
            TopicName::new("t").expect("valid"),
            0,
            TopicId(uuid::Uuid::from_u128(9)),
        )
        .expect("open partition");
        p.update_role(Some(NodeId(1)), 1, 1, isr);
        Arc::new(p)
    }

    fn opts() -> AppendOptions {
        AppendOptions {
            log_append_time: false,
            now_ms: 0,
        }
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    #[tokio::test]
    async fn a_sole_replica_acknowledges_once_fsynced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = open(dir.path(), &[NodeId(1)]);
        let b = Bytes::from(make_batch(2, -1, -1, -1));
        let h = batch::validate_record_set(&b).expect("valid")[0];
        let info = p
            .replicated_write(b, h, opts(), soon())
            .await
            .expect("replicated");
        assert_eq!((info.base_offset, info.last_offset), (0, 1));
        assert!(p.high_watermark() >= 2);
    }

    #[tokio::test]
    async fn losing_leadership_wakes_the_writer_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Node 2 is in the ISR but never fetches: the HW cannot pass the batch.
        let p = open(dir.path(), &[NodeId(1), NodeId(2)]);
        let b = Bytes::from(make_batch(1, -1, -1, -1));
        let h = batch::validate_record_set(&b).expect("valid")[0];
        let info = p.append_leader(b, h, opts()).await.expect("append");
        let waiter = {
            let p = p.clone();
            tokio::spawn(async move { p.wait_replicated(&info, 1, soon()).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "must wait for the follower");
        let started = std::time::Instant::now();
        p.update_role(Some(NodeId(2)), 2, 2, &[NodeId(1), NodeId(2)]);
        let r = waiter.await.expect("task");
        assert!(matches!(r, Err(ReplicatedError::NotLeader)), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(1));
        // And a deadline is a timeout, not a hang.
        let b = Bytes::from(make_batch(1, -1, -1, -1));
        let h = batch::validate_record_set(&b).expect("valid")[0];
        p.update_role(Some(NodeId(1)), 3, 3, &[NodeId(1), NodeId(2)]);
        let r = p
            .replicated_write(b, h, opts(), Instant::now() + Duration::from_millis(100))
            .await;
        assert!(matches!(r, Err(ReplicatedError::Timeout)), "{r:?}");
    }
}
