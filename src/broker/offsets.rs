//! ListOffsets and OffsetsForLeaderEpoch.

use super::{Broker, BrokerError};
use crate::storage;

/// What ListOffsets asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    Earliest,
    Latest,
    MaxTimestamp,
    Timestamp(i64),
}

impl OffsetSpec {
    /// From the wire timestamp (-1 latest, -2 earliest, -3 max timestamp, -4 earliest local,
    /// -5 latest tiered; tiered storage is not used, so -4/-5 equal -2/-1).
    pub fn from_wire(ts: i64) -> Self {
        match ts {
            -2 | -4 => OffsetSpec::Earliest,
            -1 | -5 => OffsetSpec::Latest,
            -3 => OffsetSpec::MaxTimestamp,
            t => OffsetSpec::Timestamp(t),
        }
    }
}

impl Broker {
    /// Returns `(offset, timestamp, leader_epoch)`; offset `-1` when no record matches.
    /// `read_committed` (isolation level READ_COMMITTED) bounds "latest" and the lookups by
    /// the last stable offset instead of the high watermark, as Kafka does.
    ///
    /// Right after an election the leader's HW may still be below its epoch's start offset
    /// (`Partition::hw_lags_epoch_start`): then "latest", and a timestamp lookup that finds
    /// nothing below the HW, answer OFFSET_NOT_AVAILABLE (retriable), as in Kafka (KIP-207),
    /// instead of an offset below records that were already acknowledged.
    ///
    /// # Errors
    /// Unknown partition, not leader, epoch mismatches, lagging HW after an election, storage
    /// failures.
    pub async fn list_offset(
        &self,
        topic: &str,
        partition: i32,
        spec: OffsetSpec,
        current_leader_epoch: i32,
        read_committed: bool,
    ) -> Result<(i64, i64, i32), BrokerError> {
        let image = self.metadata_view();
        let p = self.leader_partition(&image, topic, partition).await?;
        let epoch = p.leader_epoch();
        if current_leader_epoch >= 0 && current_leader_epoch < epoch {
            return Err(BrokerError::FencedLeaderEpoch);
        }
        if current_leader_epoch > epoch {
            return Err(BrokerError::UnknownLeaderEpoch);
        }
        let hw = if read_committed {
            p.last_stable_offset()
        } else {
            p.high_watermark()
        };
        let cap = self.config().limits.decompressed_batch_bytes_max;
        let lagging = || {
            if p.hw_lags_epoch_start() {
                Err(BrokerError::OffsetNotAvailable)
            } else {
                Ok((-1, -1, -1))
            }
        };
        match spec {
            OffsetSpec::Earliest => Ok((p.log_start_offset(), -1, epoch)),
            OffsetSpec::Latest if p.hw_lags_epoch_start() => Err(BrokerError::OffsetNotAvailable),
            OffsetSpec::Latest => Ok((hw, -1, epoch)),
            OffsetSpec::MaxTimestamp => {
                let pc = p.clone();
                let r = storage::blocking(move || pc.max_timestamp_offset(hw, cap))
                    .await
                    .map_err(|e| BrokerError::Storage(e.to_string()))?;
                r.map_or_else(lagging, |(o, t)| Ok((o, t, epoch)))
            }
            OffsetSpec::Timestamp(ts) => {
                let pc = p.clone();
                let r = storage::blocking(move || pc.offset_for_timestamp(ts, hw, cap))
                    .await
                    .map_err(|e| BrokerError::Storage(e.to_string()))?;
                r.map_or_else(lagging, |(o, t)| Ok((o, t, epoch)))
            }
        }
    }

    /// `(leader_epoch, end_offset)` for OffsetsForLeaderEpoch.
    ///
    /// # Errors
    /// Unknown partition, not leader, epoch mismatches.
    pub async fn offset_for_leader_epoch(
        &self,
        topic: &str,
        partition: i32,
        leader_epoch: i32,
        current_leader_epoch: i32,
    ) -> Result<(i32, i64), BrokerError> {
        let image = self.metadata_view();
        let p = self.leader_partition(&image, topic, partition).await?;
        let epoch = p.leader_epoch();
        if current_leader_epoch >= 0 && current_leader_epoch < epoch {
            return Err(BrokerError::FencedLeaderEpoch);
        }
        if current_leader_epoch > epoch {
            return Err(BrokerError::UnknownLeaderEpoch);
        }
        Ok(p.end_offset_for_epoch(leader_epoch).await)
    }
}
