//! Preferred-leader election (Kafka's `auto.leader.rebalance.enable`): the controller leader's
//! node periodically moves leadership back to each partition's preferred replica (the first of
//! its assignment) when that replica is live and in the ISR, e.g. after a restarted broker
//! caught up. Proposed as `ChangePartition` with the partition epoch it was decided on, so a
//! concurrent ISR change wins. Kafka's per-broker imbalance threshold is not applied: any
//! partition off its preferred leader moves. The decision is pure.

use crate::metadata::{MetadataCommand, MetadataImage};
use std::time::Duration;

/// Partitions moved per check (bounds the burst of proposals and leader changes).
pub const MOVES_PER_CHECK_MAX: usize = 1000;

/// The leader moves to propose now, at most [`MOVES_PER_CHECK_MAX`].
pub fn preferred_leader_moves(image: &MetadataImage) -> Vec<MetadataCommand> {
    let mut out = Vec::new();
    for t in image.topics.values() {
        for i in 0..t.partitions.len() {
            let Ok(partition) = i32::try_from(i) else {
                continue;
            };
            if let Ok(cmd) = image.preferred_leader_move(t.name.as_str(), partition) {
                out.push(cmd);
                if out.len() >= MOVES_PER_CHECK_MAX {
                    return out;
                }
            }
        }
    }
    out
}

/// Unclean leader elections (`unclean.leader.election.enable=true` on the topic, or as the
/// broker default): a partition with no live ISR member but a live replica outside the ISR
/// gets that replica (the first live one in assignment order, as Kafka picks) as leader with an
/// ISR of just itself. Records the old leader had but this replica lacks are lost; that is
/// what the setting trades for availability. Off by default.
pub fn unclean_elections(
    image: &MetadataImage,
    enabled: impl Fn(&crate::metadata::TopicImage) -> bool,
) -> Vec<MetadataCommand> {
    let mut out = Vec::new();
    for t in image.topics.values() {
        let mut topic_enabled = None;
        for i in 0..t.partitions.len() {
            let Ok(partition) = i32::try_from(i) else {
                continue;
            };
            let Ok(cmd) = image.unclean_leader_move(t.name.as_str(), partition) else {
                continue;
            };
            if !*topic_enabled.get_or_insert_with(|| enabled(t)) {
                break;
            }
            out.push(cmd);
            if out.len() >= MOVES_PER_CHECK_MAX {
                return out;
            }
        }
    }
    out
}

/// How often the controller leader looks for unclean elections to make.
pub const UNCLEAN_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// On the controller leader's node: makes the unclean elections topics allow.
pub async fn run_unclean(
    handle: crate::controller::ControllerHandle,
    config: std::sync::Arc<crate::config::Config>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let def = crate::config::topic::topic_config_def("unclean.leader.election.enable");
    let enabled = |t: &crate::metadata::TopicImage| {
        let v = t
            .configs
            .get("unclean.leader.election.enable")
            .cloned()
            .or_else(|| def.map(|d| config.topic_default(d).0));
        v.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    };
    let span = tracing::info_span!("unclean", node = %handle.node_id());
    let decide = |img: &MetadataImage| {
        let cmds = unclean_elections(img, enabled);
        for cmd in &cmds {
            tracing::warn!(change = ?cmd, "unclean leader election: no in-sync replica is alive");
        }
        cmds
    };
    propose_periodically(handle, UNCLEAN_CHECK_INTERVAL, shutdown, span, true, decide).await;
}

/// On the controller leader's node: every `interval`, proposes the preferred-leader moves.
pub async fn run(
    handle: crate::controller::ControllerHandle,
    interval: Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let span = tracing::info_span!("rebalance", node = %handle.node_id());
    let decide = |img: &MetadataImage| {
        let cmds = preferred_leader_moves(img);
        for cmd in &cmds {
            tracing::info!(change = ?cmd, "moving leadership back to the preferred replica");
        }
        cmds
    };
    propose_periodically(handle, interval, shutdown, span, false, decide).await;
}

/// The controller-leader loop both elections share: every `interval`, while this node leads
/// the quorum, proposes what `decide` returns for the current image (each proposal bounded by
/// 5 s; `as_leader` proposals are never forwarded).
async fn propose_periodically(
    handle: crate::controller::ControllerHandle,
    interval: Duration,
    shutdown: tokio_util::sync::CancellationToken,
    span: tracing::Span,
    as_leader: bool,
    decide: impl Fn(&MetadataImage) -> Vec<MetadataCommand>,
) {
    use tracing::Instrument;
    let local = handle.node_id();
    async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            if handle.leader_id() != Some(local) {
                continue;
            }
            for cmd in decide(&handle.image()) {
                let proposed: futures::future::BoxFuture<'_, _> = if as_leader {
                    Box::pin(handle.propose_as_leader(cmd))
                } else {
                    Box::pin(handle.propose(cmd))
                };
                match tokio::time::timeout(Duration::from_secs(5), proposed).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::debug!(error = %e, "change not proposed"),
                    Err(_) => tracing::debug!("change proposal timed out"),
                }
            }
        }
    }
    .instrument(span)
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{apply, BrokerRegistration, Endpoint, MetadataRequest};
    use crate::types::{NodeId, TopicId, TopicName};
    use std::collections::BTreeMap;

    fn run(img: MetadataImage, cmds: Vec<MetadataCommand>) -> MetadataImage {
        cmds.into_iter().fold(img, |img, c| {
            let index = img.applied_index + 1;
            apply(&img, &MetadataRequest::new(c), index).0
        })
    }

    fn reg(id: i32) -> MetadataCommand {
        let endpoints = vec![Endpoint {
            listener: "PLAINTEXT".into(),
            host: "h".into(),
            port: 9092,
            security_protocol: None,
        }];
        MetadataCommand::RegisterBroker {
            registration: BrokerRegistration {
                node_id: NodeId(id),
                endpoints,
                rack: None,
                fenced: false,
                registered_index: 0,
                raft_addr: None,
            },
        }
    }

    #[test]
    fn unclean_election_only_when_enabled_and_no_isr_member_lives() {
        let t = TopicName::new("t").expect("valid");
        let create = MetadataCommand::CreateTopic {
            name: t.clone(),
            topic_id: TopicId::random(),
            assignment: vec![vec![NodeId(1), NodeId(2)]],
            configs: BTreeMap::new(),
        };
        // Node 2 falls out of the ISR, then node 1 (the leader, last ISR member) dies.
        let img = run(
            MetadataImage::default(),
            vec![
                reg(1),
                reg(2),
                create,
                MetadataCommand::FenceBroker { node_id: NodeId(2) },
                MetadataCommand::FenceBroker { node_id: NodeId(1) },
            ],
        );
        let p = &img.topic("t").expect("topic").partitions[0];
        assert_eq!((p.leader, p.isr.clone()), (None, vec![NodeId(1)]));
        // Node 2 is back, out of sync: clean election impossible.
        let img = run(img, vec![reg(2)]);
        assert_eq!(img.topic("t").expect("topic").partitions[0].leader, None);
        assert!(unclean_elections(&img, |_| false).is_empty());
        let cmds = unclean_elections(&img, |_| true);
        assert_eq!(cmds.len(), 1);
        let img = run(img, cmds);
        let p = &img.topic("t").expect("topic").partitions[0];
        assert_eq!(
            (p.leader, p.isr.clone()),
            (Some(NodeId(2)), vec![NodeId(2)])
        );
        assert!(p.leader_epoch >= 1);
        // Nothing more to do once a leader lives.
        assert!(unclean_elections(&img, |_| true).is_empty());
    }

    #[test]
    fn leadership_returns_to_the_preferred_replica_once_it_is_in_sync() {
        let t = TopicName::new("t").expect("valid");
        let create = MetadataCommand::CreateTopic {
            name: t.clone(),
            topic_id: TopicId::random(),
            assignment: vec![vec![NodeId(1), NodeId(2)]],
            configs: BTreeMap::new(),
        };
        let img = run(
            MetadataImage::default(),
            vec![
                reg(1),
                reg(2),
                create,
                MetadataCommand::FenceBroker { node_id: NodeId(1) },
            ],
        );
        assert_eq!(
            img.topic("t").expect("exists").partitions[0].leader,
            Some(NodeId(2))
        );
        assert!(
            preferred_leader_moves(&img).is_empty(),
            "node 1 is fenced and out of the ISR"
        );
        let img = run(img, vec![reg(1)]);
        assert!(
            preferred_leader_moves(&img).is_empty(),
            "node 1 is back but not in the ISR yet"
        );
        let epoch = img.topic("t").expect("exists").partitions[0].partition_epoch;
        let expand = MetadataCommand::ChangePartition {
            topic: t,
            partition: 0,
            partition_epoch: epoch,
            leader: Some(NodeId(2)),
            isr: vec![NodeId(2), NodeId(1)],
        };
        let img = run(img, vec![expand]);
        let moves = preferred_leader_moves(&img);
        assert_eq!(moves.len(), 1);
        let img = run(img, moves);
        let p = &img.topic("t").expect("exists").partitions[0];
        assert_eq!((p.leader, p.leader_epoch), (Some(NodeId(1)), 2));
        assert!(preferred_leader_moves(&img).is_empty());
    }
}
