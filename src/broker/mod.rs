//! The narrow domain API the protocol front-ends call (`kafka`, `zk`). It never returns
//! protocol types: errors are `BrokerError`, mapped to wire codes at the edge.
//! Imports `controller` (handle only), `replication`, `metadata`, `config`, `types`, and `rpc`
//! for node-to-node calls (transaction markers, the leaders' high watermarks for consumer lag).

mod acls;
mod configs;
mod delete_records;
mod dynamic_configs;
mod error;
mod fetch;
pub mod fetch_memory;
pub mod fetch_sessions;
mod groups;
mod lag;
mod log_dirs;
mod offsets;
mod produce;
mod producer_ids;
mod quotas;
mod reassignments;
#[cfg(test)]
pub(crate) mod testing;
mod topics;
mod txn;
mod users;
mod znodes;

pub use crate::group::GroupError;
pub use configs::{ConfigEntryView, ConfigSource, ConfigSynonymView, IncrementalOp};
pub use dynamic_configs::sync_dynamic_configs;
pub use error::{BrokerError, RecordErrors};
pub use lag::{PartitionLag, LAG_SERIES_MAX};
pub use quotas::{
    entity_parts as quota_entity_parts, parked, timed, QuotaKind, QuotaMatch, QuotaOps,
    QuotaSubject,
};
pub use reassignments::{OngoingReassignment, ReassignmentChange};

/// The client id of Kafka's own admin tooling, the only one allowed to write internal topics.
pub const ADMIN_CLIENT_ID: &str = "__admin_client";

/// Kafka's internal topics (consumer offsets, transaction state): written by the
/// coordinators, never by clients.
pub fn is_internal_topic(name: &str) -> bool {
    name == crate::group::OFFSETS_TOPIC || name == crate::txn::TRANSACTION_STATE_TOPIC
}
pub use crate::types::now_ms;
pub use fetch::{FetchParams, FetchPartitionRequest, FetchPartitionResult};
pub use groups::{
    Committed, CommittedOffsetView, ConsumerOffsets, CoordinatorView, GroupDescription,
    GroupListing, GroupOffsets, GroupState, JoinParams, JoinResult, JoinedMember,
    MemberDescription, OffsetCommitEntry, SyncParams, SyncResult, TopicResults, KEY_TYPE_GROUP,
    KEY_TYPE_TRANSACTION,
};
pub use log_dirs::{LogDirView, ReplicaSize};
pub use offsets::OffsetSpec;
pub use produce::{ProduceAck, ProducePending, ProduceTxn, TransactionGauges};
pub use topics::{CreateTopicSpec, CreatedTopic};
pub use txn::{TxnServiceImpl, MARKER_PARTITIONS_MAX};
pub use users::{CredentialInfos, ScramUpsertion};

use crate::config::Config;
use crate::controller::{ControllerHandle, ProposeError};
use crate::group::GroupCoordinator;
use crate::metadata::{ApplyOutcome, MetadataCommand, MetadataError, MetadataImage};
use crate::replication::{Partition, ReplicaManager};
use crate::types::NodeId;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Cloneable handle to this node's broker services.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<Config>,
    controller: ControllerHandle,
    replicas: Arc<ReplicaManager>,
    producer_ids: producer_ids::ProducerIdBlock,
    shutdown: CancellationToken,
    groups: Arc<GroupCoordinator>,
    txn: Arc<crate::txn::TxnCoordinator>,
    /// Channels to other nodes (transaction markers).
    peers: crate::rpc::PeerPool,
    /// The client quota rates of this node.
    quota_sensors: quotas::QuotaSensors,
    /// Consumer fetch answer bytes in memory (`fetch.response.memory.max.bytes`).
    fetch_memory: Arc<fetch_memory::FetchMemory>,
    /// Incremental fetch sessions (KIP-227; `max.incremental.fetch.session.cache.slots`).
    fetch_sessions: fetch_sessions::FetchSessions,
    /// The node's coordinator lease (`controller::policy::liveness`); unset (in-process
    /// brokers of tests) always holds.
    lease: std::sync::OnceLock<Arc<crate::controller::policy::liveness::Lease>>,
}

/// A broker handle that does not keep it alive (held by what the broker itself holds).
#[derive(Clone)]
pub struct WeakBroker(std::sync::Weak<Inner>);

impl std::fmt::Debug for WeakBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeakBroker").finish()
    }
}

impl WeakBroker {
    pub fn upgrade(&self) -> Option<Broker> {
        self.0.upgrade().map(|inner| Broker { inner })
    }
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("node_id", &self.inner.config.node_id)
            .finish()
    }
}

impl Broker {
    pub fn new(
        config: Arc<Config>,
        controller: ControllerHandle,
        replicas: Arc<ReplicaManager>,
        groups: Arc<GroupCoordinator>,
        shutdown: CancellationToken,
    ) -> Self {
        let txn = crate::txn::TxnCoordinator::new(
            config.clone(),
            replicas.clone(),
            controller.subscribe(),
        );
        let broker = Self {
            inner: Arc::new(Inner {
                peers: txn::peer_pool(&config),
                fetch_memory: fetch_memory::FetchMemory::new(
                    config.limits.fetch_response_memory_max,
                ),
                fetch_sessions: fetch_sessions::FetchSessions::new(
                    config.limits.fetch_session_slots,
                    config.limits.fetch_session_partitions_max,
                ),
                config,
                controller,
                replicas,
                producer_ids: producer_ids::ProducerIdBlock::default(),
                shutdown,
                groups,
                txn,
                quota_sensors: quotas::QuotaSensors::default(),
                lease: std::sync::OnceLock::new(),
            }),
        };
        broker
            .inner
            .txn
            .bind(Arc::new(txn::Host(broker.downgrade())));
        broker
    }

    /// A handle that does not keep the broker alive.
    pub fn downgrade(&self) -> WeakBroker {
        WeakBroker(Arc::downgrade(&self.inner))
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.inner.config
    }

    pub fn node_id(&self) -> NodeId {
        self.inner.config.node_id
    }

    /// The current metadata image on this node.
    pub fn metadata_view(&self) -> Arc<MetadataImage> {
        self.inner.controller.image()
    }

    /// This node's fetch sessions (KIP-227).
    pub fn fetch_sessions(&self) -> &fetch_sessions::FetchSessions {
        &self.inner.fetch_sessions
    }

    /// The group coordinator of this node.
    pub fn groups(&self) -> &Arc<GroupCoordinator> {
        &self.inner.groups
    }

    /// The controller (Raft) leader, if known.
    pub fn controller_id(&self) -> Option<NodeId> {
        self.inner.controller.leader_id()
    }

    /// Commits a metadata command, mapping rejections and Raft errors to domain errors.
    async fn propose(&self, cmd: MetadataCommand) -> Result<ApplyOutcome, BrokerError> {
        match self.inner.controller.propose(cmd).await {
            Ok(ApplyOutcome::Rejected(e)) => Err(BrokerError::from(e)),
            Ok(o) => Ok(o),
            Err(e) => Err(controller_error(e)),
        }
    }

    /// The controller quorum as its leader describes it (DescribeQuorum), asked of the leader.
    ///
    /// # Errors
    /// No reachable leader (NotController), a timeout, shutdown.
    pub async fn describe_quorum(&self) -> Result<crate::controller::QuorumView, BrokerError> {
        self.inner
            .controller
            .describe_quorum()
            .await
            .map_err(controller_error)
    }

    /// The local replica for a partition as leader, or the reason it cannot serve.
    async fn leader_partition(
        &self,
        image: &MetadataImage,
        topic: &str,
        partition: i32,
    ) -> Result<Arc<Partition>, BrokerError> {
        let t = image
            .topic(topic)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        let pi = usize::try_from(partition)
            .ok()
            .and_then(|i| t.partitions.get(i))
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        match pi.leader {
            None => return Err(BrokerError::LeaderNotAvailable),
            Some(l) if l != self.node_id() => return Err(BrokerError::NotLeaderOrFollower),
            Some(_) => {}
        }
        let p = self
            .inner
            .replicas
            .partition(image, topic, partition)
            .await
            .map_err(|e| BrokerError::Storage(e.to_string()))?
            .ok_or(BrokerError::NotLeaderOrFollower)?;
        if !p.is_leader() {
            return Err(BrokerError::NotLeaderOrFollower);
        }
        Ok(p)
    }
}

/// A controller failure as a domain error.
fn controller_error(e: ProposeError) -> BrokerError {
    match e {
        ProposeError::NotLeader { .. } => BrokerError::NotController,
        ProposeError::Timeout => BrokerError::RequestTimedOut,
        ProposeError::Shutdown => BrokerError::ShuttingDown,
        ProposeError::Fatal(m) => BrokerError::Internal(m),
    }
}

impl From<MetadataError> for BrokerError {
    fn from(e: MetadataError) -> Self {
        match e {
            MetadataError::TopicExists(t) => BrokerError::TopicAlreadyExists(t),
            MetadataError::TopicCollision(a, b) => {
                BrokerError::InvalidTopic(format!("Topic '{a}' collides with existing topic: {b}"))
            }
            MetadataError::UnknownTopic(_) => BrokerError::UnknownTopicOrPartition,
            MetadataError::TopicIdExists => {
                BrokerError::TopicAlreadyExists("topic id in use".into())
            }
            MetadataError::InvalidReplicaAssignment(m) => BrokerError::InvalidReplicaAssignment(m),
            MetadataError::InvalidPartitions(m) => BrokerError::InvalidPartitions(m),
            MetadataError::UnknownBroker(b) => BrokerError::InvalidReplicaAssignment(format!(
                "Unknown broker {b} in the replica assignment"
            )),
            MetadataError::NoReassignmentInProgress(_) => BrokerError::NoReassignmentInProgress,
            MetadataError::StalePartitionEpoch { .. }
            | MetadataError::InvalidPartitionChange(_) => {
                BrokerError::InvalidRequest(e.to_string())
            }
            MetadataError::AclLimit { .. } => BrokerError::InvalidRequest(e.to_string()),
            MetadataError::UnsupportedFormat(_) | MetadataError::ZkSessionExists(_) => {
                BrokerError::Internal(e.to_string())
            }
        }
    }
}
