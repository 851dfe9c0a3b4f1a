//! ElectLeaders (key 43), v0–v2: what `kafka-leader-election.sh` and
//! `kafka-preferred-replica-election.sh --bootstrap-server` send. Election type 0 (v0 always)
//! moves each partition's leadership to its preferred replica (the first of its assignment)
//! when that replica is live and in the ISR; type 1 makes an unclean election where neither
//! the leader nor any in-sync replica is live (the first live replica leads, with an ISR of
//! itself). Null `topic_partitions` = every partition. Per partition: ELECTION_NOT_NEEDED,
//! PREFERRED_LEADER_NOT_AVAILABLE, ELIGIBLE_LEADERS_NOT_AVAILABLE,
//! UNKNOWN_TOPIC_OR_PARTITION, as Kafka answers.
//!
//! Authorization (Kafka's): ALTER on the cluster, else every partition (and, from v1, the
//! response) gets CLUSTER_AUTHORIZATION_FAILED.

use super::{sb, topic_name};
use crate::broker::BrokerError;
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::kafka::shape::{RequestShape, Shape};
use crate::security::acl::Operation;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, ResponseKind};

/// The versions of ElectLeaders this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 2);

impl RequestShape for ElectLeadersRequest {
    fn shape(&self) -> Shape {
        let topics = self.topic_partitions.as_deref().unwrap_or_default();
        Shape {
            entries: topics.len(),
            partitions: topics
                .iter()
                .map(|t| t.partitions.len())
                .fold(0, usize::saturating_add),
        }
    }
}

/// Answers one ElectLeaders request once the elections are committed.
pub(crate) async fn handle(ctx: RequestContext, req: ElectLeadersRequest) -> Reply {
    Reply::Later(tokio::spawn(async move {
        Some(ResponseKind::ElectLeaders(respond(&ctx, req).await))
    }))
}

pub(crate) async fn respond(
    ctx: &RequestContext,
    req: ElectLeadersRequest,
) -> ElectLeadersResponse {
    let v = ctx.api_version;
    let partitions: Vec<(String, i32)> = match &req.topic_partitions {
        Some(ts) => ts
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p)))
            .collect(),
        None => {
            let image = ctx.broker.metadata_view();
            image
                .topics
                .values()
                .flat_map(|t| {
                    (0..t.partitions.len()).filter_map(|i| {
                        i32::try_from(i)
                            .ok()
                            .map(|p| (t.name.as_str().to_owned(), p))
                    })
                })
                .collect()
        }
    };
    let unclean = v >= 1 && req.election_type == 1;
    let refused = if !Authz::new(ctx).cluster(Operation::Alter) {
        Some(BrokerError::ClusterAuthorizationFailed)
    } else if v >= 1 && !(0..=1).contains(&req.election_type) {
        Some(BrokerError::InvalidRequest(format!(
            "unknown election type {}",
            req.election_type
        )))
    } else {
        None
    };
    let results = match &refused {
        Some(e) => vec![Err(e.clone()); partitions.len()],
        None => ctx.broker.elect_leaders(&partitions, unclean).await,
    };
    let mut r = ElectLeadersResponse::default();
    if let (Some(e), true) = (&refused, v >= 1) {
        r.error_code = code(e);
    }
    for ((topic, partition), res) in partitions.into_iter().zip(results) {
        let mut pr = PartitionResult::default();
        pr.partition_id = partition;
        if let Err(e) = res {
            pr.error_code = code(&e);
            pr.error_message = Some(sb(&e.to_string()));
        }
        match r.replica_election_results.last_mut() {
            Some(t) if t.topic.0.as_str() == topic => t.partition_result.push(pr),
            _ => {
                let mut t = ReplicaElectionResult::default();
                t.topic = topic_name(&topic);
                t.partition_result.push(pr);
                r.replica_election_results.push(t);
            }
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::test_util::{assert_encodes, ctx};
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    use kafka_protocol::ResponseError as E;

    fn request(election_type: i8, parts: Option<&[(&str, &[i32])]>) -> ElectLeadersRequest {
        let mut r = ElectLeadersRequest::default();
        r.election_type = election_type;
        r.timeout_ms = 5000;
        r.topic_partitions = parts.map(|ps| {
            ps.iter()
                .map(|(t, p)| {
                    let mut tp = TopicPartitions::default();
                    tp.topic = topic_name(t);
                    tp.partitions = p.to_vec();
                    tp
                })
                .collect()
        });
        r
    }

    fn codes(r: &ElectLeadersResponse) -> Vec<(String, i32, i16)> {
        r.replica_election_results
            .iter()
            .flat_map(|t| {
                t.partition_result
                    .iter()
                    .map(move |p| (t.topic.0.to_string(), p.partition_id, p.error_code))
            })
            .collect()
    }

    /// One node: every partition already has its preferred (and only, live) replica as
    /// leader, so nothing is needed; unknown partitions and election types are errors.
    #[tokio::test]
    async fn elections_not_needed_unknown_partitions_and_bad_types() {
        let f = Fixture::new().await;
        f.topic("t", 2, &[]).await;
        for v in VERSIONS.min..=VERSIONS.max {
            for ty in [0, 1] {
                let r = respond(
                    &ctx(&f, v),
                    request(ty, Some(&[("t", &[0, 5]), ("u", &[0])])),
                )
                .await;
                assert_encodes(&r, v);
                assert_eq!(r.error_code, 0);
                assert_eq!(
                    codes(&r),
                    vec![
                        ("t".into(), 0, E::ElectionNotNeeded.code()),
                        ("t".into(), 5, E::UnknownTopicOrPartition.code()),
                        ("u".into(), 0, E::UnknownTopicOrPartition.code()),
                    ],
                    "v{v} type {ty}"
                );
            }
            // Null partitions: every partition of every topic.
            let r = respond(&ctx(&f, v), request(0, None)).await;
            assert_eq!(
                codes(&r),
                vec![
                    ("t".into(), 0, E::ElectionNotNeeded.code()),
                    ("t".into(), 1, E::ElectionNotNeeded.code()),
                ]
            );
        }
        let r = respond(&ctx(&f, 1), request(7, Some(&[("t", &[0])]))).await;
        assert_eq!(r.error_code, E::InvalidRequest.code());
        assert_eq!(codes(&r), vec![("t".into(), 0, E::InvalidRequest.code())]);
    }
}
