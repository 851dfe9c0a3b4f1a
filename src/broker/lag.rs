//! Consumer lag (what a lag exporter or Burrow computes): for every group this node
//! coordinates, per topic and partition, the committed offset and the partition's high
//! watermark. Summed over every node's `/metrics`, each group appears once (on its
//! coordinator). High watermarks come from the local replica when this node leads the
//! partition, else from its leader (`ReplicaService.Offsets`, one call per leader, bounded by
//! [`REMOTE_TIMEOUT`]); a leader that does not answer leaves the local follower's high
//! watermark (a fetch round behind at most), or no figure.

use super::Broker;
use crate::rpc::pb::replica::replica_service_client::ReplicaServiceClient;
use crate::rpc::pb::replica::{OffsetsRequest, PartitionRef};
use crate::rpc::MESSAGE_BYTES_MAX;
use crate::types::{NodeId, TopicId};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// How long a leader may take to answer for its high watermarks.
const REMOTE_TIMEOUT: Duration = Duration::from_secs(2);
/// Group partitions reported at most (bounds `/metrics`; the rest are left out).
pub const LAG_SERIES_MAX: usize = 10_000;

/// One group's position on one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub committed: i64,
    /// The high watermark, when known.
    pub end: Option<i64>,
}

impl PartitionLag {
    /// Records between the committed offset and the high watermark (never negative).
    pub fn lag(&self) -> Option<i64> {
        self.end.map(|e| e.saturating_sub(self.committed).max(0))
    }
}

impl Broker {
    /// The lag of every group coordinated here (at most [`LAG_SERIES_MAX`] partitions).
    pub async fn consumer_lag(&self) -> Vec<PartitionLag> {
        let groups = self.inner.groups.groups_with_offsets().unwrap_or_default();
        let mut out = Vec::new();
        for g in groups {
            if out.len() == LAG_SERIES_MAX {
                break;
            }
            if let Ok(offsets) = self.inner.groups.group_offsets(&g) {
                push_rows(&mut out, &g, offsets);
            }
        }
        self.fill_ends(out).await
    }

    /// One group's lag cluster-wide: its committed offsets from its coordinator (this node or
    /// another, `GroupCoordinator::cluster_offsets`), the high watermarks from the leaders.
    pub async fn group_lag(&self, group: &str) -> Vec<PartitionLag> {
        let offsets = self.inner.groups.cluster_offsets(Some(group)).await;
        let mut out = Vec::new();
        if let Some((_, topics)) = offsets.group {
            push_rows(&mut out, group, topics);
        }
        self.fill_ends(out).await
    }

    /// `rows` with their high watermarks (see [`Self::log_bounds`]).
    async fn fill_ends(&self, mut rows: Vec<PartitionLag>) -> Vec<PartitionLag> {
        let ends = self
            .log_bounds(rows.iter().map(|l| (l.topic.as_str(), l.partition)))
            .await;
        for l in &mut rows {
            l.end = ends.get(&(l.topic.clone(), l.partition)).map(|b| b.1);
        }
        rows
    }

    /// The (log start offset, high watermark) of `partitions`, from their leaders (see the
    /// module docs); partitions without an answer are left out.
    pub async fn log_bounds<'a>(
        &self,
        partitions: impl Iterator<Item = (&'a str, i32)>,
    ) -> HashMap<(String, i32), (i64, i64)> {
        let image = self.metadata_view();
        let mut out = HashMap::new();
        let mut remote: BTreeMap<NodeId, Vec<(String, TopicId, i32)>> = BTreeMap::new();
        let me = self.inner.config.node_id;
        for (topic, partition) in partitions {
            let key = (topic.to_owned(), partition);
            if out.contains_key(&key) {
                continue;
            }
            let (Some(t), Some(p)) = (image.topic(topic), image.partition(topic, partition)) else {
                continue;
            };
            let local = self.inner.replicas.by_id(&t.id, partition);
            match (p.leader, &local) {
                (Some(l), Some(r)) if l == me && r.is_leader() => {
                    out.insert(key, (r.log_start_offset(), r.high_watermark()));
                }
                (Some(l), _) if l != me => {
                    if let Some(r) = &local {
                        // Until the leader answers: the follower's copy.
                        out.insert(key.clone(), (r.log_start_offset(), r.high_watermark()));
                    }
                    remote.entry(l).or_default().push((key.0, t.id, partition));
                }
                _ => {}
            }
        }
        let calls = remote.into_iter().map(|(leader, parts)| {
            let addr = image
                .broker_raft_addr(leader)
                .map(str::to_owned)
                .or_else(|| self.inner.config.controller_quorum.get(&leader).cloned());
            async move {
                let addr = addr?;
                let channel = self.inner.peers.channel(&addr).ok()?;
                let mut client = ReplicaServiceClient::new(channel)
                    .max_decoding_message_size(MESSAGE_BYTES_MAX)
                    .max_encoding_message_size(MESSAGE_BYTES_MAX);
                let mut req = tonic::Request::new(OffsetsRequest {
                    partitions: parts
                        .iter()
                        .map(|(_, id, p)| PartitionRef {
                            topic_id: id.0.as_bytes().to_vec(),
                            partition: *p,
                        })
                        .collect(),
                });
                req.set_timeout(REMOTE_TIMEOUT);
                let reply = tokio::time::timeout(REMOTE_TIMEOUT, client.offsets(req))
                    .await
                    .ok()?
                    .ok()?
                    .into_inner();
                let names: HashMap<([u8; 16], i32), &str> = parts
                    .iter()
                    .map(|(name, id, p)| ((*id.0.as_bytes(), *p), name.as_str()))
                    .collect();
                let got: Vec<((String, i32), (i64, i64))> = reply
                    .partitions
                    .into_iter()
                    .filter(|r| r.error == 0)
                    .filter_map(|r| {
                        let id: [u8; 16] = r.topic_id.as_slice().try_into().ok()?;
                        let name = names.get(&(id, r.partition))?;
                        Some((
                            ((*name).to_owned(), r.partition),
                            (r.log_start_offset, r.high_watermark),
                        ))
                    })
                    .collect();
                Some(got)
            }
        });
        for got in futures::future::join_all(calls).await.into_iter().flatten() {
            out.extend(got);
        }
        out
    }
}

/// Appends `group`'s committed offsets to `out` as rows without an end, up to
/// [`LAG_SERIES_MAX`] rows in all.
fn push_rows(out: &mut Vec<PartitionLag>, group: &str, offsets: crate::group::GroupOffsets) {
    for (topic, parts) in offsets {
        for (partition, c) in parts {
            if out.len() == LAG_SERIES_MAX {
                return;
            }
            out.push(PartitionLag {
                group: group.to_owned(),
                topic: topic.clone(),
                partition,
                committed: c.offset,
                end: None,
            });
        }
    }
}
