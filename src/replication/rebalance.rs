//! Preferred-leader election (Kafka's `auto.leader.rebalance.enable`): the controller leader's
//! node periodically moves leadership back to each partition's preferred replica (the first of
//! its assignment) when that replica is live and in the ISR, e.g. after a restarted broker
//! caught up. Proposed as `ChangePartition` with the partition epoch it was decided on, so a
//! concurrent ISR change wins. Kafka's per-broker imbalance threshold is not applied: any
//! partition off its preferred leader moves. The decision is pure.

use crate::metadata::{MetadataCommand, MetadataImage};
use std::collections::BTreeMap;
use std::time::Duration;

/// Kafka's `leader.imbalance.check.interval.seconds` default.
pub const CHECK_INTERVAL_DEFAULT: Duration = Duration::from_secs(300);
/// Partitions moved per check (bounds the burst of proposals and leader changes).
pub const MOVES_PER_CHECK_MAX: usize = 1000;

/// `Some(interval)` if `auto.leader.rebalance.enable` (default true), with
/// `leader.imbalance.check.interval.seconds` (default 300, at least 1).
pub fn check_interval(props: &BTreeMap<String, String>) -> Option<Duration> {
    let enabled = props
        .get("auto.leader.rebalance.enable")
        .is_none_or(|v| !v.trim().eq_ignore_ascii_case("false"));
    let secs = props
        .get("leader.imbalance.check.interval.seconds")
        .and_then(|v| v.trim().parse::<u64>().ok());
    enabled.then(|| secs.map_or(CHECK_INTERVAL_DEFAULT, |s| Duration::from_secs(s.max(1))))
}

/// The leader moves to propose now, at most [`MOVES_PER_CHECK_MAX`].
pub fn preferred_leader_moves(image: &MetadataImage) -> Vec<MetadataCommand> {
    let live = |n| {
        image
            .brokers
            .get(n)
            .is_some_and(|b: &crate::metadata::BrokerRegistration| !b.fenced)
    };
    let mut out = Vec::new();
    for t in image.topics.values() {
        for (i, p) in t.partitions.iter().enumerate() {
            let Some(preferred) = p.replicas.first() else {
                continue;
            };
            if p.leader == Some(*preferred) || !p.isr.contains(preferred) || !live(preferred) {
                continue;
            }
            let Ok(partition) = i32::try_from(i) else {
                continue;
            };
            out.push(MetadataCommand::ChangePartition {
                topic: t.name.clone(),
                partition,
                partition_epoch: p.partition_epoch,
                leader: Some(*preferred),
                isr: p.isr.clone(),
            });
            if out.len() >= MOVES_PER_CHECK_MAX {
                return out;
            }
        }
    }
    out
}

/// On the controller leader's node: every `interval`, proposes the preferred-leader moves.
pub async fn run(
    handle: crate::controller::ControllerHandle,
    interval: Duration,
    shutdown: tokio_util::sync::CancellationToken,
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
            for cmd in preferred_leader_moves(&handle.image()) {
                tracing::info!(change = ?cmd, "moving leadership back to the preferred replica");
                match tokio::time::timeout(Duration::from_secs(5), handle.propose(cmd)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::debug!(error = %e, "preferred leader move not proposed"),
                    Err(_) => tracing::debug!("preferred leader move timed out"),
                }
            }
        }
    }
    .instrument(tracing::info_span!("rebalance", node = %local))
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{apply, BrokerRegistration, Endpoint, MetadataRequest};
    use crate::types::{NodeId, TopicId, TopicName};

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
        }];
        MetadataCommand::RegisterBroker {
            registration: BrokerRegistration {
                node_id: NodeId(id),
                endpoints,
                rack: None,
                fenced: false,
                registered_index: 0,
            },
        }
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
        let off = BTreeMap::from([(
            "auto.leader.rebalance.enable".to_owned(),
            "false".to_owned(),
        )]);
        assert_eq!(check_interval(&off), None);
        assert_eq!(
            check_interval(&BTreeMap::new()),
            Some(CHECK_INTERVAL_DEFAULT)
        );
    }
}
