//! Fetch: read whole batches below the high watermark (`read_committed`: below the last
//! stable offset, with the aborted transactions among them), long-polling until `min_bytes`
//! arrive or `max_wait` passes.

use super::fetch_memory::MemoryGrant;
use super::{Broker, BrokerError};
use crate::codec::kafka::batch;
use crate::replication::{AbortedTxn, Partition, INLINE_READ_BYTES_MAX};
use crate::storage::{self, ReadTier};
use bytes::Bytes;
use futures::future::select_all;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// One partition of a fetch.
#[derive(Debug, Clone)]
pub struct FetchPartitionRequest {
    pub topic: String,
    pub partition: i32,
    pub fetch_offset: i64,
    pub partition_max_bytes: i32,
    /// `-1` if the client did not send one.
    pub current_leader_epoch: i32,
}

/// Request-level fetch parameters.
#[derive(Debug, Clone, Copy)]
pub struct FetchParams {
    pub max_wait: Duration,
    pub min_bytes: i32,
    pub max_bytes: i32,
    /// Isolation level READ_COMMITTED: only what is below the last stable offset.
    pub read_committed: bool,
}

/// One partition's answer.
#[derive(Debug, Clone)]
pub struct FetchPartitionResult {
    pub error: Option<BrokerError>,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    pub records: Bytes,
    /// `read_committed` only: the aborted transactions whose records may be among `records`.
    pub aborted: Option<Vec<AbortedTxn>>,
}

impl FetchPartitionResult {
    pub fn error(e: BrokerError) -> Self {
        Self {
            error: Some(e),
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            records: Bytes::new(),
            aborted: None,
        }
    }

    fn at(p: &Partition, hw: i64, lso: i64, log_start: i64) -> Self {
        debug_assert!(lso <= hw || !p.is_leader() || lso == p.log_start_offset());
        Self {
            error: None,
            high_watermark: hw,
            last_stable_offset: lso,
            log_start_offset: log_start,
            records: Bytes::new(),
            aborted: None,
        }
    }
}

enum Slot {
    Ready(FetchPartitionResult),
    Live(Arc<Partition>, FetchPartitionRequest),
}

impl Broker {
    /// Serves a consumer fetch. Results are in request order.
    pub async fn fetch(
        &self,
        reqs: Vec<FetchPartitionRequest>,
        params: FetchParams,
    ) -> Vec<FetchPartitionResult> {
        self.fetch_charged(reqs, params).await.0
    }

    /// [`Broker::fetch`], with the bytes of the answer's records charged to the node's fetch
    /// memory (`fetch_memory.rs`): the caller holds the grant until the answer is written.
    /// A fetch that cannot get memory within its wait is answered without records.
    pub async fn fetch_charged(
        &self,
        reqs: Vec<FetchPartitionRequest>,
        params: FetchParams,
    ) -> (Vec<FetchPartitionResult>, Option<MemoryGrant>) {
        let image = self.metadata_view();
        let mut slots = Vec::with_capacity(reqs.len());
        for r in reqs {
            let slot = match self.leader_partition(&image, &r.topic, r.partition).await {
                Err(e) => Slot::Ready(FetchPartitionResult::error(e)),
                Ok(p) => {
                    let epoch = p.leader_epoch();
                    if r.current_leader_epoch >= 0 && r.current_leader_epoch < epoch {
                        Slot::Ready(FetchPartitionResult::error(BrokerError::FencedLeaderEpoch))
                    } else if r.current_leader_epoch > epoch {
                        Slot::Ready(FetchPartitionResult::error(BrokerError::UnknownLeaderEpoch))
                    } else {
                        Slot::Live(p, r)
                    }
                }
            };
            slots.push(slot);
        }
        let limits = &self.config().limits;
        let max_wait = params.max_wait.min(limits.fetch_wait_max);
        let max_bytes = usize::try_from(params.max_bytes)
            .unwrap_or(0)
            .min(limits.fetch_bytes_max)
            .max(1);
        let min_bytes = usize::try_from(params.min_bytes).unwrap_or(0);
        let deadline = Instant::now() + max_wait;
        let slots = Arc::new(slots);
        loop {
            // Subscribe before reading so an append between the read and the wait is not missed.
            let mut watches: Vec<_> = slots
                .iter()
                .filter_map(|s| match s {
                    Slot::Live(p, _) => Some(p.subscribe_hw()),
                    Slot::Ready(_) => None,
                })
                .collect();
            let Some(mut grant) = self.inner.fetch_memory.grant(max_bytes, deadline).await else {
                return (without_records(&slots), None);
            };
            let granted = grant.bytes();
            let results = match read_all(slots.clone(), granted, params.read_committed).await {
                Ok(r) => r,
                Err(e) => {
                    let failed = slots
                        .iter()
                        .map(|_| FetchPartitionResult::error(BrokerError::Storage(e.to_string())))
                        .collect();
                    return (failed, None);
                }
            };
            let bytes: usize = results.iter().map(|r| r.records.len()).sum();
            grant.settle(bytes);
            let any_error = results.iter().any(|r| r.error.is_some());
            let done = bytes >= min_bytes.min(granted)
                || any_error
                || watches.is_empty()
                || Instant::now() >= deadline
                || self.inner.shutdown.is_cancelled();
            if done {
                return (results, Some(grant));
            }
            drop(grant);
            let changed = select_all(watches.iter_mut().map(|w| Box::pin(w.changed())));
            super::quotas::parked(async {
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => {}
                    _ = changed => {}
                    _ = self.inner.shutdown.cancelled() => {}
                }
            })
            .await;
        }
    }
}

/// Each slot's result without records (its partition's offsets): the answer of a fetch that got
/// no memory before its wait ended.
fn without_records(slots: &[Slot]) -> Vec<FetchPartitionResult> {
    slots
        .iter()
        .map(|s| match s {
            Slot::Ready(r) => r.clone(),
            Slot::Live(p, _) => {
                let (hw, lso) = p.stable_offsets();
                FetchPartitionResult::at(p, hw, lso, p.log_start_offset())
            }
        })
        .collect()
}

/// Reads every live slot within the response byte budget: on this task when every partition's
/// batches are in memory and together fit `INLINE_READ_BYTES_MAX` (a consumer keeping up reads
/// what was just appended), else all of them on the blocking pool. `read_committed`
/// fetches also read the aborted-transactions index, so they always take the blocking pool.
async fn read_all(
    slots: Arc<Vec<Slot>>,
    max_bytes: usize,
    read_committed: bool,
) -> Result<Vec<FetchPartitionResult>, storage::StorageError> {
    if !read_committed {
        if let Some(out) = read_slots(&slots, max_bytes, false, ReadTier::Cached) {
            return Ok(out);
        }
    }
    storage::blocking(move || {
        Ok(read_slots(&slots, max_bytes, read_committed, ReadTier::Any)
            .expect("a read that may go to disk always answers"))
    })
    .await
}

/// [`read_all`]'s reads, from `tier`. `None` if a partition's data is not in memory
/// (`ReadTier::Cached` only; a partition that got some of its batches keeps them).
fn read_slots(
    slots: &[Slot],
    max_bytes: usize,
    read_committed: bool,
    tier: ReadTier,
) -> Option<Vec<FetchPartitionResult>> {
    let mut out = Vec::with_capacity(slots.len());
    let mut budget = max_bytes;
    let mut first_data = true;
    // What the reads from memory may copy on this task, over all partitions.
    let mut copy_left = INLINE_READ_BYTES_MAX;
    for s in slots {
        match s {
            Slot::Ready(r) => out.push(r.clone()),
            Slot::Live(p, r) => {
                let (hw, lso) = p.stable_offsets();
                let log_start = p.log_start_offset();
                let leo = p.log_end_offset();
                let mut res = FetchPartitionResult::at(p, hw, lso, log_start);
                if r.fetch_offset < log_start || r.fetch_offset > leo {
                    res.error = Some(BrokerError::OffsetOutOfRange);
                    out.push(res);
                    continue;
                }
                let upper = if read_committed { lso } else { hw };
                // KIP-74, as Kafka's ReplicaManager.readFromLog: each partition reads
                // up to min(partition_max_bytes, what is left of max_bytes); only the
                // first partition with data may exceed that with one whole batch. A
                // later partition whose first batch does not fit gets nothing.
                let part_max = usize::try_from(r.partition_max_bytes).unwrap_or(0);
                let limit = part_max.min(budget);
                let read = if limit == 0 && !first_data {
                    Ok(Bytes::new())
                } else if tier == ReadTier::Cached {
                    let read = p.read_cached(r.fetch_offset, limit, upper, first_data, copy_left);
                    if let Ok(b) = &read {
                        copy_left = copy_left.saturating_sub(b.len());
                    }
                    read
                } else {
                    p.read_within(r.fetch_offset, limit, upper, first_data)
                };
                let aborted = read.and_then(|records| {
                    if !read_committed {
                        return Ok((records, None));
                    }
                    let data_end = batch::end_offset(&records).unwrap_or(r.fetch_offset);
                    let aborted = p.aborted_transactions(r.fetch_offset, data_end)?;
                    Ok((records, Some(aborted)))
                });
                match aborted {
                    Ok((records, aborted)) => {
                        if !records.is_empty() {
                            first_data = false;
                            budget = budget.saturating_sub(records.len());
                        }
                        res.records = records;
                        res.aborted = aborted;
                    }
                    Err(storage::StorageError::NotCached) => return None,
                    // This partition only (the replica logged and recorded the damage;
                    // KAFKA_STORAGE_ERROR, not a silent stall). The others still read.
                    Err(e) => res.error = Some(BrokerError::Storage(e.to_string())),
                }
                out.push(res);
            }
        }
    }
    Some(out)
}
