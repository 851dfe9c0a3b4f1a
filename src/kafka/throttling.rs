//! Client quota throttling on the wire (KIP-13, KIP-219): the throttle time goes into the
//! response's `throttle_time_ms` (at versions that have it), the connection reads nothing
//! more until the throttle has passed (Kafka mutes the channel), and a client too old to
//! back off by itself (before KIP-219's versions) gets its response only then.

use crate::broker::fetch_sessions::{FetchSessions, SessionPartition, SessionTopic};
use kafka_protocol::messages::{ApiKey, ResponseKind};

/// Sets `throttle_time_ms` of a response where its version has the field.
pub(crate) fn set_throttle(resp: &mut ResponseKind, version: i16, ms: i32) {
    if let Some(f) = throttle_field(resp, version) {
        *f = ms;
    }
}

/// The `throttle_time_ms` a handler put in its response (the controller mutation quota's),
/// 0 where the version has no such field.
pub(crate) fn throttle_of(resp: &mut ResponseKind, version: i16) -> i32 {
    throttle_field(resp, version).map_or(0, |f| *f)
}

/// The response's `throttle_time_ms`, where its version has the field.
fn throttle_field(resp: &mut ResponseKind, version: i16) -> Option<&mut i32> {
    macro_rules! field {
        ($($variant:ident >= $min:literal),+ $(,)?) => {
            match resp {
                $(ResponseKind::$variant(r) if version >= $min => Some(&mut r.throttle_time_ms),)+
                _ => None,
            }
        };
    }
    field!(
        Produce >= 1,
        Fetch >= 1,
        ListOffsets >= 2,
        Metadata >= 3,
        OffsetCommit >= 3,
        OffsetFetch >= 3,
        FindCoordinator >= 1,
        JoinGroup >= 2,
        Heartbeat >= 1,
        LeaveGroup >= 1,
        SyncGroup >= 1,
        DescribeGroups >= 1,
        ListGroups >= 1,
        ApiVersions >= 1,
        CreateTopics >= 2,
        DeleteTopics >= 1,
        DeleteRecords >= 0,
        InitProducerId >= 0,
        OffsetForLeaderEpoch >= 2,
        AddPartitionsToTxn >= 0,
        AddOffsetsToTxn >= 0,
        EndTxn >= 0,
        TxnOffsetCommit >= 0,
        DescribeAcls >= 0,
        CreateAcls >= 0,
        DeleteAcls >= 0,
        DescribeConfigs >= 0,
        AlterConfigs >= 0,
        DescribeLogDirs >= 0,
        CreatePartitions >= 0,
        DeleteGroups >= 0,
        ElectLeaders >= 0,
        IncrementalAlterConfigs >= 0,
        AlterPartitionReassignments >= 0,
        ListPartitionReassignments >= 0,
        OffsetDelete >= 0,
        DescribeClientQuotas >= 0,
        AlterClientQuotas >= 0,
        DescribeUserScramCredentials >= 0,
        AlterUserScramCredentials >= 0,
        DescribeCluster >= 0,
        DescribeProducers >= 0,
        DescribeTransactions >= 0,
        ListTransactions >= 0,
        DescribeTopicPartitions >= 0,
    )
}

/// Whether the client backs off by itself at this version (KIP-219: Kafka answers at once
/// and only mutes the connection); older clients get the response after the throttle.
pub(crate) fn client_throttles(api: ApiKey, version: i16) -> bool {
    let min = match api {
        ApiKey::Produce => 6,
        ApiKey::Fetch => 8,
        ApiKey::ListOffsets => 3,
        ApiKey::Metadata => 6,
        ApiKey::OffsetCommit | ApiKey::OffsetFetch => 4,
        ApiKey::FindCoordinator
        | ApiKey::Heartbeat
        | ApiKey::LeaveGroup
        | ApiKey::SyncGroup
        | ApiKey::DescribeGroups
        | ApiKey::ListGroups
        | ApiKey::ApiVersions
        | ApiKey::DeleteTopics
        | ApiKey::DescribeConfigs => 2,
        ApiKey::JoinGroup | ApiKey::CreateTopics | ApiKey::OffsetForLeaderEpoch => 3,
        ApiKey::DeleteRecords
        | ApiKey::InitProducerId
        | ApiKey::AddPartitionsToTxn
        | ApiKey::AddOffsetsToTxn
        | ApiKey::EndTxn
        | ApiKey::TxnOffsetCommit
        | ApiKey::DescribeAcls
        | ApiKey::CreateAcls
        | ApiKey::DeleteAcls
        | ApiKey::AlterConfigs
        | ApiKey::DescribeLogDirs
        | ApiKey::CreatePartitions
        | ApiKey::DeleteGroups
        | ApiKey::ElectLeaders => 1,
        _ => 0,
    };
    version >= min
}

/// Whether a request counts toward `request_percentage` (Kafka exempts what a client needs
/// to connect and authenticate, and node-to-node requests).
pub(crate) fn request_time_counted(api: ApiKey) -> bool {
    !matches!(
        api,
        ApiKey::ApiVersions
            | ApiKey::SaslHandshake
            | ApiKey::SaslAuthenticate
            | ApiKey::WriteTxnMarkers
    )
}

/// The record bytes of a fetch response.
pub(crate) fn fetch_bytes(resp: &ResponseKind) -> usize {
    let ResponseKind::Fetch(r) = resp else {
        return 0;
    };
    r.responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| p.records.as_ref().map_or(0, bytes::Bytes::len))
        .sum()
}

/// A throttled fetch answers no partitions (Kafka's `getThrottledResponse`); its fetch
/// session (v7+) forgets what those partitions were told, and one it would have created is
/// closed (session id 0).
pub(crate) fn empty_fetch(resp: &mut ResponseKind, version: i16, sessions: &FetchSessions) {
    if let ResponseKind::Fetch(r) = resp {
        if version >= 7 && r.session_id > 0 {
            let keys: Vec<SessionPartition> = r
                .responses
                .iter()
                .flat_map(|t| {
                    let topic = if version >= 13 {
                        SessionTopic::Id(t.topic_id)
                    } else {
                        SessionTopic::Name(std::sync::Arc::from(t.topic.as_str()))
                    };
                    t.partitions.iter().map(move |p| SessionPartition {
                        topic: topic.clone(),
                        partition: p.partition_index,
                    })
                })
                .collect();
            if !sessions.unanswered(r.session_id, keys.iter()) {
                r.session_id = 0;
            }
        }
        r.responses.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{FetchResponse, ProduceResponse};

    #[test]
    fn the_field_is_set_only_where_the_version_has_it() {
        for v in 0..=13 {
            let mut r = ResponseKind::Produce(ProduceResponse::default());
            set_throttle(&mut r, v, 500);
            let ResponseKind::Produce(p) = &r else {
                unreachable!()
            };
            assert_eq!(p.throttle_time_ms, if v >= 1 { 500 } else { 0 });
            let mut buf = bytes::BytesMut::new();
            kafka_protocol::protocol::Encodable::encode(&p.clone(), &mut buf, v)
                .expect("encodes at every version");
        }
        let mut r = ResponseKind::Fetch(FetchResponse::default());
        set_throttle(&mut r, 0, 5);
        let ResponseKind::Fetch(f) = &r else {
            unreachable!()
        };
        let mut buf = bytes::BytesMut::new();
        kafka_protocol::protocol::Encodable::encode(f, &mut buf, 0).expect("v0: no field");
        assert!(client_throttles(ApiKey::Produce, 9));
        assert!(!client_throttles(ApiKey::Produce, 5));
        assert!(client_throttles(ApiKey::DescribeClientQuotas, 0));
    }
}
