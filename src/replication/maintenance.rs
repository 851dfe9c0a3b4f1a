//! The log maintenance driver: every `log.retention.check.interval.ms`, a retention pass and
//! a compaction pass over every replica on this node (the policies and the work per partition
//! are in `log::retention` and `log::compaction`).

use super::log::{compaction, retention};
use super::manager::ReplicaManager;
use crate::config::Config;
use crate::metadata::MetadataImage;
use crate::types::now_ms;
use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// Runs retention every `log.retention.check.interval.ms` until shutdown.
pub async fn run_retention(
    replicas: Arc<ReplicaManager>,
    config: Arc<Config>,
    images: watch::Receiver<Arc<MetadataImage>>,
    shutdown: CancellationToken,
) {
    let interval = config.replication.retention_check_interval;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let image = images.borrow().clone();
        for p in replicas.all() {
            if shutdown.is_cancelled() {
                return;
            }
            let Some(t) = image.topic(p.topic.as_str()).filter(|t| t.id == p.topic_id) else {
                continue;
            };
            retention::retain_partition(&p, &config, t).await;
            compaction::compact_partition(&p, &config, t, now_ms()).await;
        }
        debug!("retention pass done");
    }
}
