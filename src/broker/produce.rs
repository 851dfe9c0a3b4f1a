//! Produce: validate, append as leader (in request order), then wait for durability.
//!
//! The append and the wait are split so a connection can append its requests in order while
//! their `acks=all` fsyncs complete together (group commit).

use super::error::RecordErrors;
use super::{Broker, BrokerError};
use crate::codec::kafka::batch::{self, BatchError};
use crate::codec::kafka::control::Marker;
use crate::codec::kafka::records::{self, RecordError};
use crate::metrics::ProduceStage;
use crate::replication::{AppendError, AppendInfo, AppendOptions, Partition, ReplicatedError};
use crate::types::now_ms;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// A successful produce to one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceAck {
    pub base_offset: i64,
    pub log_append_time: i64,
    pub log_start_offset: i64,
}

/// Transactions on the partitions this node leads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransactionGauges {
    /// Open transactions, each partition counting its own.
    pub open_transactions: u64,
    /// Partitions whose last stable offset is below the high watermark.
    pub partitions_lso_behind_hw: u64,
    /// The largest `high watermark - last stable offset` (what read_committed consumers wait
    /// behind).
    pub lso_lag_max: i64,
}

/// An appended batch waiting for its acknowledgement condition.
#[derive(Debug)]
pub struct ProducePending {
    partition: Arc<Partition>,
    info: AppendInfo,
    acks: i16,
    deadline: Instant,
    /// `min.insync.replicas` of the topic (checked again once the HW covers the batch).
    min_isr: usize,
    /// The leader epoch the batch was appended in: an acknowledgement is only valid if this
    /// replica still leads in that epoch once the high watermark covers the batch.
    leader_epoch: i32,
    /// A marker on an offsets partition: once it is durable, the group coordinator ends the
    /// producer's transactional offsets there (partition, producer id, commit).
    txn_offsets: Option<(Arc<crate::group::GroupCoordinator>, i32, i64, bool)>,
}

impl From<BatchError> for BrokerError {
    fn from(e: BatchError) -> Self {
        match e {
            BatchError::Crc { .. } | BatchError::Truncated(_) => {
                BrokerError::CorruptMessage(e.to_string())
            }
            BatchError::Magic(_) => BrokerError::UnsupportedForMessageFormat,
            BatchError::Invalid(_) => BrokerError::InvalidRecord(e.to_string()),
        }
    }
}

impl From<AppendError> for BrokerError {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::NotLeader => BrokerError::NotLeaderOrFollower,
            AppendError::OutOfOrderSequence { .. } => {
                BrokerError::OutOfOrderSequence(e.to_string())
            }
            AppendError::InvalidProducerEpoch { .. } => BrokerError::InvalidProducerEpoch,
            AppendError::CoordinatorFenced { .. } => BrokerError::TransactionCoordinatorFenced,
            AppendError::InvalidTxnState => BrokerError::Txn(crate::txn::TxnError::InvalidTxnState),
            AppendError::Storage(s) => BrokerError::Storage(s.to_string()),
        }
    }
}

/// The transactional part of a produce request.
#[derive(Debug, Clone, Copy)]
pub struct ProduceTxn<'a> {
    /// The request's transactional id.
    pub id: &'a str,
    /// What the request's version allows ([`TxnSupport::for_produce`]): at transaction
    /// version 2 (Produce v12+, KIP-890 part 2) a partition not yet in the producer's
    /// transaction is added to it by the produce (the client sends no AddPartitionsToTxn);
    /// below, it must already be in it, else TRANSACTION_ABORTABLE (v11) or
    /// INVALID_TXN_STATE (v0–v10).
    pub support: crate::txn::TxnSupport,
}

impl Broker {
    /// Validates and appends one partition's record set. Returns the pending acknowledgement.
    ///
    /// # Errors
    /// Unknown partition, not leader, invalid or oversize batches, sequence errors, too few
    /// in-sync replicas for `acks=all`, storage failures.
    pub async fn produce_append(
        &self,
        topic: &str,
        partition: i32,
        records: Option<Bytes>,
        acks: i16,
        timeout: Duration,
        txn: Option<ProduceTxn<'_>>,
    ) -> Result<ProducePending, BrokerError> {
        if !matches!(acks, -1..=1) {
            return Err(BrokerError::InvalidRequiredAcks);
        }
        let image = self.metadata_view();
        let p = self.leader_partition(&image, topic, partition).await?;
        let t = image
            .topic(topic)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        let records = records
            .filter(|r| !r.is_empty())
            .ok_or_else(|| BrokerError::InvalidRecord("empty record set".into()))?;
        let headers = batch::validate_record_set(&records)?;
        let [h] = headers.as_slice() else {
            return Err(BrokerError::InvalidRecord(
                "Produce requests must contain exactly one record batch per partition".into(),
            ));
        };
        let max_message_bytes: usize = self
            .topic_config_value(t, "max.message.bytes")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_048_588);
        if h.total_len() > max_message_bytes {
            return Err(BrokerError::MessageTooLarge);
        }
        // Kafka authorizes transactional records by the request's transactional id, so
        // without one they are refused the same way. The first batch of a transaction here
        // is verified with its coordinator under a guard (`partition/verify.rs`), or at
        // transaction version 2 added to the transaction by the coordinator.
        let guard = if h.is_transactional() {
            let Some(txn) = txn.filter(|t| !t.id.is_empty()) else {
                return Err(BrokerError::TransactionalIdAuthorizationFailed);
            };
            let guard = p
                .begin_txn_verification(h.producer_id, h.producer_epoch, now_ms())
                .await
                .map_err(|_| BrokerError::NotEnoughReplicas)?;
            if let Some(token) = guard {
                let tp = (topic.to_owned(), partition);
                let verified = self
                    .verify_produce(txn.id, h.producer_id, h.producer_epoch, &tp, txn.support)
                    .await;
                if let Err(e) = verified {
                    p.end_txn_verification(h.producer_id, token).await;
                    return Err(e);
                }
            }
            guard
        } else {
            None
        };
        batch::check_produced_header(h)?;
        let log_append_time = self
            .topic_config_value(t, "message.timestamp.type")
            .as_deref()
            == Some("LogAppendTime");
        if h.is_log_append_time() {
            return Err(BrokerError::InvalidTimestamp(
                "Producer should not set timestamp type to LogAppendTime.".into(),
            ));
        }
        let now = now_ms();
        let policy = self.produce_policy(t, log_append_time, now);
        let validated = validate_records(&records, &policy)?;
        let records = if !log_append_time && validated.max_timestamp != h.max_timestamp {
            // Kafka stores the records' real largest timestamp in the header.
            let mut b = bytes::BytesMut::from(&records[..]);
            batch::set_max_timestamp(&mut b, validated.max_timestamp);
            b.freeze()
        } else {
            records
        };
        let min_isr = if acks == -1 {
            self.check_min_isr(t, partition, &p)?
        } else {
            self.min_isr(t)
        };
        let leader_epoch = p.leader_epoch();
        let opts = AppendOptions {
            log_append_time,
            now_ms: now,
        };
        let started = std::time::Instant::now();
        let info = p.append_produced(records, *h, opts, guard).await?;
        crate::metrics::global()
            .produce_stage(ProduceStage::Append)
            .observe(started.elapsed());
        let timeout = timeout.min(self.config().limits.produce_timeout_max);
        Ok(ProducePending {
            partition: p,
            info,
            acks,
            deadline: Instant::now() + timeout,
            min_isr,
            leader_epoch,
            txn_offsets: None,
        })
    }
}

impl Broker {
    fn min_isr(&self, t: &crate::metadata::TopicImage) -> usize {
        self.topic_config_value(t, "min.insync.replicas")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1)
    }

    /// `min.insync.replicas` of topic `t`, once checked against the partition's caught-up
    /// ISR (an `acks=all` append is refused before it is written when too few are in sync).
    fn check_min_isr(
        &self,
        t: &crate::metadata::TopicImage,
        partition: i32,
        p: &Partition,
    ) -> Result<usize, BrokerError> {
        let min_isr = self.min_isr(t);
        let lag_max = self.config().replication.replica_lag_time_max;
        let isr = t
            .partitions
            .get(partition as usize)
            .map_or(0, |pi| pi.isr.len())
            .min(p.caught_up_isr_len(lag_max));
        if isr < min_isr {
            return Err(BrokerError::NotEnoughReplicas);
        }
        Ok(min_isr)
    }

    /// The producers one partition keeps state for, from its leader (DescribeProducers).
    ///
    /// # Errors
    /// Unknown partition, not the leader.
    pub async fn describe_producers(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Vec<crate::replication::ProducerView>, BrokerError> {
        let image = self.metadata_view();
        let p = self.leader_partition(&image, topic, partition).await?;
        Ok(p.active_producers().await)
    }

    /// Transactions on the partitions this node leads (`/metrics`).
    pub fn transaction_gauges(&self) -> TransactionGauges {
        let mut g = TransactionGauges::default();
        for p in self.inner.replicas.all().iter().filter(|p| p.is_leader()) {
            g.open_transactions += p.open_transactions().len() as u64;
            let (hw, lso) = p.stable_offsets();
            let lag = (hw - lso).max(0);
            if lag > 0 {
                g.partitions_lso_behind_hw += 1;
            }
            g.lso_lag_max = g.lso_lag_max.max(lag);
        }
        g
    }

    /// Appends a transaction marker to one partition as its leader (WriteTxnMarkers) and
    /// returns the pending acknowledgement: Kafka appends markers with `acks=all`. `tv2`: a
    /// marker of transaction version 2 (`Partition::append_marker`).
    ///
    /// # Errors
    /// Unknown partition, not the leader, too few in-sync replicas, a stale producer or
    /// coordinator epoch, storage failures.
    #[allow(clippy::too_many_arguments)]
    pub async fn marker_append(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        marker: Marker,
        tv2: bool,
        timeout: Duration,
    ) -> Result<ProducePending, BrokerError> {
        let image = self.metadata_view();
        let p = self.leader_partition(&image, topic, partition).await?;
        let t = image
            .topic(topic)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        let min_isr = self.check_min_isr(t, partition, &p)?;
        let leader_epoch = p.leader_epoch();
        let info = p
            .append_marker(producer_id, producer_epoch, marker, tv2, now_ms())
            .await?;
        let txn_offsets = (topic == crate::group::OFFSETS_TOPIC).then(|| {
            (
                self.inner.groups.clone(),
                partition,
                producer_id,
                marker.commit,
            )
        });
        Ok(ProducePending {
            partition: p,
            info,
            acks: -1,
            deadline: Instant::now() + timeout.min(self.config().limits.produce_timeout_max),
            min_isr,
            leader_epoch,
            txn_offsets,
        })
    }
}

impl ProducePending {
    /// Waits for the acknowledgement condition: nothing for acks 0/1; for `acks=all`, the WAL
    /// fsync of the batch (group-committed) and a high watermark past it.
    ///
    /// # Errors
    /// `RequestTimedOut` past the deadline, `Storage` if the fsync failed.
    pub async fn wait(self) -> Result<ProduceAck, BrokerError> {
        let ack = ProduceAck {
            base_offset: self.info.base_offset,
            log_append_time: self.info.log_append_time,
            log_start_offset: self.info.log_start_offset,
        };
        if self.acks != -1 {
            return Ok(ack);
        }
        // The one replicated write's wait (`Partition::wait_replicated`, in its two halves
        // so that each is timed): fsync, then the HW past the batch, while this replica
        // still leads in the append's epoch.
        let m = crate::metrics::global();
        let started = std::time::Instant::now();
        let waited = async {
            self.partition
                .wait_durable(&self.info, self.deadline)
                .await?;
            let durable = std::time::Instant::now();
            m.produce_stage(ProduceStage::LeaderFsync)
                .observe(durable - started);
            self.partition
                .wait_covered(&self.info, self.leader_epoch, self.deadline)
                .await?;
            m.produce_stage(ProduceStage::Replication)
                .observe(durable.elapsed());
            Ok::<(), ReplicatedError>(())
        };
        match waited.await {
            Ok(()) => {}
            Err(ReplicatedError::Timeout) => return Err(BrokerError::RequestTimedOut),
            Err(ReplicatedError::Fsync(e)) => return Err(BrokerError::Storage(e)),
            Err(ReplicatedError::NotLeader) => return Err(BrokerError::NotLeaderOrFollower),
            Err(ReplicatedError::Append(e)) => return Err(e.into()),
        }
        // Replicated to the whole ISR, but the ISR shrank below the minimum meanwhile.
        if self.partition.isr().len() < self.min_isr {
            return Err(BrokerError::NotEnoughReplicasAfterAppend);
        }
        if let Some((groups, partition, producer_id, commit)) = self.txn_offsets {
            groups.complete_txn_offsets(partition, producer_id, commit, self.info.base_offset);
        }
        Ok(ack)
    }
}

impl Broker {
    /// What a produced batch of topic `t` must satisfy (Kafka's `LogValidator` settings).
    fn produce_policy(
        &self,
        t: &crate::metadata::TopicImage,
        log_append_time: bool,
        now_ms: i64,
    ) -> records::ProducePolicy {
        let ms = |k: &str| {
            self.topic_config_value(t, k)
                .and_then(|v| v.trim().parse::<i64>().ok())
                .unwrap_or(i64::MAX)
        };
        // `difference.max.ms` (deprecated) bounds both sides, as before Kafka 3.6.
        let difference = ms("message.timestamp.difference.max.ms");
        records::ProducePolicy {
            compacted: self
                .topic_config_value(t, "cleanup.policy")
                .is_some_and(|v| v.split(',').any(|p| p.trim() == "compact")),
            now_ms,
            timestamp_before_max_ms: ms("message.timestamp.before.max.ms").min(difference),
            timestamp_after_max_ms: ms("message.timestamp.after.max.ms").min(difference),
            log_append_time,
            decompressed_bytes_max: self.config().limits.decompressed_batch_bytes_max,
        }
    }
}

/// Decodes every record of a produced batch (bounded; see `codec::kafka::records`) and maps
/// what is wrong to Kafka's errors: a malformed batch is CORRUPT_MESSAGE, a batch that expands
/// past the decompression budget MESSAGE_TOO_LARGE, records without keys on a compacted topic
/// INVALID_RECORD and timestamps out of range INVALID_TIMESTAMP, each listing every bad record
/// (KIP-467).
fn validate_records(
    raw: &Bytes,
    policy: &records::ProducePolicy,
) -> Result<records::Validated, BrokerError> {
    let m = crate::metrics::global();
    let v = records::validate_produced(raw, policy).map_err(|e| {
        crate::metrics::inc(&m.produce_rejected_batches, 1);
        match e {
            RecordError::TooLarge { .. } => BrokerError::MessageTooLarge,
            RecordError::Corrupt(_) | RecordError::Compression { .. } => {
                BrokerError::CorruptMessage(e.to_string())
            }
        }
    })?;
    // The partition-level message as Kafka's LogValidator.processRecordErrors words it.
    let listed = |problems: &[records::RecordProblem], timestamps: bool| RecordErrors {
        message: if timestamps {
            "One or more records have been rejected due to invalid timestamp".into()
        } else {
            let shown: Vec<String> = problems
                .iter()
                .take(3)
                .map(|p| {
                    format!(
                        "RecordError(batchIndex={}, message='{}')",
                        p.index, p.message
                    )
                })
                .collect();
            format!(
                "One or more records have been rejected due to {} record errors in total, and \
                 only showing the first three errors at most: [{}]",
                problems.len(),
                shown.join(", ")
            )
        },
        records: problems
            .iter()
            .map(|p| (p.index, p.message.clone()))
            .collect(),
    };
    if !v.keyless.is_empty() {
        crate::metrics::inc(&m.produce_rejected_batches, 1);
        return Err(BrokerError::InvalidRecords(listed(&v.keyless, false)));
    }
    if !v.bad_timestamps.is_empty() {
        crate::metrics::inc(&m.produce_rejected_batches, 1);
        return Err(BrokerError::InvalidTimestamps(listed(
            &v.bad_timestamps,
            true,
        )));
    }
    Ok(v)
}
