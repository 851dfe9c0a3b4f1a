//! Follower fetchers: one task per source broker (the leader of some local follower replicas),
//! long-polling its `ReplicaService.Fetch`. Per round: truncate diverging replicas, append
//! the leader's batches as they are, **fsync**, adopt the leader's high watermark; the next
//! request then reports the fsynced log end offsets (the `acks=all` contract).

use super::log::Partition;
use super::service::{
    ERR_FENCED_LEADER_EPOCH, ERR_NONE, ERR_NOT_LEADER, ERR_OFFSET_OUT_OF_RANGE,
    ERR_UNKNOWN_PARTITION, FETCH_WAIT_MAX,
};
use crate::rpc::pb::replica::replica_service_client::ReplicaServiceClient;
use crate::rpc::pb::replica::{FetchReply, FetchRequest, PartitionFetch};
use crate::rpc::{PeerPool, MESSAGE_BYTES_MAX};
use crate::storage::Store;
use crate::types::NodeId;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

/// How long the leader may hold a fetch without data.
const FETCH_WAIT: Duration = Duration::from_millis(500);
/// Extra time on top of the long-poll for the network and the leader's reads.
const FETCH_DEADLINE_SLACK: Duration = Duration::from_secs(5);
/// Records bytes asked for per fetch.
const FETCH_BYTES: u32 = 8 << 20;
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Longest a local fsync may take before the round is abandoned (the disk is then unhealthy).
const FSYNC_DEADLINE: Duration = Duration::from_secs(30);
const _: () = assert!(FETCH_WAIT.as_millis() <= FETCH_WAIT_MAX.as_millis());
/// How long a fetcher whose every partition is held back by the throttle waits.
const THROTTLE_PAUSE: Duration = Duration::from_millis(100);

/// The handle the replica manager keeps per running fetcher.
#[derive(Debug)]
pub(crate) struct FetcherHandle {
    pub(crate) addr: String,
    pub(crate) partitions: watch::Sender<Vec<Arc<Partition>>>,
    pub(crate) token: CancellationToken,
}

/// What a fetcher needs from the node.
#[derive(Debug, Clone)]
pub(crate) struct FetcherContext {
    pub(crate) local: NodeId,
    pub(crate) store: Store,
    pub(crate) peers: PeerPool,
    pub(crate) throttle: Arc<super::throttle::ReplicationThrottle>,
}

fn jittered(backoff: Duration) -> Duration {
    let jitter_ms = rand::random::<u64>() % (backoff.as_millis() as u64 / 2 + 1);
    backoff + Duration::from_millis(jitter_ms)
}

/// Starts a fetcher for `source` at `addr` over `partitions`.
pub(crate) fn spawn(
    ctx: FetcherContext,
    source: NodeId,
    addr: String,
    partitions: Vec<Arc<Partition>>,
    parent: &CancellationToken,
    tracker: &tokio_util::task::TaskTracker,
) -> FetcherHandle {
    let (tx, rx) = watch::channel(partitions);
    let token = parent.child_token();
    let span = tracing::info_span!("fetcher", source = %source);
    tracker.spawn(run(ctx, addr.clone(), rx, token.clone()).instrument(span));
    FetcherHandle {
        addr,
        partitions: tx,
        token,
    }
}

async fn run(
    ctx: FetcherContext,
    addr: String,
    mut partitions: watch::Receiver<Vec<Arc<Partition>>>,
    token: CancellationToken,
) {
    info!(%addr, "fetcher started");
    // What this node reports as its LEO must be durable, also right after a restart: the
    // first round starts with a barrier fsync.
    let mut durability = Durability {
        unsynced: true,
        warned_at: None,
    };
    let mut backoff = BACKOFF_MIN;
    loop {
        let parts = partitions.borrow_and_update().clone();
        if parts.is_empty() {
            tokio::select! {
                _ = token.cancelled() => break,
                r = partitions.changed() => if r.is_err() { break } else { continue },
            }
        }
        let outcome = tokio::select! {
            _ = token.cancelled() => break,
            o = round(&ctx, &addr, &parts, &mut durability) => o,
        };
        match outcome {
            Ok(true) => backoff = BACKOFF_MIN,
            Ok(false) | Err(()) => {
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tokio::time::sleep(jittered(backoff)) => {}
                    // A role change (new image) is worth an immediate retry.
                    _ = partitions.changed() => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
    info!(%addr, "fetcher stopped");
}

/// Whether this fetcher's appends are known durable, and when a failure was last logged.
#[derive(Debug)]
struct Durability {
    unsynced: bool,
    warned_at: Option<std::time::Instant>,
}

/// How often a fetcher repeats that its fsyncs fail.
const FSYNC_WARN_EVERY: Duration = Duration::from_secs(60);

/// One fetch round. `Ok(true)` if every partition was served, `Ok(false)` if some need a
/// backoff (not leader / fenced epoch), `Err` on transport or local failures.
///
/// `unsynced`: appends may have been made that no successful fsync covers (an fsync failed,
/// or this fetcher just started). The log end offsets sent in a request must be durable, and
/// a failed fsync is never retried for the writes it covered (`WalSync`), so such a round
/// first runs a fresh barrier fsync and does not fetch until one succeeds.
async fn round(
    ctx: &FetcherContext,
    addr: &str,
    parts: &[Arc<Partition>],
    durability: &mut Durability,
) -> Result<bool, ()> {
    if durability.unsynced {
        let failed = match tokio::time::timeout(FSYNC_DEADLINE, ctx.store.wal().barrier()).await {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some("timed out".to_owned()),
        };
        match failed {
            None => {
                durability.unsynced = false;
                durability.warned_at = None;
            }
            Some(e) => {
                if durability
                    .warned_at
                    .is_none_or(|t| t.elapsed() >= FSYNC_WARN_EVERY)
                {
                    warn!(error = %e, "fsync failed; not fetching until one succeeds");
                    durability.warned_at = Some(std::time::Instant::now());
                }
                return Err(());
            }
        }
    }
    let mut repaired_all = true;
    for p in parts {
        if p.repair_from().is_some() && !p.is_leader() {
            if let Err(e) = p.repair().await {
                warn!(topic = %p.topic, partition = p.partition, error = %e, "repair of a damaged replica failed");
                repaired_all = false;
            }
        }
    }
    let mut req = FetchRequest {
        replica_id: ctx.local.0,
        max_wait_ms: FETCH_WAIT.as_millis() as u32,
        max_bytes: FETCH_BYTES,
        partitions: Vec::with_capacity(parts.len()),
    };
    let mut sent_epochs = Vec::with_capacity(parts.len());
    let mut throttled = vec![false; parts.len()];
    let over_quota = ctx.throttle.follower_exceeded();
    let mut held_back = 0usize;
    for (i, p) in parts.iter().enumerate() {
        let leader_epoch = p.leader_epoch();
        sent_epochs.push(leader_epoch);
        if p.repair_from().is_some() {
            // Its log end is above a damaged range: never reported until repaired.
            continue;
        }
        // Kafka's follower throttle: an out-of-sync replica listed for it waits while the
        // rate is over the bound (an in-sync one never does).
        throttled[i] = ctx.throttle.follower_throttled(&p.topic_id, p.partition)
            && !p.isr().contains(&ctx.local);
        if throttled[i] && over_quota {
            held_back += 1;
            continue;
        }
        req.partitions.push(PartitionFetch {
            topic_id: p.topic_id.0.as_bytes().to_vec(),
            partition: p.partition,
            leader_epoch,
            fetch_offset: p.log_end_offset(),
            last_fetched_epoch: p.last_epoch().await,
        });
    }
    if req.partitions.is_empty() && held_back > 0 {
        // Everything is held back by the throttle: wait for the rate to fall.
        tokio::time::sleep(THROTTLE_PAUSE).await;
        return Ok(true);
    }
    let reply = call(ctx, addr, req).await?;
    let mut all_ok = true;
    let mut ticket = None;
    for r in reply.partitions {
        let Some(i) = parts.iter().position(|p| {
            p.topic_id.0.as_bytes()[..] == r.topic_id[..] && p.partition == r.partition
        }) else {
            continue;
        };
        let p = &parts[i];
        match r.error {
            ERR_NONE => {}
            ERR_OFFSET_OUT_OF_RANGE => {
                match p.reset_to(r.log_start_offset).await {
                    Ok(()) => {
                        info!(topic = %p.topic, partition = p.partition, log_start_offset = r.log_start_offset, "behind the leader's log start; restarted the log there")
                    }
                    Err(e) => {
                        warn!(topic = %p.topic, partition = p.partition, error = %e, "log reset failed");
                        all_ok = false;
                    }
                }
                continue;
            }
            ERR_NOT_LEADER | ERR_FENCED_LEADER_EPOCH | ERR_UNKNOWN_PARTITION => {
                debug!(topic = %p.topic, partition = p.partition, error = r.error, "leader not ready for this replica");
                all_ok = false;
                continue;
            }
            e => {
                warn!(topic = %p.topic, partition = p.partition, error = e, "fetch error from leader");
                all_ok = false;
                continue;
            }
        }
        if let Some(epoch) = r.diverging_epoch {
            match p.truncate_to(r.diverging_end_offset).await {
                Ok(leo) => {
                    info!(topic = %p.topic, partition = p.partition, diverging_epoch = epoch, log_end_offset = leo, "truncated diverging log")
                }
                Err(e) => {
                    warn!(topic = %p.topic, partition = p.partition, error = %e, "truncation failed");
                    all_ok = false;
                }
            }
            continue;
        }
        if !r.records.is_empty() {
            let bytes = r.records.len();
            match p
                .append_follower(bytes::Bytes::from(r.records), sent_epochs[i])
                .await
            {
                Ok(a) => {
                    ticket = ticket.max(Some(a.wal_ticket));
                    if throttled[i] {
                        ctx.throttle.record_follower(bytes);
                    }
                }
                Err(e) => {
                    debug!(topic = %p.topic, partition = p.partition, error = %e, "follower append refused");
                    all_ok = false;
                    continue;
                }
            }
        }
        p.adopt_leader_hw(r.high_watermark);
        // Retention / DeleteRecords on the leader: follow its log start offset (up to our HW).
        if let Err(e) = p.adopt_leader_log_start(r.log_start_offset).await {
            warn!(topic = %p.topic, partition = p.partition, error = %e, "adopting the leader's log start offset failed");
        }
    }
    if let Some(t) = ticket {
        // fsync before the next fetch reports the new log end offsets.
        match tokio::time::timeout(FSYNC_DEADLINE, ctx.store.wal().sync_after(t)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                warn!(error = %e, "fsync failed");
                durability.unsynced = true;
                return Err(());
            }
            Err(_) => {
                warn!("fsync timed out");
                durability.unsynced = true;
                return Err(());
            }
        }
    }
    Ok(all_ok && repaired_all)
}

async fn call(ctx: &FetcherContext, addr: &str, req: FetchRequest) -> Result<FetchReply, ()> {
    let channel = ctx
        .peers
        .channel(addr)
        .map_err(|e| warn!(error = %e, "bad leader address"))?;
    let mut client = ReplicaServiceClient::new(channel)
        .max_decoding_message_size(MESSAGE_BYTES_MAX)
        .max_encoding_message_size(MESSAGE_BYTES_MAX);
    let mut request = tonic::Request::new(req);
    let deadline = FETCH_WAIT + FETCH_DEADLINE_SLACK;
    request.set_timeout(deadline);
    match tokio::time::timeout(deadline, client.fetch(request)).await {
        Ok(Ok(r)) => Ok(r.into_inner()),
        Ok(Err(status)) => {
            debug!(code = ?status.code(), message = status.message(), "fetch failed");
            Err(())
        }
        Err(_) => {
            debug!("fetch timed out");
            Err(())
        }
    }
}
