//! DeleteRecords (key 21), v0–v2: move each partition's log start offset forward (on its
//! leader) and report the new low watermark.
//!
//! Authorization (Kafka's): DELETE on each topic, else TOPIC_AUTHORIZATION_FAILED.

use super::topic_name;
use crate::broker::BrokerError;
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::security::acl::Operation;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

/// The versions of DeleteRecords this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 2);

/// Answers one DeleteRecords request.
pub(crate) async fn handle(ctx: RequestContext, req: DeleteRecordsRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

pub(crate) async fn respond(
    ctx: &RequestContext,
    req: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let authz = Authz::new(ctx);
    let mut r = DeleteRecordsResponse::default();
    for t in req.topics {
        let name = t.name.0.to_string();
        let mut tr = DeleteRecordsTopicResult::default();
        tr.name = topic_name(&name);
        let allowed = authz.topic(Operation::Delete, &name);
        for p in t.partitions {
            let mut pr = DeleteRecordsPartitionResult::default();
            pr.partition_index = p.partition_index;
            let res = if allowed {
                ctx.broker
                    .delete_records(&name, p.partition_index, p.offset)
                    .await
            } else {
                Err(BrokerError::TopicAuthorizationFailed)
            };
            match res {
                Ok(low_watermark) => pr.low_watermark = low_watermark,
                Err(e) => {
                    pr.error_code = code(&e);
                    pr.low_watermark = -1;
                }
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
    use crate::codec::kafka::batch::tests::make_batch;
    use crate::kafka::handlers::test_util::{assert_encodes, ctx, produce};
    use kafka_protocol::messages::delete_records_request::{
        DeleteRecordsPartition, DeleteRecordsTopic,
    };
    use kafka_protocol::ResponseError as E;

    fn request(topic: &str, parts: &[(i32, i64)]) -> DeleteRecordsRequest {
        let mut t = DeleteRecordsTopic::default();
        t.name = topic_name(topic);
        t.partitions = parts
            .iter()
            .map(|(p, o)| {
                let mut x = DeleteRecordsPartition::default();
                x.partition_index = *p;
                x.offset = *o;
                x
            })
            .collect();
        let mut r = DeleteRecordsRequest::default();
        r.topics = vec![t];
        r.timeout_ms = 5_000;
        r
    }

    #[tokio::test]
    async fn moves_the_low_watermark() {
        let f = Fixture::new().await;
        f.topic("t", 2, &[]).await;
        produce(&f, "t", 0, make_batch(5, -1, -1, -1)).await;
        produce(&f, "t", 1, make_batch(4, -1, -1, -1)).await;
        for v in VERSIONS.min..=VERSIONS.max {
            // -1 means the high watermark.
            let r = respond(&ctx(&f, v), request("t", &[(0, 3), (1, -1)])).await;
            assert_encodes(&r, v);
            assert_eq!(r.topics[0].name.as_str(), "t");
            let got: Vec<(i32, i16, i64)> = r.topics[0]
                .partitions
                .iter()
                .map(|p| (p.partition_index, p.error_code, p.low_watermark))
                .collect();
            assert_eq!(got, vec![(0, 0, 3), (1, 0, 4)], "v{v}");
        }
        let (earliest, _, _) = f
            .broker
            .list_offset("t", 0, crate::broker::OffsetSpec::Earliest, -1, false)
            .await
            .expect("earliest");
        assert_eq!(earliest, 3);
    }

    #[tokio::test]
    async fn errors() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[]).await;
        produce(&f, "t", 0, make_batch(2, -1, -1, -1)).await;
        let r = respond(&ctx(&f, 2), request("t", &[(0, 9), (3, 0), (0, -5)])).await;
        assert_encodes(&r, 2);
        let got: Vec<(i16, i64)> = r.topics[0]
            .partitions
            .iter()
            .map(|p| (p.error_code, p.low_watermark))
            .collect();
        assert_eq!(
            got,
            vec![
                (E::OffsetOutOfRange.code(), -1),
                (E::UnknownTopicOrPartition.code(), -1),
                (E::OffsetOutOfRange.code(), -1),
            ]
        );
        let r = respond(&ctx(&f, 0), request("nope", &[(0, 0)])).await;
        assert_eq!(
            r.topics[0].partitions[0].error_code,
            E::UnknownTopicOrPartition.code()
        );
    }
}
