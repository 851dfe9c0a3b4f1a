//! DescribeProducers (key 61), v0: the producers each partition's leader keeps state for
//! (`kafka-transactions.sh describe-producers`, KIP-664): id, epoch, last sequence and
//! timestamp, the coordinator epoch of its last marker and the first offset of its open
//! transaction (-1 outside one).
//!
//! Authorization (Kafka's): READ on each topic, else TOPIC_AUTHORIZATION_FAILED for its
//! partitions.

use super::topic_name;
use crate::broker::BrokerError;
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::kafka::shape::{RequestShape, Shape};
use crate::security::acl::Operation;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};

/// The versions of DescribeProducers this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 0);

impl RequestShape for DescribeProducersRequest {
    fn shape(&self) -> Shape {
        Shape {
            entries: self.topics.len(),
            partitions: self
                .topics
                .iter()
                .map(|t| t.partition_indexes.len())
                .fold(0, usize::saturating_add),
        }
    }
}

/// Answers one DescribeProducers request.
pub(crate) async fn handle(ctx: RequestContext, req: DescribeProducersRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

pub(crate) async fn respond(
    ctx: &RequestContext,
    req: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let authz = Authz::new(ctx);
    let mut r = DescribeProducersResponse::default();
    for t in req.topics {
        let name = t.name.0.to_string();
        let allowed = authz.topic(Operation::Read, &name);
        let mut tr = TopicResponse::default();
        tr.name = topic_name(&name);
        for p in t.partition_indexes {
            let mut pr = PartitionResponse::default();
            pr.partition_index = p;
            let res = if allowed {
                ctx.broker.describe_producers(&name, p).await
            } else {
                Err(BrokerError::TopicAuthorizationFailed)
            };
            match res {
                Ok(producers) => {
                    pr.active_producers = producers
                        .into_iter()
                        .map(|v| {
                            let mut s = ProducerState::default();
                            s.producer_id = ProducerId(v.producer_id);
                            s.producer_epoch = i32::from(v.producer_epoch);
                            s.last_sequence = v.last_sequence;
                            s.last_timestamp = v.last_timestamp;
                            s.coordinator_epoch = v.coordinator_epoch;
                            s.current_txn_start_offset = v.current_txn_start_offset;
                            s
                        })
                        .collect();
                }
                Err(e) => pr.error_code = code(&e),
            }
            tr.partitions.push(pr);
        }
        r.topics.push(tr);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::codec::kafka::batch::tests::{make_batch, set_transactional};
    use crate::codec::kafka::batch::validate_record_set;
    use crate::kafka::handlers::test_util::{assert_encodes, ctx, ctx_as, produce};
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    use kafka_protocol::ResponseError as E;

    fn request(topic: &str, parts: Vec<i32>) -> DescribeProducersRequest {
        let mut t = TopicRequest::default();
        t.name = topic_name(topic);
        t.partition_indexes = parts;
        let mut r = DescribeProducersRequest::default();
        r.topics = vec![t];
        r
    }

    #[tokio::test]
    async fn lists_idempotent_and_transactional_producers() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[]).await;
        produce(&f, "t", 0, make_batch(3, 7, 1, 0)).await; // 0..=2, idempotent
        let p = f.leader("t", 0).await;
        let mut raw = make_batch(2, 9, 0, 0);
        set_transactional(&mut raw);
        let h = validate_record_set(&raw).expect("valid")[0];
        let opts = crate::replication::AppendOptions {
            log_append_time: false,
            now_ms: 0,
        };
        p.append_leader(raw.into(), h, opts).await.expect("append"); // 3..=4
        let r = respond(&ctx(&f, 0), request("t", vec![0, 3])).await;
        assert_encodes(&r, 0);
        let parts = &r.topics[0].partitions;
        assert_eq!(parts[0].error_code, 0);
        let got: Vec<_> = parts[0]
            .active_producers
            .iter()
            .map(|s| {
                (
                    s.producer_id.0,
                    s.producer_epoch,
                    s.last_sequence,
                    s.coordinator_epoch,
                    s.current_txn_start_offset,
                )
            })
            .collect();
        assert_eq!(got, vec![(7, 1, 2, -1, -1), (9, 0, 1, -1, 3)]);
        assert_eq!(parts[1].error_code, E::UnknownTopicOrPartition.code());
    }

    #[tokio::test]
    async fn needs_read_on_the_topic() {
        let f = Fixture::authorized(&["User:admin"]).await;
        f.topic("t", 1, &[]).await;
        let r = respond(&ctx_as(&f, 0, "mallory"), request("t", vec![0])).await;
        assert_eq!(
            r.topics[0].partitions[0].error_code,
            E::TopicAuthorizationFailed.code()
        );
        let r = respond(&ctx_as(&f, 0, "admin"), request("t", vec![0])).await;
        assert_eq!(r.topics[0].partitions[0].error_code, 0);
    }
}
