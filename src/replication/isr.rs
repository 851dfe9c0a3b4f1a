//! ISR policy driver: on this node's leader replicas, shrink the ISR by followers that have not
//! caught up for `replica.lag.time.max.ms` and expand it by replicas that caught up with the
//! high watermark. Changes are proposed to the controller as `ChangePartition` with the
//! partition epoch the decision was based on (a stale one is rejected by `apply`); this task
//! never writes metadata itself. The decision is `Partition::isr_proposal`, which also records
//! an expansion as pending before it is proposed: the leader's HW counts the replica being
//! added from then on (KIP-497's maximal ISR), so the ISR the controller commits never holds
//! a replica without a record the leader acknowledged.

use super::manager::ReplicaManager;
use super::Partition;
use crate::controller::ControllerHandle;
use crate::metadata::{MetadataCommand, MetadataImage};
use crate::types::NodeId;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, Instrument};

/// Deadline of one ISR proposal.
const PROPOSE_DEADLINE: Duration = Duration::from_secs(5);
/// The longest pause between two ISR checks. Kafka expands the ISR on the follower fetch
/// that catches up; a check every `replica.lag.time.max.ms / 4` (7.5 s by default) kept a
/// restarted replica out of the ISR that long, and under repeated kills left partitions below
/// `min.insync.replicas` for most of the time (Jepsen kill seed 1008). A check only reads
/// in-memory replica state; a shrink still needs a follower behind for the whole lag time.
const CHECK_PERIOD_MAX: Duration = Duration::from_millis(500);

/// Checks the ISR of local leader replicas every `lag_max / 4`, at most
/// [`CHECK_PERIOD_MAX`], until shutdown.
pub async fn run(
    manager: Arc<ReplicaManager>,
    handle: ControllerHandle,
    lag_max: Duration,
    shutdown: CancellationToken,
) {
    let period = (lag_max / 4).clamp(Duration::from_millis(50), CHECK_PERIOD_MAX);
    let span = tracing::info_span!("isr", node = %manager.node_id());
    async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(period) => {}
            }
            for p in manager.all() {
                if shutdown.is_cancelled() {
                    return;
                }
                if !p.is_leader() {
                    continue;
                }
                // The image as it is now, for each partition: proposals go one at a time,
                // and a broker fenced or a partition changed while earlier ones were in
                // flight must be seen before deciding (and recording a pending addition).
                let image = handle.image();
                let Some((cmd, kind)) = change(manager.node_id(), &p, &image, lag_max) else {
                    continue;
                };
                info!(change = ?cmd, ?kind, "proposing ISR change");
                match tokio::time::timeout(PROPOSE_DEADLINE, handle.propose(cmd)).await {
                    Ok(Ok(crate::metadata::ApplyOutcome::Rejected(why))) => {
                        info!(reason = %why, "ISR change rejected");
                    }
                    Ok(Ok(outcome)) => {
                        let m = crate::metrics::global();
                        match kind {
                            Kind::Shrink => crate::metrics::inc(&m.isr_shrinks, 1),
                            Kind::Expand => crate::metrics::inc(&m.isr_expands, 1),
                            Kind::Reconfirm => {}
                        }
                        debug!(?outcome, "ISR change applied");
                    }
                    // The controller is not reachable now: the next check tries again
                    // (waiting out one deadline per partition would stall every other one).
                    Ok(Err(e)) => {
                        info!(error = %e, "ISR change not proposed; checking again shortly");
                        break;
                    }
                    Err(_) => {
                        info!("ISR change proposal timed out; checking again shortly");
                        break;
                    }
                }
            }
        }
    }
    .instrument(span)
    .await;
}

/// What an ISR proposal does to the ISR's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Shrink,
    Expand,
    /// The same ISR again, to end the wait for a pending addition that died (see
    /// `Partition::isr_proposal`).
    Reconfirm,
}

impl Kind {
    fn of(proposed: &[NodeId], current: &[NodeId]) -> Self {
        match proposed.len().cmp(&current.len()) {
            std::cmp::Ordering::Less => Kind::Shrink,
            std::cmp::Ordering::Greater => Kind::Expand,
            std::cmp::Ordering::Equal if proposed.iter().all(|n| current.contains(n)) => {
                Kind::Reconfirm
            }
            std::cmp::Ordering::Equal => Kind::Expand,
        }
    }
}

/// The leader and ISR for a damaged leader `me` to step down to: the first other live ISR
/// member leads, and `me` leaves the ISR (so it is not elected again before it has repaired
/// its log as a follower; ISR expansion adds it back once it caught up). `None` if no other
/// live in-sync replica exists: then the leader stays and answers KAFKA_STORAGE_ERROR inside
/// the damaged range. Pure.
fn resign(
    me: NodeId,
    isr: &[NodeId],
    live: impl Fn(&NodeId) -> bool,
) -> Option<(NodeId, Vec<NodeId>)> {
    let leader = isr.iter().copied().find(|n| *n != me && live(n))?;
    Some((leader, isr.iter().copied().filter(|n| *n != me).collect()))
}

/// The ISR change to propose for local replica `p` (of node `me`) on `image`, with its kind:
/// `None` unless `p` leads in the image's leader epoch and has something to propose.
fn change(
    me: NodeId,
    p: &Partition,
    image: &MetadataImage,
    lag_max: Duration,
) -> Option<(MetadataCommand, Kind)> {
    let live = |n: &NodeId| image.brokers.get(n).is_some_and(|b| !b.fenced);
    if !p.is_leader() {
        return None;
    }
    let t = image
        .topic(p.topic.as_str())
        .filter(|t| t.id == p.topic_id)?;
    let pi = usize::try_from(p.partition)
        .ok()
        .and_then(|i| t.partitions.get(i))?;
    if pi.leader != Some(me) || pi.leader_epoch != p.leader_epoch() {
        return None;
    }
    if let Some(d) = p.damage() {
        // A damaged leader cannot serve part of its log: hand leadership to an in-sync
        // replica (which has that range) and leave the ISR until repaired as a follower.
        if let Some((leader, isr)) = resign(me, &pi.isr, live) {
            info!(topic = %t.name, partition = p.partition, from = d.from, new_leader = %leader,
                "damaged leader hands leadership to an in-sync replica");
            return Some((
                MetadataCommand::ChangePartition {
                    topic: t.name.clone(),
                    partition: p.partition,
                    partition_epoch: pi.partition_epoch,
                    leader: Some(leader),
                    isr,
                },
                Kind::Shrink,
            ));
        }
    }
    let replicas: Vec<NodeId> = pi
        .replicas
        .iter()
        .copied()
        .filter(|n| *n == me || live(n))
        .collect();
    let isr = p.isr_proposal(&replicas, lag_max, pi.partition_epoch)?;
    let kind = Kind::of(&isr, &pi.isr);
    Some((
        MetadataCommand::ChangePartition {
            topic: t.name.clone(),
            partition: p.partition,
            partition_epoch: pi.partition_epoch,
            leader: Some(me),
            isr,
        },
        kind,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_leader_resigns_to_a_live_in_sync_replica_only() {
        let (a, b, c) = (NodeId(1), NodeId(2), NodeId(3));
        let all_live = |_: &NodeId| true;
        assert_eq!(resign(a, &[a, b, c], all_live), Some((b, vec![b, c])));
        let c_only = |n: &NodeId| *n == c;
        assert_eq!(resign(a, &[a, b, c], c_only), Some((c, vec![b, c])));
        assert_eq!(resign(a, &[a], all_live), None);
        assert_eq!(resign(a, &[a, b], |n: &NodeId| *n == a), None);
    }
}
