//! WriteTxnMarkers (key 27), v0–v2: the transaction coordinator tells each partition leader
//! that a producer's transaction committed or aborted; the leader appends the COMMIT / ABORT
//! control batch (`Partition::append_marker`: producer and coordinator epochs checked as
//! Kafka's `appendEndTxnMarker` does) and answers once the marker is replicated (`acks=all`,
//! as Kafka appends markers). Node to node: CLUSTER_ACTION on the cluster, else every
//! partition gets CLUSTER_AUTHORIZATION_FAILED.
//!
//! v2 (Kafka 4.1) carries each marker's `TransactionVersion`: at 2+ the marker's producer
//! epoch must be greater than the partition's last (the coordinator bumped it before writing
//! the markers), else INVALID_PRODUCER_EPOCH, as Kafka 4.1+ checks. raftka's own coordinator
//! writes its markers node to node over `TxnService` with the older rule: its marker writes
//! are retried after a timeout, and a retry of a marker already written must be a no-op, not
//! an error; the coordinator epoch fences its stale markers instead.
//!
//! All markers and partitions are appended first (each partition in request order), then
//! waited for together, so one request costs one replication round.

use super::topic_name;
use crate::broker::{BrokerError, ProducePending};
use crate::codec::kafka::control::Marker;
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::kafka::shape::{RequestShape, Shape};
use crate::security::acl::Operation;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use std::time::Duration;

/// The versions of WriteTxnMarkers this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 2);

/// How long a marker may wait for its replication (the request carries no timeout; Kafka
/// uses its `request.timeout.ms`, 30 s).
const REPLICATION_TIMEOUT: Duration = Duration::from_secs(30);

impl RequestShape for WriteTxnMarkersRequest {
    fn shape(&self) -> Shape {
        let topics = self.markers.iter().map(|m| m.topics.len());
        let partitions = self
            .markers
            .iter()
            .flat_map(|m| m.topics.iter().map(|t| t.partition_indexes.len()));
        Shape {
            entries: topics.fold(self.markers.len(), usize::saturating_add),
            partitions: partitions.fold(0, usize::saturating_add),
        }
    }
}

/// Answers one WriteTxnMarkers request.
pub(crate) async fn handle(ctx: RequestContext, req: WriteTxnMarkersRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

enum Outcome {
    Pending(ProducePending),
    Done(Result<(), BrokerError>),
}

pub(crate) async fn respond(
    ctx: &RequestContext,
    req: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    let allowed = Authz::new(ctx).cluster(Operation::ClusterAction);
    // (producer id, [(topic, [(partition, outcome)])])
    let mut appended = Vec::with_capacity(req.markers.len());
    for m in req.markers {
        let marker = Marker {
            commit: m.transaction_result,
            coordinator_epoch: m.coordinator_epoch,
        };
        let mut topics = Vec::with_capacity(m.topics.len());
        for t in m.topics {
            let name = t.name.0.to_string();
            let mut parts = Vec::with_capacity(t.partition_indexes.len());
            for p in t.partition_indexes {
                let outcome = if !allowed {
                    Outcome::Done(Err(BrokerError::ClusterAuthorizationFailed))
                } else {
                    match ctx
                        .broker
                        .marker_append(
                            &name,
                            p,
                            m.producer_id.0,
                            m.producer_epoch,
                            marker,
                            m.transaction_version >= 2,
                            REPLICATION_TIMEOUT,
                        )
                        .await
                    {
                        Ok(pending) => Outcome::Pending(pending),
                        Err(e) => Outcome::Done(Err(e)),
                    }
                };
                parts.push((p, outcome));
            }
            topics.push((name, parts));
        }
        appended.push((m.producer_id, topics));
    }
    let mut r = WriteTxnMarkersResponse::default();
    for (producer_id, topics) in appended {
        let mut mr = WritableTxnMarkerResult::default();
        mr.producer_id = producer_id;
        for (name, parts) in topics {
            let mut tr = WritableTxnMarkerTopicResult::default();
            tr.name = topic_name(&name);
            for (partition, outcome) in parts {
                let res = match outcome {
                    Outcome::Pending(p) => p.wait().await.map(|_| ()),
                    Outcome::Done(r) => r,
                };
                let mut pr = WritableTxnMarkerPartitionResult::default();
                pr.partition_index = partition;
                pr.error_code = res.as_ref().err().map_or(0, code);
                tr.partitions.push(pr);
            }
            mr.topics.push(tr);
        }
        r.markers.push(mr);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::codec::kafka::batch::{self, tests::make_batch};
    use crate::kafka::handlers::test_util::{assert_encodes, ctx};
    use kafka_protocol::messages::write_txn_markers_request::{
        WritableTxnMarker, WritableTxnMarkerTopic,
    };
    use kafka_protocol::messages::ProducerId;
    use kafka_protocol::ResponseError as E;

    fn request(
        pid: i64,
        epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        topic: &str,
    ) -> WriteTxnMarkersRequest {
        let mut t = WritableTxnMarkerTopic::default();
        t.name = topic_name(topic);
        t.partition_indexes = vec![0, 7];
        let mut m = WritableTxnMarker::default();
        m.producer_id = ProducerId(pid);
        m.producer_epoch = epoch;
        m.transaction_result = commit;
        m.coordinator_epoch = coordinator_epoch;
        m.topics = vec![t];
        let mut r = WriteTxnMarkersRequest::default();
        r.markers = vec![m];
        r
    }

    fn codes(r: &WriteTxnMarkersResponse) -> Vec<(i32, i16)> {
        r.markers[0].topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.error_code))
            .collect()
    }

    /// Topic "t" with one partition holding an open transaction of producer 5 at epoch 2
    /// (`n` records written straight into it); its leader replica.
    async fn open_transaction(
        f: &Fixture,
        n: i32,
    ) -> std::sync::Arc<crate::replication::Partition> {
        f.topic("t", 1, &[]).await;
        let p = f.leader("t", 0).await;
        let mut raw = make_batch(n, 5, 2, 0);
        batch::tests::set_transactional(&mut raw);
        let h = batch::validate_record_set(&raw).expect("valid")[0];
        let opts = crate::replication::AppendOptions {
            log_append_time: false,
            now_ms: 0,
        };
        p.append_leader(raw.into(), h, opts).await.expect("append");
        p
    }

    /// A transaction written straight into a partition (its data batches are transactional),
    /// ended by markers: the LSO waits for it, the marker is stored as a control batch, stale
    /// producer and coordinator epochs are refused, unknown partitions are reported.
    #[tokio::test]
    async fn markers_end_transactions_and_check_epochs() {
        let f = Fixture::new().await;
        let p = open_transaction(&f, 3).await;
        assert_eq!((p.high_watermark(), p.last_stable_offset()), (3, 0));
        let g = f.broker.transaction_gauges();
        assert_eq!(
            (
                g.open_transactions,
                g.partitions_lso_behind_hw,
                g.lso_lag_max
            ),
            (1, 1, 3)
        );
        for v in VERSIONS.min..=VERSIONS.max {
            let c = ctx(&f, v);
            // Stale producer epoch first: nothing is written.
            let r = respond(&c, request(5, 1, false, 0, "t")).await;
            assert_eq!(
                codes(&r),
                vec![
                    (0, E::InvalidProducerEpoch.code()),
                    (7, E::UnknownTopicOrPartition.code())
                ]
            );
            assert_encodes(&r, v);
        }
        assert_eq!(p.log_end_offset(), 3);
        let c = ctx(&f, 1);
        let r = respond(&c, request(5, 2, true, 4, "t")).await;
        assert_eq!(codes(&r)[0], (0, 0));
        assert_eq!((p.log_end_offset(), p.last_stable_offset()), (4, 4));
        assert_eq!(
            f.broker.transaction_gauges(),
            crate::broker::TransactionGauges::default()
        );
        let stored = p.read(3, 1 << 20, 4).expect("read");
        let hs = batch::validate_record_set(&stored).expect("valid");
        assert!(hs[0].is_control() && hs[0].base_offset == 3);
        // An older coordinator's marker is fenced.
        let r = respond(&c, request(5, 2, false, 3, "t")).await;
        assert_eq!(codes(&r)[0], (0, E::TransactionCoordinatorFenced.code()));
        assert!(p.aborted_transactions(0, 4).expect("index").is_empty());
    }

    /// v2 (KIP-890, Kafka 4.1): a marker of transaction version 2 must carry an epoch
    /// greater than the partition's last, the bumped one; at the same epoch it is refused
    /// (a late marker of the previous transaction), which v1 and TV1 markers are not.
    #[tokio::test]
    async fn a_transaction_version_2_marker_needs_the_bumped_epoch() {
        let f = Fixture::new().await;
        let p = open_transaction(&f, 2).await;
        let tv2 = |epoch| {
            let mut r = request(5, epoch, true, 0, "t");
            r.markers[0].transaction_version = 2;
            r.markers[0].topics[0].partition_indexes = vec![0];
            r
        };
        let r = respond(&ctx(&f, 2), tv2(2)).await;
        assert_encodes(&r, 2);
        assert_eq!(codes(&r), vec![(0, E::InvalidProducerEpoch.code())]);
        assert_eq!(p.log_end_offset(), 2, "nothing written");
        // The same marker at v1: the field is not on the wire, the older rule holds.
        let mut v1 = tv2(2);
        v1.markers[0].transaction_version = 0;
        let c = ctx(&f, 1);
        let mut bytes = bytes::BytesMut::new();
        kafka_protocol::protocol::Encodable::encode(&tv2(2), &mut bytes, 1).expect("encode");
        let back: WriteTxnMarkersRequest =
            kafka_protocol::protocol::Decodable::decode(&mut bytes.freeze(), 1).expect("decode");
        assert_eq!(back, v1, "v1 carries no transaction version");
        // The bumped epoch ends the transaction.
        let r = respond(&ctx(&f, 2), tv2(3)).await;
        assert_eq!(codes(&r), vec![(0, 0)]);
        assert_eq!((p.log_end_offset(), p.last_stable_offset()), (3, 3));
        // Repeated, it is now late: refused at v2, while a TV1 marker at that epoch is
        // taken as a retry.
        let r = respond(&ctx(&f, 2), tv2(3)).await;
        assert_eq!(codes(&r), vec![(0, E::InvalidProducerEpoch.code())]);
        let r = respond(&c, v1_at(3)).await;
        assert_eq!(codes(&r), vec![(0, 0)]);

        fn v1_at(epoch: i16) -> WriteTxnMarkersRequest {
            let mut r = request(5, epoch, true, 0, "t");
            r.markers[0].topics[0].partition_indexes = vec![0];
            r
        }
    }
}
