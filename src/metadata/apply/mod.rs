//! `apply`: the deterministic transition from one image to the next. Pure.
//!
//! `mod.rs` is the entry point and the dispatch over commands; each entity has its own file
//! (`brokers.rs`, `topics.rs`, `zk.rs`) with one function per command.

use super::command::{MetadataCommand, MetadataRequest, COMMAND_FORMAT_VERSION};
use super::image::MetadataImage;
use super::znode::ZkOpResult;
use serde::{Deserialize, Serialize};

/// A deterministic rejection: the command was committed but changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum MetadataError {
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    #[error("topic '{0}' collides with existing topic '{1}'")]
    TopicCollision(String, String),
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    #[error("topic id already in use")]
    TopicIdExists,
    #[error("invalid replica assignment: {0}")]
    InvalidReplicaAssignment(String),
    #[error("invalid partition count: {0}")]
    InvalidPartitions(String),
    #[error("stale partition epoch {given}, current {current}")]
    StalePartitionEpoch { given: i32, current: i32 },
    #[error("invalid partition change: {0}")]
    InvalidPartitionChange(String),
    #[error("unknown broker {0}")]
    UnknownBroker(i32),
    #[error("no reassignment of {0} is in progress")]
    NoReassignmentInProgress(String),
    #[error("unsupported command format {0}")]
    UnsupportedFormat(u16),
    #[error("ZooKeeper session {0:#x} already exists")]
    ZkSessionExists(i64),
    #[error("the cluster would hold {would} ACLs, more than acls.max ({max})")]
    AclLimit { would: u64, max: u64 },
}

/// What a committed command did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplyOutcome {
    Done,
    ProducerIds {
        first: i64,
    },
    Rejected(MetadataError),
    /// The per-op results of a `ZkMulti` (all errors if it was rolled back).
    Zk(Vec<ZkOpResult>),
    /// What a `DeleteAcls` removed, per filter.
    AclsDeleted(Vec<Vec<crate::security::acl::AclBinding>>),
}

/// Applies `req` at Raft `index`: returns the next image (with `applied_index = index`) and the
/// outcome. A rejected command still advances `applied_index`.
pub fn apply(
    image: &MetadataImage,
    req: &MetadataRequest,
    index: u64,
) -> (MetadataImage, ApplyOutcome) {
    assert!(
        index > image.applied_index || image.applied_index == 0,
        "apply index went backwards"
    );
    let mut next = image.clone();
    next.applied_index = index;
    if req.format > COMMAND_FORMAT_VERSION {
        return (
            next,
            ApplyOutcome::Rejected(MetadataError::UnsupportedFormat(req.format)),
        );
    }
    match apply_command(&mut next, &req.command, index) {
        Ok(outcome) => {
            next.check_invariants();
            (next, outcome)
        }
        Err(e) => {
            let mut unchanged = image.clone();
            unchanged.applied_index = index;
            (unchanged, ApplyOutcome::Rejected(e))
        }
    }
}

mod acls;
mod brokers;
mod topics;
mod users;
mod zk;

fn apply_command(
    next: &mut MetadataImage,
    cmd: &MetadataCommand,
    index: u64,
) -> Result<ApplyOutcome, MetadataError> {
    use MetadataCommand as C;
    match cmd {
        C::InitCluster { cluster_id } => brokers::init_cluster(next, cluster_id),
        C::RegisterBroker { registration } => brokers::register(next, registration, index),
        C::FenceBroker { node_id } => brokers::fence(next, *node_id),
        C::CreateTopic {
            name,
            topic_id,
            assignment,
            configs,
        } => topics::create(next, name, topic_id, assignment, configs, index),
        C::DeleteTopic { name } => topics::delete(next, name),
        C::CreatePartitions { name, assignment } => {
            topics::create_partitions(next, name, assignment, index)
        }
        C::AlterTopicConfigs { name, ops } => topics::alter_configs(next, name, ops, index),
        C::ReplaceTopicConfigs { name, configs } => {
            topics::replace_configs(next, name, configs, index)
        }
        C::ChangePartition {
            topic,
            partition,
            partition_epoch,
            leader,
            isr,
        } => topics::change_partition(
            next,
            topic,
            *partition,
            *partition_epoch,
            *leader,
            isr,
            index,
        ),
        C::ReassignPartition {
            topic,
            partition,
            target,
        } => topics::reassign(next, topic, *partition, target.as_deref(), index),
        C::AllocateProducerIds { count } => topics::allocate_producer_ids(next, *count),
        C::ZkCreateSession {
            session_id,
            password,
            timeout_ms,
            now_ms,
        } => zk::create_session(next, *session_id, password, *timeout_ms, *now_ms),
        C::ZkTouchSessions {
            session_ids,
            now_ms,
        } => zk::touch_sessions(next, session_ids, *now_ms),
        C::ZkExpireSessions { session_ids } => zk::expire_sessions(next, session_ids, index),
        C::ZkMulti {
            session_id,
            now_ms,
            ops,
            data_bytes_max,
        } => zk::multi(next, *session_id, *now_ms, ops, *data_bytes_max, index),
        C::AlterBrokerConfigs { broker, ops } => brokers::alter_configs(next, *broker, ops, index),
        C::ReplaceBrokerConfigs { broker, configs } => {
            brokers::replace_configs(next, *broker, configs, index)
        }
        C::AlterScramCredentials {
            deletions,
            upsertions,
        } => users::alter_scram(next, deletions, upsertions, index),
        C::CreateAcls {
            bindings,
            max_total,
        } => acls::create(next, bindings, *max_total, index),
        C::DeleteAcls { filters } => Ok(acls::delete(next, filters, index)),
        C::SetResourceAcls {
            pattern,
            entries,
            expect,
            max_total,
        } => Ok(acls::set_resource(
            next, pattern, entries, *expect, *max_total, index,
        )),
        C::ReplaceUserConfigs {
            user,
            scram,
            other,
            quotas,
        } => users::replace_configs(next, user, scram, other, quotas, index),
        C::AlterClientQuotas { entries } => {
            for (entity, ops) in entries {
                users::alter_quotas(next, entity, ops);
            }
            Ok(ApplyOutcome::Done)
        }
        C::ReplaceClientQuotas { entity, quotas } => {
            users::replace_quotas(next, entity, quotas);
            Ok(ApplyOutcome::Done)
        }
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
