//! The API table (which drives ApiVersions too) and the dispatch from a decoded request to its
//! handler.

use super::context::RequestContext;
use super::handlers;
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use tokio::task::JoinHandle;

/// One supported API and its version range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiEntry {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
}

const fn api(key: ApiKey, min: i16, max: i16) -> ApiEntry {
    ApiEntry { key, min, max }
}

/// Every API this broker serves, with the versions it fully implements. ApiVersions is
/// answered from this table, so adding a row advertises the API.
static API_TABLE: &[ApiEntry] = &[
    api(ApiKey::Produce, 3, 13),
    api(ApiKey::Fetch, 4, 17),
    api(ApiKey::ListOffsets, 1, 10),
    api(ApiKey::Metadata, 0, 13),
    api(ApiKey::ApiVersions, 0, 4),
    api(ApiKey::CreateTopics, 2, 7),
    api(ApiKey::DeleteTopics, 1, 6),
    api(ApiKey::InitProducerId, 0, 5),
    api(ApiKey::OffsetForLeaderEpoch, 2, 4),
    api(ApiKey::DescribeConfigs, 1, 4),
    api(ApiKey::AlterConfigs, 0, 2),
    api(ApiKey::CreatePartitions, 0, 3),
    api(ApiKey::IncrementalAlterConfigs, 0, 1),
    api(ApiKey::DescribeCluster, 0, 1),
    api(ApiKey::FindCoordinator, 0, 6),
    api(ApiKey::JoinGroup, 0, 9),
    api(ApiKey::SyncGroup, 0, 5),
    api(ApiKey::Heartbeat, 0, 4),
    api(ApiKey::LeaveGroup, 0, 5),
    api(ApiKey::OffsetCommit, 2, 9),
    api(ApiKey::OffsetFetch, 1, 9),
    api(ApiKey::ListGroups, 0, 5),
    api(ApiKey::DescribeGroups, 0, 6),
    api(ApiKey::DeleteGroups, 0, 2),
    api(ApiKey::OffsetDelete, 0, 0),
    api(ApiKey::DeleteRecords, 0, 2),
];

/// The supported APIs.
pub fn api_table() -> &'static [ApiEntry] {
    API_TABLE
}

/// The supported range for an API key, if any.
pub(crate) fn supported(key: i16) -> Option<(ApiKey, ApiEntry)> {
    let k = ApiKey::try_from(key).ok()?;
    API_TABLE.iter().find(|e| e.key == k).map(|e| (k, *e))
}

/// What a handler produced.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // moved once per request; boxing would add an allocation
pub(crate) enum Reply {
    Now(ResponseKind),
    /// The response completes later (e.g. `acks=all`), while the connection reads on.
    Later(JoinHandle<Option<ResponseKind>>),
    /// No response is sent (produce with `acks=0`).
    None,
}

/// Runs the handler for `req`. Requests outside the table never reach here.
pub(crate) async fn dispatch(ctx: RequestContext, req: RequestKind) -> Reply {
    let now = Reply::Now;
    match req {
        RequestKind::ApiVersions(r) => now(ResponseKind::ApiVersions(
            handlers::api_versions::handle(&ctx, r),
        )),
        RequestKind::Metadata(r) => now(ResponseKind::Metadata(
            handlers::metadata::handle(&ctx, r).await,
        )),
        RequestKind::Produce(r) => handlers::produce::handle(ctx, r).await,
        RequestKind::Fetch(r) => now(ResponseKind::Fetch(handlers::fetch::handle(&ctx, r).await)),
        RequestKind::ListOffsets(r) => now(ResponseKind::ListOffsets(
            handlers::list_offsets::handle(&ctx, r).await,
        )),
        RequestKind::CreateTopics(r) => now(ResponseKind::CreateTopics(
            handlers::create_topics::handle(&ctx, r).await,
        )),
        RequestKind::DeleteTopics(r) => now(ResponseKind::DeleteTopics(
            handlers::delete_topics::handle(&ctx, r).await,
        )),
        RequestKind::CreatePartitions(r) => now(ResponseKind::CreatePartitions(
            handlers::create_partitions::handle(&ctx, r).await,
        )),
        RequestKind::DescribeConfigs(r) => now(ResponseKind::DescribeConfigs(
            handlers::describe_configs::handle(&ctx, r),
        )),
        RequestKind::AlterConfigs(r) => now(ResponseKind::AlterConfigs(
            handlers::alter_configs::handle(&ctx, r).await,
        )),
        RequestKind::IncrementalAlterConfigs(r) => now(ResponseKind::IncrementalAlterConfigs(
            handlers::incremental_alter_configs::handle(&ctx, r).await,
        )),
        RequestKind::DescribeCluster(r) => now(ResponseKind::DescribeCluster(
            handlers::describe_cluster::handle(&ctx, r),
        )),
        RequestKind::InitProducerId(r) => now(ResponseKind::InitProducerId(
            handlers::init_producer_id::handle(&ctx, r).await,
        )),
        RequestKind::OffsetForLeaderEpoch(r) => now(ResponseKind::OffsetForLeaderEpoch(
            handlers::offset_for_leader_epoch::handle(&ctx, r).await,
        )),
        RequestKind::FindCoordinator(r) => now(ResponseKind::FindCoordinator(
            handlers::find_coordinator::handle(&ctx, r).await,
        )),
        RequestKind::JoinGroup(r) => handlers::join_group::handle(ctx, r),
        RequestKind::SyncGroup(r) => handlers::sync_group::handle(ctx, r),
        RequestKind::Heartbeat(r) => now(ResponseKind::Heartbeat(handlers::heartbeat::handle(
            &ctx, r,
        ))),
        RequestKind::LeaveGroup(r) => now(ResponseKind::LeaveGroup(
            handlers::leave_group::handle(&ctx, r).await,
        )),
        RequestKind::OffsetCommit(r) => handlers::offset_commit::handle(ctx, r),
        RequestKind::OffsetFetch(r) => now(ResponseKind::OffsetFetch(
            handlers::offset_fetch::handle(&ctx, r),
        )),
        RequestKind::ListGroups(r) => now(ResponseKind::ListGroups(handlers::list_groups::handle(
            &ctx, r,
        ))),
        RequestKind::DescribeGroups(r) => now(ResponseKind::DescribeGroups(
            handlers::describe_groups::handle(&ctx, r),
        )),
        RequestKind::DeleteGroups(r) => now(ResponseKind::DeleteGroups(
            handlers::delete_groups::handle(&ctx, r).await,
        )),
        RequestKind::OffsetDelete(r) => now(ResponseKind::OffsetDelete(
            handlers::offset_delete::handle(&ctx, r).await,
        )),
        RequestKind::DeleteRecords(r) => now(ResponseKind::DeleteRecords(
            handlers::delete_records::handle(&ctx, r).await,
        )),
        other => {
            // The connection checks the table before decoding, so this is a table/dispatch
            // mismatch: a programming error.
            unreachable!(
                "API in the table without a dispatch arm: {:?}",
                std::mem::discriminant(&other)
            )
        }
    }
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
