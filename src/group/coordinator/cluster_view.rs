//! Committed offsets across the cluster, read-only, for the ZooKeeper facade's `/consumers`
//! projection: this node's own groups directly, other coordinators' through their
//! `GroupService` (`group/service.rs`). Bounded: at most `GROUPS_LISTED_MAX` groups and
//! `OFFSETS_LISTED_MAX` partitions per group, every remote call within `REMOTE_TIMEOUT`.

use super::*;
use crate::rpc::pb::group::group_service_client::GroupServiceClient;
use crate::rpc::pb::group::{CommittedOffsetsRequest, DescribeGroupRequest, ListGroupsRequest};
use crate::rpc::MESSAGE_BYTES_MAX;
use std::collections::BTreeSet;

/// Groups one node lists (and the facade shows under `/consumers`).
pub(crate) const GROUPS_LISTED_MAX: usize = 100_000;
/// Partitions of one group's offsets a node returns.
pub(crate) const OFFSETS_LISTED_MAX: usize = 100_000;
/// Deadline of one call to another node's `GroupService`.
const REMOTE_TIMEOUT: Duration = Duration::from_secs(3);

/// One committed offset and when it was committed (the znode's mtime).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    pub offset: i64,
    pub timestamp_ms: i64,
}

/// One group's committed offsets: topic → partition → offset.
pub type GroupOffsets = BTreeMap<String, BTreeMap<i32, Committed>>;

/// What the `/consumers` projection shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerOffsets {
    /// Groups with committed offsets on the coordinators that answered.
    pub groups: BTreeSet<String>,
    /// The group asked about, with its offsets (empty when it has none).
    pub group: Option<(String, GroupOffsets)>,
}

/// One group as the web console lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    pub group_id: String,
    pub state: GroupState,
    pub protocol_type: String,
    pub members: usize,
    /// The node that coordinates it (answered for it).
    pub coordinator: NodeId,
}

/// A failed read from another node (the facade then shows what it has).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RemoteError {
    #[error("node {0} has no node-to-node address registered")]
    NoAddress(NodeId),
    #[error("node {node}: {reason}")]
    Call { node: NodeId, reason: String },
    #[error("node {0} does not coordinate the group")]
    NotCoordinator(NodeId),
}

impl GroupCoordinator {
    /// The live groups this node coordinates, with their member counts.
    ///
    /// # Errors
    /// A partition is still loading.
    pub fn group_summaries(&self) -> Result<Vec<GroupSummary>, GroupError> {
        let st = self.lock();
        st.none_loading()?;
        let mut out: Vec<GroupSummary> = st
            .groups
            .values()
            .filter(|g| g.state != GroupState::Dead)
            .map(|g| GroupSummary {
                group_id: g.id.clone(),
                state: g.state,
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                members: g.members.len(),
                coordinator: self.node_id,
            })
            .collect();
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out.truncate(GROUPS_LISTED_MAX);
        Ok(out)
    }

    /// Every coordinator's groups (this node's and, through `GroupService.ListGroups`, the
    /// other leaders of `__consumer_offsets` partitions'), by id; coordinators that do not
    /// answer in time are left out and named in the second list.
    pub async fn cluster_groups(&self) -> (Vec<GroupSummary>, Vec<NodeId>) {
        let image = self.images.borrow().clone();
        let leaders: BTreeSet<NodeId> = image
            .topic(OFFSETS_TOPIC)
            .map(|t| t.partitions.iter().filter_map(|p| p.leader).collect())
            .unwrap_or_default();
        let mut out = Vec::new();
        let mut missing = Vec::new();
        if leaders.contains(&self.node_id) {
            match self.group_summaries() {
                Ok(l) => out.extend(l),
                Err(_) => missing.push(self.node_id),
            }
        }
        let others: Vec<NodeId> = leaders.into_iter().filter(|l| *l != self.node_id).collect();
        let calls = others.iter().map(|l| self.remote_list(&image, *l));
        for (node, r) in others.iter().zip(futures::future::join_all(calls).await) {
            match r {
                Ok(l) => out.extend(l),
                Err(e) => {
                    debug!(error = %e, "groups not listed");
                    missing.push(*node);
                }
            }
        }
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out.dedup_by(|a, b| a.group_id == b.group_id);
        out.truncate(GROUPS_LISTED_MAX);
        (out, missing)
    }

    /// `group` as its coordinator describes it (this node or, through
    /// `GroupService.DescribeGroup`, the leader of its offsets partition), with that node.
    ///
    /// # Errors
    /// No coordinator, or it did not answer / does not coordinate the group.
    pub async fn cluster_describe(
        &self,
        group: &str,
    ) -> Result<(NodeId, GroupDescription), String> {
        let image = self.images.borrow().clone();
        let p = usize::try_from(self.partition_of(group)).unwrap_or(usize::MAX);
        let leader = image
            .topic(OFFSETS_TOPIC)
            .and_then(|t| t.partitions.get(p))
            .and_then(|p| p.leader)
            .ok_or("the group's coordinator partition has no leader")?;
        if leader == self.node_id {
            return self
                .describe_group(group)
                .map(|d| (leader, d))
                .map_err(|e| e.to_string());
        }
        let mut client = self.client(&image, leader).map_err(|e| e.to_string())?;
        let r = call(
            leader,
            client.describe_group(request(DescribeGroupRequest {
                group_id: group.to_owned(),
            })),
        )
        .await
        .map_err(|e| e.to_string())?;
        if r.error != 0 {
            return Err(RemoteError::NotCoordinator(leader).to_string());
        }
        let members = r
            .members
            .into_iter()
            .take(GROUPS_LISTED_MAX)
            .map(|m| MemberDescription {
                member_id: m.member_id,
                group_instance_id: None,
                client_id: m.client_id,
                client_host: m.client_host,
                metadata: Bytes::new(),
                assignment: Bytes::from(m.assignment),
            })
            .collect();
        Ok((
            leader,
            GroupDescription {
                group_id: group.to_owned(),
                state: GroupState::from_name(&r.state),
                protocol_type: r.protocol_type,
                protocol_name: r.protocol_name,
                members,
            },
        ))
    }

    /// One `GroupService.ListGroups` call.
    async fn remote_list(
        &self,
        image: &MetadataImage,
        node: NodeId,
    ) -> Result<Vec<GroupSummary>, RemoteError> {
        let mut client = self.client(image, node)?;
        let reply = call(node, client.list_groups(request(ListGroupsRequest {}))).await?;
        if reply.error != 0 {
            return Err(RemoteError::NotCoordinator(node));
        }
        Ok(reply
            .groups
            .into_iter()
            .take(GROUPS_LISTED_MAX)
            .map(|g| GroupSummary {
                group_id: g.group_id,
                state: GroupState::from_name(&g.state),
                protocol_type: g.protocol_type,
                members: g.members as usize,
                coordinator: node,
            })
            .collect())
    }

    /// The groups with committed offsets among the partitions this node serves.
    ///
    /// # Errors
    /// A partition is still loading.
    pub fn groups_with_offsets(&self) -> Result<Vec<String>, GroupError> {
        let st = self.lock();
        st.none_loading()?;
        let mut out: Vec<String> = st
            .groups
            .values()
            .filter(|g| g.offsets.values().any(|c| c.offset >= 0))
            .map(|g| g.id.clone())
            .collect();
        out.sort();
        out.truncate(GROUPS_LISTED_MAX);
        Ok(out)
    }

    /// `group_id`'s committed offsets, if this node coordinates it.
    ///
    /// # Errors
    /// Not the coordinator, or loading.
    pub fn group_offsets(&self, group_id: &str) -> Result<GroupOffsets, GroupError> {
        let mut out = GroupOffsets::new();
        let mut n = 0;
        for (topic, parts) in self.fetch_offsets(group_id, None)? {
            for (p, c) in parts {
                let Some(c) = c.filter(|c| c.offset >= 0) else {
                    continue;
                };
                if n == OFFSETS_LISTED_MAX {
                    return Ok(out);
                }
                n += 1;
                out.entry(topic.clone()).or_default().insert(
                    p,
                    Committed {
                        offset: c.offset,
                        timestamp_ms: c.commit_timestamp_ms,
                    },
                );
            }
        }
        Ok(out)
    }

    /// Committed offsets cluster-wide: with `group`, that group's (from its coordinator);
    /// without, the groups every coordinator lists. Coordinators that do not answer in time
    /// are left out (logged at debug level).
    pub async fn cluster_offsets(&self, group: Option<&str>) -> ConsumerOffsets {
        let image = self.images.borrow().clone();
        let Some(topic) = image.topic(OFFSETS_TOPIC) else {
            return ConsumerOffsets {
                group: group.map(|g| (g.to_owned(), GroupOffsets::new())),
                ..ConsumerOffsets::default()
            };
        };
        let partitions = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
        match group {
            Some(g) => {
                let leader = usize::try_from(partition_for(g, partitions))
                    .ok()
                    .and_then(|p| topic.partitions.get(p))
                    .and_then(|p| p.leader);
                let offsets = match leader {
                    None => GroupOffsets::new(),
                    Some(l) if l == self.node_id => self.group_offsets(g).unwrap_or_default(),
                    Some(l) => match self.remote(&image, l, g).await {
                        Ok(reply) => reply.1,
                        Err(e) => {
                            debug!(group = g, error = %e, "committed offsets not read");
                            GroupOffsets::new()
                        }
                    },
                };
                ConsumerOffsets {
                    groups: if offsets.is_empty() {
                        BTreeSet::new()
                    } else {
                        BTreeSet::from([g.to_owned()])
                    },
                    group: Some((g.to_owned(), offsets)),
                }
            }
            None => {
                let leaders: BTreeSet<NodeId> =
                    topic.partitions.iter().filter_map(|p| p.leader).collect();
                let mut groups = BTreeSet::new();
                let calls = leaders
                    .iter()
                    .filter(|l| **l != self.node_id)
                    .map(|l| self.remote(&image, *l, ""));
                if leaders.contains(&self.node_id) {
                    groups.extend(self.groups_with_offsets().unwrap_or_default());
                }
                for r in futures::future::join_all(calls).await {
                    match r {
                        Ok((listed, _)) => groups.extend(listed),
                        Err(e) => debug!(error = %e, "groups not listed"),
                    }
                }
                while groups.len() > GROUPS_LISTED_MAX {
                    groups.pop_last();
                }
                ConsumerOffsets {
                    groups,
                    group: None,
                }
            }
        }
    }

    /// One `GroupService.CommittedOffsets` call (`group` empty = list groups).
    async fn remote(
        &self,
        image: &MetadataImage,
        node: NodeId,
        group: &str,
    ) -> Result<(Vec<String>, GroupOffsets), RemoteError> {
        let mut client = self.client(image, node)?;
        let reply = call(
            node,
            client.committed_offsets(request(CommittedOffsetsRequest {
                group_id: group.to_owned(),
            })),
        )
        .await?;
        if reply.error != 0 {
            return Err(RemoteError::NotCoordinator(node));
        }
        // Bounded like a local answer, whatever the peer sent.
        let mut groups = reply.groups;
        groups.truncate(GROUPS_LISTED_MAX);
        let mut offsets = GroupOffsets::new();
        let mut n = 0;
        'topics: for t in reply.topics {
            for p in t.partitions {
                if n == OFFSETS_LISTED_MAX {
                    break 'topics;
                }
                if p.offset >= 0 && p.partition >= 0 {
                    n += 1;
                    offsets.entry(t.topic.clone()).or_default().insert(
                        p.partition,
                        Committed {
                            offset: p.offset,
                            timestamp_ms: p.commit_timestamp_ms,
                        },
                    );
                }
            }
        }
        Ok((groups, offsets))
    }

    /// A `GroupService` client for `node` (its registered node-to-node address, this node's
    /// shared channel, the node-to-node message limits).
    fn client(
        &self,
        image: &MetadataImage,
        node: NodeId,
    ) -> Result<GroupServiceClient<tonic::transport::Channel>, RemoteError> {
        let addr = image
            .broker_raft_addr(node)
            .ok_or(RemoteError::NoAddress(node))?;
        let channel = self.peers.channel(addr).map_err(|e| RemoteError::Call {
            node,
            reason: e.to_string(),
        })?;
        Ok(GroupServiceClient::new(channel)
            .max_decoding_message_size(MESSAGE_BYTES_MAX)
            .max_encoding_message_size(MESSAGE_BYTES_MAX))
    }
}

/// `message` as a request carrying the `REMOTE_TIMEOUT` deadline.
fn request<T>(message: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    req.set_timeout(REMOTE_TIMEOUT);
    req
}

/// Awaits one call to `node` within `REMOTE_TIMEOUT`.
async fn call<T>(
    node: NodeId,
    reply: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, RemoteError> {
    let call_err = |reason: String| RemoteError::Call { node, reason };
    Ok(tokio::time::timeout(REMOTE_TIMEOUT, reply)
        .await
        .map_err(|_| call_err("no answer in time".into()))?
        .map_err(|s| call_err(s.message().to_owned()))?
        .into_inner())
}
