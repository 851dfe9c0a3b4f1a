//! DeleteRecords: move a partition's log start offset forward on its leader.

use super::{Broker, BrokerError};
use crate::replication::DeleteRecordsError;

impl Broker {
    /// Deletes the records of `topic`-`partition` below `offset` (`-1` = the high watermark)
    /// and returns the new log start offset (the low watermark).
    ///
    /// # Errors
    /// Unknown partition, not leader, an offset above the high watermark (OFFSET_OUT_OF_RANGE),
    /// storage failures.
    pub async fn delete_records(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<i64, BrokerError> {
        let image = self.metadata_view();
        let p = self.leader_partition(&image, topic, partition).await?;
        p.delete_records_before(offset).await.map_err(|e| match e {
            DeleteRecordsError::OffsetOutOfRange { .. } => BrokerError::OffsetOutOfRange,
            DeleteRecordsError::NotLeader => BrokerError::NotLeaderOrFollower,
            DeleteRecordsError::Storage(e) => BrokerError::Storage(e.to_string()),
        })
    }
}
