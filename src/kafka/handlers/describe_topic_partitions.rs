//! DescribeTopicPartitions (key 75), v0 (KIP-966): what Kafka 3.7+'s `kafka-topics.sh
//! --describe` and `Admin.describeTopics` send instead of Metadata, paginated so that a topic
//! with many partitions does not make one huge response. Topics are answered in name order
//! (every topic the principal may DESCRIBE when the list is empty, else the listed ones, an
//! unknown one with UNKNOWN_TOPIC_OR_PARTITION and an unauthorized one with
//! TOPIC_AUTHORIZATION_FAILED), from the `cursor` (topic and first partition) on, with at most
//! `response_partition_limit` partitions (capped by [`PARTITIONS_MAX`], Kafka's
//! `max.request.partition.size.limit` default); `next_cursor` names where the next page
//! starts, null on the last page. A cursor on a topic the list does not name is
//! INVALID_REQUEST, as in Kafka. raftka has no eligible leader replicas (KIP-966's ELR):
//! those fields are empty lists.

use super::topic_name;
use crate::broker::is_internal_topic;
use crate::kafka::authz::{Authz, Resource};
use crate::kafka::context::RequestContext;
use crate::kafka::reply::{Reply, Versions};
use crate::kafka::shape::{RequestShape, Shape};
use crate::metadata::{MetadataImage, TopicImage};
use crate::security::acl::Operation;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse,
};
use kafka_protocol::ResponseError as E;

/// The versions of DescribeTopicPartitions this handler serves.
pub(crate) const VERSIONS: Versions = Versions::new(0, 0);

/// Partitions in one response at most (Kafka's `max.request.partition.size.limit` default).
pub(crate) const PARTITIONS_MAX: usize = 2000;

impl RequestShape for DescribeTopicPartitionsRequest {
    fn shape(&self) -> Shape {
        Shape {
            entries: self.topics.len(),
            partitions: 0,
        }
    }
}

pub(crate) async fn handle(ctx: RequestContext, req: DescribeTopicPartitionsRequest) -> Reply {
    Reply::now(respond(&ctx, &req))
}

fn error_topic(name: &str, e: E) -> DescribeTopicPartitionsResponseTopic {
    let mut t = DescribeTopicPartitionsResponseTopic::default();
    t.name = Some(topic_name(name));
    t.error_code = e.code();
    t
}

pub(crate) fn respond(
    ctx: &RequestContext,
    req: &DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let image = ctx.broker.metadata_view();
    let authz = Authz::new(ctx);
    let mut r = DescribeTopicPartitionsResponse::default();
    let limit = usize::try_from(req.response_partition_limit)
        .unwrap_or(0)
        .clamp(1, PARTITIONS_MAX);
    let (cursor_topic, mut first_partition) = match &req.cursor {
        Some(c) => (
            Some(c.topic_name.0.to_string()),
            usize::try_from(c.partition_index).unwrap_or(0),
        ),
        None => (None, 0),
    };
    // The topics of this request, in name order.
    let mut names: Vec<String> = if req.topics.is_empty() {
        image
            .topics
            .keys()
            .map(|n| n.as_str().to_owned())
            .filter(|n| authz.topic(Operation::Describe, n))
            .collect()
    } else {
        let mut v: Vec<String> = req.topics.iter().map(|t| t.name.0.to_string()).collect();
        v.sort();
        v.dedup();
        v
    };
    if let Some(c) = &cursor_topic {
        if !req.topics.is_empty() && !names.contains(c) {
            // Kafka: "DescribeTopicPartitionsRequest topic list should contain the cursor topic"
            r.topics.push(error_topic(c, E::InvalidRequest));
            return r;
        }
        names.retain(|n| n >= c);
    }
    let mut budget = limit;
    for name in names {
        if budget == 0 {
            break;
        }
        if !authz.topic(Operation::Describe, &name) {
            r.topics
                .push(error_topic(&name, E::TopicAuthorizationFailed));
            first_partition = 0;
            continue;
        }
        let Some(t) = image.topic(&name) else {
            r.topics
                .push(error_topic(&name, E::UnknownTopicOrPartition));
            first_partition = 0;
            continue;
        };
        let from = first_partition.min(t.partitions.len());
        let to = (from + budget).min(t.partitions.len());
        let out = topic_entry(&image, t, from, to, &authz);
        budget -= to - from;
        if to < t.partitions.len() {
            let mut c = Cursor::default();
            c.topic_name = topic_name(t.name.as_str());
            c.partition_index = i32::try_from(to).unwrap_or(i32::MAX);
            r.next_cursor = Some(c);
            r.topics.push(out);
            return r;
        }
        r.topics.push(out);
        first_partition = 0;
    }
    // The budget ran out exactly at a topic's end: the next page starts at the next topic.
    if budget == 0 {
        let last = r
            .topics
            .last()
            .and_then(|t| t.name.as_ref())
            .map(|n| n.0.to_string());
        let next = match (&last, req.topics.is_empty()) {
            (Some(l), true) => image
                .topics
                .keys()
                .map(|n| n.as_str())
                .find(|n| *n > l.as_str() && authz.topic(Operation::Describe, n))
                .map(str::to_owned),
            (Some(l), false) => {
                let mut v: Vec<String> = req.topics.iter().map(|t| t.name.0.to_string()).collect();
                v.sort();
                v.into_iter().find(|n| n.as_str() > l.as_str())
            }
            _ => None,
        };
        if let Some(n) = next {
            let mut c = Cursor::default();
            c.topic_name = topic_name(&n);
            c.partition_index = 0;
            r.next_cursor = Some(c);
        }
    }
    r
}

fn topic_entry(
    image: &MetadataImage,
    t: &TopicImage,
    from: usize,
    to: usize,
    authz: &Authz,
) -> DescribeTopicPartitionsResponseTopic {
    let live = |n: &crate::types::NodeId| image.brokers.get(n).is_some_and(|b| !b.fenced);
    let ids = |v: &[crate::types::NodeId]| v.iter().map(|n| BrokerId(n.0)).collect::<Vec<_>>();
    let mut out = DescribeTopicPartitionsResponseTopic::default();
    out.name = Some(topic_name(t.name.as_str()));
    out.topic_id = t.id.0;
    out.is_internal = is_internal_topic(t.name.as_str());
    out.topic_authorized_operations = authz.operations(Resource::Topic, t.name.as_str(), true);
    for (i, p) in t.partitions.iter().enumerate().take(to).skip(from) {
        let mut mp = DescribeTopicPartitionsResponsePartition::default();
        mp.partition_index = i32::try_from(i).unwrap_or(i32::MAX);
        mp.leader_id = BrokerId(p.leader.map_or(-1, |l| l.0));
        mp.leader_epoch = p.leader_epoch;
        mp.replica_nodes = ids(&p.replicas);
        mp.isr_nodes = ids(&p.isr);
        mp.eligible_leader_replicas = Some(Vec::new());
        mp.last_known_elr = Some(Vec::new());
        mp.offline_replicas = p
            .replicas
            .iter()
            .filter(|n| !live(n))
            .map(|n| BrokerId(n.0))
            .collect();
        out.partitions.push(mp);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::test_util::{assert_encodes, ctx};
    use kafka_protocol::messages::describe_topic_partitions_request::{
        Cursor as ReqCursor, TopicRequest,
    };

    fn request(
        topics: &[&str],
        limit: i32,
        cursor: Option<(&str, i32)>,
    ) -> DescribeTopicPartitionsRequest {
        let mut r = DescribeTopicPartitionsRequest::default();
        r.topics = topics
            .iter()
            .map(|t| {
                let mut tr = TopicRequest::default();
                tr.name = topic_name(t);
                tr
            })
            .collect();
        r.response_partition_limit = limit;
        r.cursor = cursor.map(|(t, p)| {
            let mut c = ReqCursor::default();
            c.topic_name = topic_name(t);
            c.partition_index = p;
            c
        });
        r
    }

    /// (topic, partitions, error) per topic.
    type Topics = Vec<(String, Vec<i32>, i16)>;

    /// The topics of a page and its next cursor.
    fn page(r: &DescribeTopicPartitionsResponse) -> (Topics, Option<(String, i32)>) {
        (
            r.topics
                .iter()
                .map(|t| {
                    (
                        t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default(),
                        t.partitions.iter().map(|p| p.partition_index).collect(),
                        t.error_code,
                    )
                })
                .collect(),
            r.next_cursor
                .as_ref()
                .map(|c| (c.topic_name.0.to_string(), c.partition_index)),
        )
    }

    #[tokio::test]
    async fn pages_through_every_partition_in_name_order() {
        let f = Fixture::new().await;
        f.topic("b", 3, &[]).await;
        f.topic("a", 2, &[]).await;
        let c = ctx(&f, 0);
        let all = |r: &DescribeTopicPartitionsResponse| {
            assert_encodes(r, 0);
            page(r)
        };
        let r = respond(&c, &request(&["b", "a", "zz"], 2000, None));
        assert_eq!(
            all(&r).0,
            vec![
                ("a".into(), vec![0, 1], 0),
                ("b".into(), vec![0, 1, 2], 0),
                ("zz".into(), vec![], E::UnknownTopicOrPartition.code())
            ]
        );
        assert_eq!(r.topics[1].partitions[0].leader_id, BrokerId(1));
        // Pages of 2 over every topic the principal may see (the internal ones are not there
        // until a group or transaction uses them).
        let r = respond(&c, &request(&[], 2, None));
        assert_eq!(
            all(&r),
            (vec![("a".into(), vec![0, 1], 0)], Some(("b".into(), 0)))
        );
        let r = respond(&c, &request(&[], 2, Some(("b", 0))));
        assert_eq!(
            all(&r),
            (vec![("b".into(), vec![0, 1], 0)], Some(("b".into(), 2)))
        );
        let r = respond(&c, &request(&[], 2, Some(("b", 2))));
        assert_eq!(all(&r), (vec![("b".into(), vec![2], 0)], None));
        // A cursor on a topic the list does not name.
        let r = respond(&c, &request(&["a"], 10, Some(("b", 0))));
        assert_eq!(r.topics[0].error_code, E::InvalidRequest.code());
    }
}
