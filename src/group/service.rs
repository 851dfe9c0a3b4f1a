//! `GroupService` (`proto/group.proto`): other nodes read this node's committed offsets, for
//! the ZooKeeper facade's `/consumers` projection, and its groups (list, describe) for the web
//! console. The coordinator is bound after the gRPC
//! server starts (the server comes up with the controller, the coordinator after it);
//! until then every call answers NOT_COORDINATOR.

use super::coordinator::{GROUPS_LISTED_MAX, OFFSETS_LISTED_MAX};
use super::GroupCoordinator;
use crate::rpc::pb::group::group_service_server::{GroupService, GroupServiceServer};
use crate::rpc::pb::group::{
    CommittedOffsetsReply, CommittedOffsetsRequest, DescribeGroupReply, DescribeGroupRequest,
    GroupMember, GroupSummary, ListGroupsReply, ListGroupsRequest, PartitionOffset, TopicOffsets,
};
use crate::rpc::MESSAGE_BYTES_MAX;
use std::sync::{Arc, OnceLock};
use tonic::{Request, Response, Status};

/// `CommittedOffsetsReply.error`: the receiver does not coordinate the group (or is loading).
pub const ERR_NOT_COORDINATOR: i32 = 1;
/// Longest group id accepted (Kafka's names are bounded by the request size; this by far).
const GROUP_ID_BYTES_MAX: usize = 32 << 10;

/// Serves committed offsets of the local coordinator, once bound.
#[derive(Debug, Clone, Default)]
pub struct GroupServiceImpl {
    groups: Arc<OnceLock<Arc<GroupCoordinator>>>,
}

impl GroupServiceImpl {
    /// Binds the coordinator (once; later calls are ignored).
    pub fn bind(&self, groups: Arc<GroupCoordinator>) {
        let _ = self.groups.set(groups);
    }

    /// The tonic service with explicit message limits.
    pub fn into_server(self) -> GroupServiceServer<Self> {
        GroupServiceServer::new(self)
            .max_decoding_message_size(MESSAGE_BYTES_MAX)
            .max_encoding_message_size(MESSAGE_BYTES_MAX)
    }
}

fn not_coordinator() -> CommittedOffsetsReply {
    CommittedOffsetsReply {
        error: ERR_NOT_COORDINATOR,
        ..CommittedOffsetsReply::default()
    }
}

#[tonic::async_trait]
impl GroupService for GroupServiceImpl {
    async fn committed_offsets(
        &self,
        request: Request<CommittedOffsetsRequest>,
    ) -> Result<Response<CommittedOffsetsReply>, Status> {
        let group_id = request.into_inner().group_id;
        if group_id.len() > GROUP_ID_BYTES_MAX {
            return Err(Status::invalid_argument("group id too long"));
        }
        let Some(groups) = self.groups.get() else {
            return Ok(Response::new(not_coordinator()));
        };
        let reply = if group_id.is_empty() {
            match groups.groups_with_offsets() {
                Ok(mut listed) => {
                    listed.truncate(GROUPS_LISTED_MAX);
                    CommittedOffsetsReply {
                        groups: listed,
                        ..CommittedOffsetsReply::default()
                    }
                }
                Err(_) => not_coordinator(),
            }
        } else {
            match groups.group_offsets(&group_id) {
                Ok(offsets) => CommittedOffsetsReply {
                    topics: offsets
                        .into_iter()
                        .map(|(topic, parts)| TopicOffsets {
                            topic,
                            partitions: parts
                                .into_iter()
                                .take(OFFSETS_LISTED_MAX)
                                .map(|(partition, c)| PartitionOffset {
                                    partition,
                                    offset: c.offset,
                                    commit_timestamp_ms: c.timestamp_ms,
                                })
                                .collect(),
                        })
                        .collect(),
                    ..CommittedOffsetsReply::default()
                },
                Err(_) => not_coordinator(),
            }
        };
        Ok(Response::new(reply))
    }

    async fn list_groups(
        &self,
        _request: Request<ListGroupsRequest>,
    ) -> Result<Response<ListGroupsReply>, Status> {
        let Some(groups) = self.groups.get() else {
            return Ok(Response::new(ListGroupsReply {
                error: ERR_NOT_COORDINATOR,
                groups: Vec::new(),
            }));
        };
        let reply = match groups.group_summaries() {
            Ok(list) => ListGroupsReply {
                error: 0,
                groups: list
                    .into_iter()
                    .map(|s| GroupSummary {
                        group_id: s.group_id,
                        state: s.state.as_str().to_owned(),
                        protocol_type: s.protocol_type,
                        members: u32::try_from(s.members).unwrap_or(u32::MAX),
                    })
                    .collect(),
            },
            Err(_) => ListGroupsReply {
                error: ERR_NOT_COORDINATOR,
                groups: Vec::new(),
            },
        };
        Ok(Response::new(reply))
    }

    async fn describe_group(
        &self,
        request: Request<DescribeGroupRequest>,
    ) -> Result<Response<DescribeGroupReply>, Status> {
        let group_id = request.into_inner().group_id;
        if group_id.is_empty() || group_id.len() > GROUP_ID_BYTES_MAX {
            return Err(Status::invalid_argument("bad group id"));
        }
        let not_coordinator = DescribeGroupReply {
            error: ERR_NOT_COORDINATOR,
            ..DescribeGroupReply::default()
        };
        let Some(groups) = self.groups.get() else {
            return Ok(Response::new(not_coordinator));
        };
        let reply = match groups.describe_group(&group_id) {
            Ok(d) => DescribeGroupReply {
                error: 0,
                state: d.state.as_str().to_owned(),
                protocol_type: d.protocol_type,
                protocol_name: d.protocol_name,
                members: d
                    .members
                    .into_iter()
                    .map(|m| GroupMember {
                        member_id: m.member_id,
                        client_id: m.client_id,
                        client_host: m.client_host,
                        assignment: m.assignment.to_vec(),
                    })
                    .collect(),
            },
            Err(_) => not_coordinator,
        };
        Ok(Response::new(reply))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unbound_answers_not_coordinator_and_long_ids_are_refused() {
        let svc = GroupServiceImpl::default();
        for group_id in ["", "g"] {
            let r = svc
                .committed_offsets(Request::new(CommittedOffsetsRequest {
                    group_id: group_id.into(),
                }))
                .await
                .expect("answer")
                .into_inner();
            assert_eq!(r.error, ERR_NOT_COORDINATOR);
            assert!(r.groups.is_empty() && r.topics.is_empty());
        }
        let e = svc
            .committed_offsets(Request::new(CommittedOffsetsRequest {
                group_id: "g".repeat(GROUP_ID_BYTES_MAX + 1),
            }))
            .await
            .expect_err("refused");
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
    }
}
