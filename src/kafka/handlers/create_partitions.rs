//! CreatePartitions (key 37), v0–v3: grow a topic, optionally with explicit assignments.
//!
//! Authorization (Kafka's): ALTER on each topic, else TOPIC_AUTHORIZATION_FAILED.

use super::{sb, topic_name};
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::security::acl::Operation;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

/// The versions of CreatePartitions this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 3);

/// Answers one CreatePartitions request.
pub(crate) async fn handle(ctx: RequestContext, req: CreatePartitionsRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

pub(crate) async fn respond(
    ctx: &RequestContext,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let authz = Authz::new(ctx);
    let mut quota = crate::kafka::mutation_quota::MutationQuota::new(ctx, ctx.api_version >= 3);
    let mut r = CreatePartitionsResponse::default();
    for t in req.topics {
        let name = t.name.0.to_string();
        let assignment = t.assignments.map(|a| {
            a.into_iter()
                .map(|x| x.broker_ids.into_iter().map(|b| b.0).collect())
                .collect()
        });
        let mut tr = CreatePartitionsTopicResult::default();
        tr.name = topic_name(&name);
        let res = if !authz.topic(Operation::Alter, &name) {
            Err(crate::broker::BrokerError::TopicAuthorizationFailed)
        } else if let Err(e) = quota.check() {
            Err(e)
        } else {
            let before = ctx
                .broker
                .metadata_view()
                .topic(&name)
                .map_or(0, |ti| ti.partitions.len());
            let res = ctx
                .broker
                .create_partitions(&name, t.count, assignment, req.validate_only)
                .await;
            if res.is_ok() && !req.validate_only {
                quota.record(usize::try_from(t.count).unwrap_or(0).saturating_sub(before));
            }
            res
        };
        if let Err(e) = res {
            tr.error_code = code(&e);
            tr.error_message = Some(sb(&e.to_string()));
        }
        r.results.push(tr);
    }
    r.throttle_time_ms = quota.throttle_ms();
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::test_util::{assert_encodes, ctx};
    use kafka_protocol::messages::create_partitions_request::{
        CreatePartitionsAssignment, CreatePartitionsTopic,
    };
    use kafka_protocol::messages::BrokerId;
    use kafka_protocol::ResponseError as E;

    fn topic(name: &str, count: i32, assignments: Option<Vec<Vec<i32>>>) -> CreatePartitionsTopic {
        let mut t = CreatePartitionsTopic::default();
        t.name = topic_name(name);
        t.count = count;
        t.assignments = assignments.map(|a| {
            a.into_iter()
                .map(|ids| {
                    let mut x = CreatePartitionsAssignment::default();
                    x.broker_ids = ids.into_iter().map(BrokerId).collect();
                    x
                })
                .collect()
        });
        t
    }

    fn request(topics: Vec<CreatePartitionsTopic>, validate_only: bool) -> CreatePartitionsRequest {
        let mut r = CreatePartitionsRequest::default();
        r.topics = topics;
        r.validate_only = validate_only;
        r.timeout_ms = 5_000;
        r
    }

    fn partitions(f: &Fixture, name: &str) -> usize {
        f.broker
            .metadata_view()
            .topic(name)
            .map_or(0, |t| t.partitions.len())
    }

    #[tokio::test]
    async fn grows_topics_with_and_without_assignments() {
        let f = Fixture::new().await;
        f.topic("a", 1, &[]).await;
        f.topic("b", 1, &[]).await;
        let r = respond(
            &ctx(&f, 3),
            request(
                vec![topic("a", 3, None), topic("b", 2, Some(vec![vec![1]]))],
                false,
            ),
        )
        .await;
        assert_encodes(&r, 3);
        let got: Vec<(&str, i16)> = r
            .results
            .iter()
            .map(|t| (t.name.as_str(), t.error_code))
            .collect();
        assert_eq!(got, vec![("a", 0), ("b", 0)]);
        assert!(r.results.iter().all(|t| t.error_message.is_none()));
        assert_eq!((partitions(&f, "a"), partitions(&f, "b")), (3, 2));
        let image = f.broker.metadata_view();
        let b = image.topic("b").expect("b");
        assert_eq!(b.partitions[1].replicas, vec![crate::types::NodeId(1)]);
    }

    #[tokio::test]
    async fn validate_only_does_not_grow() {
        let f = Fixture::new().await;
        f.topic("a", 1, &[]).await;
        for v in VERSIONS.min..=VERSIONS.max {
            let r = respond(&ctx(&f, v), request(vec![topic("a", 4, None)], true)).await;
            assert_encodes(&r, v);
            assert_eq!(r.results[0].error_code, 0);
        }
        assert_eq!(partitions(&f, "a"), 1);
    }

    #[tokio::test]
    async fn errors_carry_codes_and_messages() {
        let f = Fixture::new().await;
        f.topic("a", 2, &[]).await;
        let max = f.broker.config().limits.partitions_per_topic_max;
        let r = respond(
            &ctx(&f, 0),
            request(
                vec![
                    topic("nope", 3, None),
                    topic("a", 2, None),
                    topic("a", 1, None),
                    topic("a", 4, Some(vec![vec![1]])),
                    topic("a", 3, Some(vec![vec![9]])),
                    topic("a", max + 1, None),
                ],
                false,
            ),
        )
        .await;
        assert_encodes(&r, 0);
        let codes: Vec<i16> = r.results.iter().map(|t| t.error_code).collect();
        assert_eq!(
            codes,
            vec![
                E::UnknownTopicOrPartition.code(),
                E::InvalidPartitions.code(),
                E::InvalidPartitions.code(),
                E::InvalidReplicaAssignment.code(),
                E::InvalidReplicaAssignment.code(),
                E::InvalidPartitions.code(),
            ]
        );
        assert!(r.results.iter().all(|t| t.error_message.is_some()));
        assert_eq!(partitions(&f, "a"), 2);
    }
}
