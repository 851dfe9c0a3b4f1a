//! Carries out topic delete markers (`[chroot]/admin/delete_topics/<t>`), as Kafka's controller
//! does: delete the topic, then remove the marker and any pending `/config/topics/<t>` znode.
//! Carries out preferred replica elections (`[chroot]/admin/preferred_replica_election`):
//! elect, then remove the request.
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
}
