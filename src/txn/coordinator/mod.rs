//! `TxnCoordinator`: the transactional ids of the `__transaction_state` partitions this node
//! leads. A partition is loaded when this node becomes its leader (requests get
//! COORDINATOR_LOAD_IN_PROGRESS meanwhile; prepared commits and aborts found in it are
//! finished) and dropped when it stops leading (NOT_COORDINATOR). A request's transition is
//! prepared under the state lock (`state.rs`), written with `acks=all`, and applied only once
//! durable and only if the partition is still led in the same epoch.
//!
//! | File | Owns |
//! | --- | --- |
//! | `mod.rs` | `TxnCoordinator`, its state, placement, the client verbs (InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn) and the admin views |
//! | `background.rs` | the driver: loads/unloads partitions, writes, markers and the completion of prepared transactions, timeouts, expiration |

use super::records::{self, TxnStatus};
use super::state::{EndStep, InitStep, Target, Tp, TxnMeta, TV_1, TV_2};
use super::{TxnError, TRANSACTION_STATE_TOPIC};
use crate::config::Config;
use crate::metadata::MetadataImage;
use crate::replication::{Partition, ReplicaManager};
use crate::types::{now_ms, NodeId};
use futures::future::BoxFuture;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

mod background;

/// Longest transactional id accepted (Kafka bounds it only by the request size).
const TXN_ID_BYTES_MAX: usize = 1024;
/// How long AddPartitionsToTxn waits for the previous transaction's completion.
const CONCURRENT_WAIT: std::time::Duration = std::time::Duration::from_millis(500);
/// Partitions one transaction may hold.
const PARTITIONS_PER_TXN_MAX: usize = 100_000;

/// Markers for one transaction's partitions (WriteTxnMarkers' content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerWrite {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    pub coordinator_epoch: i32,
    pub partitions: Vec<Tp>,
}

/// How writing one partition's marker ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkerOutcome {
    /// Durable on the partition (acks=all).
    Written,
    /// The partition no longer exists: nothing to mark (Kafka drops it from the transaction).
    Gone,
    /// Try again later (no leader, not enough replicas, timeout, an unreachable node).
    Retry(String),
    /// The partition refused the marker for good (a newer producer epoch or coordinator
    /// epoch there): another coordinator has taken over.
    Fenced(String),
}

/// What the coordinator needs from the rest of the node: new producer ids (through the
/// controller) and markers written on the partitions' leaders. The broker implements it.
pub trait TxnHost: Send + Sync + 'static {
    fn new_producer_id(&self) -> BoxFuture<'static, Result<i64, String>>;
    fn write_markers(&self, w: MarkerWrite) -> BoxFuture<'static, Vec<(Tp, MarkerOutcome)>>;
}

/// One partition of a verify-only AddPartitionsToTxn.
pub type Verified = (Tp, Result<(), TxnError>);

/// DescribeTransactions / ListTransactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnDescription {
    pub transactional_id: String,
    pub state: TxnStatus,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub start_ms: i64,
    pub partitions: Vec<Tp>,
}

enum Load {
    Loading {
        leader_epoch: i32,
    },
    Loaded {
        leader_epoch: i32,
        partition: Arc<Partition>,
    },
}

impl Load {
    fn leader_epoch(&self) -> i32 {
        match self {
            Load::Loading { leader_epoch } | Load::Loaded { leader_epoch, .. } => *leader_epoch,
        }
    }
}

#[derive(Default)]
struct State {
    partitions: HashMap<i32, Load>,
    txns: HashMap<String, TxnMeta>,
}

impl State {
    /// The loaded partition and its leader epoch (the coordinator epoch).
    fn owner(&self, p: i32) -> Result<(Arc<Partition>, i32), TxnError> {
        match self.partitions.get(&p) {
            None => Err(TxnError::NotCoordinator),
            Some(Load::Loading { .. }) => Err(TxnError::CoordinatorLoadInProgress),
            Some(Load::Loaded {
                partition,
                leader_epoch,
            }) => Ok((partition.clone(), *leader_epoch)),
        }
    }

    fn still_owner(&self, p: i32, epoch: i32) -> bool {
        matches!(self.partitions.get(&p), Some(Load::Loaded { leader_epoch, .. }) if *leader_epoch == epoch)
    }

    /// For each id of a loaded partition: its partition and coordinator epoch, with the
    /// id's metadata (the periodic sweeps: timeouts, expiration).
    fn loaded_txns_mut(
        &mut self,
        partitions: i32,
    ) -> impl Iterator<Item = (i32, i32, &mut TxnMeta)> + '_ {
        let loaded: HashMap<i32, i32> = self
            .partitions
            .iter()
            .filter_map(|(p, l)| match l {
                Load::Loaded { leader_epoch, .. } => Some((*p, *leader_epoch)),
                Load::Loading { .. } => None,
            })
            .collect();
        self.txns.values_mut().filter_map(move |m| {
            let p = crate::group::partition_for(&m.id, partitions);
            loaded.get(&p).map(|epoch| (p, *epoch, m))
        })
    }
}

/// The transaction coordinator of this node.
pub struct TxnCoordinator {
    node_id: NodeId,
    config: Arc<Config>,
    replicas: Arc<ReplicaManager>,
    images: watch::Receiver<Arc<MetadataImage>>,
    host: OnceLock<Arc<dyn TxnHost>>,
    state: Mutex<State>,
    /// Marker tasks (finishing prepared transactions), stopped with the coordinator.
    tasks: TaskTracker,
    /// Woken whenever a transaction completes (CompleteCommit / CompleteAbort written).
    completed: tokio::sync::Notify,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for TxnCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.lock();
        f.debug_struct("TxnCoordinator")
            .field("partitions", &st.partitions.len())
            .field("transactional_ids", &st.txns.len())
            .finish()
    }
}

fn validate_id(id: &str) -> Result<(), TxnError> {
    if id.is_empty() || id.len() > TXN_ID_BYTES_MAX {
        return Err(TxnError::InvalidRequest(format!(
            "transactional id must be 1 to {TXN_ID_BYTES_MAX} bytes"
        )));
    }
    Ok(())
}

impl TxnCoordinator {
    pub fn new(
        config: Arc<Config>,
        replicas: Arc<ReplicaManager>,
        images: watch::Receiver<Arc<MetadataImage>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            node_id: config.node_id,
            config,
            replicas,
            images,
            host: OnceLock::new(),
            state: Mutex::new(State::default()),
            tasks: TaskTracker::new(),
            completed: tokio::sync::Notify::new(),
            shutdown: CancellationToken::new(),
        })
    }

    /// Binds the host (once; later calls are ignored). Until then nothing is loaded.
    pub fn bind(&self, host: Arc<dyn TxnHost>) {
        let _ = self.host.set(host);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn host(&self) -> Result<&Arc<dyn TxnHost>, TxnError> {
        self.host.get().ok_or(TxnError::CoordinatorNotAvailable)
    }

    /// Partitions of `__transaction_state` (the existing topic's, else the configured count).
    fn num_partitions(&self) -> i32 {
        let image = self.images.borrow();
        image
            .topic(TRANSACTION_STATE_TOPIC)
            .map_or(self.config.txn.num_partitions, |t| {
                t.partitions.len() as i32
            })
    }

    /// The `__transaction_state` partition of `transactional_id` (Kafka's placement).
    pub fn partition_of(&self, transactional_id: &str) -> i32 {
        crate::group::partition_for(transactional_id, self.num_partitions())
    }

    /// Whether the coordinator's own aborts (a fenced producer's open transaction, a timeout)
    /// follow transaction version 2's rules (Kafka uses the finalized feature level).
    fn server_tv2(&self) -> bool {
        self.config.txn.version >= TV_2
    }

    /// Whether this node serves the partition (loaded).
    pub fn is_loaded(&self, partition: i32) -> bool {
        matches!(
            self.lock().partitions.get(&partition),
            Some(Load::Loaded { .. })
        )
    }

    async fn new_producer_id(&self) -> Result<i64, TxnError> {
        let host = self.host()?.clone();
        host.new_producer_id().await.map_err(|e| {
            tracing::warn!(error = %e, "cannot allocate a producer id");
            TxnError::CoordinatorNotAvailable
        })
    }

    /// InitProducerId with a transactional id: the id's producer id and a bumped epoch
    /// (fencing earlier producers); an open transaction is aborted first (the client is told
    /// CONCURRENT_TRANSACTIONS and retries). `expected`: KIP-360's current producer id and
    /// epoch (v3+).
    ///
    /// # Errors
    /// INVALID_TRANSACTION_TIMEOUT, NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS,
    /// CONCURRENT_TRANSACTIONS, PRODUCER_FENCED, COORDINATOR_NOT_AVAILABLE.
    pub async fn init_producer_id(
        self: &Arc<Self>,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), TxnError> {
        validate_id(transactional_id)?;
        let max = i64::try_from(self.config.txn.max_timeout.as_millis()).unwrap_or(i64::MAX);
        if timeout_ms <= 0 || i64::from(timeout_ms) > max {
            return Err(TxnError::InvalidTransactionTimeout);
        }
        let pidx = self.partition_of(transactional_id);
        let mut new_pid: Option<i64> = None;
        // At most: allocate an id for a new transactional id, then one for a rotation.
        for _ in 0..3 {
            let known = self.lock().txns.contains_key(transactional_id);
            if !known && new_pid.is_none() {
                new_pid = Some(self.new_producer_id().await?);
            }
            let (step, epoch) = {
                let mut st = self.lock();
                let (_, epoch) = st.owner(pidx)?;
                let now = now_ms();
                if !st.txns.contains_key(transactional_id) {
                    let Some(pid) = new_pid.take() else {
                        continue;
                    };
                    if st.txns.len() >= self.config.txn.ids_max {
                        return Err(TxnError::CoordinatorNotAvailable);
                    }
                    st.txns.insert(
                        transactional_id.to_owned(),
                        TxnMeta::new(transactional_id.to_owned(), pid, timeout_ms, now),
                    );
                }
                let m = st
                    .txns
                    .get_mut(transactional_id)
                    .ok_or(TxnError::CoordinatorNotAvailable)?;
                (
                    m.init_producer_id(
                        timeout_ms,
                        expected,
                        new_pid.take(),
                        self.server_tv2(),
                        now,
                    )?,
                    epoch,
                )
            };
            match step {
                InitStep::NeedProducerId => {
                    new_pid = Some(self.new_producer_id().await?);
                }
                InitStep::Write(t) => {
                    self.write(pidx, epoch, transactional_id, Some(&t)).await?;
                    return Ok((t.producer_id, t.producer_epoch));
                }
                InitStep::AbortFirst(t) => {
                    self.write(pidx, epoch, transactional_id, Some(&t)).await?;
                    self.spawn_completion(pidx, epoch, transactional_id.to_owned());
                    return Err(TxnError::ConcurrentTransactions);
                }
            }
        }
        Err(TxnError::CoordinatorNotAvailable)
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn, with the group's offsets partition; at
    /// transaction version 2 (`tv2`) the partition leader's or group coordinator's implicit
    /// add of KIP-890). While the previous transaction of the id is still being completed
    /// (its markers in flight), the request waits for that, up to `CONCURRENT_WAIT`, instead
    /// of answering CONCURRENT_TRANSACTIONS at once: the client's next transaction then
    /// starts as soon as the markers are written rather than after its retry backoff.
    ///
    /// # Errors
    /// The coordinator's and the state's errors (`state.rs`).
    pub async fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[Tp],
        tv2: bool,
    ) -> Result<(), TxnError> {
        let client_version = if tv2 { TV_2 } else { TV_1 };
        validate_id(transactional_id)?;
        if partitions.len() > PARTITIONS_PER_TXN_MAX {
            return Err(TxnError::InvalidRequest("too many partitions".into()));
        }
        let pidx = self.partition_of(transactional_id);
        let deadline = tokio::time::Instant::now() + CONCURRENT_WAIT;
        loop {
            let completed = self.completed.notified();
            tokio::pin!(completed);
            completed.as_mut().enable();
            let step = {
                let mut st = self.lock();
                let (_, epoch) = st.owner(pidx)?;
                let m = st
                    .txns
                    .get_mut(transactional_id)
                    .ok_or(TxnError::InvalidProducerIdMapping)?;
                if m.partitions.len() + partitions.len() > PARTITIONS_PER_TXN_MAX {
                    return Err(TxnError::InvalidRequest("too many partitions".into()));
                }
                let ending = m.is_ending();
                match m.add_partitions(
                    producer_id,
                    producer_epoch,
                    partitions,
                    client_version,
                    now_ms(),
                ) {
                    Err(TxnError::ConcurrentTransactions)
                        if ending && tokio::time::Instant::now() < deadline =>
                    {
                        None
                    }
                    r => Some((r?, epoch)),
                }
            };
            match step {
                None => {
                    let _ = tokio::time::timeout_at(deadline, completed).await;
                }
                Some((None, _)) => return Ok(()),
                Some((Some(t), epoch)) => {
                    return self.write(pidx, epoch, transactional_id, Some(&t)).await
                }
            }
        }
    }

    /// AddPartitionsToTxn v4+ `verify_only`: whether each partition is part of the producer's
    /// open transaction (KIP-890's check before a transactional produce is appended).
    ///
    /// As Kafka's `handleVerifyPartitionsInTransaction`: CONCURRENT_TRANSACTIONS for the
    /// whole request while the transaction is being committed or aborted (retriable: the
    /// producer's produce waits for the end), otherwise TRANSACTION_ABORTABLE per partition
    /// not in the producer's open transaction.
    ///
    /// # Errors
    /// Coordinator-level failures, INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED,
    /// CONCURRENT_TRANSACTIONS.
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[Tp],
    ) -> Result<Vec<Verified>, TxnError> {
        validate_id(transactional_id)?;
        let pidx = self.partition_of(transactional_id);
        let st = self.lock();
        st.owner(pidx)?;
        let m = st
            .txns
            .get(transactional_id)
            .ok_or(TxnError::InvalidProducerIdMapping)?;
        if m.producer_id != producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if m.producer_epoch != producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        if matches!(m.state, TxnStatus::PrepareCommit | TxnStatus::PrepareAbort) {
            return Err(TxnError::ConcurrentTransactions);
        }
        Ok(partitions
            .iter()
            .map(|tp| {
                let ok = m.state == TxnStatus::Ongoing && m.partitions.contains(tp);
                (
                    tp.clone(),
                    if ok {
                        Ok(())
                    } else {
                        Err(TxnError::TransactionAbortable)
                    },
                )
            })
            .collect())
    }

    /// EndTxn: the commit or abort is decided (PrepareCommit / PrepareAbort written) before
    /// this answers; the markers follow in the background, then CompleteCommit /
    /// CompleteAbort. At transaction version 2 (`tv2`, EndTxn v5+) the epoch is bumped and
    /// the answer is the producer id and epoch of the client's next transaction; below it,
    /// (-1, -1).
    ///
    /// # Errors
    /// The coordinator's and the state's errors (`state.rs`).
    pub async fn end_txn(
        self: &Arc<Self>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        tv2: bool,
    ) -> Result<(i64, i16), TxnError> {
        validate_id(transactional_id)?;
        let pidx = self.partition_of(transactional_id);
        let mut new_pid = None;
        // At most: one allocation for an exhausted epoch, then the end.
        for _ in 0..2 {
            let (step, epoch) = {
                let mut st = self.lock();
                let (_, epoch) = st.owner(pidx)?;
                let m = st
                    .txns
                    .get_mut(transactional_id)
                    .ok_or(TxnError::InvalidProducerIdMapping)?;
                let step = m.end(
                    producer_id,
                    producer_epoch,
                    commit,
                    tv2,
                    new_pid.take(),
                    now_ms(),
                );
                if step == Err(TxnError::InvalidTxnState) {
                    // Kafka's logInvalidStateTransitionAndReturnError.
                    tracing::warn!(
                        transactional_id,
                        state = m.state.name(),
                        producer_id = m.producer_id,
                        producer_epoch = m.producer_epoch,
                        request_epoch = producer_epoch,
                        commit,
                        transaction_version = if tv2 { 2 } else { 1 },
                        "EndTxn in a state that does not allow it: INVALID_TXN_STATE"
                    );
                }
                (step?, epoch)
            };
            match step {
                EndStep::Done(pid, epoch) => return Ok((pid, epoch)),
                EndStep::NeedProducerId => new_pid = Some(self.new_producer_id().await?),
                EndStep::Write(t) => {
                    self.write(pidx, epoch, transactional_id, Some(&t)).await?;
                    self.spawn_completion(pidx, epoch, transactional_id.to_owned());
                    return Ok(if tv2 { t.next_producer() } else { (-1, -1) });
                }
            }
        }
        Err(TxnError::CoordinatorNotAvailable)
    }

    /// DescribeTransactions: one id.
    ///
    /// # Errors
    /// NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, TRANSACTIONAL_ID_NOT_FOUND.
    pub fn describe(&self, transactional_id: &str) -> Result<TxnDescription, TxnError> {
        let pidx = self.partition_of(transactional_id);
        let st = self.lock();
        st.owner(pidx)?;
        st.txns
            .get(transactional_id)
            .filter(|m| m.producer_epoch >= 0)
            .map(describe)
            .ok_or(TxnError::TransactionalIdNotFound)
    }

    /// ListTransactions: the ids this node coordinates, filtered by state names and producer
    /// ids (empty filters match all), at most `limit`.
    ///
    /// # Errors
    /// COORDINATOR_LOAD_IN_PROGRESS while a partition is loading.
    pub fn list(
        &self,
        states: &BTreeSet<String>,
        producer_ids: &BTreeSet<i64>,
        limit: usize,
    ) -> Result<Vec<TxnDescription>, TxnError> {
        let st = self.lock();
        if st
            .partitions
            .values()
            .any(|l| matches!(l, Load::Loading { .. }))
        {
            return Err(TxnError::CoordinatorLoadInProgress);
        }
        let mut out: Vec<TxnDescription> = st
            .txns
            .values()
            .filter(|m| m.producer_epoch >= 0)
            .filter(|m| states.is_empty() || states.contains(m.state.name()))
            .filter(|m| producer_ids.is_empty() || producer_ids.contains(&m.producer_id))
            .map(describe)
            .collect();
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        out.truncate(limit);
        Ok(out)
    }

    /// Open transactions and ids held here (`/metrics`).
    pub fn gauges(&self) -> (u64, u64) {
        let st = self.lock();
        let open = st
            .txns
            .values()
            .filter(|m| m.state == TxnStatus::Ongoing || m.is_ending())
            .count();
        (open as u64, st.txns.len() as u64)
    }
}

fn describe(m: &TxnMeta) -> TxnDescription {
    TxnDescription {
        transactional_id: m.id.clone(),
        state: m.state,
        producer_id: m.producer_id,
        producer_epoch: m.producer_epoch,
        timeout_ms: m.timeout_ms,
        start_ms: m.start_ms,
        partitions: m.partitions.iter().cloned().collect(),
    }
}

/// The record of a transition (`None`: the tombstone of an expired id).
fn txn_record(id: &str, t: Option<&Target>) -> (bytes::Bytes, Option<bytes::Bytes>) {
    (
        records::encode_key(id),
        t.map(|t| records::encode_value(&t.to_value())),
    )
}
