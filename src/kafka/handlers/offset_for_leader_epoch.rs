//! OffsetForLeaderEpoch (key 23), v0–v4 (v0 answers without the epoch): the end offset of a leader epoch (used by clients
//! to detect log truncation after a leader change, and by followers).
//!
//! Authorization (Kafka's): a request from a replica (v3+ `replica_id` ≥ 0) needs
//! CLUSTER_ACTION on the cluster, else CLUSTER_AUTHORIZATION_FAILED everywhere; a client's
//! needs DESCRIBE on each topic, else TOPIC_AUTHORIZATION_FAILED.

use super::topic_name;
use crate::broker::BrokerError;
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::security::acl::Operation;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

/// The versions of OffsetForLeaderEpoch this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 4);

/// Answers one OffsetForLeaderEpoch request.
pub(crate) async fn handle(ctx: RequestContext, req: OffsetForLeaderEpochRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

pub(crate) async fn respond(
    ctx: &RequestContext,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let v = ctx.api_version;
    let authz = Authz::new(ctx);
    let cluster_denied =
        v >= 3 && req.replica_id.0 >= 0 && !authz.cluster(Operation::ClusterAction);
    let mut r = OffsetForLeaderEpochResponse::default();
    for t in req.topics {
        let name = t.topic.0.to_string();
        let mut tr = OffsetForLeaderTopicResult::default();
        tr.topic = topic_name(&name);
        let denied = if cluster_denied {
            Some(BrokerError::ClusterAuthorizationFailed)
        } else if !authz.topic(Operation::Describe, &name) {
            Some(BrokerError::TopicAuthorizationFailed)
        } else {
            None
        };
        for p in t.partitions {
            let mut e = EpochEndOffset::default();
            e.partition = p.partition;
            if let Some(err) = &denied {
                e.error_code = code(err);
                e.end_offset = -1;
                tr.partitions.push(e);
                continue;
            }
            match ctx
                .broker
                .offset_for_leader_epoch(&name, p.partition, p.leader_epoch, p.current_leader_epoch)
                .await
            {
                Ok((epoch, end)) => {
                    if v >= 1 {
                        e.leader_epoch = epoch;
                    }
                    e.end_offset = end;
                }
                Err(err) => {
                    e.error_code = code(&err);
                    e.end_offset = -1;
                }
            }
            tr.partitions.push(e);
        }
        r.topics.push(tr);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::codec::kafka::batch::tests::make_batch;
    use crate::kafka::handlers::test_util::{assert_encodes, ctx, produce};
    use kafka_protocol::messages::offset_for_leader_epoch_request::{
        OffsetForLeaderPartition, OffsetForLeaderTopic,
    };
    use kafka_protocol::ResponseError as E;

    fn request(topic: &str, parts: &[(i32, i32, i32)]) -> OffsetForLeaderEpochRequest {
        let mut t = OffsetForLeaderTopic::default();
        t.topic = topic_name(topic);
        t.partitions = parts
            .iter()
            .map(|(p, epoch, current)| {
                let mut x = OffsetForLeaderPartition::default();
                x.partition = *p;
                x.leader_epoch = *epoch;
                x.current_leader_epoch = *current;
                x
            })
            .collect();
        let mut r = OffsetForLeaderEpochRequest::default();
        r.topics = vec![t];
        r
    }

    #[tokio::test]
    async fn end_offset_of_the_current_epoch_is_the_log_end() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[]).await;
        produce(&f, "t", 0, make_batch(3, -1, -1, -1)).await;
        let epoch = f
            .broker
            .metadata_view()
            .partition("t", 0)
            .expect("p")
            .leader_epoch;
        for v in VERSIONS.min..=VERSIONS.max {
            let r = respond(
                &ctx(&f, v),
                request("t", &[(0, epoch, epoch), (0, epoch, -1), (0, -1, -1)]),
            )
            .await;
            assert_encodes(&r, v);
            assert_eq!(r.topics[0].topic.as_str(), "t");
            let got: Vec<(i32, i16, i32, i64)> = r.topics[0]
                .partitions
                .iter()
                .map(|e| (e.partition, e.error_code, e.leader_epoch, e.end_offset))
                .collect();
            // v0 has no epoch in its answer.
            let e = if v >= 1 { epoch } else { -1 };
            assert_eq!(
                got,
                vec![(0, 0, e, 3), (0, 0, e, 3), (0, 0, -1, -1)],
                "v{v}"
            );
        }
    }

    #[tokio::test]
    async fn errors() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[]).await;
        let epoch = f
            .broker
            .metadata_view()
            .partition("t", 0)
            .expect("p")
            .leader_epoch;
        let r = respond(
            &ctx(&f, 4),
            request("t", &[(4, 0, -1), (0, epoch, epoch + 1)]),
        )
        .await;
        assert_encodes(&r, 4);
        let got: Vec<(i16, i32, i64)> = r.topics[0]
            .partitions
            .iter()
            .map(|e| (e.error_code, e.leader_epoch, e.end_offset))
            .collect();
        assert_eq!(
            got,
            vec![
                (E::UnknownTopicOrPartition.code(), -1, -1),
                (E::UnknownLeaderEpoch.code(), -1, -1),
            ]
        );
        let r = respond(&ctx(&f, 2), request("nope", &[(0, 0, -1)])).await;
        assert_eq!(
            r.topics[0].partitions[0].error_code,
            E::UnknownTopicOrPartition.code()
        );
    }
}
