//! DescribeLogDirs: the node's one log directory (its RocksDB) and the size of every replica
//! stored in it.

use super::{Broker, BrokerError};
use crate::storage;

/// One replica in the log directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaSize {
    pub topic: String,
    pub partition: i32,
    /// Bytes of stored record batches.
    pub size_bytes: u64,
}

/// The log directory as DescribeLogDirs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDirView {
    /// The data directory (absolute when it can be resolved).
    pub path: String,
    pub total_bytes: u64,
    pub usable_bytes: u64,
    /// Replicas in topic, partition order.
    pub replicas: Vec<ReplicaSize>,
}

impl Broker {
    /// Describes this node's log directory: every local replica (or those of `filter`:
    /// `(topic, partitions)`, an empty partition list meaning none) with its size.
    ///
    /// # Errors
    /// Storage failures while sizing a replica.
    pub async fn describe_log_dirs(
        &self,
        filter: Option<Vec<(String, Vec<i32>)>>,
    ) -> Result<LogDirView, BrokerError> {
        let mut parts = self.inner.replicas.all();
        parts.retain(|p| {
            filter.as_ref().is_none_or(|f| {
                f.iter()
                    .any(|(t, ps)| t == p.topic.as_str() && ps.contains(&p.partition))
            })
        });
        parts.sort_by(|a, b| (a.topic.as_str(), a.partition).cmp(&(b.topic.as_str(), b.partition)));
        let sized = storage::blocking(move || {
            parts
                .iter()
                .map(|p| {
                    Ok(ReplicaSize {
                        topic: p.topic.to_string(),
                        partition: p.partition,
                        size_bytes: p.size_bytes()?,
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| BrokerError::Storage(e.to_string()))?;
        let dir = &self.config().data_dir;
        let path = std::fs::canonicalize(dir)
            .unwrap_or_else(|_| dir.clone())
            .display()
            .to_string();
        let disk = self.inner.replicas.store().disk().snapshot();
        Ok(LogDirView {
            path,
            total_bytes: disk.total_bytes,
            usable_bytes: disk.free_bytes,
            replicas: sized,
        })
    }
}
