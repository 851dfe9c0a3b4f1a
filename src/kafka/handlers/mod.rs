//! One handler per Kafka API. A handler validates names and sizes, calls `Broker` verbs, and
//! maps domain errors through `kafka::error`. Expected failures are error codes in the
//! response. Fields are only set at versions that have them (the codec rejects others).

pub(crate) mod add_offsets_to_txn;
pub(crate) mod add_partitions_to_txn;
pub(crate) mod alter_client_quotas;
pub(crate) mod alter_configs;
pub(crate) mod alter_partition_reassignments;
pub(crate) mod alter_user_scram_credentials;
pub(crate) mod api_versions;
#[cfg(test)]
mod authz_tests;
pub(crate) mod create_acls;
pub(crate) mod create_partitions;
pub(crate) mod create_topics;
pub(crate) mod delete_acls;
pub(crate) mod delete_groups;
pub(crate) mod delete_records;
pub(crate) mod delete_topics;
pub(crate) mod describe_acls;
pub(crate) mod describe_client_quotas;
pub(crate) mod describe_cluster;
pub(crate) mod describe_configs;
pub(crate) mod describe_groups;
pub(crate) mod describe_log_dirs;
pub(crate) mod describe_producers;
pub(crate) mod describe_quorum;
pub(crate) mod describe_topic_partitions;
pub(crate) mod describe_transactions;
pub(crate) mod describe_user_scram_credentials;
pub(crate) mod elect_leaders;
pub(crate) mod end_txn;
pub(crate) mod fetch;
pub(crate) mod find_coordinator;
pub(crate) mod heartbeat;
pub(crate) mod incremental_alter_configs;
pub(crate) mod init_producer_id;
pub(crate) mod join_group;
pub(crate) mod leave_group;
pub(crate) mod list_groups;
pub(crate) mod list_offsets;
pub(crate) mod list_partition_reassignments;
pub(crate) mod list_transactions;
pub(crate) mod metadata;
pub(crate) mod offset_commit;
pub(crate) mod offset_delete;
pub(crate) mod offset_fetch;
pub(crate) mod offset_for_leader_epoch;
pub(crate) mod produce;
pub(crate) mod sasl_authenticate;
pub(crate) mod sasl_handshake;
pub(crate) mod sync_group;
#[cfg(test)]
pub(crate) mod test_util;
pub(crate) mod txn_offset_commit;
#[cfg(test)]
mod txn_tests;
pub(crate) mod write_txn_markers;

use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

pub(crate) fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

pub(crate) fn topic_name(s: &str) -> TopicName {
    TopicName(sb(s))
}

/// Kafka resource types in config APIs.
pub(crate) const RESOURCE_TOPIC: i8 = 2;
pub(crate) const RESOURCE_BROKER: i8 = 4;
pub(crate) const RESOURCE_BROKER_LOGGER: i8 = 8;

/// The config APIs' authorization (Kafka's `ConfigHelper` / `KafkaApis`): `op`
/// (DESCRIBE_CONFIGS or ALTER_CONFIGS) on the topic, else TOPIC_AUTHORIZATION_FAILED; on the
/// cluster for a broker or broker logger, else CLUSTER_AUTHORIZATION_FAILED. Other resource
/// types are left to the handler's own refusal.
pub(crate) fn config_resource_denied(
    authz: &crate::kafka::authz::Authz,
    resource_type: i8,
    name: &str,
    op: crate::security::acl::Operation,
) -> Option<crate::broker::BrokerError> {
    use crate::broker::BrokerError;
    match resource_type {
        RESOURCE_TOPIC if !authz.topic(op, name) => Some(BrokerError::TopicAuthorizationFailed),
        RESOURCE_BROKER | RESOURCE_BROKER_LOGGER if !authz.cluster(op) => {
            Some(BrokerError::ClusterAuthorizationFailed)
        }
        _ => None,
    }
}

/// The group membership APIs' authorization (JoinGroup, SyncGroup, Heartbeat, LeaveGroup):
/// READ on the group, else GROUP_AUTHORIZATION_FAILED.
///
/// # Errors
/// `GroupAuthorizationFailed`.
pub(crate) fn may_read_group(
    ctx: &crate::kafka::context::RequestContext,
    group: &str,
) -> Result<(), crate::broker::BrokerError> {
    if crate::kafka::authz::Authz::new(ctx).group(crate::security::acl::Operation::Read, group) {
        Ok(())
    } else {
        Err(crate::broker::BrokerError::GroupAuthorizationFailed)
    }
}
