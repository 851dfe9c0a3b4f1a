//! ZooKeeper-facade verbs: sessions and free-form znode writes through the controller, the
//! read barrier for `sync`, and the Kafka-tool writes (`/brokers/topics/<t>` and friends) that
//! become topic operations. Protocol-free: the `zk` front-end maps results to wire codes.

use super::{Broker, BrokerError, CreateTopicSpec};
use crate::controller::ProposeError;
use crate::metadata::{ApplyOutcome, MetadataCommand, ZkOp, ZkOpError, ZkOpResult};
use crate::types::now_ms;
use std::collections::BTreeMap;

impl Broker {
    /// A receiver of every newly applied metadata image (ZooKeeper watches react to it).
    pub fn subscribe_images(
        &self,
    ) -> tokio::sync::watch::Receiver<std::sync::Arc<crate::metadata::MetadataImage>> {
        self.inner.controller.subscribe()
    }

    /// Whether this node currently leads the controller quorum (it expires idle sessions).
    pub fn is_controller_leader(&self) -> bool {
        self.inner.controller.is_leader()
    }

    /// Opens a ZooKeeper session in the replicated state.
    ///
    /// # Errors
    /// The proposal failed (no quorum, timeout) or the id is taken.
    pub async fn zk_create_session(
        &self,
        session_id: i64,
        password: Vec<u8>,
        timeout_ms: i32,
    ) -> Result<(), BrokerError> {
        self.propose(MetadataCommand::ZkCreateSession {
            session_id,
            password,
            timeout_ms,
            now_ms: now_ms(),
        })
        .await
        .map(|_| ())
    }

    /// Marks sessions connected to this node as alive.
    ///
    /// # Errors
    /// The proposal failed.
    pub async fn zk_touch_sessions(&self, session_ids: Vec<i64>) -> Result<(), BrokerError> {
        self.propose(MetadataCommand::ZkTouchSessions {
            session_ids,
            now_ms: now_ms(),
        })
        .await
        .map(|_| ())
    }

    /// Ends sessions and removes their ephemeral znodes.
    ///
    /// # Errors
    /// The proposal failed.
    pub async fn zk_expire_sessions(&self, session_ids: Vec<i64>) -> Result<(), BrokerError> {
        self.propose(MetadataCommand::ZkExpireSessions { session_ids })
            .await
            .map(|_| ())
    }

    /// Runs znode writes all-or-nothing; returns one result per op. The write is applied on
    /// this node when this returns (read-your-writes).
    ///
    /// # Errors
    /// The proposal failed; op failures are `ZkOpResult::Error` inside `Ok`.
    pub async fn zk_multi(
        &self,
        session_id: i64,
        ops: Vec<ZkOp>,
    ) -> Result<Vec<ZkOpResult>, BrokerError> {
        let limits = &self.config().limits;
        // ZooKeeper refuses data past jute.maxbuffer; checked here, before anything is
        // replicated, and reported as ZooKeeper reports a failed multi.
        if let Some(i) = ops.iter().position(|op| match op {
            ZkOp::Create { data, .. } | ZkOp::SetData { data, .. } => data
                .as_ref()
                .is_some_and(|d| d.len() > limits.zk_data_bytes_max),
            _ => false,
        }) {
            let mut out = vec![ZkOpResult::Error(ZkOpError::RolledBack); i];
            out.push(ZkOpResult::Error(ZkOpError::BadArguments));
            out.resize(
                ops.len(),
                ZkOpResult::Error(ZkOpError::RuntimeInconsistency),
            );
            return Ok(out);
        }
        match self
            .propose(MetadataCommand::ZkMulti {
                session_id,
                now_ms: now_ms(),
                ops,
                data_bytes_max: Some(limits.zk_data_total_bytes_max),
            })
            .await?
        {
            ApplyOutcome::Zk(results) => Ok(results),
            other => Err(BrokerError::Internal(format!(
                "unexpected outcome {other:?}"
            ))),
        }
    }

    /// Waits until this node has applied everything the leader had committed (ZooKeeper `sync`).
    ///
    /// # Errors
    /// No leader or timeout.
    pub async fn zk_sync(&self) -> Result<(), BrokerError> {
        self.inner
            .controller
            .read_barrier()
            .await
            .map_err(|e| match e {
                ProposeError::NotLeader { .. } => BrokerError::NotController,
                ProposeError::Timeout => BrokerError::RequestTimedOut,
                ProposeError::Shutdown => BrokerError::ShuttingDown,
                ProposeError::Fatal(m) => BrokerError::Internal(m),
            })
    }

    /// `create /brokers/topics/<t>` by a Kafka tool: creates the topic with exactly this
    /// assignment (partition → replicas) and these config overrides.
    ///
    /// # Errors
    /// As `create_topics`.
    pub async fn zk_create_topic(
        &self,
        name: &str,
        assignment: Vec<(i32, Vec<i32>)>,
        configs: BTreeMap<String, String>,
    ) -> Result<(), BrokerError> {
        let spec = CreateTopicSpec {
            name: name.to_owned(),
            num_partitions: -1,
            replication_factor: -1,
            assignment,
            configs,
        };
        let mut results = self.create_topics(vec![spec], false).await;
        results
            .pop()
            .unwrap_or_else(|| Err(BrokerError::Internal("no create result".into())))
            .map(|_| ())
    }

    /// `setData /brokers/topics/<t>` by a Kafka tool: adds the partitions beyond the current
    /// count with their given replicas. The existing partitions must be unchanged.
    ///
    /// # Errors
    /// Unknown topic, a reassignment of existing partitions, or as `create_partitions`.
    pub async fn zk_set_assignment(
        &self,
        name: &str,
        mut assignment: Vec<(i32, Vec<i32>)>,
    ) -> Result<(), BrokerError> {
        let image = self.metadata_view();
        let t = image
            .topic(name)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        assignment.sort_by_key(|(p, _)| *p);
        let current = t.partitions.len();
        for (i, (p, replicas)) in assignment.iter().enumerate() {
            if usize::try_from(*p).ok() != Some(i) {
                return Err(BrokerError::InvalidReplicaAssignment(
                    "partitions must be consecutive from 0".into(),
                ));
            }
            if let Some(existing) = t.partitions.get(i) {
                if existing.replicas.iter().map(|n| n.0).collect::<Vec<_>>() != *replicas {
                    return Err(BrokerError::InvalidReplicaAssignment(
                        "reassigning existing partitions is not supported".into(),
                    ));
                }
            }
        }
        if assignment.len() == current {
            return Ok(());
        }
        let count = i32::try_from(assignment.len())
            .map_err(|_| BrokerError::InvalidPartitions("too many partitions".into()))?;
        let new: Vec<Vec<i32>> = assignment
            .into_iter()
            .skip(current)
            .map(|(_, r)| r)
            .collect();
        self.create_partitions(name, count, Some(new), false).await
    }
}
