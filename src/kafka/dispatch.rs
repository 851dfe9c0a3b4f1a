//! The route table: one row per Kafka API (its key and its handler module). From that one list
//! the macro below generates both the ApiVersions table and the dispatch, so they cannot
//! disagree; each handler declares its own version range (`VERSIONS`) and has one signature,
//! `handle(ctx, req) -> Reply`. Before any handler runs, the request's size in topics and
//! partitions ([`RequestShape`]) is checked against the limits, once, for every API.
//!
//! To add an API: write `handlers/<api>.rs` (with `VERSIONS`, `handle`, the `RequestShape` of
//! its request and its tests) and add one row here.

use super::context::RequestContext;
use super::handlers;
use super::reply::Reply;
use super::shape::{RequestShape, Shape};
use kafka_protocol::messages::{ApiKey, RequestKind};

/// One supported API and its version range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiEntry {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
}

/// Why a decoded request is not handed to a handler (the connection is then closed: a
/// request this large is abuse, not a client's mistake).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    #[error("request without a route")]
    NotRouted,
    #[error("{what} in one request: {count} > {max}")]
    TooLarge {
        what: &'static str,
        count: usize,
        max: usize,
    },
}

macro_rules! routes {
    ($($api:ident => $module:ident),+ $(,)?) => {
        /// Every API this broker serves, with the versions its handler declares. ApiVersions
        /// is answered from this table.
        static API_TABLE: &[ApiEntry] = &[$(ApiEntry {
            key: ApiKey::$api,
            min: handlers::$module::VERSIONS.min,
            max: handlers::$module::VERSIONS.max,
        }),+];

        /// Runs the handler of `req` once its shape is within the limits.
        ///
        /// # Errors
        /// `Refused` for a request over the limits (or, defensively, one without a route: the
        /// connection checks the table before decoding, so that cannot happen).
        pub(crate) async fn dispatch(ctx: RequestContext, req: RequestKind) -> Result<Reply, Refused> {
            match req {
                $(RequestKind::$api(r) => {
                    check_shape(&ctx, r.shape())?;
                    Ok(handlers::$module::handle(ctx, r).await)
                })+
                _ => Err(Refused::NotRouted),
            }
        }
    };
}

routes! {
    Produce => produce,
    Fetch => fetch,
    ListOffsets => list_offsets,
    Metadata => metadata,
    ApiVersions => api_versions,
    CreateTopics => create_topics,
    DeleteTopics => delete_topics,
    InitProducerId => init_producer_id,
    OffsetForLeaderEpoch => offset_for_leader_epoch,
    DescribeConfigs => describe_configs,
    AlterConfigs => alter_configs,
    CreatePartitions => create_partitions,
    IncrementalAlterConfigs => incremental_alter_configs,
    DescribeCluster => describe_cluster,
    FindCoordinator => find_coordinator,
    JoinGroup => join_group,
    SyncGroup => sync_group,
    Heartbeat => heartbeat,
    LeaveGroup => leave_group,
    OffsetCommit => offset_commit,
    OffsetFetch => offset_fetch,
    ListGroups => list_groups,
    DescribeGroups => describe_groups,
    DeleteGroups => delete_groups,
    ElectLeaders => elect_leaders,
    AlterPartitionReassignments => alter_partition_reassignments,
    ListPartitionReassignments => list_partition_reassignments,
    DescribeQuorum => describe_quorum,
    DescribeTopicPartitions => describe_topic_partitions,
    OffsetDelete => offset_delete,
    DeleteRecords => delete_records,
    DescribeLogDirs => describe_log_dirs,
    SaslHandshake => sasl_handshake,
    SaslAuthenticate => sasl_authenticate,
    DescribeUserScramCredentials => describe_user_scram_credentials,
    AlterUserScramCredentials => alter_user_scram_credentials,
    DescribeAcls => describe_acls,
    DescribeClientQuotas => describe_client_quotas,
    AlterClientQuotas => alter_client_quotas,
    CreateAcls => create_acls,
    DeleteAcls => delete_acls,
    WriteTxnMarkers => write_txn_markers,
    DescribeProducers => describe_producers,
    AddPartitionsToTxn => add_partitions_to_txn,
    AddOffsetsToTxn => add_offsets_to_txn,
    EndTxn => end_txn,
    TxnOffsetCommit => txn_offset_commit,
    DescribeTransactions => describe_transactions,
    ListTransactions => list_transactions,
}

/// The supported APIs.
pub fn api_table() -> &'static [ApiEntry] {
    API_TABLE
}

/// The supported range for an API key, if any.
pub(crate) fn supported(key: i16) -> Option<(ApiKey, ApiEntry)> {
    let k = ApiKey::try_from(key).ok()?;
    API_TABLE.iter().find(|e| e.key == k).map(|e| (k, *e))
}

fn check_shape(ctx: &RequestContext, s: Shape) -> Result<(), Refused> {
    let limits = &ctx.broker.config().limits;
    if s.entries > limits.topics_per_request_max {
        return Err(Refused::TooLarge {
            what: "topics (or groups, resources, keys)",
            count: s.entries,
            max: limits.topics_per_request_max,
        });
    }
    if s.partitions > limits.partitions_per_request_max {
        return Err(Refused::TooLarge {
            what: "partitions",
            count: s.partitions,
            max: limits.partitions_per_request_max,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Message;

    #[test]
    fn table_ranges_are_within_the_codec() {
        for e in API_TABLE {
            let codec = e.key.valid_versions();
            assert!(
                e.min >= codec.min && e.max <= codec.max && e.min <= e.max,
                "{:?}",
                e.key
            );
        }
        assert_eq!(supported(18).map(|(_, e)| (e.min, e.max)), Some((0, 4)));
        assert!(supported(9999).is_none());
        let _ = kafka_protocol::messages::ProduceRequest::VERSIONS;
    }

    #[test]
    fn huge_array_lengths_fail_without_allocating() {
        // Metadata v1 body: topics array claiming i32::MAX entries, then nothing.
        let mut body = bytes::Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff]);
        assert!(RequestKind::decode(ApiKey::Metadata, &mut body, 1).is_err());
        // Produce v9 (flexible): transactional id null, acks, timeout, compact array of 2^31.
        let mut body =
            bytes::Bytes::from_static(&[0, 0, 1, 0, 0, 0, 100, 0xff, 0xff, 0xff, 0xff, 0x07]);
        assert!(RequestKind::decode(ApiKey::Produce, &mut body, 9).is_err());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bodies_never_panic(idx in 0usize..64, version in 0i16..20, data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let e = API_TABLE[idx % API_TABLE.len()];
            let v = e.min + version % (e.max - e.min + 1);
            let mut body = bytes::Bytes::from(data);
            let _ = RequestKind::decode(e.key, &mut body, v);
        }
    }
}
