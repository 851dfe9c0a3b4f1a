//! OffsetDelete (key 47), v0: removes committed offsets of topics the group is not subscribed to.
//!
//! Authorization (Kafka's): DELETE on the group, else GROUP_AUTHORIZATION_FAILED; READ on
//! each topic, else its partitions get TOPIC_AUTHORIZATION_FAILED and are not deleted.

use super::topic_name;
use crate::broker::BrokerError;
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::security::acl::Operation;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

/// The versions of OffsetDelete this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 0);

/// Answers one OffsetDelete request.
pub(crate) async fn handle(ctx: RequestContext, req: OffsetDeleteRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

pub(crate) async fn respond(
    ctx: &RequestContext,
    req: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let mut r = OffsetDeleteResponse::default();
    let authz = Authz::new(ctx);
    if !authz.group(Operation::Delete, &req.group_id.0) {
        r.error_code = code(&BrokerError::GroupAuthorizationFailed);
        return r;
    }
    let (topics, denied): (Vec<(String, Vec<i32>)>, Vec<_>) = req
        .topics
        .iter()
        .map(|t| {
            (
                t.name.0.to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .partition(|(t, _)| authz.topic(Operation::Read, t));
    let denied = denied.into_iter().map(|(t, ps)| {
        let parts = ps
            .into_iter()
            .map(|p| (p, Err(BrokerError::TopicAuthorizationFailed)))
            .collect::<Vec<_>>();
        (t, parts)
    });
    match ctx.broker.delete_offsets(&req.group_id.0, topics).await {
        Err(e) => r.error_code = code(&e),
        Ok(results) => {
            for (t, parts) in results.into_iter().chain(denied) {
                let mut tr = OffsetDeleteResponseTopic::default();
                tr.name = topic_name(&t);
                for (p, res) in parts {
                    let mut pr = OffsetDeleteResponsePartition::default();
                    pr.partition_index = p;
                    if let Err(e) = res {
                        pr.error_code = code(&e);
                    }
                    tr.partitions.push(pr);
                }
                r.topics.push(tr);
            }
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::sb;
    use crate::kafka::handlers::test_util::{
        assert_encodes, commit_standalone, committed, coordinator, ctx, join, join_request,
        stable_group,
    };
    use kafka_protocol::messages::offset_delete_request::{
        OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
    };
    use kafka_protocol::messages::GroupId;
    use kafka_protocol::ResponseError as E;

    fn request(group: &str, topics: &[(&str, &[i32])]) -> OffsetDeleteRequest {
        let mut r = OffsetDeleteRequest::default();
        r.group_id = GroupId(sb(group));
        r.topics = topics
            .iter()
            .map(|(t, ps)| {
                let mut x = OffsetDeleteRequestTopic::default();
                x.name = topic_name(t);
                x.partitions = ps
                    .iter()
                    .map(|p| {
                        let mut y = OffsetDeleteRequestPartition::default();
                        y.partition_index = *p;
                        y
                    })
                    .collect();
                x
            })
            .collect();
        r
    }

    fn rows(r: &OffsetDeleteResponse) -> Vec<(&str, i32, i16)> {
        r.topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| (t.name.as_str(), p.partition_index, p.error_code))
            })
            .collect()
    }

    #[tokio::test]
    async fn removes_offsets_of_an_empty_group() {
        let f = Fixture::new().await;
        f.topic("t", 2, &[]).await;
        commit_standalone(&f, "g", &[("t", 0, 1), ("t", 1, 2)]).await;
        let r = respond(&ctx(&f, 0), request("g", &[("t", &[0])])).await;
        assert_encodes(&r, 0);
        assert_eq!(r.error_code, 0);
        assert_eq!(rows(&r), vec![("t", 0, 0)]);
        assert_eq!(
            (committed(&f, "g", "t", 0), committed(&f, "g", "t", 1)),
            (-1, 2)
        );
    }

    #[tokio::test]
    async fn subscribed_topics_are_kept() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[]).await;
        f.topic("u", 1, &[]).await;
        let (m, gen) = stable_group(&f, "g", &["t"]).await;
        let entries = ["t", "u"]
            .iter()
            .map(|t| crate::broker::OffsetCommitEntry {
                topic: (*t).into(),
                partition: 0,
                offset: 5,
                leader_epoch: -1,
                metadata: None,
            })
            .collect();
        f.broker
            .commit_offsets("g", &m, None, gen, entries)
            .await
            .expect("commit");
        let r = respond(&ctx(&f, 0), request("g", &[("t", &[0]), ("u", &[0])])).await;
        assert_eq!(r.error_code, 0);
        assert_eq!(
            rows(&r),
            vec![("t", 0, E::GroupSubscribedToTopic.code()), ("u", 0, 0)]
        );
        assert_eq!(
            (committed(&f, "g", "t", 0), committed(&f, "g", "u", 0)),
            (5, -1)
        );
    }

    #[tokio::test]
    async fn group_level_errors() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[]).await;
        let r = respond(&ctx(&f, 0), request("early", &[("t", &[0])])).await;
        assert_eq!(r.error_code, E::NotCoordinator.code());
        coordinator(&f, "g").await;
        // Members whose subscriptions cannot be read (not the consumer protocol).
        let mut connect = join_request("c", "", &["t"]);
        connect.protocol_type = sb("connect");
        assert_eq!(join(&f, 3, connect).await.error_code, 0);
        for (g, want) in [
            ("nope", E::GroupIdNotFound),
            ("", E::InvalidGroupId),
            ("c", E::NonEmptyGroup),
        ] {
            let r = respond(&ctx(&f, 0), request(g, &[("t", &[0])])).await;
            assert_encodes(&r, 0);
            assert_eq!(r.error_code, want.code(), "{g:?}");
            assert!(r.topics.is_empty());
        }
    }
}
