//! ListOffsets (key 2), v0–v10: earliest, latest (high watermark; the last stable offset for
//! `isolation_level` READ_COMMITTED from v2, which also bounds the lookups), max timestamp, by
//! timestamp.
//!
//! v0 (sarama's and kafka-rust's default, Burrow's lag check) asks for up to
//! `max_num_offsets` offsets "before" a time and gets them in `old_style_offsets`, newest
//! first. Kafka answered from segment base offsets; raftka has no segments, so: latest →
//! [high watermark, log start offset] (the log start only when it differs), earliest → [log
//! start offset], a time → [the first offset at or after it] or, past the last record,
//! [high watermark] — each cut to `max_num_offsets`. What clients use (`max_num_offsets` 1
//! with latest or earliest) is exactly Kafka's answer.
//!
//! Authorization (Kafka's): DESCRIBE on each topic, else TOPIC_AUTHORIZATION_FAILED.

use super::topic_name;
use crate::broker::{BrokerError, OffsetSpec};
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::security::acl::Operation;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

/// The versions of ListOffsets this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 10);

/// Answers one ListOffsets request.
pub(crate) async fn handle(ctx: RequestContext, req: ListOffsetsRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

pub(crate) async fn respond(ctx: &RequestContext, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let v = ctx.api_version;
    let authz = Authz::new(ctx);
    let read_committed = v >= 2 && req.isolation_level == 1;
    let mut r = ListOffsetsResponse::default();
    for t in req.topics {
        let name = t.name.0.to_string();
        let mut tr = ListOffsetsTopicResponse::default();
        tr.name = topic_name(&name);
        let denied = !authz.topic(Operation::Describe, &name);
        for p in t.partitions {
            if denied {
                tr.partitions.push(failed(
                    v,
                    p.partition_index,
                    &BrokerError::TopicAuthorizationFailed,
                ));
                continue;
            }
            if v == 0 {
                tr.partitions.push(
                    respond_v0(
                        ctx,
                        &name,
                        p.partition_index,
                        p.timestamp,
                        p.max_num_offsets,
                    )
                    .await,
                );
                continue;
            }
            let mut pr = ListOffsetsPartitionResponse::default();
            pr.partition_index = p.partition_index;
            let current = if v >= 4 { p.current_leader_epoch } else { -1 };
            match ctx
                .broker
                .list_offset(
                    &name,
                    p.partition_index,
                    OffsetSpec::from_wire(p.timestamp),
                    current,
                    read_committed,
                )
                .await
            {
                Ok((offset, timestamp, epoch)) => {
                    pr.offset = offset;
                    pr.timestamp = timestamp;
                    if v >= 4 {
                        pr.leader_epoch = epoch;
                    }
                }
                Err(e) => pr = failed(v, p.partition_index, &e),
            }
            tr.partitions.push(pr);
        }
        r.topics.push(tr);
    }
    r
}

/// A partition answered with `e`.
fn failed(v: i16, partition: i32, e: &BrokerError) -> ListOffsetsPartitionResponse {
    let mut pr = ListOffsetsPartitionResponse::default();
    pr.partition_index = partition;
    pr.error_code = code(e);
    if v >= 1 {
        pr.offset = -1;
        pr.timestamp = -1;
    }
    if v >= 4 {
        pr.leader_epoch = -1;
    }
    pr
}

/// One partition of a v0 request (see the module comment).
async fn respond_v0(
    ctx: &RequestContext,
    topic: &str,
    partition: i32,
    timestamp: i64,
    max_num_offsets: i32,
) -> ListOffsetsPartitionResponse {
    let mut pr = ListOffsetsPartitionResponse::default();
    pr.partition_index = partition;
    let at = |spec| ctx.broker.list_offset(topic, partition, spec, -1, false);
    let offsets = match OffsetSpec::from_wire(timestamp) {
        OffsetSpec::Latest => {
            match (at(OffsetSpec::Latest).await, at(OffsetSpec::Earliest).await) {
                (Ok((hw, _, _)), Ok((start, _, _))) if start < hw => Ok(vec![hw, start]),
                (Ok((hw, _, _)), Ok(_)) => Ok(vec![hw]),
                (Err(e), _) | (_, Err(e)) => Err(e),
            }
        }
        OffsetSpec::Timestamp(t) => match at(OffsetSpec::Timestamp(t)).await {
            Ok((o, _, _)) if o >= 0 => Ok(vec![o]),
            Ok(_) => at(OffsetSpec::Latest).await.map(|(hw, _, _)| vec![hw]),
            Err(e) => Err(e),
        },
        spec => at(spec).await.map(|(o, _, _)| vec![o]),
    };
    match offsets {
        Ok(mut list) => {
            list.truncate(usize::try_from(max_num_offsets).unwrap_or(0));
            pr.old_style_offsets = list;
        }
        Err(e) => pr.error_code = code(&e),
    }
    pr
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::test_util::{assert_encodes, batch_at, ctx, produce};
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::ResponseError as E;

    fn request(topic: &str, parts: &[(i32, i64, i32)]) -> ListOffsetsRequest {
        let mut t = ListOffsetsTopic::default();
        t.name = topic_name(topic);
        t.partitions = parts
            .iter()
            .map(|(p, ts, epoch)| {
                let mut x = ListOffsetsPartition::default();
                x.partition_index = *p;
                x.timestamp = *ts;
                x.current_leader_epoch = *epoch;
                x
            })
            .collect();
        let mut r = ListOffsetsRequest::default();
        r.topics = vec![t];
        r
    }

    #[tokio::test]
    async fn v0_answers_old_style_offsets() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[]).await;
        produce(&f, "t", 0, batch_at(2, 1_000)).await;
        produce(&f, "t", 0, batch_at(1, 5_000)).await;
        let mut req = request(
            "t",
            &[
                (0, -1, -1),
                (0, -2, -1),
                (0, 2_000, -1),
                (0, 9_000, -1),
                (0, -1, -1),
                (0, -1, -1),
                (3, -1, -1),
            ],
        );
        for (p, n) in req.topics[0]
            .partitions
            .iter_mut()
            .zip([1, 1, 1, 1, 5, 0, 1])
        {
            p.max_num_offsets = n;
        }
        let r = respond(&ctx(&f, 0), req).await;
        assert_encodes(&r, 0);
        let got: Vec<(i16, Vec<i64>, i64)> = r.topics[0]
            .partitions
            .iter()
            .map(|p| (p.error_code, p.old_style_offsets.clone(), p.offset))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, vec![3], -1),
                (0, vec![0], -1),
                (0, vec![2], -1),
                (0, vec![3], -1),
                (0, vec![3, 0], -1),
                (0, vec![], -1),
                (E::UnknownTopicOrPartition.code(), vec![], -1),
            ]
        );
    }

    #[tokio::test]
    async fn earliest_latest_max_timestamp_and_by_timestamp() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[]).await;
        produce(&f, "t", 0, batch_at(2, 1_000)).await;
        produce(&f, "t", 0, batch_at(1, 5_000)).await;
        let epoch = f
            .broker
            .metadata_view()
            .partition("t", 0)
            .expect("p")
            .leader_epoch;
        for v in 1..=VERSIONS.max {
            let r = respond(
                &ctx(&f, v),
                request(
                    "t",
                    &[
                        (0, -2, -1),
                        (0, -1, -1),
                        (0, -3, -1),
                        (0, 500, -1),
                        (0, 2_000, -1),
                        (0, 6_000, -1),
                    ],
                ),
            )
            .await;
            assert_encodes(&r, v);
            assert_eq!(r.topics[0].name.as_str(), "t");
            let got: Vec<(i16, i64, i64)> = r.topics[0]
                .partitions
                .iter()
                .map(|p| (p.error_code, p.offset, p.timestamp))
                .collect();
            assert_eq!(
                got,
                vec![
                    (0, 0, -1),
                    (0, 3, -1),
                    (0, 2, 5_000),
                    (0, 0, 1_000),
                    (0, 2, 5_000),
                    (0, -1, -1),
                ],
                "v{v}"
            );
            let epochs: Vec<i32> = r.topics[0]
                .partitions
                .iter()
                .map(|p| p.leader_epoch)
                .collect();
            let want = if v >= 4 { epoch } else { -1 };
            assert_eq!(&epochs[..5], &[want; 5], "v{v}");
        }
        // Earliest follows the log start offset.
        f.broker
            .delete_records("t", 0, 2)
            .await
            .expect("delete records");
        let r = respond(&ctx(&f, 1), request("t", &[(0, -2, -1)])).await;
        assert_eq!(r.topics[0].partitions[0].offset, 2);
    }

    #[tokio::test]
    async fn unknown_partitions_and_leader_epochs() {
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
            request("t", &[(5, -1, -1), (0, -1, epoch + 1), (0, -1, epoch)]),
        )
        .await;
        assert_encodes(&r, 4);
        let got: Vec<(i32, i16, i64, i64, i32)> = r.topics[0]
            .partitions
            .iter()
            .map(|p| {
                (
                    p.partition_index,
                    p.error_code,
                    p.offset,
                    p.timestamp,
                    p.leader_epoch,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (5, E::UnknownTopicOrPartition.code(), -1, -1, -1),
                (0, E::UnknownLeaderEpoch.code(), -1, -1, -1),
                (0, 0, 0, -1, epoch),
            ]
        );
        let r = respond(&ctx(&f, 2), request("nope", &[(0, -1, -1)])).await;
        assert_eq!(
            r.topics[0].partitions[0].error_code,
            E::UnknownTopicOrPartition.code()
        );
        // Before v4 the request carries no epoch: nothing to check.
        let r = respond(&ctx(&f, 3), request("t", &[(0, -1, epoch + 1)])).await;
        assert_eq!(r.topics[0].partitions[0].error_code, 0);
    }
}
