//! Carries out topic delete markers (`[chroot]/admin/delete_topics/<t>`), as Kafka's controller
//! does: delete the topic, then remove the marker and any pending `/config/topics/<t>` znode.
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
use tracing::{debug, info};

const MARKER_DIR: &str = "/admin/delete_topics/";

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

/// One pass over the markers and notifications in `img`.
pub(crate) async fn sweep(broker: &Broker, img: &MetadataImage) {
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
}
