//! `ReplicaService`: the leader side of follower fetches (see `proto/replica.proto`). A fetch
//! checks the follower's last fetched epoch for divergence, records its log end offset and the
//! fsynced part of it (moving the high watermark) and returns batches up to the log end
//! offset, long-polling until data arrives or `max_wait_ms` passes. `Durable` reports an fsync
//! that ended while the follower's fetch was in flight; it carries that fetch's position and
//! counts only if the position passes the same divergence check.

use super::log::FetchPosition;
use super::log::{Partition, INLINE_READ_BYTES_MAX};
use super::manager::ReplicaManager;
use super::throttle::ReplicationThrottle;
use crate::controller::policy::liveness::Liveness;
use crate::rpc::pb::replica::replica_service_server::{ReplicaService, ReplicaServiceServer};
use crate::rpc::pb::replica::{
    DurableReply, DurableRequest, FetchReply, FetchRequest, HeartbeatReply, HeartbeatRequest,
    OffsetsReply, OffsetsRequest, PartitionFetch, PartitionOffsets, PartitionReply,
};
use crate::rpc::MESSAGE_BYTES_MAX;
use crate::types::{NodeId, TopicId};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tonic::{Request, Response, Status};

/// Per-partition error codes of `PartitionReply.error`.
pub(crate) const ERR_NONE: i32 = 0;
pub(crate) const ERR_NOT_LEADER: i32 = 1;
pub(crate) const ERR_FENCED_LEADER_EPOCH: i32 = 2;
pub(crate) const ERR_UNKNOWN_PARTITION: i32 = 3;
pub(crate) const ERR_STORAGE: i32 = 4;
pub(crate) const ERR_OFFSET_OUT_OF_RANGE: i32 = 5;

/// Longest long-poll a follower may ask for.
pub(crate) const FETCH_WAIT_MAX: Duration = Duration::from_secs(5);
/// Partitions in one fetch request.
pub(crate) const FETCH_PARTITIONS_MAX: usize = 10_000;
/// Bytes of one partition in one reply (a first batch larger than this is still sent whole).
pub(crate) const PARTITION_BYTES_MAX: usize = 1 << 20;
/// Bytes of records in one reply, well below the gRPC message limit.
pub(crate) const FETCH_BYTES_MAX: usize = 16 << 20;
const _: () = assert!(FETCH_BYTES_MAX + (4 << 20) < MESSAGE_BYTES_MAX);

/// Serves follower fetches for the local leader replicas.
#[derive(Debug, Clone)]
pub struct ReplicaServiceImpl {
    manager: Arc<ReplicaManager>,
    liveness: Arc<Liveness>,
}

impl ReplicaServiceImpl {
    pub fn new(manager: Arc<ReplicaManager>, liveness: Arc<Liveness>) -> Self {
        Self { manager, liveness }
    }

    /// The local replica of a partition named by its topic id's wire bytes.
    fn local(&self, topic_id: &[u8], partition: i32) -> Option<Arc<Partition>> {
        let id = uuid::Uuid::from_slice(topic_id).ok().map(TopicId)?;
        self.manager.by_id(&id, partition)
    }

    /// The tonic service with explicit message limits.
    pub fn into_server(self) -> ReplicaServiceServer<Self> {
        ReplicaServiceServer::new(self)
            .max_decoding_message_size(MESSAGE_BYTES_MAX)
            .max_encoding_message_size(MESSAGE_BYTES_MAX)
    }
}

fn reply(pf: &PartitionFetch, error: i32) -> PartitionReply {
    PartitionReply {
        topic_id: pf.topic_id.clone(),
        partition: pf.partition,
        error,
        ..Default::default()
    }
}

async fn fetch_one(
    p: Option<&Arc<Partition>>,
    follower: NodeId,
    pf: &PartitionFetch,
    budget: usize,
    throttle: &ReplicationThrottle,
    held: &mut bool,
    copy_left: &mut usize,
) -> PartitionReply {
    let Some(p) = p else {
        return reply(pf, ERR_UNKNOWN_PARTITION);
    };
    if !p.is_leader() || pf.leader_epoch > p.leader_epoch() {
        return reply(pf, ERR_NOT_LEADER);
    }
    if pf.leader_epoch < p.leader_epoch() {
        return reply(pf, ERR_FENCED_LEADER_EPOCH);
    }
    if pf.fetch_offset < p.log_start_offset() {
        // Checked before divergence: the epochs of a deleted prefix may be gone too.
        let mut r = reply(pf, ERR_OFFSET_OUT_OF_RANGE);
        r.log_start_offset = p.log_start_offset();
        r.high_watermark = p.high_watermark();
        r.log_end_offset = p.log_end_offset();
        return r;
    }
    let mut r = reply(pf, ERR_NONE);
    if let FetchPosition::Diverging {
        leader_epoch,
        end_offset,
    } = p
        .check_fetch_position(pf.fetch_offset, pf.last_fetched_epoch)
        .await
    {
        r.diverging_epoch = Some(leader_epoch);
        r.diverging_end_offset = end_offset;
    } else {
        // A pipelining follower reports the fsynced part of its log separately.
        let durable = pf
            .durable_offset
            .map_or(pf.fetch_offset, |d| d.min(pf.fetch_offset));
        p.record_follower_fetch(follower, pf.fetch_offset, durable);
        // Kafka's leader throttle: an out-of-sync follower of a listed partition gets no data
        // while the leader's rate is over the bound (in-sync followers are never slowed).
        let throttled =
            throttle.leader_throttled(&p.topic_id, p.partition) && !p.isr().contains(&follower);
        *held = throttled && throttle.leader_exceeded();
        let budget = if *held { 0 } else { budget };
        let (from, upper) = (
            pf.fetch_offset.max(p.log_start_offset()),
            p.log_end_offset(),
        );
        if budget > 0 && from < upper {
            // From memory on this task when the batches are there (a follower keeping up
            // reads what was just appended), else on the blocking pool.
            match p
                .read_async(
                    from,
                    budget.min(PARTITION_BYTES_MAX),
                    upper,
                    true,
                    copy_left,
                )
                .await
            {
                Ok(b) => {
                    if throttled {
                        throttle.record_leader(b.len());
                    }
                    r.records = b;
                }
                Err(e) => {
                    // Damage was logged (once) where it was found; a follower retrying here
                    // every round must not repeat it.
                    if e.is_corruption() {
                        tracing::debug!(topic = %p.topic, partition = p.partition, error = %e, "read for follower failed");
                    } else {
                        tracing::warn!(topic = %p.topic, partition = p.partition, error = %e, "read for follower failed");
                    }
                    return reply(pf, ERR_STORAGE);
                }
            }
        }
    }
    r.high_watermark = p.high_watermark();
    r.log_start_offset = p.log_start_offset();
    r.log_end_offset = p.log_end_offset();
    r
}

#[tonic::async_trait]
impl ReplicaService for ReplicaServiceImpl {
    async fn heartbeat(
        &self,
        req: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatReply>, Status> {
        if self.liveness.record(NodeId(req.get_ref().node_id)) {
            Ok(Response::new(HeartbeatReply {}))
        } else {
            Err(Status::failed_precondition("not the controller leader"))
        }
    }

    async fn offsets(
        &self,
        req: Request<OffsetsRequest>,
    ) -> Result<Response<OffsetsReply>, Status> {
        let req = req.into_inner();
        if req.partitions.len() > FETCH_PARTITIONS_MAX {
            return Err(Status::invalid_argument("too many partitions"));
        }
        let partitions = req
            .partitions
            .into_iter()
            .map(|pr| {
                let p = self.local(&pr.topic_id, pr.partition);
                let mut out = PartitionOffsets {
                    topic_id: pr.topic_id,
                    partition: pr.partition,
                    ..Default::default()
                };
                match p {
                    None => out.error = ERR_UNKNOWN_PARTITION,
                    Some(p) if !p.is_leader() => out.error = ERR_NOT_LEADER,
                    Some(p) => {
                        out.high_watermark = p.high_watermark();
                        out.log_start_offset = p.log_start_offset();
                    }
                }
                out
            })
            .collect();
        Ok(Response::new(OffsetsReply { partitions }))
    }

    async fn durable(
        &self,
        req: Request<DurableRequest>,
    ) -> Result<Response<DurableReply>, Status> {
        let req = req.into_inner();
        if req.partitions.len() > FETCH_PARTITIONS_MAX {
            return Err(Status::invalid_argument("too many partitions"));
        }
        let follower = NodeId(req.replica_id);
        for pd in &req.partitions {
            let Some(p) = self.local(&pd.topic_id, pd.partition) else {
                continue;
            };
            if !p.is_leader() || pd.leader_epoch != p.leader_epoch() {
                continue;
            }
            // The report counts only as part of the fetch it was sent behind: the follower's
            // log did not change while that fetch was out, so if its position matches this
            // log, the fsynced prefix below `durable_offset` does too (a report may overtake
            // its fetch, or arrive late; either way it is checked here on its own).
            if pd.durable_offset > pd.fetch_offset || pd.fetch_offset < p.log_start_offset() {
                continue;
            }
            if p.check_fetch_position(pd.fetch_offset, pd.last_fetched_epoch)
                .await
                == FetchPosition::Valid
            {
                p.record_follower_durable(follower, pd.durable_offset);
            }
        }
        Ok(Response::new(DurableReply {}))
    }

    #[tracing::instrument(skip_all, fields(follower = req.get_ref().replica_id))]
    async fn fetch(&self, req: Request<FetchRequest>) -> Result<Response<FetchReply>, Status> {
        let req = req.into_inner();
        if req.partitions.len() > FETCH_PARTITIONS_MAX {
            return Err(Status::invalid_argument("too many partitions"));
        }
        let follower = NodeId(req.replica_id);
        let max_wait = Duration::from_millis(u64::from(req.max_wait_ms)).min(FETCH_WAIT_MAX);
        let max_bytes = usize::try_from(req.max_bytes)
            .unwrap_or(usize::MAX)
            .min(FETCH_BYTES_MAX);
        let deadline = Instant::now() + max_wait;
        let parts: Vec<Option<Arc<Partition>>> = req
            .partitions
            .iter()
            .map(|pf| self.local(&pf.topic_id, pf.partition))
            .collect();
        let throttle = self.manager.throttle();
        loop {
            let mut out = Vec::with_capacity(req.partitions.len());
            let mut budget = max_bytes;
            let mut ready = false;
            let mut held = vec![false; parts.len()];
            // What the reads from memory may copy on this task in this round.
            let mut copy_left = INLINE_READ_BYTES_MAX;
            for ((pf, p), held) in req.partitions.iter().zip(&parts).zip(held.iter_mut()) {
                let r = fetch_one(
                    p.as_ref(),
                    follower,
                    pf,
                    budget,
                    throttle,
                    held,
                    &mut copy_left,
                )
                .await;
                budget = budget.saturating_sub(r.records.len());
                ready |=
                    r.error != ERR_NONE || r.diverging_epoch.is_some() || !r.records.is_empty();
                out.push(r);
            }
            let now = Instant::now();
            if ready || now >= deadline || out.is_empty() {
                return Ok(Response::new(FetchReply { partitions: out }));
            }
            // Long-poll: until any partition's log end offset passes what was fetched.
            // Partitions held back by the throttle have data; they wait out the poll.
            let waits =
                req.partitions
                    .iter()
                    .zip(&parts)
                    .zip(&held)
                    .filter_map(|((pf, p), held)| {
                        let p = p.clone().filter(|_| !*held)?;
                        let (offset, wait) = (pf.fetch_offset, deadline - now);
                        Some(Box::pin(async move { p.wait_for_data(offset, wait).await }))
                    });
            let waits: Vec<_> = waits.collect();
            if waits.is_empty() {
                if held.iter().any(|h| *h) {
                    // Only throttled data: answer at the deadline, as Kafka's delayed fetch.
                    tokio::time::sleep_until(deadline).await;
                }
                return Ok(Response::new(FetchReply { partitions: out }));
            }
            futures::future::select_all(waits).await;
        }
    }
}
