//! The log maintenance driver: every `log.retention.check.interval.ms`, a retention pass and
//! a compaction pass over every replica on this node; every `log.cleaner.backoff.ms`, a
//! compaction pass over the compacted topics (the policies and the work per partition are in
//! `log::retention` and `log::compaction`).

use super::log::{compaction, retention};
use super::manager::ReplicaManager;
use crate::config::Config;
use crate::metadata::MetadataImage;
use crate::types::now_ms;
use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// Which pass a tick starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Every `log.retention.check.interval.ms`: retention, then compaction, on every replica.
    Retention,
    /// Every `log.cleaner.backoff.ms`: indexing and compaction on compacted topics only (Kafka's
    /// cleaner checks this often, so a compacted topic does not wait for the retention pass).
    Cleaner,
}

/// Runs retention every `log.retention.check.interval.ms` and the cleaner every
/// `log.cleaner.backoff.ms` until shutdown (one task, so the two never run at once).
pub async fn run_retention(
    replicas: Arc<ReplicaManager>,
    config: Arc<Config>,
    images: watch::Receiver<Arc<MetadataImage>>,
    shutdown: CancellationToken,
) {
    let every = |d: std::time::Duration| {
        let mut i = tokio::time::interval_at(tokio::time::Instant::now() + d, d);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    };
    let mut retention_tick = every(config.replication.retention_check_interval);
    let mut cleaner_tick = every(config.replication.cleaner_backoff);
    loop {
        let pass = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = retention_tick.tick() => Pass::Retention,
            _ = cleaner_tick.tick() => Pass::Cleaner,
        };
        let image = images.borrow().clone();
        for p in replicas.all() {
            if shutdown.is_cancelled() {
                return;
            }
            let Some(t) = image.topic(p.topic.as_str()).filter(|t| t.id == p.topic_id) else {
                continue;
            };
            match pass {
                Pass::Retention => retention::retain_partition(&p, &config, t).await,
                Pass::Cleaner => {
                    if !compaction::compaction_policy(&config, t).compact
                        || !retention::index_partition(&p, &config, t).await
                    {
                        continue;
                    }
                }
            }
            compaction::compact_partition(&p, &config, t, now_ms()).await;
        }
        debug!(?pass, "maintenance pass done");
    }
}
