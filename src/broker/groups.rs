//! Consumer-group verbs: find the coordinator (creating `__consumer_offsets` on first need
//! through the normal CreateTopic command), then delegate to this node's `GroupCoordinator`.

use super::{Broker, BrokerError, CreateTopicSpec};
use crate::group::{GroupError, OFFSETS_TOPIC};
use crate::metadata::{MetadataImage, TopicImage};
use crate::txn::TRANSACTION_STATE_TOPIC;
use crate::types::NodeId;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

pub use crate::group::{
    Committed, CommittedOffsetView, ConsumerOffsets, GroupDescription, GroupListing, GroupOffsets,
    GroupState, JoinParams, JoinResult, JoinedMember, MemberDescription, OffsetCommitEntry,
    SyncParams, SyncResult,
};

/// How long FindCoordinator waits for a freshly created offsets topic to get a leader (and,
/// if that leader is this node, to load) before answering COORDINATOR_NOT_AVAILABLE.
const COORDINATOR_WAIT: Duration = Duration::from_secs(5);

/// FindCoordinator's key types.
pub const KEY_TYPE_GROUP: i8 = 0;
pub const KEY_TYPE_TRANSACTION: i8 = 1;

/// Where a group's coordinator is, for the client's listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorView {
    pub node_id: NodeId,
    pub host: String,
    pub port: u16,
}

/// Per-partition results of an offsets verb, grouped by topic.
pub type TopicResults<T> = Vec<(String, Vec<(i32, T)>)>;

impl Broker {
    /// Committed offsets as the coordinators hold them, for the ZooKeeper facade's read-only
    /// `/consumers` projection: `group`'s offsets, or (without) the groups that have any.
    pub async fn consumer_offsets(&self, group: Option<&str>) -> ConsumerOffsets {
        self.inner.groups.cluster_offsets(group).await
    }

    /// The coordinator for `key` (a group id, or a transactional id with key type 1) as seen
    /// on `listener`: the leader of the key's partition of `__consumer_offsets` /
    /// `__transaction_state` (created on first need), once it has loaded that partition.
    ///
    /// # Errors
    /// `CoordinatorNotAvailable` while the topic has no leader (or cannot be created);
    /// `InvalidRequest` for unknown key types.
    pub async fn find_coordinator(
        &self,
        key_type: i8,
        key: &str,
        listener: &str,
    ) -> Result<CoordinatorView, BrokerError> {
        let unavailable = || BrokerError::Group(GroupError::CoordinatorNotAvailable);
        let (topic_name, topic) = match key_type {
            KEY_TYPE_GROUP => (OFFSETS_TOPIC, self.ensure_offsets_topic().await?),
            KEY_TYPE_TRANSACTION => {
                if key.is_empty() {
                    return Err(BrokerError::InvalidRequest(
                        "the transactional id is empty".into(),
                    ));
                }
                let t = self.ensure_txn_topic().await.map_err(|_| unavailable())?;
                (TRANSACTION_STATE_TOPIC, t)
            }
            other => {
                return Err(BrokerError::InvalidRequest(format!(
                    "unsupported coordinator key type {other}"
                )))
            }
        };
        let partition = crate::group::partition_for(key, topic.partitions.len() as i32);
        let deadline = tokio::time::Instant::now() + COORDINATOR_WAIT;
        let mut images = self.inner.controller.subscribe();
        loop {
            let image = images.borrow_and_update().clone();
            let leader = image
                .partition(topic_name, partition)
                .and_then(|p| p.leader);
            let ready = match leader {
                Some(l) if l == self.node_id() => match key_type {
                    KEY_TYPE_GROUP => self.inner.groups.is_loaded(partition),
                    _ => self.inner.txn.is_loaded(partition),
                },
                Some(_) => true,
                None => false,
            };
            if let (true, Some(l)) = (ready, leader) {
                return coordinator_view(&image, l, listener);
            }
            let wait = tokio::time::sleep(Duration::from_millis(50));
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return Err(unavailable()),
                _ = images.changed() => {}
                _ = wait => {}
            }
        }
    }

    /// Creates `__transaction_state` if missing (compacted, `transaction.state.log.*`, RF
    /// capped by the live brokers, `min.insync.replicas` capped by the RF) and waits for it.
    pub(super) async fn ensure_txn_topic(&self) -> Result<Arc<TopicImage>, BrokerError> {
        let t = &self.config().txn;
        let live = self.metadata_view().live_brokers().count();
        let rf = (t.replication_factor.max(1) as usize).min(live.max(1)) as i16;
        let min_isr = t.min_isr.min(i32::from(rf)).max(1);
        self.ensure_internal_topic(
            TRANSACTION_STATE_TOPIC,
            t.num_partitions,
            t.replication_factor,
            BTreeMap::from([
                ("cleanup.policy".to_owned(), "compact".to_owned()),
                ("min.insync.replicas".to_owned(), min_isr.to_string()),
            ]),
        )
        .await
    }

    /// Creates `__consumer_offsets` if missing (compacted, `offsets.topic.num.partitions`,
    /// RF = min(`offsets.topic.replication.factor`, live brokers)) and waits for it.
    pub(super) async fn ensure_offsets_topic(&self) -> Result<Arc<TopicImage>, BrokerError> {
        let defaults = &self.config().defaults;
        self.ensure_internal_topic(
            OFFSETS_TOPIC,
            defaults.offsets_topic_num_partitions,
            defaults.offsets_topic_replication_factor,
            BTreeMap::from([("cleanup.policy".to_owned(), "compact".to_owned())]),
        )
        .await
    }

    /// Creates internal topic `name` if missing, with RF = min(`rf`, live brokers), through
    /// the normal CreateTopic command, and waits until this node's image has it.
    async fn ensure_internal_topic(
        &self,
        name: &str,
        partitions: i32,
        rf: i16,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<TopicImage>, BrokerError> {
        let unavailable = || BrokerError::Group(GroupError::CoordinatorNotAvailable);
        if let Some(t) = self.metadata_view().topic(name) {
            return Ok(t.clone());
        }
        let image = self.metadata_view();
        let live = image.live_brokers().count();
        if live == 0 {
            return Err(unavailable());
        }
        let rf = (rf.max(1) as usize).min(live) as i16;
        let spec = CreateTopicSpec {
            name: name.to_owned(),
            num_partitions: partitions,
            replication_factor: rf,
            assignment: Vec::new(),
            configs,
        };
        match self.create_topics(vec![spec], false).await.pop() {
            Some(Ok(_)) => info!(partitions, replication_factor = rf, "created {name}"),
            Some(Err(BrokerError::TopicAlreadyExists(_))) => {}
            Some(Err(e)) => {
                warn!(error = %e, "cannot create {name}");
                return Err(unavailable());
            }
            None => return Err(unavailable()),
        }
        let mut images = self.inner.controller.subscribe();
        let found = tokio::time::timeout(
            COORDINATOR_WAIT,
            images.wait_for(|i| i.topic(name).is_some()),
        )
        .await;
        match found {
            Ok(Ok(img)) => img.topic(name).cloned().ok_or_else(unavailable),
            _ => Err(unavailable()),
        }
    }

    /// JoinGroup (may wait for the rebalance to complete).
    ///
    /// # Errors
    /// Group errors (`MemberIdRequired` carries the issued member id).
    pub async fn join_group(
        &self,
        group_id: &str,
        params: JoinParams,
    ) -> Result<JoinResult, BrokerError> {
        Ok(self.inner.groups.join(group_id, params).await?)
    }

    /// SyncGroup (followers wait for the leader's assignment).
    ///
    /// # Errors
    /// Group errors.
    pub async fn sync_group(
        &self,
        group_id: &str,
        params: SyncParams,
    ) -> Result<SyncResult, BrokerError> {
        Ok(self.inner.groups.sync(group_id, params).await?)
    }

    /// Heartbeat.
    ///
    /// # Errors
    /// Group errors.
    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
        generation_id: i32,
    ) -> Result<(), BrokerError> {
        Ok(self
            .inner
            .groups
            .heartbeat(group_id, member_id, instance, generation_id)?)
    }

    /// LeaveGroup for `(member_id, group_instance_id)` pairs.
    ///
    /// # Errors
    /// Group-level errors; per-member errors are in the vector.
    pub async fn leave_group(
        &self,
        group_id: &str,
        members: Vec<(String, Option<String>)>,
    ) -> Result<Vec<Result<(), BrokerError>>, BrokerError> {
        let r = self.inner.groups.leave(group_id, members).await?;
        Ok(r.into_iter()
            .map(|x| x.map_err(BrokerError::from))
            .collect())
    }

    /// OffsetCommit; the returned future answers once the commit is durable. The commit is
    /// checked and ordered when this is called (see `GroupCoordinator::commit_offsets`), so a
    /// connection calls it in request order and may then wait for several at once.
    ///
    /// # Errors
    /// Group-level errors (membership, generation, coordinator).
    pub fn commit_offsets(
        &self,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
        generation_id: i32,
        entries: Vec<OffsetCommitEntry>,
    ) -> impl std::future::Future<Output = Result<Vec<Result<(), BrokerError>>, BrokerError>>
           + Send
           + 'static {
        let pending =
            self.inner
                .groups
                .commit_offsets(group_id, member_id, instance, generation_id, entries);
        async move {
            let r = pending.await?;
            Ok(r.into_iter()
                .map(|x| x.map_err(BrokerError::from))
                .collect())
        }
    }

    /// OffsetFetch (`None` = all topics the group committed).
    ///
    /// # Errors
    /// Not the coordinator, or loading.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
    ) -> Result<TopicResults<Option<CommittedOffsetView>>, BrokerError> {
        self.coordinator_lease()?;
        Ok(self.inner.groups.fetch_offsets(group_id, topics)?)
    }

    /// Binds the node's coordinator lease (once; `node` does it).
    pub fn set_coordinator_lease(&self, lease: Arc<crate::controller::policy::liveness::Lease>) {
        let _ = self.inner.lease.set(lease);
    }

    /// NOT_COORDINATOR unless this node holds its coordinator lease: without it the node may be
    /// cut off from the controller while another node coordinates its groups, and its
    /// committed offsets may be stale (`controller::policy::liveness`).
    fn coordinator_lease(&self) -> Result<(), BrokerError> {
        match self.inner.lease.get() {
            Some(l) if !l.holds() => Err(BrokerError::Group(GroupError::NotCoordinator)),
            _ => Ok(()),
        }
    }

    /// OffsetFetch with KIP-447's `require_stable`: partitions whose transactional offsets
    /// wait for a marker answer UNSTABLE_OFFSET_COMMIT.
    ///
    /// # Errors
    /// Not the coordinator, or loading.
    pub fn fetch_offsets_stable(
        &self,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
        require_stable: bool,
    ) -> Result<TopicResults<Result<Option<CommittedOffsetView>, BrokerError>>, BrokerError> {
        self.coordinator_lease()?;
        Ok(self
            .inner
            .groups
            .fetch_offsets_stable(group_id, topics, require_stable)?
            .into_iter()
            .map(|(t, ps)| {
                let ps = ps
                    .into_iter()
                    .map(|(p, c)| (p, c.map_err(BrokerError::from)))
                    .collect();
                (t, ps)
            })
            .collect())
    }

    /// OffsetDelete.
    ///
    /// # Errors
    /// Group-level errors.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        topics: Vec<(String, Vec<i32>)>,
    ) -> Result<TopicResults<Result<(), BrokerError>>, BrokerError> {
        let r = self.inner.groups.delete_offsets(group_id, topics).await?;
        Ok(r.into_iter()
            .map(|(t, ps)| {
                (
                    t,
                    ps.into_iter()
                        .map(|(p, x)| (p, x.map_err(BrokerError::from)))
                        .collect(),
                )
            })
            .collect())
    }

    /// ListGroups on this node.
    ///
    /// # Errors
    /// `CoordinatorLoadInProgress`.
    pub fn list_groups(&self) -> Result<Vec<GroupListing>, BrokerError> {
        Ok(self.inner.groups.list_groups()?)
    }

    /// DescribeGroups for one group.
    ///
    /// # Errors
    /// Not the coordinator, loading, `GroupIdNotFound`.
    pub fn describe_group(&self, group_id: &str) -> Result<GroupDescription, BrokerError> {
        Ok(self.inner.groups.describe_group(group_id)?)
    }

    /// DeleteGroups for one group.
    ///
    /// # Errors
    /// Not the coordinator, `GroupIdNotFound`, `NonEmptyGroup`.
    pub async fn delete_group(&self, group_id: &str) -> Result<(), BrokerError> {
        Ok(self.inner.groups.delete_group(group_id).await?)
    }
}

fn coordinator_view(
    image: &MetadataImage,
    node: NodeId,
    listener: &str,
) -> Result<CoordinatorView, BrokerError> {
    let b = image
        .brokers
        .get(&node)
        .filter(|b| !b.fenced)
        .ok_or(BrokerError::Group(GroupError::CoordinatorNotAvailable))?;
    let ep = b
        .endpoints
        .iter()
        .find(|e| e.listener == listener)
        .or_else(|| b.endpoints.first())
        .ok_or(BrokerError::Group(GroupError::CoordinatorNotAvailable))?;
    Ok(CoordinatorView {
        node_id: node,
        host: ep.host.clone(),
        port: ep.port,
    })
}
