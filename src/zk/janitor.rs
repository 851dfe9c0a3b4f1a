//! Carries out topic delete markers (`[chroot]/admin/delete_topics/<t>`), as Kafka's controller
//! does: delete the topic, then remove the marker and any pending `/config/topics/<t>` znode.
//! Runs on the controller leader's node only; with `delete.topic.enable=false` markers stay
//! (the topic is listed as "marked for deletion", as in Kafka).

use crate::broker::{Broker, BrokerError};
use crate::metadata::{MetadataImage, ZkOp};
use tracing::{debug, info};

const MARKER_DIR: &str = "/admin/delete_topics/";

/// One pass over the markers in `img`.
pub(crate) async fn sweep(broker: &Broker, img: &MetadataImage) {
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
