//! InitProducerId: producer ids come from blocks reserved through the controller, so ids are
//! unique across the cluster and across restarts.

use super::{Broker, BrokerError};
use crate::metadata::{ApplyOutcome, MetadataCommand};
use tokio::sync::Mutex;

/// Ids reserved per Raft round trip.
const BLOCK_SIZE: i64 = 1000;

/// The current block `[next, end)`.
#[derive(Debug, Default)]
pub(super) struct ProducerIdBlock {
    range: Mutex<(i64, i64)>,
}

impl Broker {
    /// Allocates an idempotent producer id and epoch. With an existing id and epoch
    /// (KIP-360), the epoch is bumped instead; at the end of the epoch range a fresh id is
    /// issued.
    ///
    /// # Errors
    /// Controller failures.
    pub(super) async fn idempotent_producer_id(
        &self,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<(i64, i16), BrokerError> {
        if producer_id >= 0 && (0..i16::MAX - 1).contains(&producer_epoch) {
            return Ok((producer_id, producer_epoch + 1));
        }
        let mut range = self.inner.producer_ids.range.lock().await;
        if range.0 >= range.1 {
            match self
                .propose(MetadataCommand::AllocateProducerIds { count: BLOCK_SIZE })
                .await?
            {
                ApplyOutcome::ProducerIds { first } => *range = (first, first + BLOCK_SIZE),
                other => {
                    return Err(BrokerError::Internal(format!(
                        "unexpected outcome {other:?}"
                    )))
                }
            }
        }
        let id = range.0;
        range.0 += 1;
        Ok((id, 0))
    }
}
