//! Carries out topic delete markers (`[chroot]/admin/delete_topics/<t>`), as Kafka's controller
//! does: delete the topic, then remove the marker and any pending `/config/topics/<t>` znode.
//! Carries out preferred replica elections (`[chroot]/admin/preferred_replica_election`):
//! elect, then remove the request. Carries out partition reassignments
//! (`[chroot]/admin/reassign_partitions`): start each listed move, drop each partition from
//! the znode once its replicas are the target, delete the znode when none is left.
//! Runs on the controller leader's node only; with `delete.topic.enable=false` markers stay
//! (the topic is listed as "marked for deletion", as in Kafka).
//!
//! Also purges change notifications older than 15 minutes (`/config/changes/config_change_*`,
//! `/kafka-acl-changes/acl_changes_*`, `/kafka-acl-extended-changes/acl_changes_*`), as Kafka's
//! brokers do (`ZkNodeChangeNotificationListener`, `changeExpirationMs`): the tools write one
//! per change; raftka applies the change itself when the tool writes the entity's znode, so the
//! notification is only kept for tools that read it back.

use crate::broker::{Broker, BrokerError};
use crate::metadata::{MetadataImage, ZkOp};
use tracing::{debug, info, warn};

const MARKER_DIR: &str = "/admin/delete_topics/";

/// `kafka-preferred-replica-election.sh --zookeeper` writes the partitions to elect here
/// (`{"version":1,"partitions":[{"topic":…,"partition":…}]}`, Kafka 2.2.1's
/// `PreferredReplicaElectionZNode`); the controller elects them and deletes the znode.
const PREFERRED_ELECTION: &str = "/admin/preferred_replica_election";

/// Partitions elected per request at most (the rest are logged and dropped with the znode).
const PREFERRED_ELECTION_MAX: usize = 100_000;

#[derive(serde::Deserialize)]
struct ElectionRequest {
    partitions: Vec<ElectionPartition>,
}

#[derive(serde::Deserialize)]
struct ElectionPartition {
    topic: String,
    partition: i32,
}

/// The partitions of a preferred-election znode's data, or why it is unreadable.
fn election_partitions(data: Option<&[u8]>) -> Result<Vec<(String, i32)>, String> {
    let data = data.ok_or("no data")?;
    let req: ElectionRequest = serde_json::from_slice(data).map_err(|e| e.to_string())?;
    Ok(req
        .partitions
        .into_iter()
        .map(|p| (p.topic, p.partition))
        .collect())
}

/// Carries out `[chroot]/admin/preferred_replica_election` as Kafka 2.2.1's controller does
/// (`onPreferredReplicaElection`, then `removePartitionsFromPreferredReplicaElection`): each
/// listed partition's first replica becomes leader if it is live and in the ISR (the others
/// are logged), then the znode is deleted, so `kafka-preferred-replica-election.sh` can run
/// again. Unreadable data is logged and the znode removed, as it could never be carried out.
async fn preferred_elections(broker: &Broker, img: &MetadataImage) {
    let requests: Vec<(String, Option<Vec<u8>>)> = img
        .zk
        .znodes
        .iter()
        .filter(|(path, z)| !z.implicit && path.ends_with(PREFERRED_ELECTION))
        .map(|(path, z)| (path.clone(), z.data.clone()))
        .collect();
    for (path, data) in requests {
        match election_partitions(data.as_deref()) {
            Err(e) => warn!(%path, error = %e, "unreadable preferred replica election request"),
            Ok(mut parts) => {
                if parts.len() > PREFERRED_ELECTION_MAX {
                    warn!(
                        %path,
                        listed = parts.len(),
                        "preferred replica election limited to {PREFERRED_ELECTION_MAX} partitions"
                    );
                    parts.truncate(PREFERRED_ELECTION_MAX);
                }
                let results = broker.elect_preferred_leaders(&parts).await;
                // A controller change or timeout: the next sweep (maybe elsewhere) retries.
                if results.iter().any(|r| {
                    matches!(
                        r,
                        Err(BrokerError::NotController
                            | BrokerError::RequestTimedOut
                            | BrokerError::ShuttingDown)
                    )
                }) {
                    continue;
                }
                let mut elected = 0usize;
                for ((topic, partition), r) in parts.iter().zip(results) {
                    match r {
                        Ok(()) => elected += 1,
                        Err(BrokerError::ElectionNotNeeded) => {}
                        Err(e) => {
                            info!(%topic, partition, error = %e, "preferred replica election not made")
                        }
                    }
                }
                info!(%path, requested = parts.len(), elected, "preferred replica election done");
            }
        }
        let op = ZkOp::Delete { path, version: -1 };
        if let Err(e) = broker.zk_multi(0, vec![op]).await {
            debug!(error = %e, "could not remove the preferred replica election request");
        }
    }
}

/// `kafka-reassign-partitions.sh --zookeeper --execute` writes the moves here (Kafka 2.2.1's
/// `ReassignPartitionsZNode`: `{"version":1,"partitions":[{"topic":…,"partition":…,
/// "replicas":[…],"log_dirs":[…]}]}`); `--verify` reads it back (a partition still listed is
/// "in progress") and refuses a new `--execute` while it exists.
const REASSIGN_PARTITIONS: &str = "/admin/reassign_partitions";

#[derive(serde::Deserialize, serde::Serialize, Clone, Debug, PartialEq)]
struct ReassignRequest {
    #[serde(default = "one")]
    version: i32,
    partitions: Vec<ReassignPartition>,
}

fn one() -> i32 {
    1
}

#[derive(serde::Deserialize, serde::Serialize, Clone, Debug, PartialEq)]
struct ReassignPartition {
    topic: String,
    partition: i32,
    replicas: Vec<i32>,
    /// Kafka 1.1+ writes the log dir per replica (`"any"`); raftka has one data dir and keeps
    /// the field as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    log_dirs: Option<Vec<String>>,
}

/// What to do with one listed partition, given the image.
#[derive(Debug, PartialEq, Eq)]
enum ReassignStep {
    /// Its replicas are the target (done, or nothing to do): drop it from the znode.
    Done,
    /// Moving towards this target: keep it listed.
    InProgress,
    /// Start (or redirect) the move.
    Start,
    /// Unknown topic or partition: drop it (Kafka 2.2.1 logs and removes it too).
    Unknown,
}

fn reassign_step(img: &MetadataImage, p: &ReassignPartition) -> ReassignStep {
    let Some(cur) = img.partition(&p.topic, p.partition) else {
        return ReassignStep::Unknown;
    };
    let ids = |v: &[crate::types::NodeId]| v.iter().map(|n| n.0).collect::<Vec<_>>();
    if !cur.reassigning() && ids(&cur.replicas) == p.replicas {
        ReassignStep::Done
    } else if cur.reassigning() && ids(&cur.target_replicas()) == p.replicas {
        ReassignStep::InProgress
    } else {
        ReassignStep::Start
    }
}

/// Carries out `[chroot]/admin/reassign_partitions` as Kafka 2.2.1's controller does
/// (`onPartitionReassignment`, `removePartitionsFromReassignedPartitions`): starts each
/// listed move (a target that names an unknown or dead broker, or lists one twice, is logged
/// and dropped), drops each partition whose replicas have become its target, and deletes the
/// znode when none is left, so `--verify` reports completion and the next `--execute` is
/// accepted. The rewrite is conditional on the znode's version (a concurrent write wins and
/// the next sweep looks again). Unreadable data is logged and the znode removed.
async fn reassignments(broker: &Broker, img: &MetadataImage) {
    let requests: Vec<(String, Option<Vec<u8>>, i32)> = img
        .zk
        .znodes
        .iter()
        .filter(|(path, z)| !z.implicit && path.ends_with(REASSIGN_PARTITIONS))
        .map(|(path, z)| (path.clone(), z.data.clone(), z.version))
        .collect();
    for (path, data, version) in requests {
        let parsed: Result<ReassignRequest, String> = data
            .as_deref()
            .ok_or_else(|| "no data".to_owned())
            .and_then(|d| serde_json::from_slice(d).map_err(|e| e.to_string()));
        let mut req = match parsed {
            Ok(r) => r,
            Err(e) => {
                warn!(%path, error = %e, "unreadable partition reassignment request");
                let op = ZkOp::Delete { path, version };
                if let Err(e) = broker.zk_multi(0, vec![op]).await {
                    debug!(error = %e, "could not remove the reassignment request");
                }
                continue;
            }
        };
        if req.partitions.len() > REASSIGNMENTS_MAX {
            warn!(%path, listed = req.partitions.len(),
                "partition reassignment limited to {REASSIGNMENTS_MAX} partitions");
            req.partitions.truncate(REASSIGNMENTS_MAX);
        }
        let mut keep = Vec::with_capacity(req.partitions.len());
        let mut start = Vec::new();
        for p in &req.partitions {
            match reassign_step(img, p) {
                ReassignStep::Done => {
                    info!(topic = %p.topic, partition = p.partition, replicas = ?p.replicas,
                        "partition reassignment completed");
                }
                ReassignStep::Unknown => {
                    info!(topic = %p.topic, partition = p.partition,
                        "partition to reassign does not exist; dropped");
                }
                ReassignStep::InProgress => keep.push(p.clone()),
                ReassignStep::Start => start.push(p.clone()),
            }
        }
        if !start.is_empty() {
            let changes = start
                .iter()
                .map(|p| crate::broker::ReassignmentChange {
                    topic: p.topic.clone(),
                    partition: p.partition,
                    target: Some(p.replicas.clone()),
                })
                .collect();
            let results = broker.alter_partition_reassignments(changes, true).await;
            for (p, r) in start.into_iter().zip(results) {
                match r {
                    Ok(()) => keep.push(p),
                    // A controller change or timeout: the next sweep (maybe elsewhere) retries.
                    Err(
                        BrokerError::NotController
                        | BrokerError::RequestTimedOut
                        | BrokerError::ShuttingDown,
                    ) => keep.push(p),
                    Err(e) => warn!(topic = %p.topic, partition = p.partition,
                        replicas = ?p.replicas, error = %e,
                        "partition reassignment refused; dropped from the request"),
                }
            }
        }
        if keep == req.partitions {
            continue;
        }
        let op = if keep.is_empty() {
            info!(%path, "every requested partition reassignment is done");
            ZkOp::Delete { path, version }
        } else {
            let rest = ReassignRequest {
                version: req.version,
                partitions: keep,
            };
            match serde_json::to_vec(&rest) {
                Ok(data) => ZkOp::SetData {
                    path,
                    data: Some(data),
                    version,
                },
                Err(e) => {
                    warn!(error = %e, "cannot encode the remaining reassignments");
                    continue;
                }
            }
        };
        if let Err(e) = broker.zk_multi(0, vec![op]).await {
            debug!(error = %e, "could not rewrite the reassignment request");
        }
    }
}

/// Partitions one reassignment request carries out at most (the rest are dropped with a
/// warning).
const REASSIGNMENTS_MAX: usize = 100_000;

/// Sequential notification znodes that are purged once older than [`NOTIFICATION_EXPIRY_MS`].
const NOTIFICATIONS: &[&str] = &[
    "/config/changes/config_change_",
    "/kafka-acl-changes/acl_changes_",
    "/kafka-acl-extended-changes/acl_changes_",
];

/// Kafka's `changeExpirationMs` (15 minutes).
const NOTIFICATION_EXPIRY_MS: i64 = 15 * 60 * 1000;

/// At most this many notifications are removed per pass (one metadata command).
const NOTIFICATION_PURGE_BATCH: usize = 256;

/// The stored notifications older than the expiry at `now_ms` (at most one batch).
fn expired_notifications(img: &MetadataImage, now_ms: i64) -> Vec<String> {
    img.zk
        .znodes
        .iter()
        .filter(|(path, z)| {
            !z.implicit
                && z.children.is_empty()
                && now_ms.saturating_sub(z.ctime_ms) > NOTIFICATION_EXPIRY_MS
                && NOTIFICATIONS.iter().any(|n| {
                    path.find(n).is_some_and(|i| {
                        let seq = &path[i + n.len()..];
                        !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit())
                    })
                })
        })
        .map(|(path, _)| path.clone())
        .take(NOTIFICATION_PURGE_BATCH)
        .collect()
}

/// One pass over the markers, election requests and notifications in `img`.
pub(crate) async fn sweep(broker: &Broker, img: &MetadataImage) {
    preferred_elections(broker, img).await;
    reassignments(broker, img).await;
    let expired = expired_notifications(img, crate::types::now_ms());
    if !expired.is_empty() {
        let ops = expired
            .into_iter()
            .map(|path| ZkOp::Delete { path, version: -1 })
            .collect();
        if let Err(e) = broker.zk_multi(0, ops).await {
            debug!(error = %e, "could not purge change notifications");
        }
    }
    let markers: Vec<(String, String, String)> = img
        .zk
        .znodes
        .iter()
        .filter(|(_, z)| !z.implicit)
        .filter_map(|(path, _)| {
            let i = path.find(MARKER_DIR)?;
            let topic = &path[i + MARKER_DIR.len()..];
            (!topic.contains('/')).then(|| (path.clone(), path[..i].to_owned(), topic.to_owned()))
        })
        .collect();
    for (marker, chroot, topic) in markers {
        if img.topic(&topic).is_some() {
            match broker.delete_topic(&topic).await {
                Ok(_) => info!(%topic, "topic deleted through a ZooKeeper delete marker"),
                Err(BrokerError::TopicDeletionDisabled) => continue,
                Err(e) => {
                    debug!(%topic, error = %e, "delete through marker failed; will retry");
                    continue;
                }
            }
        }
        let mut ops = vec![ZkOp::Delete {
            path: marker,
            version: -1,
        }];
        let pending = format!("{chroot}/config/topics/{topic}");
        if broker
            .metadata_view()
            .zk
            .znodes
            .get(&pending)
            .is_some_and(|z| !z.implicit && z.children.is_empty())
        {
            ops.push(ZkOp::Delete {
                path: pending,
                version: -1,
            });
        }
        if let Err(e) = broker.zk_multi(0, ops).await {
            debug!(error = %e, "could not remove delete marker");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zk::testing::ZkFixture;

    #[tokio::test]
    async fn old_notifications_are_purged_and_nothing_else() {
        let z = ZkFixture::new().await;
        for p in [
            "/config/changes/config_change_0000000001",
            "/kafka-acl-changes/acl_changes_0000000000",
            "/kafka-acl-extended-changes/acl_changes_0000000003",
            "/kafka-acl-changes/not_a_notification",
        ] {
            z.put(p, b"Topic:t").await;
        }
        let img = z.f.broker.metadata_view();
        assert!(
            expired_notifications(&img, crate::types::now_ms()).is_empty(),
            "fresh"
        );
        let later = crate::types::now_ms() + NOTIFICATION_EXPIRY_MS + 1000;
        let mut old = expired_notifications(&img, later);
        old.sort();
        assert_eq!(
            old,
            vec![
                "/config/changes/config_change_0000000001",
                "/kafka-acl-changes/acl_changes_0000000000",
                "/kafka-acl-extended-changes/acl_changes_0000000003",
            ]
        );
    }

    #[tokio::test]
    async fn preferred_election_requests_are_carried_out_and_removed() {
        let z = ZkFixture::new().await;
        z.f.topic("t", 2, &[]).await;
        z.put(
            "/admin/preferred_replica_election",
            br#"{"version":1,"partitions":[{"topic":"t","partition":1},{"topic":"nope","partition":0}]}"#,
        )
        .await;
        z.put("/chroot", b"").await;
        z.put("/chroot/admin/preferred_replica_election", b"not json")
            .await;
        assert_eq!(
            election_partitions(Some(
                br#"{"version":1,"partitions":[{"topic":"t","partition":1}]}"#
            )),
            Ok(vec![("t".to_owned(), 1)])
        );
        let img = z.f.broker.metadata_view();
        sweep(&z.f.broker, &img).await;
        let img = z.f.broker.metadata_view();
        for p in [
            "/admin/preferred_replica_election",
            "/chroot/admin/preferred_replica_election",
        ] {
            assert!(
                img.zk.znodes.get(p).is_none_or(|n| n.implicit),
                "{p} removed once handled"
            );
        }
        // One node: the preferred replica already leads (nothing to move).
        assert_eq!(
            z.f.broker
                .elect_preferred_leaders(&[("t".into(), 0), ("nope".into(), 0)])
                .await,
            vec![
                Err(BrokerError::ElectionNotNeeded),
                Err(BrokerError::UnknownTopicOrPartition)
            ]
        );
    }

    #[tokio::test]
    async fn reassignment_requests_drop_what_is_done_or_refused() {
        let z = ZkFixture::new().await;
        z.f.topic("t", 2, &[]).await;
        z.put(
            "/admin/reassign_partitions",
            br#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1],"log_dirs":["any"]},{"topic":"t","partition":1,"replicas":[1,9]},{"topic":"nope","partition":0,"replicas":[1]}]}"#,
        )
        .await;
        z.put("/chroot", b"").await;
        z.put("/chroot/admin/reassign_partitions", b"{").await;
        let img = z.f.broker.metadata_view();
        sweep(&z.f.broker, &img).await;
        let img = z.f.broker.metadata_view();
        for p in [
            "/admin/reassign_partitions",
            "/chroot/admin/reassign_partitions",
        ] {
            assert!(
                img.zk.znodes.get(p).is_none_or(|n| n.implicit),
                "{p} removed once handled"
            );
        }
        assert!(z.f.broker.partition_reassignments(None).is_empty());
    }

    /// A move in progress stays listed; a different target is (re)started.
    #[test]
    fn reassignment_steps_follow_the_image() {
        use crate::metadata::{apply, MetadataCommand, MetadataRequest};
        use crate::types::{NodeId, TopicId, TopicName};
        let reg = |id: i32| MetadataCommand::RegisterBroker {
            registration: crate::metadata::BrokerRegistration {
                node_id: NodeId(id),
                endpoints: vec![],
                rack: None,
                fenced: false,
                registered_index: 0,
                raft_addr: None,
            },
        };
        let t = TopicName::new("t").expect("valid");
        let cmds = [
            reg(1),
            reg(2),
            reg(3),
            MetadataCommand::CreateTopic {
                name: t.clone(),
                topic_id: TopicId::random(),
                assignment: vec![vec![NodeId(1), NodeId(2)]],
                configs: Default::default(),
            },
            MetadataCommand::ReassignPartition {
                topic: t,
                partition: 0,
                target: Some(vec![NodeId(2), NodeId(3)]),
            },
        ];
        let mut img = MetadataImage::default();
        for (i, c) in cmds.into_iter().enumerate() {
            img = apply(&img, &MetadataRequest::new(c), i as u64 + 1).0;
        }
        let step = |partition: i32, replicas: &[i32]| {
            reassign_step(
                &img,
                &ReassignPartition {
                    topic: "t".into(),
                    partition,
                    replicas: replicas.to_vec(),
                    log_dirs: None,
                },
            )
        };
        assert_eq!(step(0, &[2, 3]), ReassignStep::InProgress);
        assert_eq!(step(0, &[3, 2]), ReassignStep::Start);
        assert_eq!(step(0, &[2, 3, 1]), ReassignStep::Start);
        assert_eq!(step(1, &[1]), ReassignStep::Unknown);
    }
}
