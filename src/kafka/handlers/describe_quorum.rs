//! DescribeQuorum (key 55), v0–v2: what `kafka-metadata-quorum.sh describe --status /
//! --replication` and `Admin.describeMetadataQuorum` send. raftka's metadata quorum is its
//! openraft group; the answer is the Raft leader's view, asked of the leader wherever it is:
//! leader id, leader epoch (the Raft term), high watermark (the commit index + 1), each
//! voter's and observer's (learner's) log end offset (its matched index + 1), and from v1 the
//! timestamps of its last fetch (its last broker heartbeat seen by the leader) and of its last
//! catching up (-1 when not known); v2 adds the voters' endpoints (their node-to-node address,
//! as listener `CONTROLLER`).
//!
//! The one partition is `__cluster_metadata`-0, as in Kafka; any other gets
//! UNKNOWN_TOPIC_OR_PARTITION. No reachable leader: NOT_LEADER_OR_FOLLOWER on the partition.
//! Authorization (Kafka's): DESCRIBE on the cluster, else CLUSTER_AUTHORIZATION_FAILED.

use super::sb;
use crate::broker::BrokerError;
use crate::controller::QuorumView;
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::kafka::shape::{RequestShape, Shape};
use crate::security::acl::Operation;
use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{
    BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, ResponseKind,
};
use kafka_protocol::ResponseError as E;

/// The versions of DescribeQuorum this handler serves.
pub(crate) const VERSIONS: Versions = Versions::new(0, 2);

/// Kafka's metadata log, the one partition DescribeQuorum describes.
pub(crate) const METADATA_TOPIC: &str = "__cluster_metadata";

impl RequestShape for DescribeQuorumRequest {
    fn shape(&self) -> Shape {
        Shape {
            entries: self.topics.len(),
            partitions: self
                .topics
                .iter()
                .map(|t| t.partitions.len())
                .fold(0, usize::saturating_add),
        }
    }
}

pub(crate) async fn handle(ctx: RequestContext, req: DescribeQuorumRequest) -> Reply {
    Reply::Later(tokio::spawn(async move {
        Some(ResponseKind::DescribeQuorum(respond(&ctx, req).await))
    }))
}

pub(crate) async fn respond(
    ctx: &RequestContext,
    req: DescribeQuorumRequest,
) -> DescribeQuorumResponse {
    let v = ctx.api_version;
    let mut r = DescribeQuorumResponse::default();
    if !Authz::new(ctx).cluster(Operation::Describe) {
        let e = BrokerError::ClusterAuthorizationFailed;
        r.error_code = code(&e);
        if v >= 2 {
            r.error_message = Some(sb(&e.to_string()));
        }
        return r;
    }
    let wanted = req.topics.iter().any(|t| {
        t.topic_name.0.as_str() == METADATA_TOPIC
            && t.partitions.iter().any(|p| p.partition_index == 0)
    });
    let view = if wanted {
        Some(ctx.broker.describe_quorum().await)
    } else {
        None
    };
    for t in &req.topics {
        let mut td = TopicData::default();
        td.topic_name = t.topic_name.clone();
        for p in &t.partitions {
            let known = t.topic_name.0.as_str() == METADATA_TOPIC && p.partition_index == 0;
            let pd = match (&view, known) {
                (Some(Ok(q)), true) => partition(q, v),
                (Some(Err(e)), true) => {
                    let mut pd = PartitionData::default();
                    pd.partition_index = 0;
                    pd.error_code = match e {
                        BrokerError::RequestTimedOut => E::RequestTimedOut.code(),
                        _ => E::NotLeaderOrFollower.code(),
                    };
                    if v >= 2 {
                        pd.error_message = Some(sb(&e.to_string()));
                    }
                    pd
                }
                _ => {
                    let mut pd = PartitionData::default();
                    pd.partition_index = p.partition_index;
                    pd.error_code = E::UnknownTopicOrPartition.code();
                    pd
                }
            };
            td.partitions.push(pd);
        }
        r.topics.push(td);
    }
    if v >= 2 {
        if let Some(Ok(q)) = &view {
            r.nodes = nodes(q);
        }
    }
    r
}

/// `__cluster_metadata`-0 as `q` describes it.
fn partition(q: &QuorumView, v: i16) -> PartitionData {
    let mut pd = PartitionData::default();
    pd.partition_index = 0;
    pd.leader_id = BrokerId(q.leader_id.0);
    pd.leader_epoch = i32::try_from(q.term).unwrap_or(i32::MAX);
    pd.high_watermark = q
        .commit_index
        .map_or(-1, |i| i64::try_from(i).map_or(i64::MAX, |i| i + 1));
    for m in &q.members {
        let mut s = ReplicaState::default();
        s.replica_id = BrokerId(m.node_id.0);
        s.log_end_offset = m
            .matched_index
            .map_or(-1, |i| i64::try_from(i).map_or(i64::MAX, |i| i + 1));
        if v >= 1 {
            s.last_fetch_timestamp = m.last_fetch_ms.unwrap_or(-1);
            s.last_caught_up_timestamp = m.last_caught_up_ms.unwrap_or(-1);
        }
        if m.voter {
            pd.current_voters.push(s);
        } else {
            pd.observers.push(s);
        }
    }
    pd
}

/// v2's voter endpoints: each voter's node-to-node address as listener `CONTROLLER`.
fn nodes(q: &QuorumView) -> Vec<Node> {
    q.members
        .iter()
        .filter(|m| m.voter)
        .map(|m| {
            let mut n = Node::default();
            n.node_id = BrokerId(m.node_id.0);
            if let Some((host, port)) = m.addr.rsplit_once(':') {
                if let Ok(port) = port.parse::<u16>() {
                    let mut l = Listener::default();
                    l.name = sb("CONTROLLER");
                    l.host = sb(host.trim_start_matches('[').trim_end_matches(']'));
                    l.port = port;
                    n.listeners.push(l);
                }
            }
            n
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::controller::QuorumMemberView;
    use crate::kafka::handlers::test_util::{assert_encodes, ctx};
    use crate::kafka::handlers::topic_name;
    use crate::types::NodeId;
    use kafka_protocol::messages::describe_quorum_request::{
        PartitionData as ReqPartition, TopicData as ReqTopic,
    };

    fn request(topic: &str, partition: i32) -> DescribeQuorumRequest {
        let mut p = ReqPartition::default();
        p.partition_index = partition;
        let mut t = ReqTopic::default();
        t.topic_name = topic_name(topic);
        t.partitions.push(p);
        let mut r = DescribeQuorumRequest::default();
        r.topics.push(t);
        r
    }

    fn view() -> QuorumView {
        let m = |id: i32, voter: bool, matched: Option<u64>| QuorumMemberView {
            node_id: NodeId(id),
            addr: format!("10.0.0.{id}:9193"),
            voter,
            matched_index: matched,
            last_fetch_ms: matched.map(|_| 1_000 + i64::from(id)),
            last_caught_up_ms: (matched == Some(42)).then_some(2_000),
        };
        QuorumView {
            leader_id: NodeId(2),
            term: 5,
            commit_index: Some(41),
            members: vec![
                m(1, true, Some(40)),
                m(2, true, Some(42)),
                m(4, false, None),
            ],
        }
    }

    #[test]
    fn the_leaders_view_as_kafka_reports_it() {
        for v in VERSIONS.min..=VERSIONS.max {
            let pd = partition(&view(), v);
            assert_eq!(
                (pd.leader_id, pd.leader_epoch, pd.high_watermark),
                (BrokerId(2), 5, 42)
            );
            let voters: Vec<_> = pd
                .current_voters
                .iter()
                .map(|s| (s.replica_id.0, s.log_end_offset))
                .collect();
            assert_eq!(voters, vec![(1, 41), (2, 43)]);
            assert_eq!(pd.observers.len(), 1);
            assert_eq!(pd.observers[0].log_end_offset, -1);
            if v >= 1 {
                assert_eq!(pd.current_voters[1].last_caught_up_timestamp, 2_000);
                assert_eq!(pd.current_voters[0].last_caught_up_timestamp, -1);
                assert_eq!(pd.current_voters[0].last_fetch_timestamp, 1_001);
            }
            let mut r = DescribeQuorumResponse::default();
            let mut td = TopicData::default();
            td.topic_name = topic_name(METADATA_TOPIC);
            td.partitions.push(pd);
            r.topics.push(td);
            if v >= 2 {
                r.nodes = nodes(&view());
                assert_eq!(r.nodes.len(), 2);
                assert_eq!(r.nodes[0].listeners[0].host.as_str(), "10.0.0.1");
                assert_eq!(r.nodes[0].listeners[0].port, 9193);
            }
            assert_encodes(&r, v);
        }
    }

    /// Another partition is unknown; the in-memory controller of the fixture has no quorum to
    /// describe (NOT_LEADER_OR_FOLLOWER, as with no reachable leader).
    #[tokio::test]
    async fn errors() {
        let f = Fixture::new().await;
        for v in VERSIONS.min..=VERSIONS.max {
            let r = respond(&ctx(&f, v), request("other", 0)).await;
            assert_encodes(&r, v);
            assert_eq!(
                r.topics[0].partitions[0].error_code,
                E::UnknownTopicOrPartition.code()
            );
            let r = respond(&ctx(&f, v), request(METADATA_TOPIC, 0)).await;
            assert_encodes(&r, v);
            assert_eq!(
                r.topics[0].partitions[0].error_code,
                E::NotLeaderOrFollower.code()
            );
        }
    }
}
